//! `/portal/login` and `/portal/logout`: the sign-in forms (staff and customers), which issue the
//! same token as `/api/auth/employee-login` and `/api/auth/customer-login` through the same
//! [`log_in`] (login limits and all), into the session cookie; signing out revokes the token
//! with the [`log_out`] of `/api/auth/logout`.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::{RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use maud::{html, Markup};
use serde::Deserialize;

use crate::auth::login::{log_in, log_out, LoginKind, LoginOutcome};
use crate::AppState;

use super::forms::{parse, CheckedForm, Client, NoFields};
use super::pages::{self, document, respond};
use super::session::{
    clear_login_cookie, clear_session_cookie, constant_time_eq, cookie, encode_query_value,
    is_https, login_cookie, new_login_value, safe_next, session_cookie, LOGIN_COOKIE,
};

/// Who is signing in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Staff,
    Customer,
}

impl Kind {
    fn of(raw: Option<&str>) -> Kind {
        match raw {
            Some("customer") => Kind::Customer,
            _ => Kind::Staff,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Staff => "staff",
            Kind::Customer => "customer",
        }
    }

    fn login(self) -> LoginKind {
        match self {
            Kind::Staff => LoginKind::Employee,
            Kind::Customer => LoginKind::Customer,
        }
    }

    fn id_label(self) -> &'static str {
        match self {
            Kind::Staff => "Employee ID",
            Kind::Customer => "Account number",
        }
    }

    fn id_hint(self) -> &'static str {
        match self {
            Kind::Staff => "Your HR employee number.",
            Kind::Customer => "On your receipt: 4 digits and the site, like 0045MAK.",
        }
    }

    fn id_missing(self) -> &'static str {
        match self {
            Kind::Staff => "Enter your employee ID.",
            Kind::Customer => "Enter your account number.",
        }
    }
}

/// What the login page shows.
struct LoginView<'a> {
    kind: Kind,
    csrf: &'a str,
    next: Option<String>,
    user_id: &'a str,
    /// Beside the form: credentials that did not match, too many attempts.
    error: Option<String>,
    user_id_error: Option<&'static str>,
    password_error: Option<&'static str>,
}

/// The message for credentials that did not match, whichever part was wrong.
const NO_MATCH: &str =
    "Those details do not match an account. Check the ID and the password and try again.";

fn login_page(view: &LoginView<'_>) -> Markup {
    let tab = |kind: Kind, label: &str| {
        let mut href = format!("/portal/login?as={}", kind.as_str());
        if let Some(next) = &view.next {
            href.push_str("&next=");
            href.push_str(&encode_query_value(next));
        }
        html! {
            @if view.kind == kind {
                a href=(href) aria-current="page" { (label) }
            } @else {
                a href=(href) { (label) }
            }
        }
    };
    let main = html! {
        div class="login" {
            h1 { "Sign in" }
            nav class="tabs" aria-label="Who is signing in" {
                (tab(Kind::Staff, "Staff"))
                (tab(Kind::Customer, "Customer"))
            }
            form method="post" action="/portal/login" {
                @if let Some(error) = &view.error {
                    p class="error alert" role="alert" id="form-error" { (error) }
                }
                input type="hidden" name="csrf" value=(view.csrf);
                input type="hidden" name="kind" value=(view.kind.as_str());
                @if let Some(next) = &view.next {
                    input type="hidden" name="next" value=(next);
                }
                div class="field" {
                    label for="user_id" { (view.kind.id_label()) }
                    p class="muted" id="user_id-hint" { (view.kind.id_hint()) }
                    @if let Some(problem) = view.user_id_error {
                        p class="error" id="user_id-error" { (problem) }
                        input type="text" id="user_id" name="user_id" value=(view.user_id)
                            autocomplete="username" autocapitalize="none" spellcheck="false" required
                            aria-invalid="true" aria-describedby="user_id-hint user_id-error";
                    } @else {
                        input type="text" id="user_id" name="user_id" value=(view.user_id)
                            autocomplete="username" autocapitalize="none" spellcheck="false" required
                            aria-describedby="user_id-hint";
                    }
                }
                div class="field" {
                    label for="password" { "Password" }
                    @if let Some(problem) = view.password_error {
                        p class="error" id="password-error" { (problem) }
                        input type="password" id="password" name="password"
                            autocomplete="current-password" required
                            aria-invalid="true" aria-describedby="password-error";
                    } @else {
                        input type="password" id="password" name="password"
                            autocomplete="current-password" required;
                    }
                }
                button type="submit" class="primary" { "Sign in" }
            }
            @if view.kind == Kind::Customer {
                p id="register-link" { "New here? " a href="/portal/register" { "Register with the code from the office" } }
            }
        }
    };
    document("Sign in", None, None, main)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    #[serde(rename = "as")]
    kind: Option<String>,
}

/// The login form value of this browser, if it has a well-formed one.
pub(crate) fn login_value(headers: &HeaderMap) -> Option<String> {
    cookie(headers, LOGIN_COOKIE)
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `GET /portal/login`: the form, and the login cookie it is checked against.
pub(crate) async fn form(
    headers: HeaderMap,
    uri: Uri,
    query: Result<Query<LoginQuery>, QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let existing = login_value(&headers);
    let value = existing.clone().unwrap_or_else(new_login_value);
    let view = LoginView {
        kind: Kind::of(query.kind.as_deref()),
        csrf: &value,
        next: safe_next(query.next.as_deref()),
        user_id: "",
        error: None,
        user_id_error: None,
        password_error: None,
    };
    let mut response = respond(StatusCode::OK, login_page(&view));
    if existing.is_none() {
        response
            .headers_mut()
            .append(SET_COOKIE, login_cookie(&value, is_https(&headers, &uri)));
    }
    response
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginFields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    user_id: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: Option<String>,
}

/// `POST /portal/login`: checks the login form's token, the fields, the limits and the
/// credentials; on success the session cookie and a redirect to `next` (a portal page) or the
/// dashboard.
pub(crate) async fn submit(
    State(state): State<AppState>,
    Client(address): Client,
    headers: HeaderMap,
    uri: Uri,
    body: Bytes,
) -> Response {
    let secure = is_https(&headers, &uri);
    let fields = parse::<LoginFields>(&body).unwrap_or_default();
    let Some(expected) = login_value(&headers) else {
        return pages::bad_form(None);
    };
    if !constant_time_eq(expected.as_bytes(), fields.csrf.trim().as_bytes()) {
        return pages::bad_form(None);
    }
    let kind = Kind::of(fields.kind.as_deref());
    let user_id = fields.user_id.trim();
    let mut view = LoginView {
        kind,
        csrf: &expected,
        next: safe_next(fields.next.as_deref()),
        user_id,
        error: None,
        user_id_error: user_id.is_empty().then(|| kind.id_missing()),
        password_error: fields
            .password
            .trim()
            .is_empty()
            .then_some("Enter your password."),
    };
    if view.user_id_error.is_some() || view.password_error.is_some() {
        return respond(StatusCode::UNPROCESSABLE_ENTITY, login_page(&view));
    }
    let outcome = log_in(&state, kind.login(), user_id, &fields.password, address).await;
    let issued = match outcome {
        Err(error) => return pages::failure(error),
        Ok(LoginOutcome::SignedIn(signed)) => signed.issued,
        Ok(LoginOutcome::UnknownAccount | LoginOutcome::WrongPassword) => {
            view.error = Some(NO_MATCH.into());
            return respond(StatusCode::UNAUTHORIZED, login_page(&view));
        }
        Ok(LoginOutcome::Disabled) => {
            view.error = Some("This account is disabled. Ask the office to enable it.".into());
            return respond(StatusCode::UNAUTHORIZED, login_page(&view));
        }
        Ok(LoginOutcome::TooManyAttempts { retry_after_s }) => {
            view.error = Some(format!(
                "Too many sign-in attempts. Wait {retry_after_s} seconds and try again."
            ));
            let mut response = respond(StatusCode::TOO_MANY_REQUESTS, login_page(&view));
            if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                response.headers_mut().insert(RETRY_AFTER, value);
            }
            return response;
        }
    };
    let next = view.next.unwrap_or_else(|| "/portal/".to_string());
    let mut response = pages::see_other(
        &next,
        Some(session_cookie(
            &issued.token,
            issued.lifetime.as_secs(),
            secure,
        )),
    );
    response
        .headers_mut()
        .append(SET_COOKIE, clear_login_cookie(secure));
    response
}

/// `POST /portal/logout`: revokes the session's token (as `/api/auth/logout` does), clears the
/// cookie and goes back to the login page.
pub(crate) async fn logout(State(state): State<AppState>, form: CheckedForm<NoFields>) -> Response {
    let CheckedForm {
        session,
        fields: NoFields {},
    } = form;
    if let Err(error) = log_out(&state, &session.user).await {
        return pages::failure(error);
    }
    pages::see_other("/portal/login", Some(clear_session_cookie(session.secure)))
}
