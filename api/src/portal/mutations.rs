//! `/portal/mutations`: the audit of every change (legacy-system.md §5) — the paged list with
//! its filters and the hash-chain status, one mutation with its before/after diff and its
//! revert (a required confirmation, superadmin and onm_team only) — and
//! `/portal/audit/records/{table}/{id}?at=…`: a record as it stood at an instant. The data and
//! the rules are the JSON API's (`/api/mutations`, `/api/audit/*`); only the rendering is here.
//! The list's chain status is the cheap check of the events since the last verification
//! (`/api/audit/verify`'s default); `/portal/audit/chain` walks the whole chain.

use std::collections::BTreeSet;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Days, NaiveDate, SecondsFormat, TimeDelta, TimeZone, Utc};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use domain::catalog::table_spec;
use domain::command::ChainCheck;
use domain::envelope::{maseru_time, Channel};
use domain::tariff::parse_effective_from;
use projections::mutations::{Mutation, MutationFilter};

use crate::error::ApiError;
use crate::routes::mutations::{channel_param, find, int_param, revert_mutation};
use crate::AppState;

use super::dashboard::staff_only;
use super::forms::CheckedForm;
use super::pages::{self, count, document, respond, see_other, Nav};
use super::session::{encode_query_value, Session};
use super::tickets::when;

/// Mutations on a page of the list (the legacy page's 50).
const PAGE_SIZE: i64 = 50;
/// The actions an audit row can have (a revert is `revert_<what it did>`).
const ACTIONS: &[&str] = &[
    "create",
    "update",
    "delete",
    "revert_create",
    "revert_update",
    "revert_delete",
];

fn not_found(session: &Session) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Some(session),
        "No such mutation",
        "There is no mutation with that number. Find it in the list.",
        ("/portal/mutations", "All mutations"),
    )
}

fn or_dash(text: Option<&str>) -> &str {
    text.map(str::trim).filter(|t| !t.is_empty()).unwrap_or("–")
}

/// `at` in Maseru time, to the second.
fn when_exactly(at: DateTime<Utc>) -> String {
    maseru_time(at).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A field's value as staff read it: text as it is, nothing as a dash.
fn value_text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "–".to_string(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// The Maseru day `day` began, as an instant.
fn maseru_midnight(day: NaiveDate) -> DateTime<Utc> {
    let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
    local_instant(midnight)
}

/// The instant of Maseru wall-clock time `local` (Lesotho keeps +02:00 all year).
fn local_instant(local: chrono::NaiveDateTime) -> DateTime<Utc> {
    let offset = *maseru_time(Utc::now()).offset();
    offset
        .from_local_datetime(&local)
        .single()
        .map_or_else(|| local.and_utc(), |at| at.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------------------------
// The list.

/// The list's filters as given (kept in the form and the paging links).
#[derive(Debug, Default)]
struct ListQuery {
    table: String,
    user: String,
    action: String,
    channel: String,
    from: String,
    to: String,
    page: i64,
}

/// A filter that cannot be understood: the field and why.
#[derive(Debug, PartialEq, Eq)]
struct FilterError {
    field: &'static str,
    message: String,
}

impl ListQuery {
    fn given<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    fn day(field: &'static str, text: &str) -> Result<Option<NaiveDate>, FilterError> {
        if text.is_empty() {
            return Ok(None);
        }
        NaiveDate::parse_from_str(text, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| FilterError {
                field,
                message: format!("{text:?} is not a day (YYYY-MM-DD)."),
            })
    }

    /// The query of `pairs`, and the filter it means (or what is wrong with it). The days are
    /// Maseru days, both included.
    fn parse(pairs: &[(String, String)]) -> (ListQuery, Result<MutationFilter, FilterError>) {
        let mut query = ListQuery {
            table: Self::given(pairs, "table").to_string(),
            user: Self::given(pairs, "user").to_string(),
            action: Self::given(pairs, "action").to_ascii_lowercase(),
            channel: Self::given(pairs, "channel").to_ascii_lowercase(),
            from: Self::given(pairs, "from").to_string(),
            to: Self::given(pairs, "to").to_string(),
            page: 1,
        };
        let page = Self::given(pairs, "page");
        let filter =
            (|| {
                query.page = int_param("page", Some(page), 1, 1, i64::MAX / (PAGE_SIZE * 2))
                    .map_err(|e| FilterError {
                        field: "page",
                        message: e.to_string(),
                    })?;
                if !query.action.is_empty() && !ACTIONS.contains(&query.action.as_str()) {
                    return Err(FilterError {
                        field: "action",
                        message: "Choose one of the actions.".into(),
                    });
                }
                let channel = channel_param(Some(&query.channel)).map_err(|_| FilterError {
                    field: "channel",
                    message: "Choose one of the channels.".into(),
                })?;
                let from = Self::day("from", &query.from)?;
                let to = Self::day("to", &query.to)?;
                if let (Some(from), Some(to)) = (from, to) {
                    if to < from {
                        return Err(FilterError {
                            field: "to",
                            message: "The last day is before the first.".into(),
                        });
                    }
                }
                let nonempty = |text: &str| (!text.is_empty()).then(|| text.to_string());
                Ok(MutationFilter {
                    table: nonempty(&query.table),
                    user: nonempty(&query.user),
                    action: nonempty(&query.action),
                    channel,
                    record_id: None,
                    from: from.map(maseru_midnight),
                    to: to
                        .and_then(|day| day.checked_add_days(Days::new(1)))
                        .map(maseru_midnight),
                })
            })();
        (query, filter)
    }

    /// The list's address for page `page` with these filters.
    fn href(&self, page: i64) -> String {
        pages::list_href(
            "/portal/mutations",
            page,
            &[
                ("table", &self.table),
                ("user", &self.user),
                ("action", &self.action),
                ("channel", &self.channel),
                ("from", &self.from),
                ("to", &self.to),
            ],
        )
    }
}

fn channel_label(channel: &str) -> &str {
    match channel {
        "portal" => "Portal",
        "api" => "API",
        "whatsapp" => "WhatsApp",
        "cdc-external" => "Direct Access edit",
        "system" => "System",
        other => other,
    }
}

fn filter_form(query: &ListQuery, error: Option<&FilterError>) -> Markup {
    let wrong = |field: &str| error.filter(|e| e.field == field).map(|_| "true");
    let described = |field: &str| error.filter(|e| e.field == field).map(|_| "filter-error");
    html! {
        form method="get" action="/portal/mutations" class="filters" {
            div class="field" {
                label for="table" { "Table" }
                input type="text" id="table" name="table" value=(query.table) maxlength="64";
            }
            div class="field" {
                label for="user" { "User id" }
                input type="text" id="user" name="user" value=(query.user) maxlength="64";
            }
            div class="field" {
                label for="action" { "Action" }
                select id="action" name="action" aria-invalid=[wrong("action")] aria-describedby=[described("action")] {
                    option value="" selected[query.action.is_empty()] { "Any" }
                    @for action in ACTIONS {
                        option value=(action) selected[query.action == *action] { (action) }
                    }
                }
            }
            div class="field" {
                label for="channel" { "Channel" }
                select id="channel" name="channel" aria-invalid=[wrong("channel")] aria-describedby=[described("channel")] {
                    option value="" selected[query.channel.is_empty()] { "Any" }
                    @for channel in Channel::ALL {
                        option value=(channel.as_str()) selected[query.channel == channel.as_str()] { (channel_label(channel.as_str())) }
                    }
                }
            }
            div class="field" {
                label for="from" { "From (day, Maseru time)" }
                input type="date" id="from" name="from" value=(query.from)
                    aria-invalid=[wrong("from")] aria-describedby=[described("from")];
            }
            div class="field" {
                label for="to" { "To (day, included)" }
                input type="date" id="to" name="to" value=(query.to)
                    aria-invalid=[wrong("to")] aria-describedby=[described("to")];
            }
            @if let Some(error) = error {
                p class="error" id="filter-error" role="alert" { (error.field) ": " (error.message) }
            }
            button type="submit" class="primary" { "Show" }
        }
    }
}

/// What the chain check said, as a section.
fn chain_section(check: &Result<ChainCheck, String>, full: bool) -> Markup {
    html! {
        section aria-labelledby="chain" id="chain-status" {
            h2 id="chain" { "Hash chain" }
            @match check {
                Ok(check) => {
                    @match &check.first_broken {
                        None => {
                            p class="chain-intact" {
                                "Intact: "
                                @if full { "every event was checked" } @else { "the events since the last verification were checked" }
                                " (" (count(check.checked as i64)) " checked, head at position " (check.head_position) ")."
                            }
                        }
                        Some((position, problem)) => {
                            p class="alert" role="alert" {
                                "Broken at position " (position) ": " (problem)
                                ". The log was changed outside ccare; tell the administrator."
                            }
                        }
                    }
                }
                Err(_) => {
                    p class="alert" { "The chain cannot be checked at the moment. Try again in a minute." }
                }
            }
            @if !full {
                p { a href="/portal/audit/chain" { "Check the whole chain from the first event" } }
            }
        }
    }
}

fn list_table(mutations: &[Mutation]) -> Markup {
    html! {
        div class="table-wrap" {
            table id="mutation-list" {
                thead {
                    tr {
                        th scope="col" class="n" { "#" }
                        th scope="col" { "When" }
                        th scope="col" { "User" }
                        th scope="col" { "Channel" }
                        th scope="col" { "Action" }
                        th scope="col" { "Table" }
                        th scope="col" { "Record" }
                        th scope="col" { "Status" }
                    }
                }
                tbody {
                    @for m in mutations {
                        tr {
                            th scope="row" class="n" { a href={ "/portal/mutations/" (m.id) } { (m.id) } }
                            td { (when(m.recorded_at)) }
                            td { (or_dash(m.user_name.as_deref().or(m.user_id.as_deref()))) }
                            td { (channel_label(&m.channel)) }
                            td { span class="badge" { (m.action) } }
                            td { (m.table_name) }
                            td { (m.record_id) }
                            td { @if let Some(by) = m.reverted_by { "Reverted by " (by) } @else { "–" } }
                        }
                    }
                }
            }
        }
    }
}

pub(crate) async fn list(
    State(state): State<AppState>,
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let (query, filter) = ListQuery::parse(&pairs);
    let (status, error, listing) = match filter {
        Err(error) => (StatusCode::UNPROCESSABLE_ENTITY, Some(error), None),
        Ok(filter) => {
            let offset = (query.page - 1) * PAGE_SIZE;
            match state
                .read_models
                .mutations(&filter, PAGE_SIZE, offset)
                .await
            {
                Ok(found) => (StatusCode::OK, None, Some(found)),
                Err(error) => return pages::failure(error.into()),
            }
        }
    };
    let chain = state.chain.verify(false).await;
    let main = html! {
        h1 { "Mutations" }
        p class="muted" { "Every change, newest first: through the portal, the API, WhatsApp, and edits made directly in Access." }
        (chain_section(&chain, false))
        section aria-labelledby="list" {
            h2 id="list" { "Changes" }
            (filter_form(&query, error.as_ref()))
            @if let Some((mutations, total)) = &listing {
                @let pages_total = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
                p id="mutation-total" { (count(*total)) " mutations, newest first · page " (query.page) " of " (pages_total) }
                @if !mutations.is_empty() {
                    (list_table(mutations))
                }
                nav aria-label="Pages" class="paging" {
                    @if query.page > 1 {
                        a href=(query.href(query.page - 1)) rel="prev" { "Newer" }
                        " "
                    }
                    @if query.page < pages_total {
                        a href=(query.href(query.page + 1)) rel="next" { "Older" }
                    }
                }
            }
        }
    };
    respond(
        status,
        document("Mutations", Some(&session), Some(Nav::Mutations), main),
    )
}

/// `/portal/audit/chain`: the whole chain checked from the first event.
pub(crate) async fn chain(State(state): State<AppState>, session: Session) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let check = state.chain.verify(true).await;
    let main = html! {
        p { a href="/portal/mutations" { "← All mutations" } }
        h1 { "Hash chain check" }
        (chain_section(&check, true))
    };
    respond(
        StatusCode::OK,
        document(
            "Hash chain check",
            Some(&session),
            Some(Nav::Mutations),
            main,
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// One mutation.

/// One field of a diff: its name, before and after.
struct FieldChange<'a> {
    name: &'a str,
    before: Option<&'a Value>,
    after: Option<&'a Value>,
}

/// The fields of `m`'s before and after, split into the changed ones and the others, each in
/// the rows' column order.
fn diff(m: &Mutation) -> (Vec<FieldChange<'_>>, Vec<FieldChange<'_>>) {
    let before = m.old_values.as_ref().and_then(Value::as_object);
    let after = m.new_values.as_ref().and_then(Value::as_object);
    let mut names: Vec<&str> = Vec::new();
    let mut seen = BTreeSet::new();
    for object in [before, after].into_iter().flatten() {
        for name in object.keys() {
            if seen.insert(name.as_str()) {
                names.push(name);
            }
        }
    }
    let (mut changed, mut unchanged) = (Vec::new(), Vec::new());
    for name in names {
        let field = FieldChange {
            name,
            before: before.and_then(|o| o.get(name)),
            after: after.and_then(|o| o.get(name)),
        };
        let named = m.changed.iter().any(|c| c.eq_ignore_ascii_case(name));
        if named || field.before != field.after {
            changed.push(field);
        } else {
            unchanged.push(field);
        }
    }
    (changed, unchanged)
}

fn diff_rows(fields: &[FieldChange<'_>], changed: bool) -> Markup {
    html! {
        @for f in fields {
            tr class=[changed.then_some("changed")] {
                th scope="row" {
                    (f.name)
                    @if changed { span class="visually-hidden" { " (changed)" } }
                }
                td { (value_text(f.before)) }
                td { (value_text(f.after)) }
            }
        }
    }
}

fn diff_table(id: &str, fields: &[FieldChange<'_>], changed: bool) -> Markup {
    html! {
        div class="table-wrap" {
            table id=(id) class="diff" {
                thead {
                    tr {
                        th scope="col" { "Field" }
                        th scope="col" { "Before" }
                        th scope="col" { "After" }
                    }
                }
                tbody { (diff_rows(fields, changed)) }
            }
        }
    }
}

/// The as-of page of a record of a captured table at `at`.
fn as_of_href(table: &str, record_id: &str, at: DateTime<Utc>) -> String {
    format!(
        "/portal/audit/records/{}/{}?at={}",
        encode_query_value(table),
        encode_query_value(record_id),
        encode_query_value(&at.to_rfc3339_opts(SecondsFormat::Micros, true)),
    )
}

/// What a refused revert leaves on the mutation's page.
#[derive(Debug, Default)]
struct RevertForm {
    error: Option<String>,
    pending: bool,
}

fn mutation_main(m: &Mutation, session: &Session, form: &RevertForm) -> Markup {
    let may_revert = session.user.employee().is_ok_and(|role| role.can_revert());
    let (changed, unchanged) = diff(m);
    let captured = table_spec(&m.table_name).is_some();
    html! {
        p { a href="/portal/mutations" { "← All mutations" } }
        h1 { "Mutation " (m.id) }
        @if form.pending {
            p class="alert" role="status" id="revert-pending" {
                "The revert is recorded and will be applied to the ACDB shortly."
            }
        }
        dl class="facts" id="mutation" {
            div { dt { "Action" } dd { span class="badge" { (m.action) } } }
            div { dt { "Table" } dd { (m.table_name) } }
            div { dt { "Record" } dd { (m.record_id) } }
            div { dt { "When" } dd { (when_exactly(m.recorded_at)) } }
            div { dt { "User" } dd {
                (or_dash(m.user_name.as_deref().or(m.user_id.as_deref())))
                @if let (Some(_), Some(id)) = (&m.user_name, &m.user_id) { " (" (id) ")" }
            } }
            div { dt { "Role" } dd { (or_dash(m.role.as_deref())) } }
            div { dt { "Channel" } dd { (channel_label(&m.channel)) } }
            @if let Some(reverts) = m.reverts {
                div { dt { "Reverts" } dd { a href={ "/portal/mutations/" (reverts) } { "Mutation " (reverts) } } }
            }
            div { dt { "Status" } dd id="mutation-status" {
                @if let Some(by) = m.reverted_by {
                    "Reverted by " a href={ "/portal/mutations/" (by) } { "mutation " (by) }
                    @if let Some(user) = &m.reverted_by_user { " (" (user) ")" }
                    @if let Some(at) = m.reverted_at { ", " (when(at)) }
                } @else {
                    "In effect"
                }
            } }
        }
        @if let (Some(_), Some(error)) = (m.reverted_by, &form.error) {
            p class="error" id="revert-error" role="alert" { (error) }
        }
        @if captured {
            p id="as-of-links" {
                a href=(as_of_href(&m.table_name, &m.record_id, m.recorded_at - TimeDelta::microseconds(1))) { "The record just before this change" }
                " · "
                a href=(as_of_href(&m.table_name, &m.record_id, m.recorded_at)) { "The record just after it" }
            }
        }
        section aria-labelledby="changes" {
            h2 id="changes" { "What changed" }
            @if changed.is_empty() {
                p { "No field changed." }
            } @else {
                (diff_table("diff-changed", &changed, true))
            }
            @if !unchanged.is_empty() {
                details id="unchanged" {
                    summary { (unchanged.len()) " fields unchanged" }
                    (diff_table("diff-unchanged", &unchanged, false))
                }
            }
        }
        @if may_revert && m.reverted_by.is_none() {
            section aria-labelledby="revert-heading" {
                h2 id="revert-heading" { "Revert this change" }
                p { "A revert is a new change that puts back the fields as they were before this one. It is itself recorded and can be reverted." }
                form method="post" action={ "/portal/mutations/" (m.id) "/revert" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    div class="field check" {
                        input type="checkbox" id="confirm" name="confirm" value="yes" required
                            aria-invalid=[form.error.as_ref().map(|_| "true")]
                            aria-describedby=[form.error.as_ref().map(|_| "revert-error")];
                        label for="confirm" { "Yes, revert mutation " (m.id) " of " (m.table_name) " " (m.record_id) }
                    }
                    @if let Some(error) = &form.error {
                        p class="error" id="revert-error" role="alert" { (error) }
                    }
                    button type="submit" class="primary" { "Revert" }
                }
            }
        }
    }
}

/// The mutation's page, with `form` as left by a refused revert, answered with `status`.
async fn mutation_page(
    state: &AppState,
    session: &Session,
    id: i64,
    status: StatusCode,
    form: &RevertForm,
) -> Response {
    match find(state, id).await {
        Ok(m) => respond(
            status,
            document(
                &format!("Mutation {id}"),
                Some(session),
                Some(Nav::Mutations),
                mutation_main(&m, session, form),
            ),
        ),
        Err(ApiError::NotFound(_)) => not_found(session),
        Err(error) => pages::failure(error),
    }
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let form = RevertForm {
        error: None,
        pending: pairs.iter().any(|(k, v)| k == "revert" && v == "pending"),
    };
    let Ok(id) = id.trim().parse::<i64>() else {
        return not_found(&session);
    };
    mutation_page(&state, &session, id, StatusCode::OK, &form).await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct RevertFields {
    #[serde(default)]
    confirm: String,
}

/// The 403 page of a role that may not revert.
fn forbidden(session: &Session) -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        Some(session),
        "Not allowed for your role",
        "Only superadmin and the O&M team revert changes. Nothing was changed.",
        ("/portal/mutations", "All mutations"),
    )
}

pub(crate) async fn revert(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: CheckedForm<RevertFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    let Ok(role) = session.user.employee() else {
        return staff_only(&session);
    };
    if !role.can_revert() {
        return forbidden(&session);
    }
    let Ok(id) = id.trim().parse::<i64>() else {
        return not_found(&session);
    };
    let (status, message) = if fields.confirm.trim() != "yes" {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Tick the box to confirm the revert. Nothing was changed.".to_string(),
        )
    } else {
        match revert_mutation(&state, &session.user, &id.to_string()).await {
            Ok((_, body)) => {
                return match body.0["revert_mutation_id"].as_i64() {
                    Some(revert_id) => see_other(&format!("/portal/mutations/{revert_id}"), None),
                    // Queued for the ACDB: it shows up in the audit once applied.
                    None => see_other(&format!("/portal/mutations/{id}?revert=pending"), None),
                };
            }
            Err(ApiError::NotFound(_)) => return not_found(&session),
            Err(ApiError::Forbidden(_)) => return forbidden(&session),
            Err(ApiError::Conflict(message)) => (StatusCode::CONFLICT, message),
            Err(ApiError::BadRequest(message)) => (StatusCode::BAD_REQUEST, message),
            Err(error) => return pages::failure(error),
        }
    };
    let form = RevertForm {
        error: Some(message),
        pending: false,
    };
    mutation_page(&state, &session, id, status, &form).await
}

// ---------------------------------------------------------------------------------------------
// A record as of an instant.

/// The instant of `text`: an RFC 3339 instant as it is, or a day or a wall-clock time in
/// Maseru time (what a `datetime-local` field sends).
fn instant_of(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    parse_effective_from(text).map(local_instant)
}

fn record_not_found(session: &Session, message: &str) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Some(session),
        "No such record",
        message,
        ("/portal/mutations", "All mutations"),
    )
}

pub(crate) async fn record_as_of(
    State(state): State<AppState>,
    session: Session,
    Path((table, id)): Path<(String, String)>,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let (spec, key) = match crate::routes::audit::record_of(&table, &id) {
        Ok(found) => found,
        Err(error) => return record_not_found(&session, &error.to_string()),
    };
    let given = pairs
        .iter()
        .find(|(k, _)| k == "at")
        .map_or("", |(_, v)| v.trim());
    let (status, error, at) = if given.is_empty() {
        (StatusCode::OK, None, Utc::now())
    } else {
        match instant_of(given) {
            Some(at) => (StatusCode::OK, None, at),
            None => (
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(format!(
                    "{given:?} is not a date and time (YYYY-MM-DD HH:MM, Maseru time)."
                )),
                Utc::now(),
            ),
        }
    };
    let changes = if error.is_none() {
        match state
            .read_models
            .record_changes(spec.aggregate_type, &key, Some(at))
            .await
        {
            Ok(changes) => changes,
            Err(error) => return pages::failure(error.into()),
        }
    } else {
        Vec::new()
    };
    let record = projections::history::state_after(&changes).map(|row| row.to_plain_json());
    let shown_at = maseru_time(at).format("%Y-%m-%dT%H:%M:%S").to_string();
    let typed = if error.is_some() { given } else { &shown_at };
    let here = format!(
        "/portal/audit/records/{}/{}",
        encode_query_value(spec.table),
        encode_query_value(&key)
    );
    let last = changes.last();
    let main = html! {
        p { a href="/portal/mutations" { "← All mutations" } }
        h1 { (spec.table) " " (key) }
        form method="get" action=(here) class="filters" {
            div class="field" {
                label for="at" { "As it stood at (Maseru time)" }
                input type="datetime-local" id="at" name="at" step="1" value=(typed)
                    aria-invalid=[error.as_ref().map(|_| "true")]
                    aria-describedby=[error.as_ref().map(|_| "at-error")];
                @if let Some(error) = &error {
                    p class="error" id="at-error" role="alert" { (error) }
                }
            }
            button type="submit" class="primary" { "Show" }
        }
        @if error.is_none() {
            p id="as-of" { "As of " (when_exactly(at)) ", after " (changes.len()) " recorded changes." }
            @if let Some(last) = last {
                p class="muted" id="last-change" {
                    "Last change: "
                    a href={ "/portal/mutations/" (last.event.position) } { "position " (last.event.position) }
                    ", " (when_exactly(last.event.recorded_at))
                    @if let Some(user) = last.event.metadata.get("actor_user_id") { " by " (user) }
                    @if let Some(channel) = last.event.metadata.get("channel") { " through " (channel_label(channel)) }
                    "."
                }
            }
            @match (&record, changes.is_empty()) {
                (_, true) => { p id="no-record" { "Nothing was recorded of this record by then." } }
                (None, false) => { p id="no-record" { "The record was deleted by then." } }
                (Some(record), false) => {
                    div class="table-wrap" {
                        table id="record" {
                            thead { tr { th scope="col" { "Field" } th scope="col" { "Value" } } }
                            tbody {
                                @if let Some(fields) = record.as_object() {
                                    @for (name, value) in fields {
                                        tr { th scope="row" { (name) } td { (value_text(Some(value))) } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    respond(
        status,
        document(
            &format!("{} {key}", spec.table),
            Some(&session),
            Some(Nav::Mutations),
            main,
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn bad_filters_name_their_field_and_good_ones_are_kept_in_the_paging_links() {
        let (_, bad) = ListQuery::parse(&pairs(&[("action", "explode")]));
        assert_eq!(bad.unwrap_err().field, "action");
        let (_, bad) = ListQuery::parse(&pairs(&[("channel", "fax")]));
        assert_eq!(bad.unwrap_err().field, "channel");
        let (_, bad) = ListQuery::parse(&pairs(&[("from", "yesterday")]));
        assert_eq!(bad.unwrap_err().field, "from");
        let (_, bad) = ListQuery::parse(&pairs(&[("from", "2026-03-02"), ("to", "2026-03-01")]));
        assert_eq!(bad.unwrap_err().field, "to");
        let (query, good) = ListQuery::parse(&pairs(&[
            ("table", "tblcustomer"),
            ("channel", "cdc-external"),
            ("from", "2026-03-01"),
            ("to", "2026-03-01"),
        ]));
        let good = good.unwrap();
        assert_eq!(good.channel.as_deref(), Some("cdc-external"));
        // A Maseru day: from 22:00 UTC the evening before, for 24 hours.
        assert_eq!(good.from.unwrap().to_rfc3339(), "2026-02-28T22:00:00+00:00");
        assert_eq!(good.to.unwrap().to_rfc3339(), "2026-03-01T22:00:00+00:00");
        assert_eq!(
            query.href(2),
            "/portal/mutations?page=2&table=tblcustomer&channel=cdc-external&from=2026-03-01&to=2026-03-01"
        );
    }

    #[test]
    fn an_instant_is_read_as_rfc_3339_or_as_maseru_wall_clock_time() {
        assert_eq!(
            instant_of("2026-03-01T10:00").unwrap().to_rfc3339(),
            "2026-03-01T08:00:00+00:00"
        );
        assert_eq!(
            instant_of("2026-03-01T10:00:00.000001Z")
                .unwrap()
                .to_rfc3339(),
            "2026-03-01T10:00:00.000001+00:00"
        );
        assert_eq!(instant_of("soon"), None);
    }
}
