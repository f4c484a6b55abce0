//! `/api/v1/insights/...`: what links call quality to outcomes, and who may need support.
//! For the people who coach (admin, qa, head), not for managers.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Auth;
use super::error::ErrorBody;
use super::reports::PeriodQuery;
use super::{ApiError, AppState};
use crate::analytics::insights::{attention as find_attention, quality_vs_outcome as qvo};
use crate::analytics::insights::{Attention, QualityVsOutcome};
use crate::analytics::kpis::Period;
use crate::analytics::trends::{trends as weekly_trends, Trends};
use crate::domain::{now_millis, Role};
use crate::store::KpiScope;

const COACHES: &[Role] = &[Role::Admin, Role::Qa, Role::Head];
/// The attention list looks at the last four weeks unless told otherwise.
const DEFAULT_WINDOW_MS: i64 = 28 * 86_400_000;

/// Period and optional team of the quality-vs-outcome insight.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutcomeQuery {
    /// Deals closed from: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, inclusive.
    pub from: String,
    /// Until: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, exclusive.
    pub to: String,
    /// Only the deals of this team's managers (default: everyone's).
    pub team: Option<String>,
}

/// Win rates by call quality.
///
/// Over deals closed in `[from, to)` that have scored calls: win rate by average-score band; per
/// criterion, the win rate when it was met and when not, the lift, 95% Wilson intervals and
/// sample sizes (`insufficient_data` below `analytics.min_sample`); per manager, average quality
/// beside win rate. Correlation, not causation. `team` narrows it to one team's deals.
#[utoipa::path(
    get, path = "/api/v1/insights/quality-vs-outcome", tag = "analytics", params(OutcomeQuery),
    responses(
        (status = 200, body = QualityVsOutcome),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn quality_vs_outcome(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<OutcomeQuery>,
) -> Result<Json<QualityVsOutcome>, ApiError> {
    auth.require(COACHES)?;
    let period = Period::parse(&q.from, &q.to).map_err(|e| ApiError::BadRequest(e.0))?;
    let scope = match q.team.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
        Some(team) => {
            if state.store.crm_managers_of(Some(team)).await?.is_empty() {
                return Err(ApiError::not_found(&format!(
                    "team {team:?} in the CRM data"
                )));
            }
            KpiScope::Team(team.to_string())
        }
        None => KpiScope::All,
    };
    Ok(Json(
        qvo(&state.store, &state.config.analytics, &scope, period).await?,
    ))
}

/// Period of the attention list (both optional: the last 28 days).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttentionQuery {
    /// Period start (`YYYY-MM-DD` or RFC 3339); default 28 days before `to`.
    pub from: Option<String>,
    /// Period end, exclusive; default now.
    pub to: Option<String>,
    /// Only this team's managers (404 for a team the CRM data does not name).
    pub team: Option<String>,
}

/// Managers who may need support.
///
/// Managers well behind their team on call quality, win rate, SLA breach rate or plan
/// attainment, each with the figures, the calls behind them and a suggested training focus
/// (their weakest criteria). Advice for a person, not a verdict; nothing is flagged on fewer
/// than `analytics.min_sample` calls, deals or leads, and a team of one is never compared.
#[utoipa::path(
    get, path = "/api/v1/insights/attention", tag = "analytics", params(AttentionQuery),
    responses(
        (status = 200, body = Attention),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn attention(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<AttentionQuery>,
) -> Result<Json<Attention>, ApiError> {
    auth.require(COACHES)?;
    let period = match (&q.from, &q.to) {
        (Some(from), Some(to)) => PeriodQuery {
            from: from.clone(),
            to: to.clone(),
        }
        .period()?,
        (None, None) => {
            let to = now_millis();
            Period {
                from: to - DEFAULT_WINDOW_MS,
                to,
            }
        }
        _ => {
            return Err(ApiError::BadRequest(
                "give both from and to, or neither".into(),
            ))
        }
    };
    if let Some(t) = &q.team {
        if state.store.crm_managers_of(Some(t)).await?.is_empty() {
            return Err(ApiError::not_found(&format!("team {t:?} in the CRM data")));
        }
    }
    Ok(Json(
        find_attention(
            &state.store,
            &state.config.analytics,
            period,
            q.team.as_deref(),
        )
        .await?,
    ))
}

/// The weeks and team of a trend.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendQuery {
    /// End of the last week's period: `YYYY-MM-DD` (00:00 UTC) or RFC 3339, exclusive; the
    /// week holding the moment before it is the last (default: now).
    pub to: Option<String>,
    /// How many weeks (default 12, at most 104).
    pub weeks: Option<usize>,
    /// One line per manager of this team instead of one per team.
    pub team: Option<String>,
}

/// Weekly call score and win rate.
///
/// Per week (Monday 00:00 UTC): scored calls and their mean overall score, deals won / closed.
/// One line for the company (or `team`), then one per team (or per manager of `team`).
#[utoipa::path(
    get, path = "/api/v1/trends", tag = "analytics", params(TrendQuery),
    responses(
        (status = 200, body = Trends),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn trends(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<TrendQuery>,
) -> Result<Json<Trends>, ApiError> {
    auth.require(COACHES)?;
    let to = match &q.to {
        Some(t) => super::parse_bound("to", t)?,
        None => now_millis() + 1,
    };
    let team = q.team.as_deref().map(str::trim).filter(|t| !t.is_empty());
    if let Some(t) = team {
        if state.store.crm_managers_of(Some(t)).await?.is_empty() {
            return Err(ApiError::not_found(&format!("team {t:?} in the CRM data")));
        }
    }
    Ok(Json(
        weekly_trends(&state.store, team, to - 1, q.weeks.unwrap_or(12)).await?,
    ))
}
