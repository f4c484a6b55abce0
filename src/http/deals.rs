//! `/api/v1/deals/open`: open deals ranked by win probability, with next best steps.

use axum::extract::{Query, State};
use axum::Json;
use serde::Deserialize;
use utoipa::IntoParams;

use super::auth::Auth;
use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::analytics::deals::{open_deals, OpenDeals};
use crate::store::KpiScope;

/// Query of the open-deals list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OpenDealsQuery {
    /// Only this manager's deals (managers: only their own, the default for them).
    pub manager_id: Option<String>,
    /// Only the deals of this team's managers (404 for a team the CRM does not know; a manager
    /// sees their own deals whatever this says).
    pub team: Option<String>,
    /// Most deals listed (default 50, at most 500).
    pub limit: Option<usize>,
}

/// Open deals ranked by win probability.
///
/// The probability comes from a logistic regression trained on the closed deals (features:
/// stage reached, days since the last activity, activity count, lead response time, call
/// quality), with its Brier score on the most recently closed fifth held out. With too few
/// closed deals there is no probability and `note` says why. Each deal carries next best steps:
/// rules (no touch for `analytics.stale_days`, missed response SLA, last call without an agreed
/// next step) and the next steps the last call's scorecard suggested.
#[utoipa::path(
    get, path = "/api/v1/deals/open", tag = "analytics", params(OpenDealsQuery),
    responses(
        (status = 200, body = OpenDeals),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn open(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<OpenDealsQuery>,
) -> Result<Json<OpenDeals>, ApiError> {
    let wanted = q
        .manager_id
        .as_deref()
        .map(str::trim)
        .filter(|m| !m.is_empty());
    let manager = match auth.0.scope() {
        Some(own) => {
            if wanted.is_some_and(|m| m != own.as_str()) {
                // Another manager's deals are theirs: 404, as for their calls (decision 0003).
                return Err(ApiError::not_found("manager"));
            }
            Some(own.as_str().to_string())
        }
        None => wanted.map(str::to_string),
    };
    let scope = match (&manager, q.team.as_deref().map(str::trim)) {
        (Some(m), _) => KpiScope::Manager(m.clone()),
        (None, Some(t)) if !t.is_empty() => {
            if state.store.crm_managers_of(Some(t)).await?.is_empty() {
                return Err(ApiError::not_found(&format!("team {t:?} in the CRM data")));
            }
            KpiScope::Team(t.to_string())
        }
        _ => KpiScope::All,
    };
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let deals = open_deals(
        &state.store,
        &state.config.analytics,
        &state.deals,
        &scope,
        manager.as_deref(),
        limit,
    )
    .await?;
    Ok(Json(deals))
}
