//! Deal features for the win-probability model and the last call of each open deal.

use sqlx::FromRow;

use super::kpis::literal;
use super::memo::Depends;
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

/// Which deals [`Store::deal_features`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DealSet {
    /// Won and lost: what the model learns from.
    Closed,
    /// Still open: what it ranks.
    Open,
}

/// What a cached view of the deals was built from: it is stale once either part moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, FromRow)]
pub struct DealStamp {
    /// CRM files imported so far and the latest import (ms): the CRM changes only by import.
    pub imports: i64,
    /// The latest import (ms).
    pub imported_at: Option<i64>,
    /// The rollups' generation (migration 0012): it moves with every score written or
    /// corrected and every call deleted.
    pub scored_at: Option<i64>,
}

impl Store {
    /// Features of every deal of `set`; `stages` are the funnel's stages but the won one.
    ///
    /// One pass per table, grouped by deal and joined to the deals (not a subquery per deal
    /// and table: 10k deals took 1.8-4 s that way, see docs/PERFORMANCE.md). The CRM part is
    /// kept until the next import ([`Store::memo`]); the call quality is read from the
    /// per-deal rollup each time (a score written moves it, not the CRM).
    pub async fn deal_features(
        &self,
        set: DealSet,
        stages: &[String],
    ) -> Result<Vec<DealFeatures>, StoreError> {
        let status = match set {
            DealSet::Closed => "d.status IN ('won', 'lost')",
            DealSet::Open => "d.status = 'open'",
        };
        let (crm, quality) = tokio::try_join!(
            self.deal_crm_features(status, stages),
            self.deal_call_quality(status)
        )?;
        Ok(crm
            .iter()
            .map(|d| {
                let (quality, own_quality) = quality.get(&d.deal_id).copied().unwrap_or_default();
                DealFeatures {
                    quality,
                    own_quality,
                    ..d.clone()
                }
            })
            .collect())
    }

    /// The CRM part of [`Store::deal_features`] (quality left empty), kept until the next import.
    async fn deal_crm_features(
        &self,
        status: &str,
        stages: &[String],
    ) -> Result<std::sync::Arc<Vec<DealFeatures>>, StoreError> {
        let cases: String = stages
            .iter()
            .enumerate()
            .map(|(i, s)| format!(" WHEN {} THEN {i}", literal(s)))
            .collect();
        let sql = format!(
            "WITH ds AS (SELECT d.deal_id, d.manager_id, d.status, d.created_at, d.closed_at, \
                                d.lead_id FROM crm_deals d WHERE {status}), \
             st AS (SELECT s.deal_id, CAST(MAX(CASE s.stage{cases} END) AS BIGINT) AS stage \
                    FROM ds JOIN crm_deal_stages s ON s.deal_id = ds.deal_id GROUP BY s.deal_id), \
             ac AS (SELECT a.deal_id, COUNT(*) AS acts, MAX(a.at) AS last_at \
                    FROM ds JOIN crm_activities a ON a.deal_id = ds.deal_id \
                    WHERE ds.closed_at IS NULL OR a.at <= ds.closed_at GROUP BY a.deal_id) \
             SELECT ds.deal_id AS deal_id, ds.manager_id AS manager_id, ds.status AS status, \
                    ds.created_at AS created_at, ds.closed_at AS closed_at, st.stage AS stage, \
                    COALESCE(ac.acts, 0) AS acts, ac.last_at AS last_at, \
                    l.created_at AS lead_created, l.first_response_at AS lead_response, \
                    CAST(NULL AS DOUBLE PRECISION) AS quality, \
                    CAST(NULL AS DOUBLE PRECISION) AS own_quality \
             FROM ds LEFT JOIN st ON st.deal_id = ds.deal_id \
             LEFT JOIN ac ON ac.deal_id = ds.deal_id \
             LEFT JOIN crm_leads l ON l.lead_id = ds.lead_id \
             ORDER BY ds.deal_id"
        );
        let key = format!("deal features {status} {stages:?}");
        self.memo(Depends::Crm)
            .await?
            .get(key, Vec::len, || async {
                Ok(sqlx::query_as(&sql).fetch_all(&self.pool).await?)
            })
            .await
    }

    /// Each deal's mean overall call score, over all its calls and over its CRM manager's own
    /// calls only (what that manager's view may show), from the per-deal rollup.
    async fn deal_call_quality(
        &self,
        status: &str,
    ) -> Result<std::collections::HashMap<String, (Option<f64>, Option<f64>)>, StoreError> {
        let sql = format!(
            "SELECT dq.deal_id AS deal_id, \
                    SUM(dq.total) / CAST(NULLIF(SUM(dq.rated), 0) AS DOUBLE PRECISION) AS quality, \
                    SUM(CASE WHEN dq.manager_id = d.manager_id THEN dq.total END) \
                      / CAST(NULLIF(SUM(CASE WHEN dq.manager_id = d.manager_id \
                                             THEN dq.rated END), 0) AS DOUBLE PRECISION) \
                      AS own_quality \
             FROM crm_deals d JOIN deal_quality dq ON dq.deal_id = d.deal_id \
             WHERE {status} AND dq.criterion_id = '' GROUP BY dq.deal_id"
        );
        let rows: Vec<(String, Option<f64>, Option<f64>)> =
            sqlx::query_as(&sql).fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(d, q, own)| (d, (q, own))).collect())
    }

    /// Where the deals' data stands: a cached model or ranking built at an older stamp is stale.
    pub async fn deal_stamp(&self) -> Result<DealStamp, StoreError> {
        Ok(sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM crm_import_log) AS imports, \
                    (SELECT MAX(imported_at) FROM crm_import_log) AS imported_at, \
                    (SELECT generation FROM rollup_stamp WHERE id = 1) AS scored_at",
        )
        .fetch_one(&self.pool)
        .await?)
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

    /// The latest scored call of each of `deals` that has one; with `by`, only that manager's
    /// calls count. One query for the whole list, kept until a score or call changes (the
    /// dashboards ask for the same open deals on every load).
    pub async fn last_scored_calls(
        &self,
        deals: &[String],
        by: Option<&str>,
    ) -> Result<std::sync::Arc<std::collections::HashMap<String, LastCall>>, StoreError> {
        let key = format!("last scored calls {by:?} {deals:?}");
        self.memo(Depends::Quality)
            .await?
            .get(key, std::collections::HashMap::len, || {
                self.read_last_scored_calls(deals, by)
            })
            .await
    }

    async fn read_last_scored_calls(
        &self,
        deals: &[String],
        by: Option<&str>,
    ) -> Result<std::collections::HashMap<String, LastCall>, StoreError> {
        let mut found = std::collections::HashMap::new();
        // At most 500 deals are listed; chunks keep every statement far below the backends'
        // limits on bound values.
        for chunk in deals.chunks(400) {
            let marks: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let own = match by {
                Some(_) => format!(" AND c.manager_id = ${}", chunk.len() + 1),
                None => String::new(),
            };
            let sql = format!(
                "SELECT x.id AS id, x.deal_id AS deal_id, x.at AS at, s.document AS document, \
                        sc.met AS met \
                 FROM (SELECT c.id AS id, c.deal_id AS deal_id, \
                              COALESCE(c.started_at, c.created_at) AS at, \
                              ROW_NUMBER() OVER (PARTITION BY c.deal_id \
                                ORDER BY COALESCE(c.started_at, c.created_at) DESC, c.id DESC) AS n \
                       FROM calls c JOIN scores s ON s.call_id = c.id \
                       WHERE c.deal_id IN ({}) AND s.status = 'scored'{own}) x \
                 JOIN scores s ON s.call_id = x.id \
                 LEFT JOIN score_criteria sc ON sc.call_id = x.id AND sc.criterion_id = 'closing' \
                 WHERE x.n = 1",
                marks.join(", ")
            );
            let mut query = sqlx::query_as::<_, DealLastCall>(&sql);
            for d in chunk {
                query = query.bind(d);
            }
            if let Some(manager) = by {
                query = query.bind(manager);
            }
            for row in query.fetch_all(&self.pool).await? {
                found.insert(row.deal_id, row.call);
            }
        }
        Ok(found)
    }
}

#[derive(FromRow)]
struct DealLastCall {
    deal_id: String,
    #[sqlx(flatten)]
    call: LastCall,
}
