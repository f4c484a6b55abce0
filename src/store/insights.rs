//! Queries linking call quality to deal outcomes: closed deals with scored calls (by
//! `calls.deal_id`), their average score and, per criterion, how often it was met.

use std::collections::HashMap;

use sqlx::FromRow;

use super::kpis::KpiScope;
use super::memo::Depends;
use super::{Store, StoreError};
use crate::analytics::entity::DealStatus;
use crate::domain::CallId;
use crate::rubric::Level;
use crate::scoring::card::ScoreCard;

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

/// The closed deals of one outcome where one criterion was met, or was not.
#[derive(Debug, Clone, PartialEq, FromRow)]
pub struct DealCriterion {
    /// The criterion.
    pub criterion_id: String,
    /// Won or lost.
    pub status: DealStatus,
    /// Met on at least half of the deal's calls where it applied (else not met).
    #[sqlx(try_from = "i64")]
    pub met: MetFlag,
    /// How many such deals.
    pub deals: i64,
}

/// Whether a criterion counts as met on a deal (a 0/1 column).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetFlag(pub bool);

impl From<i64> for MetFlag {
    fn from(v: i64) -> Self {
        Self(v != 0)
    }
}

/// Closed deals of the period (`$1`..`$2`) joined to their call-quality rows (`dq`, one per
/// deal and criterion summed over the managers of its calls, `''` for the overall scores:
/// migration 0019), the deals first.
fn closed_with_quality(backend: super::Backend) -> String {
    let join = super::dialect::ordered_join(backend);
    format!(
        "FROM crm_deals d {join} deal_quality_total dq ON dq.deal_id = d.deal_id \
         WHERE d.status IN ('won', 'lost') AND d.closed_at >= $1 AND d.closed_at < $2"
    )
}

/// A call where a criterion came out weak or absent.
#[derive(Debug, Clone)]
pub struct WeakCall {
    /// The call.
    pub call_id: CallId,
    /// When it took place (ms).
    pub call_at: i64,
    /// `weak` or `absent`.
    pub level: String,
    /// Its first verified quote for the criterion, if any.
    pub quote: Option<String>,
    /// Where that quote starts (ms from the call's start).
    pub at_ms: Option<i64>,
}

/// A low-scored call and where to start listening.
#[derive(Debug, Clone)]
pub struct LowCall {
    /// The call.
    pub call_id: CallId,
    /// Its overall score.
    pub overall: f64,
    /// Seconds from the start: the first thing the model said to improve, where it quoted the
    /// call, else the first verified quote of a criterion that came out weak or absent.
    pub at_s: Option<f64>,
}

/// Where `card` shows what went wrong (see [`LowCall::at_s`]).
fn weakest_moment(card: &ScoreCard) -> Option<f64> {
    let improvement = card.coaching.improvements.iter().find_map(|p| p.at_s);
    improvement.or_else(|| {
        card.criteria
            .iter()
            .filter(|c| matches!(c.final_level, Level::Weak | Level::Absent))
            .flat_map(|c| &c.evidence)
            .find(|e| e.verified)
            .and_then(|e| e.start_s)
    })
}

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
                    dq.total / CAST(NULLIF(dq.rated, 0) AS DOUBLE PRECISION) AS q, \
                    dq.calls AS n \
             {} AND dq.criterion_id = ''{} ORDER BY d.deal_id",
            closed_with_quality(self.backend),
            scope.filter("d.manager_id")
        );
        let key = format!("insight deals {scope:?} {from} {to}");
        let kept = self
            .memo(Depends::Quality)
            .await?
            .get(key, Vec::len, || {
                scope.fetch_all(&self.pool, &sql, from, to)
            })
            .await?;
        Ok((*kept).clone())
    }

    /// Per criterion over deals closed in `[from, to)` with scored calls where it applied:
    /// how many won and lost deals met it on at least half of those calls, and how many did
    /// not. Counted in the database: a company month has 14,000 (deal, criterion) rows.
    pub async fn insight_criteria(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<DealCriterion>, StoreError> {
        let sql = format!(
            "SELECT criterion_id, status, met, COUNT(*) AS deals FROM ( \
               SELECT dq.criterion_id AS criterion_id, d.status AS status, \
                      CAST(CASE WHEN 2 * dq.met >= dq.rated THEN 1 ELSE 0 END AS BIGINT) AS met \
               {} AND dq.criterion_id <> '' AND dq.rated > 0{}) t \
             GROUP BY criterion_id, status, met",
            closed_with_quality(self.backend),
            scope.filter("d.manager_id")
        );
        let key = format!("insight criteria {scope:?} {from} {to}");
        let kept = self
            .memo(Depends::Quality)
            .await?
            .get(key, Vec::len, || {
                scope.fetch_all(&self.pool, &sql, from, to)
            })
            .await?;
        Ok((*kept).clone())
    }

    /// A manager's latest calls in `[from, to)` where `criterion` came out weak or absent, with
    /// the moment its first verified quote shows it (the coaching evidence of a manager page).
    pub async fn weak_criterion_calls(
        &self,
        manager: &str,
        criterion: &str,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<WeakCall>, StoreError> {
        let rows: Vec<(CallId, i64, String, String)> = sqlx::query_as(&format!(
            "SELECT c.id AS id, COALESCE(c.started_at, c.created_at) AS at, sc.level AS level, \
                    s.document AS document \
             FROM calls c JOIN scores s ON s.call_id = c.id \
             JOIN score_criteria sc ON sc.call_id = c.id \
             WHERE c.manager_id = $1 AND sc.criterion_id = $2 AND sc.level IN ('weak', 'absent') \
               AND s.status = 'scored' \
               AND COALESCE(c.started_at, c.created_at) >= $3 \
               AND COALESCE(c.started_at, c.created_at) < $4 \
             ORDER BY COALESCE(c.started_at, c.created_at) DESC LIMIT {limit}"
        ))
        .bind(manager)
        .bind(criterion)
        .bind(from)
        .bind(to)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(call_id, call_at, level, document)| {
                let card: Option<crate::scoring::card::ScoreCard> =
                    serde_json::from_str(&document).ok();
                let evidence = card.as_ref().and_then(|c| {
                    c.criteria
                        .iter()
                        .find(|x| x.id == criterion)?
                        .evidence
                        .iter()
                        .find(|e| e.verified && e.start_s.is_some())
                        .cloned()
                });
                WeakCall {
                    call_id,
                    call_at,
                    level,
                    at_ms: evidence
                        .as_ref()
                        .and_then(|e| e.start_s)
                        .map(|s| (s * 1000.0) as i64),
                    quote: evidence.map(|e| e.quote),
                }
            })
            .collect())
    }

    /// Each of `managers`' lowest-scored calls in `[from, to)` (the evidence behind a quality
    /// flag), at most `limit` each, lowest first, with the moment that shows it (see
    /// [`LowCall::at_s`]). One read for every flagged manager of a page; only the chosen calls'
    /// scorecards are read (a sort that carried every scorecard of a month took 12 ms a
    /// manager).
    pub async fn lowest_scored_calls(
        &self,
        managers: &[String],
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<HashMap<String, Vec<LowCall>>, StoreError> {
        if managers.is_empty() {
            return Ok(HashMap::new());
        }
        let scope = KpiScope::Managers(managers.to_vec());
        let sql = format!(
            "SELECT x.manager_id AS manager_id, x.id AS id, x.overall AS overall, s.document AS document \
             FROM (SELECT c.manager_id AS manager_id, c.id AS id, s.overall AS overall, \
                          ROW_NUMBER() OVER (PARTITION BY c.manager_id ORDER BY s.overall, c.id) AS n \
                   FROM scores s JOIN calls c ON c.id = s.call_id \
                   WHERE s.status = 'scored' AND s.overall IS NOT NULL{} \
                     AND COALESCE(c.started_at, c.created_at) >= $1 \
                     AND COALESCE(c.started_at, c.created_at) < $2) x \
             JOIN scores s ON s.call_id = x.id \
             WHERE x.n <= {limit} ORDER BY x.manager_id, x.overall, x.id",
            scope.filter("c.manager_id")
        );
        let key = format!("lowest calls {managers:?} {from} {to} {limit}");
        let kept = self
            .memo(Depends::Quality)
            .await?
            .get(key, HashMap::len, || async {
                let rows: Vec<(String, CallId, f64, String)> =
                    scope.fetch_all(&self.pool, &sql, from, to).await?;
                let mut out: HashMap<String, Vec<LowCall>> = HashMap::new();
                for (manager, call_id, overall, document) in rows {
                    out.entry(manager).or_default().push(LowCall {
                        call_id,
                        overall,
                        at_s: serde_json::from_str::<ScoreCard>(&document)
                            .ok()
                            .and_then(|card| weakest_moment(&card)),
                    });
                }
                Ok(out)
            })
            .await?;
        Ok((*kept).clone())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn card(improvements: serde_json::Value, criteria: serde_json::Value) -> ScoreCard {
        serde_json::from_value(json!({
            "call_id": "01900000-0000-7000-8000-000000000001",
            "status": "scored",
            "rubric": {"id": "sales-standard", "language": "en", "version": 1},
            "language": "en",
            "critical_failures": [],
            "criteria": criteria,
            "coaching": {"strengths": [], "improvements": improvements},
            "next_steps": [],
            "scored_at": 0,
        }))
        .expect("a scorecard")
    }

    fn criterion(level: &str, verified: bool, start_s: f64) -> serde_json::Value {
        json!({
            "id": format!("c-{level}-{start_s}"), "section": "main", "title": "t", "weight": 1.0,
            "critical": false, "scale_max": 2, "answer": 0, "level": level, "rationale": "r",
            "evidence": [{"quote": "q", "verified": verified, "speaker": "manager",
                          "start_s": start_s, "similarity": 1.0}],
            "low_confidence": false, "final_level": level, "final_value": 0.0,
        })
    }

    #[test]
    fn the_moment_is_the_first_improvement_quoted_else_a_weak_criterion_s_quote() {
        let quoted = card(
            json!([{"text": "no quote"}, {"text": "ask about the budget", "at_s": 42.5}]),
            json!([criterion("weak", true, 12.0)]),
        );
        assert_eq!(weakest_moment(&quoted), Some(42.5));
        let criteria_only = card(
            json!([{"text": "no quote"}]),
            json!([
                criterion("strong", true, 3.0),
                criterion("absent", false, 7.0),
                criterion("weak", true, 12.0),
            ]),
        );
        assert_eq!(
            weakest_moment(&criteria_only),
            Some(12.0),
            "not a strong criterion's, not an unverified quote's"
        );
        assert_eq!(weakest_moment(&card(json!([]), json!([]))), None);
    }
}
