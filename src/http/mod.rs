//! The HTTP API: one router per feature module, merged here with the OpenAPI document.

pub mod analytics;
mod auth;
pub mod calls;
pub mod deals;
mod error;
mod health;
pub mod insights;
pub mod jobs;
pub mod reports;
pub mod scores;
pub mod search;
pub mod server;
pub mod tokens;
pub mod transcripts;
mod unread_body;

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;

pub use auth::Auth;
pub use error::{ApiError, ErrorBody};

use crate::config::Config;
use crate::jobs::WorkerHandle;
use crate::recordings::Recordings;
use crate::store::Store;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Settings.
    pub config: Arc<Config>,
    /// Recording files.
    pub recordings: Recordings,
    /// Wakes the in-process worker after an upload.
    pub worker: WorkerHandle,
    /// Renders Prometheus metrics.
    pub metrics: PrometheusHandle,
    /// The call page's playable audio and waveform peaks.
    pub playback: crate::playback::Playback,
    /// Failed web sign-ins, per username and address.
    pub logins: Arc<crate::web::limiter::LoginLimiter>,
    /// The open deals' win-probability model and features, kept between requests.
    pub deals: Arc<crate::analytics::deals::DealBook>,
}

/// The process-wide metrics recorder (installed once, shared by every app in a test binary).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Histograms with buckets (not summaries) so they aggregate across processes.
            let buckets = [
                0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                300.0, 1800.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets(&buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (embedding apps); then ours stays local.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "callgrade API", description = "Self-hosted call-quality scoring for sales teams."),
    modifiers(&BearerAuth),
    tags(
        (name = "calls", description = "Upload and follow calls"),
        (name = "scores", description = "Scorecards, QA corrections and calibration"),
        (name = "jobs", description = "The processing queue"),
        (name = "tokens", description = "API tokens (admin)"),
        (name = "health", description = "Probes and metrics"),
        (name = "analytics", description = "CRM import, sales KPIs and quality reports"),
        (name = "search", description = "Words across the transcripts of calls"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The body limit of an upload: the file's limit plus room for the multipart framing and the
/// text fields around the file.
fn upload_body_limit(max_upload_bytes: u64) -> usize {
    usize::try_from(max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(1 << 20)
}

/// Every route with its OpenAPI description; the served document is built from this.
fn api_router(max_upload_bytes: u64) -> OpenApiRouter<AppState> {
    let body_limit = upload_body_limit(max_upload_bytes);
    // Each feature module owns its routes; they are merged here and nowhere else.
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(calls::routes(body_limit))
        .merge(analytics::routes(body_limit))
        .merge(scores::routes())
        .merge(search::routes())
        .merge(jobs::routes())
        .merge(tokens::routes())
        .merge(health::routes())
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router(Config::default().max_upload_bytes)
        .split_for_parts()
        .1
}

/// The application's router.
pub fn router(state: AppState) -> Router {
    let (router, api) = api_router(state.config.max_upload_bytes).split_for_parts();
    let api = Arc::new(api);
    router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let api = api.clone();
                async move { axum::Json(api.as_ref().clone()) }
            }),
        )
        .merge(crate::web::routes(upload_body_limit(state.config.max_upload_bytes)).layer(web_compression()))
        .fallback(fallback)
        .layer(axum::middleware::from_fn(crate::web::guard))
        .layer(axum::middleware::from_fn(error::json_errors))
        .layer(axum::middleware::from_fn(unread_body::close_if_body_unread))
        .layer(axum::middleware::from_fn_with_state(
            state.config.http.body_timeout(),
            unread_body::body_timeout,
        ))
        .layer(axum::middleware::from_fn(record_http_metrics))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req
                .headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string();
            tracing::info_span!("request", method = %req.method(), uri = %req.uri().path(), request_id = %id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
        .with_state(state)
}

/// Gzip for pages, scripts and styles; never for audio (already compressed, and a compressed
/// answer to a `Range` request would no longer be the bytes asked for).
fn web_compression(
) -> tower_http::compression::CompressionLayer<impl tower_http::compression::Predicate> {
    use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};
    tower_http::compression::CompressionLayer::new()
        .compress_when(DefaultPredicate::new().and(NotForContentType::const_new("audio/")))
}

/// No such route: JSON under `/api/`, the web app's 404 page anywhere else.
async fn fallback(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        return ApiError::NotFound("no such endpoint".into()).into_response();
    }
    let nonce = req.extensions().get::<crate::web::Nonce>().cloned();
    crate::web::not_found(req.headers().clone(), nonce.map(axum::Extension)).await
}

async fn record_http_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let response = next.run(req).await;
    metrics::histogram!(
        "callgrade_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}

/// Parses an instant from a request (RFC 3339) into stored milliseconds.
pub(crate) fn parse_instant(field: &str, s: &str) -> Result<i64, ApiError> {
    crate::domain::parse_instant(s).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}

/// Parses a period bound from a request (`YYYY-MM-DD` at 00:00 UTC, or RFC 3339).
pub(crate) fn parse_bound(field: &str, s: &str) -> Result<i64, ApiError> {
    crate::domain::parse_bound(s).map_err(|e| ApiError::BadRequest(format!("{field}: {e}")))
}
