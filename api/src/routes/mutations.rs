//! `/api/mutations`: the audit of every change (legacy-system.md §1.8, §5), and revert — a
//! compensating command, itself audited and revertible, refused with 409 when a later change to
//! the same record would be overwritten.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use domain::acdb::AcdbRow;
use domain::auth::{UserCommand, UserEvent};
use domain::catalog::{spec_for_aggregate, TableSpec};
use domain::command::WriteOutcome;
use domain::envelope::Channel;
use domain::record::RowChange;
use domain::tariff::{TariffCommand, TariffEvent, TariffScope};
use domain::write::{TableWrite, WriteAction};
use projections::mutations::{Mutation, MutationFilter, TARIFFS_TABLE, USERS_TABLE};

use crate::auth::CurrentUser;
use crate::error::{ApiError, ApiResult};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/mutations", get(list))
        .route("/api/mutations/{id}", get(detail))
        .route("/api/mutations/{id}/revert", post(revert))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ListQuery {
    page: Option<String>,
    limit: Option<String>,
    table: Option<String>,
    user: Option<String>,
    action: Option<String>,
    channel: Option<String>,
    record_id: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

pub(crate) fn int_param(
    name: &str,
    raw: Option<&str>,
    default: i64,
    min: i64,
    max: i64,
) -> ApiResult<i64> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(default);
    };
    let value: i64 = raw
        .parse()
        .map_err(|_| ApiError::invalid(name, format!("{raw:?} is not a whole number")))?;
    if value < min || value > max {
        return Err(ApiError::invalid(
            name,
            format!("must be between {min} and {max}"),
        ));
    }
    Ok(value)
}

/// A date (`2026-03-01`, from midnight UTC) or an RFC 3339 instant.
pub(crate) fn instant_param(name: &str, raw: Option<&str>) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    if let Ok(day) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        return Ok(Some(
            day.and_hms_opt(0, 0, 0).expect("midnight exists").and_utc(),
        ));
    }
    Err(ApiError::invalid(
        name,
        format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 instant"),
    ))
}

pub(crate) fn channel_param(raw: Option<&str>) -> ApiResult<Option<String>> {
    let Some(raw) = raw.map(str::trim).filter(|r| !r.is_empty()) else {
        return Ok(None);
    };
    raw.parse::<Channel>()
        .map(|c| Some(c.as_str().to_string()))
        .map_err(|_| {
            ApiError::invalid(
                "channel",
                "must be portal, api, whatsapp, cdc-external or system",
            )
        })
}

fn summary(m: &Mutation) -> Value {
    json!({
        "id": m.id,
        "timestamp": m.recorded_at.to_rfc3339(),
        "occurred_at": m.occurred_at,
        "user_type": m.user_type,
        "user_id": m.user_id,
        "user_name": m.user_name.clone().or_else(|| m.user_id.clone()),
        "channel": m.channel,
        "action": m.action,
        "table_name": m.table_name,
        "record_id": m.record_id,
        "reverted": m.reverted_by.is_some(),
        "reverted_by": m.reverted_by_user,
        "reverted_by_mutation": m.reverted_by,
        "reverted_at": m.reverted_at.map(|t| t.to_rfc3339()),
        "reverts": m.reverts,
    })
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ListQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let page = int_param("page", query.page.as_deref(), 1, 1, i64::MAX / 1000)?;
    let limit = int_param("limit", query.limit.as_deref(), 50, 1, 200)?;
    let filter = MutationFilter {
        table: query.table.filter(|t| !t.trim().is_empty()),
        user: query.user.filter(|t| !t.trim().is_empty()),
        action: query.action.filter(|t| !t.trim().is_empty()),
        channel: channel_param(query.channel.as_deref())?,
        record_id: query.record_id.filter(|t| !t.trim().is_empty()),
        from: instant_param("from", query.from.as_deref())?,
        to: instant_param("to", query.to.as_deref())?,
    };
    let (mutations, total) = state
        .read_models
        .mutations(&filter, limit, (page - 1) * limit)
        .await?;
    Ok(Json(json!({
        "mutations": mutations.iter().map(summary).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "limit": limit,
        "pages": ((total + limit - 1) / limit).max(1),
    })))
}

fn parse_id(raw: &str) -> ApiResult<i64> {
    raw.trim()
        .parse()
        .map_err(|_| ApiError::invalid("mutation_id", format!("{raw:?} is not a mutation id")))
}

pub(crate) async fn find(state: &AppState, id: i64) -> ApiResult<Mutation> {
    state
        .read_models
        .mutation(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("Mutation {id} not found")))
}

async fn detail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let m = find(&state, parse_id(&id)?).await?;
    let mut body = summary(&m);
    body["old_values"] = m.old_values.unwrap_or(Value::Null);
    body["new_values"] = m.new_values.unwrap_or(Value::Null);
    body["changed"] = json!(m.changed);
    body["role"] = json!(m.role);
    body["command_id"] = json!(m.command_id);
    Ok(Json(body))
}

async fn revert(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    revert_mutation(&state, &user, &id).await
}

/// Reverts mutation `id` for `user` — the JSON API's and the portal's revert — answering what
/// `POST /api/mutations/{id}/revert` answers; its `revert_mutation_id` names the compensation.
pub(crate) async fn revert_mutation(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let role = user.employee()?;
    if !role.can_revert() {
        return Err(ApiError::Forbidden(
            "Requires one of: [superadmin, onm_team]".into(),
        ));
    }
    let m = find(state, parse_id(id)?).await?;
    if let Some(by) = m.reverted_by {
        return Err(ApiError::Conflict(format!(
            "Mutation {} was already reverted by mutation {by}; revert that one to redo it",
            m.id
        )));
    }
    let latest = state
        .read_models
        .latest_mutation_of(&m.table_name, &m.record_id)
        .await?;
    if let Some(latest) = latest.filter(|latest| *latest != m.id) {
        return Err(ApiError::Conflict(format!(
            "{} {} changed after mutation {} (mutation {latest}); reverting would overwrite that change — revert {latest} first, or edit the record",
            m.table_name, m.record_id, m.id
        )));
    }
    let context = user.command_context().reverting(m.id);
    if m.table_name == USERS_TABLE {
        return revert_user_change(state, &m, &context).await;
    }
    if m.table_name == TARIFFS_TABLE {
        return revert_tariff_change(state, &m, &context).await;
    }
    let spec = spec_for_aggregate(&m.aggregate_type)
        .ok_or_else(|| ApiError::internal(format!("mutation {} names no captured table", m.id)))?;
    let change: RowChange = m
        .event
        .as_ref()
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .ok_or_else(|| ApiError::internal(format!("mutation {} has no readable change", m.id)))?;
    let write = compensation(spec, &m.record_id, change)?;
    let action = write.action;
    let outcome = state.writes.submit(write, &context).await?;
    let (status, body) =
        super::tables::outcome_response(state, spec.table, action, outcome.clone()).await?;
    let revert_id = match outcome {
        WriteOutcome::Applied { position, .. } => position,
        _ => None,
    };
    // A revert answers 200 whatever it did (the legacy did), or 202 while it is pending.
    let status = if status == StatusCode::ACCEPTED {
        status
    } else {
        StatusCode::OK
    };
    let mut body = body.0;
    body["message"] = json!(format!("Mutation {} reverted", m.id));
    body["action"] = json!(format!("revert_{}", action.as_str()));
    body["record_id"] = json!(m.record_id);
    body["revert_mutation_id"] = json!(revert_id);
    Ok((status, Json(body)))
}

/// The write that undoes `change` of row `record_id` of `spec`.
fn compensation(
    spec: &'static TableSpec,
    record_id: &str,
    change: RowChange,
) -> ApiResult<TableWrite> {
    let key = |row: &AcdbRow| {
        spec.row_key(row)
            .map_err(|e| ApiError::internal(format!("{}/{record_id}: {e}", spec.table)))
    };
    Ok(match change {
        RowChange::Created { row } => TableWrite {
            table: spec.table.to_string(),
            action: WriteAction::Delete,
            key: Some(key(&row)?),
            values: AcdbRow::new(),
        },
        RowChange::Updated {
            before, changed, ..
        } => {
            let mut values = AcdbRow::new();
            for column in &changed {
                values.insert(column.clone(), before.get(column).clone());
            }
            TableWrite {
                table: spec.table.to_string(),
                action: WriteAction::Update,
                key: Some(key(&before)?),
                values,
            }
        }
        RowChange::Deleted { before } => {
            let mut values = AcdbRow::new();
            for (column, value) in before.columns() {
                let is_key = spec.key.iter().any(|k| k.eq_ignore_ascii_case(column));
                if !is_key && !value.is_null() {
                    values.insert(column, value.clone());
                }
            }
            TableWrite {
                table: spec.table.to_string(),
                action: WriteAction::Create,
                key: Some(key(&before)?),
                values,
            }
        }
    })
}

async fn revert_user_change(
    state: &AppState,
    m: &Mutation,
    context: &domain::command::CommandContext,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event: UserEvent = m
        .event
        .as_ref()
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .ok_or_else(|| ApiError::internal(format!("mutation {} has no readable event", m.id)))?;
    let command = match event {
        UserEvent::RoleChanged { from, .. } => UserCommand::ChangeRole { role: from },
        UserEvent::ProfileChanged {
            before_name,
            before_email,
            ..
        } => UserCommand::ChangeProfile {
            name: before_name,
            email: before_email,
        },
        UserEvent::PasswordChanged { previous_hash, .. } => UserCommand::RestorePassword {
            password_hash: previous_hash,
            now: Utc::now(),
        },
        UserEvent::UserDisabled => UserCommand::Enable,
        // An account cannot be erased from the log: undoing its creation disables it.
        UserEvent::UserEnabled
        | UserEvent::EmployeeAdded { .. }
        | UserEvent::CustomerRegistered { .. } => UserCommand::Disable,
        UserEvent::RegistrationCodeIssued { .. } | UserEvent::TokenRevoked { .. } => {
            return Err(ApiError::BadRequest(
                "a registration code cannot be revoked by revert; it expires on its own".into(),
            ))
        }
    };
    let committed = state.users.execute(&m.record_id, command, context).await?;
    state.visible(committed).await?;
    state.visible_mutation(committed.position).await?;
    reverted(state, m, committed.position).await
}

/// The answer to a revert of a record ccare owns, naming what the compensation did.
async fn reverted(
    state: &AppState,
    m: &Mutation,
    position: Option<i64>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let action = match position {
        Some(position) => state
            .read_models
            .mutation(position)
            .await?
            .map(|r| r.action),
        None => None,
    };
    Ok((
        StatusCode::OK,
        Json(json!({
            "message": format!("Mutation {} reverted", m.id),
            "action": action,
            "table": m.table_name,
            "record_id": m.record_id,
            "revert_mutation_id": position,
        })),
    ))
}

async fn revert_tariff_change(
    state: &AppState,
    m: &Mutation,
    context: &domain::command::CommandContext,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let event: TariffEvent = m
        .event
        .as_ref()
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .ok_or_else(|| ApiError::internal(format!("mutation {} has no readable event", m.id)))?;
    let scope = TariffScope::from_aggregate_id(&m.record_id)
        .ok_or_else(|| ApiError::internal(format!("mutation {} names no tariff scope", m.id)))?;
    let command = match event {
        TariffEvent::EntrySet {
            effective_from,
            previous: Some(previous),
            ..
        }
        | TariffEvent::EntryCleared {
            effective_from,
            previous,
        } => TariffCommand::Set {
            effective_from,
            rate: previous.rate,
            notes: previous.notes,
        },
        TariffEvent::EntrySet {
            effective_from,
            previous: None,
            ..
        } => TariffCommand::Clear { effective_from },
        TariffEvent::GlobalRateApplied { .. } => {
            return Err(ApiError::BadRequest(
                "revert the tblconfig change the rate made instead".into(),
            ))
        }
    };
    let committed = state.tariffs.execute(&scope, command, context).await?;
    state.visible_tariffs(committed).await?;
    reverted(state, m, committed.position).await
}
