//! The `mirror` read model: every captured ACDB row as it stands now, for the tables browser
//! (`GET /api/tables/…`), the schema listing and the exports — paged, sorted, searched and
//! filtered in PostgreSQL, never by reading a whole table into memory (the legacy fetched every
//! row for any page after the first).
//!
//! Tables:
//! - `mirror_rows`: per table and row key, the row as plain JSON (raw ACDB column names; NULL as
//!   `null`, integers and booleans as JSON values, decimals as exact strings, dates as
//!   `YYYY-MM-DD HH:MM:SS`), its key as a typed JSON array (`key_sort`, the default order), the
//!   customer id the row belongs to (for customers' own reads), and `search`: the row's text
//!   cells lower-cased, one per line;
//! - `mirror_columns`: per table and column name, how many live rows have the column (a column
//!   dropped in Access disappears once no row carries it);
//! - `mirror_tables`: per table, its live row count.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use async_trait::async_trait;
use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::{
    spec_for_aggregate, table_spec, ColumnKind, KeyPart, TableSpec, CAPTURED_TABLES,
};
use domain::event::StoredEvent;
use domain::record::RowChange;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};

use crate::error::Result;
use crate::projection::{decode_payload, execute_all, insert_rows, qualified, Projection};

/// The projection's permanent name.
pub const NAME: &str = "mirror";

/// The customer-id columns of the tables that have one, as the legacy looked them up.
const CUSTOMER_ID_COLUMNS: &[&str] = &["CUSTOMER ID", "customerid", "customer id"];

/// Builds the `mirror` read model.
#[derive(Debug, Clone, Copy, Default)]
pub struct MirrorProjection;

fn aggregate_types() -> &'static [&'static str] {
    static TYPES: OnceLock<Vec<&'static str>> = OnceLock::new();
    TYPES.get_or_init(|| CAPTURED_TABLES.iter().map(|t| t.aggregate_type).collect())
}

#[async_trait]
impl Projection for MirrorProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(aggregate_types())
    }

    async fn create_tables(&self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let rows = qualified(schema, "mirror_rows");
        let columns = qualified(schema, "mirror_columns");
        let tables = qualified(schema, "mirror_tables");
        let statements = [
            format!(
                "create table {rows} (
                    table_name  text not null,
                    row_key     text not null,
                    key_sort    jsonb not null,
                    customer_id bigint,
                    row         jsonb not null,
                    search      text not null,
                    position    bigint not null,
                    primary key (table_name, row_key)
                )"
            ),
            format!("comment on table {rows} is 'ccare: every captured ACDB row as it stands now (raw column names; decimals as exact strings, dates as YYYY-MM-DD HH:MM:SS)'"),
            format!("comment on column {rows}.key_sort is 'the row key as a typed JSON array: the default order of a table'"),
            format!("comment on column {rows}.search is 'the row''s text cells, lower-cased, one per line'"),
            format!("create index on {rows} (table_name, key_sort)"),
            format!("create index on {rows} (table_name, customer_id) where customer_id is not null"),
            format!(
                "create table {columns} (
                    table_name  text not null,
                    column_name text not null,
                    rows        bigint not null,
                    primary key (table_name, column_name)
                )"
            ),
            format!("comment on table {columns} is 'ccare: per captured table and column, the live rows that have the column'"),
            format!(
                "create table {tables} (
                    table_name text primary key,
                    rows       bigint not null
                )"
            ),
            format!("comment on table {tables} is 'ccare: per captured table, its live row count'"),
        ];
        execute_all(conn, statements).await
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        schema: &str,
        events: &[StoredEvent],
    ) -> Result<()> {
        let mut batch = Batch::default();
        for event in events {
            batch.add(event)?;
        }
        batch.write(conn, schema).await
    }
}

/// A row as `mirror_rows` stores it.
#[derive(Debug, Serialize)]
struct MirrorRow {
    table_name: &'static str,
    row_key: String,
    key_sort: Value,
    customer_id: Option<i64>,
    row: Value,
    search: String,
    position: i64,
}

const MIRROR_ROW_COLUMNS: &[(&str, &str)] = &[
    ("table_name", "text"),
    ("row_key", "text"),
    ("key_sort", "jsonb"),
    ("customer_id", "bigint"),
    ("row", "jsonb"),
    ("search", "text"),
    ("position", "bigint"),
];

fn key_sort(spec: &TableSpec, row: &AcdbRow, fallback: &str) -> Value {
    match spec.row_key(row) {
        Ok(key) => Value::Array(
            key.parts()
                .iter()
                .map(|part| match part {
                    KeyPart::Int(i) => Value::from(*i),
                    other => Value::String(other.to_string()),
                })
                .collect(),
        ),
        Err(_) => Value::Array(vec![Value::String(fallback.to_string())]),
    }
}

fn customer_id(row: &AcdbRow) -> Option<i64> {
    CUSTOMER_ID_COLUMNS
        .iter()
        .map(|column| row.get(column))
        .find(|value| !value.is_null())
        .and_then(AcdbValue::as_i64)
}

fn search_text(row: &AcdbRow) -> String {
    let mut text = String::new();
    for (_, value) in row.columns() {
        if let AcdbValue::Text(cell) = value {
            let cell = cell.trim();
            if !cell.is_empty() {
                text.push_str(&cell.to_lowercase());
                text.push('\n');
            }
        }
    }
    text
}

fn mirror_row(spec: &'static TableSpec, row_key: &str, row: &AcdbRow, position: i64) -> MirrorRow {
    MirrorRow {
        table_name: spec.table,
        row_key: row_key.to_string(),
        key_sort: key_sort(spec, row, row_key),
        customer_id: customer_id(row),
        row: row.to_plain_json(),
        search: search_text(row),
        position,
    }
}

/// What one batch changes, gathered before anything is written.
#[derive(Default)]
struct Batch {
    /// The latest state of each row touched (`None`: deleted).
    rows: BTreeMap<(&'static str, String), Option<MirrorRow>>,
    columns: HashMap<(&'static str, String), i64>,
    tables: HashMap<&'static str, i64>,
}

impl Batch {
    fn add(&mut self, event: &StoredEvent) -> Result<()> {
        let Some(spec) = spec_for_aggregate(&event.aggregate_type) else {
            return Ok(());
        };
        let change: RowChange = decode_payload(event, "a row change")?;
        let (before, after) = match &change {
            RowChange::Created { row } => (None, Some(row)),
            RowChange::Updated { before, after, .. } => (Some(before), Some(after)),
            RowChange::Deleted { before } => (Some(before), None),
        };
        for (row, sign) in [(before, -1), (after, 1)] {
            let Some(row) = row else { continue };
            *self.tables.entry(spec.table).or_insert(0) += sign;
            for column in row.column_names() {
                *self
                    .columns
                    .entry((spec.table, column.to_string()))
                    .or_insert(0) += sign;
            }
        }
        let key = (spec.table, event.aggregate_id.clone());
        let state = after.map(|row| mirror_row(spec, &event.aggregate_id, row, event.position));
        self.rows.insert(key, state);
        Ok(())
    }

    async fn write(self, conn: &mut PgConnection, schema: &str) -> Result<()> {
        let rows = qualified(schema, "mirror_rows");
        let columns = qualified(schema, "mirror_columns");
        let tables = qualified(schema, "mirror_tables");

        let (live, gone): (Vec<_>, Vec<_>) = self.rows.into_iter().partition(|(_, r)| r.is_some());
        if !gone.is_empty() {
            let names: Vec<&str> = gone.iter().map(|((t, _), _)| *t).collect();
            let keys: Vec<&str> = gone.iter().map(|((_, k), _)| k.as_str()).collect();
            sqlx::query(&format!(
                "delete from {rows} r using unnest($1::text[], $2::text[]) as g(table_name, row_key)
                 where r.table_name = g.table_name and r.row_key = g.row_key"
            ))
            .bind(names)
            .bind(keys)
            .execute(&mut *conn)
            .await?;
        }
        let live: Vec<MirrorRow> = live.into_iter().filter_map(|(_, r)| r).collect();
        insert_rows(
            conn,
            &rows,
            MIRROR_ROW_COLUMNS,
            &["table_name", "row_key"],
            &live,
        )
        .await?;

        let deltas: Vec<_> = self.columns.iter().filter(|(_, n)| **n != 0).collect();
        if !deltas.is_empty() {
            sqlx::query(&format!(
                "insert into {columns} (table_name, column_name, rows)
                 select * from unnest($1::text[], $2::text[], $3::int8[])
                 on conflict (table_name, column_name) do update set rows = {columns}.rows + excluded.rows"
            ))
            .bind(deltas.iter().map(|((t, _), _)| *t).collect::<Vec<_>>())
            .bind(deltas.iter().map(|((_, c), _)| c.as_str()).collect::<Vec<_>>())
            .bind(deltas.iter().map(|(_, n)| **n).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
            sqlx::query(&format!("delete from {columns} where rows <= 0"))
                .execute(&mut *conn)
                .await?;
        }
        let deltas: Vec<_> = self.tables.iter().filter(|(_, n)| **n != 0).collect();
        if !deltas.is_empty() {
            sqlx::query(&format!(
                "insert into {tables} (table_name, rows)
                 select * from unnest($1::text[], $2::int8[])
                 on conflict (table_name) do update set rows = {tables}.rows + excluded.rows"
            ))
            .bind(deltas.iter().map(|(t, _)| **t).collect::<Vec<_>>())
            .bind(deltas.iter().map(|(_, n)| **n).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Queries.

/// A captured table as the schema listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    pub name: &'static str,
    pub row_count: i64,
    pub column_count: i64,
}

/// A column of a captured table: every catalogued column (in catalogue order), then the columns
/// found in Access beyond the catalogue (by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorColumn {
    pub name: String,
    /// `None` for a column ccare does not know: its values keep the driver's types.
    pub kind: Option<ColumnKind>,
    /// Whether the column is part of the table's key (which is never NULL).
    pub key: bool,
}

/// Every captured table with its row and column counts, by name.
pub async fn tables(pool: &PgPool) -> Result<Vec<TableSummary>> {
    let counts: Vec<(String, i64)> =
        sqlx::query_as("select table_name, rows from read_model.mirror_tables")
            .fetch_all(pool)
            .await?;
    let counts: HashMap<String, i64> = counts.into_iter().collect();
    let mut summaries = Vec::with_capacity(CAPTURED_TABLES.len());
    for spec in CAPTURED_TABLES {
        let column_count = columns(pool, spec).await?.len();
        summaries.push(TableSummary {
            name: spec.table,
            row_count: counts.get(spec.table).copied().unwrap_or(0),
            column_count: i64::try_from(column_count).unwrap_or(i64::MAX),
        });
    }
    summaries.sort_by_key(|t| t.name);
    Ok(summaries)
}

/// The columns of `spec`'s table.
pub async fn columns(pool: &PgPool, spec: &TableSpec) -> Result<Vec<MirrorColumn>> {
    let seen: Vec<String> = sqlx::query_scalar(
        "select column_name from read_model.mirror_columns where table_name = $1 order by column_name",
    )
    .bind(spec.table)
    .fetch_all(pool)
    .await?;
    // The rows' keys are spelled as Access spells the columns; the catalogue matches them
    // case-insensitively.
    let spelled = |name: &str| {
        seen.iter()
            .find(|s| s.eq_ignore_ascii_case(name))
            .cloned()
            .unwrap_or_else(|| name.to_string())
    };
    let mut columns: Vec<MirrorColumn> = spec
        .columns
        .iter()
        .map(|c| MirrorColumn {
            name: spelled(c.name),
            kind: Some(c.kind),
            key: spec.key.contains(&c.name),
        })
        .collect();
    for name in seen.iter().cloned() {
        if spec.column_kind(&name).is_none() {
            columns.push(MirrorColumn {
                name,
                kind: None,
                key: false,
            });
        }
    }
    Ok(columns)
}

/// The catalogued table `name` (any case, as Access compares names).
pub fn captured_table(name: &str) -> Option<&'static TableSpec> {
    table_spec(name)
}

/// How a filter compares a column with the requested value.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterValue {
    /// The cell is exactly this JSON value (integers, booleans).
    Exact(Value),
    /// The cell is this number (decimal cells are stored as exact strings).
    Number(Decimal),
    /// The cell is a date-time on this day.
    Day(chrono::NaiveDate),
    /// The cell is this date-time (`YYYY-MM-DD HH:MM:SS`).
    DateTime(chrono::NaiveDateTime),
    /// The cell is this text, ignoring case, as Access compares text.
    Text(String),
}

/// `column = value`.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub column: String,
    pub value: FilterValue,
}

/// How a sort column's cells compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortAs {
    /// As JSON values (integers numerically, booleans, text).
    Json,
    /// As numbers (decimal cells are exact strings).
    Number,
    /// As text (dates sort chronologically in their fixed format).
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort {
    pub column: String,
    pub sort_as: SortAs,
    pub descending: bool,
}

/// Which rows of a table a listing or an export takes.
#[derive(Debug, Clone, PartialEq)]
pub struct RowSelection {
    pub table: &'static str,
    /// Only the rows of this customer (customers reading their own records).
    pub customer_id: Option<i64>,
    pub filter: Option<Filter>,
    /// Rows with a text cell containing this text, ignoring case.
    pub search: Option<String>,
}

/// The `where` clause of a selection and its parameters (all bound, never spliced: column names
/// and values are request input).
struct Where {
    sql: String,
    params: Vec<Param>,
}

enum Param {
    Text(String),
    Int(i64),
    Json(Value),
    Number(Decimal),
    Date(chrono::NaiveDate),
}

impl Where {
    fn param(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }
}

fn number_of(cell: &str) -> String {
    format!(
        "(case when jsonb_typeof(row -> {cell}) = 'number' then (row ->> {cell})::numeric
               when (row ->> {cell}) ~ '^\\s*[-+]?[0-9]+(\\.[0-9]+)?\\s*$' then trim(row ->> {cell})::numeric end)"
    )
}

fn where_clause(selection: &RowSelection) -> Where {
    let mut clause = Where {
        sql: String::new(),
        params: Vec::new(),
    };
    let table = clause.param(Param::Text(selection.table.to_string()));
    clause.sql = format!("table_name = {table}");
    if let Some(customer_id) = selection.customer_id {
        let p = clause.param(Param::Int(customer_id));
        clause.sql.push_str(&format!(" and customer_id = {p}"));
    }
    if let Some(filter) = &selection.filter {
        let column = clause.param(Param::Text(filter.column.clone()));
        let condition = match &filter.value {
            FilterValue::Exact(value) => {
                let p = clause.param(Param::Json(value.clone()));
                format!("row -> {column} = {p}::jsonb")
            }
            FilterValue::Number(number) => {
                let p = clause.param(Param::Number(*number));
                format!("{} = {p}", number_of(&column))
            }
            FilterValue::Day(day) => {
                let p = clause.param(Param::Date(*day));
                format!("left(row ->> {column}, 10) = to_char({p}::date, 'YYYY-MM-DD')")
            }
            FilterValue::DateTime(at) => {
                let p = clause.param(Param::Text(at.format("%Y-%m-%d %H:%M:%S").to_string()));
                format!("row ->> {column} = {p}")
            }
            FilterValue::Text(text) => {
                let p = clause.param(Param::Text(text.to_lowercase()));
                format!("lower(row ->> {column}) = {p}")
            }
        };
        clause.sql.push_str(&format!(" and {condition}"));
    }
    if let Some(search) = selection.search.as_deref().filter(|s| !s.is_empty()) {
        let pattern = format!("%{}%", escape_like(&search.to_lowercase()));
        let p = clause.param(Param::Text(pattern));
        clause.sql.push_str(&format!(" and search like {p}"));
    }
    clause
}

fn escape_like(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

fn order_clause(clause: &mut Where, sort: Option<&Sort>) -> String {
    let Some(sort) = sort else {
        return "key_sort".to_string();
    };
    let column = clause.param(Param::Text(sort.column.clone()));
    let expression = match sort.sort_as {
        SortAs::Json => format!("row -> {column}"),
        SortAs::Number => number_of(&column),
        SortAs::Text => format!("row ->> {column}"),
    };
    // Access puts NULLs first in ascending order and last in descending order.
    if sort.descending {
        format!("{expression} desc nulls last, key_sort desc")
    } else {
        format!("{expression} asc nulls first, key_sort")
    }
}

type PgScalar<'q, O> = sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>;

fn bind_all<'q, O>(mut query: PgScalar<'q, O>, params: &'q [Param]) -> PgScalar<'q, O> {
    for param in params {
        query = match param {
            Param::Text(v) => query.bind(v),
            Param::Int(v) => query.bind(v),
            Param::Json(v) => query.bind(Json(v)),
            Param::Number(v) => query.bind(v),
            Param::Date(v) => query.bind(v),
        };
    }
    query
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct RowPage {
    pub rows: Vec<Value>,
    /// Rows matching the selection, on every page.
    pub total: i64,
}

/// The rows of `selection` in `sort` order (the key by default), `limit` of them from `offset`.
pub async fn page(
    pool: &PgPool,
    selection: &RowSelection,
    sort: Option<&Sort>,
    offset: i64,
    limit: i64,
) -> Result<RowPage> {
    let total = if selection.customer_id.is_none()
        && selection.filter.is_none()
        && selection.search.as_deref().is_none_or(str::is_empty)
    {
        sqlx::query_scalar("select rows from read_model.mirror_tables where table_name = $1")
            .bind(selection.table)
            .fetch_optional(pool)
            .await?
            .unwrap_or(0)
    } else {
        let clause = where_clause(selection);
        let sql = format!(
            "select count(*) from read_model.mirror_rows where {}",
            clause.sql
        );
        bind_all::<i64>(sqlx::query_scalar(&sql), &clause.params)
            .fetch_one(pool)
            .await?
    };
    let mut clause = where_clause(selection);
    let order = order_clause(&mut clause, sort);
    let offset_param = clause.param(Param::Int(offset));
    let limit_param = clause.param(Param::Int(limit));
    let sql = format!(
        "select row from read_model.mirror_rows where {} order by {order} offset {offset_param} limit {limit_param}",
        clause.sql
    );
    let rows = bind_all(sqlx::query_scalar(&sql), &clause.params)
        .fetch_all(pool)
        .await?;
    Ok(RowPage {
        rows: rows.into_iter().map(|r: Json<Value>| r.0).collect(),
        total,
    })
}

/// The row `row_key` of `table`, with the customer id it belongs to.
pub async fn row(
    pool: &PgPool,
    table: &str,
    row_key: &str,
) -> Result<Option<(Value, Option<i64>)>> {
    let row: Option<(Json<Value>, Option<i64>)> = sqlx::query_as(
        "select row, customer_id from read_model.mirror_rows where table_name = $1 and row_key = $2",
    )
    .bind(table)
    .bind(row_key)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(row, customer)| (row.0, customer)))
}

/// Up to `limit` rows of `selection` after the row whose `key_sort` is `after` (from the start
/// when `None`), in key order, each with its `key_sort`: keyset pages, so an export of millions
/// of rows holds one page in memory and no connection between pages.
pub async fn rows_after(
    pool: &PgPool,
    selection: &RowSelection,
    after: Option<&Value>,
    limit: i64,
) -> Result<Vec<(Value, Value)>> {
    let mut clause = where_clause(selection);
    if let Some(after) = after {
        let p = clause.param(Param::Json(after.clone()));
        clause.sql.push_str(&format!(" and key_sort > {p}::jsonb"));
    }
    let limit_param = clause.param(Param::Int(limit));
    let sql = format!(
        "select jsonb_build_array(row, key_sort) from read_model.mirror_rows where {} order by key_sort limit {limit_param}",
        clause.sql
    );
    let rows = bind_all::<Json<Value>>(sqlx::query_scalar(&sql), &clause.params)
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|pair| match pair.0 {
            Value::Array(mut parts) if parts.len() == 2 => {
                let key = parts.pop()?;
                let row = parts.pop()?;
                Some((row, key))
            }
            _ => None,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_wildcards_in_a_search_are_taken_literally() {
        assert_eq!(escape_like(r"50%_a\b"), r"50\%\_a\\b");
    }

    #[test]
    fn search_text_holds_the_text_cells_lower_cased_one_per_line() {
        let row = AcdbRow::new()
            .with("FIRST NAME", AcdbValue::Text(" Mpho ".into()))
            .with("CUSTOMER ID", AcdbValue::Int(12))
            .with("LAST NAME", AcdbValue::Text("MOKOENA".into()))
            .with("EMAIL", AcdbValue::Text("  ".into()));
        assert_eq!(search_text(&row), "mpho\nmokoena\n");
    }

    #[test]
    fn a_rows_customer_is_read_from_whichever_customer_id_column_it_has() {
        let account = AcdbRow::new().with("customerid", AcdbValue::Int(7));
        let meter = AcdbRow::new().with("customer id", AcdbValue::Text(" 9 ".into()));
        assert_eq!(customer_id(&account), Some(7));
        assert_eq!(customer_id(&meter), Some(9));
        assert_eq!(customer_id(&AcdbRow::new()), None);
    }

    #[test]
    fn keys_sort_as_typed_values() {
        let spec = table_spec("tblmeterdata1").unwrap();
        let at = chrono::NaiveDate::from_ymd_opt(2025, 1, 2)
            .unwrap()
            .and_hms_opt(3, 4, 5)
            .unwrap();
        let row = AcdbRow::new()
            .with("meterid", AcdbValue::Text("M1".into()))
            .with("whdatetime", AcdbValue::DateTime { datetime: at });
        assert_eq!(
            key_sort(spec, &row, "x"),
            serde_json::json!(["M1", "2025-01-02 03:04:05"])
        );
        let spec = table_spec("tblcustomer").unwrap();
        let row = AcdbRow::new().with("CUSTOMER ID", AcdbValue::Int(10));
        assert_eq!(key_sort(spec, &row, "10"), serde_json::json!([10]));
    }
}
