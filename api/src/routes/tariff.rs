//! `/api/tariff/*` (legacy-system.md §1.10, §6.1): the global rate (written to `tblconfig`
//! through the audited writer, now or when a future date falls due), site and customer
//! overrides with effective dates, resolution, and history.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use chrono::{NaiveDateTime, Utc};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use domain::account::AccountNumber;
use domain::acdb::{AcdbRow, AcdbValue};
use domain::catalog::{KeyPart, RowKey};
use domain::command::WriteOutcome;
use domain::dates::maseru_local;
use domain::site::SiteCode;
use domain::tariff::{
    check_rate, parse_effective_from, resolve, ResolvedRate, TariffCommand, TariffError,
    TariffSchedule, TariffScope,
};
use domain::write::{TableWrite, WriteAction};
use projections::tariffs::HistoryFilter;

use crate::auth::CurrentUser;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::routes::mutations::{instant_param, int_param};
use crate::AppState;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tariff/current", get(current))
        .route("/api/tariff/resolve/{identifier}", get(resolve_rate))
        .route("/api/tariff/global", put(set_global))
        .route(
            "/api/tariff/concession/{code}",
            put(set_concession).delete(remove_concession),
        )
        .route(
            "/api/tariff/customer/{customer_id}",
            put(set_customer).delete(remove_customer),
        )
        .route("/api/tariff/history", get(history))
}

impl From<TariffError> for ApiError {
    fn from(error: TariffError) -> Self {
        match error {
            TariffError::Invalid { field, problem } => ApiError::invalid(field, problem),
            TariffError::NoOverride(_) => ApiError::NotFound(error.to_string()),
        }
    }
}

pub(crate) fn tariff_role(user: &CurrentUser) -> ApiResult<()> {
    let role = user.employee()?;
    if role.can_manage_tariffs() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Requires one of: [superadmin, onm_team, finance_team]".into(),
        ))
    }
}

pub(crate) fn now_local() -> NaiveDateTime {
    maseru_local(Utc::now())
}

fn format_local(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%dT%H:%M:%S").to_string()
}

#[derive(Debug, Deserialize)]
pub(crate) struct RateBody {
    pub(crate) rate_lsl: Box<RawValue>,
    #[serde(default)]
    pub(crate) effective_from: Option<String>,
    #[serde(default)]
    pub(crate) notes: Option<String>,
}

/// The rate as an exact decimal (a JSON number's text, or a string), checked.
fn parse_rate(raw: &RawValue) -> ApiResult<Decimal> {
    let text = raw.get().trim();
    let text = serde_json::from_str::<String>(text).unwrap_or_else(|_| text.to_string());
    let rate = Decimal::from_str_exact(text.trim())
        .map_err(|_| ApiError::invalid("rate_lsl", format!("{text:?} is not a number")))?;
    check_rate(rate)?;
    Ok(rate)
}

fn parse_from(raw: Option<&str>) -> ApiResult<Option<NaiveDateTime>> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(text) => parse_effective_from(text).map(Some).ok_or_else(|| {
            ApiError::invalid(
                "effective_from",
                format!("{text:?} is not a date (YYYY-MM-DD, YYYY-MM-DDTHH:MM, or RFC 3339)"),
            )
        }),
    }
}

pub(crate) fn concession_scope(code: &str) -> ApiResult<TariffScope> {
    let site =
        SiteCode::parse(code.trim()).map_err(|e| ApiError::invalid("code", e.to_string()))?;
    Ok(TariffScope::Concession(site.as_str().to_string()))
}

pub(crate) fn customer_scope(raw: &str) -> ApiResult<TariffScope> {
    raw.trim()
        .parse::<i64>()
        .map(TariffScope::Customer)
        .map_err(|_| ApiError::invalid("customer_id", format!("{raw:?} is not a customer id")))
}

async fn execute(
    state: &AppState,
    user: &CurrentUser,
    scope: &TariffScope,
    command: TariffCommand,
) -> ApiResult<()> {
    let committed = state
        .tariffs
        .execute(scope, command, &user.command_context())
        .await?;
    state.visible_tariffs(committed).await
}

pub(crate) async fn set_override(
    state: &AppState,
    user: &CurrentUser,
    scope: TariffScope,
    body: RateBody,
) -> ApiResult<Json<Value>> {
    tariff_role(user)?;
    let rate = parse_rate(&body.rate_lsl)?;
    let effective_from = parse_from(body.effective_from.as_deref())?.unwrap_or_else(now_local);
    let before = state.read_models.tariff_schedule(&scope).await?;
    let previous = before.rate_at(effective_from).map(|(_, r)| r);
    execute(
        state,
        user,
        &scope,
        TariffCommand::Set {
            effective_from,
            rate: Some(rate),
            notes: body.notes,
        },
    )
    .await?;
    Ok(Json(json!({
        "status": "set",
        "scope": scope.kind(),
        "scope_key": scope.key(),
        "rate_lsl": rate.to_string(),
        "previous_rate": previous.map(|r| r.to_string()),
        "effective_from": format_local(effective_from),
        "pending": effective_from > now_local(),
    })))
}

pub(crate) async fn remove_override(
    state: &AppState,
    user: &CurrentUser,
    scope: TariffScope,
) -> ApiResult<Json<Value>> {
    tariff_role(user)?;
    let now = now_local();
    let schedule = state.read_models.tariff_schedule(&scope).await?;
    let previous = schedule.rate_at(now).map(|(_, r)| r);
    let anything_pending = schedule.pending(now).any(|(_, e)| e.rate.is_some());
    if previous.is_none() && !anything_pending {
        return Err(TariffError::NoOverride(scope.aggregate_id()).into());
    }
    execute(
        state,
        user,
        &scope,
        TariffCommand::Set {
            effective_from: now,
            rate: None,
            notes: Some("Override removed".into()),
        },
    )
    .await?;
    // Later entries would bring the override back: they go too.
    for (date, _) in schedule.pending(now) {
        execute(
            state,
            user,
            &scope,
            TariffCommand::Clear {
                effective_from: *date,
            },
        )
        .await?;
    }
    Ok(Json(json!({
        "status": "removed",
        "scope": scope.kind(),
        "scope_key": scope.key(),
        "previous_rate": previous.map(|r| r.to_string()),
    })))
}

async fn set_concession(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(code): Path<String>,
    JsonBody(body): JsonBody<RateBody>,
) -> ApiResult<Json<Value>> {
    let scope = concession_scope(&code)?;
    set_override(&state, &user, scope, body).await
}

async fn set_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(customer_id): Path<String>,
    JsonBody(body): JsonBody<RateBody>,
) -> ApiResult<Json<Value>> {
    let scope = customer_scope(&customer_id)?;
    if let TariffScope::Customer(id) = scope {
        if state.read_models.customer_by_id(id).await?.is_none() {
            return Err(ApiError::NotFound(format!("Customer {id} not found")));
        }
    }
    set_override(&state, &user, scope, body).await
}

async fn remove_concession(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(code): Path<String>,
) -> ApiResult<Json<Value>> {
    let scope = concession_scope(&code)?;
    remove_override(&state, &user, scope).await
}

async fn remove_customer(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(customer_id): Path<String>,
) -> ApiResult<Json<Value>> {
    let scope = customer_scope(&customer_id)?;
    remove_override(&state, &user, scope).await
}

async fn set_global(
    State(state): State<AppState>,
    user: CurrentUser,
    JsonBody(body): JsonBody<RateBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    set_global_rate(&state, &user, body).await
}

/// Sets the global rate for `user` — the JSON API's and the portal's — answering what
/// `PUT /api/tariff/global` answers.
pub(crate) async fn set_global_rate(
    state: &AppState,
    user: &CurrentUser,
    body: RateBody,
) -> ApiResult<(StatusCode, Json<Value>)> {
    tariff_role(user)?;
    let rate = parse_rate(&body.rate_lsl)?;
    let now = now_local();
    let effective_from = parse_from(body.effective_from.as_deref())?.unwrap_or(now);
    let previous = state.read_models.global_rate().await?.map(|(r, _)| r);
    if effective_from > now {
        execute(
            state,
            user,
            &TariffScope::Global,
            TariffCommand::Set {
                effective_from,
                rate: Some(rate),
                notes: body.notes,
            },
        )
        .await?;
        return Ok((
            StatusCode::OK,
            Json(json!({
                "status": "scheduled",
                "rate_lsl": rate.to_string(),
                "previous_rate": previous.map(|r| r.to_string()),
                "effective_from": format_local(effective_from),
            })),
        ));
    }
    let row = state.read_models.global_rate_row().await?.ok_or_else(|| {
        ApiError::Unavailable("tblconfig has no row yet (is the ACDB imported?)".into())
    })?;
    let key = match row.parse::<i64>() {
        Ok(id) => RowKey(vec![KeyPart::Int(id)]),
        Err(_) => RowKey(vec![KeyPart::Text(row)]),
    };
    let write = TableWrite {
        table: "tblconfig".into(),
        action: WriteAction::Update,
        key: Some(key),
        values: AcdbRow::new().with("therate", AcdbValue::Decimal { decimal: rate }),
    };
    let outcome = state.writes.submit(write, &user.command_context()).await?;
    match outcome {
        WriteOutcome::Applied { position, .. } => {
            state.visible_mutation(position).await?;
            if let Some(position) = position {
                state
                    .read_models
                    .wait_until_applied(projections::tariffs::NAME, position, crate::VISIBLE_WITHIN)
                    .await?;
            }
            Ok((
                StatusCode::OK,
                Json(json!({
                    "status": "applied",
                    "rate_lsl": rate.to_string(),
                    "previous_rate": previous.map(|r| r.to_string()),
                    "effective_from": format_local(now),
                    "mutation_id": position,
                })),
            ))
        }
        WriteOutcome::Failed { reason, .. } => Err(ApiError::BadRequest(format!(
            "Setting the global rate failed: {reason}"
        ))),
        WriteOutcome::Pending { command_id } => Ok((
            StatusCode::ACCEPTED,
            Json(json!({
                "status": "pending",
                "rate_lsl": rate.to_string(),
                "command_id": command_id,
            })),
        )),
    }
}

fn entry_json(e: &projections::tariffs::Entry, now: NaiveDateTime) -> Value {
    json!({
        "scope_key": e.scope_key,
        "rate_lsl": e.rate_lsl.map(|r| r.to_string()),
        "effective_from": format_local(e.effective_from),
        "set_by": e.set_by,
        "set_by_name": e.set_by_name,
        "set_at": e.set_at.to_rfc3339(),
        "notes": e.notes,
        "pending": e.effective_from > now,
    })
}

/// The entries of a scope that matter now: the one in force per key and those still to come.
pub(crate) fn live(
    entries: &[projections::tariffs::Entry],
    now: NaiveDateTime,
) -> Vec<&projections::tariffs::Entry> {
    let mut shown = Vec::new();
    let mut keys: Vec<&str> = entries.iter().map(|e| e.scope_key.as_str()).collect();
    keys.dedup();
    for key in keys {
        let of_key: Vec<_> = entries.iter().filter(|e| e.scope_key == key).collect();
        if let Some(in_force) = of_key.iter().rev().find(|e| e.effective_from <= now) {
            if in_force.rate_lsl.is_some() {
                shown.push(*in_force);
            }
        }
        shown.extend(
            of_key
                .iter()
                .filter(|e| e.effective_from > now && e.rate_lsl.is_some())
                .copied(),
        );
    }
    shown
}

fn live_entries(entries: &[projections::tariffs::Entry], now: NaiveDateTime) -> Vec<Value> {
    live(entries, now)
        .into_iter()
        .map(|e| entry_json(e, now))
        .collect()
}

async fn current(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let now = now_local();
    let global = state.read_models.global_rate().await?;
    let pending_global = state
        .read_models
        .tariff_entries("global")
        .await?
        .into_iter()
        .filter(|e| e.effective_from > now && !e.applied)
        .min_by_key(|e| e.effective_from)
        .map(|e| {
            json!({
                "rate_lsl": e.rate_lsl.map(|r| r.to_string()),
                "effective_from": format_local(e.effective_from),
                "notes": e.notes,
            })
        });
    let concessions = live_entries(&state.read_models.tariff_entries("concession").await?, now);
    let customers = live_entries(&state.read_models.tariff_entries("customer").await?, now);
    Ok(Json(json!({
        "global_rate": global.map(|(r, _)| r.to_string()),
        "global_since": global.map(|(_, since)| format_local(since)),
        "pending_global": pending_global,
        "concession_overrides": concessions,
        "customer_overrides": customers,
        "customer_override_count": customers.len(),
    })))
}

/// A customer's and a site's rate schedules, each with its key, when there is a customer or a
/// site to look up.
type Overrides = (
    Option<(i64, TariffSchedule)>,
    Option<(String, TariffSchedule)>,
);

/// The schedules that can override the global rate for `customer` and `concession`.
pub(crate) async fn override_schedules(
    state: &AppState,
    customer: Option<i64>,
    concession: Option<&str>,
) -> ApiResult<Overrides> {
    let customer_schedule = match customer {
        Some(id) => Some((
            id,
            state
                .read_models
                .tariff_schedule(&TariffScope::Customer(id))
                .await?,
        )),
        None => None,
    };
    let concession_schedule = match concession {
        Some(code) => Some((
            code.to_string(),
            state
                .read_models
                .tariff_schedule(&TariffScope::Concession(code.to_string()))
                .await?,
        )),
        None => None,
    };
    Ok((customer_schedule, concession_schedule))
}

/// The rate at `at`: the customer's override, else the site's, else `global`.
pub(crate) fn resolve_with(
    at: NaiveDateTime,
    customer: &Option<(i64, TariffSchedule)>,
    concession: &Option<(String, TariffSchedule)>,
    global: (Decimal, Option<NaiveDateTime>),
) -> ResolvedRate {
    resolve(
        at,
        customer.as_ref().map(|(id, s)| (*id, s)),
        concession.as_ref().map(|(c, s)| (c.as_str(), s)),
        global,
    )
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResolveQuery {
    at: Option<String>,
}

async fn resolve_rate(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(identifier): Path<String>,
    Query(query): Query<ResolveQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let at = match query.at.as_deref() {
        Some(raw) => parse_effective_from(raw)
            .ok_or_else(|| ApiError::invalid("at", format!("{raw:?} is not a date")))?,
        None => now_local(),
    };
    let text = identifier.trim();
    let (customer, concession) = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let id: i64 = text
            .parse()
            .map_err(|_| ApiError::invalid("identifier", "is not a customer id"))?;
        let customer = state
            .read_models
            .customer_by_id(id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("Customer {id} not found")))?;
        let site = customer.site.as_ref().map(|s| s.as_str().to_string());
        (Some(id), site)
    } else {
        let account = AccountNumber::parse(text)
            .map_err(|e| ApiError::invalid("identifier", e.to_string()))?;
        let customer = state
            .read_models
            .customers_by_account(account.as_str())
            .await?
            .into_iter()
            .next();
        (
            customer.map(|c| c.customer_id),
            Some(account.site().as_str().to_string()),
        )
    };
    let (customer_schedule, concession_schedule) =
        override_schedules(&state, customer, concession.as_deref()).await?;
    let global = state
        .read_models
        .global_rate_at(at, now_local())
        .await?
        .ok_or_else(|| {
            ApiError::Unavailable(
                "the global rate is not known yet (is tblconfig imported?)".into(),
            )
        })?;
    let resolved = resolve_with(at, &customer_schedule, &concession_schedule, global);
    let level = |name: &str, key: String, schedule: Option<&TariffSchedule>| {
        let found = schedule.and_then(|s| s.rate_at(at));
        json!({
            "level": name,
            "key": key,
            "rate_lsl": found.map(|(_, r)| r.to_string()),
            "effective_from": found.map(|(d, _)| format_local(d)),
        })
    };
    let mut cascade = Vec::new();
    if let Some((id, schedule)) = &customer_schedule {
        cascade.push(level("customer", id.to_string(), Some(schedule)));
    }
    if let Some((code, schedule)) = &concession_schedule {
        cascade.push(level("concession", code.clone(), Some(schedule)));
    }
    cascade.push(json!({
        "level": "global",
        "key": "therate",
        "rate_lsl": global.0.to_string(),
        "effective_from": global.1.map(format_local),
    }));
    Ok(Json(json!({
        "rate_lsl": resolved.rate.to_string(),
        "source": resolved.source,
        "source_key": resolved.source_key,
        "effective_from": resolved.effective_from.map(format_local),
        "customer_id": customer.map(|c| c.to_string()),
        "concession": concession,
        "at": format_local(at),
        "cascade": cascade,
    })))
}

#[derive(Debug, Deserialize)]
pub(crate) struct HistoryQuery {
    page: Option<String>,
    limit: Option<String>,
    scope: Option<String>,
    key: Option<String>,
    from: Option<String>,
    to: Option<String>,
}

async fn history(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<HistoryQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let page = int_param("page", query.page.as_deref(), 1, 1, i64::MAX / 1000)?;
    let limit = int_param("limit", query.limit.as_deref(), 50, 1, 200)?;
    let scope = query.scope.filter(|s| !s.trim().is_empty());
    if let Some(scope) = &scope {
        if !matches!(scope.as_str(), "global" | "concession" | "customer") {
            return Err(ApiError::invalid(
                "scope",
                "must be global, concession or customer",
            ));
        }
    }
    let filter = HistoryFilter {
        scope,
        key: query.key.filter(|k| !k.trim().is_empty()),
        from: instant_param("from", query.from.as_deref())?,
        to: instant_param("to", query.to.as_deref())?,
    };
    let (rows, total) = state
        .read_models
        .tariff_history(&filter, limit, (page - 1) * limit)
        .await?;
    let history: Vec<Value> = rows
        .iter()
        .map(|h| {
            json!({
                "id": h.id,
                "timestamp": h.recorded_at.to_rfc3339(),
                "scope": h.scope,
                "scope_key": h.scope_key,
                "action": h.action,
                "rate_lsl": h.rate_lsl.map(|r| r.to_string()).unwrap_or_else(|| "0".into()),
                "previous_rate": h.previous_rate.map(|r| r.to_string()),
                "effective_from": format_local(h.effective_from),
                "set_by": h.set_by,
                "set_by_name": h.set_by_name,
                "notes": h.notes,
            })
        })
        .collect();
    Ok(Json(json!({
        "history": history,
        "total": total,
        "page": page,
        "limit": limit,
        "pages": ((total + limit - 1) / limit).max(1),
    })))
}
