//! Synthetic ACDBs for tests: a generated SQLite file in a temporary directory, reached through
//! the SQLite ODBC driver exactly as ccare reaches it.

use std::path::{Path, PathBuf};

use adapters::acdb::generate::{generate, GenerateOptions, GenerateSummary};
use adapters::acdb::odbc::OdbcReader;
use odbc_api::parameter::InputParameter;
use odbc_api::{ConnectionOptions, IntoParameter};

/// Customers in the small preset: enough for every id-bound awkward case
/// (`adapters::acdb::generate::AWKWARD_CUSTOMERS`), small enough to generate in milliseconds.
pub const SMALL_CUSTOMERS: u32 = 20;

/// A generated ACDB that lives as long as this value (its directory is removed on drop).
pub struct TestAcdb {
    dir: tempfile::TempDir,
    path: PathBuf,
    summary: GenerateSummary,
}

/// An ACDB of `customers` customers and one year of history, generated from `seed`.
pub fn generated(customers: u32, seed: u64) -> TestAcdb {
    generated_with(&GenerateOptions {
        customers,
        years: 1,
        seed,
    })
}

/// The small preset: 20 customers, one year, seed 1.
pub fn generated_small() -> TestAcdb {
    generated(SMALL_CUSTOMERS, 1)
}

/// An ACDB generated with any options (e.g. the defaults, for size checks).
pub fn generated_with(opts: &GenerateOptions) -> TestAcdb {
    let dir = tempfile::Builder::new()
        .prefix("ccare-acdb-")
        .tempdir()
        .expect("a temporary directory");
    let path = dir.path().join("acdb.sqlite");
    let summary = generate(&path, opts, &mut |_| {}).expect("generating the synthetic ACDB");
    TestAcdb { dir, path, summary }
}

/// A parameter of [`TestAcdb::execute`].
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Null,
    Int(i64),
    Text(String),
}

impl From<i64> for Param {
    fn from(value: i64) -> Self {
        Param::Int(value)
    }
}

impl From<i32> for Param {
    fn from(value: i32) -> Self {
        Param::Int(i64::from(value))
    }
}

impl From<&str> for Param {
    fn from(value: &str) -> Self {
        Param::Text(value.to_string())
    }
}

impl From<String> for Param {
    fn from(value: String) -> Self {
        Param::Text(value)
    }
}

impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(value: Option<T>) -> Self {
        value.map_or(Param::Null, Into::into)
    }
}

impl TestAcdb {
    /// The ODBC connection string: `Driver=SQLite3;Database=<path>`.
    pub fn dsn(&self) -> String {
        format!("Driver=SQLite3;Database={}", self.path.display())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The directory holding the file (removed with this value).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Rows generated per table.
    pub fn summary(&self) -> &GenerateSummary {
        &self.summary
    }

    /// A reader over ODBC, as ccare opens it.
    pub fn reader(&self) -> OdbcReader {
        OdbcReader::connect(&self.dsn()).expect("connecting to the synthetic ACDB over ODBC")
    }

    /// Runs one SQL statement through the SQLite ODBC driver (as an office user's edit would
    /// arrive) and returns the number of rows it changed. Decimals and dates go in as text, the way
    /// the generator stores them. Panics with the driver's message on failure.
    pub fn execute(&self, sql: &str, params: &[Param]) -> usize {
        let env = odbc_api::environment().expect("the ODBC environment");
        let conn = env
            .connect_with_connection_string(&self.dsn(), ConnectionOptions::default())
            .expect("connecting to the synthetic ACDB over ODBC");
        let bound: Vec<Box<dyn InputParameter>> = params
            .iter()
            .map(|p| -> Box<dyn InputParameter> {
                match p {
                    Param::Null => Box::new(None::<String>.into_parameter()),
                    Param::Int(i) => Box::new(*i),
                    Param::Text(s) => Box::new(s.clone().into_parameter()),
                }
            })
            .collect();
        let mut statement = conn.preallocate().expect("an ODBC statement");
        statement
            .execute(sql, bound.as_slice())
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        statement.row_count().ok().flatten().unwrap_or(0)
    }
}
