//! `/api/tickets` and `/api/conversations`: the tickets ccare numbers (opened by the WhatsApp
//! bridge or staff) and the customers' WhatsApp conversations, for staff.
//!
//! The legacy kept tickets in uGridPlan and conversations in the bot's memory, for two hours
//! (legacy-system.md §7.5, §7.7); here both are event-sourced aggregates read back from the
//! `tickets` and `conversations` read models. Any employee may read them and comment; only
//! superadmin and onm_team move a ticket's status. Customers get 403 on all of them.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use domain::auth::Role;
use domain::conversation::Conversation;
use domain::envelope::maseru_time;
use domain::phone::PhoneNumber;
use domain::site::SiteCode;
use domain::ticket::{
    Category, Priority, TicketChannel, TicketCommand, TicketError, TicketNumber, TicketStatus,
    MAX_TEXT_CHARS,
};
use projections::conversations::{ConversationSummary, Message, Party};
use projections::tickets::{ActiveGroup, TicketActivity, TicketFilter, TicketRow, TicketSort};

use crate::auth::CurrentUser;
use crate::body::JsonBody;
use crate::error::{ApiError, ApiResult};
use crate::routes::mutations::int_param;
use crate::AppState;

/// Who may move a ticket's status (the JSON endpoint and the portal's form).
pub(crate) const STATUS_ROLES: &[Role] = &[Role::Superadmin, Role::OnmTeam];

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/tickets", get(list))
        .route("/api/tickets/summary", get(summary))
        .route("/api/tickets/{number}", get(detail))
        .route("/api/tickets/{number}/comments", post(comment))
        .route("/api/tickets/{number}/status", post(change_status))
        .route("/api/conversations", get(conversations))
}

/// The most messages a ticket's page shows (the rest: `/api/conversations?phone=…`).
const MESSAGES_ON_A_TICKET: i64 = 200;

/// The largest page of tickets or messages.
const MAX_PAGE_SIZE: i64 = 200;

/// The longest free-text search accepted (characters).
const MAX_QUERY_CHARS: usize = 200;

impl From<TicketError> for ApiError {
    fn from(error: TicketError) -> Self {
        match error {
            TicketError::NotFound => ApiError::NotFound(error.to_string()),
            TicketError::Empty { field } => ApiError::invalid(field, "must not be empty"),
            TicketError::TooLong { field } => {
                ApiError::invalid(field, format!("at most {MAX_TEXT_CHARS} characters"))
            }
            TicketError::AlreadyOpened(_)
            | TicketError::NotActive(_)
            | TicketError::SameStatus(_)
            | TicketError::SameClassification
            | TicketError::ForwardedAs(_) => ApiError::Conflict(error.to_string()),
        }
    }
}

fn no_such_ticket() -> ApiError {
    ApiError::NotFound(TicketError::NotFound.to_string())
}

/// The ticket number of a path; a malformed one names no ticket.
fn parse_number(raw: &str) -> ApiResult<TicketNumber> {
    raw.parse().map_err(|_| no_such_ticket())
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339()
}

fn ticket_json(t: &TicketRow, now: DateTime<Utc>) -> Value {
    json!({
        "ticket_number": t.ticket_number,
        "site": t.site,
        "status": t.status,
        "category": t.category,
        "priority": t.priority,
        "summary": t.summary,
        "description": t.description,
        "customer_id": t.customer_id,
        "phone": t.phone,
        "channel": t.channel,
        "triaged_by": t.triaged_by,
        "ugridplan_id": t.ugridplan_id,
        "comments": t.comments,
        "opened_at": time(t.opened_at),
        "updated_at": time(t.updated_at),
        "age_seconds": (now - t.opened_at).num_seconds().max(0),
    })
}

fn activity_json(a: &TicketActivity) -> Value {
    json!({
        "position": a.position,
        "kind": a.kind,
        "actor": a.actor,
        "channel": a.channel,
        "text": a.text,
        "from_status": a.from_status,
        "to_status": a.to_status,
        "at": time(a.at),
    })
}

fn message_json(m: &Message) -> Value {
    let media = match (&m.media_kind, &m.media_id) {
        (Some(kind), Some(id)) => json!({"kind": kind, "id": id}),
        _ => Value::Null,
    };
    json!({
        "position": m.position,
        "phone": m.phone,
        "direction": m.direction,
        "message_id": m.message_id,
        "wamid": m.wamid,
        "text": m.text,
        "media": media,
        "reply_kind": m.reply_kind,
        "at": time(m.at),
        "status": m.status,
        "status_at": m.status_at.map(time),
        "ticket_number": m.ticket_number,
    })
}

fn conversation_json(c: &ConversationSummary, now: DateTime<Utc>) -> Value {
    // Whether free text may still be sent is the domain's rule (the 24-hour service window).
    let window = Conversation {
        last_inbound_at: c.last_inbound_at,
        ..Conversation::default()
    };
    json!({
        "phone": c.phone,
        "customer_id": c.customer_id,
        "profile_name": c.profile_name,
        "last_inbound_at": c.last_inbound_at.map(time),
        "last_exchange_at": c.last_exchange_at.map(time),
        "ticket_number": c.ticket_number,
        "messages_in": c.messages_in,
        "messages_out": c.messages_out,
        "asked_for_account": c.asked_for_account,
        "within_service_window": window.within_service_window(now),
    })
}

/// The values of query parameter `name`, repeated or comma-separated, blanks left out.
fn values<'a>(pairs: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    pairs
        .iter()
        .filter(|(key, _)| key == name)
        .flat_map(|(_, value)| value.split(','))
        .map(str::trim)
        .filter(|value| !value.is_empty())
        .collect()
}

/// The single value of query parameter `name`, if given (422 when given twice).
fn single<'a>(pairs: &'a [(String, String)], name: &str) -> ApiResult<Option<&'a str>> {
    let mut given = pairs
        .iter()
        .filter(|(key, _)| key == name)
        .map(|(_, value)| value.trim())
        .filter(|value| !value.is_empty());
    let first = given.next();
    if given.next().is_some() {
        return Err(ApiError::invalid(name, "give it once"));
    }
    Ok(first)
}

/// The instant Maseru's day `day` begins.
fn maseru_midnight(day: NaiveDate) -> DateTime<Utc> {
    let offset = *maseru_time(Utc::now()).offset();
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    offset
        .from_local_datetime(&midnight)
        .single()
        .map_or_else(|| midnight.and_utc(), |at| at.with_timezone(&Utc))
}

/// A day (`2026-03-01`, Africa/Maseru) or an RFC 3339 instant; with `end_of_day`, a day counts
/// to its end (the instant the next day begins).
fn instant(name: &str, raw: Option<&str>, end_of_day: bool) -> ApiResult<Option<DateTime<Utc>>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return Ok(Some(at.with_timezone(&Utc)));
    }
    let day = NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
        ApiError::invalid(
            name,
            format!("{raw:?} is not a date (YYYY-MM-DD) or an RFC 3339 instant"),
        )
    })?;
    let day = if end_of_day {
        day.succ_opt()
            .ok_or_else(|| ApiError::invalid(name, format!("{raw:?} is out of range")))?
    } else {
        day
    };
    Ok(Some(maseru_midnight(day)))
}

fn parse_sort(raw: Option<&str>) -> ApiResult<TicketSort> {
    match raw.map(str::to_ascii_lowercase).as_deref() {
        None | Some("newest") => Ok(TicketSort::Newest),
        Some("oldest") => Ok(TicketSort::Oldest),
        Some("updated") => Ok(TicketSort::Updated),
        Some("priority") => Ok(TicketSort::Priority),
        Some(_) => Err(ApiError::invalid(
            "sort",
            "must be newest, oldest, updated or priority",
        )),
    }
}

fn parse_status(field: &str, raw: &str) -> ApiResult<TicketStatus> {
    raw.trim()
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| ApiError::invalid(field, "must be open, in-progress, resolved or closed"))
}

fn parse_phone(raw: &str) -> ApiResult<PhoneNumber> {
    PhoneNumber::parse(raw)
        .map_err(|e| ApiError::invalid("phone", format!("{raw:?} is not a phone number: {e}")))
}

fn parse_customer_id(raw: &str) -> ApiResult<i64> {
    raw.parse()
        .map_err(|_| ApiError::invalid("customer_id", format!("{raw:?} is not a customer id")))
}

/// `page` and `page_size` (default 50, at most [`MAX_PAGE_SIZE`]).
fn paging(page: Option<&str>, page_size: Option<&str>) -> ApiResult<(i64, i64)> {
    let page = int_param("page", page, 1, 1, i64::MAX / (MAX_PAGE_SIZE * 2))?;
    let page_size = int_param("page_size", page_size, 50, 1, MAX_PAGE_SIZE)?;
    Ok((page, page_size))
}

fn pages(total: i64, page_size: i64) -> i64 {
    ((total + page_size - 1) / page_size).max(1)
}

fn ticket_filter(pairs: &[(String, String)]) -> ApiResult<TicketFilter> {
    let statuses = values(pairs, "status")
        .into_iter()
        .map(|raw| parse_status("status", raw))
        .collect::<ApiResult<Vec<_>>>()?;
    let site = single(pairs, "site")?
        .map(|raw| SiteCode::parse(raw).map_err(|e| ApiError::invalid("site", e.to_string())))
        .transpose()?;
    let priority = single(pairs, "priority")?
        .map(|raw| {
            raw.to_ascii_uppercase()
                .parse::<Priority>()
                .map_err(|_| ApiError::invalid("priority", "must be P1, P2, P3 or P4"))
        })
        .transpose()?;
    let category = single(pairs, "category")?
        .map(|raw| {
            raw.to_ascii_lowercase().parse::<Category>().map_err(|_| {
                let names: Vec<&str> = Category::ALL.iter().map(|c| c.as_str()).collect();
                ApiError::invalid("category", format!("must be one of {}", names.join(", ")))
            })
        })
        .transpose()?;
    let customer_id = single(pairs, "customer_id")?
        .map(parse_customer_id)
        .transpose()?;
    let phone = single(pairs, "phone")?.map(parse_phone).transpose()?;
    let opened_from = instant("from", single(pairs, "from")?, false)?;
    let opened_before = instant("to", single(pairs, "to")?, true)?;
    if let (Some(from), Some(before)) = (opened_from, opened_before) {
        if before <= from {
            return Err(ApiError::invalid("to", "must be after from"));
        }
    }
    let text = single(pairs, "q")?.map(str::to_string);
    if text
        .as_deref()
        .is_some_and(|q| q.chars().count() > MAX_QUERY_CHARS)
    {
        return Err(ApiError::invalid(
            "q",
            format!("at most {MAX_QUERY_CHARS} characters"),
        ));
    }
    Ok(TicketFilter {
        statuses,
        site,
        priority,
        category,
        customer_id,
        phone,
        opened_from,
        opened_before,
        text,
    })
}

async fn list(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let filter = ticket_filter(&pairs)?;
    let sort = parse_sort(single(&pairs, "sort")?)?;
    let (page, page_size) = paging(single(&pairs, "page")?, single(&pairs, "page_size")?)?;
    let (tickets, total) = state
        .read_models
        .tickets(&filter, sort, page_size, (page - 1) * page_size)
        .await?;
    let now = Utc::now();
    Ok(Json(json!({
        "tickets": tickets.iter().map(|t| ticket_json(t, now)).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": page_size,
        "pages": pages(total, page_size),
    })))
}

fn group_json(g: &ActiveGroup, now: DateTime<Utc>) -> Value {
    json!({
        "site": g.site,
        "priority": g.priority,
        "open": g.open,
        "in_progress": g.in_progress,
        "count": g.count,
        "oldest_opened_at": time(g.oldest_opened_at),
        "oldest_age_seconds": (now - g.oldest_opened_at).num_seconds().max(0),
    })
}

async fn summary(State(state): State<AppState>, user: CurrentUser) -> ApiResult<Json<Value>> {
    user.employee()?;
    let groups = state.read_models.active_tickets().await?;
    let now = Utc::now();
    Ok(Json(json!({
        "groups": groups.iter().map(|g| group_json(g, now)).collect::<Vec<_>>(),
        "active": groups.iter().map(|g| g.count).sum::<i64>(),
        "as_of": time(now),
    })))
}

async fn detail(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(number): Path<String>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let number = parse_number(&number)?;
    let detail = state
        .read_models
        .ticket(&number.to_string(), MESSAGES_ON_A_TICKET)
        .await?
        .ok_or_else(no_such_ticket)?;
    let now = Utc::now();
    Ok(Json(json!({
        "ticket": ticket_json(&detail.ticket, now),
        "activity": detail.activity.iter().map(activity_json).collect::<Vec<_>>(),
        "messages": detail.messages.iter().map(message_json).collect::<Vec<_>>(),
        "messages_total": detail.messages_total,
        "messages_since": time(detail.ticket.opened_at - projections::tickets::MESSAGES_BEFORE_OPENING),
    })))
}

/// Runs `command` on ticket `number` for `user`, waits until the read model shows it, and
/// answers with the ticket and the activity entry the command recorded.
async fn execute(
    state: &AppState,
    user: &CurrentUser,
    number: &TicketNumber,
    command: TicketCommand,
) -> ApiResult<Value> {
    let committed = state
        .tickets
        .execute(number, command, &user.command_context())
        .await?;
    state.visible_tickets(committed).await?;
    let ticket = state
        .read_models
        .ticket_row(&number.to_string())
        .await?
        .ok_or_else(no_such_ticket)?;
    let activity = match committed.position {
        Some(position) => state.read_models.ticket_activity_at(position).await?,
        None => None,
    };
    Ok(json!({
        "ticket": ticket_json(&ticket, Utc::now()),
        "activity": activity.as_ref().map(activity_json),
    }))
}

#[derive(Debug, Deserialize)]
pub(crate) struct CommentBody {
    text: String,
}

async fn comment(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(number): Path<String>,
    JsonBody(body): JsonBody<CommentBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    user.employee()?;
    let number = parse_number(&number)?;
    let command = TicketCommand::Comment {
        author: user.user_id.clone(),
        text: body.text,
        channel: TicketChannel::Portal,
    };
    let body = execute(&state, &user, &number, command).await?;
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Debug, Deserialize)]
pub(crate) struct StatusBody {
    status: String,
    #[serde(default)]
    reason: Option<String>,
}

async fn change_status(
    State(state): State<AppState>,
    user: CurrentUser,
    Path(number): Path<String>,
    JsonBody(body): JsonBody<StatusBody>,
) -> ApiResult<Json<Value>> {
    user.require_role(STATUS_ROLES)?;
    let number = parse_number(&number)?;
    let to = parse_status("status", &body.status)?;
    let command = TicketCommand::ChangeStatus {
        to,
        reason: body.reason,
    };
    Ok(Json(execute(&state, &user, &number, command).await?))
}

#[derive(Debug, Deserialize)]
pub(crate) struct ConversationQuery {
    customer_id: Option<String>,
    phone: Option<String>,
    page: Option<String>,
    page_size: Option<String>,
}

async fn conversations(
    State(state): State<AppState>,
    user: CurrentUser,
    Query(query): Query<ConversationQuery>,
) -> ApiResult<Json<Value>> {
    user.employee()?;
    let given = |raw: &Option<String>| {
        raw.as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
    };
    let party = match (given(&query.customer_id), given(&query.phone)) {
        (Some(id), None) => Party::Customer(parse_customer_id(&id)?),
        (None, Some(phone)) => Party::Phone(parse_phone(&phone)?),
        (None, None) => {
            return Err(ApiError::invalid(
                "customer_id",
                "give customer_id or phone",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "phone",
                "give customer_id or phone, not both",
            ))
        }
    };
    let (page, page_size) = paging(query.page.as_deref(), query.page_size.as_deref())?;
    let conversations = state.read_models.conversations(&party).await?;
    let (messages, total) = state
        .read_models
        .conversation_history(&party, page_size, (page - 1) * page_size)
        .await?;
    let now = Utc::now();
    Ok(Json(json!({
        "conversations": conversations.iter().map(|c| conversation_json(c, now)).collect::<Vec<_>>(),
        "messages": messages.iter().map(message_json).collect::<Vec<_>>(),
        "total": total,
        "page": page,
        "page_size": page_size,
        "pages": pages(total, page_size),
    })))
}
