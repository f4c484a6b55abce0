//! Deal features for the win-probability model and the last call of each open deal.

use sqlx::FromRow;

use super::kpis::{literal, KpiScope};
use super::{Store, StoreError};
use crate::analytics::entity::DealStatus;
use crate::domain::CallId;

/// What the model knows about a deal.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct DealFeatures {
    /// The deal.
    pub deal_id: String,
    /// Its manager.
    pub manager_id: String,
    /// Open, won or lost.
    pub status: DealStatus,
    /// Created at (ms).
    pub created_at: i64,
    /// Closed at (ms).
    pub closed_at: Option<i64>,
    /// Highest funnel stage index from its stage rows, excluding the last (won) stage.
    pub stage: Option<i64>,
    /// Activities linked to it (up to its close).
    #[sqlx(rename = "acts")]
    pub activities: i64,
    /// Its latest activity (up to its close).
    #[sqlx(rename = "last_at")]
    pub last_activity_at: Option<i64>,
    /// Its lead's creation and first response.
    #[sqlx(rename = "lead_created")]
    pub lead_created_at: Option<i64>,
    /// First response to its lead.
    #[sqlx(rename = "lead_response")]
    pub lead_first_response_at: Option<i64>,
    /// Mean overall score of its scored calls.
    pub quality: Option<f64>,
    /// The same over the calls of the deal's manager in the CRM only: what that manager's own
    /// view may show (another manager's call tagged with the deal stays out of it).
    pub own_quality: Option<f64>,
}

/// The latest scored call of a deal.
#[derive(Debug, Clone, FromRow)]
pub struct LastCall {
    /// The call.
    #[sqlx(rename = "id")]
    pub call_id: CallId,
    /// When it took place.
    pub at: i64,
    /// The closing (agreed next step) criterion's `met` (1 or 0); `None` if not rated.
    #[sqlx(rename = "met")]
    closing: Option<i64>,
    /// The scorecard document.
    pub document: String,
}

impl LastCall {
    /// Whether the closing (agreed next step) criterion was met; `None` if not rated.
    pub fn closing_met(&self) -> Option<bool> {
        self.closing.map(|m| m == 1)
    }
}

impl Store {
    /// Features of every deal in scope; `stages` are the funnel's stages but the won one.
    pub async fn deal_features(
        &self,
        scope: &KpiScope,
        stages: &[String],
    ) -> Result<Vec<DealFeatures>, StoreError> {
        let cases: String = stages
            .iter()
            .enumerate()
            .map(|(i, s)| format!(" WHEN {} THEN {i}", literal(s)))
            .collect();
        let until = "(d.closed_at IS NULL OR a.at <= d.closed_at)";
        // $1 and $2 are unused bounds kept so the scope stays $3, as in every analytics query.
        let sql = format!(
            "SELECT d.deal_id AS deal_id, d.manager_id AS manager_id, d.status AS status, \
                    d.created_at AS created_at, d.closed_at AS closed_at, \
                    (SELECT CAST(MAX(CASE s.stage{cases} END) AS BIGINT) FROM crm_deal_stages s WHERE s.deal_id = d.deal_id) AS stage, \
                    (SELECT COUNT(*) FROM crm_activities a WHERE a.deal_id = d.deal_id AND {until}) AS acts, \
                    (SELECT MAX(a.at) FROM crm_activities a WHERE a.deal_id = d.deal_id AND {until}) AS last_at, \
                    l.created_at AS lead_created, l.first_response_at AS lead_response, \
                    (SELECT AVG(s.overall) FROM calls c JOIN scores s ON s.call_id = c.id \
                      WHERE c.deal_id = d.deal_id AND s.status = 'scored') AS quality, \
                    (SELECT AVG(s.overall) FROM calls c JOIN scores s ON s.call_id = c.id \
                      WHERE c.deal_id = d.deal_id AND c.manager_id = d.manager_id \
                        AND s.status = 'scored') AS own_quality \
             FROM crm_deals d LEFT JOIN crm_leads l ON l.lead_id = d.lead_id \
             WHERE d.created_at >= $1 AND d.created_at < $2{} ORDER BY d.deal_id",
            scope.filter("d.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, i64::MIN, i64::MAX).await
    }

    /// The manager the CRM gives `deal` to, or `None` when the CRM does not know the deal.
    pub async fn crm_deal_manager(&self, deal: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT manager_id FROM crm_deals WHERE deal_id = $1")
                .bind(deal)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// The latest scored call of `deal`, if any; with `by`, only that manager's calls count.
    pub async fn last_scored_call(
        &self,
        deal: &str,
        by: Option<&str>,
    ) -> Result<Option<LastCall>, StoreError> {
        let sql = format!(
            "SELECT c.id AS id, COALESCE(c.started_at, c.created_at) AS at, s.document AS document, \
                    sc.met AS met \
             FROM calls c JOIN scores s ON s.call_id = c.id \
             LEFT JOIN score_criteria sc ON sc.call_id = c.id AND sc.criterion_id = 'closing' \
             WHERE c.deal_id = $1 AND s.status = 'scored'{} \
             ORDER BY at DESC, c.id DESC LIMIT 1",
            if by.is_some() { " AND c.manager_id = $2" } else { "" }
        );
        let mut query = sqlx::query_as(&sql).bind(deal);
        if let Some(manager) = by {
            query = query.bind(manager);
        }
        Ok(query.fetch_optional(&self.pool).await?)
    }
}
