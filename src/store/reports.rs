//! Quality-report queries over scored calls: averages per manager or team, per criterion, per
//! week, the latest scorecards' coaching, and conversation figures.
//!
//! Calls are placed in time by `COALESCE(started_at, created_at)` (indexed as
//! `calls_manager_time`). Placeholders as in the KPI queries: `$1` from, `$2` to, `$3` scope.

use sqlx::Row;

use super::kpis::KpiScope;
use super::{Store, StoreError};
use crate::domain::{CallId, Speaker};
use crate::transcript::metrics::ConversationMetrics;

const CALL_TIME: &str = "COALESCE(c.started_at, c.created_at)";
/// 1970-01-05, the first Monday after the Unix epoch, in ms: weeks start on Mondays (UTC).
pub const FIRST_MONDAY_MS: i64 = 4 * 86_400_000;
/// One week in ms.
pub const WEEK_MS: i64 = 7 * 86_400_000;

/// Count and average overall score of scored calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoreSummary {
    /// Scored calls.
    pub calls: i64,
    /// Mean overall score (0..100).
    pub average: Option<f64>,
}

/// One criterion's figures over scored calls.
#[derive(Debug, Clone, PartialEq)]
pub struct CriterionRow {
    /// The criterion.
    pub criterion_id: String,
    /// Calls where it applied (value not NULL).
    pub rated: i64,
    /// Mean value 0..1.
    pub average: Option<f64>,
    /// Calls where it was met.
    pub met: i64,
}

/// One week's scored calls.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekRow {
    /// Monday 00:00 UTC of the week, ms.
    pub week_start: i64,
    /// Scored calls.
    pub calls: i64,
    /// Mean overall score.
    pub average: Option<f64>,
}

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

/// Mean conversation figures over transcribed calls.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ConversationRow {
    /// Calls with figures.
    pub calls: i64,
    /// Mean manager talk share 0..1.
    pub talk_share: Option<f64>,
    /// Mean questions the manager asked per call.
    pub questions: Option<f64>,
    /// Mean longest manager monologue, seconds.
    pub longest_monologue_s: Option<f64>,
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
    /// The caller must hold the SQLite write turn.
    pub(super) async fn save_call_conversation(
        &self,
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
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Scored calls in `[from, to)` and their mean overall score.
    pub async fn report_summary(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<ScoreSummary, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) AS n, AVG(s.overall) AS avg {}",
            scored_calls(scope)
        );
        let row = scope
            .bind(sqlx::query(&sql).bind(from).bind(to))
            .fetch_one(&self.pool)
            .await?;
        Ok(ScoreSummary {
            calls: row.try_get("n")?,
            average: row.try_get("avg")?,
        })
    }

    /// Per criterion over scored calls in `[from, to)`, by criterion id.
    pub async fn report_criteria(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<CriterionRow>, StoreError> {
        let sql = format!(
            "SELECT sc.criterion_id AS criterion_id, COUNT(sc.value) AS rated, AVG(sc.value) AS avg, \
                    COUNT(CASE WHEN sc.met = 1 THEN 1 END) AS met \
             FROM score_criteria sc JOIN scores s ON s.call_id = sc.call_id \
             JOIN calls c ON c.id = sc.call_id \
             WHERE s.status = 'scored' AND {CALL_TIME} >= $1 AND {CALL_TIME} < $2{} \
             GROUP BY sc.criterion_id ORDER BY sc.criterion_id",
            scope.filter("c.manager_id")
        );
        let rows = scope
            .bind(sqlx::query(&sql).bind(from).bind(to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(CriterionRow {
                    criterion_id: r.try_get("criterion_id")?,
                    rated: r.try_get("rated")?,
                    average: r.try_get("avg")?,
                    met: r.try_get("met")?,
                })
            })
            .collect()
    }

    /// Scored calls per week (Monday to Monday, UTC) in `[from, to)`.
    pub async fn report_weeks(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<Vec<WeekRow>, StoreError> {
        let sql = format!(
            "SELECT CAST(({CALL_TIME} - {FIRST_MONDAY_MS}) / {WEEK_MS} AS BIGINT) AS week, \
                    COUNT(*) AS n, AVG(s.overall) AS avg {} GROUP BY week ORDER BY week",
            scored_calls(scope)
        );
        let rows = scope
            .bind(sqlx::query(&sql).bind(from).bind(to))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(WeekRow {
                    week_start: r.try_get::<i64, _>("week")? * WEEK_MS + FIRST_MONDAY_MS,
                    calls: r.try_get("n")?,
                    average: r.try_get("avg")?,
                })
            })
            .collect()
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

    /// Mean conversation figures of calls in `[from, to)`.
    pub async fn report_conversation(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<ConversationRow, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) AS n, AVG(m.manager_talk_share) AS talk, AVG(m.manager_questions) AS q, \
                    AVG(m.manager_longest_monologue_s) AS mono \
             FROM call_conversation m JOIN calls c ON c.id = m.call_id \
             WHERE {CALL_TIME} >= $1 AND {CALL_TIME} < $2{}",
            scope.filter("c.manager_id")
        );
        let row = scope
            .bind(sqlx::query(&sql).bind(from).bind(to))
            .fetch_one(&self.pool)
            .await?;
        Ok(ConversationRow {
            calls: row.try_get("n")?,
            talk_share: row.try_get("talk")?,
            questions: row.try_get("q")?,
            longest_monologue_s: row.try_get("mono")?,
        })
    }
}
