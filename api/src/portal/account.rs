//! `/portal/account`: an employee's own profile, and `/portal/account/password`: anyone's own
//! password change (employees and customers), through the very `set_own_password` of
//! `/api/auth/change-password` (the strength rule, the check of the current password, the
//! audited command).
//!
//! A password change ends every session issued before it, this one included; so that the user
//! who changed it stays signed in, the answer carries a new session cookie with a token issued
//! after the change, as a fresh sign-in would.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use maud::{html, Markup};
use serde::Deserialize;

use crate::error::ApiError;
use crate::routes::auth::{set_own_password, ChangePassword};
use crate::AppState;

use super::forms::CheckedForm;
use super::pages::{self, document, respond, see_other, Nav};
use super::session::{session_cookie, Session};
use super::tables::failure_page;

/// Where a user's own profile is: the customer's account page, or the employee's profile.
pub(super) fn profile_href(session: &Session) -> &'static str {
    if session.user.employee().is_ok() {
        "/portal/account"
    } else {
        "/portal/my/profile"
    }
}

/// The nav entry of a user's own pages.
fn own_nav(session: &Session) -> Option<Nav> {
    session.user.customer().is_ok().then_some(Nav::MyAccount)
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ChangedQuery {
    password: Option<String>,
}

/// The notice of a profile page the password change redirected to.
pub(super) fn password_notice(changed: Option<&str>) -> Markup {
    html! {
        @if changed == Some("changed") {
            p class="notice" role="status" id="notice" { "Your password is changed. Your other sessions have ended." }
        }
    }
}

fn yes_no(allowed: bool) -> &'static str {
    if allowed {
        "Yes"
    } else {
        "No"
    }
}

/// `GET /portal/account`: who the employee is, with their role's permissions.
pub(crate) async fn profile(session: Session, Query(query): Query<ChangedQuery>) -> Response {
    let Ok(role) = session.user.employee() else {
        return see_other("/portal/my/profile", None);
    };
    let user = &session.user;
    let permissions = role.permissions();
    let main = html! {
        h1 { "My profile" }
        (password_notice(query.password.as_deref()))
        dl class="facts" id="profile" {
            div { dt { "Employee ID" } dd { (user.user_id) } }
            div { dt { "Name" } dd { (user.name) } }
            div { dt { "E-mail" } dd { (user.email.as_deref().unwrap_or("–")) } }
            div { dt { "Role" } dd { (pages::role_label(Some(role))) } }
            div { dt { "May change customers" } dd { (yes_no(permissions.write_customers)) } }
            div { dt { "May change transactions" } dd { (yes_no(permissions.write_transactions)) } }
            div { dt { "May manage roles" } dd { (yes_no(permissions.manage_roles)) } }
        }
        p { "Your name, e-mail and role are kept by a superadmin: ask one to change them." }
        p { a href="/portal/account/password" { "Change your password" } }
    };
    respond(
        StatusCode::OK,
        document("My profile", Some(&session), None, main),
    )
}

/// What a refused password form shows beside its fields (passwords are never shown back).
#[derive(Debug, Default)]
struct PasswordErrors {
    current: Option<String>,
    new: Option<String>,
    again: Option<String>,
}

fn password_field(
    id: &str,
    label: &str,
    hint: Option<&str>,
    autocomplete: &str,
    error: Option<&str>,
) -> Markup {
    let hint_id = format!("{id}-hint");
    let error_id = format!("{id}-error");
    let described: Vec<&str> = [
        hint.map(|_| hint_id.as_str()),
        error.map(|_| error_id.as_str()),
    ]
    .into_iter()
    .flatten()
    .collect();
    let described = (!described.is_empty()).then(|| described.join(" "));
    html! {
        div class="field" {
            label for=(id) { (label) }
            @if let Some(hint) = hint { p class="muted" id=(hint_id) { (hint) } }
            @if let Some(error) = error { p class="error" id=(error_id) { (error) } }
            input type="password" id=(id) name=(id) autocomplete=(autocomplete) required
                maxlength="256" aria-invalid=[error.map(|_| "true")] aria-describedby=[described];
        }
    }
}

fn password_page(session: &Session, errors: &PasswordErrors) -> Markup {
    let min = domain::auth::MIN_PASSWORD_CHARS;
    let hint = format!(
        "At least {min} characters. A few unrelated words are easy to remember and hard to guess."
    );
    let main = html! {
        div class="stack" {
            p { a href=(profile_href(session)) { "← My profile" } }
            h1 { "Change your password" }
            form method="post" action="/portal/account/password" {
                input type="hidden" name="csrf" value=(session.csrf);
                (password_field("current_password", "Current password", None, "current-password", errors.current.as_deref()))
                (password_field("new_password", "New password", Some(&hint), "new-password", errors.new.as_deref()))
                (password_field("new_password_again", "New password again", None, "new-password", errors.again.as_deref()))
                button type="submit" class="primary" { "Change the password" }
            }
        }
    };
    document(
        "Change your password",
        Some(session),
        own_nav(session),
        main,
    )
}

/// `GET /portal/account/password`: the form.
pub(crate) async fn password_form(session: Session) -> Response {
    respond(
        StatusCode::OK,
        password_page(&session, &PasswordErrors::default()),
    )
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct PasswordFields {
    current_password: String,
    new_password: String,
    new_password_again: String,
}

/// `POST /portal/account/password`: changes the password, then 303 to the profile with a new
/// session cookie.
pub(crate) async fn change_password(
    State(state): State<AppState>,
    form: CheckedForm<PasswordFields>,
) -> Response {
    let CheckedForm { session, fields } = form;
    let refuse = |errors: PasswordErrors| {
        respond(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_page(&session, &errors),
        )
    };
    if fields.current_password.is_empty() {
        return refuse(PasswordErrors {
            current: Some("Enter your current password.".into()),
            ..PasswordErrors::default()
        });
    }
    if fields.new_password != fields.new_password_again {
        return refuse(PasswordErrors {
            again: Some("This is not the same as the new password: type it again.".into()),
            ..PasswordErrors::default()
        });
    }
    let changed = set_own_password(
        &state,
        &session.user,
        ChangePassword {
            old_password: fields.current_password,
            new_password: fields.new_password,
        },
    )
    .await;
    match changed {
        Ok(_) => {}
        Err(ApiError::Invalid { problem, .. }) => {
            return refuse(PasswordErrors {
                new: Some(format!("The new password {problem}.")),
                ..PasswordErrors::default()
            })
        }
        Err(ApiError::Unauthorized(_)) => {
            return refuse(PasswordErrors {
                current: Some("That is not your current password.".into()),
                ..PasswordErrors::default()
            })
        }
        Err(error) => return failure_page(&session, error, ("/portal/", "Back to the portal")),
    }
    let user = &session.user;
    let role = match user.employee() {
        Ok(role) => role.as_str(),
        Err(_) => "customer",
    };
    let issued = match state.tokens.issue(
        user.user_type,
        &user.user_id,
        role,
        &user.name,
        user.email.as_deref(),
        Utc::now(),
    ) {
        Ok(issued) => issued,
        Err(error) => {
            return failure_page(
                &session,
                ApiError::internal(error),
                ("/portal/login", "Sign in"),
            )
        }
    };
    see_other(
        &format!("{}?password=changed", profile_href(&session)),
        Some(session_cookie(
            &issued.token,
            issued.lifetime.as_secs(),
            session.secure,
        )),
    )
}
