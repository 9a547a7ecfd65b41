//! `/portal/tickets`: the active tickets by site and priority and the paged ticket list, and
//! `/portal/tickets/{number}`: one ticket with its activity and its phone's messages, where any
//! employee comments and superadmin and onm_team move its status — the same read models and
//! the same `TicketCommands` port as `/api/tickets`, waiting for the read model the same way.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::Deserialize;

use domain::command::CommandError;
use domain::envelope::maseru_time;
use domain::site::SiteCode;
use domain::ticket::{
    Category, Priority, TicketChannel, TicketCommand, TicketError, TicketNumber, TicketStatus,
    MAX_TEXT_CHARS,
};
use projections::tickets::{ActiveGroup, TicketActivity, TicketDetail, TicketFilter, TicketSort};

use crate::error::ApiError;
use crate::routes::mutations::int_param;
use crate::AppState;

use super::dashboard::staff_only;
use super::forms::CheckedForm;
use super::pages::{self, count, document, respond, see_other, Nav};
use super::session::Session;

/// Tickets on a page of the list.
const PAGE_SIZE: i64 = 50;
/// The most messages a ticket's page shows.
const MESSAGES_ON_A_TICKET: i64 = 200;
/// Who may move a ticket's status (as `POST /api/tickets/{number}/status`).
use crate::routes::tickets::STATUS_ROLES;

/// `at` in Maseru time, to the minute.
pub(super) fn when(at: DateTime<Utc>) -> String {
    maseru_time(at).format("%Y-%m-%d %H:%M").to_string()
}

/// How long ago `at` was, in the two largest units.
fn age(at: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let minutes = (now - at).num_minutes().max(0);
    let (days, hours, mins) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    if days > 0 {
        format!("{days} d {hours} h")
    } else if hours > 0 {
        format!("{hours} h {mins} min")
    } else {
        format!("{mins} min")
    }
}

pub(super) fn status_label(raw: &str) -> &str {
    match raw {
        "open" => "Open",
        "in-progress" => "In progress",
        "resolved" => "Resolved",
        "closed" => "Closed",
        other => other,
    }
}

fn not_found(session: &Session) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Some(session),
        "No such ticket",
        "There is no ticket with that number. Check the number, or find the ticket in the list.",
        ("/portal/tickets", "All tickets"),
    )
}

// ---------------------------------------------------------------------------------------------
// The list.

/// The list's filters as given (kept in the form and the paging links) and as understood.
#[derive(Debug, Default)]
struct ListQuery {
    status: String,
    site: String,
    priority: String,
    category: String,
    text: String,
    page: i64,
}

/// The longest text filter the list takes (a ticket's summary is shorter).
const MAX_FILTER_TEXT_CHARS: usize = 100;

impl ListQuery {
    fn given<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    /// The query of `pairs`, and the filter it means (or what is wrong with it).
    fn parse(pairs: &[(String, String)]) -> (ListQuery, Result<TicketFilter, String>) {
        let mut query = ListQuery {
            status: Self::given(pairs, "status").to_string(),
            site: Self::given(pairs, "site").to_ascii_uppercase(),
            priority: Self::given(pairs, "priority").to_ascii_uppercase(),
            category: Self::given(pairs, "category").to_ascii_lowercase(),
            text: Self::given(pairs, "q").to_string(),
            page: 1,
        };
        let page = Self::given(pairs, "page");
        let page = (!page.is_empty()).then_some(page);
        let filter = (|| {
            query.page = int_param("page", page, 1, 1, i64::MAX / (PAGE_SIZE * 2))
                .map_err(|e| e.to_string())?;
            let mut filter = TicketFilter::default();
            if !query.status.is_empty() {
                let status = query
                    .status
                    .to_ascii_lowercase()
                    .parse::<TicketStatus>()
                    .map_err(|_| "status: must be open, in-progress, resolved or closed")?;
                filter.statuses.push(status);
            }
            if !query.site.is_empty() {
                filter.site = Some(SiteCode::parse(&query.site).map_err(|e| format!("site: {e}"))?);
            }
            if !query.priority.is_empty() {
                filter.priority = Some(
                    query
                        .priority
                        .parse::<Priority>()
                        .map_err(|_| "priority: must be P1, P2, P3 or P4")?,
                );
            }
            if !query.category.is_empty() {
                filter.category = Some(
                    query
                        .category
                        .parse::<Category>()
                        .map_err(|_| "category: not one of the ticket categories")?,
                );
            }
            if query.text.chars().count() > MAX_FILTER_TEXT_CHARS {
                return Err(format!("q: at most {MAX_FILTER_TEXT_CHARS} characters"));
            }
            let text = query.text.trim();
            filter.text = (!text.is_empty()).then(|| text.to_string());
            Ok(filter)
        })();
        (query, filter)
    }

    /// The list's address for page `page` with these filters.
    fn href(&self, page: i64) -> String {
        pages::list_href(
            "/portal/tickets",
            page,
            &[
                ("status", &self.status),
                ("site", &self.site),
                ("priority", &self.priority),
                ("category", &self.category),
                ("q", &self.text),
            ],
        )
    }
}

fn summary_table(groups: &[ActiveGroup], now: DateTime<Utc>) -> Markup {
    let active: i64 = groups.iter().map(|g| g.count).sum();
    html! {
        section aria-labelledby="active" {
            h2 id="active" { "Active tickets" }
            p id="active-count" { (count(active)) " active (open or in progress)" }
            @if !groups.is_empty() {
                div class="table-wrap" {
                    table id="active-tickets" {
                        thead {
                            tr {
                                th scope="col" { "Site" }
                                th scope="col" { "Priority" }
                                th scope="col" class="n" { "Open" }
                                th scope="col" class="n" { "In progress" }
                                th scope="col" class="n" { "Total" }
                                th scope="col" class="n" { "Oldest" }
                            }
                        }
                        tbody {
                            @for g in groups {
                                tr {
                                    th scope="row" { (g.site) }
                                    td { (g.priority) }
                                    td class="n" { (count(g.open)) }
                                    td class="n" { (count(g.in_progress)) }
                                    td class="n" { (count(g.count)) }
                                    td class="n" { (age(g.oldest_opened_at, now)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn filter_form(query: &ListQuery, error: Option<&str>) -> Markup {
    html! {
        form method="get" action="/portal/tickets" class="filters" {
            div class="field" {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" selected[query.status.is_empty()] { "Any" }
                    @for s in TicketStatus::ALL {
                        option value=(s.as_str()) selected[query.status == s.as_str()] { (status_label(s.as_str())) }
                    }
                }
            }
            div class="field" {
                label for="site" { "Site code" }
                input type="text" id="site" name="site" value=(query.site) maxlength="8"
                    aria-invalid=[error.map(|_| "true")] aria-describedby=[error.map(|_| "filter-error")];
            }
            div class="field" {
                label for="priority" { "Priority" }
                select id="priority" name="priority" {
                    option value="" selected[query.priority.is_empty()] { "Any" }
                    @for p in Priority::ALL {
                        option value=(p.as_str()) selected[query.priority == p.as_str()] { (p.as_str()) }
                    }
                }
            }
            div class="field" {
                label for="category" { "Category" }
                select id="category" name="category" {
                    option value="" selected[query.category.is_empty()] { "Any" }
                    @for c in Category::ALL {
                        option value=(c.as_str()) selected[query.category == c.as_str()] { (c.as_str()) }
                    }
                }
            }
            div class="field" {
                label for="ticket-text" { "Text in the number, summary or description" }
                input type="search" id="ticket-text" name="q" value=(query.text) maxlength=(MAX_FILTER_TEXT_CHARS);
            }
            @if let Some(error) = error {
                p class="error" id="filter-error" role="alert" { (error) }
            }
            button type="submit" class="primary" { "Show" }
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
    let now = Utc::now();
    let groups = match state.read_models.active_tickets().await {
        Ok(groups) => groups,
        Err(error) => return pages::failure(error.into()),
    };
    let (query, filter) = ListQuery::parse(&pairs);
    let (status, error, listing) = match filter {
        Err(error) => (StatusCode::UNPROCESSABLE_ENTITY, Some(error), None),
        Ok(filter) => {
            let offset = (query.page - 1) * PAGE_SIZE;
            match state
                .read_models
                .tickets(&filter, TicketSort::Newest, PAGE_SIZE, offset)
                .await
            {
                Ok(found) => (StatusCode::OK, None, Some(found)),
                Err(error) => return pages::failure(error.into()),
            }
        }
    };
    let main = html! {
        h1 { "Tickets" }
        (summary_table(&groups, now))
        section aria-labelledby="list" {
            h2 id="list" { "All tickets" }
            (filter_form(&query, error.as_deref()))
            @if let Some((tickets, total)) = &listing {
                @let pages_total = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
                p id="ticket-total" { (count(*total)) " tickets, newest first · page " (query.page) " of " (pages_total) }
                @if !tickets.is_empty() {
                    div class="table-wrap" {
                        table id="ticket-list" {
                            thead {
                                tr {
                                    th scope="col" { "Number" }
                                    th scope="col" { "Status" }
                                    th scope="col" { "Priority" }
                                    th scope="col" { "Summary" }
                                    th scope="col" { "Opened" }
                                    th scope="col" class="n" { "Age" }
                                }
                            }
                            tbody {
                                @for t in tickets {
                                    tr {
                                        th scope="row" { a href={ "/portal/tickets/" (t.ticket_number) } { (t.ticket_number) } }
                                        td { (status_label(&t.status)) }
                                        td { (t.priority) }
                                        td { (t.summary) }
                                        td { (when(t.opened_at)) }
                                        td class="n" { (age(t.opened_at, now)) }
                                    }
                                }
                            }
                        }
                    }
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
        document("Tickets", Some(&session), Some(Nav::Tickets), main),
    )
}

// ---------------------------------------------------------------------------------------------
// One ticket.

/// What a refused form leaves on the ticket's page: what was typed, and why it was refused.
#[derive(Debug, Default)]
struct Forms {
    comment: String,
    comment_error: Option<String>,
    status: String,
    reason: String,
    status_error: Option<String>,
}

fn activity_text(a: &TicketActivity) -> Markup {
    html! {
        @match (a.from_status.as_deref(), a.to_status.as_deref()) {
            (Some(from), Some(to)) => { "Status " (status_label(from)) " → " (status_label(to)) }
            _ => {}
        }
        @if let Some(text) = &a.text {
            @if a.from_status.is_some() { ": " }
            (text)
        }
    }
}

fn ticket_main(detail: &TicketDetail, session: &Session, forms: &Forms) -> Markup {
    let t = &detail.ticket;
    let now = Utc::now();
    let number = &t.ticket_number;
    let may_move = session.user.require_role(STATUS_ROLES).is_ok();
    let current = t.status.as_str();
    html! {
        p { a href="/portal/tickets" { "← All tickets" } }
        h1 { "Ticket " (number) }
        dl class="facts" id="ticket" {
            div { dt { "Site" } dd { (t.site) } }
            div { dt { "Status" } dd id="ticket-status" { (status_label(&t.status)) } }
            div { dt { "Category" } dd { (t.category) } }
            div { dt { "Priority" } dd { (t.priority) } }
            div { dt { "Summary" } dd { (t.summary) } }
            div { dt { "Description" } dd { (t.description) } }
            div { dt { "Customer" } dd { @if let Some(id) = t.customer_id { (id) } @else { "–" } } }
            div { dt { "Phone" } dd { @if let Some(phone) = &t.phone { (phone) } @else { "–" } } }
            div { dt { "uGridPlan id" } dd { @if let Some(id) = &t.ugridplan_id { (id) } @else { "–" } } }
            div { dt { "Opened" } dd { (when(t.opened_at)) } }
            div { dt { "Age" } dd { (age(t.opened_at, now)) } }
        }
        section aria-labelledby="activity" {
            h2 id="activity" { "Activity" }
            @if detail.activity.is_empty() {
                p { "Nothing yet." }
            } @else {
                ol class="activity" id="activity-list" {
                    @for a in &detail.activity {
                        li {
                            span class="muted" { (when(a.at)) " · " (a.kind) @if let Some(actor) = &a.actor { " · " (actor) } }
                            " "
                            span class="what" { (activity_text(a)) }
                        }
                    }
                }
            }
        }
        section aria-labelledby="comment-heading" {
            h2 id="comment-heading" { "Add a comment" }
            form method="post" action={ "/portal/tickets/" (number) "/comments" } {
                input type="hidden" name="csrf" value=(session.csrf);
                div class="field" {
                    label for="comment" { "Comment" }
                    textarea id="comment" name="text" rows="4" maxlength=(MAX_TEXT_CHARS)
                        aria-invalid=[forms.comment_error.as_ref().map(|_| "true")]
                        aria-describedby=[forms.comment_error.as_ref().map(|_| "comment-error")] { (forms.comment) }
                    @if let Some(error) = &forms.comment_error {
                        p class="error" id="comment-error" role="alert" { (error) }
                    }
                }
                button type="submit" class="primary" { "Add comment" }
            }
        }
        @if may_move {
            section aria-labelledby="status-heading" {
                h2 id="status-heading" { "Change the status" }
                form method="post" action={ "/portal/tickets/" (number) "/status" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    div class="field" {
                        label for="status" { "New status" }
                        select id="status" name="status"
                            aria-invalid=[forms.status_error.as_ref().map(|_| "true")]
                            aria-describedby=[forms.status_error.as_ref().map(|_| "status-error")] {
                            @for s in TicketStatus::ALL {
                                @let chosen = if forms.status.is_empty() { s.as_str() == current } else { s.as_str() == forms.status };
                                option value=(s.as_str()) selected[chosen] { (status_label(s.as_str())) }
                            }
                        }
                        @if let Some(error) = &forms.status_error {
                            p class="error" id="status-error" role="alert" { (error) }
                        }
                    }
                    div class="field" {
                        label for="reason" { "Reason (optional)" }
                        input type="text" id="reason" name="reason" value=(forms.reason) maxlength=(MAX_TEXT_CHARS);
                    }
                    button type="submit" class="primary" { "Change status" }
                }
            }
        }
        section aria-labelledby="messages" {
            h2 id="messages" { "Messages" }
            @if detail.messages.is_empty() {
                p { "No WhatsApp messages from this ticket's phone." }
            } @else {
                p class="muted" { (count(detail.messages_total)) " messages since the day before the ticket was opened" }
                div class="table-wrap" {
                    table id="message-list" {
                        thead {
                            tr {
                                th scope="col" { "When" }
                                th scope="col" { "Way" }
                                th scope="col" { "Text" }
                                th scope="col" { "Delivery" }
                            }
                        }
                        tbody {
                            @for m in &detail.messages {
                                tr {
                                    td { (when(m.at)) }
                                    td { @if m.direction == "in" { "In" } @else if m.direction == "out" { "Out" } @else { (m.direction) } }
                                    td { @if let Some(text) = &m.text { (text) } @else if let Some(kind) = &m.media_kind { "(" (kind) ")" } }
                                    td { @if let Some(status) = &m.status { (status) } @else { "–" } }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The ticket's page, with `forms` as left by a refused post, answered with `status`.
async fn ticket_page(
    state: &AppState,
    session: &Session,
    number: &TicketNumber,
    status: StatusCode,
    forms: &Forms,
) -> Response {
    match state
        .read_models
        .ticket(&number.to_string(), MESSAGES_ON_A_TICKET)
        .await
    {
        Ok(Some(detail)) => respond(
            status,
            document(
                &format!("Ticket {number}"),
                Some(session),
                Some(Nav::Tickets),
                ticket_main(&detail, session, forms),
            ),
        ),
        Ok(None) => not_found(session),
        Err(error) => pages::failure(error.into()),
    }
}

pub(crate) async fn detail(
    State(state): State<AppState>,
    session: Session,
    Path(number): Path<String>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let Ok(number) = number.parse::<TicketNumber>() else {
        return not_found(&session);
    };
    ticket_page(&state, &session, &number, StatusCode::OK, &Forms::default()).await
}

/// How the page shows a refused command.
enum Refusal {
    /// Beside the form, answered with this status.
    Beside(StatusCode, String),
    NoTicket,
    Failed(ApiError),
}

fn refusal(error: CommandError<TicketError>) -> Refusal {
    match error {
        CommandError::Rejected(TicketError::NotFound) => Refusal::NoTicket,
        CommandError::Rejected(TicketError::Empty { .. }) => Refusal::Beside(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Write something first: it must not be empty.".into(),
        ),
        CommandError::Rejected(TicketError::TooLong { .. }) => Refusal::Beside(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("That is too long: at most {MAX_TEXT_CHARS} characters."),
        ),
        CommandError::Rejected(other) => {
            Refusal::Beside(StatusCode::CONFLICT, capitalised(&other.to_string()))
        }
        CommandError::Conflict => Refusal::Beside(
            StatusCode::CONFLICT,
            "The ticket was changed by someone else at the same moment; try again.".into(),
        ),
        unavailable @ CommandError::Unavailable(_) => Refusal::Failed(unavailable.into()),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => format!("{}{}.", first.to_uppercase(), chars.as_str()),
        None => String::new(),
    }
}

/// Runs `command` on ticket `number` for the session's employee and waits until the read model
/// shows it: the redirect to the ticket, or its page with the refusal (through `on_refusal`).
async fn run(
    state: &AppState,
    session: &Session,
    number: &TicketNumber,
    command: TicketCommand,
    on_refusal: impl FnOnce(String) -> Forms,
) -> Response {
    let committed = match state
        .tickets
        .execute(number, command, &session.user.command_context())
        .await
    {
        Ok(committed) => committed,
        Err(error) => {
            return match refusal(error) {
                Refusal::Beside(status, message) => {
                    ticket_page(state, session, number, status, &on_refusal(message)).await
                }
                Refusal::NoTicket => not_found(session),
                Refusal::Failed(error) => pages::failure(error),
            }
        }
    };
    if let Err(error) = state.visible_tickets(committed).await {
        return pages::failure(error);
    }
    see_other(&format!("/portal/tickets/{number}"), None)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct CommentFields {
    #[serde(default)]
    text: String,
}

pub(crate) async fn comment(
    State(state): State<AppState>,
    Path(number): Path<String>,
    form: CheckedForm<CommentFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    let Ok(number) = number.parse::<TicketNumber>() else {
        return not_found(&session);
    };
    let command = TicketCommand::Comment {
        author: session.user.user_id.clone(),
        text: fields.text.clone(),
        channel: TicketChannel::Portal,
    };
    run(&state, &session, &number, command, |message| Forms {
        comment: fields.text,
        comment_error: Some(message),
        ..Forms::default()
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct StatusFields {
    #[serde(default)]
    status: String,
    #[serde(default)]
    reason: String,
}

pub(crate) async fn change_status(
    State(state): State<AppState>,
    Path(number): Path<String>,
    form: CheckedForm<StatusFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    if let Err(error) = session.user.require_role(STATUS_ROLES) {
        return forbidden(&session, &error);
    }
    let Ok(number) = number.parse::<TicketNumber>() else {
        return not_found(&session);
    };
    let kept = |message: String| Forms {
        status: fields.status.clone(),
        reason: fields.reason.clone(),
        status_error: Some(message),
        ..Forms::default()
    };
    let Ok(to) = fields
        .status
        .trim()
        .to_ascii_lowercase()
        .parse::<TicketStatus>()
    else {
        let forms = kept("Choose one of the statuses.".into());
        return ticket_page(
            &state,
            &session,
            &number,
            StatusCode::UNPROCESSABLE_ENTITY,
            &forms,
        )
        .await;
    };
    let reason = fields.reason.trim();
    let command = TicketCommand::ChangeStatus {
        to,
        reason: (!reason.is_empty()).then(|| reason.to_string()),
    };
    run(&state, &session, &number, command, kept).await
}

/// The 403 page of a role that may not do what it asked.
fn forbidden(session: &Session, error: &ApiError) -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        Some(session),
        "Not allowed for your role",
        &format!("Only superadmin and the O&M team change a ticket's status ({error}). Nothing was changed."),
        ("/portal/tickets", "All tickets"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_are_written_in_the_two_largest_units() {
        let now = Utc::now();
        assert_eq!(age(now - chrono::Duration::minutes(5), now), "5 min");
        assert_eq!(age(now - chrono::Duration::minutes(125), now), "2 h 5 min");
        assert_eq!(age(now - chrono::Duration::hours(50), now), "2 d 2 h");
        assert_eq!(age(now + chrono::Duration::minutes(5), now), "0 min");
    }

    #[test]
    fn bad_filters_are_named_and_good_ones_kept_in_the_paging_links() {
        let pairs = |list: &[(&str, &str)]| {
            list.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let (_, bad) = ListQuery::parse(&pairs(&[("status", "lost")]));
        assert!(bad.unwrap_err().starts_with("status:"));
        let (_, bad) = ListQuery::parse(&pairs(&[("page", "0")]));
        assert!(bad.is_err());
        let (query, good) = ListQuery::parse(&pairs(&[("status", "open"), ("site", "mak")]));
        assert_eq!(good.unwrap().statuses, vec![TicketStatus::Open]);
        assert_eq!(query.href(2), "/portal/tickets?page=2&status=open&site=MAK");
    }
}
