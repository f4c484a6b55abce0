//! `/api/v1/jobs`: the queue as operators see it.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::auth::Auth;
use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::domain::{to_datetime, CallId, JobId, JobState, Role};
use crate::store::JobRecord;

/// A job as the API shows it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobView {
    /// Identifier.
    pub id: JobId,
    /// Kind, e.g. `transcribe`.
    pub kind: String,
    /// The call it works on.
    pub call_id: Option<CallId>,
    /// State.
    pub state: JobState,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// Not before.
    pub run_at: chrono::DateTime<chrono::Utc>,
    /// The worker holding it.
    pub worker_id: Option<String>,
    /// The last error.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Finished.
    pub finished_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<JobRecord> for JobView {
    fn from(j: JobRecord) -> Self {
        Self {
            id: j.id,
            kind: j.kind,
            call_id: j.call_id,
            state: j.state,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_at: to_datetime(j.run_at),
            worker_id: j.worker_id,
            last_error: j.last_error,
            created_at: to_datetime(j.created_at),
            finished_at: j.finished_at.map(to_datetime),
        }
    }
}

/// Jobs in one (state, kind).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobCount {
    /// State.
    pub state: JobState,
    /// Kind.
    pub kind: String,
    /// How many.
    pub count: i64,
}

/// Filters for listing jobs.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListJobsQuery {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size (1-200, default 50).
    pub limit: Option<i64>,
}

/// Counts by state and kind, and a page of jobs.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobPage {
    /// Jobs per (state, kind), over the whole queue.
    pub counts: Vec<JobCount>,
    /// Jobs, newest first.
    pub items: Vec<JobView>,
    /// Cursor of the next page.
    pub next_cursor: Option<String>,
}

/// List jobs with counts per state and kind.
#[utoipa::path(
    get, path = "/api/v1/jobs", tag = "jobs", params(ListJobsQuery),
    responses((status = 200, body = JobPage), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListJobsQuery>,
) -> Result<Json<JobPage>, ApiError> {
    auth.require(&[Role::Admin, Role::Qa, Role::Head])?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 200".into(),
        ));
    }
    let before = q
        .cursor
        .as_deref()
        .map(str::parse::<JobId>)
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("cursor: {e}")))?;
    let counts = state.store.job_counts().await?;
    let items = state.store.list_jobs(q.state, before, limit).await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|j| j.id.to_string()))
        .flatten();
    Ok(Json(JobPage {
        counts: counts
            .into_iter()
            .map(|c| JobCount {
                state: c.state,
                kind: c.kind,
                count: c.count,
            })
            .collect(),
        items: items.into_iter().map(JobView::from).collect(),
        next_cursor,
    }))
}

async fn find_job(state: &AppState, id: &str) -> Result<JobRecord, ApiError> {
    let id: JobId = id.parse().map_err(|_| ApiError::not_found("job"))?;
    state
        .store
        .get_job(id)
        .await?
        .ok_or_else(|| ApiError::not_found("job"))
}

/// Cancel a queued or running job; its call is marked failed.
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/cancel", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    auth.require(&[Role::Admin, Role::Qa])?;
    let job = find_job(&state, &id).await?;
    match state.store.cancel_job(job.id).await? {
        Some(true) => state.worker.stop(job.id),
        Some(false) => {
            return Err(ApiError::Conflict(format!(
                "the job is already {}",
                job.state
            )))
        }
        None => return Err(ApiError::not_found("job")),
    }
    let job = find_job(&state, &id).await?;
    Ok(Json(job.into()))
}

/// Queue a dead or cancelled job again with fresh attempts.
#[utoipa::path(
    post, path = "/api/v1/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = JobView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<Json<JobView>, ApiError> {
    auth.require(&[Role::Admin, Role::Qa])?;
    let job = find_job(&state, &id).await?;
    super::calls::restart_job(&state, &job).await?;
    let job = find_job(&state, &id).await?;
    Ok(Json(job.into()))
}

/// This module's routes (merged with the others in `http::api_router`).
pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(cancel))
        .routes(routes!(retry))
}
