//! `/portal/tables`: the tables browser of the `mirror` read model (legacy-system.md §8 Tables,
//! Export): the captured tables with their counts, a table's rows 25 to a page, one record, the
//! schema (every table's columns), and a table's export as CSV or XLSX.
//!
//! Every answer comes from the JSON API's own handlers in [`browse`] (called with the session's
//! user), so the portal and `/api/tables`, `/api/schema` and `/api/export` cannot disagree on
//! which rows a search selects, how a page is cut or who may read them. Staff only: the legacy
//! let customers read their own `tblcustomer` rows through the CRUD API, but the portal gives
//! customers their own pages instead.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use projections::mirror;

use crate::error::ApiError;
use crate::export::cell_text;
use crate::routes::browse::{self, ExportQuery, ListQuery};
use crate::AppState;

use super::dashboard::staff_only;
use super::pages::{self, count, document, respond, Nav};
use super::session::{encode_query_value, Session};

/// Rows on a page of a table.
const PAGE_SIZE: i64 = 25;

/// The page of a request the API refused (or could not answer), in the layout of `session`.
pub(super) fn failure_page(session: &Session, error: ApiError, back: (&str, &str)) -> Response {
    let message = error.to_string();
    let status = error.into_response().status();
    let (heading, message) = match status {
        StatusCode::NOT_FOUND => ("Not found", message),
        StatusCode::FORBIDDEN => ("Not allowed", message),
        s if s.is_server_error() => (
            "Not available right now",
            "The figures cannot be read at the moment. Try again in a minute.".to_string(),
        ),
        _ => ("That cannot be shown", message),
    };
    pages::error_page(status, Some(session), heading, &message, back)
}

/// `text` as one path segment of an address.
pub(super) fn path_segment(text: &str) -> String {
    encode_query_value(text).replace('/', "%2F")
}

fn table_href(table: &str) -> String {
    format!("/portal/tables/{}", path_segment(table))
}

fn export_href(table: &str, format: &str, search: &str) -> String {
    let mut href = format!(
        "/portal/export?table={}&format={format}",
        encode_query_value(table)
    );
    if !search.is_empty() {
        href.push_str(&format!("&search={}", encode_query_value(search)));
    }
    href
}

fn back_to_tables() -> (&'static str, &'static str) {
    ("/portal/tables", "Back to the tables")
}

/// The names of `table`'s columns, in the schema's order.
async fn column_names(
    state: &AppState,
    session: &Session,
    table: &str,
) -> Result<Vec<String>, ApiError> {
    let Json(columns) = browse::schema_columns(
        State(state.clone()),
        session.user.clone(),
        Path(table.to_string()),
    )
    .await?;
    Ok(columns
        .as_array()
        .map(|columns| {
            columns
                .iter()
                .filter_map(|c| c["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// `row`'s cell of `column` (rows are keyed as Access spells the columns).
fn cell<'a>(row: &'a Value, column: &str) -> &'a Value {
    row.get(column)
        .or_else(|| {
            row.as_object()?
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(column))
                .map(|(_, value)| value)
        })
        .unwrap_or(&Value::Null)
}

/// The address of `row`'s record page, when its key can be read from it (the id the record
/// API takes: the key's value, or the key's values joined by `|` for a composite key).
fn record_href(table: &str, row: &Value) -> Option<String> {
    let spec = mirror::captured_table(table)?;
    let parts: Vec<String> = spec
        .key
        .iter()
        .map(|column| cell_text(cell(row, column)))
        .collect();
    if parts.iter().any(|p| p.trim().is_empty()) {
        return None;
    }
    Some(format!(
        "{}/records/{}",
        table_href(spec.table),
        path_segment(&parts.join("|"))
    ))
}

// ---------------------------------------------------------------------------------------------
// The tables.

fn tables_main(tables: &[Value]) -> Markup {
    html! {
        h1 { "Tables" }
        p { "The Access tables ccare mirrors, read only. Open one to browse its rows, or see " a href="/portal/schema" { "every table's columns" } "." }
        div class="table-wrap" {
            table id="table-list" {
                thead {
                    tr {
                        th scope="col" { "Table" }
                        th scope="col" class="n" { "Rows" }
                        th scope="col" class="n" { "Columns" }
                        th scope="col" { "Export" }
                    }
                }
                tbody {
                    @for t in tables {
                        @let name = t["name"].as_str().unwrap_or_default();
                        tr {
                            th scope="row" { a href=(table_href(name)) { (name) } }
                            td class="n" { (count(t["row_count"].as_i64().unwrap_or(0))) }
                            td class="n" { (count(t["column_count"].as_i64().unwrap_or(0))) }
                            td {
                                a href=(export_href(name, "csv", "")) { "CSV" span class="visually-hidden" { " of " (name) } }
                                " · "
                                a href=(export_href(name, "xlsx", "")) { "XLSX" span class="visually-hidden" { " of " (name) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /portal/tables`: the captured tables with their row and column counts.
pub(crate) async fn list(State(state): State<AppState>, session: Session) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    match browse::schema_tables(State(state), session.user.clone()).await {
        Ok(Json(tables)) => respond(
            StatusCode::OK,
            document(
                "Tables",
                Some(&session),
                Some(Nav::Tables),
                tables_main(tables.as_array().map(Vec::as_slice).unwrap_or_default()),
            ),
        ),
        Err(error) => failure_page(&session, error, ("/portal/", "Back to the portal")),
    }
}

// ---------------------------------------------------------------------------------------------
// A table's rows.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RowsQuery {
    #[serde(default)]
    page: String,
    #[serde(default)]
    search: String,
}

/// One page of a table's rows, as the list API answered it.
struct RowsPage {
    rows: Vec<Value>,
    total: i64,
    page: i64,
    pages: i64,
}

fn rows_href(table: &str, page: i64, search: &str) -> String {
    let search = search.to_string();
    pages::list_href(&table_href(table), page, &[("search", &search)])
}

fn rows_main(
    table: &str,
    columns: &[String],
    search: &str,
    error: Option<&str>,
    found: Option<&RowsPage>,
) -> Markup {
    let described = error.map(|_| "search-error");
    html! {
        p { a href="/portal/tables" { "← Tables" } }
        h1 { (table) }
        form method="get" action=(table_href(table)) class="filters" role="search" {
            div class="field" {
                label for="search" { "Text in any column" }
                input type="search" id="search" name="search" value=(search) maxlength="200"
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
                @if let Some(error) = error {
                    p class="error" id="search-error" role="alert" { (error) }
                }
            }
            button type="submit" class="primary" { "Search" }
            @if !search.is_empty() {
                " " a href=(table_href(table)) { "Clear the search" }
            }
        }
        p id="table-export" {
            "Download "
            @if search.is_empty() { "the table" } @else { "the rows found" }
            ": "
            a href=(export_href(table, "csv", search)) { "CSV" }
            " · "
            a href=(export_href(table, "xlsx", search)) { "XLSX" }
        }
        @if let Some(found) = found {
            p id="row-total" {
                (count(found.total)) " rows · page " (found.page) " of " (found.pages)
            }
            @if found.rows.is_empty() {
                @if found.total > 0 { p { "There are no more rows: go back a page." } }
                @else { p { "No rows." } }
            } @else {
                div class="table-wrap" {
                    table id="rows" {
                        thead {
                            tr {
                                @for column in columns { th scope="col" { (column) } }
                            }
                        }
                        tbody {
                            @for row in &found.rows {
                                tr {
                                    @for (i, column) in columns.iter().enumerate() {
                                        @let text = cell_text(cell(row, column));
                                        @if i == 0 {
                                            th scope="row" {
                                                @if let Some(href) = record_href(table, row) {
                                                    a href=(href) { (text) }
                                                } @else { (text) }
                                            }
                                        } @else {
                                            td { (text) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            nav aria-label="Pages" class="paging" {
                @if found.page > 1 {
                    a href=(rows_href(table, 1, search)) { "First" } " "
                    a href=(rows_href(table, found.page - 1, search)) rel="prev" { "Previous" } " "
                }
                @if found.page < found.pages {
                    a href=(rows_href(table, found.page + 1, search)) rel="next" { "Next" } " "
                    a href=(rows_href(table, found.pages, search)) { "Last" }
                }
            }
        }
    }
}

/// `GET /portal/tables/{table}?page=&search=`: a page of the table's rows, in key order.
pub(crate) async fn rows(
    State(state): State<AppState>,
    session: Session,
    Path(table): Path<String>,
    Query(query): Query<RowsQuery>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let columns = match column_names(&state, &session, &table).await {
        Ok(columns) => columns,
        Err(error) => return failure_page(&session, error, back_to_tables()),
    };
    let name = mirror::captured_table(&table).map_or(table.as_str(), |spec| spec.table);
    let search = query.search.trim();
    let listed = browse::list(
        State(state),
        session.user.clone(),
        Path(name.to_string()),
        Query(ListQuery {
            page: Some(query.page.clone()),
            limit: Some(PAGE_SIZE.to_string()),
            sort: None,
            order: None,
            search: Some(search.to_string()),
            filter_col: None,
            filter_val: None,
        }),
    )
    .await;
    let (status, error, found) = match listed {
        Ok(Json(answer)) => {
            let found = RowsPage {
                rows: answer["rows"].as_array().cloned().unwrap_or_default(),
                total: answer["total"].as_i64().unwrap_or(0),
                page: answer["page"].as_i64().unwrap_or(1),
                pages: answer["pages"].as_i64().unwrap_or(1),
            };
            (StatusCode::OK, None, Some(found))
        }
        Err(ApiError::Invalid {
            status,
            field,
            problem,
        }) => (
            status,
            Some(match field.as_str() {
                "page" => format!("There is no such page: the page number {problem}."),
                _ => format!("The {field} {problem}."),
            }),
            None,
        ),
        Err(error) => return failure_page(&session, error, back_to_tables()),
    };
    respond(
        status,
        document(
            name,
            Some(&session),
            Some(Nav::Tables),
            rows_main(name, &columns, search, error.as_deref(), found.as_ref()),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// One record.

fn record_main(
    table: &str,
    id: &str,
    primary_key: &str,
    columns: &[String],
    record: &Value,
) -> Markup {
    // Cells the schema does not list (there should be none) are still shown, after the others.
    let extra: Vec<&String> = record
        .as_object()
        .map(|cells| {
            cells
                .keys()
                .filter(|name| !columns.iter().any(|c| c.eq_ignore_ascii_case(name)))
                .collect()
        })
        .unwrap_or_default();
    html! {
        p { a href=(table_href(table)) { "← " (table) } }
        h1 { (table) " record " (id) }
        p class="muted" { "Key: " (primary_key) }
        dl class="facts" id="record" {
            @for column in columns {
                div { dt { (column) } dd { (cell_text(cell(record, column))) } }
            }
            @for column in extra {
                div { dt { (column) } dd { (cell_text(cell(record, column))) } }
            }
        }
    }
}

/// `GET /portal/tables/{table}/records/{id}`: every column of one row.
pub(crate) async fn record(
    State(state): State<AppState>,
    session: Session,
    Path((table, id)): Path<(String, String)>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let columns = match column_names(&state, &session, &table).await {
        Ok(columns) => columns,
        Err(error) => return failure_page(&session, error, back_to_tables()),
    };
    let name = mirror::captured_table(&table).map_or(table.as_str(), |spec| spec.table);
    let answer = match browse::record(
        State(state),
        session.user.clone(),
        Path((name.to_string(), id.clone())),
    )
    .await
    {
        Ok(Json(answer)) => answer,
        Err(error) => {
            let back = table_href(name);
            return failure_page(&session, error, (&back, "Back to the table"));
        }
    };
    respond(
        StatusCode::OK,
        document(
            &format!("{name} {id}"),
            Some(&session),
            Some(Nav::Tables),
            record_main(
                name,
                &id,
                answer["primary_key"].as_str().unwrap_or_default(),
                &columns,
                &answer["record"],
            ),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// The schema.

fn schema_main(tables: &[(String, Vec<Value>)]) -> Markup {
    html! {
        p { a href="/portal/tables" { "← Tables" } }
        h1 { "Schema" }
        p { "Every mirrored table and its columns. A key column is never empty." }
        nav aria-label="Tables of the schema" {
            ul id="schema-tables" {
                @for (name, _) in tables {
                    li { a href={ "#table-" (name) } { (name) } }
                }
            }
        }
        @for (name, columns) in tables {
            section aria-labelledby={ "table-" (name) } {
                h2 id={ "table-" (name) } { a href=(table_href(name)) { (name) } }
                div class="table-wrap" {
                    table {
                        thead {
                            tr {
                                th scope="col" { "Column" }
                                th scope="col" { "Type" }
                                th scope="col" { "Empty allowed" }
                            }
                        }
                        tbody {
                            @for c in columns {
                                tr {
                                    th scope="row" { (c["name"].as_str().unwrap_or_default()) }
                                    td { (c["type_name"].as_str().unwrap_or("unknown")) }
                                    td { @if c["nullable"].as_bool().unwrap_or(true) { "Yes" } @else { "No (key)" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `GET /portal/schema`: the tables and their columns (the catalogue: a few dozen tables).
pub(crate) async fn schema(State(state): State<AppState>, session: Session) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let back = ("/portal/tables", "Back to the tables");
    let tables = match browse::schema_tables(State(state.clone()), session.user.clone()).await {
        Ok(Json(tables)) => tables,
        Err(error) => return failure_page(&session, error, back),
    };
    let mut described = Vec::new();
    for table in tables.as_array().map(Vec::as_slice).unwrap_or_default() {
        let name = table["name"].as_str().unwrap_or_default().to_string();
        let columns = match browse::schema_columns(
            State(state.clone()),
            session.user.clone(),
            Path(name.clone()),
        )
        .await
        {
            Ok(Json(columns)) => columns.as_array().cloned().unwrap_or_default(),
            Err(error) => return failure_page(&session, error, back),
        };
        described.push((name, columns));
    }
    respond(
        StatusCode::OK,
        document(
            "Schema",
            Some(&session),
            Some(Nav::Tables),
            schema_main(&described),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Exports.

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ExportParams {
    #[serde(default)]
    table: String,
    format: Option<String>,
    search: Option<String>,
}

/// `GET /portal/export?table=&format=csv|xlsx&search=`: the file `/api/export/{table}` answers.
pub(crate) async fn export(
    State(state): State<AppState>,
    session: Session,
    Query(params): Query<ExportParams>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let answer = browse::export(
        State(state),
        session.user.clone(),
        Path(params.table.clone()),
        Query(ExportQuery {
            format: params.format,
            search: params.search,
            filter_col: None,
            filter_val: None,
        }),
    )
    .await;
    match answer {
        Ok(file) => file,
        Err(error) => failure_page(&session, error, back_to_tables()),
    }
}
