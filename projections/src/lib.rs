//! ccare's read models and the projector runner.
//!
//! Layout:
//! - [`ProjectorRunner`] (module `runner`): builds each [`Projection`] from the global log with a
//!   checkpoint per read model, follows new events (LISTEN/NOTIFY plus a safety poll), rebuilds a
//!   read model into a fresh generation while the old one serves, and reports status;
//! - `registry` and `log`: the runner's bookkeeping tables and its bounded reads of `event_log`;
//! - [`customers`]: the `customers` read model (customers, phones, accounts, meters) and its queries;
//! - [`users`]: the `users` read model (accounts, roles, logged-out tokens) behind every request's
//!   authorisation;
//! - [`mutations`]: the audit of every change (ACDB rows, user accounts) with before and after;
//! - [`tariffs`]: the global rate, the rate schedules and their history;
//! - [`history`]: one record's changes read from the log (as-of views for auditors);
//! - [`analytics`]: the ledgers and readings behind the O&M report, ARPU and dashboards;
//! - [`mirror`]: every captured ACDB row as it stands, for the tables browser and exports;
//! - [`tickets`] and [`conversations`]: the tickets ccare numbers and the customers' WhatsApp
//!   conversations, with the queries of the ticket pages and a customer's history;
//! - [`ReadModels`]: the queries as the api crate uses them, without SQL.
//!
//! Every read model's tables live in a generation schema `rm_<name>_<n>`; readers and analysts
//! query the views of schema `read_model` ([`READ_MODEL_SCHEMA`]), which always point at the live
//! generation.
//!
//! Invariant: projections only read the global log and write their own read-model tables;
//! they never emit commands and never touch the ACDB.
#![forbid(unsafe_code)]

pub mod analysts;
pub mod analytics;
pub mod conversations;
pub mod customers;
mod directory;
mod error;
pub mod exports;
pub mod history;
mod log;
pub mod mirror;
pub mod mutations;
mod pg;
mod projection;
mod read_models;
mod registry;
pub mod reports;
mod runner;
pub mod tariffs;
pub mod tickets;
pub mod users;

use std::sync::Arc;

pub use error::{Error, Result};
pub use projection::{qualified, quote_ident, Prepared, Projection};
pub use read_models::{Health, ReadModels, READ_MODEL_CHANNEL};
pub use registry::READ_MODEL_SCHEMA;
pub use runner::{
    ProjectionState, ProjectionStatus, ProjectorRunner, RebuildProgress, RebuildStatus,
    RunnerOptions, EVENT_LOG_CHANNEL,
};

/// Every read model ccare builds, for the runner.
pub fn all() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(customers::CustomersProjection),
        Arc::new(users::UsersProjection),
        Arc::new(mutations::MutationsProjection),
        Arc::new(tariffs::TariffsProjection),
        Arc::new(analytics::AnalyticsProjection),
        Arc::new(mirror::MirrorProjection),
        Arc::new(tickets::TicketsProjection),
        Arc::new(conversations::ConversationsProjection),
    ]
}
