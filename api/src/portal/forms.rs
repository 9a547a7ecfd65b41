//! Form posts of a signed-in session: the CSRF token is checked before anything else of the
//! body is read, so a handler that takes a [`CheckedForm`] cannot forget it.

use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::auth::client_address;
use crate::AppState;

use super::pages;
use super::session::Session;

/// The CSRF field every portal form carries.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CsrfField {
    #[serde(default)]
    pub(crate) csrf: String,
}

/// A form a signed-in user posted, its CSRF token checked, with its fields `T`.
#[derive(Debug)]
pub(crate) struct CheckedForm<T> {
    pub(crate) session: Session,
    pub(crate) fields: T,
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NoFields {}

/// The fields of a urlencoded body (unknown fields ignored).
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Option<T> {
    serde_urlencoded::from_bytes(body).ok()
}

impl<T: DeserializeOwned + Send> FromRequest<AppState> for CheckedForm<T> {
    /// The login redirect without a session; 403 without its CSRF token; 400 for fields that
    /// cannot be read.
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = request.into_parts();
        let session = Session::from_request_parts(&mut parts, state).await?;
        let body = Bytes::from_request(Request::from_parts(parts, body), state)
            .await
            .map_err(IntoResponse::into_response)?;
        let token = parse::<CsrfField>(&body).unwrap_or_default();
        if !session.csrf_matches(&token.csrf) {
            return Err(pages::bad_form(Some(&session)));
        }
        let Some(fields) = parse::<T>(&body) else {
            return Err(pages::error_page(
                axum::http::StatusCode::BAD_REQUEST,
                Some(&session),
                "The form could not be read",
                "Some of its fields were missing or not understood. Go back and try again.",
                ("/portal/", "Back to the portal"),
            ));
        };
        Ok(CheckedForm { session, fields })
    }
}

/// The client's address (for the login limits), when the server knows it.
pub(crate) struct Client(pub(crate) Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Client(client_address(parts)))
    }
}
