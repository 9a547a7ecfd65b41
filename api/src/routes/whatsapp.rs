//! `/webhooks/whatsapp`, the WhatsApp Cloud API webhook: Meta's verify handshake (GET) and its
//! deliveries (POST), which are verified and stored in the inbox before Meta is answered 200.
//! Processing them (triage, tickets, replies) is the bridge's, from the inbox.
//!
//! Meta calls both routes, so neither takes a token: the handshake is checked against the
//! configured verify token, and every delivery against its `X-Hub-Signature-256`, computed over
//! the raw body before anything reads it. Rejections are logged with their status and length,
//! never with what was sent.

use std::collections::HashSet;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bridge::cloud_api::{self, HandshakeError, InboundItem, ParseError, SignatureError};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};

use domain::inbox::NewDelivery;

use crate::error::{ApiError, ApiResult};
use crate::{AppState, WhatsAppWebhook};

pub(crate) fn routes() -> Router<AppState> {
    // No token on either method: Meta calls them (see the module documentation).
    Router::new()
        .route("/webhooks/whatsapp", get(handshake).post(deliver))
        // Meta's batched deliveries may exceed the API's limit for its own request bodies.
        .layer(DefaultBodyLimit::max(cloud_api::MAX_BODY_BYTES))
}

/// The webhook settings, or 404 when WhatsApp is not configured.
fn configured(state: &AppState) -> ApiResult<&WhatsAppWebhook> {
    state
        .whatsapp
        .as_ref()
        .ok_or_else(|| ApiError::NotFound("the WhatsApp bridge is not configured".into()))
}

#[derive(Debug, Deserialize)]
pub(crate) struct HandshakeQuery {
    #[serde(rename = "hub.mode")]
    mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    challenge: Option<String>,
}

/// Meta's verify handshake: the challenge echoed as plain text when the token matches, else 403.
async fn handshake(
    State(state): State<AppState>,
    query: Result<Query<HandshakeQuery>, QueryRejection>,
) -> ApiResult<Response> {
    let webhook = configured(&state)?;
    let verified = match query {
        Ok(Query(query)) => cloud_api::verify_handshake(
            &webhook.verify_token,
            query.mode.as_deref(),
            query.verify_token.as_deref(),
            query.challenge.as_deref(),
        )
        .map_err(|e| handshake_problem(&e)),
        Err(_) => Err("the query string cannot be read"),
    };
    match verified {
        // The challenge is the caller's text: served as text/plain, never to be sniffed as HTML.
        Ok(challenge) => {
            Ok(([(header::X_CONTENT_TYPE_OPTIONS, "nosniff")], challenge).into_response())
        }
        Err(problem) => {
            tracing::warn!(
                status = 403,
                reason = problem,
                "WhatsApp verify handshake refused"
            );
            Err(ApiError::Forbidden(problem.into()))
        }
    }
}

/// Why a handshake was refused, without repeating what the caller sent.
fn handshake_problem(error: &HandshakeError) -> &'static str {
    match error {
        HandshakeError::NotConfigured => "no verify token is configured",
        HandshakeError::WrongMode(_) => "hub.mode must be subscribe",
        HandshakeError::MissingToken => "hub.verify_token is missing",
        HandshakeError::TokenMismatch => "hub.verify_token does not match",
        HandshakeError::MissingChallenge => "hub.challenge is missing",
    }
}

/// A delivery: size, signature and shape checked in that order, then stored, then 200.
async fn deliver(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<Value>> {
    let received_at = Utc::now();
    let webhook = configured(&state)?;
    let body = body.map_err(unreadable)?;
    let length = body.len();

    // A header that is not even text is as malformed as one without `sha256=`.
    let signature = headers
        .get(cloud_api::SIGNATURE_HEADER)
        .map(|value| value.to_str().unwrap_or_default());
    cloud_api::verify_signature(webhook.app_secret.as_bytes(), &body, signature)
        .map_err(|e| unsigned(&e, length))?;

    let delivery = cloud_api::parse_delivery(&body).map_err(|e| unparsable(&e, length))?;
    let message_ids = message_ids(&delivery);
    let messages = message_ids.len();
    let stored = webhook
        .inbox
        .store(NewDelivery {
            body: body.to_vec(),
            received_at,
            message_ids,
        })
        .await
        .map_err(|e| {
            tracing::error!(status = 503, bytes = length, error = %e, "WhatsApp delivery not stored; Meta will retry it");
            ApiError::Unavailable("the delivery cannot be stored now; it is accepted when Meta retries it".into())
        })?;
    tracing::info!(
        delivery = stored.id,
        bytes = length,
        messages,
        redelivery = stored.redelivery,
        "WhatsApp delivery stored"
    );
    Ok(Json(json!({
        "status": "stored",
        "delivery": stored.id,
        "redelivery": stored.redelivery,
    })))
}

/// The wamids of the delivery's inbound messages, each once, in order. Status updates are left
/// out: their id is our message's, shared by each of its updates.
fn message_ids(delivery: &cloud_api::Delivery) -> Vec<String> {
    let mut seen = HashSet::new();
    cloud_api::inbound_items(delivery)
        .into_iter()
        .filter_map(|item| match item {
            InboundItem::Message(message) => Some(message.message_id),
            InboundItem::Status(_) => None,
        })
        .filter(|id| seen.insert(id.clone()))
        .collect()
}

fn unreadable(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    tracing::warn!(
        status = status.as_u16(),
        "WhatsApp delivery refused: its body could not be read"
    );
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::BadRequest("the body could not be read".into())
    }
}

fn too_large() -> ApiError {
    ApiError::Invalid {
        status: StatusCode::PAYLOAD_TOO_LARGE,
        field: "body".into(),
        problem: format!("is larger than {} bytes", cloud_api::MAX_BODY_BYTES),
    }
}

fn unsigned(error: &SignatureError, length: usize) -> ApiError {
    if let SignatureError::NoSecret = error {
        // Configuration refuses an empty secret; reaching this is a wiring bug.
        return ApiError::internal(error);
    }
    // The reason is logged (it names no content); the caller learns only that it failed, as a
    // forger should.
    tracing::warn!(status = 401, bytes = length, reason = %error, "WhatsApp delivery refused");
    ApiError::Unauthorized(format!(
        "the delivery is not signed by Meta: {} is missing or does not match the body",
        cloud_api::SIGNATURE_HEADER
    ))
}

/// 400 naming what is wrong with a signed body, by its position: serde's own message may quote
/// the body's values, which must not be echoed.
fn unparsable(error: &ParseError, length: usize) -> ApiError {
    let problem = match error {
        ParseError::TooLarge { .. } => return too_large(),
        ParseError::Json(e) => {
            let what = match e.classify() {
                serde_json::error::Category::Syntax => "is not valid JSON",
                serde_json::error::Category::Eof => "ends before its JSON does",
                serde_json::error::Category::Data => {
                    "is JSON, but not in the shape of a WhatsApp delivery"
                }
                serde_json::error::Category::Io => "could not be read",
            };
            format!("{what} (line {}, column {})", e.line(), e.column())
        }
    };
    tracing::warn!(status = 400, bytes = length, problem = %problem, "WhatsApp delivery refused");
    ApiError::Invalid {
        status: StatusCode::BAD_REQUEST,
        field: "body".into(),
        problem,
    }
}
