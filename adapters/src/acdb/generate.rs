//! The synthetic ACDB: a SQLite file holding the ACDB's tables, with the exact table and column
//! names of [`CAPTURED_TABLES`], filled with plausible and deterministic data for a seed.
//!
//! The file is read through the SQLite ODBC driver (`Driver=SQLite3;Database=<file>`), standing
//! in for the Microsoft Access driver in development, tests and the demo.
//!
//! # Shape
//! - Customers spread over the eleven mini-grid sites, connected over the history window (a fifth
//!   of them before it starts), about 5% terminated, about 3% with several accounts; ids follow
//!   connection order.
//! - One meter per account: the meters of the most recent customers are in `tblmeter` (about 33
//!   rows at the defaults, as in the live file), all others in `Copy Of tblmeter`.
//! - `tblaccounthistory1`: purchases from the customer's connection (or the window start) to
//!   [`history_end`] or termination; ≈250k rows at the defaults. `tblaccounthistoryOriginal`, the
//!   smaller archive, holds a copy of every purchase of the window's first year under its own ids.
//! - `tblconfig`: one row, the global tariff.
//! - `tblmeterdata1`: 10-minute readings of every 30th meter over the last three weeks.
//!
//! # Awkward data the legacy code meets (deterministic, see [`AWKWARD_CUSTOMERS`] and `stray`)
//! Every case below is present at the defaults; those tied to customer ids 1–13 are present as soon
//! as that many customers are generated.
//! - terminated customers (customer 4, and ~5% at random);
//! - several accounts per customer (customer 2, and ~3% at random);
//! - a lower-case account number everywhere it appears (customer 6), and history rows whose
//!   account is the lower-case spelling of an upper-case one (~0.1% of purchases);
//! - history rows with 2-character (`AK`) and 1-character (`5`) accounts, malformed accounts
//!   (`0045 MAK`, `MAK0045`, `45MAK`, ` 0045MAK `), NULL and empty accounts (see `Stray`);
//! - NULLs in many columns: a customer with nothing but an id and a site (customer 9); NULL
//!   phones, e-mails, middle names, GPS; history rows with NULL meter, kWh, rate, payment flag or
//!   balance; readings with NULL power;
//! - zero amounts (free-token adjustments) and negative amounts (reversals of a purchase);
//! - a quiet quarter: site TLH has no transactions in the fourth quarter of the window's first year;
//! - dates written as text by other tools: `03/04/2025` (`%m/%d/%Y`, customer 7 and every 97th) and
//!   date-only `2024-05-01` (customer 8 and every 89th) in `DATE SERVICE CONNECTED`, and
//!   `%m/%d/%Y` text in a few history rows;
//! - an unparseable date in a date column: `2024-02-30` in customer 5's `DATE SERVICE CONNECTED`;
//!   an empty string in customer 11's `DATE SERVICE TERMINATED` (the legacy reads it as active);
//! - history rows with a NULL transaction date;
//! - an account row with an impossible account number (`XX/??`);
//! - impossible values in typed non-key columns: `n/a` in customer 10's `GPS X`, `active` in the
//!   `current status` of customer 13's meter;
//! - names with surrounding spaces (customer 12), long names, and non-ASCII names
//!   (customer 3 is "Mokhotlong Ntšekhe").
//!
//! # Streaming
//! Customers are generated and inserted one by one through prepared statements inside large
//! transactions; only a handful of counters live across customers, so 130,000 customers
//! (≈25M history rows) take no more memory than 1,338.

mod names;

use std::fmt;
use std::fs::OpenOptions;
use std::path::Path;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, Timelike};
use domain::catalog::{ColumnKind, TableSpec, CAPTURED_TABLES};
use domain::site::KNOWN_SITES;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, Statement, ToSql};

use super::quote;
use crate::{Error, Result};

/// How big a synthetic ACDB to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateOptions {
    /// Number of customers (the live ACDB has 1,338).
    pub customers: u32,
    /// Years of transaction history, ending at [`history_end`].
    pub years: u32,
    /// The same seed (with the same sizes) always gives the same contents.
    pub seed: u64,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        GenerateOptions {
            customers: 1338,
            years: 4,
            seed: 1,
        }
    }
}

/// How far generation has got, reported as rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerateProgress {
    pub customers_done: u32,
    pub customers_total: u32,
    /// Rows written so far, all tables together.
    pub rows_written: u64,
}

impl fmt::Display for GenerateProgress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{} customers, {} rows written",
            self.customers_done, self.customers_total, self.rows_written
        )
    }
}

/// Rows written per table, in [`CAPTURED_TABLES`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSummary {
    pub tables: Vec<(&'static str, u64)>,
}

impl GenerateSummary {
    /// Rows written to `table` (0 for a table the generator does not know).
    pub fn rows(&self, table: &str) -> u64 {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map_or(0, |(_, n)| *n)
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

impl fmt::Display for GenerateSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (table, rows)) in self.tables.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{table:<28}{rows:>12} rows")?;
        }
        Ok(())
    }
}

/// The end of the generated history (exclusive): fixed, so that a seed gives the same file on any
/// day. The window covers the `years` full calendar years before it.
pub fn history_end() -> NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 1, 1)
        .expect("a valid date")
        .and_hms_opt(0, 0, 0)
        .expect("midnight")
}

/// Customers whose rows carry one of the documented awkward cases (module docs), by id.
pub const AWKWARD_CUSTOMERS: std::ops::RangeInclusive<u32> = 1..=13;

/// The global tariff written to `tblconfig` (LSL/kWh, 4 decimals).
pub const THE_RATE: &str = "5.0000";

/// The site that goes quiet (no transactions) for one quarter.
const QUIET_SITE: &str = "TLH";
/// Every this many meters, one is sampled for `tblmeterdata1`.
const READING_SAMPLE_EVERY: u64 = 30;
const READING_DAYS: i64 = 21;
/// Rows per SQLite transaction.
const ROWS_PER_COMMIT: u64 = 250_000;
/// Rows between progress reports.
const ROWS_PER_REPORT: u64 = 50_000;

/// Writes a synthetic ACDB to `path` (a new file: an existing file is never overwritten).
/// On failure the partly written file is removed.
pub fn generate(
    path: &Path,
    opts: &GenerateOptions,
    progress: &mut dyn FnMut(GenerateProgress),
) -> Result<GenerateSummary> {
    if opts.customers == 0 {
        return Err(Error::Generate(
            "the number of customers must be at least 1".into(),
        ));
    }
    if !(1..=50).contains(&opts.years) {
        return Err(Error::Generate(format!(
            "years must be between 1 and 50, not {}",
            opts.years
        )));
    }
    // create_new: refusing to overwrite is race-free, and the empty file is a valid empty database.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::Generate(format!(
                    "{} already exists; refusing to overwrite it",
                    path.display()
                ))
            } else {
                Error::io(format!("creating {}", path.display()), e)
            }
        })?;
    let result = generate_into(path, opts, progress);
    if result.is_err() {
        let _ = std::fs::remove_file(path);
    }
    result
}

fn generate_into(
    path: &Path,
    opts: &GenerateOptions,
    progress: &mut dyn FnMut(GenerateProgress),
) -> Result<GenerateSummary> {
    let sql_error = |e: rusqlite::Error| Error::Generate(format!("{}: {e}", path.display()));
    let conn = Connection::open(path).map_err(sql_error)?;
    // Nothing to protect while the file is being created: a failed run deletes it.
    conn.execute_batch(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-65536;",
    )
    .map_err(sql_error)?;
    for spec in CAPTURED_TABLES {
        conn.execute_batch(&create_table_sql(spec))
            .map_err(sql_error)?;
    }
    let plan = Plan::new(opts);
    let mut writer = Writer::new(&conn).map_err(sql_error)?;
    writer.begin().map_err(sql_error)?;
    writer
        .insert(Table::Config, &[Cell::Int(1), Cell::Str(THE_RATE)])
        .map_err(sql_error)?;
    let mut sites = SiteCounters::default();
    let mut reported = 0;
    for id in 1..=opts.customers {
        let mut rng = ChaCha8Rng::seed_from_u64(opts.seed);
        // One stream per customer: a customer's rows do not depend on how many came before.
        rng.set_stream(u64::from(id));
        let customer = Customer::new(id, &plan, &mut sites, &mut rng);
        write_customer(&mut writer, &plan, &customer, &mut rng).map_err(sql_error)?;
        if writer.rows_in_transaction >= ROWS_PER_COMMIT {
            writer.commit().map_err(sql_error)?;
            writer.begin().map_err(sql_error)?;
        }
        let written = writer.total();
        if written - reported >= ROWS_PER_REPORT || id == opts.customers {
            reported = written;
            progress(GenerateProgress {
                customers_done: id,
                customers_total: opts.customers,
                rows_written: written,
            });
        }
    }
    writer.commit().map_err(sql_error)?;
    let summary = writer.summary();
    drop(writer);
    conn.close().map_err(|(_, e)| sql_error(e))?;
    Ok(summary)
}

/// `CREATE TABLE` for a catalogued table, with declared types the SQLite ODBC driver reports
/// sensibly: INTEGER, TEXT, DATETIME, DECIMAL(19,4) (money and kWh; reported as text, typed by the
/// reader), DOUBLE (coordinates and power), BIT.
fn create_table_sql(spec: &TableSpec) -> String {
    let single_integer_key =
        spec.key.len() == 1 && spec.column_kind(spec.key[0]) == Some(ColumnKind::Int);
    let mut columns: Vec<String> = spec
        .columns
        .iter()
        .map(|c| {
            let declared = match c.kind {
                ColumnKind::Int => "INTEGER",
                ColumnKind::Text => "TEXT",
                ColumnKind::DateTime => "DATETIME",
                ColumnKind::Bool => "BIT",
                ColumnKind::Decimal if is_measured_float(c.name) => "DOUBLE",
                ColumnKind::Decimal => "DECIMAL(19,4)",
            };
            let key = if single_integer_key && c.name == spec.key[0] {
                " PRIMARY KEY"
            } else {
                ""
            };
            format!("{} {declared}{key}", quote(c.name))
        })
        .collect();
    if !single_integer_key {
        let key: Vec<String> = spec.key.iter().map(|k| quote(k)).collect();
        columns.push(format!("PRIMARY KEY ({})", key.join(", ")));
    }
    format!(
        "CREATE TABLE {} (\n  {}\n);",
        quote(spec.table),
        columns.join(",\n  ")
    )
}

/// Columns Access holds as Number (Double) rather than Currency.
fn is_measured_float(column: &str) -> bool {
    matches!(
        column,
        "GPS X" | "GPS Y" | "latitude" | "longitude" | "powerkW"
    )
}

/// The tables in [`CAPTURED_TABLES`] order.
#[derive(Debug, Clone, Copy)]
enum Table {
    Config,
    Customer,
    Account,
    Meter,
    MeterCopy,
    History,
    HistoryOriginal,
    Reading,
}

impl Table {
    const ALL: [Table; 8] = [
        Table::Config,
        Table::Customer,
        Table::Account,
        Table::Meter,
        Table::MeterCopy,
        Table::History,
        Table::HistoryOriginal,
        Table::Reading,
    ];

    fn spec(self) -> &'static TableSpec {
        let name = match self {
            Table::Config => "tblconfig",
            Table::Customer => "tblcustomer",
            Table::Account => "tblaccountnumbers",
            Table::Meter => "tblmeter",
            Table::MeterCopy => "Copy Of tblmeter",
            Table::History => "tblaccounthistory1",
            Table::HistoryOriginal => "tblaccounthistoryOriginal",
            Table::Reading => "tblmeterdata1",
        };
        domain::catalog::table_spec(name).expect("the generator's tables are catalogued")
    }
}

/// One cell to insert. Borrowed text avoids an allocation per cell on the 25M-row path.
enum Cell<'a> {
    Null,
    Int(i64),
    Str(&'a str),
    Owned(String),
}

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Cell::Null => ValueRef::Null,
            Cell::Int(i) => ValueRef::Integer(*i),
            Cell::Str(s) => ValueRef::Text(s.as_bytes()),
            Cell::Owned(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

fn opt_str(value: Option<&str>) -> Cell<'_> {
    value.map_or(Cell::Null, Cell::Str)
}

/// Prepared inserts, one per table, and the row counts.
struct Writer<'c> {
    conn: &'c Connection,
    inserts: Vec<Statement<'c>>,
    counts: [u64; 8],
    rows_in_transaction: u64,
    next_history_id: i64,
    next_original_id: i64,
}

impl<'c> Writer<'c> {
    fn new(conn: &'c Connection) -> rusqlite::Result<Self> {
        let inserts = Table::ALL
            .iter()
            .map(|t| {
                let spec = t.spec();
                let names: Vec<String> = spec.columns.iter().map(|c| quote(c.name)).collect();
                let marks = vec!["?"; names.len()].join(", ");
                conn.prepare(&format!(
                    "INSERT INTO {} ({}) VALUES ({marks})",
                    quote(spec.table),
                    names.join(", ")
                ))
            })
            .collect::<rusqlite::Result<_>>()?;
        Ok(Writer {
            conn,
            inserts,
            counts: [0; 8],
            rows_in_transaction: 0,
            next_history_id: 1,
            next_original_id: 1,
        })
    }

    /// Inserts one row; `cells` are in the catalogue's column order for the table.
    fn insert(&mut self, table: Table, cells: &[Cell<'_>]) -> rusqlite::Result<()> {
        debug_assert_eq!(
            cells.len(),
            table.spec().columns.len(),
            "{}",
            table.spec().table
        );
        self.inserts[table as usize].execute(rusqlite::params_from_iter(cells))?;
        self.counts[table as usize] += 1;
        self.rows_in_transaction += 1;
        Ok(())
    }

    fn begin(&mut self) -> rusqlite::Result<()> {
        self.conn.execute_batch("BEGIN")
    }

    fn commit(&mut self) -> rusqlite::Result<()> {
        self.rows_in_transaction = 0;
        self.conn.execute_batch("COMMIT")
    }

    fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn summary(&self) -> GenerateSummary {
        GenerateSummary {
            tables: Table::ALL
                .iter()
                .map(|t| (t.spec().table, self.counts[*t as usize]))
                .collect(),
        }
    }
}

/// The time frame of a generation.
struct Plan {
    customers: u32,
    /// First instant of the history window.
    start: NaiveDateTime,
    /// End of the window (exclusive).
    end: NaiveDateTime,
    /// Purchases before this are also archived in `tblaccounthistoryOriginal`.
    archive_until: NaiveDateTime,
    /// The quarter [from, to) in which [`QUIET_SITE`] has no transactions.
    quiet: (NaiveDateTime, NaiveDateTime),
    /// The tariff rose from 4.50 to 5.00 LSL/kWh at this instant.
    tariff_change: NaiveDateTime,
    readings_from: NaiveDateTime,
    /// Customers with this id or higher have their meters in `tblmeter`.
    first_tblmeter_customer: u32,
}

impl Plan {
    fn new(opts: &GenerateOptions) -> Self {
        let end = history_end();
        let start = add_months(end, -(opts.years as i32 * 12));
        let recent = opts.customers.div_ceil(4).min(33);
        Plan {
            customers: opts.customers,
            start,
            end,
            archive_until: add_months(start, 12),
            quiet: (add_months(start, 9), add_months(start, 12)),
            tariff_change: add_months(start, opts.years as i32 * 6),
            readings_from: end - Duration::days(READING_DAYS),
            first_tblmeter_customer: opts.customers - recent + 1,
        }
    }

    /// LSL/kWh × 10⁴ in force at `at` for a customer type.
    fn rate_e4(&self, at: NaiveDateTime, kind: CustomerType) -> i64 {
        let base = if at < self.tariff_change {
            45_000
        } else {
            50_000
        };
        if kind == CustomerType::Hh {
            base
        } else {
            base + 5_000
        }
    }
}

fn add_months(at: NaiveDateTime, months: i32) -> NaiveDateTime {
    let total = at.year() * 12 + at.month0() as i32 + months;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1)
        .expect("a first of month")
        .and_time(at.time())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CustomerType {
    Hh,
    Sme,
    Chu,
    Sch,
    Gov,
    Com,
    Scp,
}

impl CustomerType {
    fn code(self) -> &'static str {
        match self {
            CustomerType::Hh => "HH",
            CustomerType::Sme => "SME",
            CustomerType::Chu => "CHU",
            CustomerType::Sch => "SCH",
            CustomerType::Gov => "GOV",
            CustomerType::Com => "COM",
            CustomerType::Scp => "SCP",
        }
    }

    fn pick(rng: &mut ChaCha8Rng) -> Self {
        match rng.random_range(0..1000) {
            0..850 => CustomerType::Hh,
            850..930 => CustomerType::Sme,
            930..950 => CustomerType::Chu,
            950..970 => CustomerType::Sch,
            970..980 => CustomerType::Gov,
            980..990 => CustomerType::Com,
            _ => CustomerType::Scp,
        }
    }

    fn is_organisation(self) -> bool {
        matches!(
            self,
            CustomerType::Chu | CustomerType::Sch | CustomerType::Gov | CustomerType::Com
        )
    }
}

/// Site code, relative weight (customers), approximate latitude and longitude.
const SITES: &[(&str, u32, f64, f64)] = &[
    ("MAK", 22, -29.4512, 27.7385),
    ("MAS", 12, -29.6037, 28.7982),
    ("SHG", 10, -29.7011, 28.7605),
    ("LEB", 9, -29.9035, 28.9541),
    ("SEH", 8, -29.8813, 29.0998),
    ("MAT", 8, -29.0046, 28.9077),
    ("TLH", 6, -29.1009, 29.0511),
    ("TOS", 7, -30.1512, 28.0519),
    ("SEB", 7, -30.2487, 28.3516),
    ("RIB", 6, -29.8509, 27.7022),
    ("KET", 5, -29.9538, 28.1504),
];

/// Next account number per site, and the next meter serial.
#[derive(Default)]
struct SiteCounters {
    next_account: [u32; 11],
    meters: u64,
}

struct Account {
    number: String,
    meter: String,
    meter_seq: u64,
    opened: NaiveDateTime,
}

struct Customer {
    id: u32,
    site: usize,
    kind: CustomerType,
    first: Option<String>,
    middle: Option<String>,
    last: Option<String>,
    connected: NaiveDateTime,
    terminated: Option<NaiveDateTime>,
    accounts: Vec<Account>,
    village: &'static str,
    lat: f64,
    lon: f64,
}

impl Customer {
    fn new(id: u32, plan: &Plan, sites: &mut SiteCounters, rng: &mut ChaCha8Rng) -> Self {
        let total_weight: u32 = SITES.iter().map(|s| s.1).sum();
        let mut pick = rng.random_range(0..total_weight);
        let site = SITES
            .iter()
            .position(|s| {
                if pick < s.1 {
                    true
                } else {
                    pick -= s.1;
                    false
                }
            })
            .expect("a site within the total weight");
        let kind = CustomerType::pick(rng);
        let village = one_of(names::villages(SITES[site].0), rng);

        // Connections run from a year before the window to six weeks before its end, in id order
        // with a few days of jitter (ids are AutoNumbers, given when the record is typed in).
        let first = plan.start - Duration::days(365);
        let span = (plan.end - Duration::days(45) - first).num_days();
        let base =
            first + Duration::days(span * i64::from(id - 1) / i64::from(plan.customers.max(1)));
        let connected = (base + Duration::days(rng.random_range(-7..=7)))
            .date()
            .and_hms_opt(0, 0, 0)
            .expect("midnight");

        let terminated = (id == 4 || rng.random_bool(0.05)).then(|| {
            let earliest = connected.max(plan.start) + Duration::days(60);
            let days = (plan.end - earliest).num_days().max(1);
            (earliest + Duration::days(rng.random_range(0..days)))
                .date()
                .and_hms_opt(0, 0, 0)
                .expect("midnight")
        });
        let terminated = terminated.filter(|t| *t < plan.end);

        let (first_name, middle, last) = person_names(id, kind, village, rng);
        let account_count = if id == 2 {
            2
        } else if rng.random_bool(0.03) {
            rng.random_range(2..=3)
        } else {
            1
        };
        let code = SITES[site].0;
        let accounts = (0..account_count)
            .map(|n| {
                sites.next_account[site] += 1;
                sites.meters += 1;
                let mut number = format!("{:04}{code}", sites.next_account[site]);
                if id == 6 {
                    number.make_ascii_lowercase();
                }
                let opened =
                    connected + Duration::days(if n == 0 { 0 } else { rng.random_range(30..400) });
                Account {
                    number,
                    meter: format!("SMRSD-26-{:08}", sites.meters),
                    meter_seq: sites.meters,
                    opened: opened.min(plan.end - Duration::days(10)),
                }
            })
            .collect();
        Customer {
            id,
            site,
            kind,
            first: first_name,
            middle,
            last,
            connected,
            terminated,
            accounts,
            village,
            lat: SITES[site].2 + rng.random_range(-0.02..0.02),
            lon: SITES[site].3 + rng.random_range(-0.02..0.02),
        }
    }

    fn site_code(&self) -> &'static str {
        SITES[self.site].0
    }
}

fn person_names(
    id: u32,
    kind: CustomerType,
    village: &str,
    rng: &mut ChaCha8Rng,
) -> (Option<String>, Option<String>, Option<String>) {
    match id {
        3 => {
            return (
                Some("Mokhotlong".into()),
                Some("Relebohile-'Mamosa".into()),
                Some("Ntšekhe".into()),
            )
        }
        9 => return (None, None, None),
        12 => return (Some("Thabo ".into()), None, Some("  Mokoena".into())),
        _ => {}
    }
    if kind.is_organisation() {
        let name = match kind {
            CustomerType::Sch => format!("{village} Primary School"),
            CustomerType::Chu => format!("St. {}'s Church", one_of(names::SAINTS, rng)),
            CustomerType::Gov => format!("{village} Health Centre"),
            _ => format!("{village} General Dealer"),
        };
        return (Some(name), None, None);
    }
    let female = rng.random_bool(0.5);
    let given = |rng: &mut ChaCha8Rng| {
        let given_names = if rng.random_bool(0.01) {
            names::LONG_GIVEN_NAMES
        } else if female {
            names::FEMALE_NAMES
        } else {
            names::MALE_NAMES
        };
        one_of(given_names, rng).to_string()
    };
    let first = given(rng);
    let middle = rng.random_bool(0.4).then(|| given(rng));
    let surnames = if rng.random_bool(0.02) {
        names::LONG_SURNAMES
    } else {
        names::SURNAMES
    };
    let last = one_of(surnames, rng).to_string();
    (Some(first), middle, Some(last))
}

fn write_customer(
    w: &mut Writer<'_>,
    plan: &Plan,
    c: &Customer,
    rng: &mut ChaCha8Rng,
) -> rusqlite::Result<()> {
    write_customer_row(w, c, rng)?;
    for account in &c.accounts {
        w.insert(
            Table::Account,
            &[
                Cell::Str(&account.number),
                Cell::Int(i64::from(c.id)),
                Cell::Str(&account.meter),
                Cell::Str(c.site_code()),
                Cell::Owned(datetime_text(account.opened)),
                Cell::Str(one_of(names::STAFF, rng)),
            ],
        )?;
        write_meter(w, plan, c, account, rng)?;
    }
    if c.id == 1 {
        // An account row no key can be made of (tblaccountnumbers has a text key, so SQLite keeps it).
        w.insert(
            Table::Account,
            &[
                Cell::Str("XX/??"),
                Cell::Int(1),
                Cell::Null,
                Cell::Str(c.site_code()),
                Cell::Null,
                Cell::Str("admin"),
            ],
        )?;
    }
    for account in &c.accounts {
        write_history(w, plan, c, account, rng)?;
    }
    if c.id == 1 {
        for (i, kind) in Stray::ALL.iter().enumerate() {
            write_stray(w, plan, c, *kind, i as u64, rng)?;
        }
    } else if c.id.is_multiple_of(50) {
        let kind = Stray::ALL[(c.id / 50) as usize % Stray::ALL.len()];
        write_stray(w, plan, c, kind, u64::from(c.id), rng)?;
    }
    for account in &c.accounts {
        write_readings(w, plan, c, account, rng)?;
    }
    Ok(())
}

fn write_customer_row(
    w: &mut Writer<'_>,
    c: &Customer,
    rng: &mut ChaCha8Rng,
) -> rusqlite::Result<()> {
    let empty = c.id == 9;
    let phone = |rng: &mut ChaCha8Rng, p: f64| (!empty && rng.random_bool(p)).then(|| phone(rng));
    let (phone_1, cell_1, cell_2) = (phone(rng, 0.3), phone(rng, 0.9), phone(rng, 0.2));
    let email = match (&c.first, &c.last) {
        (Some(f), Some(l)) if rng.random_bool(0.1) => Some(format!(
            "{}.{}@gmail.com",
            names::ascii_login(f),
            names::ascii_login(l)
        )),
        _ => None,
    };
    let account = &c.accounts[0];
    let number = account
        .number
        .trim_end_matches(|ch: char| ch.is_ascii_alphabetic());
    let plot = if empty || rng.random_bool(0.01) {
        None
    } else if rng.random_bool(0.03) {
        Some(format!("{} {number}B {}", c.site_code(), c.kind.code()))
    } else if rng.random_bool(0.02) {
        Some(format!("{} {number}", c.site_code()))
    } else {
        Some(format!("{} {number} {}", c.site_code(), c.kind.code()))
    };
    let street =
        (!empty && rng.random_bool(0.1)).then(|| format!("Village {}", rng.random_range(1..40)));
    let connected = if empty {
        None
    } else if c.id == 5 {
        Some("2024-02-30".to_string())
    } else if c.id == 7 || c.id.is_multiple_of(97) {
        Some(c.connected.format("%m/%d/%Y").to_string())
    } else if c.id == 8 || c.id.is_multiple_of(89) {
        Some(c.connected.format("%Y-%m-%d").to_string())
    } else {
        Some(datetime_text(c.connected))
    };
    let terminated = if c.id == 11 {
        Some(String::new())
    } else {
        c.terminated.map(datetime_text)
    };
    let id_number = match rng.random_range(0..10) {
        _ if empty => None,
        0..6 => Some(format!(
            "{:012}",
            rng.random_range(10_000_000_000u64..99_999_999_999)
        )),
        6 => Some(format!("RA{:07}", rng.random_range(0..10_000_000))),
        _ => None,
    };
    let gps_x = if c.id == 10 {
        Some("n/a".to_string())
    } else {
        (!empty && rng.random_bool(0.95)).then(|| format!("{:.6}", c.lon))
    };
    let gps_y = (!empty && c.id != 10 && rng.random_bool(0.95)).then(|| format!("{:.6}", c.lat));
    let gender = if c.kind.is_organisation() || empty || rng.random_bool(0.1) {
        None
    } else {
        Some(if rng.random_bool(0.5) {
            "Female"
        } else {
            "Male"
        })
    };
    let created = c.connected - Duration::days(rng.random_range(1..10))
        + Duration::seconds(rng.random_range(28_800..61_200));
    let district = KNOWN_SITES
        .iter()
        .find(|s| s.code == c.site_code())
        .map(|s| s.district);
    let concession = if rng.random_bool(0.01) {
        c.site_code().to_ascii_lowercase()
    } else {
        c.site_code().to_string()
    };
    w.insert(
        Table::Customer,
        &[
            Cell::Int(i64::from(c.id)),
            opt_str(c.first.as_deref()),
            opt_str(c.middle.as_deref()),
            opt_str(c.last.as_deref()),
            phone_1.map_or(Cell::Null, |p| p),
            cell_1.map_or(Cell::Null, |p| p),
            cell_2.map_or(Cell::Null, |p| p),
            opt_str(email.as_deref()),
            opt_str(plot.as_deref()),
            opt_str(street.as_deref()),
            if empty {
                Cell::Null
            } else {
                Cell::Str(c.village)
            },
            if empty { Cell::Null } else { opt_str(district) },
            Cell::Owned(concession),
            opt_str(connected.as_deref()),
            opt_str(terminated.as_deref()),
            opt_str(id_number.as_deref()),
            if empty {
                Cell::Null
            } else {
                Cell::Str(c.kind.code())
            },
            opt_str(gps_x.as_deref()),
            opt_str(gps_y.as_deref()),
            opt_str(gender),
            if empty || rng.random_bool(0.1) {
                Cell::Null
            } else {
                Cell::Str("Lesotho")
            },
            if empty {
                Cell::Null
            } else {
                Cell::Owned(datetime_text(created))
            },
            if empty {
                Cell::Null
            } else {
                Cell::Str(one_of(names::STAFF, rng))
            },
        ],
    )
}

/// A Lesotho mobile number in one of the forms the legacy data holds: a bare number (the
/// columns were once INTEGER, `crud.py` strips prefixes to fit), `+266 5812 3456`, a leading 0,
/// or the country code without or with `+`.
fn phone(rng: &mut ChaCha8Rng) -> Cell<'static> {
    let number: u32 = rng.random_range(0..10_000_000)
        + if rng.random_bool(0.6) {
            50_000_000
        } else {
            60_000_000
        };
    match rng.random_range(0..100) {
        0..35 => Cell::Int(i64::from(number)),
        35..55 => Cell::Owned(format!("+266 {} {}", number / 10_000, number % 10_000)),
        55..75 => Cell::Owned(format!("0{number}")),
        75..90 => Cell::Owned(format!("266{number}")),
        _ => Cell::Owned(format!("+266{number}")),
    }
}

fn write_meter(
    w: &mut Writer<'_>,
    plan: &Plan,
    c: &Customer,
    a: &Account,
    rng: &mut ChaCha8Rng,
) -> rusqlite::Result<()> {
    let table = if c.id >= plan.first_tblmeter_customer {
        Table::Meter
    } else {
        Table::MeterCopy
    };
    let status = if c.id == 13 {
        Cell::Str("active")
    } else if c.terminated.is_some() {
        Cell::Int(0)
    } else {
        Cell::Int(1)
    };
    let village = rng.random_bool(0.9).then_some(c.village);
    w.insert(
        table,
        &[
            Cell::Str(&a.meter),
            Cell::Str(&a.number),
            Cell::Int(i64::from(c.id)),
            Cell::Str(c.kind.code()),
            Cell::Str(c.site_code()),
            Cell::Owned(format!("{:.6}", c.lat + rng.random_range(-0.0005..0.0005))),
            Cell::Owned(format!("{:.6}", c.lon + rng.random_range(-0.0005..0.0005))),
            opt_str(village),
            status,
            Cell::Owned(datetime_text(a.opened)),
            Cell::Owned(datetime_text(
                a.opened + Duration::seconds(rng.random_range(28_800..61_200)),
            )),
            Cell::Str(one_of(names::STAFF, rng)),
        ],
    )
}

/// One `tblaccounthistory1` row before formatting. Amounts, kWh and rates are × 10⁴.
struct Txn<'a> {
    account: Option<String>,
    meter: Option<&'a str>,
    at: Option<String>,
    amount_e4: i64,
    kwh_e4: Option<i64>,
    rate_e4: Option<i64>,
    payment: Option<i64>,
    balance_e4: Option<i64>,
}

impl Txn<'_> {
    fn insert(&self, w: &mut Writer<'_>, table: Table) -> rusqlite::Result<()> {
        let id = match table {
            Table::HistoryOriginal => &mut w.next_original_id,
            _ => &mut w.next_history_id,
        };
        let row_id = *id;
        *id += 1;
        w.insert(
            table,
            &[
                Cell::Int(row_id),
                opt_str(self.account.as_deref()),
                opt_str(self.meter),
                opt_str(self.at.as_deref()),
                Cell::Owned(fixed4(self.amount_e4)),
                self.kwh_e4.map_or(Cell::Null, |k| Cell::Owned(fixed4(k))),
                self.rate_e4.map_or(Cell::Null, |r| Cell::Owned(fixed4(r))),
                self.payment.map_or(Cell::Null, Cell::Int),
                self.balance_e4
                    .map_or(Cell::Null, |b| Cell::Owned(fixed4(b))),
            ],
        )
    }
}

/// Purchases of one account from its opening (or the window start) to the end or termination.
fn write_history(
    w: &mut Writer<'_>,
    plan: &Plan,
    c: &Customer,
    a: &Account,
    rng: &mut ChaCha8Rng,
) -> rusqlite::Result<()> {
    let stop = c.terminated.unwrap_or(plan.end).min(plan.end);
    let purchases_per_month: f64 =
        rng.random_range(2.4..9.6) * if c.kind == CustomerType::Hh { 1.0 } else { 1.4 };
    let typical_kwh = typical_amount_e4(c.kind) as f64 / 45_000.0;
    let daily_kwh = purchases_per_month * typical_kwh / 30.4 * rng.random_range(0.85..1.0);
    let mean_gap_days = 30.4 / purchases_per_month;
    let mut at = a.opened.max(plan.start);
    let mut balance_e4: i64 = 0;
    loop {
        let gap_days = (-rng.random::<f64>().max(1e-9).ln() * mean_gap_days).max(0.02);
        at += Duration::seconds((gap_days * 86_400.0) as i64);
        // Purchases happen in shop hours.
        let at_shop = at.date().and_hms_opt(0, 0, 0).expect("midnight")
            + Duration::seconds(rng.random_range(25_200..68_400));
        if at_shop >= stop {
            break;
        }
        let consumed = (daily_kwh * gap_days * rng.random_range(0.8..1.2) * 10_000.0) as i64;
        balance_e4 = (balance_e4 - consumed).max(0);
        if c.site_code() == QUIET_SITE && at_shop >= plan.quiet.0 && at_shop < plan.quiet.1 {
            continue;
        }
        let rate_e4 = plan.rate_e4(at_shop, c.kind);
        let zero = rng.random_bool(0.002);
        let amount_e4 = if zero {
            0
        } else {
            purchase_amount_e4(c.kind, rng)
        };
        // A zero-amount row is a free token (a goodwill adjustment): kWh without payment.
        let kwh_e4 = if zero {
            50_000
        } else {
            div_round(amount_e4 * 10_000, rate_e4)
        };
        balance_e4 += kwh_e4;
        let account = if rng.random_bool(0.001) {
            a.number.to_lowercase()
        } else {
            a.number.clone()
        };
        let txn = Txn {
            account: Some(account),
            meter: (!rng.random_bool(0.002)).then_some(a.meter.as_str()),
            at: Some(datetime_text(at_shop)),
            amount_e4,
            kwh_e4: (!rng.random_bool(0.001)).then_some(kwh_e4),
            rate_e4: (!rng.random_bool(0.001)).then_some(rate_e4),
            payment: if zero {
                Some(0)
            } else {
                match rng.random_range(0..1000) {
                    0..10 => Some(-1),
                    10..15 => None,
                    _ => Some(1),
                }
            },
            balance_e4: (!rng.random_bool(0.01)).then_some(balance_e4 / 100 * 100),
        };
        txn.insert(w, Table::History)?;
        if at_shop < plan.archive_until {
            txn.insert(w, Table::HistoryOriginal)?;
        }
        if !zero && rng.random_bool(0.004) {
            // The purchase is reversed a few minutes later: negative amount and kWh.
            balance_e4 = (balance_e4 - kwh_e4).max(0);
            let reversal = Txn {
                at: Some(datetime_text(
                    at_shop + Duration::seconds(rng.random_range(60..900)),
                )),
                amount_e4: -amount_e4,
                kwh_e4: Some(-kwh_e4),
                payment: Some(0),
                balance_e4: Some(balance_e4 / 100 * 100),
                ..txn
            };
            reversal.insert(w, Table::History)?;
        }
        at = at_shop;
    }
    Ok(())
}

fn typical_amount_e4(kind: CustomerType) -> i64 {
    if kind == CustomerType::Hh {
        400_000
    } else {
        1_500_000
    }
}

/// One element of `list`, one of the generator's constant lists (none of them is empty).
fn one_of<T: Copy>(list: &[T], rng: &mut ChaCha8Rng) -> T {
    *list
        .choose(rng)
        .expect("the generator's lists are constants, none of them empty")
}

/// LSL × 10⁴: mostly round amounts, some with cents, a few with four decimals (Access Currency).
fn purchase_amount_e4(kind: CustomerType, rng: &mut ChaCha8Rng) -> i64 {
    const HOUSEHOLD: &[i64] = &[
        10, 15, 20, 20, 25, 30, 30, 40, 50, 50, 60, 75, 100, 150, 200,
    ];
    const BUSINESS: &[i64] = &[50, 100, 100, 150, 200, 250, 300, 500];
    let amounts = if kind == CustomerType::Hh {
        HOUSEHOLD
    } else {
        BUSINESS
    };
    let lsl = one_of(amounts, rng);
    match rng.random_range(0..1000) {
        0..5 => [166_667, 333_333, 123_456, 87_655][rng.random_range(0..4)],
        5..55 => lsl * 10_000 + 5_000,
        _ => lsl * 10_000,
    }
}

fn div_round(numerator: i64, denominator: i64) -> i64 {
    (numerator + denominator / 2) / denominator
}

/// History rows that no well-formed account produced, as found in the live file.
#[derive(Debug, Clone, Copy)]
enum Stray {
    /// A 2-character account (`AK`): the legacy "site" is then 2 characters.
    TwoCharacterAccount,
    /// A 1-character account (`5`): the legacy analytics drop it.
    OneCharacterAccount,
    /// `0045 MAK`
    SpaceInside,
    /// `MAK0045`
    SiteFirst,
    /// `45MAK`
    Unpadded,
    /// ` 0045MAK `
    SurroundingSpaces,
    /// No account at all.
    NullAccount,
    EmptyAccount,
    /// The transaction date is NULL.
    NullDate,
    /// The transaction date is text `%m/%d/%Y`, as typed into a text-bound form.
    SlashedDate,
}

impl Stray {
    const ALL: [Stray; 10] = [
        Stray::TwoCharacterAccount,
        Stray::OneCharacterAccount,
        Stray::SpaceInside,
        Stray::SiteFirst,
        Stray::Unpadded,
        Stray::SurroundingSpaces,
        Stray::NullAccount,
        Stray::EmptyAccount,
        Stray::NullDate,
        Stray::SlashedDate,
    ];
}

fn write_stray(
    w: &mut Writer<'_>,
    plan: &Plan,
    c: &Customer,
    kind: Stray,
    salt: u64,
    rng: &mut ChaCha8Rng,
) -> rusqlite::Result<()> {
    let a = &c.accounts[0];
    let code = c.site_code();
    let digits = a
        .number
        .trim_end_matches(|ch: char| ch.is_ascii_alphabetic());
    let window = (plan.end - plan.start).num_seconds();
    let at = plan.start + Duration::seconds(rng.random_range(0..window));
    let account = match kind {
        Stray::TwoCharacterAccount => Some(code[1..].to_string()),
        Stray::OneCharacterAccount => Some(((salt % 9) + 1).to_string()),
        Stray::SpaceInside => Some(format!("{digits} {code}")),
        Stray::SiteFirst => Some(format!("{code}{digits}")),
        Stray::Unpadded => Some(format!("{}{code}", digits.trim_start_matches('0'))),
        Stray::SurroundingSpaces => Some(format!(" {} ", a.number)),
        Stray::NullAccount => None,
        Stray::EmptyAccount => Some(String::new()),
        Stray::NullDate | Stray::SlashedDate => Some(a.number.clone()),
    };
    let at = match kind {
        Stray::NullDate => None,
        Stray::SlashedDate => Some(at.format("%m/%d/%Y").to_string()),
        _ => Some(datetime_text(at)),
    };
    let amount_e4 = purchase_amount_e4(c.kind, rng);
    let rate_e4 = 50_000;
    Txn {
        account,
        meter: Some(&a.meter),
        at,
        amount_e4,
        kwh_e4: Some(div_round(amount_e4 * 10_000, rate_e4)),
        rate_e4: Some(rate_e4),
        payment: Some(1),
        balance_e4: None,
    }
    .insert(w, Table::History)
}

/// 10-minute readings of a sampled meter over the last [`READING_DAYS`] days.
fn write_readings(
    w: &mut Writer<'_>,
    plan: &Plan,
    c: &Customer,
    a: &Account,
    rng: &mut ChaCha8Rng,
) -> rusqlite::Result<()> {
    if a.meter_seq % READING_SAMPLE_EVERY != 1
        || a.opened >= plan.readings_from
        || c.terminated.is_some()
    {
        return Ok(());
    }
    let base_w: i64 = if c.kind == CustomerType::Hh {
        rng.random_range(50..400)
    } else {
        rng.random_range(500..2_000)
    };
    let mut at = plan.readings_from;
    while at < plan.end {
        // Evening peak, morning shoulder, low night load.
        let profile = match at.hour() {
            0..5 => 30,
            5..7 => 70,
            7..10 => 120,
            10..17 => 60,
            17..18 => 110,
            18..22 => 180,
            _ => 80,
        };
        let watts = base_w * profile / 100 * rng.random_range(70..130) / 100;
        let power =
            (!rng.random_bool(0.002)).then(|| format!("{}.{:03}", watts / 1000, watts % 1000));
        w.insert(
            Table::Reading,
            &[
                Cell::Str(&a.meter),
                Cell::Owned(datetime_text(at)),
                opt_str(power.as_deref()),
                Cell::Str(c.site_code()),
            ],
        )?;
        at += Duration::minutes(10);
    }
    Ok(())
}

/// `YYYY-MM-DD HH:MM:SS`: the one stored form, so that text comparison is chronological.
fn datetime_text(at: NaiveDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        at.year(),
        at.month(),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A value × 10⁴ as decimal text with four places: `-123456` → `-12.3456`.
fn fixed4(value_e4: i64) -> String {
    let sign = if value_e4 < 0 { "-" } else { "" };
    let abs = value_e4.unsigned_abs();
    format!("{sign}{}.{:04}", abs / 10_000, abs % 10_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_point_text_keeps_four_places_and_the_sign() {
        assert_eq!(fixed4(123_456), "12.3456");
        assert_eq!(fixed4(-5_000), "-0.5000");
        assert_eq!(fixed4(0), "0.0000");
    }

    #[test]
    fn months_are_added_across_years() {
        let at = NaiveDate::from_ymd_opt(2026, 1, 1)
            .unwrap()
            .and_hms_opt(0, 0, 0)
            .unwrap();
        assert_eq!(
            add_months(at, -48).date(),
            NaiveDate::from_ymd_opt(2022, 1, 1).unwrap()
        );
        assert_eq!(
            add_months(at, -3).date(),
            NaiveDate::from_ymd_opt(2025, 10, 1).unwrap()
        );
    }

    #[test]
    fn the_schema_declares_the_catalogue_keys() {
        let customer = create_table_sql(domain::catalog::table_spec("tblcustomer").unwrap());
        assert!(
            customer.contains("[CUSTOMER ID] INTEGER PRIMARY KEY"),
            "{customer}"
        );
        let readings = create_table_sql(domain::catalog::table_spec("tblmeterdata1").unwrap());
        assert!(
            readings.contains("PRIMARY KEY ([meterid], [whdatetime])"),
            "{readings}"
        );
        assert!(readings.contains("[powerkW] DOUBLE"), "{readings}");
        let history = create_table_sql(domain::catalog::table_spec("tblaccounthistory1").unwrap());
        assert!(
            history.contains("[transaction amount] DECIMAL(19,4)"),
            "{history}"
        );
        assert!(history.contains("[payment] BIT"), "{history}");
    }

    #[test]
    fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acdb.sqlite");
        std::fs::write(&path, b"precious").unwrap();
        let opts = GenerateOptions {
            customers: 2,
            years: 1,
            seed: 1,
        };
        let err = generate(&path, &opts, &mut |_| {}).unwrap_err();
        assert!(err.to_string().contains("already exists"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    }

    #[test]
    fn the_default_size_gives_about_a_quarter_million_history_rows_quickly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acdb.sqlite");
        let started = std::time::Instant::now();
        let mut reports = 0;
        let summary = generate(&path, &GenerateOptions::default(), &mut |_| reports += 1).unwrap();
        let elapsed = started.elapsed();
        eprintln!("default generation: {elapsed:?}\n{summary}");
        let history = summary.rows("tblaccounthistory1");
        assert!(
            (225_000..=275_000).contains(&history),
            "{history} history rows"
        );
        assert_eq!(summary.rows("tblcustomer"), 1338);
        assert_eq!(summary.rows("tblconfig"), 1);
        assert!((25..=45).contains(&summary.rows("tblmeter")), "{summary}");
        let readings = summary.rows("tblmeterdata1");
        assert!(
            (50_000..=150_000).contains(&readings),
            "{readings} readings"
        );
        let archive = summary.rows("tblaccounthistoryOriginal");
        assert!(
            archive > 0 && archive < history / 2,
            "{archive} archived rows"
        );
        assert!(reports >= 2);
    }
}
