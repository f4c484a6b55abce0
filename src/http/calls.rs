//! `/api/v1/calls`: upload, list, read, delete and retry calls.

use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Auth;
use super::error::ErrorBody;
use super::{parse_bound, parse_instant, ApiError, AppState};
use crate::domain::{
    to_datetime, CallId, CallStatus, ChannelMap, Direction, JobState, Language, ManagerId, Role,
    Speaker,
};
use crate::pipeline::Stage;
use crate::recordings::IncomingRecording;
use crate::store::{CallFilter, CallRecord, InsertCall, JobRecord, NewCall, NewJob};
use crate::transcript::metrics::ConversationMetrics;

/// A call as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallView {
    /// Identifier.
    pub id: CallId,
    /// The salesperson.
    pub manager_id: ManagerId,
    /// CRM deal.
    pub deal_id: Option<String>,
    /// CRM customer.
    pub customer_id: Option<String>,
    /// Inbound or outbound.
    pub direction: Option<Direction>,
    /// When the call took place.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Spoken language.
    pub language: Language,
    /// Speaker per channel, left first.
    #[schema(value_type = String, example = "manager,client")]
    pub channels: ChannelMap,
    /// Who speaks first on a one-channel recording, when the upload or QA said it (otherwise the
    /// roles rule decides).
    pub first_speaker: Option<Speaker>,
    /// The uploaded file's name (metadata only).
    pub original_filename: Option<String>,
    /// Size in bytes.
    pub size_bytes: i64,
    /// SHA-256 of the recording.
    pub sha256: String,
    /// Pipeline state.
    pub status: CallStatus,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Accepted at.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last change.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// This call's URL.
    pub url: String,
}

impl From<CallRecord> for CallView {
    fn from(c: CallRecord) -> Self {
        Self {
            url: format!("/api/v1/calls/{}", c.call.id),
            id: c.call.id,
            manager_id: c.call.manager_id,
            deal_id: c.call.deal_id,
            customer_id: c.call.customer_id,
            direction: c.call.direction,
            started_at: c.call.started_at.map(to_datetime),
            language: c.call.language,
            channels: c.call.channels,
            first_speaker: c.call.first_speaker,
            original_filename: c.call.original_filename,
            size_bytes: c.call.size_bytes,
            sha256: c.call.sha256,
            status: c.status,
            failure_reason: c.failure_reason,
            created_at: to_datetime(c.created_at),
            updated_at: to_datetime(c.updated_at),
        }
    }
}

/// The answer to an upload.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UploadResponse {
    /// Identifier of the (new or existing) call.
    pub id: CallId,
    /// Its pipeline state.
    pub status: CallStatus,
    /// Its URL.
    pub url: String,
    /// True when this recording was already uploaded for this manager: nothing new was queued.
    pub duplicate: bool,
}

/// The multipart form of an upload (for the OpenAPI document).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The recording.
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// The salesperson (required; managers may omit it to mean themselves).
    manager_id: String,
    /// CRM deal.
    deal_id: Option<String>,
    /// CRM customer.
    customer_id: Option<String>,
    /// `inbound` or `outbound`.
    direction: Option<Direction>,
    /// RFC 3339 time the call started.
    started_at: Option<String>,
    /// `auto`, `ru` or `en`.
    language: Option<Language>,
    /// Speakers by channel, e.g. `manager,client`.
    channels: Option<String>,
    /// One-channel recordings: who speaks first, `manager,client` or `client,manager`; `auto`
    /// (the default) leaves it to the roles rule. Ignored for stereo recordings.
    speakers: Option<String>,
}

/// Most bytes accepted in one text field of the upload form.
const MAX_FIELD_BYTES: usize = 4096;

#[derive(Default)]
struct UploadFields {
    manager_id: Option<String>,
    deal_id: Option<String>,
    customer_id: Option<String>,
    direction: Option<String>,
    started_at: Option<String>,
    language: Option<String>,
    channels: Option<String>,
    speakers: Option<String>,
    filename: Option<String>,
    content_type: Option<String>,
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if super::unread_body::timed_out(&e) {
        ApiError::RequestTimeout(
            "the upload stalled: no data arrived for longer than the server waits".into(),
        )
    } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the upload is larger than the server's limit".into())
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Keeps only printable characters of a client-supplied file name, for display.
fn clean_filename(name: &str) -> String {
    name.chars().filter(|c| !c.is_control()).take(255).collect()
}

/// Upload a recording.
///
/// The body is streamed to disk and hashed on the way; the call is accepted (202) only after the
/// file is durable and the call and its first job are committed. The same file uploaded again
/// for the same manager answers 200 with the existing call and `"duplicate": true`.
#[utoipa::path(
    post, path = "/api/v1/calls", tag = "calls",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "Accepted and queued", body = UploadResponse),
        (status = 200, description = "Already uploaded", body = UploadResponse),
        (status = 400, description = "Bad form", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 408, description = "The body stalled", body = ErrorBody),
        (status = 413, description = "Over the size limit", body = ErrorBody),
        (status = 415, description = "Not an audio recording", body = ErrorBody),
        (status = 422, description = "A manager tagged another manager's CRM deal", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    State(state): State<AppState>,
    auth: Auth,
    mut multipart: Multipart,
) -> Result<(StatusCode, Json<UploadResponse>), ApiError> {
    let principal = auth
        .require(&[Role::Admin, Role::Qa, Role::Manager])?
        .clone();
    let mut fields = UploadFields::default();
    let mut incoming: Option<IncomingRecording> = None;
    let result = read_form(&state, &mut multipart, &mut fields, &mut incoming).await;
    let Some(recording) = incoming else {
        result?;
        return Err(ApiError::BadRequest("the form has no 'file' field".into()));
    };
    let checked = match result.and_then(|()| validate(&principal, &fields)) {
        Ok(call) => check_deal(&state, &principal, call).await,
        Err(e) => Err(e),
    };
    let call = match checked {
        Ok(call) => call,
        Err(e) => {
            recording.abort().await;
            return Err(e);
        }
    };
    if recording.size() == 0 {
        recording.abort().await;
        return Err(ApiError::BadRequest("the uploaded file is empty".into()));
    }
    // The content decides, never the file name or the declared type.
    if let Err(e) = crate::audio::sniff(recording.head()) {
        recording.abort().await;
        return Err(ApiError::UnsupportedMediaType(format!(
            "not a supported audio recording: {e}"
        )));
    }
    let call_id = CallId::new();
    let stored = recording.finish(&state.recordings, call_id).await?;
    let new = NewCall {
        id: call_id,
        size_bytes: i64::try_from(stored.size).unwrap_or(i64::MAX),
        sha256: stored.sha256,
        storage_key: stored.key.clone(),
        original_filename: fields.filename.as_deref().map(clean_filename),
        content_type: fields.content_type,
        ..call
    };
    let job = NewJob::for_call(
        Stage::FIRST.kind(),
        call_id,
        state.config.queue.max_attempts,
    );
    let inserted = state.store.insert_call(&new, &job).await;
    let (status, record, duplicate) = match inserted {
        Ok(InsertCall::Created(c)) => (StatusCode::ACCEPTED, c, false),
        Ok(InsertCall::Duplicate(c)) => {
            state.recordings.remove(&stored.key).await?;
            (StatusCode::OK, c, true)
        }
        Err(e) => {
            // Nothing refers to the file: do not leave it behind.
            let _ = state.recordings.remove(&stored.key).await;
            return Err(e.into());
        }
    };
    if !duplicate {
        state.worker.wake();
        tracing::info!(call = %record.call.id, manager = %record.call.manager_id, bytes = record.call.size_bytes, "call accepted");
    }
    let view = CallView::from(record);
    Ok((
        status,
        Json(UploadResponse {
            id: view.id,
            status: view.status,
            url: view.url,
            duplicate,
        }),
    ))
}

async fn read_form(
    state: &AppState,
    multipart: &mut Multipart,
    fields: &mut UploadFields,
    incoming: &mut Option<IncomingRecording>,
) -> Result<(), ApiError> {
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if incoming.is_some() {
                return Err(ApiError::BadRequest(
                    "only one 'file' field is allowed".into(),
                ));
            }
            fields.filename = field.file_name().map(str::to_string);
            fields.content_type = field.content_type().map(str::to_string);
            let rec = incoming.insert(
                state
                    .recordings
                    .begin(state.config.max_upload_bytes)
                    .await?,
            );
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                rec.write(chunk).await?;
            }
            continue;
        }
        let slot = match name.as_str() {
            "manager_id" => &mut fields.manager_id,
            "deal_id" => &mut fields.deal_id,
            "customer_id" => &mut fields.customer_id,
            "direction" => &mut fields.direction,
            "started_at" => &mut fields.started_at,
            "language" => &mut fields.language,
            "channels" => &mut fields.channels,
            "speakers" => &mut fields.speakers,
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown form field {other:?}"
                )))
            }
        };
        let mut value = Vec::new();
        while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
            value.extend_from_slice(&chunk);
            if value.len() > MAX_FIELD_BYTES {
                return Err(ApiError::BadRequest(format!("field {name:?} is too long")));
            }
        }
        let text = String::from_utf8(value)
            .map_err(|_| ApiError::BadRequest(format!("field {name:?} is not UTF-8 text")))?;
        let text = text.trim().to_string();
        *slot = (!text.is_empty()).then_some(text);
    }
    Ok(())
}

fn bad(field: &str) -> impl Fn(crate::domain::ParseError) -> ApiError + '_ {
    move |e| ApiError::BadRequest(format!("{field}: {e}"))
}

/// Checks the form's fields and the caller's right to upload for that manager.
fn validate(principal: &crate::auth::Principal, f: &UploadFields) -> Result<NewCall, ApiError> {
    let manager_id = match (&f.manager_id, principal.scope()) {
        (Some(m), _) => ManagerId::parse(m).map_err(bad("manager_id"))?,
        (None, Some(own)) => own.clone(),
        (None, None) => return Err(ApiError::BadRequest("manager_id is required".into())),
    };
    if !principal.can_see_manager(&manager_id) {
        return Err(ApiError::Forbidden(
            "managers may upload only their own calls".into(),
        ));
    }
    let started_at = f
        .started_at
        .as_deref()
        .map(|s| parse_instant("started_at", s))
        .transpose()?;
    Ok(NewCall {
        id: CallId::new(),
        manager_id,
        deal_id: f.deal_id.clone(),
        customer_id: f.customer_id.clone(),
        direction: f
            .direction
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(bad("direction"))?,
        started_at,
        language: f
            .language
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(bad("language"))?
            .unwrap_or(Language::Auto),
        channels: f
            .channels
            .as_deref()
            .map(ChannelMap::parse)
            .transpose()
            .map_err(bad("channels"))?
            .unwrap_or_default(),
        first_speaker: f
            .speakers
            .as_deref()
            .map(first_speaker)
            .transpose()
            .map_err(bad("speakers"))?
            .flatten(),
        original_filename: None,
        content_type: None,
        size_bytes: 0,
        sha256: String::new(),
        storage_key: String::new(),
    })
}

/// The `speakers` field: who speaks first on a one-channel recording. `auto` is `None`.
fn first_speaker(s: &str) -> Result<Option<Speaker>, crate::domain::ParseError> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(None);
    }
    match ChannelMap::parse(s)?.speakers() {
        [first, second] if first.other() == Some(*second) => Ok(Some(*first)),
        _ => Err(crate::domain::ParseError(
            "must be auto, manager,client (the manager speaks first) or client,manager".into(),
        )),
    }
}

/// A manager may tag a call only with a deal the CRM gives to them or does not know yet: a deal
/// id is free text, and another manager's deal would carry this call into their deal views.
async fn check_deal(
    state: &AppState,
    principal: &crate::auth::Principal,
    call: NewCall,
) -> Result<NewCall, ApiError> {
    let (Some(own), Some(deal)) = (principal.scope(), call.deal_id.as_deref()) else {
        return Ok(call);
    };
    match state.store.crm_deal_manager(deal).await? {
        Some(owner) if owner != own.as_str() => Err(ApiError::Unprocessable(format!(
            "deal_id: the CRM gives deal {deal:?} to another manager; tag the call with one of \
             your own deals, or leave deal_id empty and ask QA to link it"
        ))),
        _ => Ok(call),
    }
}

/// Filters for listing calls.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListCallsQuery {
    /// Only this manager's calls.
    pub manager_id: Option<String>,
    /// Only calls in this state.
    pub status: Option<CallStatus>,
    /// Uploaded at or after (RFC 3339).
    pub from: Option<String>,
    /// Uploaded before (RFC 3339).
    pub to: Option<String>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1-200, default 50).
    pub limit: Option<i64>,
}

/// A page of calls.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallPage {
    /// Calls, newest first.
    pub items: Vec<CallView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// List calls, newest first, with keyset pagination.
#[utoipa::path(
    get, path = "/api/v1/calls", tag = "calls", params(ListCallsQuery),
    responses((status = 200, body = CallPage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListCallsQuery>,
) -> Result<Json<CallPage>, ApiError> {
    let principal = &auth.0;
    let requested = q
        .manager_id
        .as_deref()
        .map(ManagerId::parse)
        .transpose()
        .map_err(bad("manager_id"))?;
    let manager_id = match (requested, principal.scope()) {
        (Some(m), Some(own)) if &m != own => return Err(ApiError::not_found("manager")),
        (Some(m), _) => Some(m),
        (None, own) => own.cloned(),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        ));
    }
    let filter = CallFilter {
        manager_id,
        status: q.status,
        from: q
            .from
            .as_deref()
            .map(|s| parse_bound("from", s))
            .transpose()?,
        to: q.to.as_deref().map(|s| parse_bound("to", s)).transpose()?,
        before: q
            .cursor
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(bad("cursor"))?,
        limit,
    };
    let items = state.store.list_calls(&filter).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|c| c.call.id.to_string()))
        .flatten();
    Ok(Json(CallPage {
        items: items.into_iter().map(CallView::from).collect(),
        next_cursor,
    }))
}

/// A call and its latest job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CallDetail {
    /// The call.
    #[serde(flatten)]
    pub call: CallView,
    /// The most recent pipeline job.
    pub latest_job: Option<super::jobs::JobView>,
    /// Conversation metrics, once the call is transcribed.
    pub metrics: Option<ConversationMetrics>,
    /// Where the transcript is, once the call is transcribed.
    pub transcript_url: Option<String>,
}

/// Loads a call the caller may see, or 404 (also for other managers' calls).
pub(crate) async fn visible_call(
    state: &AppState,
    auth: &Auth,
    id: &str,
) -> Result<CallRecord, ApiError> {
    let id: CallId = id.parse().map_err(|_| ApiError::not_found("call"))?;
    let call = state
        .store
        .get_call(id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    if !auth.0.can_see_manager(&call.call.manager_id) {
        return Err(ApiError::not_found("call"));
    }
    Ok(call)
}

/// Read one call.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}", tag = "calls", params(("id" = String, Path, description = "Call id")),
    responses((status = 200, body = CallDetail), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<CallDetail>, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    let latest_job = state
        .store
        .latest_job_for_call(call.call.id)
        .await?
        .map(super::jobs::JobView::from);
    let transcript = state.store.get_transcript(call.call.id).await?;
    Ok(Json(CallDetail {
        transcript_url: transcript
            .as_ref()
            .map(|_| format!("/api/v1/calls/{}/transcript", call.call.id)),
        metrics: transcript.map(|t| t.metrics),
        call: call.into(),
        latest_job,
    }))
}

/// Delete a call, its recording and everything derived from it.
#[utoipa::path(
    delete, path = "/api/v1/calls/{id}", tag = "calls", params(("id" = String, Path, description = "Call id")),
    responses((status = 204, description = "Deleted"), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    auth.require(&[Role::Admin, Role::Qa])?;
    if let Some(key) = state.store.delete_call(call.call.id).await? {
        state.recordings.remove(&key).await?;
    }
    state.playback.remove(call.call.id).await;
    tracing::info!(call = %call.call.id, by = %auth.0.name, "call deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// What exchanging a call's speakers changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpeakersSwapped {
    /// The call's speakers by channel now, left first.
    #[schema(example = "client,manager")]
    pub channels: String,
    /// Whether the call was queued to be scored again (false when it already was).
    pub rescore_queued: bool,
}

/// Exchange the manager and the client of a stereo call whose channels were the other way
/// round (admin, QA): the transcript's speakers and conversation metrics change at once, the
/// call keeps the new channel map for any later transcription, and it is scored again, since
/// the scorecard judged the wrong person.
#[utoipa::path(
    post, path = "/api/v1/calls/{id}/swap-speakers", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, body = SpeakersSwapped),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "Not a stereo call with a manager and a client, or not transcribed yet"),
    ),
    security(("bearer" = []))
)]
pub async fn swap_speakers(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<SpeakersSwapped>, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    auth.require(&[Role::Admin, Role::Qa])?;
    let t = transcript_to_change(&state, &call).await?;
    if t.speakers == [Speaker::Unknown] {
        return Err(ApiError::Conflict(
            "the call was transcribed as one unknown speaker (a mono recording whose voices were \
             not separated): there is no manager and client to swap"
                .into(),
        ));
    }
    if !two_sides(&t) {
        return Err(ApiError::Conflict(format!(
            "only a call with a manager and a client can have them swapped (this transcript's \
             speakers: {}){}",
            speaker_list(&t),
            if t.speakers.iter().any(|s| s.is_voice()) {
                "; name the manager with POST /api/v1/calls/{id}/roles"
            } else {
                ""
            }
        )));
    }
    set_manager(&state, &auth, &call, t, Speaker::Client)
        .await
        .map(Json)
}

/// Who the manager is, among the speakers the transcript names now.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetRoles {
    /// The speaker who is the manager: `speaker_1` or `speaker_2` for the voices of a
    /// separated mono call whose roles were not known, or `client` to swap the two sides.
    #[schema(example = "speaker_2")]
    pub manager: Speaker,
}

/// Name the manager of a call (admin, QA): for a mono call whose voices were separated but
/// whose roles the rule could not tell (`speaker_1`, `speaker_2`), or to correct one it got the
/// wrong way round. The named speaker becomes the manager and every other the client; the
/// metrics are recomputed, the call keeps the roles for a later transcription, and it is
/// scored again.
#[utoipa::path(
    post, path = "/api/v1/calls/{id}/roles", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    request_body = SetRoles,
    responses(
        (status = 200, body = SpeakersSwapped),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "One unknown speaker, no such speaker in the transcript, or not transcribed yet"),
    ),
    security(("bearer" = []))
)]
pub async fn set_roles(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Json(body): Json<SetRoles>,
) -> Result<Json<SpeakersSwapped>, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    auth.require(&[Role::Admin, Role::Qa])?;
    let t = transcript_to_change(&state, &call).await?;
    if t.speakers.len() < 2 || !t.speakers.contains(&body.manager) {
        return Err(ApiError::Conflict(format!(
            "the transcript has no speaker {} to make the manager (its speakers: {})",
            body.manager,
            speaker_list(&t)
        )));
    }
    set_manager(&state, &auth, &call, t, body.manager)
        .await
        .map(Json)
}

fn speaker_list(t: &crate::transcript::Transcript) -> String {
    t.speakers
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The transcript of a call whose speakers may change now: transcribed, and not being scored
/// at this moment (a scorecard being written would judge the speakers as they were; one still
/// waiting in the queue reads the changed transcript).
async fn transcript_to_change(
    state: &AppState,
    call: &crate::store::CallRecord,
) -> Result<crate::transcript::Transcript, ApiError> {
    if matches!(call.status, CallStatus::Queued | CallStatus::Transcribing) {
        return Err(ApiError::Conflict(format!(
            "the call is {}: change its speakers once it is transcribed",
            call.status
        )));
    }
    let scoring_now = state
        .store
        .latest_job_for_call(call.call.id)
        .await?
        .is_some_and(|j| j.kind == Stage::Score.kind() && j.state == JobState::Running);
    if scoring_now {
        return Err(ApiError::Conflict(
            "the call is being scored right now: change its speakers once that is done".into(),
        ));
    }
    state
        .store
        .get_transcript(call.call.id)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "the call has no transcript (it is {})",
                call.status
            ))
        })
}

/// Makes `manager` (a speaker the transcript names) the manager and every other speaker the
/// client; stores the transcript with its recomputed metrics and the call's new channel map in
/// one transaction, and queues a rescore.
async fn set_manager(
    state: &AppState,
    auth: &Auth,
    call: &crate::store::CallRecord,
    mut t: crate::transcript::Transcript,
    manager: Speaker,
) -> Result<SpeakersSwapped, ApiError> {
    // Separated from one channel: by the rule (roles noted) or still as voices.
    let separated = t.processing.speaker_roles.is_some() || t.speakers.iter().any(|s| s.is_voice());
    let role = |s: Speaker| {
        if s == manager {
            Speaker::Manager
        } else {
            Speaker::Client
        }
    };
    for segment in &mut t.segments {
        segment.speaker = role(segment.speaker);
    }
    for speaker in &mut t.speakers {
        *speaker = role(*speaker);
    }
    // A stereo call's speakers are its channels'; a separated mono call's are its voices' in
    // order of first speech, which a mono upload's channel map names (`client,manager`: the
    // client speaks first). Either way the new map is the transcript's first two speakers.
    let names: Vec<&str> = t.speakers.iter().take(2).map(|s| s.as_str()).collect();
    let channels = crate::domain::ChannelMap::parse(&names.join(","))
        .map_err(|e| ApiError::Conflict(format!("cannot store these roles: {e}")))?;
    t.metrics = crate::transcript::metrics::compute(
        &t.segments,
        t.duration_s,
        Language::of_code(&t.language),
        &state.config.metrics,
    );
    if let Some(note) = &mut t.processing.speaker_roles {
        *note = format!("set by {} (QA); before: {note}", auth.0.name);
    }
    t.created_at = crate::domain::now_millis();
    // A separated one-channel call also keeps who speaks first, which the roles rule would
    // otherwise decide again when the recording is transcribed again.
    let first_speaker = t.speakers.first().copied().filter(|_| separated);
    state
        .store
        .reassign_speakers(&t, &channels, first_speaker)
        .await?;
    let rescore_queued = state
        .store
        .queue_stage(call.call.id, Stage::Score, state.config.queue.max_attempts)
        .await?;
    if rescore_queued {
        state.worker.wake();
    }
    tracing::info!(call = %call.call.id, by = %auth.0.name, %channels, %manager, "speaker roles set");
    Ok(SpeakersSwapped {
        channels: channels.to_string(),
        rescore_queued,
    })
}

/// Whether `t` has a manager's and a client's channel, the only speakers that can be swapped.
pub fn two_sides(t: &crate::transcript::Transcript) -> bool {
    t.speakers.len() == 2 && t.speakers.iter().all(|s| s.other().is_some())
}

/// Run a failed call's pipeline again from the stage that failed.
#[utoipa::path(
    post, path = "/api/v1/calls/{id}/retry", tag = "calls", params(("id" = String, Path, description = "Call id")),
    responses((status = 202, body = CallView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<CallView>), ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    auth.require(&[Role::Admin, Role::Qa])?;
    let job = state.store.latest_job_for_call(call.call.id).await?;
    let Some(job) = job.filter(|j| matches!(j.state, JobState::Dead | JobState::Cancelled)) else {
        return Err(ApiError::Conflict(format!(
            "call is {}; only failed calls can be retried",
            call.status
        )));
    };
    restart_job(&state, &job).await?;
    let call = state
        .store
        .get_call(call.call.id)
        .await?
        .ok_or_else(|| ApiError::not_found("call"))?;
    Ok((StatusCode::ACCEPTED, Json(call.into())))
}

/// Puts a dead or cancelled job back in the queue and moves its call back to waiting.
pub(super) async fn restart_job(state: &AppState, job: &JobRecord) -> Result<(), ApiError> {
    let status = Stage::from_kind(&job.kind)
        .map(Stage::waiting_status)
        .unwrap_or(CallStatus::Queued);
    match state.store.retry_job(job.id, status).await? {
        Some(true) => {
            state.worker.wake();
            Ok(())
        }
        Some(false) => Err(ApiError::Conflict(
            "the job is not dead or cancelled, or is already queued again".into(),
        )),
        None => Err(ApiError::not_found("job")),
    }
}

/// The call's recording for playback, with HTTP Range support.
///
/// The original file when browsers play its format (MP3, PCM WAV, FLAC, Ogg, MP4); otherwise an
/// Ogg Opus made from it on first request and kept (A-law/mu-law/ADPCM WAV, Ogg FLAC, raw AAC).
/// `Range: bytes=a-b` answers 206 with that part, so playback of a long call starts at once.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}/audio", tag = "calls",
    params(("id" = String, Path, description = "Call id"), ("Range" = Option<String>, Header, description = "Byte range, e.g. `bytes=0-65535`")),
    responses(
        (status = 200, description = "The whole recording", content_type = "audio/*"),
        (status = 206, description = "The requested range", content_type = "audio/*"),
        (status = 404, body = ErrorBody), (status = 416, description = "Range past the end"),
        (status = 422, body = ErrorBody, description = "The recording cannot be decoded for playback"),
    ),
    security(("bearer" = []))
)]
pub async fn audio(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    request: axum::extract::Request,
) -> Result<axum::response::Response, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    crate::web::call::send_audio(&state, &call, auth.0.role, request).await
}

/// The recording's waveform: per channel, the largest absolute sample of each short bucket.
///
/// Computed on the server on first request and kept, so a page draws a one-hour call from a
/// few thousand numbers instead of decoding it.
#[utoipa::path(
    get, path = "/api/v1/calls/{id}/peaks", tag = "calls",
    params(("id" = String, Path, description = "Call id")),
    responses(
        (status = 200, body = crate::playback::Peaks),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "The recording cannot be decoded"),
    ),
    security(("bearer" = []))
)]
pub async fn peaks(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let call = visible_call(&state, &auth, &id).await?;
    crate::web::call::send_peaks(&state, &call).await
}

/// This module's routes (merged with the others in `http::api_router`).
pub(super) fn routes(body_limit: usize) -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(upload, list))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .routes(routes!(get, delete))
        .routes(routes!(retry))
        .routes(routes!(swap_speakers))
        .routes(routes!(set_roles))
        .routes(routes!(audio))
        .routes(routes!(peaks))
        .routes(routes!(super::transcripts::get))
}
