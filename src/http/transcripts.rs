//! `/api/v1/calls/{id}/transcript`: the transcript as JSON, plain text, SRT or WebVTT.

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Auth;
use super::calls::visible_call;
use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::domain::CallStatus;
use crate::transcript::{format, Transcript};

/// Output formats.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TranscriptFormat {
    /// The whole document: segments, words, metrics, processing figures.
    #[default]
    Json,
    /// `[00:01:02] Manager: ...` lines.
    Text,
    /// SubRip subtitles.
    Srt,
    /// WebVTT subtitles.
    Vtt,
}

/// Query of the transcript endpoint.
#[derive(Debug, Deserialize, IntoParams)]
pub struct TranscriptQuery {
    /// json (default), text, srt or vtt.
    pub format: Option<TranscriptFormat>,
}

/// A call's transcript.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}/transcript", tag = "calls",
    params(("id" = String, Path, description = "Call id"), TranscriptQuery),
    responses(
        (status = 200, body = Transcript, description = "JSON, or text/plain, application/x-subrip, text/vtt by `format`"),
        (status = 404, body = ErrorBody, description = "No such call, or not transcribed yet"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(query): Query<TranscriptQuery>,
) -> Result<Response, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    let Some(t) = state.store.get_transcript(call.call.id).await? else {
        let why = match call.status {
            CallStatus::Failed => format!(
                "the call has no transcript: {}",
                call.failure_reason.as_deref().unwrap_or("it failed")
            ),
            status => format!("the call has no transcript yet (it is {status})"),
        };
        return Err(ApiError::NotFound(why));
    };
    let t = state.config.redaction.for_reader(auth.0.role, t).await;
    let text = |content_type: &'static str, body: String| {
        ([(header::CONTENT_TYPE, content_type)], body).into_response()
    };
    Ok(match query.format.unwrap_or_default() {
        TranscriptFormat::Json => Json(t).into_response(),
        TranscriptFormat::Text => text("text/plain; charset=utf-8", format::text(&t.segments)),
        TranscriptFormat::Srt => text(
            "application/x-subrip; charset=utf-8",
            format::srt(&t.segments),
        ),
        TranscriptFormat::Vtt => text("text/vtt; charset=utf-8", format::vtt(&t.segments)),
    })
}
