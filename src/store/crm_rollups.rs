//! Daily CRM rollups (decision 0023): activities per UTC day, manager and type
//! (`crm_activity_daily`), and deals per day of creation, manager, status and the set of stages
//! they have rows for (`crm_deal_daily`). A company month then reads a few thousand day rows
//! instead of every activity and every deal joined to its stages.
//!
//! Unlike the quality rollups, these are rebuilt in full at the end of each import of a table
//! they read ([`rebuild`]), inside the import's transaction: an import already rewrites those
//! tables, a full rebuild cannot drift, and the CRM tables have no other writer. Readers split
//! a period as the quality reports do ([`parts`]): whole UTC days from the rollups, the partial
//! days at its edges from the raw rows, so any `[from, to)` gives the raw rows' figures.

use std::collections::HashMap;
use std::hash::Hash;

use super::kpis::{ActivityCount, KpiKey, KpiScope};
pub(super) use super::rollups::DAY_MS;
use super::rollups::{parts, Part};
use super::{Backend, Store, StoreError};
use crate::analytics::entity::{ActivityType, DealStatus, Entity};

/// The UTC days `(first, last)`, both included, whose rollup rows an import may have changed.
pub(super) type DaySpan = (i64, i64);

/// A rollup statement and its bound values.
pub(super) type Statement = (String, Vec<i64>);

/// The day a time (ms) is rolled up under: the same truncating division the statements use.
pub(super) fn day_of(ms: i64) -> i64 {
    ms / DAY_MS
}

/// Where the rollups reading `entity`'s table take a row's day from, to track what an import
/// touches: (the file's key column to look up, the table and key column holding the time, the
/// time column, whether the file's rows carry that time themselves).
pub(super) fn day_source(
    entity: Entity,
) -> Option<(&'static str, &'static str, &'static str, bool)> {
    match entity {
        Entity::Activities => Some(("activity_id", "crm_activities", "at", true)),
        Entity::Deals => Some(("deal_id", "crm_deals", "created_at", true)),
        Entity::DealStages => Some(("deal_id", "crm_deals", "created_at", false)),
        _ => None,
    }
}

/// The rollup tables that read `entity`'s table.
pub(super) fn tables(entity: Entity) -> &'static [&'static str] {
    match entity {
        Entity::Activities => &["crm_activity_daily"],
        Entity::Deals | Entity::DealStages => &["crm_deal_daily"],
        _ => &[],
    }
}

/// The statements that rebuild the rollups reading `entity`'s table (none for the others):
/// every row when `span` is `None`, else the rows of the days in `span`. Migration 0017 holds
/// the same backfill for databases imported before the rollups.
pub(super) fn rebuild(backend: Backend, entity: Entity, span: Option<DaySpan>) -> Vec<Statement> {
    let day = |column: &str| format!("CAST({column} / {DAY_MS} AS BIGINT)");
    // The span's rows: a time range an index can serve, then exactly the days. Day 0 and the
    // days before it also hold the times up to a day earlier (the division truncates towards
    // zero), so their range starts a day sooner.
    let low = |first: i64| match first {
        1.. => first * DAY_MS - 1,
        _ => (first - 1) * DAY_MS,
    };
    let within = |column: &str| match span {
        None => (String::new(), String::new(), Vec::new()),
        Some((first, last)) => (
            " WHERE day >= $1 AND day <= $2".to_string(),
            format!(
                " WHERE {column} > $3 AND {column} < $4 AND {d} >= $1 AND {d} <= $2",
                d = day(column)
            ),
            vec![first, last, low(first), (last + 1) * DAY_MS],
        ),
    };
    match entity {
        Entity::Activities => {
            let (delete_where, rows_where, binds) = within("a.at");
            vec![
                (
                    format!("DELETE FROM crm_activity_daily{delete_where}"),
                    binds[..binds.len().min(2)].to_vec(),
                ),
                (
                    format!(
                        "INSERT INTO crm_activity_daily (day, manager_id, type, total, productive) \
                         SELECT {day}, a.manager_id, a.type, COUNT(*), \
                                COUNT(CASE WHEN a.outcome = 'productive' THEN 1 END) \
                         FROM crm_activities a{rows_where} GROUP BY {day}, a.manager_id, a.type",
                        day = day("a.at")
                    ),
                    binds,
                ),
            ]
        }
        Entity::Deals | Entity::DealStages => {
            let (delete_where, rows_where, binds) = within("d.created_at");
            // The deal's stage names as a sorted JSON array: exact whatever the names hold.
            let stages = match backend {
                Backend::Sqlite => "(SELECT json_group_array(s.stage ORDER BY s.stage) \
                                    FROM crm_deal_stages s WHERE s.deal_id = d.deal_id)"
                    .to_string(),
                Backend::Postgres => {
                    "COALESCE((SELECT CAST(json_agg(s.stage ORDER BY s.stage) AS TEXT) \
                                      FROM crm_deal_stages s WHERE s.deal_id = d.deal_id), '[]')"
                        .to_string()
                }
            };
            vec![
                (
                    format!("DELETE FROM crm_deal_daily{delete_where}"),
                    binds[..binds.len().min(2)].to_vec(),
                ),
                (
                    format!(
                        "INSERT INTO crm_deal_daily (day, manager_id, status, stages, deals) \
                         SELECT day, manager_id, status, stages, COUNT(*) FROM ( \
                           SELECT {day} AS day, d.manager_id, d.status, \
                                  CASE WHEN d.status = '{won}' THEN '[]' ELSE {stages} END AS stages \
                           FROM crm_deals d{rows_where}) t \
                         GROUP BY day, manager_id, status, stages",
                        day = day("d.created_at"),
                        won = DealStatus::Won,
                    ),
                    binds,
                ),
            ]
        }
        _ => Vec::new(),
    }
}

/// Adds `rows` into `sums` by key.
fn add<K: Eq + Hash, V: std::ops::AddAssign + Default>(
    sums: &mut HashMap<K, V>,
    rows: impl IntoIterator<Item = (K, V)>,
) {
    for (k, v) in rows {
        *sums.entry(k).or_default() += v;
    }
}

/// How far a deal got in `funnel`: its last index when won, else the furthest funnel stage
/// it has a row for, -1 when none (as `kpi_stage_reach`'s raw statement decides).
fn reach(status: &str, stages: &[String], funnel: &[String]) -> i64 {
    if status == DealStatus::Won.as_str() {
        return funnel.len() as i64 - 1;
    }
    stages
        .iter()
        .filter_map(|s| funnel.iter().position(|f| f == s))
        .max()
        .map_or(-1, |i| i as i64)
}

impl Store {
    /// Activities in `[from, to)` by key and type: (all, productive).
    pub(super) async fn activity_counts(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
    ) -> Result<Vec<ActivityCount>, StoreError> {
        let rolled = format!(
            "SELECT {}, r.type AS kind, CAST(SUM(r.total) AS BIGINT) AS total, \
                    CAST(SUM(r.productive) AS BIGINT) AS productive \
             FROM crm_activity_daily r WHERE r.day >= $1 AND r.day < $2{}{}",
            key.select("r.manager_id"),
            scope.filter("r.manager_id"),
            key.group_by("r.manager_id", &["r.type"])
        );
        let raw = format!(
            "SELECT {}, a.type AS kind, COUNT(*) AS total, \
                    COUNT(CASE WHEN a.outcome = 'productive' THEN 1 END) AS productive \
             FROM crm_activities a WHERE a.at >= $1 AND a.at < $2{}{}",
            key.select("a.manager_id"),
            scope.filter("a.manager_id"),
            key.group_by("a.manager_id", &["a.type"])
        );
        let mut sums: HashMap<(Option<String>, ActivityType), (i64, i64)> = HashMap::new();
        for part in parts(from, to) {
            let (sql, a, b) = match part {
                Part::Days(a, b) => (&rolled, a, b),
                Part::Raw(a, b) => (&raw, a, b),
            };
            let rows: Vec<ActivityCount> = scope.fetch_all(&self.pool, sql, a, b).await?;
            for r in rows {
                let e = sums.entry((r.manager_id, r.kind)).or_default();
                e.0 += r.total;
                e.1 += r.productive;
            }
        }
        Ok(sums
            .into_iter()
            .map(|((manager_id, kind), (total, productive))| ActivityCount {
                manager_id,
                kind,
                total,
                productive,
            })
            .collect())
    }

    /// For deals created in `[from, to)`: how many reached each funnel stage index (the last
    /// one is implied by status won), as (key, index, count); index -1 = no funnel stage.
    pub async fn kpi_stage_reach(
        &self,
        scope: &KpiScope,
        key: KpiKey,
        from: i64,
        to: i64,
        funnel: &[String],
    ) -> Result<Vec<(Option<String>, i64, i64)>, StoreError> {
        let rolled = format!(
            "SELECT {}, r.status AS status, r.stages AS stages, CAST(SUM(r.deals) AS BIGINT) AS n \
             FROM crm_deal_daily r WHERE r.day >= $1 AND r.day < $2{}{}",
            key.select("r.manager_id"),
            scope.filter("r.manager_id"),
            key.group_by("r.manager_id", &["r.status", "r.stages"])
        );
        let raw = raw_stage_reach(scope, key, funnel);
        let mut sums: HashMap<(Option<String>, i64), i64> = HashMap::new();
        for part in parts(from, to) {
            match part {
                Part::Days(a, b) => {
                    let rows: Vec<(Option<String>, String, String, i64)> =
                        scope.fetch_all(&self.pool, &rolled, a, b).await?;
                    for (k, status, stages, n) in rows {
                        let stages: Vec<String> = serde_json::from_str(&stages).map_err(|e| {
                            StoreError::Corrupt(format!("crm_deal_daily stages {stages:?}: {e}"))
                        })?;
                        add(&mut sums, [((k, reach(&status, &stages, funnel)), n)]);
                    }
                }
                Part::Raw(a, b) => {
                    let rows: Vec<(Option<String>, i64, i64)> =
                        scope.fetch_all(&self.pool, &raw, a, b).await?;
                    add(&mut sums, rows.into_iter().map(|(k, r, n)| ((k, r), n)));
                }
            }
        }
        Ok(sums.into_iter().map(|((k, r), n)| (k, r, n)).collect())
    }
}

/// `kpi_stage_reach` over the raw rows: each deal created in the range joined to its stages.
fn raw_stage_reach(scope: &KpiScope, key: KpiKey, funnel: &[String]) -> String {
    let last = funnel.len() as i64 - 1;
    let cases: String = funnel
        .iter()
        .enumerate()
        .map(|(i, s)| format!(" WHEN {} THEN {i}", super::kpis::literal(s)))
        .collect();
    format!(
        "SELECT manager_id, r, COUNT(*) AS n FROM (\
           SELECT {key}, d.deal_id, CASE WHEN d.status = '{won}' THEN {last} \
             ELSE COALESCE(MAX(CASE s.stage{cases} END), -1) END AS r \
           FROM crm_deals d LEFT JOIN crm_deal_stages s ON s.deal_id = d.deal_id \
           WHERE d.created_at >= $1 AND d.created_at < $2{filter} \
           GROUP BY d.deal_id, d.status, d.manager_id) t GROUP BY manager_id, r",
        key = key.select("d.manager_id"),
        won = DealStatus::Won,
        filter = scope.filter("d.manager_id")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deal_reaches_its_furthest_funnel_stage_whatever_the_order_of_its_rows() {
        let funnel: Vec<String> = ["new", "qualified", "meeting", "won"]
            .map(String::from)
            .to_vec();
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(reach("won", &[], &funnel), 3);
        assert_eq!(reach("open", &[], &funnel), -1);
        assert_eq!(reach("lost", &s(&["meeting", "new"]), &funnel), 2);
        assert_eq!(reach("open", &s(&["qualified", "other"]), &funnel), 1);
        assert_eq!(reach("open", &s(&["other"]), &funnel), -1);
    }
}
