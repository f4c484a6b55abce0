//! Daily rollups of call quality per manager (`quality_daily`, `conversation_daily`), so a
//! report over a month reads a few hundred small rows instead of joining thousands of calls to
//! their scores and criteria (decision 0009).
//!
//! A rollup row is never updated by arithmetic: after any write that can change a call's figures
//! (a score saved or corrected, a transcript saved, a call deleted), the rows of that call's
//! manager and day are recomputed from the raw tables in the same transaction. That keeps them
//! exact whatever the write was, at the cost of one small aggregate per write. Reports split a
//! period into whole UTC days (from the rollups) and the partial days at its edges (from the raw
//! rows), so any `[from, to)` gives the same figures as the raw tables.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sqlx::FromRow;

use super::kpis::{KpiKey, KpiScope};
use super::memo::Depends;
use super::{Store, StoreError, WriteTx};
use crate::domain::CallId;

/// One UTC day in ms.
pub const DAY_MS: i64 = 86_400_000;
const CALL_TIME: &str = "COALESCE(c.started_at, c.created_at)";

/// Counts and sums that add up across days and parts of a period.
#[derive(Debug, Clone, Copy, Default, PartialEq, FromRow)]
pub struct Tally {
    /// Rows counted (scored calls, or calls with a row for the criterion).
    pub calls: i64,
    /// Of those, with a value (overall score or criterion value not NULL).
    pub rated: i64,
    /// Sum of the values.
    pub total: f64,
    /// Criterion met (level strong); in a day's overall tally (`QualityTallies::days`, the
    /// rollup rows with criterion_id ''), the calls with a critical failure.
    pub met: i64,
}

impl Tally {
    /// Adds another tally to this one.
    pub fn add(&mut self, o: Tally) {
        self.calls += o.calls;
        self.rated += o.rated;
        self.total += o.total;
        self.met += o.met;
    }

    /// Mean of the values, `None` when none was rated.
    pub fn mean(&self) -> Option<f64> {
        (self.rated > 0).then(|| self.total / self.rated as f64)
    }
}

/// Conversation figures that add up across days.
#[derive(Debug, Clone, Copy, Default, PartialEq, FromRow)]
pub struct ConversationTally {
    /// Calls with figures.
    pub calls: i64,
    /// Calls with a manager talk share, and its sum.
    pub talk_n: i64,
    /// Sum of manager talk shares.
    pub talk_sum: f64,
    /// Sum of questions the manager asked.
    pub questions_sum: f64,
    /// Calls with a manager monologue figure, and its sum (s).
    pub mono_n: i64,
    /// Sum of longest monologues, seconds.
    pub mono_sum: f64,
}

impl ConversationTally {
    fn add(&mut self, o: ConversationTally) {
        self.calls += o.calls;
        self.talk_n += o.talk_n;
        self.talk_sum += o.talk_sum;
        self.questions_sum += o.questions_sum;
        self.mono_n += o.mono_n;
        self.mono_sum += o.mono_sum;
    }
}

/// The quality figures of a scope over a period, as tallies.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QualityTallies {
    /// Scored calls and their overall scores, per UTC day (days since 1970-01-01), when read
    /// for one total ([`KpiKey::Total`]: a report's daily figures). Read per manager
    /// ([`KpiKey::Manager`]), each manager's calls of each part of the period (its whole days,
    /// a partial day at either edge) sit under the part's first day: whoever reads per manager
    /// only adds them up, and a company month is 200 rows instead of 5,600.
    pub days: BTreeMap<i64, Tally>,
    /// Per criterion id.
    pub criteria: BTreeMap<String, Tally>,
    /// Conversation figures of transcribed calls.
    pub conversation: ConversationTally,
}

impl QualityTallies {
    /// Adds another scope's tallies to these (the managers of a team add up to the team).
    pub fn add(&mut self, o: &QualityTallies) {
        for (day, t) in &o.days {
            self.days.entry(*day).or_default().add(*t);
        }
        for (c, t) in &o.criteria {
            self.criteria.entry(c.clone()).or_default().add(*t);
        }
        self.conversation.add(o.conversation);
    }
}

/// Which rows of a period come from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Part {
    /// Whole days `[first, end)` from the rollup tables.
    Days(i64, i64),
    /// `[from, to)` in ms from the raw tables.
    Raw(i64, i64),
}

/// Splits `[from, to)` into whole UTC days and the partial days at its edges.
pub(super) fn parts(from: i64, to: i64) -> Vec<Part> {
    let first = from.div_euclid(DAY_MS) + i64::from(from.rem_euclid(DAY_MS) != 0);
    let end = to.div_euclid(DAY_MS);
    if first >= end {
        return vec![Part::Raw(from, to)];
    }
    let mut v = Vec::with_capacity(3);
    if from < first * DAY_MS {
        v.push(Part::Raw(from, first * DAY_MS));
    }
    v.push(Part::Days(first, end));
    if end * DAY_MS < to {
        v.push(Part::Raw(end * DAY_MS, to));
    }
    v
}

/// Which of a period's quality reads: kept apart, as the KPIs need only the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// The scored calls and their overall scores (`QualityTallies::days`).
    Calls,
    /// The criteria and the conversation figures.
    Rest,
}

/// A day's tally, as the day queries return it.
#[derive(FromRow)]
struct DayTally {
    manager_id: Option<String>,
    day: i64,
    #[sqlx(flatten)]
    tally: Tally,
}

/// A criterion's tally, as the criterion queries return it.
#[derive(FromRow)]
struct CriterionTally {
    manager_id: Option<String>,
    criterion_id: String,
    #[sqlx(flatten)]
    tally: Tally,
}

/// A key's conversation tally, as the conversation queries return it.
#[derive(FromRow)]
struct KeyedConversation {
    manager_id: Option<String>,
    #[sqlx(flatten)]
    tally: ConversationTally,
}

// Every aggregate below is non-NULL and of its column's type on both backends (PostgreSQL's
// SUM of a BIGINT is NUMERIC, hence the casts), so rows decode straight into the tallies.

/// The raw aggregates of scored calls (`$1`..`$2` is the time range) per key and day.
fn raw_scores_sql(key: KpiKey, filter: &str) -> String {
    // Per day for a total; per manager, under the first day of `[$1, $2)` (see
    // [`QualityTallies::days`]).
    let (day, per_day): (String, &[&str]) = match key {
        KpiKey::Total => (format!("CAST({CALL_TIME} / {DAY_MS} AS BIGINT)"), &["day"]),
        KpiKey::Manager => (format!("CAST($1 / {DAY_MS} AS BIGINT)"), &[]),
    };
    format!(
        "SELECT {}, {day} AS day, COUNT(*) AS calls, \
                COUNT(s.overall) AS rated, COALESCE(SUM(s.overall), 0.0) AS total, \
                COUNT(CASE WHEN s.critical_failures > 0 THEN 1 END) AS met \
         FROM calls c JOIN scores s ON s.call_id = c.id \
         WHERE s.status = 'scored' AND {CALL_TIME} >= $1 AND {CALL_TIME} < $2{filter}{}",
        key.select("c.manager_id"),
        key.group_by("c.manager_id", per_day)
    )
}

fn raw_criteria_sql(key: KpiKey, filter: &str) -> String {
    format!(
        "SELECT {}, sc.criterion_id AS criterion_id, COUNT(*) AS calls, COUNT(sc.value) AS rated, \
                COALESCE(SUM(sc.value), 0.0) AS total, COUNT(CASE WHEN sc.met = 1 THEN 1 END) AS met \
         FROM calls c JOIN scores s ON s.call_id = c.id \
         JOIN score_criteria sc ON sc.call_id = c.id \
         WHERE s.status = 'scored' AND {CALL_TIME} >= $1 AND {CALL_TIME} < $2{filter}{}",
        key.select("c.manager_id"),
        key.group_by("c.manager_id", &["sc.criterion_id"])
    )
}

fn raw_conversation_sql(key: KpiKey, filter: &str) -> String {
    format!(
        "SELECT {}, COUNT(*) AS calls, COUNT(m.manager_talk_share) AS talk_n, \
                COALESCE(SUM(m.manager_talk_share), 0.0) AS talk_sum, \
                COALESCE(SUM(m.manager_questions), 0.0) AS questions_sum, \
                COUNT(m.manager_longest_monologue_s) AS mono_n, \
                COALESCE(SUM(m.manager_longest_monologue_s), 0.0) AS mono_sum \
         FROM calls c JOIN call_conversation m ON m.call_id = c.id \
         WHERE {CALL_TIME} >= $1 AND {CALL_TIME} < $2{filter}{}",
        key.select("c.manager_id"),
        key.group_by("c.manager_id", &[])
    )
}

/// The statements that write the rollup rows of the calls matching `filter` (a condition on
/// `c`, the calls), computed from the raw tables: the one definition of a rollup row, used by
/// the full rebuild (no filter) and by the refresh of one manager's day. Migration 0005 holds
/// the same backfill for databases made before the rollups (applied migrations are pinned).
fn rollup_inserts(filter: &str) -> [String; 3] {
    let day = format!("CAST({CALL_TIME} / {DAY_MS} AS BIGINT)");
    let manager = "COALESCE(c.manager_id, '')";
    [
        format!(
            "INSERT INTO quality_daily (manager_id, day, criterion_id, calls, rated, total, met) \
             SELECT {manager}, {day}, '', COUNT(*), COUNT(s.overall), \
                    COALESCE(SUM(s.overall), 0), COUNT(CASE WHEN s.critical_failures > 0 THEN 1 END) \
             FROM calls c JOIN scores s ON s.call_id = c.id WHERE s.status = 'scored'{filter} \
             GROUP BY {manager}, {day}"
        ),
        format!(
            "INSERT INTO quality_daily (manager_id, day, criterion_id, calls, rated, total, met) \
             SELECT {manager}, {day}, sc.criterion_id, COUNT(*), COUNT(sc.value), \
                    COALESCE(SUM(sc.value), 0), COUNT(CASE WHEN sc.met = 1 THEN 1 END) \
             FROM calls c JOIN scores s ON s.call_id = c.id \
             JOIN score_criteria sc ON sc.call_id = c.id WHERE s.status = 'scored'{filter} \
             GROUP BY {manager}, {day}, sc.criterion_id"
        ),
        format!(
            "INSERT INTO conversation_daily (manager_id, day, calls, talk_n, talk_sum, \
                    questions_sum, mono_n, mono_sum) \
             SELECT {manager}, {day}, COUNT(*), COUNT(m.manager_talk_share), \
                    COALESCE(SUM(m.manager_talk_share), 0), COALESCE(SUM(m.manager_questions), 0), \
                    COUNT(m.manager_longest_monologue_s), \
                    COALESCE(SUM(m.manager_longest_monologue_s), 0) \
             FROM calls c JOIN call_conversation m ON m.call_id = c.id WHERE 1 = 1{filter} \
             GROUP BY {manager}, {day}"
        ),
    ]
}

/// The statements that write the `deal_quality` rows of the deals of the calls matching
/// `filter` (a condition on `c`, the calls), per deal and manager of the calls: the one
/// definition of those rows, used by the full rebuild and the refresh of one deal. Migration
/// 0013 holds the same backfill.
fn deal_quality_inserts(filter: &str) -> [String; 2] {
    let manager = "COALESCE(c.manager_id, '')";
    [
        format!(
            "INSERT INTO deal_quality (deal_id, manager_id, criterion_id, calls, rated, total, met) \
             SELECT c.deal_id, {manager}, '', COUNT(*), COUNT(s.overall), \
                    COALESCE(SUM(s.overall), 0), 0 \
             FROM calls c JOIN scores s ON s.call_id = c.id \
             WHERE s.status = 'scored' AND c.deal_id IS NOT NULL{filter} \
             GROUP BY c.deal_id, {manager}"
        ),
        format!(
            "INSERT INTO deal_quality (deal_id, manager_id, criterion_id, calls, rated, total, met) \
             SELECT c.deal_id, {manager}, sc.criterion_id, COUNT(*), COUNT(sc.met), 0, \
                    COUNT(CASE WHEN sc.met = 1 THEN 1 END) \
             FROM calls c JOIN scores s ON s.call_id = c.id \
             JOIN score_criteria sc ON sc.call_id = c.id \
             WHERE s.status = 'scored' AND c.deal_id IS NOT NULL{filter} \
             GROUP BY c.deal_id, {manager}, sc.criterion_id"
        ),
    ]
}

/// The statement that writes the `deal_quality_total` rows of the deals matching `filter` (a
/// condition on `deal_quality`) from their `deal_quality` rows: a deal's quality summed over
/// the managers of its calls. Migration 0019 holds the same backfill.
fn deal_total_insert(filter: &str) -> String {
    format!(
        "INSERT INTO deal_quality_total (deal_id, criterion_id, calls, rated, total, met) \
         SELECT deal_id, criterion_id, SUM(calls), SUM(rated), SUM(total), SUM(met) \
         FROM deal_quality WHERE 1 = 1{filter} GROUP BY deal_id, criterion_id"
    )
}

/// Where one call's figures are rolled up (see [`Store::call_day`]).
pub(super) struct CallRollups {
    manager: String,
    day: i64,
    deal: Option<String>,
}

/// A stable 64-bit key for PostgreSQL's advisory lock on one manager's day.
fn lock_key(manager: &str, day: i64) -> i64 {
    let h = Sha256::new()
        .chain_update(manager.as_bytes())
        .chain_update(day.to_le_bytes())
        .finalize();
    i64::from_le_bytes(h[..8].try_into().unwrap_or_default())
}

impl Store {
    /// The quality tallies of `scope` over `[from, to)`: whole days from the rollups, the edges
    /// from the raw rows. `scope` must be resolved ([`Store::resolve_scope`]).
    pub async fn quality_tallies(
        &self,
        scope: &KpiScope,
        from: i64,
        to: i64,
    ) -> Result<QualityTallies, StoreError> {
        Ok(self
            .quality_tallies_by(scope, KpiKey::Total, from, to)
            .await?
            .remove(&None)
            .unwrap_or_default())
    }

    /// [`Store::quality_tallies`] per key: one set of reads for every manager of the scope,
    /// kept until the rollups change ([`Store::memo`]).
    pub async fn quality_tallies_by(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<BTreeMap<Option<String>, QualityTallies>, StoreError> {
        let (calls, rest) = tokio::try_join!(
            self.kept_tallies(Reads::Calls, scope, key, from, to),
            self.kept_tallies(Reads::Rest, scope, key, from, to),
        )?;
        let mut out = (*rest).clone();
        for (k, t) in calls.iter() {
            out.entry(k.clone()).or_default().days = t.days.clone();
        }
        Ok(out)
    }

    /// The scored calls alone of [`Store::quality_tallies_by`] (its `days`; the criteria and
    /// conversation figures are left empty): all the KPIs read. Kept apart, so the KPIs and a
    /// page's other figures over the same managers share it.
    pub async fn quality_calls_by(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Arc<BTreeMap<Option<String>, QualityTallies>>, StoreError> {
        self.kept_tallies(Reads::Calls, scope, key, from, to).await
    }

    async fn kept_tallies(
        &self,
        reads: Reads,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Arc<BTreeMap<Option<String>, QualityTallies>>, StoreError> {
        let memo_key = format!("tallies {reads:?} {scope:?} {key:?} {from} {to}");
        let rows = |m: &BTreeMap<Option<String>, QualityTallies>| {
            m.values()
                .map(|t| t.days.len() + t.criteria.len() + 1)
                .sum()
        };
        self.memo(Depends::Quality)
            .await?
            .get(memo_key, rows, || {
                self.read_quality_tallies_by(reads, scope, key, from, to)
            })
            .await
    }

    async fn read_quality_tallies_by(
        &self,
        reads: Reads,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<BTreeMap<Option<String>, QualityTallies>, StoreError> {
        // The rollups file calls without a manager under '': the same key as a raw NULL.
        let rolled = "NULLIF(q.manager_id, '')";
        let mut out: BTreeMap<Option<String>, QualityTallies> = BTreeMap::new();
        for part in parts(from, to) {
            let (calls_sql, criteria_sql, conversation_sql, a, b) = match part {
                Part::Days(first, end) => {
                    let filter = scope.filter("q.manager_id");
                    let (day, per_day): (&str, &[&str]) = match key {
                        KpiKey::Total => ("day", &["day"]),
                        KpiKey::Manager => ("CAST($1 AS BIGINT)", &[]),
                    };
                    (
                        format!(
                            "SELECT {}, {day} AS day, CAST(SUM(calls) AS BIGINT) AS calls, CAST(SUM(rated) AS BIGINT) AS rated, \
                                    COALESCE(SUM(total), 0.0) AS total, CAST(SUM(met) AS BIGINT) AS met \
                             FROM quality_daily q WHERE criterion_id = '' \
                               AND day >= $1 AND day < $2{filter}{}",
                            key.select(rolled),
                            key.group_by(rolled, per_day),
                        ),
                        format!(
                            "SELECT {}, criterion_id, CAST(SUM(calls) AS BIGINT) AS calls, CAST(SUM(rated) AS BIGINT) AS rated, \
                                    COALESCE(SUM(total), 0.0) AS total, CAST(SUM(met) AS BIGINT) AS met \
                             FROM quality_daily q WHERE criterion_id <> '' \
                               AND day >= $1 AND day < $2{filter}{}",
                            key.select(rolled),
                            key.group_by(rolled, &["criterion_id"])
                        ),
                        format!(
                            "SELECT {}, CAST(COALESCE(SUM(calls), 0) AS BIGINT) AS calls, \
                                    CAST(COALESCE(SUM(talk_n), 0) AS BIGINT) AS talk_n, \
                                    COALESCE(SUM(talk_sum), 0.0) AS talk_sum, \
                                    COALESCE(SUM(questions_sum), 0.0) AS questions_sum, \
                                    CAST(COALESCE(SUM(mono_n), 0) AS BIGINT) AS mono_n, \
                                    COALESCE(SUM(mono_sum), 0.0) AS mono_sum \
                             FROM conversation_daily q WHERE day >= $1 AND day < $2{filter}{}",
                            key.select(rolled),
                            key.group_by(rolled, &[])
                        ),
                        first,
                        end,
                    )
                }
                Part::Raw(a, b) => {
                    let filter = scope.filter("c.manager_id");
                    (
                        raw_scores_sql(key, &filter),
                        raw_criteria_sql(key, &filter),
                        raw_conversation_sql(key, &filter),
                        a,
                        b,
                    )
                }
            };
            let (days, criteria, conversation) = match reads {
                Reads::Calls => (
                    scope
                        .fetch_all::<DayTally, _>(&self.pool, &calls_sql, a, b)
                        .await?,
                    Vec::new(),
                    Vec::new(),
                ),
                Reads::Rest => {
                    let (criteria, conversation) = tokio::try_join!(
                        scope.fetch_all::<CriterionTally, _>(&self.pool, &criteria_sql, a, b),
                        scope.fetch_all::<KeyedConversation, _>(
                            &self.pool,
                            &conversation_sql,
                            a,
                            b
                        ),
                    )?;
                    (Vec::new(), criteria, conversation)
                }
            };
            for r in days {
                let t = out.entry(r.manager_id).or_default();
                t.days.entry(r.day).or_default().add(r.tally);
            }
            for r in criteria {
                let t = out.entry(r.manager_id).or_default();
                t.criteria.entry(r.criterion_id).or_default().add(r.tally);
            }
            for r in conversation {
                out.entry(r.manager_id)
                    .or_default()
                    .conversation
                    .add(r.tally);
            }
        }
        Ok(out)
    }

    /// Recomputes every rollup row from the raw tables (after a bulk load that bypassed the
    /// write paths, such as the reports benchmark's generated calls). Returns the rows written.
    pub async fn rebuild_rollups(&self) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        sqlx::query("DELETE FROM quality_daily")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM conversation_daily")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deal_quality")
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deal_quality_total")
            .execute(&mut *tx)
            .await?;
        let mut rows = 0;
        let inserts = rollup_inserts("")
            .into_iter()
            .chain(deal_quality_inserts(""))
            .chain([deal_total_insert("")]);
        for sql in inserts {
            rows += sqlx::query(&sql).execute(&mut *tx).await?.rows_affected();
        }
        Self::bump_rollup_stamp(&mut tx).await?;
        tx.commit().await?;
        Ok(rows)
    }

    /// Where a call's figures are rolled up: its manager (`''` for none), its UTC day and its
    /// deal, if the call exists.
    pub(super) async fn call_day(
        conn: &mut WriteTx,
        call: CallId,
    ) -> Result<Option<CallRollups>, StoreError> {
        let row: Option<(String, i64, Option<String>)> = sqlx::query_as(
            "SELECT COALESCE(manager_id, '') AS m, COALESCE(started_at, created_at) AS at, \
                    deal_id AS deal FROM calls WHERE id = $1",
        )
        .bind(call.to_string())
        .fetch_optional(&mut **conn)
        .await?;
        Ok(row.map(|(manager, at, deal)| CallRollups {
            manager,
            day: at.div_euclid(DAY_MS),
            deal,
        }))
    }

    /// Recomputes everything rolled up from one call: its manager's day and its deal.
    pub(super) async fn refresh_call_rollups(
        &self,
        conn: &mut WriteTx,
        at: &CallRollups,
    ) -> Result<(), StoreError> {
        self.refresh_rollups(conn, &at.manager, at.day).await?;
        if let Some(deal) = &at.deal {
            self.refresh_deal_quality(conn, deal).await?;
        }
        // Last, after every per-key lock: what the dashboards kept is now out of date.
        Self::bump_rollup_stamp(conn).await
    }

    /// Moves the rollups' stamp (src/store/memo.rs), inside the caller's transaction.
    async fn bump_rollup_stamp(conn: &mut WriteTx) -> Result<(), StoreError> {
        sqlx::query("UPDATE rollup_stamp SET generation = generation + 1 WHERE id = 1")
            .execute(&mut **conn)
            .await?;
        Ok(())
    }

    /// Recomputes one deal's `deal_quality` and `deal_quality_total` rows from the raw tables,
    /// inside the caller's transaction (serialised per deal on PostgreSQL, as the daily rows
    /// are per day).
    pub(super) async fn refresh_deal_quality(
        &self,
        conn: &mut WriteTx,
        deal: &str,
    ) -> Result<(), StoreError> {
        if let Some(lock) = super::dialect::key_lock(self.backend) {
            sqlx::query(lock)
                .bind(lock_key(deal, i64::MIN))
                .execute(&mut **conn)
                .await?;
        }
        for table in ["deal_quality", "deal_quality_total"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE deal_id = $1"))
                .bind(deal.to_string())
                .execute(&mut **conn)
                .await?;
        }
        let inserts = deal_quality_inserts(" AND c.deal_id = $1")
            .into_iter()
            .chain([deal_total_insert(" AND deal_id = $1")]);
        for sql in inserts {
            sqlx::query(&sql)
                .bind(deal.to_string())
                .execute(&mut **conn)
                .await?;
        }
        Ok(())
    }

    /// Recomputes the rollup rows of one manager's day from the raw tables, inside the
    /// caller's transaction (which, on SQLite, holds the write turn).
    pub(super) async fn refresh_rollups(
        &self,
        conn: &mut WriteTx,
        manager: &str,
        day: i64,
    ) -> Result<(), StoreError> {
        if let Some(lock) = super::dialect::key_lock(self.backend) {
            sqlx::query(lock)
                .bind(lock_key(manager, day))
                .execute(&mut **conn)
                .await?;
        }
        let manager_filter = if manager.is_empty() {
            " AND c.manager_id IS NULL"
        } else {
            " AND c.manager_id = $3"
        };
        let filter = format!(" AND {CALL_TIME} >= $1 AND {CALL_TIME} < $2{manager_filter}");
        for table in ["quality_daily", "conversation_daily"] {
            sqlx::query(&format!(
                "DELETE FROM {table} WHERE manager_id = $1 AND day = $2"
            ))
            .bind(manager.to_string())
            .bind(day)
            .execute(&mut **conn)
            .await?;
        }
        for sql in rollup_inserts(&filter) {
            let query = sqlx::query(&sql)
                .bind(day * DAY_MS)
                .bind((day + 1) * DAY_MS);
            let query = if manager.is_empty() {
                query
            } else {
                query.bind(manager.to_string())
            };
            query.execute(&mut **conn).await?;
        }
        Ok(())
    }

    /// [`Store::refresh_call_rollups`] for `call`.
    pub(super) async fn refresh_rollups_of(
        &self,
        conn: &mut WriteTx,
        call: CallId,
    ) -> Result<(), StoreError> {
        if let Some(at) = Self::call_day(conn, call).await? {
            self.refresh_call_rollups(conn, &at).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_period_splits_into_whole_days_and_its_edges() {
        let d = DAY_MS;
        assert_eq!(parts(10 * d, 40 * d), vec![Part::Days(10, 40)]);
        assert_eq!(
            parts(10 * d + 5, 40 * d + 7),
            vec![
                Part::Raw(10 * d + 5, 11 * d),
                Part::Days(11, 40),
                Part::Raw(40 * d, 40 * d + 7)
            ]
        );
        assert_eq!(
            parts(10 * d + 5, 11 * d + 7),
            vec![Part::Raw(10 * d + 5, 11 * d + 7)]
        );
        assert_eq!(parts(10 * d, 11 * d), vec![Part::Days(10, 11)]);
        assert_eq!(
            parts(10 * d + 1, 11 * d),
            vec![Part::Raw(10 * d + 1, 11 * d)]
        );
    }

    #[test]
    fn tallies_add_up_to_the_mean_of_all_values() {
        let mut t = Tally::default();
        assert_eq!(t.mean(), None);
        t.add(Tally {
            calls: 2,
            rated: 1,
            total: 50.0,
            met: 0,
        });
        t.add(Tally {
            calls: 1,
            rated: 1,
            total: 100.0,
            met: 1,
        });
        assert_eq!(t.mean(), Some(75.0));
        assert_eq!((t.calls, t.met), (3, 1));
        assert_ne!(lock_key("m1", 1), lock_key("m1", 2));
    }
}
