//! Reading the ACDB over ODBC: the SQLite ODBC driver holding the ACDB schema (development,
//! tests, demo) and the Microsoft Access driver (production, Windows).
//!
//! SQL stays in the subset both drivers accept: `SELECT * FROM [t] WHERE … ORDER BY [k1], [k2]`
//! with `?` parameters. Rows come through a block cursor as text, in buffers whose size is
//! bounded per column and per fetch, and are typed in Rust ([`super::typing`]): the catalogue's
//! kind for a known column, the driver's reported type otherwise.
//!
//! A value longer than its buffer is never cut: the scan restarts after the last row it has
//! already handed over, with a larger buffer for that column.
//!
//! With the SQLite driver the reader adds `StepAPI=1` to the connection string (unless it sets
//! StepAPI itself): otherwise that driver materialises a whole result set before the first fetch.
//! A scan then holds SQLite's shared lock while its cursor is open, so a writer waits (up to the
//! driver's busy timeout) for the scan to finish or stop.
//!
//! Order and comparisons are the driver's: SQLite compares text by bytes, Access ignores case.
//! Resuming with [`ScanFilter::KeyAfter`] is exact within one source either way.

use std::collections::HashMap;

use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::{ColumnKind, KeyPart, RowKey, TableSpec};
use odbc_api::buffers::{AnyColumnBufferSlice, BufferDesc, ColumnarDynBuffer};
use odbc_api::handles::StatementImpl;
use odbc_api::parameter::InputParameter;
use odbc_api::parameter::WithDataType;
use odbc_api::{
    Connection, ConnectionOptions, Cursor, CursorImpl, DataType, IntoParameter,
    ParameterCollectionRef, ResultSetMetadata,
};

use super::typing::{format_datetime, type_text};
use super::{quote, AcdbReader, ColumnInfo, Dialect, Scan, ScanFilter};
use crate::{Error, Result};

/// Largest buffer a column starts with, in characters (bytes for narrow text).
const DEFAULT_MAX_VALUE_LEN: usize = 8 * 1024;
/// A value longer than this is an error rather than a larger buffer.
const MAX_VALUE_LEN: usize = 64 * 1024 * 1024;
/// Memory the fetch buffers of one scan may take; rows per fetch shrink to stay under it.
const FETCH_BUFFER_BUDGET: usize = 16 * 1024 * 1024;
const MAX_ROWS_PER_FETCH: usize = 4096;
/// odbc-api talks UTF-16 to the Windows driver manager and UTF-8 elsewhere; text buffers follow.
const WIDE_TEXT: bool = cfg!(target_os = "windows");

/// A connection to the ACDB through an ODBC driver.
pub struct OdbcReader {
    conn: Connection<'static>,
    dialect: Dialect,
    /// The connection string with any password masked, for messages.
    source: String,
    /// The source's table names, read once and re-read when a name is not found.
    table_names: Option<Vec<String>>,
    /// Whether the connection was switched to manual commit (it then writes only in
    /// transactions; see [`AcdbWriter::begin`](super::AcdbWriter::begin)).
    manual_commit: bool,
}

impl OdbcReader {
    /// Connects with an ODBC connection string (`Driver=SQLite3;Database=acdb.sqlite`, or
    /// `Driver={Microsoft Access Driver (*.mdb, *.accdb)};DBQ=C:\…\acdb.accdb`).
    pub fn connect(connection_string: &str) -> Result<Self> {
        let source = mask_password(connection_string);
        let connect_error = |message: String| Error::AcdbConnect {
            dsn: source.clone(),
            message,
        };
        // odbc-api requires the environment to outlive every connection: one per process.
        let env = odbc_api::environment().map_err(|e| connect_error(one_line(&e)))?;
        let conn = env
            .connect_with_connection_string(connection_string, ConnectionOptions::default())
            .map_err(|e| connect_error(one_line(&e)))?;
        let dbms = conn
            .database_management_system_name()
            .map_err(|e| connect_error(one_line(&e)))?;
        // mdbtools reports "MDBTOOLS\0": compare without the NULs and case.
        let dbms = dbms.trim_matches(char::from(0)).trim().to_string();
        let upper = dbms.to_ascii_uppercase();
        let dialect = if upper.contains("SQLITE") {
            Dialect::Sqlite
        } else if upper.contains("ACCESS") {
            Dialect::Access
        } else if upper.contains("MDBTOOLS") {
            return Err(connect_error(
                "the mdbtools ODBC driver cannot sort, filter or bind parameters; on Linux read an .accdb/.mdb file with ACDB_FILE instead".into(),
            ));
        } else {
            return Err(connect_error(format!(
                "the driver reports DBMS {dbms:?}; ccare reads the ACDB through the Microsoft Access or SQLite ODBC drivers only"
            )));
        };
        let conn = if dialect == Dialect::Sqlite && !has_attribute(connection_string, "StepAPI") {
            // Without StepAPI the SQLite driver reads a whole result set into memory before the
            // first fetch (GBs for 25M history rows); with it, rows are stepped as they are fetched.
            let streaming = format!("{};StepAPI=1", connection_string.trim_end_matches(';'));
            drop(conn);
            env.connect_with_connection_string(&streaming, ConnectionOptions::default())
                .map_err(|e| connect_error(one_line(&e)))?
        } else {
            conn
        };
        Ok(OdbcReader {
            conn,
            dialect,
            source,
            table_names: None,
            manual_commit: false,
        })
    }

    /// The source's own spelling of `table` (matched ignoring case, as Access does).
    fn resolve(&mut self, table: &str) -> Result<String> {
        for refresh in [false, true] {
            if refresh || self.table_names.is_none() {
                self.table_names = Some(self.read_table_names()?);
            }
            if let Some(found) = self
                .table_names
                .iter()
                .flatten()
                .find(|t| t.eq_ignore_ascii_case(table))
            {
                return Ok(found.clone());
            }
        }
        Err(Error::AcdbTableMissing {
            table: table.to_string(),
        })
    }

    fn read_table_names(&self) -> Result<Vec<String>> {
        let catalog_error = |e: odbc_api::Error| Error::AcdbQuery {
            table: "(table list)".into(),
            message: format!("{}: {}", self.source, one_line(&e)),
        };
        let mut names = Vec::new();
        for row in self
            .conn
            .tables("", "", "", "TABLE")
            .map_err(catalog_error)?
        {
            let row = row.map_err(catalog_error)?;
            let Ok(Some(name)) = row.table.as_str() else {
                continue;
            };
            let lower = name.to_ascii_lowercase();
            // Access system and temporary objects; SQLite's own tables.
            if lower.starts_with("msys") || lower.starts_with("sqlite_") || lower.starts_with('~') {
                continue;
            }
            names.push(name.to_string());
        }
        Ok(names)
    }

    fn query_error(&self, table: &str) -> impl Fn(odbc_api::Error) -> Error + '_ {
        let table = table.to_string();
        move |e| Error::AcdbQuery {
            table: table.clone(),
            message: one_line(&e),
        }
    }

    /// Runs `sql`, a query over `table`, and returns its result set.
    fn query(
        &self,
        table: &str,
        sql: &str,
        params: impl ParameterCollectionRef,
    ) -> Result<CursorImpl<StatementImpl<'_>>> {
        self.conn
            .execute(sql, params, None)
            .map_err(self.query_error(table))?
            .ok_or_else(|| Error::AcdbQuery {
                table: table.to_string(),
                message: "the driver returned no result set".into(),
            })
    }
}

impl AcdbReader for OdbcReader {
    fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn tables(&mut self) -> Result<Vec<String>> {
        let names = self.read_table_names()?;
        self.table_names = Some(names.clone());
        Ok(names)
    }

    fn columns(&mut self, table: &str) -> Result<Vec<ColumnInfo>> {
        let table = self.resolve(table)?;
        let error = self.query_error(&table);
        let sql = format!("SELECT * FROM {} WHERE 1 = 0", quote(&table));
        let mut cursor = self.query(&table, &sql, ())?;
        let columns = describe(&mut cursor, None, &HashMap::new()).map_err(&error)?;
        Ok(columns
            .into_iter()
            .map(|c| ColumnInfo {
                name: c.name,
                kind: c.reported_kind,
            })
            .collect())
    }

    fn count_rows(&mut self, table: &str) -> Result<u64> {
        let table = self.resolve(table)?;
        let error = self.query_error(&table);
        let sql = format!("SELECT COUNT(*) FROM {}", quote(&table));
        let mut cursor = self.query(&table, &sql, ())?;
        let mut text = Vec::new();
        let mut row = cursor
            .next_row()
            .map_err(&error)?
            .ok_or_else(|| Error::AcdbQuery {
                table: table.clone(),
                message: "COUNT(*) returned no row".into(),
            })?;
        // As text: Access returns COUNT as a 32-bit integer, SQLite as 64-bit.
        row.get_text(1, &mut text).map_err(&error)?;
        let text = String::from_utf8_lossy(&text);
        text.trim().parse::<u64>().map_err(|_| Error::AcdbQuery {
            table: table.clone(),
            message: format!("COUNT(*) returned {text:?}, not a row count"),
        })
    }

    fn scan(
        &mut self,
        spec: &TableSpec,
        scan: &Scan,
        on_batch: &mut dyn FnMut(Vec<AcdbRow>) -> bool,
    ) -> Result<()> {
        let table = self.resolve(spec.table)?;
        let batch_size = scan.batch_size.max(1);
        let mut state = ScanState {
            pending: Vec::with_capacity(batch_size.min(MAX_ROWS_PER_FETCH)),
            batch_size,
            last_key: LastKey::NoneYet,
            max_lens: HashMap::new(),
        };
        loop {
            let resume_after = match &state.last_key {
                LastKey::NoneYet => None,
                LastKey::Key(key) => Some(key.clone()),
                LastKey::Unknown => unreachable!("a scan never restarts after a row without a key"),
            };
            let (sql, params) = select_sql(
                &table,
                spec,
                &scan.filter,
                resume_after.as_ref(),
                self.dialect,
            )?;
            let error = self.query_error(&table);
            let cursor = self.query(&table, &sql, params.as_slice())?;
            match state.fetch(cursor, spec, on_batch).map_err(&error)? {
                Fetched::Finished => {
                    if !state.pending.is_empty() {
                        on_batch(std::mem::take(&mut state.pending));
                    }
                    return Ok(());
                }
                Fetched::Stopped => return Ok(()),
                Fetched::Truncated { column, needed } => {
                    let current = state
                        .max_lens
                        .get(&column)
                        .copied()
                        .unwrap_or(DEFAULT_MAX_VALUE_LEN);
                    if current >= MAX_VALUE_LEN {
                        return Err(Error::AcdbQuery {
                            table: table.clone(),
                            message: format!(
                                "a value in column {column:?} is longer than {MAX_VALUE_LEN} bytes"
                            ),
                        });
                    }
                    let grown = needed.unwrap_or(0).max(current * 4).min(MAX_VALUE_LEN);
                    tracing::debug!(table = %table, column = %column, bytes = grown, "a value did not fit its buffer: re-reading with a larger one");
                    state.max_lens.insert(column.clone(), grown);
                    if let LastKey::Unknown = state.last_key {
                        return Err(Error::AcdbQuery {
                            table: table.clone(),
                            message: format!(
                                "a value in column {column:?} did not fit its buffer and the scan cannot resume after a row without a key"
                            ),
                        });
                    }
                }
            }
        }
    }
}

/// What the last row handed over (or queued) was, for resuming after a truncated value.
enum LastKey {
    NoneYet,
    Key(RowKey),
    /// The row had no usable key: a restart could not find its place.
    Unknown,
}

enum Fetched {
    Finished,
    /// `on_batch` asked to stop.
    Stopped,
    /// A value of `column` did not fit; `needed` is its length if the driver said.
    Truncated {
        column: String,
        needed: Option<usize>,
    },
}

struct ScanState {
    pending: Vec<AcdbRow>,
    batch_size: usize,
    last_key: LastKey,
    /// Buffer lengths grown after truncation, by column name.
    max_lens: HashMap<String, usize>,
}

impl ScanState {
    fn fetch(
        &mut self,
        mut cursor: CursorImpl<StatementImpl<'_>>,
        spec: &TableSpec,
        on_batch: &mut dyn FnMut(Vec<AcdbRow>) -> bool,
    ) -> std::result::Result<Fetched, odbc_api::Error> {
        let columns = describe(&mut cursor, Some(spec), &self.max_lens)?;
        let row_bytes: usize = columns
            .iter()
            .map(FetchColumn::buffer_bytes)
            .sum::<usize>()
            .max(1);
        let rows_per_fetch =
            (FETCH_BUFFER_BUDGET / row_bytes).clamp(1, self.batch_size.min(MAX_ROWS_PER_FETCH));
        let buffer = ColumnarDynBuffer::try_from_descs(
            rows_per_fetch,
            columns.iter().map(FetchColumn::desc),
        )?;
        let mut block = cursor.bind_buffer(buffer)?;
        while let Some(rows) = block.fetch()? {
            let truncated = first_truncated(rows, &columns);
            let usable = truncated.as_ref().map_or(rows.num_rows(), |t| t.0);
            for r in 0..usable {
                let mut row = AcdbRow::new();
                for (i, column) in columns.iter().enumerate() {
                    row.insert(column.name.clone(), column.value(rows.column(i), r));
                }
                self.pending.push(row);
                if self.pending.len() >= self.batch_size {
                    self.remember_last_key(spec);
                    if !on_batch(std::mem::take(&mut self.pending)) {
                        return Ok(Fetched::Stopped);
                    }
                }
            }
            if let Some((_, column, needed)) = truncated {
                self.remember_last_key(spec);
                return Ok(Fetched::Truncated {
                    column: columns[column].name.clone(),
                    needed,
                });
            }
        }
        Ok(Fetched::Finished)
    }

    fn remember_last_key(&mut self, spec: &TableSpec) {
        if let Some(row) = self.pending.last() {
            self.last_key = match spec.row_key(row) {
                Ok(key) => LastKey::Key(key),
                Err(_) => LastKey::Unknown,
            };
        }
    }
}

/// How one result column is fetched and typed.
struct FetchColumn {
    name: String,
    /// The kind the driver reports (what `columns()` shows).
    reported_kind: Option<ColumnKind>,
    /// The kind values are typed as: the catalogue's for a known column, else the reported one.
    kind: Option<ColumnKind>,
    binary: bool,
    /// Characters (narrow: bytes; wide: UTF-16 units) or bytes the buffer holds per value.
    max_len: usize,
}

impl FetchColumn {
    fn desc(&self) -> BufferDesc {
        if self.binary {
            BufferDesc::Binary {
                max_bytes: self.max_len,
            }
        } else if WIDE_TEXT {
            BufferDesc::WText {
                max_str_len: self.max_len,
            }
        } else {
            BufferDesc::Text {
                max_str_len: self.max_len,
            }
        }
    }

    fn buffer_bytes(&self) -> usize {
        let unit = if WIDE_TEXT && !self.binary { 2 } else { 1 };
        (self.max_len + 1) * unit + std::mem::size_of::<isize>()
    }

    fn value(&self, slice: AnyColumnBufferSlice<'_>, row: usize) -> AcdbValue {
        if self.binary {
            return match slice.as_binary().and_then(|s| s.get(row)) {
                Some(bytes) => AcdbValue::Bytes {
                    bytes: bytes.to_vec(),
                },
                None => AcdbValue::Null,
            };
        }
        let text = if WIDE_TEXT {
            match slice.as_wide_text().and_then(|s| s.get(row)) {
                None => return AcdbValue::Null,
                Some(units) => match String::from_utf16(units) {
                    Ok(text) => text,
                    // Keep what the source holds, byte for byte, rather than replace characters.
                    Err(_) => {
                        return AcdbValue::Bytes {
                            bytes: units.iter().flat_map(|u| u.to_le_bytes()).collect(),
                        }
                    }
                },
            }
        } else {
            match slice.as_text().and_then(|s| s.get(row)) {
                None => return AcdbValue::Null,
                Some(bytes) => match std::str::from_utf8(bytes) {
                    Ok(text) => text.to_string(),
                    Err(_) => {
                        return AcdbValue::Bytes {
                            bytes: bytes.to_vec(),
                        }
                    }
                },
            }
        };
        type_text(self.kind, text)
    }
}

/// The result set's columns, with buffer lengths from the driver's reported sizes (bounded by
/// [`DEFAULT_MAX_VALUE_LEN`]) unless a truncation has grown them.
fn describe(
    cursor: &mut impl ResultSetMetadata,
    spec: Option<&TableSpec>,
    grown: &HashMap<String, usize>,
) -> std::result::Result<Vec<FetchColumn>, odbc_api::Error> {
    let count = cursor.num_result_cols()?;
    let mut columns = Vec::with_capacity(usize::try_from(count).unwrap_or(0));
    for i in 1..=u16::try_from(count).unwrap_or(0) {
        let name = cursor.col_name(i)?;
        // A driver that cannot say is read as text.
        let data_type = cursor.col_data_type(i).unwrap_or(DataType::Unknown);
        let reported_kind = kind_of(&data_type);
        let binary = matches!(
            data_type,
            DataType::Binary { .. } | DataType::Varbinary { .. } | DataType::LongVarbinary { .. }
        );
        let kind = spec.and_then(|s| s.column_kind(&name)).or(reported_kind);
        let max_len = grown
            .get(&name)
            .copied()
            .unwrap_or_else(|| initial_len(&data_type));
        columns.push(FetchColumn {
            name,
            reported_kind,
            kind,
            binary,
            max_len,
        });
    }
    Ok(columns)
}

fn kind_of(data_type: &DataType) -> Option<ColumnKind> {
    match data_type {
        DataType::Integer | DataType::SmallInt | DataType::TinyInt | DataType::BigInt => {
            Some(ColumnKind::Int)
        }
        DataType::Numeric { .. }
        | DataType::Decimal { .. }
        | DataType::Float { .. }
        | DataType::Real
        | DataType::Double => Some(ColumnKind::Decimal),
        DataType::Timestamp { .. } | DataType::Date => Some(ColumnKind::DateTime),
        DataType::Bit => Some(ColumnKind::Bool),
        DataType::Char { .. }
        | DataType::WChar { .. }
        | DataType::Varchar { .. }
        | DataType::WVarchar { .. }
        | DataType::LongVarchar { .. }
        | DataType::WLongVarchar { .. } => Some(ColumnKind::Text),
        _ => None,
    }
}

/// Buffer length for a column's values as text: the driver's display size with room for any
/// UTF-8 encoding of it, at least 32, at most [`DEFAULT_MAX_VALUE_LEN`].
fn initial_len(data_type: &DataType) -> usize {
    let per_char = if WIDE_TEXT { 2 } else { 4 };
    let reported = match data_type {
        DataType::Binary { length }
        | DataType::Varbinary { length }
        | DataType::LongVarbinary { length } => length.map(|l| l.get()),
        DataType::Unknown | DataType::Other { .. } => None,
        other => other
            .display_size()
            .map(|d| d.get().saturating_mul(per_char)),
    };
    reported
        .unwrap_or(DEFAULT_MAX_VALUE_LEN)
        .clamp(32, DEFAULT_MAX_VALUE_LEN)
}

/// The first row of the fetched block holding a value that did not fit, its column and the
/// length the driver reported for it.
fn first_truncated(
    rows: &ColumnarDynBuffer,
    columns: &[FetchColumn],
) -> Option<(usize, usize, Option<usize>)> {
    let mut first: Option<(usize, usize, Option<usize>)> = None;
    for (c, column) in columns.iter().enumerate() {
        let slice = rows.column(c);
        // The indicator check is cheap; the lengths are only looked at in a truncated column.
        let (indicator, length_at): (_, Box<dyn Fn(usize) -> usize>) = if column.binary {
            let Some(s) = slice.as_binary() else { continue };
            (
                s.has_truncated_values(),
                Box::new(move |r| s.get(r).map_or(0, <[u8]>::len)),
            )
        } else if WIDE_TEXT {
            let Some(s) = slice.as_wide_text() else {
                continue;
            };
            (
                s.has_truncated_values(),
                Box::new(move |r| s.content_length_at(r).unwrap_or(0)),
            )
        } else {
            let Some(s) = slice.as_text() else { continue };
            (
                s.has_truncated_values(),
                Box::new(move |r| s.content_length_at(r).unwrap_or(0)),
            )
        };
        let Some(indicator) = indicator else { continue };
        // A truncated value fills its buffer: the first full value is where the block stops
        // being trustworthy (at worst a value of exactly the buffer's length is read again).
        let row = (0..rows.num_rows())
            .find(|&r| length_at(r) >= column.max_len)
            .unwrap_or(0);
        let needed = match indicator {
            odbc_api::buffers::Indicator::Length(bytes) if WIDE_TEXT && !column.binary => {
                Some(bytes / 2)
            }
            odbc_api::buffers::Indicator::Length(bytes) => Some(bytes),
            _ => None,
        };
        if first.is_none_or(|(r, _, _)| row < r) {
            first = Some((row, c, needed));
        }
    }
    first
}

type Params = Vec<Box<dyn InputParameter>>;

/// `SELECT * FROM [t] [WHERE …] ORDER BY [k1], [k2]` and its parameters.
fn select_sql(
    table: &str,
    spec: &TableSpec,
    filter: &ScanFilter,
    resume_after: Option<&RowKey>,
    dialect: Dialect,
) -> Result<(String, Params)> {
    let mut conditions = Vec::new();
    let mut params: Params = Vec::new();
    match filter {
        ScanFilter::All => {}
        ScanFilter::KeyAfter(key) => conditions.push(key_after(spec, key, dialect, &mut params)?),
        ScanFilter::AtLeast { column, value } => {
            conditions.push(format!("{} >= ?", quote(column)));
            params.push(parameter(value, dialect));
        }
        ScanFilter::KeyEquals(key) => conditions.push(key_equals(spec, key, dialect, &mut params)?),
    }
    if let Some(key) = resume_after {
        conditions.push(key_after(spec, key, dialect, &mut params)?);
    }
    let mut sql = format!("SELECT * FROM {}", quote(table));
    if !conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(
            &conditions
                .iter()
                .map(|c| format!("({c})"))
                .collect::<Vec<_>>()
                .join(" AND "),
        );
    }
    let order: Vec<String> = spec.key.iter().map(|k| quote(k)).collect();
    sql.push_str(" ORDER BY ");
    sql.push_str(&order.join(", "));
    Ok((sql, params))
}

/// Rows whose key is greater than `key` in key order: for (k1, k2) that is
/// `([k1] > ?) OR ([k1] = ? AND [k2] > ?)`.
fn key_after(
    spec: &TableSpec,
    key: &RowKey,
    dialect: Dialect,
    params: &mut Params,
) -> Result<String> {
    let parts = key.parts();
    if parts.len() != spec.key.len() {
        return Err(Error::AcdbQuery {
            table: spec.table.to_string(),
            message: format!(
                "a resume key has {} parts but the table's key has {}",
                parts.len(),
                spec.key.len()
            ),
        });
    }
    let mut alternatives = Vec::with_capacity(parts.len());
    for i in 0..parts.len() {
        let mut terms = Vec::with_capacity(i + 1);
        for (column, part) in spec.key.iter().zip(parts).take(i) {
            terms.push(format!("{} = ?", quote(column)));
            params.push(parameter(part, dialect));
        }
        terms.push(format!("{} > ?", quote(spec.key[i])));
        params.push(parameter(&parts[i], dialect));
        alternatives.push(format!("({})", terms.join(" AND ")));
    }
    Ok(alternatives.join(" OR "))
}

/// `[k1] = ? AND [k2] = ?` for the row `key`.
fn key_equals(
    spec: &TableSpec,
    key: &RowKey,
    dialect: Dialect,
    params: &mut Params,
) -> Result<String> {
    if key.parts().len() != spec.key.len() {
        return Err(Error::AcdbQuery {
            table: spec.table.to_string(),
            message: format!(
                "a key has {} parts but the table's key has {}",
                key.parts().len(),
                spec.key.len()
            ),
        });
    }
    let mut terms = Vec::with_capacity(spec.key.len());
    for (column, part) in spec.key.iter().zip(key.parts()) {
        terms.push(format!("{} = ?", quote(column)));
        params.push(parameter(part, dialect));
    }
    Ok(terms.join(" AND "))
}

/// A cell value as a statement parameter: typed as the drivers expect (dates as the dialect
/// compares them, decimals as exact text, never through a float).
fn value_parameter(value: &AcdbValue, dialect: Dialect) -> Box<dyn InputParameter> {
    match value {
        AcdbValue::Null => Box::new(None::<&str>.into_parameter()),
        AcdbValue::Bool(b) => Box::new(i32::from(*b)),
        AcdbValue::Int(i) => parameter(&KeyPart::Int(*i), dialect),
        AcdbValue::Text(s) => Box::new(s.clone().into_parameter()),
        AcdbValue::Decimal { decimal } => Box::new(decimal.to_string().into_parameter()),
        AcdbValue::DateTime { datetime } => parameter(&KeyPart::DateTime(*datetime), dialect),
        AcdbValue::Bytes { bytes } => Box::new(bytes.clone().into_parameter()),
    }
}

impl OdbcReader {
    /// Runs a statement that returns no rows; the number of rows it changed.
    fn execute_dml(&self, table: &str, sql: &str, params: Params) -> Result<u64> {
        let mut statement = self.conn.preallocate().map_err(self.query_error(table))?;
        statement
            .execute(sql, params.as_slice())
            .map_err(self.query_error(table))?;
        let changed = statement.row_count().map_err(self.query_error(table))?;
        Ok(changed.unwrap_or(0) as u64)
    }

    /// The AutoNumber the last insert on this connection was given.
    fn last_insert_id(&self, table: &str) -> Result<i64> {
        let sql = match self.dialect {
            Dialect::Sqlite => "SELECT last_insert_rowid()",
            Dialect::Access | Dialect::File => "SELECT @@IDENTITY",
        };
        let error = self.query_error(table);
        let mut cursor = self.query(table, sql, ())?;
        let mut text = Vec::new();
        let mut row = cursor
            .next_row()
            .map_err(&error)?
            .ok_or_else(|| Error::AcdbQuery {
                table: table.to_string(),
                message: format!("{sql} returned no row"),
            })?;
        row.get_text(1, &mut text).map_err(&error)?;
        let text = String::from_utf8_lossy(&text);
        text.trim().parse().map_err(|_| Error::AcdbQuery {
            table: table.to_string(),
            message: format!("{sql} returned {text:?}, not a key"),
        })
    }
}

impl super::AcdbWriter for OdbcReader {
    fn begin(&mut self) -> Result<()> {
        // A writing connection stays in manual-commit mode: every statement is inside a
        // transaction that `commit` or `rollback` ends.
        if !self.manual_commit {
            self.conn
                .set_autocommit(false)
                .map_err(self.query_error("(transaction)"))?;
            self.manual_commit = true;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.conn
            .commit()
            .map_err(self.query_error("(transaction)"))
    }

    fn rollback(&mut self) -> Result<()> {
        self.conn
            .rollback()
            .map_err(self.query_error("(transaction)"))
    }

    fn read_row(&mut self, spec: &TableSpec, key: &RowKey) -> Result<Option<AcdbRow>> {
        // One row: fetched cell by cell, typed exactly as a scan types it (same text, same
        // kinds), without a scan's block buffers.
        let table = self.resolve(spec.table)?;
        let mut params: Params = Vec::new();
        let condition = key_equals(spec, key, self.dialect, &mut params)?;
        let sql = format!("SELECT * FROM {} WHERE {condition}", quote(&table));
        let error = self.query_error(&table);
        let mut cursor = self.query(&table, &sql, params.as_slice())?;
        let columns = describe(&mut cursor, Some(spec), &HashMap::new()).map_err(&error)?;
        let Some(mut fetched) = cursor.next_row().map_err(&error)? else {
            return Ok(None);
        };
        let mut row = AcdbRow::new();
        let mut bytes = Vec::new();
        for (i, column) in columns.iter().enumerate() {
            let index = u16::try_from(i + 1).unwrap_or(u16::MAX);
            let value = if column.binary {
                match fetched.get_binary(index, &mut bytes).map_err(&error)? {
                    true => AcdbValue::Bytes {
                        bytes: bytes.clone(),
                    },
                    false => AcdbValue::Null,
                }
            } else if WIDE_TEXT {
                let mut units = Vec::new();
                match fetched.get_wide_text(index, &mut units).map_err(&error)? {
                    false => AcdbValue::Null,
                    true => match String::from_utf16(&units) {
                        Ok(text) => type_text(column.kind, text),
                        Err(_) => AcdbValue::Bytes {
                            bytes: units.iter().flat_map(|u| u.to_le_bytes()).collect(),
                        },
                    },
                }
            } else {
                match fetched.get_text(index, &mut bytes).map_err(&error)? {
                    false => AcdbValue::Null,
                    true => match std::str::from_utf8(&bytes) {
                        Ok(text) => type_text(column.kind, text.to_string()),
                        Err(_) => AcdbValue::Bytes {
                            bytes: bytes.clone(),
                        },
                    },
                }
            };
            row.insert(column.name.clone(), value);
        }
        Ok(Some(row))
    }

    fn insert(&mut self, spec: &TableSpec, values: &AcdbRow) -> Result<Option<i64>> {
        let table = self.resolve(spec.table)?;
        let columns: Vec<String> = values.column_names().map(quote).collect();
        let marks = vec!["?"; columns.len()].join(", ");
        let sql = format!(
            "INSERT INTO {} ({}) VALUES ({marks})",
            quote(&table),
            columns.join(", ")
        );
        let params: Params = values
            .columns()
            .map(|(_, v)| value_parameter(v, self.dialect))
            .collect();
        self.execute_dml(&table, &sql, params)?;
        let auto_key = spec.key.len() == 1
            && spec.column_kind(spec.key[0]) == Some(ColumnKind::Int)
            && values.get(spec.key[0]).is_null();
        if auto_key {
            Ok(Some(self.last_insert_id(&table)?))
        } else {
            Ok(None)
        }
    }

    fn update(&mut self, spec: &TableSpec, key: &RowKey, values: &AcdbRow) -> Result<u64> {
        let table = self.resolve(spec.table)?;
        let sets: Vec<String> = values
            .column_names()
            .map(|c| format!("{} = ?", quote(c)))
            .collect();
        let mut params: Params = values
            .columns()
            .map(|(_, v)| value_parameter(v, self.dialect))
            .collect();
        let condition = key_equals(spec, key, self.dialect, &mut params)?;
        let sql = format!(
            "UPDATE {} SET {} WHERE {condition}",
            quote(&table),
            sets.join(", ")
        );
        self.execute_dml(&table, &sql, params)
    }

    fn delete(&mut self, spec: &TableSpec, key: &RowKey) -> Result<u64> {
        let table = self.resolve(spec.table)?;
        let mut params: Params = Vec::new();
        let condition = key_equals(spec, key, self.dialect, &mut params)?;
        let sql = format!("DELETE FROM {} WHERE {condition}", quote(&table));
        self.execute_dml(&table, &sql, params)
    }
}

fn parameter(part: &KeyPart, dialect: Dialect) -> Box<dyn InputParameter> {
    match part {
        // Access has no 64-bit parameters for its Long Integer columns.
        KeyPart::Int(i) => match i32::try_from(*i) {
            Ok(small) => Box::new(small),
            Err(_) => Box::new(*i),
        },
        KeyPart::Text(s) => Box::new(s.clone().into_parameter()),
        KeyPart::DateTime(at) => match dialect {
            // Access compares a date column with a date.
            Dialect::Access => {
                use chrono::{Datelike, Timelike};
                let timestamp = odbc_api::sys::Timestamp {
                    year: i16::try_from(at.year()).unwrap_or(i16::MAX),
                    month: at.month() as u16,
                    day: at.day() as u16,
                    hour: at.hour() as u16,
                    minute: at.minute() as u16,
                    second: at.second() as u16,
                    fraction: 0,
                };
                Box::new(WithDataType::new(
                    timestamp,
                    DataType::Timestamp { precision: 0 },
                ))
            }
            // SQLite stores dates as text and compares them as text: bind the stored form.
            Dialect::Sqlite | Dialect::File => Box::new(format_datetime(at).into_parameter()),
        },
    }
}

/// The driver's diagnostic as one line: its message and SQLSTATE, without odbc-api's framing.
fn one_line(error: &odbc_api::Error) -> String {
    let text = match error {
        odbc_api::Error::Diagnostics {
            record,
            function: _,
        } => {
            let shown = record.to_string();
            let message = shown
                .split_once("Message: ")
                .map_or(shown.as_str(), |(_, m)| m);
            format!("{message} (SQLSTATE {})", record.state.as_str())
        }
        other => other.to_string(),
    };
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether the connection string sets `attribute` (names compare ignoring case, as ODBC's do).
fn has_attribute(connection_string: &str, attribute: &str) -> bool {
    connection_string
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .any(|(key, _)| key.trim().eq_ignore_ascii_case(attribute))
}

/// The connection string with the value of any `PWD`/`Password` attribute replaced by `***`.
fn mask_password(connection_string: &str) -> String {
    connection_string
        .split(';')
        .map(|attribute| match attribute.split_once('=') {
            Some((key, _))
                if ["pwd", "password"].contains(&key.trim().to_ascii_lowercase().as_str()) =>
            {
                format!("{key}=***")
            }
            _ => attribute.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::catalog::table_spec;

    #[test]
    fn a_composite_key_resumes_after_both_parts() {
        let spec = table_spec("tblmeterdata1").unwrap();
        let key = RowKey(vec![
            KeyPart::Text("SMRSD-26-00000001".into()),
            KeyPart::DateTime("2025-12-20T10:00:00".parse().unwrap()),
        ]);
        let (sql, params) = select_sql(
            "tblmeterdata1",
            spec,
            &ScanFilter::KeyAfter(key),
            None,
            Dialect::Sqlite,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM [tblmeterdata1] WHERE (([meterid] > ?) OR ([meterid] = ? AND [whdatetime] > ?)) ORDER BY [meterid], [whdatetime]"
        );
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn a_watermark_filter_and_a_resume_key_combine() {
        let spec = table_spec("tblaccounthistory1").unwrap();
        let filter = ScanFilter::AtLeast {
            column: "ID".into(),
            value: KeyPart::Int(100),
        };
        let resume = RowKey(vec![KeyPart::Int(150)]);
        let (sql, params) = select_sql(
            "tblaccounthistory1",
            spec,
            &filter,
            Some(&resume),
            Dialect::Access,
        )
        .unwrap();
        assert_eq!(
            sql,
            "SELECT * FROM [tblaccounthistory1] WHERE ([ID] >= ?) AND (([ID] > ?)) ORDER BY [ID]"
        );
        assert_eq!(params.len(), 2);
    }

    #[test]
    fn a_resume_key_of_the_wrong_width_is_refused() {
        let spec = table_spec("tblmeterdata1").unwrap();
        let key = RowKey(vec![KeyPart::Text("SMRSD-26-00000001".into())]);
        assert!(select_sql(
            "tblmeterdata1",
            spec,
            &ScanFilter::KeyAfter(key),
            None,
            Dialect::Sqlite
        )
        .is_err());
    }

    #[test]
    fn passwords_are_masked_in_messages() {
        assert_eq!(
            mask_password(
                "Driver={Microsoft Access Driver (*.mdb, *.accdb)};DBQ=C:\\a.accdb;PWD=secret;"
            ),
            "Driver={Microsoft Access Driver (*.mdb, *.accdb)};DBQ=C:\\a.accdb;PWD=***;"
        );
    }

    #[test]
    fn connection_attributes_are_found_ignoring_case() {
        assert!(has_attribute(
            "Driver=SQLite3;Database=a.db;stepapi=0",
            "StepAPI"
        ));
        assert!(!has_attribute(
            "Driver=SQLite3;Database=StepAPI.db",
            "StepAPI"
        ));
    }
}
