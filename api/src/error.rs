//! The API's one error type and its mapping to HTTP: every failure answers with the legacy
//! FastAPI shape `{"detail": "…"}`, plus `field` when one request field is at fault.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use domain::auth::UserError;
use domain::command::{CommandError, WriteRejection};
use domain::write::WriteError;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401: no token, a bad one, or credentials that do not match.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: authenticated, but the role does not allow it.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 409: the request conflicts with the current state.
    #[error("{0}")]
    Conflict(String),
    /// 400/422: one request field is wrong.
    #[error("{field}: {problem}")]
    Invalid {
        status: StatusCode,
        field: String,
        problem: String,
    },
    #[error("{0}")]
    BadRequest(String),
    /// 429, with the seconds to wait.
    #[error("too many attempts; try again in {retry_after_s} s")]
    TooManyRequests { retry_after_s: u64 },
    /// 503: a dependency (the database, a lagging read model) cannot answer now.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a bug or an unexpected failure; details go to the log, not to the client.
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// 422 naming `field`, as FastAPI answers a body that fails validation.
    pub fn invalid(field: impl Into<String>, problem: impl Into<String>) -> Self {
        ApiError::Invalid {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            field: field.into(),
            problem: problem.into(),
        }
    }

    pub fn internal(error: impl std::fmt::Display) -> Self {
        ApiError::Internal(error.to_string())
    }

    fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Invalid { status, .. } => *status,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if let ApiError::Internal(message) | ApiError::Unavailable(message) = &self {
            tracing::error!(status = status.as_u16(), error = %message, "request failed");
        }
        let field = match &self {
            ApiError::Invalid { field, .. } => Some(field.as_str()),
            _ => None,
        };
        let body = ErrorBody {
            detail: self.to_string(),
            field,
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let ApiError::TooManyRequests { retry_after_s } = self {
            if let Ok(value) = HeaderValue::from_str(&retry_after_s.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<projections::Error> for ApiError {
    fn from(error: projections::Error) -> Self {
        match error {
            projections::Error::NotCaughtUp { .. } => ApiError::Unavailable(error.to_string()),
            projections::Error::Database(_) => ApiError::Unavailable(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(error: UserError) -> Self {
        match error {
            UserError::Invalid { field, problem } => ApiError::invalid(field, problem),
            UserError::AlreadyExists | UserError::AlreadyRegistered => {
                ApiError::Conflict(error.to_string())
            }
            UserError::NotFound => ApiError::NotFound(error.to_string()),
            UserError::BadRegistrationCode => ApiError::Unauthorized(error.to_string()),
            UserError::NotApplicable(_) => ApiError::BadRequest(error.to_string()),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(error: WriteError) -> Self {
        match error {
            WriteError::UnknownTable(_) => ApiError::NotFound(error.to_string()),
            WriteError::NotWritable { .. } => ApiError::Forbidden(error.to_string()),
            WriteError::Invalid { field, problem } => ApiError::invalid(field, problem),
        }
    }
}

impl From<WriteRejection> for ApiError {
    fn from(error: WriteRejection) -> Self {
        match error {
            WriteRejection::Invalid(e) => e.into(),
            WriteRejection::NotFound { .. } => ApiError::NotFound(error.to_string()),
            WriteRejection::AlreadyExists { .. } | WriteRejection::Conflict(_) => {
                ApiError::Conflict(error.to_string())
            }
            WriteRejection::NotReady { .. } => ApiError::Unavailable(error.to_string()),
        }
    }
}

impl<E: Into<ApiError>> From<CommandError<E>> for ApiError {
    fn from(error: CommandError<E>) -> Self {
        match error {
            CommandError::Rejected(e) => e.into(),
            CommandError::Conflict => ApiError::Conflict(
                "the record was changed by someone else at the same moment; try again".into(),
            ),
            CommandError::Unavailable(e) => {
                ApiError::Unavailable(format!("the event store is unavailable: {e}"))
            }
        }
    }
}

/// The handlers' result type.
pub type ApiResult<T> = Result<T, ApiError>;
