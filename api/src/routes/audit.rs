//! `/api/audit/*`, for auditors: a record as it stood at any instant and its whole history,
//! read from the events; the hash-chain check; the audit trail as CSV or JSON Lines.

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use domain::catalog::table_spec;
use domain::write::parse_record_id;
use projections::mutations::{Mutation, MutationFilter};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::routes::mutations::instant_param;
use crate::AppState;

/// Rows fetched per round trip while an export streams.
const EXPORT_PAGE: i64 = 1_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/audit/records/{table}/{id}", get(record_as_of))
        .route(
            "/api/audit/records/{table}/{id}/history",
            get(record_history),
        )
        .route("/api/audit/verify", get(verify))
        .route("/api/audit/export", get(export))
}

#[derive(Debug, Deserialize)]
pub(crate) struct AsOfQuery {
    as_of: Option<String>,
}

/// The aggregate of a record of `table` (any captured table, read-only ones included).
pub(crate) fn record_of(
    table: &str,
    id: &str,
) -> ApiResult<(&'static domain::catalog::TableSpec, String)> {
    let spec = table_spec(table)
        .ok_or_else(|| ApiError::NotFound(format!("Table {table:?} not found")))?;
    let key = if spec.key.len() == 1 {
        parse_record_id(spec, id)?.aggregate_id()
    } else {
        // A composite key is written as it is displayed (`meter|2026-01-01 00:10:00`).
        id.to_string()
    };
    Ok((spec, key))
}

fn change_json(change: &projections::history::RecordChange) -> Value {
    let m = &change.event.metadata;
    let (before, after) = match &change.change {
        domain::record::RowChange::Created { row } => (None, Some(row.to_plain_json())),
        domain::record::RowChange::Updated { before, after, .. } => {
            (Some(before.to_plain_json()), Some(after.to_plain_json()))
        }
        domain::record::RowChange::Deleted { before } => (Some(before.to_plain_json()), None),
    };
    json!({
        "position": change.event.position,
        "sequence": change.event.sequence,
        "event_type": change.event.event_type,
        "recorded_at": change.event.recorded_at.to_rfc3339(),
        "occurred_at": m.get("occurred_at"),
        "channel": m.get("channel"),
        "user_id": m.get("actor_user_id"),
        "role": m.get("actor_role"),
        "capture": m.get("cdc_phase"),
        "command_id": m.get("causation_id"),
        "reverts": m.get(domain::envelope::REVERTS_KEY),
        "before": before,
        "after": after,
    })
}

async fn record_as_of(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((table, id)): Path<(String, String)>,
    Query(query): Query<AsOfQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let (spec, key) = record_of(&table, &id)?;
    let as_of = instant_param("as_of", query.as_of.as_deref())?;
    let changes = state
        .read_models
        .record_changes(spec.aggregate_type, &key, as_of)
        .await?;
    let record = projections::history::state_after(&changes);
    if changes.is_empty() {
        return Err(ApiError::NotFound(format!(
            "{} {key} has no recorded history{}",
            spec.table,
            as_of.map_or(String::new(), |t| format!(" before {}", t.to_rfc3339()))
        )));
    }
    let last = changes.last().map(change_json);
    Ok(Json(json!({
        "table": spec.table,
        "record_id": key,
        "as_of": as_of.unwrap_or_else(Utc::now).to_rfc3339(),
        "exists": record.is_some(),
        "record": record.map(|r| r.to_plain_json()),
        "changes": changes.len(),
        "last_change": last,
    })))
}

async fn record_history(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((table, id)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let (spec, key) = record_of(&table, &id)?;
    let changes = state
        .read_models
        .record_changes(spec.aggregate_type, &key, None)
        .await?;
    if changes.is_empty() {
        return Err(ApiError::NotFound(format!(
            "{} {key} has no recorded history",
            spec.table
        )));
    }
    Ok(Json(json!({
        "table": spec.table,
        "record_id": key,
        "history": changes.iter().map(change_json).collect::<Vec<_>>(),
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct VerifyQuery {
    full: Option<bool>,
}

async fn verify(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<VerifyQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let full = query.full.unwrap_or(false);
    let check = state
        .chain
        .verify(full)
        .await
        .map_err(ApiError::Unavailable)?;
    Ok(Json(json!({
        "intact": check.first_broken.is_none(),
        "full": full,
        "checked": check.checked,
        "head_position": check.head_position,
        "first_broken": check.first_broken.map(|(position, problem)| json!({"position": position, "problem": problem})),
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ExportQuery {
    format: Option<String>,
    table: Option<String>,
    user: Option<String>,
    action: Option<String>,
    channel: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ExportFormat {
    Csv,
    JsonLines,
}

const CSV_HEADER: &[&str] = &[
    "id",
    "timestamp",
    "occurred_at",
    "user_type",
    "user_id",
    "user_name",
    "role",
    "channel",
    "action",
    "table_name",
    "record_id",
    "changed",
    "old_values",
    "new_values",
    "reverts",
    "reverted_by_mutation",
    "reverted_at",
];

fn json_text(value: &Option<Value>) -> String {
    value.as_ref().map(Value::to_string).unwrap_or_default()
}

fn rfc3339(at: Option<DateTime<Utc>>) -> String {
    at.map(|t| t.to_rfc3339()).unwrap_or_default()
}

fn csv_rows(rows: &[Mutation], with_header: bool) -> Result<Bytes, csv::Error> {
    let mut out = csv::Writer::from_writer(Vec::new());
    if with_header {
        out.write_record(CSV_HEADER)?;
    }
    for m in rows {
        out.write_record([
            m.id.to_string(),
            m.recorded_at.to_rfc3339(),
            m.occurred_at.clone().unwrap_or_default(),
            m.user_type.clone().unwrap_or_default(),
            m.user_id.clone().unwrap_or_default(),
            m.user_name.clone().unwrap_or_default(),
            m.role.clone().unwrap_or_default(),
            m.channel.clone(),
            m.action.clone(),
            m.table_name.clone(),
            m.record_id.clone(),
            m.changed.join(";"),
            json_text(&m.old_values),
            json_text(&m.new_values),
            m.reverts.map(|r| r.to_string()).unwrap_or_default(),
            m.reverted_by.map(|r| r.to_string()).unwrap_or_default(),
            rfc3339(m.reverted_at),
        ])?;
    }
    let bytes = out.into_inner().map_err(|e| e.into_error())?;
    Ok(Bytes::from(bytes))
}

fn jsonl_rows(rows: &[Mutation]) -> Bytes {
    let mut out = Vec::new();
    for m in rows {
        let line = json!({
            "id": m.id,
            "timestamp": m.recorded_at.to_rfc3339(),
            "occurred_at": m.occurred_at,
            "user_type": m.user_type,
            "user_id": m.user_id,
            "user_name": m.user_name,
            "role": m.role,
            "channel": m.channel,
            "action": m.action,
            "table_name": m.table_name,
            "record_id": m.record_id,
            "changed": m.changed,
            "old_values": m.old_values,
            "new_values": m.new_values,
            "reverts": m.reverts,
            "reverted_by_mutation": m.reverted_by,
            "reverted_at": m.reverted_at.map(|t| t.to_rfc3339()),
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    Bytes::from(out)
}

/// The audit trail, oldest first, streamed page by page: memory stays one page whatever its size.
async fn export(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ExportQuery>,
) -> ApiResult<Response> {
    user.employee()?;
    let format = match query.format.as_deref().map(str::trim) {
        None | Some("" | "csv") => ExportFormat::Csv,
        Some("jsonl" | "ndjson") => ExportFormat::JsonLines,
        Some(other) => {
            return Err(ApiError::invalid(
                "format",
                format!("{other:?} is not csv or jsonl"),
            ))
        }
    };
    let channel = match query
        .channel
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        None => None,
        Some(c) => Some(
            c.parse::<domain::envelope::Channel>()
                .map_err(|_| ApiError::invalid("channel", "is not a channel"))?
                .as_str()
                .to_string(),
        ),
    };
    let filter = MutationFilter {
        table: query.table.filter(|t| !t.trim().is_empty()),
        user: query.user.filter(|t| !t.trim().is_empty()),
        action: query.action.filter(|t| !t.trim().is_empty()),
        channel,
        record_id: None,
        from: instant_param("from", query.from.as_deref())?,
        to: instant_param("to", query.to.as_deref())?,
    };
    let read_models = state.read_models.clone();
    // (last id sent, first page, done)
    let pages = futures::stream::unfold((0i64, true, false), move |(after, first, done)| {
        let read_models = read_models.clone();
        let filter = filter.clone();
        async move {
            if done {
                return None;
            }
            let rows = match read_models
                .mutations_after(&filter, after, EXPORT_PAGE)
                .await
            {
                Ok(rows) => rows,
                Err(e) => {
                    tracing::error!(error = %e, "the audit export stopped: the read model failed");
                    return Some((
                        Err(std::io::Error::other(e.to_string())),
                        (after, false, true),
                    ));
                }
            };
            let last = rows.last().map_or(after, |m| m.id);
            let finished = (rows.len() as i64) < EXPORT_PAGE;
            let chunk = match format {
                ExportFormat::Csv => csv_rows(&rows, first).map_err(std::io::Error::other),
                ExportFormat::JsonLines => Ok(jsonl_rows(&rows)),
            };
            Some((chunk, (last, false, finished)))
        }
    });
    let (content_type, extension) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
        ExportFormat::JsonLines => ("application/x-ndjson", "jsonl"),
    };
    let mut response = Body::from_stream(pages).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(disposition) =
        HeaderValue::from_str(&format!("attachment; filename=\"ccare-audit.{extension}\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, disposition);
    }
    Ok(response)
}
