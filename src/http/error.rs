//! The one error type of the HTTP boundary, with a stable JSON shape:
//! `{"error": {"code": "...", "message": "..."}}`.

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
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
    /// 408: the client stopped sending its request body for longer than the server waits.
    #[error("{0}")]
    RequestTimeout(String),
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

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid"),
            ApiError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
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
        let mut response = (
            status,
            Json(ErrorBody {
                error: ErrorDetail { code, message },
            }),
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The code of an error answer with this status, for answers not made by [`ApiError`].
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "bad_request",
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::METHOD_NOT_ALLOWED => "method_not_allowed",
        StatusCode::REQUEST_TIMEOUT => "request_timeout",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::UNPROCESSABLE_ENTITY => "invalid",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_server_error() => "internal",
        _ => "bad_request",
    }
}

/// Middleware: error answers the framework makes itself (a JSON syntax error, a wrong query or
/// path, a missing multipart boundary, 405, a body over a limit) get the same JSON shape as
/// ours, with their text as the message. Answers that already are JSON pass unchanged.
pub async fn json_errors(req: Request, next: Next) -> Response {
    let response = next.run(req).await;
    let status = response.status();
    // JSON errors are already ours; HTML ones are the web app's error pages.
    let is_ours = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_ours {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // The framework's rejection texts are one line; a larger body is not one of them.
    let text = axum::body::to_bytes(body, 16 << 10)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_string())
        .unwrap_or_default();
    let message = if text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_lowercase()
    } else if status.is_server_error() {
        // Never internals: the log has them.
        "internal error; the server log has the details under this request's x-request-id".into()
    } else {
        text
    };
    parts.headers.remove(CONTENT_LENGTH);
    let mut rebuilt = Json(ErrorBody {
        error: ErrorDetail {
            code: code_for(status),
            message,
        },
    })
    .into_response();
    parts.headers.remove(CONTENT_TYPE);
    rebuilt.headers_mut().extend(parts.headers);
    *rebuilt.status_mut() = status;
    rebuilt
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::Database(sqlx::Error::PoolTimedOut) => {
                ApiError::Unavailable("the database is busy or unreachable; try again".into())
            }
            StoreError::Database(sqlx::Error::Database(db)) if is_lock_timeout(db.as_ref()) => {
                ApiError::Unavailable("the database is busy; try again".into())
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// SQLite's "database is locked" after its busy timeout (codes 5 and 6, also extended), or
/// PostgreSQL's lock_not_available (55P03): a wait, not a fault.
fn is_lock_timeout(db: &dyn sqlx::error::DatabaseError) -> bool {
    let code = db.code();
    let code = code.as_deref().unwrap_or_default();
    let sqlite_busy = code.parse::<i32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
    sqlite_busy || code == "55P03" || db.message().contains("database is locked")
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
