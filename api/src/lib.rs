//! ccare's HTTP surface (axum): the legacy-compatible JSON API, and later auth and the portal.
//!
//! Invariant: handlers read projections only; they never reach the ACDB.
#![forbid(unsafe_code)]

use std::future::Future;

use axum::extract::State;
use axum::{routing::get, Json, Router};
use projections::ReadModels;
use serde::Serialize;

/// The body of `GET /health` and `GET /api/health`. Always HTTP 200 while the process serves,
/// like the legacy endpoint; `status` says whether the read models answer. Unlike the legacy
/// endpoint it does not reveal server paths.
#[derive(Debug, Serialize)]
pub struct HealthBody {
    /// `ok`, or `db_error` when the read models cannot be queried.
    pub status: &'static str,
    pub timestamp: String,
    pub version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_log_head: Option<i64>,
}

async fn health(State(read_models): State<ReadModels>) -> Json<HealthBody> {
    let health = read_models.health().await;
    if let Err(e) = &health {
        tracing::warn!(error = %e, "health check: read models unavailable");
    }
    let health = health.ok();
    Json(HealthBody {
        status: if health.is_some() { "ok" } else { "db_error" },
        timestamp: chrono::Utc::now().to_rfc3339(),
        version: env!("CARGO_PKG_VERSION"),
        customer_count: health.as_ref().map(|h| h.customer_count),
        event_log_head: health.as_ref().map(|h| h.event_log_head),
    })
}

/// The HTTP application.
pub fn router(read_models: ReadModels) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/health", get(health))
        .with_state(read_models)
}

/// Serves the application on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    read_models: ReadModels,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(read_models))
        .with_graceful_shutdown(shutdown)
        .await
}
