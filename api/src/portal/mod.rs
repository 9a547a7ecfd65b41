//! The portal (design.md §9): server-rendered HTML from the read models, working without
//! JavaScript, for staff (and, later, customers' self-service).
//!
//! This first increment: sign-in and sign-out with a session cookie and CSRF-checked forms
//! ([`session`] documents the design), the layout, the staff dashboard, and the tickets pages
//! ([`tickets`]: the list, one ticket, comments and status changes), and the read-only
//! customer search and customer pages ([`customers`]). Every page is rendered
//! from `projections::ReadModels`, never from the ACDB; its role checks are the JSON API's
//! (`CurrentUser`), run on the session cookie's token.

mod assets;
mod customers;
mod dashboard;
mod forms;
mod login;
mod pages;
mod session;
mod tickets;

use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::AppState;

/// What every portal page may load: its own stylesheet, nothing inline, no script; forms post
/// only here; no framing.
const CONTENT_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The portal's routes, with `/` sending browsers to it.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/portal/") }))
        .route("/portal", get(|| async { Redirect::to("/portal/") }))
        .route("/portal/", get(dashboard::page))
        .route("/portal/login", get(login::form).post(login::submit))
        .route("/portal/logout", post(login::logout))
        .route("/portal/tickets", get(tickets::list))
        .route("/portal/tickets/{number}", get(tickets::detail))
        .route("/portal/tickets/{number}/comments", post(tickets::comment))
        .route(
            "/portal/tickets/{number}/status",
            post(tickets::change_status),
        )
        .route("/portal/customers", get(customers::list))
        .route("/portal/customers/{id}", get(customers::detail))
        .route(assets::CSS_PATH, get(assets::css))
        .layer(axum::middleware::map_response(security_headers))
}

/// The portal's response headers: the content policy, and no caching of pages that show a
/// user's data (the stylesheet sets its own caching).
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_POLICY),
    );
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers
        .entry(CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}
