//! `/api/v1/managers/{id}/report` and `/api/v1/teams/{team}/report`: quality reports.

use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Auth;
use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::analytics::kpis::Period;
use crate::analytics::reports::{manager_report, team_report, ManagerReport, TeamReport};

/// A report's period.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Period start: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, inclusive.
    pub from: String,
    /// Period end: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, exclusive.
    pub to: String,
}

impl PeriodQuery {
    pub(super) fn period(&self) -> Result<Period, ApiError> {
        Period::parse(&self.from, &self.to).map_err(|e| ApiError::BadRequest(e.0))
    }
}

/// A manager's quality report.
///
/// Calls analysed, average overall score and per criterion (with the team's average beside it),
/// weekly trend, strongest and weakest criteria, the latest coaching points and next steps,
/// conversation figures against the team, and the manager's KPIs. Managers see only their own.
#[utoipa::path(
    get, path = "/api/v1/managers/{id}/report", tag = "analytics",
    params(("id" = String, Path, description = "Manager id"), PeriodQuery),
    responses(
        (status = 200, body = ManagerReport),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn manager(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<ManagerReport>, ApiError> {
    let period = q.period()?;
    if let Some(own) = auth.0.scope() {
        if own.as_str() != id {
            // Another manager's report is theirs: 404, as for their calls (decision 0003).
            return Err(ApiError::not_found(&format!("manager {id:?}")));
        }
    }
    let team = state.store.crm_manager_team(&id).await?;
    if team.is_none() && auth.0.scope().is_none() {
        // Calls may name a manager that the CRM does not (yet) know; the report still shows
        // their calls, but with no team to compare with.
        let known = state.store.manager_has_scored_calls(&id).await?;
        if !known {
            return Err(ApiError::not_found(&format!("manager {id:?}")));
        }
    }
    let report = manager_report(
        &state.store,
        &state.config.analytics,
        &id,
        team.flatten(),
        period,
    )
    .await?;
    Ok(Json(report))
}

/// A team's quality report, with one row per manager.
#[utoipa::path(
    get, path = "/api/v1/teams/{team}/report", tag = "analytics",
    params(("team" = String, Path, description = "Team name from managers.csv"), PeriodQuery),
    responses(
        (status = 200, body = TeamReport),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn team(
    State(state): State<AppState>,
    auth: Auth,
    Path(team): Path<String>,
    Query(q): Query<PeriodQuery>,
) -> Result<Json<TeamReport>, ApiError> {
    let period = q.period()?;
    if auth.0.scope().is_some() {
        return Err(ApiError::Forbidden(
            "managers see only their own report, not a team's".into(),
        ));
    }
    if state.store.crm_managers_of(Some(&team)).await?.is_empty() {
        return Err(ApiError::not_found(&format!("team {team:?}")));
    }
    Ok(Json(
        team_report(&state.store, &state.config.analytics, &team, period).await?,
    ))
}
