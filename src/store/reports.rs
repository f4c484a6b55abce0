//! Quality-report queries over scored calls that the rollups do not answer: the latest
//! scorecards' coaching, and the conversation figures kept for each call. The averages come
//! from `rollups.rs`.
//!
//! Calls are placed in time by `COALESCE(started_at, created_at)` (indexed as
//! `calls_manager_time`). Placeholders as in the KPI queries: `$1` from, `$2` to, `$3` scope.

use sqlx::FromRow;

use super::kpis::KpiScope;
use super::{Store, StoreError};
use crate::domain::{CallId, Speaker};
use crate::transcript::metrics::ConversationMetrics;

const CALL_TIME: &str = "COALESCE(c.started_at, c.created_at)";

/// A recent scorecard with its document.
#[derive(Debug, Clone, FromRow)]
pub struct RecentScore {
    /// The call.
    #[sqlx(rename = "id")]
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
    /// Runs in the caller's write transaction.
    pub(super) async fn save_call_conversation(
        conn: &mut super::WriteTx,
        call: CallId,
        m: &ConversationMetrics,
    ) -> Result<(), StoreError> {
        let manager = m.speakers.iter().find(|s| s.speaker == Speaker::Manager);
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
        .execute(&mut **conn)
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
        scope.fetch_all(&self.pool, &sql, from, to).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcript::metrics::SpeakerMetrics;

    fn metrics(talk_share: Option<f64>) -> ConversationMetrics {
        ConversationMetrics {
            duration_s: 60.0,
            speakers: talk_share
                .map(|share| SpeakerMetrics {
                    speaker: Speaker::Manager,
                    talk_seconds: 60.0 * share,
                    talk_share: share,
                    turns: 3,
                    longest_monologue_s: 12.5,
                    words: 100,
                    words_per_minute: 120.0,
                    filler_words: 0,
                    fillers_per_100_words: 0.0,
                    interruptions: 0,
                })
                .into_iter()
                .collect(),
            manager_questions: 2,
            manager_questions_per_minute: 2.0,
            interruptions: 0,
            silence_share: 0.1,
            longest_silence_s: 2.0,
        }
    }

    /// sqlx's Any driver binds a NULL `f64` as float4 on PostgreSQL, so a statement prepared
    /// with a NULL refuses a real value later on the same connection (upstream sqlx #4284).
    /// On one pooled connection every write below reuses the first one's statement if it is
    /// cached: NULL first, then real values, then NULL again.
    #[tokio::test]
    async fn a_null_float_then_a_real_one_on_one_postgres_connection() {
        let Ok(admin) = std::env::var("TEST_POSTGRES_URL") else {
            assert_ne!(
                std::env::var("TEST_REQUIRE_POSTGRES").as_deref(),
                Ok("1"),
                "TEST_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set"
            );
            eprintln!("skipping: TEST_POSTGRES_URL not set");
            return;
        };
        sqlx::any::install_default_drivers();
        let name = format!("cg_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
            .await
            .expect("connect");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("create database");
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let store = Store::connect_with(&format!("{base}/{name}"), Some(1))
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        for (n, share) in [None, Some(0.6), Some(0.25), None].into_iter().enumerate() {
            let call = CallId::new();
            let mut tx = store.write().await.expect("write");
            sqlx::query(
                "INSERT INTO calls (id, manager_id, language, channels, size_bytes, sha256, \
                 storage_key, status, created_at, updated_at) \
                 VALUES ($1, 'm-1', 'en', 'manager,client', 1, $1, $1, 'done', 0, 0)",
            )
            .bind(call.to_string())
            .execute(&mut *tx)
            .await
            .expect("call row");
            Store::save_call_conversation(&mut tx, call, &metrics(share))
                .await
                .unwrap_or_else(|e| panic!("write {n} ({share:?}): {e}"));
            let stored: Option<f64> = sqlx::query_scalar(
                "SELECT manager_talk_share FROM call_conversation WHERE call_id = $1",
            )
            .bind(call.to_string())
            .fetch_one(&mut *tx)
            .await
            .expect("read back");
            assert_eq!(stored, share);
            tx.commit().await.expect("commit");
        }
        store.close().await;
    }
}
