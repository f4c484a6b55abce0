//! `/api/v1/import/{entity}` and `/api/v1/kpis`: CRM data in, sales KPIs out.

use std::io::{Seek, SeekFrom};

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Auth;
use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::analytics::entity::Entity;
use crate::analytics::import::{import_reader, ImportError, ImportOptions, ImportReport};
use crate::analytics::kpis::{compute, compute_by_manager, Kpis, Period};
use crate::auth::Principal;
use crate::domain::{to_datetime, Role};
use crate::store::KpiScope;

/// The analytics routes; `body_limit` caps an imported file.
pub(super) fn routes(body_limit: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .routes(routes!(kpis))
        .routes(routes!(super::reports::manager))
        .routes(routes!(super::reports::team))
        .routes(routes!(super::insights::quality_vs_outcome))
        .routes(routes!(super::insights::attention))
        .routes(routes!(super::insights::trends))
        .routes(routes!(super::deals::open))
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Store(s) => s.into(),
            ImportError::UnknownFile(_) => ApiError::BadRequest(e.to_string()),
            ImportError::NotFound(_) => ApiError::NotFound(e.to_string()),
            ImportError::Io { .. } | ImportError::Reader(_) => ApiError::Internal(e.to_string()),
        }
    }
}

/// Query of an import.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// Refuse the whole file when any row is bad (default false).
    #[serde(default)]
    pub strict: bool,
}

/// Import a CRM file.
///
/// The body is the CSV itself (`text/csv`) or a multipart form whose first file field holds it.
/// Rows are upserted by the contract's key in one transaction; refused rows are listed with
/// their line, column and reason and never stop the good ones, unless `strict=true`, which
/// refuses the whole file (422, nothing written). Importing the same file again reports every
/// row as unchanged.
#[utoipa::path(
    post, path = "/api/v1/import/{entity}", tag = "analytics",
    params(("entity" = Entity, Path, description = "managers, customers, leads, deals, deal_stages, activities or plans"), ImportQuery),
    request_body(content = String, content_type = "text/csv"),
    responses(
        (status = 200, description = "Imported (see rejected)", body = ImportReport),
        (status = 422, description = "Strict mode: a row was bad, nothing was written", body = ImportReport),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 413, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn import(
    State(state): State<AppState>,
    auth: Auth,
    Path(entity): Path<String>,
    Query(q): Query<ImportQuery>,
    request: Request,
) -> Result<(StatusCode, Json<ImportReport>), ApiError> {
    auth.require(&[Role::Admin, Role::Qa, Role::Head])?;
    let entity: Entity = entity
        .parse()
        .map_err(|e: crate::domain::ParseError| ApiError::NotFound(e.0))?;
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    // Spooled to an anonymous temporary file so the reader thread can parse at its own pace
    // while memory stays flat.
    let file = tempfile::tempfile().map_err(|e| ApiError::Internal(e.to_string()))?;
    // The same limit for a plain `text/csv` body as for a multipart one.
    let limit = state.config.max_upload_bytes;
    let name = if is_multipart {
        let mut form = Multipart::from_request(request, &state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        let field = loop {
            match form.next_field().await.map_err(multipart_error)? {
                Some(f) if f.file_name().is_some() || f.name() == Some("file") => break f,
                Some(_) => continue,
                None => return Err(ApiError::BadRequest("the form has no file field".into())),
            }
        };
        let name = field
            .file_name()
            .map(str::to_string)
            .unwrap_or_else(|| format!("{entity}.csv"));
        spool(&file, field.map(|c| c.map_err(multipart_error)), limit).await?;
        name
    } else {
        let stream = Body::into_data_stream(request.into_body()).map(|c| {
            c.map_err(|e| ApiError::BadRequest(format!("the body could not be read: {e}")))
        });
        spool(&file, stream, limit).await?;
        format!("{entity}.csv")
    };
    let options = ImportOptions { strict: q.strict };
    let report = import_reader(&state.store, entity, Box::new(file), &name, options, None).await?;
    let status = if report.committed {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, Json(report)))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::PayloadTooLarge("the file is larger than the server's limit".into())
    } else {
        ApiError::BadRequest(format!("malformed multipart body: {}", e.body_text()))
    }
}

/// Writes the body's chunks to `file` and rewinds it; more than `limit` bytes is a 413.
async fn spool(
    file: &std::fs::File,
    mut chunks: impl Stream<Item = Result<bytes::Bytes, ApiError>> + Unpin,
    limit: u64,
) -> Result<(), ApiError> {
    let internal = |e: std::io::Error| ApiError::Internal(e.to_string());
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "the file is larger than the server's limit of {limit} bytes (max_upload_bytes)"
        ))
    };
    let mut out = tokio::fs::File::from_std(file.try_clone().map_err(internal)?);
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| match e {
            ApiError::BadRequest(m) if m.contains("length limit") => too_large(),
            other => other,
        })?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(too_large());
        }
        out.write_all(&chunk).await.map_err(internal)?;
    }
    out.flush().await.map_err(internal)?;
    let mut std_file = out.into_std().await;
    std_file.seek(SeekFrom::Start(0)).map_err(internal)?;
    Ok(())
}

/// How KPIs are broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    /// One row per manager.
    Manager,
    /// One row per team.
    Team,
}

/// Query of the KPI endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KpiQuery {
    /// Period start: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, inclusive.
    pub from: String,
    /// Period end: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, exclusive.
    pub to: String,
    /// Only this manager (managers: only themselves, the default for them).
    pub manager_id: Option<String>,
    /// Only this team (not for managers).
    pub team: Option<String>,
    /// One row per manager or team instead of one total.
    pub by: Option<GroupBy>,
}

/// One row of a broken-down KPI answer.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KpiRow {
    /// The manager (by=manager).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<String>,
    /// The team (by=team).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// Its figures.
    pub kpis: Kpis,
}

/// The KPI answer: one total (`kpis`) or one row per manager or team (`rows`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KpiReport {
    /// Period start (UTC).
    pub from: chrono::DateTime<chrono::Utc>,
    /// Period end, exclusive (UTC).
    pub to: chrono::DateTime<chrono::Utc>,
    /// The manager asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manager_id: Option<String>,
    /// The team asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The breakdown asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<GroupBy>,
    /// The figures (without `by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kpis: Option<Kpis>,
    /// The rows (with `by`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rows: Option<Vec<KpiRow>>,
}

/// The scope a caller may ask for: managers only ever get their own.
fn kpi_scope(p: &Principal, q: &KpiQuery) -> Result<(Option<String>, Option<String>), ApiError> {
    let manager = q
        .manager_id
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let team = q.team.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if manager.is_some() && team.is_some() {
        return Err(ApiError::BadRequest(
            "give manager_id or team, not both".into(),
        ));
    }
    if let Some(own) = p.scope() {
        if team.is_some() || q.by == Some(GroupBy::Team) {
            return Err(ApiError::Forbidden(
                "managers see only their own figures, not a team's".into(),
            ));
        }
        if manager.is_some_and(|m| m != own.as_str()) {
            // Another manager's figures are theirs: 404, as for their calls (decision 0003).
            return Err(ApiError::not_found("manager"));
        }
        return Ok((Some(own.as_str().to_string()), None));
    }
    Ok((manager.map(str::to_string), team.map(str::to_string)))
}

/// Sales KPIs for a period.
///
/// Every KPI of the data contract over `[from, to)` (UTC): stage conversion per funnel step, win
/// rate, sales cycle, lead response time and SLA breach rate, MQL->SQL, deal size and revenue,
/// repeat-sale rate, productive-touch share, activities per won deal and plan attainment. Each
/// ratio comes with its numerator and denominator and is null when the denominator is zero.
/// `by=manager|team` answers one row per manager or team. A manager token sees only its own.
#[utoipa::path(
    get, path = "/api/v1/kpis", tag = "analytics", params(KpiQuery),
    responses(
        (status = 200, body = KpiReport),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn kpis(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<KpiQuery>,
) -> Result<Json<KpiReport>, ApiError> {
    let period = Period::parse(&q.from, &q.to).map_err(|e| ApiError::BadRequest(e.0))?;
    let (manager, team) = kpi_scope(&auth.0, &q)?;
    let store = &state.store;
    let config = &state.config.analytics;
    if auth.0.scope().is_none() {
        if let Some(m) = &manager {
            if store.crm_manager_team(m).await?.is_none() {
                return Err(ApiError::not_found(&format!(
                    "manager {m:?} in the CRM data"
                )));
            }
        }
        if let Some(t) = &team {
            if store.crm_managers_of(Some(t)).await?.is_empty() {
                return Err(ApiError::not_found(&format!("team {t:?} in the CRM data")));
            }
        }
    }
    let mut report = KpiReport {
        from: to_datetime(period.from),
        to: to_datetime(period.to),
        manager_id: manager.clone(),
        team: team.clone(),
        by: q.by,
        kpis: None,
        rows: None,
    };
    match q.by {
        None => {
            let scope = match (&manager, &team) {
                (Some(m), _) => KpiScope::Manager(m.clone()),
                (None, Some(t)) => KpiScope::Team(t.clone()),
                (None, None) => KpiScope::All,
            };
            report.kpis = Some(compute(store, config, &scope, period).await?);
        }
        Some(GroupBy::Manager) => {
            let managers = match &manager {
                Some(m) => vec![m.clone()],
                None => store.crm_managers_of(team.as_deref()).await?,
            };
            let rows: Vec<KpiRow> = compute_by_manager(store, config, &managers, period)
                .await?
                .into_iter()
                .map(|(m, kpis)| KpiRow {
                    manager_id: Some(m),
                    team: None,
                    kpis,
                })
                .collect();
            report.rows = Some(rows);
        }
        Some(GroupBy::Team) => {
            if manager.is_some() {
                return Err(ApiError::BadRequest(
                    "by=team does not go with manager_id".into(),
                ));
            }
            let teams = match &team {
                Some(t) => vec![t.clone()],
                None => store.crm_teams().await?,
            };
            let mut rows = Vec::with_capacity(teams.len());
            for t in teams {
                let kpis = compute(store, config, &KpiScope::Team(t.clone()), period).await?;
                rows.push(KpiRow {
                    manager_id: None,
                    team: Some(t),
                    kpis,
                });
            }
            report.rows = Some(rows);
        }
    }
    Ok(Json(report))
}
