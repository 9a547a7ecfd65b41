//! The customers' own pages (legacy-system.md §8 My dashboard, My profile, and the login page's
//! Register mode): `/portal/my` (balance, last payment, usage), `/portal/my/profile` (their
//! record, as `/api/my/profile`), and `/portal/register` (registration with the office's
//! one-time code, as `/api/auth/customer-register`). `/portal/` sends customers to `/portal/my`.
//!
//! The dashboard's figures are `/api/my/dashboard`'s: the same ledger query and the same
//! `Dashboard::compute`, rounded half to even to the same decimals when written. Employees who
//! open these pages are told they are for customers (the legacy let them in and showed API
//! errors).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use axum::Json;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;

use domain::dashboard::{Dashboard, LedgerEntry};
use domain::dates::maseru_local;
use projections::reports;

use crate::auth::login::{log_in, LoginKind, LoginOutcome};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::routes::auth::{customer_register, ClientAddress, CustomerRegister};
use crate::routes::customers::my_profile;
use crate::AppState;

use super::account::password_notice;
use super::charts::{self, Chart, Series};
use super::forms::{parse, Client};
use super::login::login_value;
use super::pages::{self, decimal, document, respond, see_other, Nav};
use super::session::{
    clear_login_cookie, constant_time_eq, is_https, login_cookie, new_login_value, session_cookie,
    Session,
};
use super::tables::failure_page;

/// Below this balance the meter's "Low" light shows (the legacy's LCD).
const LOW_BALANCE_KWH: i64 = 10;

/// `GET /portal/`: the staff dashboard, or the customer's own.
pub(crate) async fn home(state: State<AppState>, session: Session) -> Response {
    if session.user.customer().is_ok() {
        return see_other("/portal/my", None);
    }
    super::dashboard::page(state, session).await
}

/// The page an employee gets on a customer's page.
fn customers_only(session: &Session) -> Response {
    pages::error_page(
        StatusCode::FORBIDDEN,
        Some(session),
        "This page is for customers",
        "These pages show a signed-in customer their own account. You are signed in as staff: open a customer from the customer search to see their figures.",
        ("/portal/customers", "Search customers"),
    )
}

// ---------------------------------------------------------------------------------------------
// The dashboard.

/// `seconds` as days, hours and minutes.
fn duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (days, hours, minutes) = (
        seconds / 86_400,
        seconds % 86_400 / 3600,
        seconds % 3600 / 60,
    );
    format!("{days} d {hours} h {minutes} min")
}

fn usage_chart(
    id: &str,
    title: &str,
    x: &str,
    points: Vec<(String, rust_decimal::Decimal)>,
    dp: u32,
) -> Markup {
    let (labels, values): (Vec<String>, Vec<_>) = points.into_iter().unzip();
    let chart = Chart::new(id, title, x, "kWh", labels).with(Series::bars("kWh", values, dp));
    html! {
        section aria-labelledby={ (id) "-title" } {
            h2 id={ (id) "-title" } { (title) }
            (charts::figure(&chart))
        }
    }
}

fn dashboard_main(name: &str, account: &str, board: &Dashboard) -> Markup {
    let low = board.balance_kwh < rust_decimal::Decimal::from(LOW_BALANCE_KWH);
    html! {
        h1 { "Welcome back, " (name) }
        p { "Account " strong id="account" { (account) } " · " a href="/portal/my/profile" { "My account" } }
        section aria-labelledby="figures" {
            h2 id="figures" class="visually-hidden" { "Your figures" }
            dl class="cards" {
                div class="card" {
                    dt { "Balance" }
                    dd id="balance" {
                        (decimal(board.balance_kwh, 2)) " kWh"
                        @if low { small id="low-balance" { "Low: recharge soon" } }
                    }
                }
                div class="card" {
                    dt { "Last payment" }
                    dd id="last-payment" {
                        @if let Some(payment) = &board.last_payment {
                            "LSL " (decimal(payment.amount, 2))
                            small { (payment.date.format("%Y-%m-%d")) " · +" (decimal(payment.kwh, 2)) " kWh" }
                        } @else {
                            "None yet"
                        }
                    }
                }
                div class="card" {
                    dt { "Average daily use (past 30 days)" }
                    dd id="average-use" { (decimal(board.avg_kwh_per_day, 2)) " kWh" }
                }
                div class="card" {
                    dt { "Time to recharge, about" }
                    dd id="recharge" { (duration(board.estimated_recharge_seconds)) }
                }
                div class="card" {
                    dt { "Total used" }
                    dd id="total-kwh" { (decimal(board.total_kwh, 1)) " kWh" }
                }
                div class="card" {
                    dt { "Total purchases" }
                    dd id="total-lsl" { "LSL " (decimal(board.total_lsl, 2)) }
                }
            }
        }
        (usage_chart("usage-7d", "Use in the last 7 days", "Day",
            board.daily_7d.iter().map(|(d, kwh)| (d.format("%m-%d").to_string(), *kwh)).collect(), 2))
        (usage_chart("usage-30d", "Use in the last 30 days", "Day",
            board.daily_30d.iter().map(|(d, kwh)| (d.format("%m-%d").to_string(), *kwh)).collect(), 2))
        (usage_chart("usage-12m", "Use in the last 12 months", "Month",
            board.monthly_12m.iter().map(|(m, kwh)| (m.to_string(), *kwh)).collect(), 1))
    }
}

/// `GET /portal/my`: the customer's balance, last payment and usage.
pub(crate) async fn dashboard(State(state): State<AppState>, session: Session) -> Response {
    let Ok(account) = session.user.customer() else {
        return customers_only(&session);
    };
    let rows = match reports::account_ledger(state.read_models.pool(), account).await {
        Ok((_, rows)) => rows,
        Err(error) => return failure_page(&session, error.into(), ("/portal/my", "Try again")),
    };
    // As `/api/my/dashboard` computes it.
    let entries: Vec<LedgerEntry> = rows
        .iter()
        .map(|r| LedgerEntry {
            at: r.at,
            amount: r.amount,
            kwh: r.kwh,
            balance: r.balance,
        })
        .collect();
    let board = Dashboard::compute(&entries, maseru_local(Utc::now()));
    respond(
        StatusCode::OK,
        document(
            "My dashboard",
            Some(&session),
            Some(Nav::MyDashboard),
            dashboard_main(&session.user.name, account, &board),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// The profile.

fn text<'a>(customer: &'a Value, field: &str) -> &'a str {
    customer[field]
        .as_str()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .unwrap_or("–")
}

fn day(customer: &Value, field: &str) -> String {
    customer[field]
        .as_str()
        .map_or_else(|| "–".to_string(), |d| d.chars().take(10).collect())
}

fn profile_main(customer: &Value, changed: Option<&str>) -> Markup {
    let names: Vec<&str> = ["first_name", "middle_name", "last_name"]
        .iter()
        .filter_map(|f| {
            customer[*f]
                .as_str()
                .map(str::trim)
                .filter(|n| !n.is_empty())
        })
        .collect();
    let accounts: Vec<&str> = customer["account_numbers"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let phones: Vec<&str> = ["phone", "cell_phone_1", "cell_phone_2"]
        .iter()
        .map(|f| text(customer, f))
        .filter(|p| *p != "–")
        .collect();
    html! {
        h1 { "My account" }
        (password_notice(changed))
        dl class="facts" id="profile" {
            div { dt { "Name" } dd { @if names.is_empty() { "–" } @else { (names.join(" ")) } } }
            div { dt { "Customer ID" } dd { (text(customer, "customer_id")) } }
            div { dt { "Account number" } dd { (text(customer, "account_number")) } }
            div { dt { "Phones" } dd { @if phones.is_empty() { "–" } @else { (phones.join(", ")) } } }
            div { dt { "E-mail" } dd { (text(customer, "email")) } }
            div { dt { "Plot number" } dd { (text(customer, "plot_number")) } }
            div { dt { "Address" } dd { (text(customer, "street_address")) } }
            div { dt { "City" } dd { (text(customer, "city")) } }
            div { dt { "District" } dd { (text(customer, "district")) } }
            div { dt { "Site" } dd { (text(customer, "concession")) } }
            div { dt { "Connected" } dd { (day(customer, "date_connected")) } }
            div { dt { "Terminated" } dd { (day(customer, "date_terminated")) } }
        }
        section aria-labelledby="accounts" {
            h2 id="accounts" { "Account numbers" }
            ul id="account-list" { @for a in &accounts { li { (a) } } }
        }
        p { "Something wrong? Tell the office: they keep these details." }
        p { a href="/portal/account/password" { "Change your password" } }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ProfileQuery {
    password: Option<String>,
}

/// `GET /portal/my/profile`: the customer's record, as `/api/my/profile` answers it.
pub(crate) async fn profile(
    State(state): State<AppState>,
    session: Session,
    axum::extract::Query(query): axum::extract::Query<ProfileQuery>,
) -> Response {
    if session.user.customer().is_err() {
        return customers_only(&session);
    }
    let customer = match my_profile(State(state), session.user.clone()).await {
        Ok(Json(answer)) => answer["customer"].clone(),
        Err(error) => return failure_page(&session, error, ("/portal/my", "Back to my dashboard")),
    };
    respond(
        StatusCode::OK,
        document(
            "My account",
            Some(&session),
            Some(Nav::MyAccount),
            profile_main(&customer, query.password.as_deref()),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// Registration.

/// What the registration form shows: what was typed (never the password) and why it was refused.
#[derive(Debug, Default)]
struct RegisterView {
    account: String,
    code: String,
    form_error: Option<String>,
    account_error: Option<String>,
    code_error: Option<String>,
    password_error: Option<String>,
    again_error: Option<String>,
}

fn field(
    id: &str,
    label: &str,
    kind: &str,
    value: &str,
    hint: &str,
    autocomplete: &str,
    error: Option<&str>,
) -> Markup {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described = match error {
        Some(_) => format!("{hint_id} {error_id}"),
        None => hint_id.clone(),
    };
    html! {
        div class="field" {
            label for=(id) { (label) }
            p class="muted" id=(hint_id) { (hint) }
            @if let Some(error) = error { p class="error" id=(error_id) { (error) } }
            input type=(kind) id=(id) name=(id) value=(value) autocomplete=(autocomplete)
                autocapitalize="none" spellcheck="false" required maxlength="256"
                aria-invalid=[error.map(|_| "true")] aria-describedby=(described);
        }
    }
}

fn register_page(csrf: &str, view: &RegisterView) -> Markup {
    let min = domain::auth::MIN_PASSWORD_CHARS;
    let main = html! {
        div class="login" {
            h1 { "Register" }
            p { "Choose a password for your account, with the one-time code the office gave you." }
            form method="post" action="/portal/register" {
                @if let Some(error) = &view.form_error {
                    p class="error alert" role="alert" id="form-error" { (error) }
                }
                input type="hidden" name="csrf" value=(csrf);
                (field("customer_id", "Account number", "text", &view.account,
                    "On your receipt: 4 digits and the site, like 0045MAK.", "username", view.account_error.as_deref()))
                (field("registration_code", "Registration code", "text", &view.code,
                    "The one-time code from the office. Ask them if you have none.", "one-time-code", view.code_error.as_deref()))
                (field("password", "Password", "password", "",
                    &format!("At least {min} characters."), "new-password", view.password_error.as_deref()))
                (field("password_again", "Password again", "password", "",
                    "The same password once more.", "new-password", view.again_error.as_deref()))
                button type="submit" class="primary" { "Register" }
            }
            p { "Registered already? " a href="/portal/login?as=customer" { "Sign in" } }
        }
    };
    document("Register", None, None, main)
}

/// `GET /portal/register`: the form, with the login form's pre-session cookie (its CSRF check).
pub(crate) async fn register_form(headers: HeaderMap, uri: Uri) -> Response {
    let existing = login_value(&headers);
    let value = existing.clone().unwrap_or_else(new_login_value);
    let mut response = respond(
        StatusCode::OK,
        register_page(&value, &RegisterView::default()),
    );
    if existing.is_none() {
        response
            .headers_mut()
            .append(SET_COOKIE, login_cookie(&value, is_https(&headers, &uri)));
    }
    response
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct RegisterFields {
    csrf: String,
    customer_id: String,
    registration_code: String,
    password: String,
    password_again: String,
}

/// `POST /portal/register`: registers as `/api/auth/customer-register` does, then signs the
/// customer in and sends them to their dashboard.
pub(crate) async fn register(
    State(state): State<AppState>,
    Client(address): Client,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let secure = is_https(&headers, &uri);
    let fields = parse::<RegisterFields>(&body).unwrap_or_default();
    let Some(expected) = login_value(&headers) else {
        return pages::bad_form(None);
    };
    if !constant_time_eq(expected.as_bytes(), fields.csrf.trim().as_bytes()) {
        return pages::bad_form(None);
    }
    let mut view = RegisterView {
        account: fields.customer_id.trim().to_string(),
        code: fields.registration_code.trim().to_string(),
        ..RegisterView::default()
    };
    let refuse =
        |status: StatusCode, view: &RegisterView| respond(status, register_page(&expected, view));
    if view.account.is_empty() {
        view.account_error = Some("Enter your account number.".into());
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, &view);
    }
    if fields.password != fields.password_again {
        view.again_error = Some("This is not the same as the password: type it again.".into());
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, &view);
    }
    let registered = customer_register(
        State(state.clone()),
        ClientAddress(address),
        JsonBody(CustomerRegister {
            customer_id: view.account.clone(),
            password: fields.password.clone(),
            registration_code: Some(view.code.clone()),
        }),
    )
    .await;
    let account = match registered {
        Ok((_, Json(answer))) => answer["customer_id"]
            .as_str()
            .unwrap_or(&view.account)
            .to_string(),
        Err(error) => {
            let status = match error {
                ApiError::Invalid {
                    status,
                    field,
                    problem,
                } => {
                    match field.as_str() {
                        "customer_id" => {
                            view.account_error =
                                Some(format!("That is not an account number: {problem}."))
                        }
                        "password" => {
                            view.password_error = Some(format!("The password {problem}."))
                        }
                        "registration_code" => {
                            view.code_error =
                                Some("Enter the registration code the office gave you.".into())
                        }
                        _ => view.form_error = Some(format!("{field}: {problem}.")),
                    }
                    status
                }
                ApiError::NotFound(message) => {
                    view.account_error = Some(message);
                    StatusCode::NOT_FOUND
                }
                ApiError::Conflict(_) => {
                    view.account_error =
                        Some("This account is registered already: sign in instead.".into());
                    StatusCode::CONFLICT
                }
                ApiError::Unauthorized(_) => {
                    view.code_error = Some(
                        "This code does not match the account, or it has expired. Check it, or ask the office for a new one."
                            .into(),
                    );
                    StatusCode::UNPROCESSABLE_ENTITY
                }
                ApiError::TooManyRequests { retry_after_s } => {
                    view.form_error = Some(format!(
                        "Too many attempts. Wait {retry_after_s} seconds and try again."
                    ));
                    StatusCode::TOO_MANY_REQUESTS
                }
                other => return pages::failure(other),
            };
            return refuse(status, &view);
        }
    };
    // Registered: signed in as the login form would, so the customer lands on their page.
    let signed = log_in(
        &state,
        LoginKind::Customer,
        &account,
        &fields.password,
        address,
    )
    .await;
    let mut response = match signed {
        Ok(LoginOutcome::SignedIn(signed)) => see_other(
            "/portal/my",
            Some(session_cookie(
                &signed.issued.token,
                signed.issued.lifetime.as_secs(),
                secure,
            )),
        ),
        _ => see_other("/portal/login?as=customer", None),
    };
    response
        .headers_mut()
        .append(SET_COOKIE, clear_login_cookie(secure));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recharge_estimate_is_written_in_days_hours_and_minutes() {
        assert_eq!(duration(2 * 86_400), "2 d 0 h 0 min");
        assert_eq!(duration(90_061), "1 d 1 h 1 min");
        assert_eq!(duration(-5), "0 d 0 h 0 min");
    }
}
