//! The one error type of the HTTP boundary, with a stable JSON shape:
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::recordings::RecordingError;
use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or a field is invalid.
    #[error("{0}")]
    BadRequest(String),
    /// 401: no or unknown token.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the token's role may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing there (or nothing this caller may see).
    #[error("{0}")]
    NotFound(String),
    /// 409: the resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// 422: well-formed but invalid content (a scorecard that does not validate, an answer
    /// outside a criterion's scale).
    #[error("{0}")]
    Unprocessable(String),
    /// 413: the upload is over the limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the upload is not something we can process.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 500: our fault; details go to the log, never to the client.
    #[error("internal error: {0}")]
    Internal(String),
    /// 503: a dependency (the database) is unavailable.
    #[error("{0}")]
    Unavailable(String),
}

/// The JSON body of every error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Machine-readable code and human-readable message.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable code, e.g. `not_found`.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// A 404 for something by name.
    pub fn not_found(what: &str) -> Self {
        ApiError::NotFound(format!("{what} not found"))
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let message = match &self {
            ApiError::Internal(detail) => {
                // Logged inside the request's span, which carries the request id; the client
                // gets the id in the x-request-id header and nothing else.
                tracing::error!(error = %detail, "internal error");
                "internal error; the server log has the details under this request's x-request-id"
                    .to_string()
            }
            other => other.to_string(),
        };
        (
            status,
            Json(ErrorBody {
                error: ErrorDetail { code, message },
            }),
        )
            .into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                ApiError::Unavailable("the database is busy or unreachable; try again".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<RecordingError> for ApiError {
    fn from(e: RecordingError) -> Self {
        match e {
            RecordingError::TooLarge { .. } => ApiError::PayloadTooLarge(e.to_string()),
            RecordingError::Empty => ApiError::BadRequest("the uploaded file is empty".into()),
            RecordingError::Io(io) => ApiError::Internal(io.to_string()),
        }
    }
}
