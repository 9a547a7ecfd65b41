//! ccare's HTTP surface (axum): the legacy-compatible JSON API, and later auth and the portal.
//!
//! Invariant: handlers read projections only; they never reach the ACDB.
#![forbid(unsafe_code)]

use axum::{routing::get, Json, Router};
use serde::Serialize;

/// The body of `GET /health`: always 200 while the process serves requests.
#[derive(Debug, Serialize)]
pub struct HealthBody {
    pub status: &'static str,
    pub timestamp: String,
    pub version: &'static str,
}

async fn health() -> Json<HealthBody> {
    Json(HealthBody {
        status: "ok",
        timestamp: chrono::Utc::now().to_rfc3339(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// The HTTP application.
pub fn router() -> Router {
    Router::new().route("/health", get(health)).route("/api/health", get(health))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    #[tokio::test]
    async fn health_answers_ok_on_both_legacy_paths() {
        for path in ["/health", "/api/health"] {
            let response = router()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
    }
}
