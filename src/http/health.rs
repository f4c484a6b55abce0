//! Liveness, readiness and Prometheus metrics (no token needed).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::{ApiError, AppState};

/// Health answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// The process can serve: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = Health), (status = 503, body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.store.ping().await.map_err(|e| {
        tracing::warn!(error = %e, "readiness check failed");
        ApiError::Unavailable("the database is not reachable".into())
    })?;
    Ok(Json(Health { status: "ok" }))
}

/// Prometheus metrics: queue depth by state and kind, job durations, HTTP latency.
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    // Queue depth is read from the database at scrape time so it is true across all workers.
    match state.store.job_counts().await {
        Ok(counts) => {
            // Every state of every kind is set, so a state that emptied reads 0, not its old value.
            let kinds: std::collections::BTreeSet<&str> =
                counts.iter().map(|c| c.kind.as_str()).collect();
            for kind in kinds {
                for st in crate::domain::JobState::ALL {
                    let n = counts
                        .iter()
                        .find(|c| c.kind == kind && c.state == *st)
                        .map_or(0, |c| c.count);
                    metrics::gauge!("callgrade_queue_jobs", "state" => st.as_str(), "kind" => kind.to_string())
                        .set(n as f64);
                }
            }
        }
        Err(e) => tracing::warn!(error = %e, "could not read queue depth for metrics"),
    }
    (
        StatusCode::OK,
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// This module's routes (merged with the others in `http::api_router`).
pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}
