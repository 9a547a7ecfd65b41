//! The tables browser and exports (legacy-system.md §1.4–§1.6): `GET /api/tables/{table}[/{id}]`,
//! `/api/schema/tables[/{table}/columns]` and `/api/export/{table}`, all read from the `mirror`
//! read model.
//!
//! Differences from the legacy, on purpose: every table and column name in a request is checked
//! against the captured tables and their columns (the legacy spliced them into SQL, weakness 6);
//! a page is cut in PostgreSQL whatever its number (the legacy fetched every row for pages after
//! the first); `search` looks in every text column (the legacy took the first ten); an unknown
//! `sort` or `filter_col`, or a value that is not of the column's type, is a 422 naming the
//! parameter (the legacy answered 500).

use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use futures::StreamExt;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};

use domain::catalog::{ColumnKind, TableSpec};
use domain::write::{parse_input_datetime, parse_record_id};
use projections::mirror::{self, Filter, FilterValue, MirrorColumn, RowSelection, Sort, SortAs};
use projections::ReadModels;

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::export::{self, ExportFormat, Pages};
use crate::routes::mutations::int_param;
use crate::AppState;

/// The tables a customer may read (their own rows only), as in the legacy.
const CUSTOMER_TABLES: &[&str] = &["tblcustomer", "tblaccountnumbers"];

/// Rows fetched per round trip while an export streams.
const EXPORT_PAGE: i64 = export::PAGE_ROWS as i64;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tables/{table}", get(list))
        .route("/api/tables/{table}/{id}", get(record))
        .route("/api/schema/tables", get(schema_tables))
        .route("/api/schema/tables/{table}/columns", get(schema_columns))
        .route("/api/export/{table}", get(export))
}

fn captured(table: &str) -> ApiResult<&'static TableSpec> {
    mirror::captured_table(table.trim())
        .ok_or_else(|| ApiError::NotFound(format!("Table '{}' not found", table.trim())))
}

/// Who may read `spec`'s rows, and which: `None` for employees (every row), the customer id for
/// a customer (their rows; `Some(-1)` when their account resolves to no customer).
async fn reader_scope(
    state: &AppState,
    user: &CurrentUser,
    spec: &TableSpec,
) -> ApiResult<Option<i64>> {
    if user.employee().is_ok() {
        return Ok(None);
    }
    let account = user.customer()?;
    if !CUSTOMER_TABLES.contains(&spec.table) {
        return Err(ApiError::Forbidden(format!(
            "Customers may only read {}",
            CUSTOMER_TABLES.join(" and ")
        )));
    }
    let customer = state
        .read_models
        .customers_by_account(account)
        .await?
        .into_iter()
        .next();
    Ok(Some(customer.map_or(-1, |c| c.customer_id)))
}

fn find_column<'a>(
    columns: &'a [MirrorColumn],
    table: &str,
    parameter: &str,
    name: &str,
) -> ApiResult<&'a MirrorColumn> {
    let name = name.trim();
    columns
        .iter()
        .find(|c| c.name.eq_ignore_ascii_case(name))
        .ok_or_else(|| ApiError::invalid(parameter, format!("{table} has no column {name:?}")))
}

/// `filter_val` read as the type of `column`.
fn filter_value(column: &MirrorColumn, raw: &str) -> ApiResult<FilterValue> {
    let text = raw.trim();
    let wrong = |expected: &str| {
        ApiError::invalid(
            "filter_val",
            format!(
                "{raw:?} is not {expected} (column {} holds {expected}s)",
                column.name
            ),
        )
    };
    Ok(match column.kind {
        Some(ColumnKind::Int) => FilterValue::Exact(Value::from(
            text.parse::<i64>().map_err(|_| wrong("a whole number"))?,
        )),
        Some(ColumnKind::Decimal) => FilterValue::Number(
            text.parse::<Decimal>()
                .or_else(|_| Decimal::from_scientific(text))
                .map_err(|_| wrong("a number"))?,
        ),
        Some(ColumnKind::Bool) => {
            FilterValue::Exact(Value::Bool(match text.to_ascii_lowercase().as_str() {
                "true" | "yes" | "1" | "-1" => true,
                "false" | "no" | "0" => false,
                _ => return Err(wrong("a yes/no value")),
            }))
        }
        Some(ColumnKind::DateTime) => {
            if let Ok(day) = chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d") {
                FilterValue::Day(day)
            } else {
                FilterValue::DateTime(parse_input_datetime(text).ok_or_else(|| wrong("a date"))?)
            }
        }
        Some(ColumnKind::Text) | None => FilterValue::Text(raw.to_string()),
    })
}

fn sort_as(column: &MirrorColumn) -> SortAs {
    match column.kind {
        Some(ColumnKind::Decimal) => SortAs::Number,
        Some(ColumnKind::Text | ColumnKind::DateTime) => SortAs::Text,
        Some(ColumnKind::Int | ColumnKind::Bool) | None => SortAs::Json,
    }
}

fn non_blank(value: Option<&str>) -> Option<&str> {
    value.filter(|v| !v.trim().is_empty())
}

/// The filter of `filter_col`/`filter_val` (both or neither).
fn filter(
    columns: &[MirrorColumn],
    table: &str,
    filter_col: Option<&str>,
    filter_val: Option<&str>,
) -> ApiResult<Option<Filter>> {
    match (non_blank(filter_col), filter_val) {
        (None, None) => Ok(None),
        (None, Some(_)) => Err(ApiError::invalid(
            "filter_col",
            "is required with filter_val",
        )),
        (Some(_), None) => Err(ApiError::invalid(
            "filter_val",
            "is required with filter_col",
        )),
        (Some(name), Some(value)) => {
            let column = find_column(columns, table, "filter_col", name)?;
            Ok(Some(Filter {
                column: column.name.clone(),
                value: filter_value(column, value)?,
            }))
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    pub(crate) page: Option<String>,
    pub(crate) limit: Option<String>,
    pub(crate) sort: Option<String>,
    pub(crate) order: Option<String>,
    pub(crate) search: Option<String>,
    pub(crate) filter_col: Option<String>,
    pub(crate) filter_val: Option<String>,
}

pub(crate) async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(table): Path<String>,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    let spec = captured(&table)?;
    let customer_id = reader_scope(&state, &user, spec).await?;
    let page = int_param("page", query.page.as_deref(), 1, 1, 1_000_000_000)?;
    let limit = int_param("limit", query.limit.as_deref(), 50, 1, 500)?;
    let descending = match query.order.as_deref().map(str::trim) {
        None | Some("" | "asc") => false,
        Some("desc") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "order",
                format!("{other:?} is not asc or desc"),
            ))
        }
    };
    let pool = state.read_models.pool();
    let columns = mirror::columns(pool, spec).await?;
    let sort = match non_blank(query.sort.as_deref()) {
        None => None,
        Some(name) => {
            let column = find_column(&columns, spec.table, "sort", name)?;
            Some(Sort {
                column: column.name.clone(),
                sort_as: sort_as(column),
                descending,
            })
        }
    };
    let selection = RowSelection {
        table: spec.table,
        customer_id,
        filter: filter(
            &columns,
            spec.table,
            query.filter_col.as_deref(),
            query.filter_val.as_deref(),
        )?,
        search: non_blank(query.search.as_deref()).map(|s| s.trim().to_string()),
    };
    let rows = mirror::page(pool, &selection, sort.as_ref(), (page - 1) * limit, limit).await?;
    let pages = ((rows.total + limit - 1) / limit).max(1);
    Ok(Json(json!({
        "rows": rows.rows,
        "total": rows.total,
        "page": page,
        "limit": limit,
        "pages": pages,
    })))
}

/// A record id from the URL as the row key the mirror stores (`meterid|YYYY-MM-DD HH:MM:SS` for
/// the composite key of meter readings).
fn row_key(spec: &TableSpec, raw: &str) -> ApiResult<String> {
    if spec.key.len() == 1 {
        return Ok(parse_record_id(spec, raw)?.aggregate_id());
    }
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(ApiError::invalid("id", "must not be empty"));
    }
    Ok(raw.to_string())
}

pub(crate) async fn record(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((table, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let spec = captured(&table)?;
    let scope = reader_scope(&state, &user, spec).await?;
    let key = row_key(spec, &id)?;
    let not_found = || ApiError::NotFound(format!("Record {id:?} not found in {}", spec.table));
    let (row, owner) = mirror::row(state.read_models.pool(), spec.table, &key)
        .await?
        .ok_or_else(not_found)?;
    if let Some(customer_id) = scope {
        if owner != Some(customer_id) {
            return Err(ApiError::Forbidden("Access denied to this record".into()));
        }
    }
    Ok(Json(json!({
        "record": row,
        "primary_key": spec.key.join("|"),
    })))
}

pub(crate) async fn schema_tables(
    State(state): State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let tables = mirror::tables(state.read_models.pool()).await?;
    Ok(Json(Value::Array(
        tables
            .iter()
            .map(|t| {
                json!({
                    "name": t.name,
                    "row_count": t.row_count,
                    "column_count": t.column_count,
                })
            })
            .collect(),
    )))
}

/// The ODBC type name Access reports for a column of this kind.
fn type_name(kind: Option<ColumnKind>) -> Value {
    match kind {
        Some(ColumnKind::Int) => json!("INTEGER"),
        Some(ColumnKind::Decimal) => json!("DECIMAL"),
        Some(ColumnKind::Text) => json!("VARCHAR"),
        Some(ColumnKind::DateTime) => json!("DATETIME"),
        Some(ColumnKind::Bool) => json!("BIT"),
        None => Value::Null,
    }
}

pub(crate) async fn schema_columns(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(table): Path<String>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let spec = captured(&table)?;
    let columns = mirror::columns(state.read_models.pool(), spec).await?;
    Ok(Json(Value::Array(
        columns
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "type_name": type_name(c.kind),
                    "nullable": !c.key,
                    // The mirror keeps values, not the driver's column sizes.
                    "size": null,
                })
            })
            .collect(),
    )))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    pub(crate) format: Option<String>,
    pub(crate) search: Option<String>,
    pub(crate) filter_col: Option<String>,
    pub(crate) filter_val: Option<String>,
}

pub(crate) async fn export(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(table): Path<String>,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    user.employee()?;
    let spec = captured(&table)?;
    let format = ExportFormat::parse(
        query.format.as_deref(),
        &[ExportFormat::Csv, ExportFormat::Xlsx],
    )?;
    let columns = mirror::columns(state.read_models.pool(), spec).await?;
    let selection = RowSelection {
        table: spec.table,
        customer_id: None,
        filter: filter(
            &columns,
            spec.table,
            query.filter_col.as_deref(),
            query.filter_val.as_deref(),
        )?,
        search: non_blank(query.search.as_deref()).map(|s| s.trim().to_string()),
    };
    let names: Vec<String> = columns.into_iter().map(|c| c.name).collect();
    export::respond(
        spec.table,
        format,
        names,
        mirror_pages(state.read_models.clone(), selection),
    )
    .await
}

/// Keyset pages of the selection, as they are read.
fn mirror_pages(read_models: ReadModels, selection: RowSelection) -> Pages {
    // (last key sent, done)
    futures::stream::unfold((None::<Value>, false), move |(after, done)| {
        let read_models = read_models.clone();
        let selection = selection.clone();
        async move {
            if done {
                return None;
            }
            let rows = match mirror::rows_after(
                read_models.pool(),
                &selection,
                after.as_ref(),
                EXPORT_PAGE,
            )
            .await
            {
                Ok(rows) => rows,
                Err(e) => return Some((Err(e.into()), (after, true))),
            };
            let finished = (rows.len() as i64) < EXPORT_PAGE;
            let last = rows.last().map(|(_, key)| key.clone()).or(after);
            let page = rows.into_iter().map(|(row, _)| row).collect();
            Some((Ok(page), (last, finished)))
        }
    })
    .boxed()
}
