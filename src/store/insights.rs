//! Queries linking call quality to deal outcomes: closed deals with scored calls (by
//! `calls.deal_id`), their average score and, per criterion, how often it was met.

use sqlx::FromRow;

use super::kpis::KpiScope;
use super::{Store, StoreError};
use crate::analytics::entity::DealStatus;
use crate::domain::CallId;

/// A closed deal with scored calls.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct ScoredDeal {
    /// The deal.
    pub deal_id: String,
    /// Its manager.
    pub manager_id: String,
    /// Won or lost.
    pub status: DealStatus,
    /// Mean overall score of its scored calls.
    #[sqlx(rename = "q")]
    pub average_overall: Option<f64>,
    /// Scored calls.
    #[sqlx(rename = "n")]
    pub calls: i64,
}

/// One criterion on one closed deal.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct DealCriterion {
    /// The criterion.
    pub criterion_id: String,
    /// Won or lost.
    pub status: DealStatus,
    /// Calls of the deal where it was met.
    pub met: i64,
    /// Calls of the deal where it applied.
    pub rated: i64,
}

const CLOSED_SCORED: &str = "FROM crm_deals d JOIN calls c ON c.deal_id = d.deal_id \
     JOIN scores s ON s.call_id = c.id \
     WHERE s.status = 'scored' AND d.status IN ('won', 'lost') \
       AND d.closed_at >= $1 AND d.closed_at < $2";

impl Store {
    /// Deals closed in `[from, to)` that have scored calls.
    pub async fn insight_deals(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<ScoredDeal>, StoreError> {
        let sql = format!(
            "SELECT d.deal_id AS deal_id, d.manager_id AS manager_id, d.status AS status, \
                    AVG(s.overall) AS q, COUNT(*) AS n {CLOSED_SCORED}{} \
             GROUP BY d.deal_id, d.manager_id, d.status ORDER BY d.deal_id",
            scope.filter("d.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// Per (deal, criterion) over deals closed in `[from, to)` with scored calls.
    pub async fn insight_criteria(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<DealCriterion>, StoreError> {
        let sql = format!(
            "SELECT sc.criterion_id AS criterion_id, d.status AS status, \
                    COUNT(CASE WHEN sc.met = 1 THEN 1 END) AS met, COUNT(sc.met) AS rated \
             FROM crm_deals d JOIN calls c ON c.deal_id = d.deal_id \
             JOIN scores s ON s.call_id = c.id JOIN score_criteria sc ON sc.call_id = c.id \
             WHERE s.status = 'scored' AND d.status IN ('won', 'lost') \
               AND d.closed_at >= $1 AND d.closed_at < $2 AND sc.met IS NOT NULL{} \
             GROUP BY d.deal_id, d.status, sc.criterion_id",
            scope.filter("d.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }

    /// A manager's lowest-scored calls in `[from, to)` (the evidence behind a quality flag).
    pub async fn lowest_scored_calls(
        &self,
        manager: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<(CallId, f64)>, StoreError> {
        let scope = KpiScope::Manager(manager.to_string());
        let sql = format!(
            "SELECT c.id AS id, s.overall AS overall FROM scores s JOIN calls c ON c.id = s.call_id \
             WHERE s.status = 'scored' AND s.overall IS NOT NULL{} \
               AND COALESCE(c.started_at, c.created_at) >= $1 AND COALESCE(c.started_at, c.created_at) < $2 \
             ORDER BY s.overall, c.id LIMIT {limit}",
            scope.filter("c.manager_id")
        );
        scope.fetch_all(&self.pool, &sql, from, to).await
    }
}
