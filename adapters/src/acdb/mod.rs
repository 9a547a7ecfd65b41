//! The ACDB: reading it and generating a synthetic one.
//!
//! Readers are blocking (ODBC is a blocking API): run them on a blocking thread
//! (`tokio::task::spawn_blocking`) and hand batches over a bounded channel.
//!
//! Dialects:
//! - [`Dialect::Sqlite`]: the SQLite ODBC driver holding the ACDB schema (tests, demo);
//! - [`Dialect::Access`]: the Microsoft Access ODBC driver (production, Windows);
//! - [`Dialect::File`]: an `.accdb`/`.mdb` file read without ODBC (read-only import on Linux).
//!
//! SQL sent over ODBC is restricted to what both the Access and SQLite drivers accept:
//! `[bracketed names]`, `?` parameters, no `TOP`, no `#date#`, no `Nz`.

use std::fmt;

use domain::acdb::AcdbRow;
use domain::catalog::{ColumnKind, KeyPart, RowKey, TableSpec};

use crate::Result;

/// Which kind of source a reader talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Access,
    File,
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dialect::Sqlite => "SQLite ODBC",
            Dialect::Access => "Microsoft Access ODBC",
            Dialect::File => "Access file",
        })
    }
}

/// A column as the source reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnInfo {
    pub name: String,
    /// The type the driver reports, mapped to ccare's kinds (`None`: a type ccare does not map,
    /// read as text).
    pub kind: Option<ColumnKind>,
}

/// Which rows a scan returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanFilter {
    /// Every row.
    All,
    /// Rows whose key is greater than this one (resuming a key-ordered import).
    KeyAfter(RowKey),
    /// Rows whose `column` is at least `value` (a watermark with its trailing window).
    AtLeast { column: String, value: KeyPart },
    /// The row with this key (the audited writer reading back what it wrote).
    KeyEquals(RowKey),
}

/// A streaming read of one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    pub filter: ScanFilter,
    /// Rows per batch handed to the callback.
    pub batch_size: usize,
}

impl Scan {
    pub fn all(batch_size: usize) -> Self {
        Scan {
            filter: ScanFilter::All,
            batch_size,
        }
    }
}

/// Reads the ACDB. Implementations stream: memory is bounded by the batch size, not the table
/// size (the file reader is the documented exception: see `file`).
pub trait AcdbReader: Send {
    fn dialect(&self) -> Dialect;

    /// The user tables in the source (system tables excluded).
    fn tables(&mut self) -> Result<Vec<String>>;

    /// The columns of `table` in source order; `Error::AcdbTableMissing` if there is no such table.
    fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>>;

    fn count_rows(&mut self, table: &str) -> Result<u64>;

    /// Streams the rows of `spec.table` matching `scan.filter`, ordered by the table's key, in
    /// batches of at most `scan.batch_size`, typed with the spec's column kinds where the driver
    /// does not say (a value that does not parse as its kind is kept as text, never dropped).
    /// Stops early when `on_batch` returns `false`.
    fn scan(
        &mut self,
        spec: &TableSpec,
        scan: &Scan,
        on_batch: &mut dyn FnMut(Vec<AcdbRow>) -> bool,
    ) -> Result<()>;
}

/// Writes to the ACDB, for the audited writer only (see `crate::writer`). One ACDB transaction
/// at a time per connection: `begin`, the statements, then `commit` or `rollback`.
pub trait AcdbWriter: AcdbReader {
    fn begin(&mut self) -> Result<()>;
    fn commit(&mut self) -> Result<()>;
    fn rollback(&mut self) -> Result<()>;

    /// Inserts a row of `spec.table` with `values`; returns the key the ACDB assigned when the
    /// table's key is an AutoNumber the values leave out.
    fn insert(&mut self, spec: &TableSpec, values: &AcdbRow) -> Result<Option<i64>>;

    /// Sets `values` on the row `key`; returns the number of rows changed.
    fn update(&mut self, spec: &TableSpec, key: &RowKey, values: &AcdbRow) -> Result<u64>;

    /// Deletes the row `key`; returns the number of rows deleted.
    fn delete(&mut self, spec: &TableSpec, key: &RowKey) -> Result<u64>;

    /// The row `key` as the change capture would read it (same typing, so the same hash).
    fn read_row(&mut self, spec: &TableSpec, key: &RowKey) -> Result<Option<AcdbRow>> {
        let mut found = None;
        self.scan(
            spec,
            &Scan {
                filter: ScanFilter::KeyEquals(key.clone()),
                batch_size: 2,
            },
            &mut |rows| {
                found = rows.into_iter().next();
                false
            },
        )?;
        Ok(found)
    }
}

pub mod file;
pub mod generate;
pub mod odbc;
mod typing;

use std::path::PathBuf;

/// Where the ACDB is: an ODBC connection string (`Driver=SQLite3;Database=…`, or the Microsoft
/// Access driver's `Driver={Microsoft Access Driver (*.mdb, *.accdb)};DBQ=…`) or an
/// `.accdb`/`.mdb` file read without ODBC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AcdbLocation {
    Odbc(String),
    File(PathBuf),
}

/// Opens a connection the audited writer can write through: ODBC only (an `.accdb`/`.mdb` file
/// read without ODBC is read-only).
pub fn open_writer(location: &AcdbLocation) -> Result<Box<dyn AcdbWriter>> {
    match location {
        AcdbLocation::Odbc(connection_string) => {
            Ok(Box::new(odbc::OdbcReader::connect(connection_string)?))
        }
        AcdbLocation::File(path) => Err(crate::Error::AcdbFile {
            path: path.clone(),
            message: "is read without ODBC, which cannot write: writes need ACDB_DSN".into(),
        }),
    }
}

/// Opens a reader for `location`: [`odbc::OdbcReader`] for a connection string,
/// [`file::FileReader`] for a file.
pub fn open(location: &AcdbLocation) -> Result<Box<dyn AcdbReader>> {
    Ok(match location {
        AcdbLocation::Odbc(connection_string) => {
            Box::new(odbc::OdbcReader::connect(connection_string)?)
        }
        AcdbLocation::File(path) => Box::new(file::FileReader::open(path)?),
    })
}

/// `[name]`, with a `]` inside doubled (SQLite's rule; Access names cannot hold one): how ACDB
/// SQL names tables and columns, read over ODBC or written into a generated ACDB.
fn quote(name: &str) -> String {
    format!("[{}]", name.replace(']', "]]"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_bracketed() {
        assert_eq!(quote("Copy Of tblmeter"), "[Copy Of tblmeter]");
        assert_eq!(quote("odd]name"), "[odd]]name]");
    }
}
