//! Request bodies: JSON whose every problem is answered with the JSON error shape, naming the
//! field where serde can tell which.

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body accepted (a customer row with every column is a few kilobytes).
pub(crate) const MAX_BODY_BYTES: usize = 256 * 1024;

/// `axum::Json`, with its rejections turned into [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct JsonBody<T>(pub T);

impl<S, T> FromRequest<S> for JsonBody<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(request, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) => Err(rejection_error(rejection)),
        }
    }
}

fn rejection_error(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => {
            // serde's message ("missing field `password` at line 1 column 20") names the field.
            let message = e.body_text();
            let field = message
                .split('`')
                .nth(1)
                .filter(|_| message.contains("field"))
                .unwrap_or("body");
            ApiError::Invalid {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                field: field.to_string(),
                problem: message
                    .split_once(": ")
                    .map_or(message.as_str(), |(_, m)| m)
                    .to_string(),
            }
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::Invalid {
            status: StatusCode::BAD_REQUEST,
            field: "body".into(),
            problem: "is not valid JSON".into(),
        },
        JsonRejection::MissingJsonContentType(_) => ApiError::Invalid {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            field: "content-type".into(),
            problem: "must be application/json".into(),
        },
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::Invalid {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                field: "body".into(),
                problem: format!("is larger than {MAX_BODY_BYTES} bytes"),
            }
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}
