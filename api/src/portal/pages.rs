//! The portal's layout (header with the user, nav, main landmark, footer), its error pages, and
//! how figures are written.

use axum::http::header::{LOCATION, SET_COOKIE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use rust_decimal::{Decimal, RoundingStrategy};

use domain::auth::Role;

use crate::error::ApiError;

use super::session::Session;

/// The pages of the nav: (id, address, label). Only pages that exist are listed.
const NAV: &[(Nav, &str, &str)] = &[
    (Nav::Dashboard, "/portal/", "Dashboard"),
    (Nav::Report, "/portal/report", "O&M report"),
    (Nav::Financial, "/portal/financial", "Financial"),
    (Nav::Tickets, "/portal/tickets", "Tickets"),
    (Nav::Customers, "/portal/customers", "Customers"),
    (Nav::CustomerData, "/portal/customer-data", "Customer data"),
    (Nav::Tables, "/portal/tables", "Tables"),
    (Nav::Tariffs, "/portal/tariffs", "Tariffs"),
    (Nav::Mutations, "/portal/mutations", "Mutations"),
    (Nav::Admin, "/portal/admin", "Admin"),
];

/// Which nav entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Dashboard,
    Report,
    Financial,
    Tickets,
    Customers,
    CustomerData,
    Tariffs,
    Mutations,
    Tables,
    /// Superadmins only.
    Admin,
    /// The customer nav's.
    MyDashboard,
    MyAccount,
}

/// The customer nav: (id, address, label).
const CUSTOMER_NAV: &[(Nav, &str, &str)] = &[
    (Nav::MyDashboard, "/portal/my", "Dashboard"),
    (Nav::MyAccount, "/portal/my/profile", "My account"),
];

impl Nav {
    /// Whether staff of `role` get this entry in their nav.
    fn shown_to(self, role: Option<Role>) -> bool {
        self != Nav::Admin || role == Some(Role::Superadmin)
    }
}

/// A role as staff read it.
pub(crate) fn role_label(role: Option<Role>) -> &'static str {
    match role {
        Some(Role::Superadmin) => "Superadmin",
        Some(Role::OnmTeam) => "O&M team",
        Some(Role::FinanceTeam) => "Finance team",
        Some(Role::Generic) => "Staff (read only)",
        None => "Customer",
    }
}

/// A whole page: `main` inside the layout, for `session`'s user (or nobody, on the login page).
pub(crate) fn document(
    title: &str,
    session: Option<&Session>,
    current: Option<Nav>,
    main: Markup,
) -> Markup {
    let staff = session.is_some_and(|s| s.user.employee().is_ok());
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · ccare Customer Care" }
                link rel="stylesheet" href=(super::assets::CSS_PATH);
                link rel="icon" href=(super::assets::ICON_PATH) type="image/svg+xml";
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="site" {
                    a class="brand" href="/portal/" { "ccare " span { "Customer Care" } }
                    @if let Some(session) = session {
                        div class="who" {
                            a class="name" href=(if staff { "/portal/account" } else { "/portal/my/profile" }) { (session.user.name) }
                            " "
                            span class="role" { (role_label(session.user.role)) }
                            form method="post" action="/portal/logout" class="inline" {
                                input type="hidden" name="csrf" value=(session.csrf);
                                button type="submit" class="link" { "Sign out" }
                            }
                        }
                    }
                }
                @if staff {
                    nav class="site" aria-label="Portal" {
                        ul {
                            @for (id, href, label) in NAV.iter().filter(|(id, ..)| id.shown_to(session.and_then(|s| s.user.role))) {
                                li {
                                    @if current == Some(*id) {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                @if session.is_some_and(|s| s.user.customer().is_ok()) {
                    nav class="site" aria-label="Customer" {
                        ul {
                            @for (id, href, label) in CUSTOMER_NAV {
                                li {
                                    @if current == Some(*id) {
                                        a href=(href) aria-current="page" { (label) }
                                    } @else {
                                        a href=(href) { (label) }
                                    }
                                }
                            }
                        }
                    }
                }
                main id="main" tabindex="-1" { (main) }
                footer class="site" {
                    p { "ccare Customer Care · 1PWR mini-grids" }
                }
            }
        }
    }
}

/// A page answer with `status`.
pub(crate) fn respond(status: StatusCode, page: Markup) -> Response {
    (status, page).into_response()
}

/// 303 to `location`, setting `cookie` if given.
pub(crate) fn see_other(location: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    if let Some(cookie) = cookie {
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// An error page: a heading, a message and a way on.
pub(crate) fn error_page(
    status: StatusCode,
    session: Option<&Session>,
    heading: &str,
    message: &str,
    link: (&str, &str),
) -> Response {
    let main = html! {
        h1 { (heading) }
        p { (message) }
        p { a href=(link.0) { (link.1) } }
    };
    respond(status, document(heading, session, None, main))
}

/// The page of a request that could not be answered (the API's error, as a page).
pub(crate) fn failure(error: ApiError) -> Response {
    let message = error.to_string();
    // The API's status for it (and its log line for 5xx).
    let status = error.into_response().status();
    let (heading, message) = if status.is_server_error() {
        (
            "Not available right now",
            "The figures cannot be read at the moment. Try again in a minute.".to_string(),
        )
    } else {
        ("Something went wrong", message)
    };
    error_page(
        status,
        None,
        heading,
        &message,
        ("/portal/", "Back to the portal"),
    )
}

/// The 403 page of a form whose CSRF token is missing or wrong.
pub(crate) fn bad_form(session: Option<&Session>) -> Response {
    error_page(
        StatusCode::FORBIDDEN,
        session,
        "This form has expired",
        "The form was sent without its security token, or from another site. Nothing was changed. Open the page again and resend it.",
        ("/portal/", "Back to the portal"),
    )
}

/// `value` rounded half to even to `dp` decimals, with thousands separated by commas.
pub(crate) fn decimal(value: Decimal, dp: u32) -> String {
    let mut rounded = value.round_dp_with_strategy(dp, RoundingStrategy::MidpointNearestEven);
    if rounded.is_zero() {
        rounded = Decimal::ZERO;
    }
    group(&format!("{rounded:.prec$}", prec = dp as usize))
}

/// `n` with thousands separated by commas.
pub(crate) fn count(n: i64) -> String {
    group(&n.to_string())
}

fn group(text: &str) -> String {
    let (sign, unsigned) = match text.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", text),
    };
    let (whole, fraction) = match unsigned.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (unsigned, None),
    };
    let mut grouped = String::with_capacity(text.len() + whole.len() / 3);
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(c);
    }
    match fraction {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

/// The address of page `page` of the list at `path`, keeping its non-empty parameters.
pub(crate) fn list_href(path: &str, page: i64, parameters: &[(&str, &String)]) -> String {
    let mut href = format!("{path}?page={page}");
    for (name, value) in parameters {
        if !value.is_empty() {
            href.push_str(&format!(
                "&{name}={}",
                super::session::encode_query_value(value)
            ));
        }
    }
    href
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_rounded_half_to_even_and_grouped() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(decimal(d("0.125"), 2), "0.12");
        assert_eq!(decimal(d("1234567.5"), 0), "1,234,568");
        assert_eq!(decimal(d("-9875.5"), 2), "-9,875.50");
        assert_eq!(decimal(d("-0.001"), 2), "0.00");
        assert_eq!(decimal(d("0"), 1), "0.0");
        assert_eq!(count(1000), "1,000");
        assert_eq!(count(999), "999");
        assert_eq!(count(-1234), "-1,234");
    }
}
