//! `/portal/tariffs` (legacy-system.md §6.1, §8 TariffManagementPage): the global rate, the
//! site and customer overrides in force or still to come, the change history, and — for
//! superadmin, onm_team and finance_team — the forms that set a rate from an effective date and
//! remove an override. Every change goes through the functions behind `/api/tariff/*`, so the
//! rules, the audit and the read-your-writes wait are the JSON API's.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::NaiveDateTime;
use maud::{html, Markup};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::value::RawValue;

use domain::site::{SiteCode, KNOWN_SITES};
use domain::tariff::TariffScope;
use projections::tariffs::{Entry, HistoryFilter, HistoryRow};

use crate::error::ApiError;
use crate::routes::mutations::int_param;
use crate::routes::tariff::{
    concession_scope, customer_scope, live, now_local, remove_override, set_global_rate,
    set_override, tariff_role, RateBody,
};
use crate::AppState;

use super::dashboard::staff_only;
use super::forms::{CheckedForm, NoFields};
use super::pages::{self, count, document, respond, see_other, Nav};
use super::session::{encode_query_value, Session};
use super::tickets::when;

/// History rows on a page (the legacy page's 25).
const HISTORY_PAGE_SIZE: i64 = 25;
/// Customer overrides on a page.
const OVERRIDES_PAGE_SIZE: usize = 25;
/// The most characters of a change's notes.
const NOTES_MAX_CHARS: usize = 500;

/// A rate with at least two decimals, exactly as stored otherwise.
fn rate_text(rate: Decimal) -> String {
    let mut shown = rate.normalize();
    if shown.scale() < 2 {
        shown.rescale(2);
    }
    shown.to_string()
}

fn local_text(at: NaiveDateTime) -> String {
    at.format("%Y-%m-%d %H:%M").to_string()
}

fn scope_label(scope: &str) -> &str {
    match scope {
        "global" => "Global",
        "concession" => "Site",
        "customer" => "Customer",
        other => other,
    }
}

// ---------------------------------------------------------------------------------------------
// The forms.

/// Which of the page's forms a refusal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Global,
    Site,
    Customer,
}

/// A field of the forms a refusal can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Target,
    Rate,
    EffectiveFrom,
    Notes,
    /// The form as a whole.
    Form,
}

/// What a refused form leaves on the page: what was typed, and why it was refused.
#[derive(Debug)]
struct Refused {
    which: Which,
    fields: RateFields,
    field: Field,
    message: String,
}

/// The fields of the three rate forms (`target`: the site code or the customer id).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct RateFields {
    #[serde(default)]
    target: String,
    #[serde(default)]
    rate: String,
    #[serde(default)]
    effective_from: String,
    #[serde(default)]
    notes: String,
}

impl RateFields {
    /// The JSON API's body of these fields: the rate as text, checked by the API as exactly
    /// as a JSON number would be.
    fn body(&self) -> Result<RateBody, (Field, String)> {
        let rate = self.rate.trim();
        if rate.is_empty() {
            return Err((Field::Rate, "Give the rate in LSL per kWh.".into()));
        }
        if self.notes.chars().count() > NOTES_MAX_CHARS {
            return Err((
                Field::Notes,
                format!("At most {NOTES_MAX_CHARS} characters."),
            ));
        }
        let quoted = serde_json::to_string(rate).unwrap_or_default();
        let rate_lsl = RawValue::from_string(quoted)
            .map_err(|_| (Field::Rate, "The rate could not be read.".to_string()))?;
        let trimmed = |text: &str| {
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_string())
        };
        Ok(RateBody {
            rate_lsl,
            effective_from: trimmed(&self.effective_from),
            notes: trimmed(&self.notes),
        })
    }
}

/// The field and message of an API refusal of a rate form.
fn field_of(error: &ApiError) -> Option<(StatusCode, Field, String)> {
    match error {
        ApiError::Invalid {
            status,
            field,
            problem,
        } => {
            let (field, label) = match field.as_str() {
                "rate_lsl" => (Field::Rate, "The rate"),
                "effective_from" => (Field::EffectiveFrom, "The effective date"),
                "notes" => (Field::Notes, "The notes"),
                "code" => (Field::Target, "The site"),
                "customer_id" => (Field::Target, "The customer id"),
                _ => (Field::Form, "The form"),
            };
            Some((*status, field, format!("{label} {problem}.")))
        }
        ApiError::BadRequest(message) => Some((
            StatusCode::BAD_REQUEST,
            Field::Form,
            format!("{message}. Nothing was changed."),
        )),
        ApiError::Conflict(message) => Some((
            StatusCode::CONFLICT,
            Field::Form,
            format!("{message}. Nothing was changed."),
        )),
        _ => None,
    }
}

/// The 403 page of a role that may not change tariffs.
fn forbidden(session: &Session) -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        Some(session),
        "Not allowed for your role",
        "Only superadmin, the O&M team and the finance team change tariffs. Nothing was changed.",
        ("/portal/tariffs", "Tariffs"),
    )
}

/// The refusal of form `which`, if it is the form refused.
fn refusal_of(refused: Option<&Refused>, which: Which) -> Option<&Refused> {
    refused.filter(|r| r.which == which)
}

/// A rate form: `target` is the site or customer field, if the form has one.
fn rate_form(
    session: &Session,
    which: Which,
    action: &str,
    target: Option<Markup>,
    refused: Option<&Refused>,
    submit: &str,
) -> Markup {
    let mine = refusal_of(refused, which);
    let prefix = match which {
        Which::Global => "global",
        Which::Site => "site",
        Which::Customer => "customer",
    };
    let error_of = |field: Field| {
        mine.filter(|r| r.field == field)
            .map(|r| r.message.as_str())
    };
    let id = |name: &str| format!("{prefix}-{name}");
    let value =
        |get: fn(&RateFields) -> &String| mine.map_or(String::new(), |r| get(&r.fields).clone());
    html! {
        form method="post" action=(action) class="rate-form" {
            input type="hidden" name="csrf" value=(session.csrf);
            @if let Some(target) = target { (target) }
            div class="field" {
                label for=(id("rate")) { "Rate (LSL per kWh)" }
                input type="text" inputmode="decimal" id=(id("rate")) name="rate" required maxlength="20"
                    value=(value(|f| &f.rate))
                    aria-invalid=[error_of(Field::Rate).map(|_| "true")]
                    aria-describedby=[error_of(Field::Rate).map(|_| id("rate-error"))];
                @if let Some(error) = error_of(Field::Rate) {
                    p class="error" id=(id("rate-error")) role="alert" { (error) }
                }
            }
            div class="field" {
                label for=(id("effective")) { "Effective from (Maseru time; empty: now)" }
                input type="datetime-local" id=(id("effective")) name="effective_from"
                    value=(value(|f| &f.effective_from))
                    aria-invalid=[error_of(Field::EffectiveFrom).map(|_| "true")]
                    aria-describedby=[error_of(Field::EffectiveFrom).map(|_| id("effective-error"))];
                @if let Some(error) = error_of(Field::EffectiveFrom) {
                    p class="error" id=(id("effective-error")) role="alert" { (error) }
                }
            }
            div class="field" {
                label for=(id("notes")) {
                    // The JSON API records notes with a scheduled global rate, not with one
                    // written to tblconfig at once.
                    @if which == Which::Global { "Notes (optional; kept with a future date)" } @else { "Notes (optional)" }
                }
                input type="text" id=(id("notes")) name="notes" maxlength=(NOTES_MAX_CHARS)
                    value=(value(|f| &f.notes))
                    aria-invalid=[error_of(Field::Notes).map(|_| "true")]
                    aria-describedby=[error_of(Field::Notes).map(|_| id("notes-error"))];
                @if let Some(error) = error_of(Field::Notes) {
                    p class="error" id=(id("notes-error")) role="alert" { (error) }
                }
            }
            @if let Some(error) = error_of(Field::Form) {
                p class="error" id=(id("form-error")) role="alert" { (error) }
            }
            button type="submit" class="primary" { (submit) }
        }
    }
}

fn site_field(refused: Option<&Refused>) -> Markup {
    let mine = refusal_of(refused, Which::Site);
    let chosen = mine.map_or(String::new(), |r| {
        r.fields.target.trim().to_ascii_uppercase()
    });
    let error = mine
        .filter(|r| r.field == Field::Target)
        .map(|r| r.message.as_str());
    html! {
        div class="field" {
            label for="site-target" { "Site" }
            select id="site-target" name="target" required
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| "site-target-error")] {
                option value="" selected[chosen.is_empty()] { "Choose a site" }
                @for site in KNOWN_SITES {
                    option value=(site.code) selected[chosen == site.code] { (site.code) " · " (site.name) }
                }
            }
            @if let Some(error) = error {
                p class="error" id="site-target-error" role="alert" { (error) }
            }
        }
    }
}

fn customer_field(refused: Option<&Refused>) -> Markup {
    let mine = refusal_of(refused, Which::Customer);
    let error = mine
        .filter(|r| r.field == Field::Target)
        .map(|r| r.message.as_str());
    html! {
        div class="field" {
            label for="customer-target" { "Customer id" }
            input type="text" inputmode="numeric" id="customer-target" name="target" required maxlength="12"
                value=(mine.map_or(String::new(), |r| r.fields.target.clone()))
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| "customer-target-error")];
            @if let Some(error) = error {
                p class="error" id="customer-target-error" role="alert" { (error) }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The page.

/// The page's paging and history filter as given.
#[derive(Debug, Default)]
struct PageQuery {
    scope: String,
    page: i64,
    customers_page: i64,
}

impl PageQuery {
    fn given<'a>(pairs: &'a [(String, String)], name: &str) -> &'a str {
        pairs
            .iter()
            .find(|(key, _)| key == name)
            .map_or("", |(_, value)| value.trim())
    }

    fn parse(pairs: &[(String, String)]) -> (PageQuery, Result<(), String>) {
        let mut query = PageQuery {
            scope: Self::given(pairs, "scope").to_ascii_lowercase(),
            page: 1,
            customers_page: 1,
        };
        let checked = (|| {
            let max = i64::MAX / (HISTORY_PAGE_SIZE * 2);
            query.page = int_param("page", Some(Self::given(pairs, "page")), 1, 1, max)
                .map_err(|e| e.to_string())?;
            query.customers_page = int_param(
                "customers_page",
                Some(Self::given(pairs, "customers_page")),
                1,
                1,
                max,
            )
            .map_err(|e| e.to_string())?;
            if !query.scope.is_empty()
                && !matches!(query.scope.as_str(), "global" | "concession" | "customer")
            {
                return Err("scope: must be global, site or customer".to_string());
            }
            Ok(())
        })();
        (query, checked)
    }

    fn href(&self, page: i64, customers_page: i64) -> String {
        let mut href = format!("/portal/tariffs?page={page}&customers_page={customers_page}");
        if !self.scope.is_empty() {
            href.push_str(&format!("&scope={}", encode_query_value(&self.scope)));
        }
        href
    }
}

/// Everything the page shows, read from the tariffs read model.
struct Rates {
    now: NaiveDateTime,
    global: Option<(Decimal, NaiveDateTime)>,
    pending_global: Option<Entry>,
    concessions: Vec<Entry>,
    customers: Vec<Entry>,
    history: Vec<HistoryRow>,
    history_total: i64,
}

async fn read_rates(state: &AppState, query: &PageQuery) -> Result<Rates, ApiError> {
    let now = now_local();
    let global = state.read_models.global_rate().await?;
    let pending_global = state
        .read_models
        .tariff_entries("global")
        .await?
        .into_iter()
        .filter(|e| e.effective_from > now && !e.applied)
        .min_by_key(|e| e.effective_from);
    let concessions = state.read_models.tariff_entries("concession").await?;
    let customers = state.read_models.tariff_entries("customer").await?;
    let filter = HistoryFilter {
        scope: (!query.scope.is_empty()).then(|| query.scope.clone()),
        ..HistoryFilter::default()
    };
    let (history, history_total) = state
        .read_models
        .tariff_history(
            &filter,
            HISTORY_PAGE_SIZE,
            (query.page - 1) * HISTORY_PAGE_SIZE,
        )
        .await?;
    Ok(Rates {
        now,
        concessions: live(&concessions, now).into_iter().cloned().collect(),
        customers: live(&customers, now).into_iter().cloned().collect(),
        global,
        pending_global,
        history,
        history_total,
    })
}

fn set_by(e: &Entry) -> &str {
    e.set_by_name
        .as_deref()
        .or(e.set_by.as_deref())
        .unwrap_or("–")
}

/// A table of overrides; `remove` is the removal address of a row's key, for those who may.
fn overrides_table(
    id: &str,
    key_heading: &str,
    entries: &[Entry],
    now: NaiveDateTime,
    session: &Session,
    remove: Option<fn(&str) -> String>,
) -> Markup {
    html! {
        div class="table-wrap" {
            table id=(id) {
                thead {
                    tr {
                        th scope="col" { (key_heading) }
                        th scope="col" class="n" { "Rate (LSL/kWh)" }
                        th scope="col" { "Effective from" }
                        th scope="col" { "Set by" }
                        th scope="col" { "Notes" }
                        @if remove.is_some() { th scope="col" { "Remove" } }
                    }
                }
                tbody {
                    @for e in entries {
                        tr {
                            th scope="row" { (e.scope_key) }
                            td class="n" { @if let Some(rate) = e.rate_lsl { (rate_text(rate)) } }
                            td {
                                (local_text(e.effective_from))
                                @if e.effective_from > now { " " span class="badge" { "pending" } }
                            }
                            td { (set_by(e)) }
                            td { (e.notes.as_deref().unwrap_or("")) }
                            @if let Some(remove) = remove {
                                td {
                                    form method="post" action=(remove(&e.scope_key)) class="inline" {
                                        input type="hidden" name="csrf" value=(session.csrf);
                                        button type="submit" class="secondary" {
                                            "Remove" span class="visually-hidden" { " the override of " (e.scope_key) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn history_section(rates: &Rates, query: &PageQuery, error: Option<&str>) -> Markup {
    let pages_total = ((rates.history_total + HISTORY_PAGE_SIZE - 1) / HISTORY_PAGE_SIZE).max(1);
    html! {
        section aria-labelledby="history" {
            h2 id="history" { "Change history" }
            form method="get" action="/portal/tariffs" class="filters" {
                div class="field" {
                    label for="scope" { "Scope" }
                    select id="scope" name="scope"
                        aria-invalid=[error.map(|_| "true")]
                        aria-describedby=[error.map(|_| "history-error")] {
                        option value="" selected[query.scope.is_empty()] { "All" }
                        @for scope in ["global", "concession", "customer"] {
                            option value=(scope) selected[query.scope == scope] { (scope_label(scope)) }
                        }
                    }
                }
                @if let Some(error) = error {
                    p class="error" id="history-error" role="alert" { (error) }
                }
                button type="submit" class="primary" { "Show" }
            }
            p id="history-total" { (count(rates.history_total)) " changes, newest first · page " (query.page) " of " (pages_total) }
            @if !rates.history.is_empty() {
                div class="table-wrap" {
                    table id="tariff-history" {
                        thead {
                            tr {
                                th scope="col" { "Date" }
                                th scope="col" { "Scope" }
                                th scope="col" { "Key" }
                                th scope="col" class="n" { "Previous" }
                                th scope="col" class="n" { "New rate" }
                                th scope="col" { "Effective from" }
                                th scope="col" { "By" }
                                th scope="col" { "Notes" }
                            }
                        }
                        tbody {
                            @for h in &rates.history {
                                tr {
                                    td { (when(h.recorded_at)) }
                                    td { (scope_label(&h.scope)) }
                                    th scope="row" { (h.scope_key) }
                                    td class="n" { @if let Some(r) = h.previous_rate { (rate_text(r)) } @else { "–" } }
                                    td class="n" { @if let Some(r) = h.rate_lsl { (rate_text(r)) } @else { "removed" } }
                                    td { (local_text(h.effective_from)) }
                                    td { (h.set_by_name.as_deref().or(h.set_by.as_deref()).unwrap_or("–")) }
                                    td { (h.notes.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
            }
            nav aria-label="History pages" class="paging" {
                @if query.page > 1 {
                    a href=(query.href(query.page - 1, query.customers_page)) rel="prev" { "Newer" }
                    " "
                }
                @if query.page < pages_total {
                    a href=(query.href(query.page + 1, query.customers_page)) rel="next" { "Older" }
                }
            }
        }
    }
}

fn site_remove_href(code: &str) -> String {
    format!("/portal/tariffs/sites/{}/remove", encode_query_value(code))
}

fn customer_remove_href(id: &str) -> String {
    format!(
        "/portal/tariffs/customers/{}/remove",
        encode_query_value(id)
    )
}

fn tariffs_main(
    rates: &Rates,
    query: &PageQuery,
    query_error: Option<&str>,
    session: &Session,
    refused: Option<&Refused>,
) -> Markup {
    let may_change = tariff_role(&session.user).is_ok();
    let customer_pages = rates.customers.len().div_ceil(OVERRIDES_PAGE_SIZE).max(1) as i64;
    let customers_page = query.customers_page.min(customer_pages);
    let start = (customers_page as usize - 1) * OVERRIDES_PAGE_SIZE;
    let end = (start + OVERRIDES_PAGE_SIZE).min(rates.customers.len());
    html! {
        h1 { "Tariffs" }
        @if !may_change {
            p class="muted" id="read-only" { "Your role may read the tariffs; superadmin, the O&M team and the finance team change them." }
        }
        section aria-labelledby="global" {
            h2 id="global" { "Global rate" }
            dl class="facts" id="global-rate" {
                div { dt { "Rate (LSL/kWh)" } dd {
                    @if let Some((rate, _)) = rates.global { (rate_text(rate)) } @else { "Not known yet" }
                } }
                div { dt { "Since" } dd {
                    @if let Some((_, since)) = rates.global { (local_text(since)) } @else { "–" }
                } }
            }
            @if let Some(pending) = &rates.pending_global {
                p class="alert" id="pending-global" role="status" {
                    "From " (local_text(pending.effective_from)) " the global rate will be "
                    @if let Some(rate) = pending.rate_lsl { (rate_text(rate)) } @else { "–" }
                    " LSL/kWh"
                    @if let Some(notes) = &pending.notes { " (" (notes) ")" }
                    "."
                }
            }
            @if may_change {
                h3 { "Set the global rate" }
                (rate_form(session, Which::Global, "/portal/tariffs/global", None, refused, "Set global rate"))
            }
        }
        section aria-labelledby="sites" {
            h2 id="sites" { "Site overrides" }
            @if rates.concessions.is_empty() {
                p id="no-site-overrides" { "No site has its own rate." }
            } @else {
                (overrides_table("site-overrides", "Site", &rates.concessions, rates.now, session,
                    may_change.then_some(site_remove_href as fn(&str) -> String)))
            }
            @if may_change {
                h3 { "Set a site's rate" }
                (rate_form(session, Which::Site, "/portal/tariffs/sites", Some(site_field(refused)), refused, "Set site rate"))
            }
        }
        section aria-labelledby="customers" {
            h2 id="customers" { "Customer overrides" }
            @if rates.customers.is_empty() {
                p id="no-customer-overrides" { "No customer has their own rate." }
            } @else {
                p class="muted" { (rates.customers.len()) " customer overrides · page " (customers_page) " of " (customer_pages) }
                (overrides_table("customer-overrides", "Customer", &rates.customers[start..end], rates.now, session,
                    may_change.then_some(customer_remove_href as fn(&str) -> String)))
                nav aria-label="Customer override pages" class="paging" {
                    @if customers_page > 1 {
                        a href=(query.href(query.page, customers_page - 1)) rel="prev" { "Previous" }
                        " "
                    }
                    @if customers_page < customer_pages {
                        a href=(query.href(query.page, customers_page + 1)) rel="next" { "Next" }
                    }
                }
            }
            @if may_change {
                h3 { "Set a customer's rate" }
                (rate_form(session, Which::Customer, "/portal/tariffs/customers", Some(customer_field(refused)), refused, "Set customer rate"))
            }
        }
        (history_section(rates, query, query_error))
    }
}

/// The page, with `refused` as left by a refused form, answered with `status`.
async fn tariffs_page(
    state: &AppState,
    session: &Session,
    pairs: &[(String, String)],
    status: StatusCode,
    refused: Option<&Refused>,
) -> Response {
    let (query, checked) = PageQuery::parse(pairs);
    let (status, query_error) = match checked {
        Ok(()) => (status, None),
        Err(error) => (StatusCode::UNPROCESSABLE_ENTITY, Some(error)),
    };
    let query = if query_error.is_some() {
        PageQuery {
            page: 1,
            customers_page: 1,
            scope: String::new(),
        }
    } else {
        query
    };
    match read_rates(state, &query).await {
        Ok(rates) => respond(
            status,
            document(
                "Tariffs",
                Some(session),
                Some(Nav::Tariffs),
                tariffs_main(&rates, &query, query_error.as_deref(), session, refused),
            ),
        ),
        Err(error) => pages::failure(error),
    }
}

pub(crate) async fn page(
    State(state): State<AppState>,
    session: Session,
    Query(pairs): Query<Vec<(String, String)>>,
) -> Response {
    if session.user.employee().is_err() {
        return staff_only(&session);
    }
    tariffs_page(&state, &session, &pairs, StatusCode::OK, None).await
}

// ---------------------------------------------------------------------------------------------
// The posts.

/// The page refusing `session`'s post, unless its role may change tariffs.
fn role_refusal(session: &Session) -> Option<Response> {
    if session.user.employee().is_err() {
        return Some(staff_only(session));
    }
    tariff_role(&session.user).err().map(|_| forbidden(session))
}

/// How a rate form's post ended.
enum Outcome {
    Done,
    /// Refused beside the form, answered with this status.
    Refused(StatusCode, Field, String),
    /// A page of its own: a role refusal, or a failure.
    Page(Response),
}

impl Outcome {
    fn invalid((field, message): (Field, String)) -> Outcome {
        Outcome::Refused(StatusCode::UNPROCESSABLE_ENTITY, field, message)
    }

    /// The outcome of the JSON API's function for this post.
    fn of<T>(result: Result<T, ApiError>, session: &Session) -> Outcome {
        match result {
            // Applied, scheduled, or queued for the ACDB: the page shows which.
            Ok(_) => Outcome::Done,
            Err(ApiError::Forbidden(_)) => Outcome::Page(forbidden(session)),
            Err(error) => match field_of(&error) {
                Some((status, field, message)) => Outcome::Refused(status, field, message),
                None => Outcome::Page(pages::failure(error)),
            },
        }
    }
}

/// The answer to a rate form's post: back to the page, or the page with the refusal.
async fn after_post(
    state: &AppState,
    session: &Session,
    which: Which,
    fields: RateFields,
    outcome: Outcome,
) -> Response {
    match outcome {
        Outcome::Done => see_other("/portal/tariffs", None),
        Outcome::Page(page) => page,
        Outcome::Refused(status, field, message) => {
            let refused = Refused {
                which,
                fields,
                field,
                message,
            };
            tariffs_page(state, session, &[], status, Some(&refused)).await
        }
    }
}

pub(crate) async fn set_global(
    State(state): State<AppState>,
    form: CheckedForm<RateFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if let Some(page) = role_refusal(&session) {
        return page;
    }
    let outcome = match fields.body() {
        Err(refusal) => Outcome::invalid(refusal),
        Ok(body) => Outcome::of(set_global_rate(&state, &session.user, body).await, &session),
    };
    after_post(&state, &session, Which::Global, fields, outcome).await
}

async fn set_site_rate(state: &AppState, session: &Session, fields: &RateFields) -> Outcome {
    let unknown = || Outcome::invalid((Field::Target, "Choose one of the sites.".into()));
    // The JSON API takes any well-formed code; a form offers only the sites that exist.
    let Some(site) = SiteCode::parse(&fields.target)
        .ok()
        .filter(|site| site.known().is_some())
    else {
        return unknown();
    };
    let body = match fields.body() {
        Ok(body) => body,
        Err(refusal) => return Outcome::invalid(refusal),
    };
    let Ok(scope) = concession_scope(site.as_str()) else {
        return unknown();
    };
    Outcome::of(
        set_override(state, &session.user, scope, body).await,
        session,
    )
}

pub(crate) async fn set_site(
    State(state): State<AppState>,
    form: CheckedForm<RateFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if let Some(page) = role_refusal(&session) {
        return page;
    }
    let outcome = set_site_rate(&state, &session, &fields).await;
    after_post(&state, &session, Which::Site, fields, outcome).await
}

async fn set_customer_rate(state: &AppState, session: &Session, fields: &RateFields) -> Outcome {
    let Ok(scope @ TariffScope::Customer(id)) = customer_scope(&fields.target) else {
        return Outcome::invalid((
            Field::Target,
            "Give the customer's id, a whole number.".into(),
        ));
    };
    match state.read_models.customer_by_id(id).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return Outcome::Refused(
                StatusCode::NOT_FOUND,
                Field::Target,
                format!("There is no customer {id}."),
            )
        }
        Err(error) => return Outcome::Page(pages::failure(error.into())),
    }
    let body = match fields.body() {
        Ok(body) => body,
        Err(refusal) => return Outcome::invalid(refusal),
    };
    Outcome::of(
        set_override(state, &session.user, scope, body).await,
        session,
    )
}

pub(crate) async fn set_customer(
    State(state): State<AppState>,
    form: CheckedForm<RateFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    if let Some(page) = role_refusal(&session) {
        return page;
    }
    let outcome = set_customer_rate(&state, &session, &fields).await;
    after_post(&state, &session, Which::Customer, fields, outcome).await
}

fn no_override(session: &Session) -> Response {
    pages::error_page(
        StatusCode::NOT_FOUND,
        Some(session),
        "No such override",
        "There is no override to remove there: it may have been removed already.",
        ("/portal/tariffs", "Tariffs"),
    )
}

/// Removes the override of `scope` (`None`: a key that names none).
async fn remove(state: &AppState, session: &Session, scope: Option<TariffScope>) -> Response {
    if let Some(page) = role_refusal(session) {
        return page;
    }
    let Some(scope) = scope else {
        return no_override(session);
    };
    match remove_override(state, &session.user, scope).await {
        Ok(_) => see_other("/portal/tariffs", None),
        Err(ApiError::NotFound(_)) => no_override(session),
        Err(ApiError::Forbidden(_)) => forbidden(session),
        Err(error) => pages::failure(error),
    }
}

pub(crate) async fn remove_site(
    State(state): State<AppState>,
    Path(code): Path<String>,
    form: CheckedForm<NoFields>,
) -> Response {
    remove(&state, &form.session, concession_scope(&code).ok()).await
}

pub(crate) async fn remove_customer(
    State(state): State<AppState>,
    Path(id): Path<String>,
    form: CheckedForm<NoFields>,
) -> Response {
    remove(&state, &form.session, customer_scope(&id).ok()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_are_shown_exactly_with_at_least_two_decimals() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(rate_text(d("5")), "5.00");
        assert_eq!(rate_text(d("6.2500")), "6.25");
        assert_eq!(rate_text(d("4.1234")), "4.1234");
    }

    #[test]
    fn a_rate_form_needs_a_rate_and_passes_it_as_text() {
        let empty = RateFields::default();
        assert_eq!(empty.body().unwrap_err().0, Field::Rate);
        let given = RateFields {
            rate: " 6.25 ".into(),
            effective_from: "2026-03-01T08:00".into(),
            ..RateFields::default()
        };
        let body = given.body().unwrap();
        assert_eq!(body.rate_lsl.get(), "\"6.25\"");
        assert_eq!(body.effective_from.as_deref(), Some("2026-03-01T08:00"));
        assert_eq!(body.notes, None);
    }
}
