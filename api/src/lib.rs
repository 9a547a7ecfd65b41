//! ccare's HTTP surface (axum): the legacy-compatible JSON API, auth, and the portal's
//! server-rendered pages (`portal`).
//!
//! Invariant: handlers read projections only; they never reach the ACDB. Writes go out as
//! commands through the ports of `domain::command`, and verified WhatsApp deliveries into the
//! inbox of `domain::inbox`; the binary wires the ports to the adapters.
#![forbid(unsafe_code)]

mod answers;
pub mod auth;
mod body;
mod error;
mod export;
mod openapi;
mod portal;
mod routes;
mod xlsx;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::{routing::get, Json, Router};
use projections::customers::Customer;
use projections::ReadModels;
use serde::Serialize;
use serde_json::{json, Value};

use domain::command::{
    AcdbWrites, ChainVerifier, Committed, TariffCommands, TicketCommands, UserCommands,
};
use domain::inbox::WebhookInbox;

pub use auth::limiter::LoginLimiter;
pub use auth::tokens::{SecretTooShort, TokenKeys, MIN_SECRET_BYTES};
pub use error::{ApiError, ApiResult};

pub use routes::admin::REGISTRATION_CODE_DAYS;

/// How long a command's answer waits for the read models to show its change.
pub(crate) const VISIBLE_WITHIN: Duration = Duration::from_secs(10);

/// The write side and the audit tools, as the API reaches them (the binary wires the adapters).
#[derive(Clone)]
pub struct Ports {
    pub users: Arc<dyn UserCommands>,
    pub writes: Arc<dyn AcdbWrites>,
    pub tariffs: Arc<dyn TariffCommands>,
    /// Tickets: staff's comments and status changes.
    pub tickets: Arc<dyn TicketCommands>,
    pub chain: Arc<dyn ChainVerifier>,
    /// The WhatsApp Cloud API webhook; `None` when WhatsApp is not configured, and its routes
    /// answer 404.
    pub whatsapp: Option<WhatsAppWebhook>,
}

/// The WhatsApp Cloud API webhook: the secrets Meta's calls are checked with, and the inbox
/// verified deliveries are stored in before Meta is answered.
#[derive(Clone)]
pub struct WhatsAppWebhook {
    /// Echoed back in Meta's verify handshake (`hub.verify_token`); not empty.
    pub verify_token: String,
    /// The Meta app secret, the HMAC key of every delivery's `X-Hub-Signature-256`; not empty.
    pub app_secret: String,
    pub inbox: Arc<dyn WebhookInbox>,
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub read_models: ReadModels,
    pub users: Arc<dyn UserCommands>,
    pub writes: Arc<dyn AcdbWrites>,
    pub tariffs: Arc<dyn TariffCommands>,
    pub tickets: Arc<dyn TicketCommands>,
    pub chain: Arc<dyn ChainVerifier>,
    pub whatsapp: Option<WhatsAppWebhook>,
    pub tokens: Arc<TokenKeys>,
    pub limiter: Arc<LoginLimiter>,
    answers: Arc<answers::AnswerCache>,
}

impl AppState {
    pub fn new(read_models: ReadModels, ports: Ports, tokens: TokenKeys) -> Self {
        AppState {
            read_models,
            users: ports.users,
            writes: ports.writes,
            tariffs: ports.tariffs,
            tickets: ports.tickets,
            chain: ports.chain,
            whatsapp: ports.whatsapp,
            tokens: Arc::new(tokens),
            limiter: Arc::new(LoginLimiter::new()),
            answers: Arc::default(),
        }
    }

    /// Waits until the tariff read model (and the audit) show `committed`.
    pub(crate) async fn visible_tariffs(&self, committed: Committed) -> ApiResult<()> {
        if let Some(position) = committed.position {
            self.read_models
                .wait_until_applied(projections::tariffs::NAME, position, VISIBLE_WITHIN)
                .await?;
            self.visible_mutation(Some(position)).await?;
        }
        Ok(())
    }

    /// Waits until the `tickets` read model shows `committed`.
    pub(crate) async fn visible_tickets(&self, committed: Committed) -> ApiResult<()> {
        if let Some(position) = committed.position {
            self.read_models
                .wait_until_applied(projections::tickets::NAME, position, VISIBLE_WITHIN)
                .await?;
        }
        Ok(())
    }

    /// Waits until the mutation audit shows the change at `position`.
    pub(crate) async fn visible_mutation(&self, position: Option<i64>) -> ApiResult<()> {
        if let Some(position) = position {
            self.read_models
                .wait_until_applied(projections::mutations::NAME, position, VISIBLE_WITHIN)
                .await?;
        }
        Ok(())
    }

    /// Waits until the `users` read model and the audit show `committed` (read your writes: once a command's
    /// answer is sent, the next request sees its effect — a logout or a role change included).
    pub(crate) async fn visible(&self, committed: Committed) -> ApiResult<()> {
        if let Some(position) = committed.position {
            self.read_models
                .wait_until_applied(projections::users::NAME, position, VISIBLE_WITHIN)
                .await?;
            self.visible_mutation(Some(position)).await?;
        }
        Ok(())
    }
}

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

/// The OpenAPI document of every endpoint.
async fn openapi_json() -> Json<&'static serde_json::Value> {
    static DOCUMENT: std::sync::LazyLock<serde_json::Value> =
        std::sync::LazyLock::new(openapi::document);
    Json(&DOCUMENT)
}

async fn health(State(state): State<AppState>) -> Json<HealthBody> {
    let health = state.read_models.health().await;
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

/// The normalised customer object of the legacy API (`_normalize_customer`).
pub(crate) fn customer_json(customer: &Customer) -> Value {
    let cell = |column: &str| customer.source_row.get(column).to_plain_json();
    json!({
        "customer_id": customer.customer_id.to_string(),
        "first_name": customer.first_name,
        "middle_name": customer.middle_name,
        "last_name": customer.last_name,
        "phone": cell("PHONE"),
        "cell_phone_1": cell("CELL PHONE 1"),
        "cell_phone_2": cell("CELL PHONE 2"),
        "email": cell("EMAIL"),
        "plot_number": customer.plot_number,
        "street_address": cell("STREET ADDRESS"),
        "city": customer.city,
        "district": customer.district,
        "concession": customer.concession,
        "date_connected": customer.date_connected.map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()),
        "date_terminated": customer.date_terminated.map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string()),
    })
}

/// The HTTP application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/api/health", get(health))
        .route("/api/openapi.json", get(openapi_json))
        .merge(routes::auth::routes())
        .merge(routes::admin::routes())
        .merge(routes::tables::routes())
        .merge(routes::browse::routes())
        .merge(routes::mutations::routes())
        .merge(routes::tariff::routes())
        .merge(routes::audit::routes())
        .merge(routes::customers::routes())
        .merge(
            routes::om_report::routes().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                answers::cached,
            )),
        )
        .merge(routes::dashboard::routes())
        .merge(routes::read_models::routes())
        .merge(routes::tickets::routes())
        .merge(routes::whatsapp::routes())
        .merge(portal::routes())
        .layer(DefaultBodyLimit::max(body::MAX_BODY_BYTES))
        .with_state(state)
}

/// Serves the application on `listener` until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
