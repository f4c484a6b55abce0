//! The call page (`/calls/{id}`): player with waveform, transcript, conversation metrics,
//! scorecard with evidence that seeks the audio, and QA's corrections, rescore and retry.
//!
//! Every action goes through the API's own handlers with the session's principal, so the role
//! rules (another manager's call is a 404, only QA corrects) are the API's, not a copy.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Json, Router};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};
use tower::ServiceExt;

use super::i18n::{self, Lang};
use super::session::WebUser;
use super::{render, Nonce, PageCtx};
use crate::domain::{to_datetime, CallId, CallStatus, Role, Speaker};
use crate::http::{ApiError, AppState, Auth};
use crate::playback::PlaybackError;
use crate::redact::{Kind, Redaction};
use crate::rubric::Level;
use crate::scoring::card::{CriterionScore, Doubt, Evidence, ScoreCard};
use crate::store::CallRecord;

/// The call page's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/calls/{id}", get(page))
        .route("/calls/{id}/audio", get(audio))
        .route("/calls/{id}/peaks", get(peaks))
        .route("/calls/{id}/retry", post(retry))
        .route("/calls/{id}/rescore", post(rescore))
        .route("/calls/{id}/swap-speakers", post(swap_speakers))
        .route("/calls/{id}/roles", post(set_roles))
        .route("/calls/{id}/correct", post(correct))
}

impl WebUser {
    /// The API's view of this user, for calling the API's handlers.
    pub fn auth(&self) -> Auth {
        Auth(self.principal.clone())
    }
}

/// Sends the playable recording of a visible call with HTTP Range support (206 for a range,
/// 416 for one past the end), so a long call starts playing at once. Shared by
/// `GET /api/v1/calls/{id}/audio` (bearer) and the page's `/calls/{id}/audio` (session).
pub async fn send_audio(
    state: &AppState,
    call: &CallRecord,
    role: Role,
    request: Request,
) -> Result<Response, ApiError> {
    let original = state
        .recordings
        .path(&call.call.storage_key)
        .ok_or_else(|| ApiError::not_found("recording"))?;
    // A reader kept from personal data hears silence where the redacted values were said.
    let hidden = state.config.redaction.hidden_from(role);
    let muted = if hidden.is_empty() {
        Arc::default()
    } else {
        muted_spans(state, call.call.id, hidden).await?
    };
    let file = if muted.is_empty() {
        state.playback.file(call.call.id, &original).await
    } else {
        state.playback.muted(call.call.id, &original, &muted).await
    }
    .map_err(playback_error)?;
    let mut response = tower_http::services::ServeFile::new(&file.path)
        .oneshot(request)
        .await
        .map_err(|e| ApiError::Internal(format!("sending the recording: {e}")))?
        .map(axum::body::Body::new);
    if response.status().is_success() || response.status() == StatusCode::PARTIAL_CONTENT {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(file.content_type));
        // Personal data: the browser may keep it for this session's replays, nobody else.
        response.headers_mut().insert(
            axum::http::header::CACHE_CONTROL,
            HeaderValue::from_static("private, max-age=3600"),
        );
    }
    Ok(response)
}

/// Where a reader kept from `hidden` must hear silence in `call`'s recording. A browser asks
/// for a recording in many Range requests, so the stretches are remembered per transcript (its
/// write time, read by key): only the first request reads the document and looks for values.
async fn muted_spans(
    state: &AppState,
    call: CallId,
    hidden: &[Kind],
) -> Result<Arc<Vec<Redaction>>, ApiError> {
    let Some(written) = state.store.transcript_written_at(call).await? else {
        return Ok(Arc::default());
    };
    if let Some(spans) = state.playback.remembered_mutes(call, written, hidden) {
        return Ok(spans);
    }
    let Some(t) = state.store.get_transcript(call).await? else {
        return Ok(Arc::default());
    };
    let spans = Arc::new(crate::redact::redact_off_thread(t, hidden).await.1);
    state
        .playback
        .remember_mutes(call, written, hidden, Arc::clone(&spans));
    Ok(spans)
}

/// A visible call's waveform peaks as JSON ([`crate::playback::Peaks`]).
pub async fn send_peaks(state: &AppState, call: &CallRecord) -> Result<Response, ApiError> {
    let original = state
        .recordings
        .path(&call.call.storage_key)
        .ok_or_else(|| ApiError::not_found("recording"))?;
    let bytes = state
        .playback
        .peaks(call.call.id, &original)
        .await
        .map_err(playback_error)?;
    Ok((
        [
            (CONTENT_TYPE, HeaderValue::from_static("application/json")),
            (
                axum::http::header::CACHE_CONTROL,
                HeaderValue::from_static("private, max-age=3600"),
            ),
        ],
        bytes,
    )
        .into_response())
}

fn playback_error(e: PlaybackError) -> ApiError {
    match e {
        PlaybackError::Missing => ApiError::NotFound("the recording is no longer stored".into()),
        PlaybackError::Decode(d) => {
            ApiError::Unprocessable(format!("the recording cannot be played: {d}"))
        }
        other => ApiError::Internal(other.to_string()),
    }
}

async fn audio(
    State(state): State<AppState>,
    web: WebUser,
    Path(id): Path<String>,
    request: Request,
) -> Response {
    let result = async {
        let call = crate::http::calls::visible_call(&state, &web.auth(), &id).await?;
        send_audio(&state, &call, web.user.role, request).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn peaks(State(state): State<AppState>, web: WebUser, Path(id): Path<String>) -> Response {
    let result = async {
        let call = crate::http::calls::visible_call(&state, &web.auth(), &id).await?;
        send_peaks(&state, &call).await
    }
    .await;
    result.unwrap_or_else(IntoResponse::into_response)
}

/// One speaker turn as the page shows it.
#[derive(Serialize)]
struct TurnView {
    speaker: &'static str,
    speaker_label: &'static str,
    start: f64,
    end: f64,
    at: String,
    /// What was said, placeholders of redacted values marked.
    pieces: Vec<PieceView>,
}

/// A piece of a turn's text.
#[derive(Serialize)]
struct PieceView {
    text: String,
    redacted: bool,
}

/// One quote of evidence.
#[derive(Serialize)]
struct QuoteView {
    quote: String,
    verified: bool,
    seek: Option<f64>,
    at: Option<String>,
    speaker_label: Option<&'static str>,
}

#[derive(Serialize)]
struct CorrectionView {
    level_label: &'static str,
    answer: String,
    comment: String,
    by: String,
    at_iso: String,
    at_text: String,
}

#[derive(Serialize)]
struct CriterionView {
    id: String,
    title: String,
    section: String,
    critical: bool,
    level: &'static str,
    level_label: &'static str,
    model_level_label: &'static str,
    answer: String,
    scale_max: u8,
    rationale: String,
    low_confidence: bool,
    /// The reason in the page's language.
    low_confidence_text: &'static str,
    /// Whether the model's text was dropped as not an answer.
    dropped: bool,
    evidence: Vec<QuoteView>,
    corrected: Option<CorrectionView>,
    history: Vec<CorrectionView>,
    answers: Vec<u8>,
}

fn clock(seconds: f64) -> String {
    i18n::duration((seconds * 1000.0).round() as i64)
}

fn speaker_label(lang: Lang, speaker: Speaker) -> &'static str {
    lang.t(&format!("speaker_{}", speaker.as_str()))
}

fn level_label(lang: Lang, level: Level) -> &'static str {
    lang.t(&format!("level_{}", level.as_str()))
}

fn quote_view(lang: Lang, e: &Evidence) -> QuoteView {
    let seek = e.start_s.filter(|_| e.verified);
    QuoteView {
        quote: e.quote.clone(),
        verified: e.verified,
        seek,
        at: seek.map(clock),
        speaker_label: e.speaker.map(|s| speaker_label(lang, s)),
    }
}

fn correction_view(lang: Lang, c: &crate::scoring::card::QaCorrection) -> CorrectionView {
    let at = to_datetime(c.at);
    CorrectionView {
        level_label: level_label(lang, c.level),
        answer: c
            .answer
            .map(|a| a.to_string())
            .unwrap_or_else(|| lang.t("answer_na").to_string()),
        comment: c.comment.clone(),
        by: c.by.clone(),
        at_iso: at.to_rfc3339(),
        at_text: at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn criterion_view(lang: Lang, c: &CriterionScore) -> CriterionView {
    CriterionView {
        id: c.id.clone(),
        title: c.title.clone(),
        section: c.section.clone(),
        critical: c.critical,
        level: c.final_level.as_str(),
        level_label: level_label(lang, c.final_level),
        model_level_label: level_label(lang, c.level),
        answer: c
            .answer
            .map(|a| format!("{a}/{}", c.scale_max))
            .unwrap_or_else(|| lang.t("answer_na").to_string()),
        scale_max: c.scale_max,
        rationale: c.rationale.clone(),
        low_confidence: c.low_confidence,
        low_confidence_text: lang.t(match c.low_confidence_reason {
            Some(Doubt::UnusableText) => "call_low_confidence_unusable",
            Some(Doubt::NoVerifiedQuote) => "call_low_confidence_no_quote",
            // Scores made before reasons were kept: a missing quote was the usual cause.
            Some(Doubt::QuoteNotFound) | None => "call_low_confidence",
        }),
        dropped: !c.dropped.is_empty(),
        evidence: c.evidence.iter().map(|e| quote_view(lang, e)).collect(),
        corrected: c.qa.as_ref().map(|q| correction_view(lang, q)),
        history: c
            .qa_history
            .iter()
            .rev()
            .map(|q| correction_view(lang, q))
            .collect(),
        answers: (0..=c.scale_max).collect(),
    }
}

fn score_view(lang: Lang, card: &ScoreCard) -> Value {
    let band = match card.overall {
        Some(s) if s >= 80.0 => "good",
        Some(s) if s >= 60.0 => "mid",
        _ => "low",
    };
    let critical: Vec<String> = card
        .critical_failures
        .iter()
        .map(|id| {
            card.criteria
                .iter()
                .find(|c| &c.id == id)
                .map(|c| c.title.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect();
    let point = |p: &crate::scoring::card::CoachingPoint| {
        context! {
            text => p.text.clone(),
            better => p.better_phrasing.clone(),
            quote => p.quote.as_ref().map(|e| quote_view(lang, e)),
        }
    };
    let provenance = card.provenance.as_ref().map(|p| {
        context! {
            model => p.model.clone(),
            server => p.server_host.clone(),
            prompt_hash => p.prompt_hash.chars().take(12).collect::<String>(),
            tokens => format!("{} + {}", p.prompt_tokens, p.completion_tokens),
            llm_s => lang.number(p.llm_ms as f64 / 1000.0, 1),
            repairs => p.repairs,
        }
    });
    let scored_at = to_datetime(card.scored_at);
    context! {
        scorable => card.status == crate::scoring::card::ScoreStatus::Scored,
        reason => card.reason.clone(),
        overall => card.overall.map(|s| lang.number(s, 0)),
        model_overall => card.model_overall.filter(|m| Some(*m) != card.overall).map(|s| lang.number(s, 0)),
        band => band,
        confidence => card.confidence.map(|c| lang.number(c * 100.0, 0)),
        low_confidence => card.confidence.is_some_and(|c| c < 0.5),
        critical => critical,
        criteria => card.criteria.iter().map(|c| criterion_view(lang, c)).collect::<Vec<_>>(),
        strengths => card.coaching.strengths.iter().map(point).collect::<Vec<_>>(),
        improvements => card.coaching.improvements.iter().map(point).collect::<Vec<_>>(),
        next_steps => card.next_steps.iter().map(|s| context! {
            action => s.action.clone(),
            owner => s.owner.clone(),
            due => s.due_date.clone().or_else(|| s.due_in_days.map(|d| format!("+{d} {}", lang.t("days_short")))),
        }).collect::<Vec<_>>(),
        rubric => format!("{} v{} ({})", card.rubric.id, card.rubric.version, card.rubric.language),
        provenance => provenance,
        scored_iso => scored_at.to_rfc3339(),
        scored_text => scored_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

fn metrics_view(lang: Lang, m: &crate::transcript::metrics::ConversationMetrics) -> Value {
    let speakers: Vec<Value> = m
        .speakers
        .iter()
        .map(|s| {
            context! {
                speaker => s.speaker.as_str(),
                label => speaker_label(lang, s.speaker),
                share => lang.number(s.talk_share * 100.0, 0),
                share_width => format!("{:.0}", (s.talk_share * 100.0).clamp(0.0, 100.0)),
                talk => clock(s.talk_seconds),
                turns => s.turns,
                monologue => clock(s.longest_monologue_s),
                pace => lang.number(s.words_per_minute, 0),
                fillers => s.filler_words,
                interruptions => s.interruptions,
            }
        })
        .collect();
    context! {
        speakers => speakers,
        questions => m.manager_questions,
        questions_per_minute => lang.number(m.manager_questions_per_minute, 1),
        interruptions => m.interruptions,
        silence => lang.number(m.silence_share * 100.0, 0),
        longest_silence => clock(m.longest_silence_s),
    }
}

#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    /// Seconds to start at (a search hit links here).
    t: Option<f64>,
    /// A notice key after an action.
    done: Option<String>,
}

async fn page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let notice = q
        .done
        .as_deref()
        .filter(|k| {
            matches!(
                *k,
                "corrected" | "rescored" | "retried" | "swapped" | "roles"
            )
        })
        .map(|k| web.lang.t(&format!("call_done_{k}")).to_string());
    show(&state, &web, &nonce, &id, q.t, notice, None).await
}

/// Renders the call page, with a notice or an error from an action.
async fn show(
    state: &AppState,
    web: &WebUser,
    nonce: &str,
    id: &str,
    start_at: Option<f64>,
    notice: Option<String>,
    error: Option<String>,
) -> Response {
    let lang = web.lang;
    let call = match crate::http::calls::visible_call(state, &web.auth(), id).await {
        Ok(call) => call,
        Err(ApiError::NotFound(_)) => {
            return super::error_page(StatusCode::NOT_FOUND, lang, nonce, Some(&web.user))
        }
        Err(e) => return e.into_response(),
    };
    let loaded = async {
        let transcript = state.store.get_transcript(call.call.id).await?;
        let score = state.store.get_score(call.call.id).await?;
        let job = state.store.latest_job_for_call(call.call.id).await?;
        Ok::<_, crate::store::StoreError>((transcript, score, job))
    }
    .await;
    let (transcript, score, job) = match loaded {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let transcript = match transcript {
        Some(t) => Some(state.config.redaction.for_reader(web.user.role, t).await),
        None => None,
    };
    let max_pause = state.config.metrics.max_pause_s;
    let turns: Vec<TurnView> = transcript
        .as_ref()
        .map(|t| crate::transcript::turns(&t.segments, max_pause))
        .unwrap_or_default()
        .into_iter()
        .map(|t| TurnView {
            speaker: t.speaker.as_str(),
            speaker_label: speaker_label(lang, t.speaker),
            start: (t.start * 100.0).round() / 100.0,
            end: (t.end * 100.0).round() / 100.0,
            at: clock(t.start),
            pieces: crate::redact::pieces(&t.text)
                .into_iter()
                .map(|(text, redacted)| PieceView { text, redacted })
                .collect(),
        })
        .collect();
    let qa = matches!(web.principal.role, Role::Admin | Role::Qa);
    let status = call.status;
    let in_pipeline = !matches!(status, CallStatus::Done | CallStatus::Failed);
    let failed_job = job.as_ref().filter(|j| {
        matches!(
            j.state,
            crate::domain::JobState::Dead | crate::domain::JobState::Cancelled
        )
    });
    let when = to_datetime(call.call.started_at.unwrap_or(call.created_at));
    // One lane for a mono recording (its voices separated or not), else one per channel.
    let one_channel = transcript
        .as_ref()
        .is_some_and(|t| t.processing.diarization_s > 0.0 || t.speakers == [Speaker::Unknown]);
    let lanes: Vec<&'static str> = if one_channel {
        vec![lang.t("lane_mixed")]
    } else {
        call.call
            .channels
            .speakers()
            .iter()
            .map(|s| speaker_label(lang, *s))
            .collect()
    };
    // A separated mono call whose roles the rule could not tell: its voices, for QA to name
    // the manager.
    let voices: Vec<Value> = transcript
        .as_ref()
        .map(|t| {
            t.speakers
                .iter()
                .filter(|s| s.is_voice())
                .map(|s| context! { code => s.as_str(), label => speaker_label(lang, *s) })
                .collect()
        })
        .unwrap_or_default();
    let duration = transcript
        .as_ref()
        .map(|t| clock(t.duration_s))
        .unwrap_or_default();
    let here = format!("/calls/{}", call.call.id);
    let title = call
        .call
        .original_filename
        .clone()
        .unwrap_or_else(|| format!("{} · {}", call.call.manager_id, when.format("%Y-%m-%d")));
    let ctx = PageCtx {
        lang,
        nonce,
        user: Some(&web.user),
        here: &here,
        page: "calls",
    };
    let mut response = render(
        "call.html",
        ctx,
        context! {
            id => call.call.id.to_string(),
            title => title,
            manager => call.call.manager_id.to_string(),
            deal => call.call.deal_id.clone(),
            customer => call.call.customer_id.clone(),
            direction => call.call.direction.map(|d| lang.t(&format!("direction_{}", d.as_str()))),
            when_iso => when.to_rfc3339(),
            when_text => when.format("%Y-%m-%d %H:%M UTC").to_string(),
            has_start => call.call.started_at.is_some(),
            duration => duration,
            language => lang.t(&format!("lang_{}", call.call.language.as_str())),
            status => status.as_str(),
            status_label => lang.t(&format!("status_{}", status.as_str())),
            in_pipeline => in_pipeline,
            failure => call.failure_reason.clone(),
            can_retry => qa && failed_job.is_some(),
            can_rescore => qa && transcript.is_some() && !in_pipeline,
            can_swap => qa
                && !in_pipeline
                && call.call.channels.swapped().is_some()
                && transcript.as_ref().is_some_and(crate::http::calls::two_sides),
            voices => voices,
            // Not while the call is transcribed; the API refuses while it is being scored.
            can_set_roles => qa
                && !matches!(status, CallStatus::Queued | CallStatus::Transcribing)
                && !voices.is_empty(),
            qa => qa,
            lanes => lanes,
            lane_speakers => if one_channel { "unknown".to_string() } else { call.call.channels.to_string() },
            turns => turns,
            metrics => transcript.as_ref().map(|t| metrics_view(lang, &t.metrics)),
            warnings => transcript.as_ref().map(|t| t.warnings.clone()).unwrap_or_default(),
            score => score.as_ref().map(|s| score_view(lang, s)),
            start_at => start_at.filter(|t| t.is_finite() && *t >= 0.0),
            notice => notice,
            error => error,
        },
    );
    if error.is_some() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

/// After an action: back to the page (a GET, so a reload does not repeat it), or the page
/// again with the API's refusal in the user's words.
async fn after(
    state: &AppState,
    web: &WebUser,
    nonce: &str,
    id: &str,
    result: Result<(), ApiError>,
    done: &str,
    anchor: &str,
) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/calls/{id}?done={done}{anchor}")).into_response(),
        Err(ApiError::NotFound(_)) => {
            super::error_page(StatusCode::NOT_FOUND, web.lang, nonce, Some(&web.user))
        }
        Err(ApiError::Forbidden(_)) => {
            super::error_page(StatusCode::FORBIDDEN, web.lang, nonce, Some(&web.user))
        }
        Err(e) => {
            let message = e.to_string();
            show(state, web, nonce, id, None, None, Some(message)).await
        }
    }
}

async fn retry(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
) -> Response {
    let result = crate::http::calls::retry(State(state.clone()), web.auth(), Path(id.clone()))
        .await
        .map(|_| ());
    after(&state, &web, &nonce, &id, result, "retried", "").await
}

async fn rescore(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
) -> Response {
    let result = crate::http::scores::rescore(State(state.clone()), web.auth(), Path(id.clone()))
        .await
        .map(|_| ());
    after(&state, &web, &nonce, &id, result, "rescored", "").await
}

async fn swap_speakers(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
) -> Response {
    let result =
        crate::http::calls::swap_speakers(State(state.clone()), web.auth(), Path(id.clone()))
            .await
            .map(|_| ());
    after(&state, &web, &nonce, &id, result, "swapped", "").await
}

#[derive(Debug, Deserialize)]
struct RolesForm {
    manager: Speaker,
}

async fn set_roles(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
    Form(form): Form<RolesForm>,
) -> Response {
    let result = crate::http::calls::set_roles(
        State(state.clone()),
        web.auth(),
        Path(id.clone()),
        axum::Json(crate::http::calls::SetRoles {
            manager: form.manager,
        }),
    )
    .await
    .map(|_| ());
    after(&state, &web, &nonce, &id, result, "roles", "").await
}

#[derive(Debug, Deserialize)]
struct CorrectForm {
    criterion: String,
    /// A number on the criterion's scale, or `na`.
    answer: String,
    comment: String,
}

async fn correct(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
    Form(form): Form<CorrectForm>,
) -> Response {
    let answer = match form.answer.trim() {
        "na" | "" => Ok(None),
        a => a
            .parse::<u8>()
            .map(Some)
            .map_err(|_| ApiError::Unprocessable(format!("answer {a:?} is not a number"))),
    };
    let result = match answer {
        Ok(answer) => crate::http::scores::correct(
            State(state.clone()),
            web.auth(),
            Path((id.clone(), form.criterion.clone())),
            Json(crate::http::scores::CorrectionRequest {
                answer,
                comment: form.comment,
            }),
        )
        .await
        .map(|_| ()),
        Err(e) => Err(e),
    };
    let anchor = format!("#criterion-{}", super::session::urlencode(&form.criterion));
    after(&state, &web, &nonce, &id, result, "corrected", &anchor).await
}
