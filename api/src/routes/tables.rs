//! `POST/PUT/DELETE /api/tables/{table}[/{id}]`: the legacy generic table writes, every one a
//! command through the audited writer, with the role rules of legacy-system.md §4.4.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use domain::command::WriteOutcome;
use domain::write::{self, InputValue, WriteAction};

use crate::auth::CurrentUser;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tables/{table}", post(create))
        .route("/api/tables/{table}/{id}", put(update).delete(delete))
}

#[derive(Debug, Deserialize)]
pub(crate) struct WriteBody {
    data: BTreeMap<String, Box<RawValue>>,
}

/// A request value as the domain takes it: numbers keep their exact text.
fn input_value(column: &str, raw: &RawValue) -> ApiResult<InputValue> {
    let text = raw.get().trim();
    Ok(match text.as_bytes().first() {
        Some(b'"') => InputValue::Text(
            serde_json::from_str::<String>(text)
                .map_err(|_| ApiError::invalid(column, "is not a valid JSON string"))?,
        ),
        Some(b'{' | b'[') => {
            return Err(ApiError::invalid(
                column,
                "must be a single value, not an object or a list",
            ))
        }
        _ if text == "null" => InputValue::Null,
        _ if text == "true" => InputValue::Bool(true),
        _ if text == "false" => InputValue::Bool(false),
        _ => InputValue::Number(text.to_string()),
    })
}

fn inputs(body: &WriteBody) -> ApiResult<BTreeMap<String, InputValue>> {
    body.data
        .iter()
        .map(|(column, raw)| Ok((column.clone(), input_value(column, raw)?)))
        .collect()
}

/// 403 unless the caller's role may write `table` (and delete, for deletes).
pub(crate) fn check_rights(user: &CurrentUser, table: &str, action: WriteAction) -> ApiResult<()> {
    let role = user.employee()?;
    if action == WriteAction::Delete {
        if !role.can_delete() {
            return Err(ApiError::Forbidden(
                "Requires one of: [superadmin, onm_team]".into(),
            ));
        }
    } else if !role.can_write_table(table) {
        return Err(ApiError::Forbidden(format!(
            "Your role ({role}) cannot write {table}"
        )));
    }
    Ok(())
}

async fn submit(
    state: &AppState,
    user: &CurrentUser,
    table: &str,
    action: WriteAction,
    id: Option<&str>,
    data: &BTreeMap<String, InputValue>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let spec = write::writable_spec(table).map_err(ApiError::from)?;
    check_rights(user, spec.table, action)?;
    let columns = state.writes.columns(spec.table).await?;
    let validated = write::validate(spec.table, action, id, data, &columns)?;
    let outcome = state
        .writes
        .submit(validated, &user.command_context())
        .await?;
    outcome_response(state, spec.table, action, outcome).await
}

/// The legacy answers (`{"message": "Record created", "table": …}`), with the command and the
/// mutation it produced.
pub(crate) async fn outcome_response(
    state: &AppState,
    table: &str,
    action: WriteAction,
    outcome: WriteOutcome,
) -> ApiResult<(StatusCode, Json<Value>)> {
    match outcome {
        WriteOutcome::Applied {
            command_id,
            key,
            position,
        } => {
            let applied = std::time::Instant::now();
            state.visible_mutation(position).await?;
            tracing::debug!(%command_id, visible_ms = applied.elapsed().as_secs_f64() * 1e3, "write visible in the audit");
            let (status, message) = match action {
                WriteAction::Create => (StatusCode::CREATED, "Record created"),
                WriteAction::Update => (StatusCode::OK, "Record updated"),
                WriteAction::Delete => (StatusCode::OK, "Record deleted"),
            };
            Ok((
                status,
                Json(json!({
                    "message": message,
                    "table": table,
                    "id": key,
                    "command_id": command_id,
                    "mutation_id": position,
                })),
            ))
        }
        WriteOutcome::Failed { reason, .. } => {
            let verb = match action {
                WriteAction::Create => "Insert",
                WriteAction::Update => "Update",
                WriteAction::Delete => "Delete",
            };
            Err(ApiError::BadRequest(format!("{verb} failed: {reason}")))
        }
        WriteOutcome::Pending { command_id } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "message": "The write is recorded and will be applied to the ACDB shortly",
                "table": table,
                "command_id": command_id,
                "status": "pending",
            })),
        )),
    }
}

async fn create(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(table): Path<String>,
    JsonBody(body): JsonBody<WriteBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let data = inputs(&body)?;
    submit(&state, &user, &table, WriteAction::Create, None, &data).await
}

async fn update(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((table, id)): Path<(String, String)>,
    JsonBody(body): JsonBody<WriteBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let data = inputs(&body)?;
    submit(&state, &user, &table, WriteAction::Update, Some(&id), &data).await
}

async fn delete(
    State(state): State<AppState>,
    user: CurrentUser,
    Path((table, id)): Path<(String, String)>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    submit(
        &state,
        &user,
        &table,
        WriteAction::Delete,
        Some(&id),
        &BTreeMap::new(),
    )
    .await
}
