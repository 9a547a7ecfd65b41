//! Reading an `.accdb`/`.mdb` file directly, without ODBC, through the pure-Rust `jetdb` crate:
//! the way to import a copy of the ACDB on Linux, where no Access driver exists (the mdbtools
//! ODBC driver cannot sort, filter or bind parameters, and misreads money and extreme dates).
//!
//! # Memory
//! A file has no query engine, so filtering and key order are done here, in two passes over the
//! table: the first reads only the key (and filter) columns of every row and sorts the matching
//! rows' keys with their positions in the file; the second reads the rows whole, one batch at a
//! time, in key order. Memory therefore grows with the number of rows (a key and a position per
//! row, tens of bytes), never with their contents. That suits the one-off import this reader is
//! for; live change capture runs over ODBC.
//!
//! # Values
//! - Currency (Money) and Numeric: the exact decimal jetdb decodes, four places kept (`1995.5000`);
//! - Date/Time: the OLE automation day number (days since 1899-12-30, the time of day being the
//!   absolute fraction, also before the epoch, as Access shows it), rounded to the second; dates
//!   outside what `NaiveDateTime` holds, and NaN or infinite numbers, become the text
//!   `OLE date <number>` so that they are kept, not dropped;
//! - Byte, Integer, Long Integer, Large Number: `Int`; Yes/No: `Bool`;
//! - Single and Double: `Decimal` from the shortest text that reads back as the same binary
//!   number (`0.1f32` is `0.1`, not `0.100000001490116`), i.e. the number a person typed; a value
//!   no `Decimal` holds exactly (beyond 28 digits, NaN) is kept as that text;
//! - Text, Memo, Replication ID: `Text`; OLE Object and Binary: `Bytes`; NULL: `Null`.
//!
//! Columns of the catalogue are then brought to the catalogue's kind exactly as the ODBC reader
//! types them ([`super::typing::coerce`]), so both readers produce the same rows.
//!
//! Text keys sort by bytes here, not ignoring case as Access does; resuming with
//! [`ScanFilter::KeyAfter`] is exact within this reader.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{Duration, NaiveDate, NaiveDateTime};
use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::{ColumnKind, KeyPart, RowKey, TableSpec};
use jetdb::{
    ColumnType, FileError, ObjectType, PageReader, RowPosition, TableDef, TableRows, Value,
};
use rust_decimal::Decimal;

use super::typing::{coerce, parse_decimal};
use super::{AcdbReader, ColumnInfo, Dialect, Scan, ScanFilter};
use crate::{Error, Result};

/// An `.accdb` or `.mdb` file opened for reading.
pub struct FileReader {
    path: PathBuf,
    reader: PageReader,
    /// User tables (no system or hidden ones): name and first table-definition page.
    tables: Vec<(String, u32)>,
}

impl FileReader {
    /// Opens `path` and reads its catalogue; the file is only ever read.
    pub fn open(path: &Path) -> Result<Self> {
        let file_error = |e: FileError| Error::AcdbFile {
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let mut reader = PageReader::open(path).map_err(file_error)?;
        let catalog = jetdb::read_catalog(&mut reader).map_err(file_error)?;
        let tables = catalog
            .into_iter()
            .filter(|e| {
                e.object_type == ObjectType::Table
                    && !e.is_system_or_hidden()
                    && !e.name.starts_with("MSys")
            })
            .map(|e| (e.name, e.table_page))
            .collect();
        Ok(FileReader {
            path: path.to_path_buf(),
            reader,
            tables,
        })
    }

    fn file_error(&self, e: FileError) -> Error {
        Error::AcdbFile {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    /// The definition of `table`, matched ignoring case as Access does.
    fn table_def(&mut self, table: &str) -> Result<TableDef> {
        let (name, page) = self
            .tables
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(table))
            .cloned()
            .ok_or_else(|| Error::AcdbTableMissing {
                table: table.to_string(),
            })?;
        jetdb::read_table_def(&mut self.reader, &name, page).map_err(|e| self.file_error(e))
    }
}

impl AcdbReader for FileReader {
    fn dialect(&self) -> Dialect {
        Dialect::File
    }

    fn tables(&mut self) -> Result<Vec<String>> {
        Ok(self.tables.iter().map(|(name, _)| name.clone()).collect())
    }

    fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>> {
        let tdef = self.table_def(table)?;
        Ok(tdef
            .columns
            .iter()
            .map(|c| ColumnInfo {
                name: c.name.clone(),
                kind: kind_of(&c.col_type),
            })
            .collect())
    }

    fn count_rows(&mut self, table: &str) -> Result<u64> {
        let tdef = self.table_def(table)?;
        let calculated = HashMap::new();
        // No columns read: this only walks the row pointers (deleted rows are passed over).
        let mut rows = TableRows::new(&tdef, &calculated).with_columns(&[]);
        let mut count = 0;
        while rows
            .next_row(&mut self.reader)
            .map_err(|e| self.file_error(e))?
            .is_some()
        {
            count += 1;
        }
        Ok(count)
    }

    fn scan(
        &mut self,
        spec: &TableSpec,
        scan: &Scan,
        on_batch: &mut dyn FnMut(Vec<AcdbRow>) -> bool,
    ) -> Result<()> {
        let tdef = self.table_def(spec.table)?;
        let calculated = jetdb::calculated_column_types(&mut self.reader, &tdef);
        let column_index = |name: &str| {
            tdef.columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
        };
        let missing = |name: &str| Error::AcdbQuery {
            table: tdef.name.clone(),
            message: format!("column {name:?} is not in the file's table"),
        };
        let mut wanted = Vec::new();
        for key in spec.key {
            wanted.push(column_index(key).ok_or_else(|| missing(key))?);
        }
        if let ScanFilter::AtLeast { column, .. } = &scan.filter {
            wanted.push(column_index(column).ok_or_else(|| missing(column))?);
        }

        // Pass 1: the key of every matching row, with its position.
        let mut selected: Vec<(Option<RowKey>, RowPosition)> = Vec::new();
        let mut rows = TableRows::new(&tdef, &calculated).with_columns(&wanted);
        while let Some(row) = rows
            .next_row(&mut self.reader)
            .map_err(|e| self.file_error(e))?
        {
            let partial = to_row(spec, &tdef, &row.values, Some(&wanted));
            let key = spec.row_key(&partial).ok();
            if matches_filter(&scan.filter, key.as_ref(), &partial) {
                selected.push((key, row.position));
            }
        }
        rows.warn_skipped(&tdef.name);
        // Rows without a usable key first, as Access and SQLite sort NULLs first; then file order.
        selected.sort_by(|a, b| match (&a.0, &b.0) {
            (None, None) => a.1.cmp(&b.1),
            (None, Some(_)) => Ordering::Less,
            (Some(_), None) => Ordering::Greater,
            (Some(x), Some(y)) => x.cmp(y).then(a.1.cmp(&b.1)),
        });

        // Pass 2: whole rows, one batch at a time, in key order.
        for chunk in selected.chunks(scan.batch_size.max(1)) {
            let mut batch = Vec::with_capacity(chunk.len());
            for (_, position) in chunk {
                let values =
                    jetdb::read_row_at(&mut self.reader, &tdef, &calculated, *position, None)
                        .map_err(|e| self.file_error(e))?;
                // The file does not change while it is read, so a row found in pass 1 is there.
                if let Some(values) = values {
                    batch.push(to_row(spec, &tdef, &values, None));
                }
            }
            if !on_batch(batch) {
                return Ok(());
            }
        }
        Ok(())
    }
}

/// A row of `tdef` as an [`AcdbRow`]; with `only`, just those columns (the others were not read).
fn to_row(spec: &TableSpec, tdef: &TableDef, values: &[Value], only: Option<&[usize]>) -> AcdbRow {
    let mut row = AcdbRow::new();
    for (i, (column, value)) in tdef.columns.iter().zip(values).enumerate() {
        if only.is_some_and(|only| !only.contains(&i)) {
            continue;
        }
        let native = native_value(value);
        let typed = match spec.column_kind(&column.name) {
            Some(kind) => coerce(native, kind),
            None => native,
        };
        row.insert(column.name.clone(), typed);
    }
    row
}

fn matches_filter(filter: &ScanFilter, key: Option<&RowKey>, row: &AcdbRow) -> bool {
    match filter {
        ScanFilter::All => true,
        ScanFilter::KeyAfter(after) => key.is_some_and(|k| k > after),
        ScanFilter::KeyEquals(wanted) => key.is_some_and(|k| k == wanted),
        ScanFilter::AtLeast { column, value } => at_least(row.get(column), value),
    }
}

/// `value >= bound` as SQL compares them: NULL and values of another type never match.
fn at_least(value: &AcdbValue, bound: &KeyPart) -> bool {
    match (value, bound) {
        (AcdbValue::Int(v), KeyPart::Int(b)) => v >= b,
        (AcdbValue::Decimal { decimal }, KeyPart::Int(b)) => *decimal >= Decimal::from(*b),
        (AcdbValue::DateTime { datetime }, KeyPart::DateTime(b)) => datetime >= b,
        (AcdbValue::Text(v), KeyPart::Text(b)) => v.as_str() >= b.as_str(),
        _ => false,
    }
}

fn kind_of(column_type: &ColumnType) -> Option<ColumnKind> {
    match column_type {
        ColumnType::Boolean => Some(ColumnKind::Bool),
        ColumnType::Byte | ColumnType::Int | ColumnType::Long | ColumnType::BigInt => {
            Some(ColumnKind::Int)
        }
        ColumnType::Money | ColumnType::Float | ColumnType::Double | ColumnType::Numeric => {
            Some(ColumnKind::Decimal)
        }
        ColumnType::Timestamp | ColumnType::DateTimeExtended => Some(ColumnKind::DateTime),
        ColumnType::Text | ColumnType::Memo | ColumnType::Guid => Some(ColumnKind::Text),
        _ => None,
    }
}

/// A jetdb value as ccare's value, by its type in the file (module docs).
fn native_value(value: &Value) -> AcdbValue {
    match value {
        Value::Null => AcdbValue::Null,
        Value::Bool(b) => AcdbValue::Bool(*b),
        Value::Byte(b) => AcdbValue::Int(i64::from(*b)),
        Value::Int(i) => AcdbValue::Int(i64::from(*i)),
        Value::Long(i) => AcdbValue::Int(i64::from(*i)),
        Value::BigInt(i) => AcdbValue::Int(*i),
        Value::Float(f) => shortest_decimal(f.to_string()),
        Value::Double(f) => shortest_decimal(f.to_string()),
        Value::Money(text) | Value::Numeric(text) => match parse_decimal(text) {
            Some(decimal) => AcdbValue::Decimal { decimal },
            None => AcdbValue::Text(text.clone()),
        },
        Value::Timestamp(days) => match ole_datetime(*days) {
            Some(datetime) => AcdbValue::DateTime { datetime },
            None => AcdbValue::Text(format!("OLE date {days}")),
        },
        Value::DateTimeExtended(text) => {
            match NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f") {
                Ok(datetime) => AcdbValue::DateTime { datetime },
                Err(_) => AcdbValue::Text(text.clone()),
            }
        }
        Value::Text(text) | Value::Guid(text) => AcdbValue::Text(text.clone()),
        Value::Binary(bytes) => AcdbValue::Bytes {
            bytes: bytes.clone(),
        },
        // jetdb may add value types; keep whatever it gives, visibly.
        other => AcdbValue::Text(format!("{other:?}")),
    }
}

/// Rust prints a float as the shortest text that reads back as the same float.
fn shortest_decimal(text: String) -> AcdbValue {
    match parse_decimal(&text) {
        Some(decimal) => AcdbValue::Decimal { decimal },
        None => AcdbValue::Text(text),
    }
}

/// An OLE automation date (days since 1899-12-30; before it, the integer part counts days back
/// and the fraction is still the time of day) rounded to the second, as Access shows it.
fn ole_datetime(days: f64) -> Option<NaiveDateTime> {
    // Beyond ±100 million days (±273,000 years) chrono has no date anyway.
    if !days.is_finite() || days.abs() > 1e8 {
        return None;
    }
    let mut whole_days = days.trunc() as i64;
    let mut seconds = (days.fract().abs() * 86_400.0).round() as i64;
    if seconds >= 86_400 {
        // Rounded up to midnight: the time runs forward from the date, before the epoch too.
        whole_days += 1;
        seconds = 0;
    }
    let epoch = NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    epoch
        .checked_add_signed(Duration::try_days(whole_days)?)?
        .checked_add_signed(Duration::seconds(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> NaiveDateTime {
        s.parse().unwrap()
    }

    #[test]
    fn ole_dates_follow_access_on_both_sides_of_the_epoch() {
        assert_eq!(ole_datetime(0.0), Some(at("1899-12-30T00:00:00")));
        assert_eq!(ole_datetime(35675.0), Some(at("1997-09-02T00:00:00")));
        assert_eq!(ole_datetime(2.5), Some(at("1900-01-01T12:00:00")));
        // -1.25 is a day before the epoch at 06:00, not 1.25 days before it.
        assert_eq!(ole_datetime(-1.25), Some(at("1899-12-29T06:00:00")));
        assert_eq!(ole_datetime(2_958_465.5), Some(at("9999-12-31T12:00:00")));
        assert_eq!(ole_datetime(-657_434.0), Some(at("0100-01-01T00:00:00")));
        assert_eq!(ole_datetime(f64::NAN), None);
        assert_eq!(ole_datetime(1e300), None);
    }

    #[test]
    fn floats_become_the_decimal_a_person_typed() {
        assert_eq!(
            native_value(&Value::Float(0.1)),
            AcdbValue::Decimal {
                decimal: "0.1".parse().unwrap()
            }
        );
        assert_eq!(
            native_value(&Value::Double(-29.451234)),
            AcdbValue::Decimal {
                decimal: "-29.451234".parse().unwrap()
            }
        );
        assert_eq!(
            native_value(&Value::Double(f64::NAN)),
            AcdbValue::Text("NaN".into())
        );
        assert_eq!(
            native_value(&Value::Double(1e300)),
            AcdbValue::Text(1e300f64.to_string())
        );
    }

    #[test]
    fn money_keeps_its_four_places() {
        let value = native_value(&Value::Money("1995.5000".into()));
        assert_eq!(value.as_text().unwrap(), "1995.5");
        let AcdbValue::Decimal { decimal } = value else {
            panic!("{value:?}")
        };
        assert_eq!(decimal.to_string(), "1995.5000");
    }

    #[test]
    fn unreadable_dates_are_kept_as_documented_text() {
        assert_eq!(
            native_value(&Value::Timestamp(f64::INFINITY)),
            AcdbValue::Text("OLE date inf".into())
        );
    }
}
