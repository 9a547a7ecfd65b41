//! Cached answers of the analytics endpoints (`/api/om-report/*`, `/api/stats/site-summary`).
//!
//! An answer depends only on the read models it is computed from, so it is computed once per
//! state of those read models (their checkpoints, as [`ReadModels::position`] knows them) and
//! then served from memory: a request costs a token check and a copy of bytes, whatever the
//! length of the history. The first request after a change computes the answer; concurrent
//! requests for the same answer wait for that one computation instead of repeating it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::OnceCell;

use projections::ReadModels;

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::AppState;

/// The read models the analytics answers are computed from.
const SOURCES: [&str; 2] = [projections::analytics::NAME, projections::customers::NAME];

/// The most answers kept (a quarter parameter can take many spellings); past it the cache
/// starts again.
const MAX_ENTRIES: usize = 512;

/// The largest answer kept in memory.
const MAX_ANSWER_BYTES: usize = 16 << 20;

type Version = [i64; SOURCES.len()];

struct Entry {
    version: Version,
    answer: Arc<OnceCell<Bytes>>,
}

#[derive(Default)]
pub(crate) struct AnswerCache {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for AnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnswerCache").finish_non_exhaustive()
    }
}

impl AnswerCache {
    /// The cell holding the answer for `key` at `version` (a new, empty one when the read
    /// models moved since).
    fn cell(&self, key: &str, version: Version) -> Arc<OnceCell<Bytes>> {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = entries.get(key) {
            if entry.version == version {
                return entry.answer.clone();
            }
        }
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        let answer = Arc::new(OnceCell::new());
        entries.insert(
            key.to_string(),
            Entry {
                version,
                answer: answer.clone(),
            },
        );
        answer
    }
}

async fn version(read_models: &ReadModels) -> Result<Version, ApiError> {
    let mut version = [0; SOURCES.len()];
    for (slot, source) in version.iter_mut().zip(SOURCES) {
        *slot = read_models.position(source).await?;
    }
    Ok(version)
}

/// Why an answer was not kept: the handler's own response goes out as it is.
struct NotCached(Response);

/// The middleware: checks the caller (an employee, as every analytics endpoint requires), then
/// answers from the cache, computing the answer with the handler when it is not there yet.
pub(crate) async fn cached(
    State(state): State<AppState>,
    user: CurrentUser,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::GET || user.employee().is_err() {
        return next.run(request).await;
    }
    let key = request
        .uri()
        .path_and_query()
        .map_or_else(|| request.uri().path().to_string(), |pq| pq.to_string());
    let version = match version(&state.read_models).await {
        Ok(version) => version,
        Err(error) => return error.into_response(),
    };
    let cell = state.answers.cell(&key, version);
    let answer = cell
        .get_or_try_init(|| async {
            let response = next.run(request).await;
            if response.status() != StatusCode::OK {
                return Err(NotCached(response));
            }
            axum::body::to_bytes(response.into_body(), MAX_ANSWER_BYTES)
                .await
                .map_err(|e| {
                    NotCached(ApiError::internal(format!("reading an answer: {e}")).into_response())
                })
        })
        .await;
    match answer {
        Ok(bytes) => {
            let mut response = Body::from(bytes.clone()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(NotCached(response)) => response,
    }
}

/// A part of a portal page that depends only on the same read models as the analytics answers
/// (the O&M report's figures, not the user's name or form token): computed by `compute` once
/// per state of those read models and `key`, then served from memory, as the JSON answers are.
pub(crate) async fn cached_html<F, Fut>(
    state: &AppState,
    key: &str,
    compute: F,
) -> Result<String, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<String, ApiError>>,
{
    let version = version(&state.read_models).await?;
    let cell = state.answers.cell(&format!("portal {key}"), version);
    let html = cell
        .get_or_try_init(|| async { compute().await.map(Bytes::from) })
        .await?;
    // Only this module puts bytes in a portal cell, and always from a String.
    Ok(String::from_utf8_lossy(html).into_owned())
}
