//! Queries linking call quality to deal outcomes: closed deals with scored calls (by
//! `calls.deal_id`), their average score and, per criterion, how often it was met.

use sqlx::Row;

use super::kpis::KpiScope;
use super::{Store, StoreError};
use crate::domain::CallId;

/// A closed deal with scored calls.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredDeal {
    /// The deal.
    pub deal_id: String,
    /// Its manager.
    pub manager_id: String,
    /// Won (else lost).
    pub won: bool,
    /// Mean overall score of its scored calls.
    pub average_overall: Option<f64>,
    /// Scored calls.
    pub calls: i64,
}

/// One criterion on one closed deal.
#[derive(Debug, Clone, PartialEq)]
pub struct DealCriterion {
    /// The criterion.
    pub criterion_id: String,
    /// Won (else lost).
    pub won: bool,
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
        let rows = scope
            .bind(sqlx::query(&sql).bind(from).bind(to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ScoredDeal {
                    deal_id: r.try_get("deal_id")?,
                    manager_id: r.try_get("manager_id")?,
                    won: r.try_get::<String, _>("status")? == "won",
                    average_overall: r.try_get("q")?,
                    calls: r.try_get("n")?,
                })
            })
            .collect()
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
        let rows = scope
            .bind(sqlx::query(&sql).bind(from).bind(to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(DealCriterion {
                    criterion_id: r.try_get("criterion_id")?,
                    won: r.try_get::<String, _>("status")? == "won",
                    met: r.try_get("met")?,
                    rated: r.try_get("rated")?,
                })
            })
            .collect()
    }

    /// A manager's lowest-scored calls in `[from, to)` (the evidence behind a quality flag).
    pub async fn lowest_scored_calls(
        &self,
        manager: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<(CallId, f64)>, StoreError> {
        let sql = format!(
            "SELECT c.id AS id, s.overall AS overall FROM scores s JOIN calls c ON c.id = s.call_id \
             WHERE s.status = 'scored' AND s.overall IS NOT NULL AND c.manager_id = $3 \
               AND COALESCE(c.started_at, c.created_at) >= $1 AND COALESCE(c.started_at, c.created_at) < $2 \
             ORDER BY s.overall, c.id LIMIT {limit}"
        );
        let rows = sqlx::query(&sql)
            .bind(from)
            .bind(to)
            .bind(manager)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((super::parse_col(r, "id")?, r.try_get("overall")?)))
            .collect()
    }
}
