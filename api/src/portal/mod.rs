//! The portal (design.md §9): server-rendered HTML from the read models, working without
//! JavaScript, for staff and for customers' self-service.
//!
//! Sign-in and sign-out with a session cookie and CSRF-checked forms ([`session`] documents
//! the design), the layout ([`pages`]), the staff dashboard, the O&M report and the financial
//! pages with their SVG charts, PDFs and CSVs ([`report`], [`financial`], [`charts`],
//! [`pdf`]), tickets, customers (search, paged list, detail, edit, delete, the new-customer
//! wizard, assign meter: [`customers`], [`customer_forms`]) and a customer's data with its
//! transactions ([`customer_data`]), the tables browser and exports ([`tables`]), tariffs,
//! the mutation audit with diff, revert, as-of and the hash chain ([`mutations`]), employees
//! and roles ([`admin`]), a user's profile and password ([`account`]), and customers'
//! registration, dashboard and profile ([`self_service`]). Every page is rendered from
//! `projections::ReadModels`, never from the ACDB; its role checks are the JSON API's
//! (`CurrentUser`), run on the session cookie's token.

mod account;
mod admin;
mod assets;
pub(crate) mod charts;
mod customer_data;
mod customer_forms;
mod customers;
mod dashboard;
mod financial;
mod forms;
mod login;
mod mutations;
mod pages;
mod pdf;
mod report;
mod self_service;
mod session;
mod tables;
mod tariffs;
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
        .route("/portal/", get(self_service::home))
        .route("/portal/my", get(self_service::dashboard))
        .route("/portal/my/profile", get(self_service::profile))
        .route(
            "/portal/register",
            get(self_service::register_form).post(self_service::register),
        )
        .route("/portal/account", get(account::profile))
        .route(
            "/portal/account/password",
            get(account::password_form).post(account::change_password),
        )
        .route("/portal/tables", get(tables::list))
        .route("/portal/tables/{table}", get(tables::rows))
        .route("/portal/tables/{table}/records/{id}", get(tables::record))
        .route("/portal/schema", get(tables::schema))
        .route("/portal/export", get(tables::export))
        .route("/portal/admin", get(admin::page))
        .route("/portal/admin/users", post(admin::add_employee))
        .route("/portal/admin/roles", post(admin::assign_role))
        .route("/portal/admin/emails", post(admin::set_email))
        .route("/portal/admin/users/{id}/disable", post(admin::disable))
        .route("/portal/admin/users/{id}/enable", post(admin::enable))
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
        .route(
            "/portal/customers/new",
            get(customer_forms::wizard_start).post(customer_forms::wizard_step),
        )
        .route(
            "/portal/customers/{id}/edit",
            get(customer_forms::edit_form).post(customer_forms::save),
        )
        .route(
            "/portal/customers/{id}/delete",
            get(customer_forms::delete_confirm).post(customer_forms::delete),
        )
        .route(
            "/portal/customers/{id}/assign-meter",
            get(customer_forms::assign_form).post(customer_forms::assign),
        )
        .route("/portal/customer-data", get(customer_data::lookup))
        .route("/portal/customers/{id}/data", get(customer_data::page))
        .route(
            "/portal/customers/{id}/data/transactions",
            post(customer_data::add),
        )
        .route(
            "/portal/customers/{id}/data/transactions/{txn}/edit",
            get(customer_data::edit_form).post(customer_data::save),
        )
        .route(
            "/portal/customers/{id}/data/transactions/{txn}/delete",
            get(customer_data::delete_confirm).post(customer_data::delete),
        )
        .route("/portal/mutations", get(mutations::list))
        .route("/portal/mutations/{id}", get(mutations::detail))
        .route("/portal/mutations/{id}/revert", post(mutations::revert))
        .route("/portal/audit/chain", get(mutations::chain))
        .route(
            "/portal/audit/records/{table}/{id}",
            get(mutations::record_as_of),
        )
        .route("/portal/tariffs", get(tariffs::page))
        .route("/portal/tariffs/global", post(tariffs::set_global))
        .route("/portal/tariffs/sites", post(tariffs::set_site))
        .route("/portal/tariffs/customers", post(tariffs::set_customer))
        .route(
            "/portal/tariffs/sites/{code}/remove",
            post(tariffs::remove_site),
        )
        .route(
            "/portal/tariffs/customers/{id}/remove",
            post(tariffs::remove_customer),
        )
        .route("/portal/report", get(report::page))
        .route("/portal/report.pdf", get(report::whole_pdf))
        .route("/portal/report/figures/{file}", get(report::figure))
        .route("/portal/financial", get(financial::page))
        .route("/portal/financial.pdf", get(financial::whole_pdf))
        .route("/portal/financial/figures/{file}", get(financial::figure))
        .route(assets::CSS_PATH, get(assets::css))
        .route(assets::ICON_PATH, get(assets::icon))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent(assets::ICON_PATH) }),
        )
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
