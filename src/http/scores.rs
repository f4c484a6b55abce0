//! Scores: a call's scorecard, rescoring, QA corrections, calibration, and scorecard versions.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Auth;
use super::calls::visible_call;
use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::domain::{now_millis, CallStatus, Role};
use crate::pipeline::Stage;
use crate::rubric::{Rubric, RubricSource};
use crate::scoring::calibration::{self, Agreement};
use crate::scoring::card::{QaCorrection, ScoreCard};
use crate::store::StoredRubric;

/// A call's scorecard.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}/score", tag = "scores",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, body = ScoreCard, description = "Scored, or not scorable with the reason"),
        (status = 404, body = ErrorBody, description = "No such call, or not scored yet"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<ScoreCard>, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    match state.store.get_score(call.call.id).await? {
        Some(card) => Ok(Json(card)),
        None => Err(ApiError::NotFound(match call.status {
            CallStatus::Failed => format!(
                "the call has no score: {}",
                call.failure_reason.as_deref().unwrap_or("it failed")
            ),
            status => format!("the call has no score yet (it is {status})"),
        })),
    }
}

/// What a rescore queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Rescored {
    /// Calls queued for scoring.
    pub queued: usize,
    /// Calls already waiting for or in scoring.
    pub already_queued: usize,
}

/// Score a call again (with the current scorecard version).
#[utoipa::path(
    post, path = "/api/v1/calls/{id}/rescore", tag = "scores",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 202, body = Rescored),
        (status = 409, body = ErrorBody, description = "Not transcribed yet, or already being scored"),
    ),
    security(("bearer" = []))
)]
pub async fn rescore(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Rescored>), ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    auth.require(&[Role::Admin, Role::Qa])?;
    if state.store.get_transcript(call.call.id).await?.is_none() {
        return Err(ApiError::Conflict(format!(
            "the call has no transcript to score (it is {})",
            call.status
        )));
    }
    let max_attempts = state.config.queue.max_attempts;
    if !state
        .store
        .queue_stage(call.call.id, Stage::Score, max_attempts)
        .await?
    {
        return Err(ApiError::Conflict(
            "the call is already queued for scoring".into(),
        ));
    }
    state.worker.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(Rescored {
            queued: 1,
            already_queued: 0,
        }),
    ))
}

/// Query of the bulk rescore.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RescoreQuery {
    /// Scorecard id: every call scored with an older version of it is scored again.
    pub rubric: String,
}

/// Score again every call scored with an older version of a scorecard.
#[utoipa::path(
    post, path = "/api/v1/rescore", tag = "scores", params(RescoreQuery),
    responses((status = 202, body = Rescored)),
    security(("bearer" = []))
)]
pub async fn rescore_outdated(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<RescoreQuery>,
) -> Result<(StatusCode, Json<Rescored>), ApiError> {
    auth.require(&[Role::Admin, Role::Qa])?;
    let calls = state.store.outdated_scores(&q.rubric).await?;
    let max_attempts = state.config.queue.max_attempts;
    let mut out = Rescored {
        queued: 0,
        already_queued: 0,
    };
    for call in calls {
        if state
            .store
            .queue_stage(call, Stage::Score, max_attempts)
            .await?
        {
            out.queued += 1;
        } else {
            out.already_queued += 1;
        }
    }
    state.worker.wake();
    Ok((StatusCode::ACCEPTED, Json(out)))
}

/// A QA correction of one criterion.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CorrectionRequest {
    /// The corrected answer on the criterion's scale; `null` = not applicable.
    pub answer: Option<u8>,
    /// Why (required: the model's answer stays beside it, and calibration reads both).
    pub comment: String,
}

/// Correct one criterion of a call's score (QA).
#[utoipa::path(
    put, path = "/api/v1/calls/{id}/score/criteria/{criterion}", tag = "scores",
    params(("id" = String, Path, description = "Call id"), ("criterion" = String, Path, description = "Criterion id")),
    request_body = CorrectionRequest,
    responses(
        (status = 200, body = ScoreCard, description = "The score with the correction and recomputed figures"),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn correct(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, criterion)): Path<(String, String)>,
    Json(body): Json<CorrectionRequest>,
) -> Result<Json<ScoreCard>, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    let who = auth.require(&[Role::Admin, Role::Qa])?.name.clone();
    if body.comment.trim().is_empty() {
        return Err(ApiError::Unprocessable(
            "a correction needs a comment saying why".into(),
        ));
    }
    let card = state
        .store
        .get_score(call.call.id)
        .await?
        .ok_or_else(|| ApiError::NotFound("the call has no score to correct".into()))?;
    let rubric = state
        .store
        .rubric_version(&card.rubric.id, &card.rubric.language, card.rubric.version)
        .await?
        .ok_or_else(|| {
            ApiError::Internal(format!("scorecard version {:?} is missing", card.rubric))
        })?;
    let (_, c) = rubric.rubric.criterion(&criterion).ok_or_else(|| {
        ApiError::NotFound(format!(
            "criterion {criterion} is not in this call's scorecard"
        ))
    })?;
    if !c.accepts(body.answer) {
        return Err(ApiError::Unprocessable(format!(
            "answer {} is not valid for {criterion}: 0..{}{}",
            body.answer
                .map(|a| a.to_string())
                .unwrap_or_else(|| "null".into()),
            c.max(),
            if c.na_allowed { " or null" } else { "" }
        )));
    }
    let correction = QaCorrection {
        answer: body.answer,
        level: c.level(body.answer),
        comment: body.comment.trim().chars().take(2000).collect(),
        by: who,
        at: now_millis(),
    };
    let card = state
        .store
        .correct_criterion(call.call.id, &criterion, correction)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("criterion {criterion} is not in this score")))?;
    Ok(Json(card))
}

/// Period of the calibration report.
#[derive(Debug, Deserialize, IntoParams)]
pub struct CalibrationQuery {
    /// Start, `YYYY-MM-DD` (UTC) or RFC 3339; default 90 days ago.
    pub from: Option<String>,
    /// End (exclusive); default now.
    pub to: Option<String>,
}

/// Agreement between the model and QA over a period.
#[derive(Debug, Serialize, ToSchema)]
pub struct Calibration {
    /// Start, Unix ms.
    pub from: i64,
    /// End, Unix ms.
    pub to: i64,
    /// Per criterion.
    pub criteria: Vec<Agreement>,
    /// Corrections that changed the model's level, newest first (at most 200).
    pub disagreements: Vec<crate::store::Disagreement>,
}

/// How well the model agrees with QA corrections, per criterion.
#[utoipa::path(
    get, path = "/api/v1/calibration", tag = "scores", params(CalibrationQuery),
    responses((status = 200, body = Calibration), (status = 400, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn calibration(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<CalibrationQuery>,
) -> Result<Json<Calibration>, ApiError> {
    auth.require(&[Role::Admin, Role::Qa, Role::Head])?;
    let to = match &q.to {
        Some(t) => super::parse_bound("to", t)?,
        None => now_millis() + 1,
    };
    let from = match &q.from {
        Some(f) => super::parse_bound("from", f)?,
        None => to - 90 * 86_400_000,
    };
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    let pairs = state.store.calibration_pairs(from, to).await?;
    let mut criteria = vec![];
    let mut start = 0;
    while start < pairs.len() {
        let id = &pairs[start].0;
        let end = pairs[start..]
            .iter()
            .position(|(c, _)| c != id)
            .map_or(pairs.len(), |p| start + p);
        let group: Vec<_> = pairs[start..end].iter().map(|(_, p)| *p).collect();
        criteria.push(calibration::agreement(id, &group));
        start = end;
    }
    let disagreements = state.store.calibration_disagreements(from, to, 200).await?;
    Ok(Json(Calibration {
        from,
        to,
        criteria,
        disagreements,
    }))
}

/// A scorecard version.
#[derive(Debug, Serialize, ToSchema)]
pub struct RubricView {
    /// Scorecard id.
    pub id: String,
    /// Language variant.
    pub language: String,
    /// Version.
    pub version: i64,
    /// Whether new calls are scored with it.
    pub current: bool,
    /// Title.
    pub title: String,
    /// Content hash.
    pub content_hash: String,
    /// `builtin`, a file path, or `api`.
    pub origin: String,
    /// When it was registered, Unix ms.
    pub created_at: i64,
    /// The scorecard (in the detail view only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rubric: Option<Rubric>,
}

fn view(r: StoredRubric, current: bool, full: bool, auth: &Auth) -> RubricView {
    // A file's path tells how the server is laid out: for those who manage scorecards only.
    let origin = if auth.0.has_role(&[Role::Admin, Role::Qa]) || !r.origin.contains('/') {
        r.origin
    } else {
        "file".to_string()
    };
    RubricView {
        id: r.rubric.id.clone(),
        language: r.rubric.language.clone(),
        version: r.version,
        current,
        title: r.rubric.title.clone(),
        content_hash: r.content_hash,
        origin,
        created_at: r.created_at,
        rubric: full.then_some(r.rubric),
    }
}

/// Every scorecard version.
#[utoipa::path(
    get, path = "/api/v1/rubrics", tag = "scores",
    responses((status = 200, body = Vec<RubricView>)),
    security(("bearer" = []))
)]
pub async fn list_rubrics(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<RubricView>>, ApiError> {
    let all = state.store.list_rubrics().await?;
    let mut out = Vec::with_capacity(all.len());
    let mut last: Option<(String, String)> = None;
    for r in all {
        let key = (r.rubric.id.clone(), r.rubric.language.clone());
        // Listed newest first within each scorecard: the first of each is current.
        let current = last.as_ref() != Some(&key);
        last = Some(key);
        out.push(view(r, current, false, &auth));
    }
    Ok(Json(out))
}

/// Add a scorecard, or a new version of one: the body is the scorecard's TOML (the format of
/// `rubrics/sales-standard.en.toml`).
#[utoipa::path(
    post, path = "/api/v1/rubrics", tag = "scores",
    request_body(content = String, content_type = "application/toml"),
    responses(
        (status = 201, body = RubricView, description = "A new version"),
        (status = 200, body = RubricView, description = "This content is already a version"),
        (status = 422, body = ErrorBody, description = "The scorecard does not parse or validate"),
    ),
    security(("bearer" = []))
)]
pub async fn create_rubric(
    State(state): State<AppState>,
    auth: Auth,
    body: Bytes,
) -> Result<(StatusCode, Json<RubricView>), ApiError> {
    auth.require(&[Role::Admin, Role::Qa])?;
    let text = std::str::from_utf8(&body)
        .map_err(|_| ApiError::BadRequest("the scorecard must be UTF-8 TOML".into()))?;
    let rubric =
        Rubric::parse(text, "request body").map_err(|e| ApiError::Unprocessable(e.to_string()))?;
    let (stored, created) = state
        .store
        .register_rubric(&rubric, text, &RubricSource::Api.as_origin())
        .await?;
    let current = state
        .store
        .current_rubric(&stored.rubric.id, &stored.rubric.language)
        .await?
        .is_some_and(|c| c.version == stored.version);
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(view(stored, current, true, &auth))))
}

/// The current version of a scorecard, in full.
#[utoipa::path(
    get, path = "/api/v1/rubrics/{id}/{language}", tag = "scores",
    params(("id" = String, Path, description = "Scorecard id"), ("language" = String, Path, description = "ru or en")),
    responses((status = 200, body = RubricView), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_rubric(
    State(state): State<AppState>,
    auth: Auth,
    Path((id, language)): Path<(String, String)>,
) -> Result<Json<RubricView>, ApiError> {
    let r = state
        .store
        .current_rubric(&id, &language)
        .await?
        .filter(|r| r.rubric.language == language)
        .ok_or_else(|| ApiError::not_found("scorecard"))?;
    Ok(Json(view(r, true, true, &auth)))
}

/// This module's routes (merged with the others in `http::api_router`).
pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(get))
        .routes(routes!(rescore))
        .routes(routes!(rescore_outdated))
        .routes(routes!(correct))
        .routes(routes!(calibration))
        .routes(routes!(list_rubrics, create_rubric))
        .routes(routes!(get_rubric))
}
