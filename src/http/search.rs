//! `/api/v1/search`: words across the transcripts of every call the caller may see.

use axum::extract::{Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Auth;
use super::error::ErrorBody;
use super::{parse_bound, ApiError, AppState};
use crate::domain::{to_datetime, CallId, ManagerId, Speaker};
use crate::search::{self, Found, Piece};
use crate::store::SearchFilter;

/// Hits per page unless `limit` says.
const DEFAULT_LIMIT: i64 = 20;
/// Most hits per page.
const MAX_LIMIT: i64 = 100;

/// What to search for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The words to find, all in one segment, each in any form ("цену" finds "цена" and
    /// "цены", "ё" matches "е", "pricing" finds "price").
    pub q: Option<String>,
    /// Only this manager's calls.
    pub manager_id: Option<String>,
    /// Only what this speaker said.
    pub speaker: Option<Speaker>,
    /// Calls at or after (`YYYY-MM-DD` at 00:00 UTC, or RFC 3339): the call's start, else its
    /// upload.
    pub from: Option<String>,
    /// Calls before (as `from`).
    pub to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1-100, default 20).
    pub limit: Option<i64>,
}

/// A segment that holds every word of the query.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchHitView {
    /// The call.
    pub call_id: CallId,
    /// The call's manager.
    pub manager_id: ManagerId,
    /// When the call started, where known.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The call's start, else its upload: hits come newest first by it (to the second).
    pub call_at: chrono::DateTime<chrono::Utc>,
    /// The uploaded file's name.
    pub original_filename: Option<String>,
    /// Who said it.
    pub speaker: Speaker,
    /// Start on the recording, seconds.
    pub start_s: f64,
    /// End on the recording, seconds.
    pub end_s: f64,
    /// What was said.
    pub text: String,
    /// The text in pieces, the query's words (in any of their forms) marked `hit`; long
    /// segments are cut around the first match, with `…`.
    pub snippet: Vec<Piece>,
    /// The call's URL.
    pub call_url: String,
    /// The call's page, playing from this segment.
    pub page_url: String,
}

impl From<Found> for SearchHitView {
    fn from(f: Found) -> Self {
        let h = f.hit;
        Self {
            call_url: format!("/api/v1/calls/{}", h.call_id),
            page_url: page_url(h.call_id, h.start_ms),
            call_id: h.call_id,
            manager_id: h.manager_id,
            started_at: h.started_at.map(to_datetime),
            call_at: to_datetime(h.call_at),
            original_filename: h.original_filename,
            speaker: h.speaker,
            start_s: h.start_ms as f64 / 1000.0,
            end_s: h.end_ms as f64 / 1000.0,
            text: h.text,
            snippet: f.snippet,
        }
    }
}

/// The web app's call page, playing from `start_ms` (whole seconds, rounded down).
pub fn page_url(call: CallId, start_ms: i64) -> String {
    format!("/calls/{call}?t={}", start_ms.max(0) / 1000)
}

/// A page of hits.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SearchPage {
    /// Newest call first, then by call and time in the call.
    pub items: Vec<SearchHitView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// Search the transcripts.
///
/// Finds the transcript segments that hold every word of `q`, each in any of its forms
/// (Russian and English stemming), in the calls the caller may see: a manager's token finds
/// only that manager's calls, and naming another manager is a 404 as in the calls list.
#[utoipa::path(
    get, path = "/api/v1/search", tag = "search", params(SearchQuery),
    responses(
        (status = 200, body = SearchPage),
        (status = 400, description = "No words to search for, or a bad filter", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 404, description = "A manager named another manager", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn search(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<SearchQuery>,
) -> Result<Json<SearchPage>, ApiError> {
    let query = search::Query::parse(q.q.as_deref().unwrap_or_default())
        .map_err(|e| ApiError::BadRequest(format!("q: {e}")))?;
    let requested = q
        .manager_id
        .as_deref()
        .map(ManagerId::parse)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("manager_id: {e}")))?;
    let manager_id = match (requested, auth.0.scope()) {
        (Some(m), Some(own)) if &m != own => return Err(ApiError::not_found("manager")),
        (Some(m), _) => Some(m),
        (None, own) => own.cloned(),
    };
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    let filter = SearchFilter {
        manager_id,
        speaker: q.speaker,
        from: q
            .from
            .as_deref()
            .map(|s| parse_bound("from", s))
            .transpose()?,
        to: q.to.as_deref().map(|s| parse_bound("to", s)).transpose()?,
        after: q
            .cursor
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| ApiError::BadRequest(format!("cursor: {e}")))?,
        limit,
    };
    let hidden = state.config.redaction.hidden_from(auth.0.role);
    let page = search::find(&state.store, &query, &filter, hidden).await?;
    Ok(Json(SearchPage {
        items: page.found.into_iter().map(SearchHitView::from).collect(),
        next_cursor: page.next.map(|c| c.to_string()),
    }))
}

/// This module's routes (merged with the others in `http::api_router`).
pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(search))
}
