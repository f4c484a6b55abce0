//! Quality-report queries over scored calls that the rollups do not answer: the latest
//! scorecards' coaching, and the conversation figures kept for each call. The averages come
//! from `rollups.rs`.
//!
//! Calls are placed in time by `COALESCE(started_at, created_at)` (indexed as
//! `calls_manager_time`). Placeholders as in the KPI queries: `$1` from, `$2` to, `$3` scope.

use sqlx::Row;

use super::kpis::KpiScope;
use super::{Store, StoreError};
use crate::domain::{CallId, Speaker};
use crate::transcript::metrics::ConversationMetrics;

const CALL_TIME: &str = "COALESCE(c.started_at, c.created_at)";

/// A recent scorecard with its document.
#[derive(Debug, Clone)]
pub struct RecentScore {
    /// The call.
    pub call_id: CallId,
    /// When it took place.
    pub at: i64,
    /// Overall score.
    pub overall: Option<f64>,
    /// The scorecard document (JSON text).
    pub document: String,
}

fn scored_calls(scope: &KpiScope) -> String {
    format!(
        "FROM scores s JOIN calls c ON c.id = s.call_id \
         WHERE s.status = 'scored' AND {CALL_TIME} >= $1 AND {CALL_TIME} < $2{}",
        scope.filter("c.manager_id")
    )
}

impl Store {
    /// Keeps the conversation figures of a call's transcript where reports can average them.
    /// Runs in the caller's transaction, which holds the SQLite write turn.
    pub(super) async fn save_call_conversation(
        conn: &mut sqlx::AnyConnection,
        call: CallId,
        m: &ConversationMetrics,
    ) -> Result<(), StoreError> {
        let manager = m.speakers.iter().find(|s| s.speaker == Speaker::Manager);
        // No write_turn here: the caller (`save_transcript`) holds it, and the gate is not
        // re-entrant (taking it again deadlocked every transcription on SQLite).
        sqlx::query(
            "INSERT INTO call_conversation (call_id, manager_talk_share, manager_questions, \
             manager_longest_monologue_s, duration_s) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (call_id) DO UPDATE SET manager_talk_share = excluded.manager_talk_share, \
             manager_questions = excluded.manager_questions, \
             manager_longest_monologue_s = excluded.manager_longest_monologue_s, \
             duration_s = excluded.duration_s",
        )
        // A NULL f64 is bound as float4 on PostgreSQL (sqlx Any); see `CrmImport::upsert`.
        .persistent(false)
        .bind(call.to_string())
        .bind(manager.map(|s| s.talk_share))
        .bind(f64::from(m.manager_questions))
        .bind(manager.map(|s| s.longest_monologue_s))
        .bind(m.duration_s)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The latest `limit` scorecards in `[from, to)`, newest first.
    pub async fn report_recent_scores(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
        limit: i64,
    ) -> Result<Vec<RecentScore>, StoreError> {
        let sql = format!(
            "SELECT c.id AS id, {CALL_TIME} AS at, s.overall AS overall, s.document AS document {} \
             ORDER BY at DESC, c.id DESC LIMIT {limit}",
            scored_calls(scope)
        );
        let rows = scope
            .bind(sqlx::query(&sql).bind(from).bind(to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(RecentScore {
                    call_id: super::parse_col(r, "id")?,
                    at: r.try_get("at")?,
                    overall: r.try_get("overall")?,
                    document: r.try_get("document")?,
                })
            })
            .collect()
    }

    /// Whether `manager` has any scored call.
    pub async fn manager_has_scored_calls(&self, manager: &str) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT 1 AS one FROM calls c JOIN scores s ON s.call_id = c.id \
             WHERE c.manager_id = $1 AND s.status = 'scored' LIMIT 1",
        )
        .bind(manager)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }
}
