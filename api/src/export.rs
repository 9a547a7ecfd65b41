//! File exports, streamed: CSV, XLSX and JSON bodies built from a stream of row pages, whatever
//! the rows come from (the mirror's keyset pages, or one read-model view query).
//!
//! Memory is a page of rows whatever the export's size: CSV and JSON go out page by page, an
//! XLSX workbook is spilled to disk as it is built (see [`crate::xlsx`]).

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// Rows per page of an export.
pub(crate) const PAGE_ROWS: usize = 1_000;

/// Pages of rows, each row a JSON object keyed by column name; at least one page, which may be
/// empty (so a CSV of no rows still gets its header).
pub(crate) type Pages = BoxStream<'static, ApiResult<Vec<Value>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ExportFormat {
    Csv,
    Xlsx,
    Json,
}

impl ExportFormat {
    /// The `format` query parameter: one of `allowed` (the first is the default).
    pub(crate) fn parse(raw: Option<&str>, allowed: &[ExportFormat]) -> ApiResult<ExportFormat> {
        let raw = raw.map(str::trim).unwrap_or_default();
        if raw.is_empty() {
            return Ok(allowed[0]);
        }
        allowed
            .iter()
            .copied()
            .find(|f| f.extension() == raw)
            .ok_or_else(|| {
                let names: Vec<&str> = allowed.iter().map(|f| f.extension()).collect();
                ApiError::invalid(
                    "format",
                    format!("{raw:?} is not one of {}", names.join(", ")),
                )
            })
    }

    fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::Xlsx => "xlsx",
            ExportFormat::Json => "json",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::Xlsx => {
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            }
            ExportFormat::Json => "application/json",
        }
    }
}

/// A cell as the legacy export wrote it (Python's `str`): NULL empty, booleans `True`/`False`.
pub(crate) fn cell_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_chunk(
    header: Option<&[String]>,
    columns: &[String],
    rows: &[Value],
) -> Result<Bytes, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    if let Some(header) = header {
        out.write_record(header)?;
    }
    for row in rows {
        out.write_record(columns.iter().map(|c| cell_text(&row[c.as_str()])))?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(Bytes::from(bytes))
}

/// An error in the middle of a streamed body: the response is already under way, so the body
/// is cut short (the client sees a truncated transfer) and the cause is logged.
fn broken(what: &str, error: &ApiError) -> std::io::Error {
    tracing::error!(export = what, error = %error, "an export stopped part-way");
    std::io::Error::other(error.to_string())
}

/// The CSV of `pages`: a header of `columns`, then the rows, page by page.
fn csv_body(what: String, columns: Vec<String>, pages: Pages) -> Body {
    let mut first = true;
    let chunks = pages.map(move |page| {
        let page = page.map_err(|e| broken(&what, &e))?;
        let header = std::mem::take(&mut first).then_some(columns.as_slice());
        csv_chunk(header, &columns, &page).map_err(std::io::Error::other)
    });
    Body::from_stream(chunks)
}

/// A JSON array of the rows of `pages`, streamed.
fn json_body(what: String, pages: Pages) -> Body {
    let mut first = true;
    let open =
        futures::stream::once(async { Ok::<Bytes, std::io::Error>(Bytes::from_static(b"[")) });
    let rows = pages.map(move |page| {
        let page = page.map_err(|e| broken(&what, &e))?;
        let mut out = Vec::new();
        for row in &page {
            if !std::mem::take(&mut first) {
                out.push(b',');
            }
            out.push(b'\n');
            serde_json::to_writer(&mut out, row).map_err(std::io::Error::other)?;
        }
        Ok(Bytes::from(out))
    });
    let close = futures::stream::once(async { Ok(Bytes::from_static(b"\n]\n")) });
    Body::from_stream(open.chain(rows).chain(close))
}

/// The response of an export named `name` (the download's file name, spaces as `_`).
pub(crate) async fn respond(
    name: &str,
    format: ExportFormat,
    columns: Vec<String>,
    pages: Pages,
) -> ApiResult<Response> {
    let body = match format {
        ExportFormat::Csv => csv_body(name.to_string(), columns, pages),
        ExportFormat::Json => json_body(name.to_string(), pages),
        ExportFormat::Xlsx => crate::xlsx::export_body(name, columns, pages).await?,
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    if let Ok(disposition) = HeaderValue::from_str(&format!(
        "attachment; filename=\"{}.{}\"",
        name.replace(' ', "_"),
        format.extension()
    )) {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}
