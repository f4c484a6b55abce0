//! CRM rows: batched, idempotent upserts by the contract's keys, in one transaction per file.

use std::collections::{BTreeSet, HashSet};

use super::bulk::insert_batch;
use super::crm_rollups::{self, day_of, DaySpan, DAY_MS};
use super::{dialect, Backend, Store, StoreError, WriteTx};
use crate::analytics::entity::{Entity, Value};

/// One file's import transaction. Dropping it without [`CrmImport::commit`] rolls back.
pub struct CrmImport {
    tx: WriteTx,
    entity: Entity,
    count_before: i64,
    backend: Backend,
    /// Secondary indexes dropped for a bulk load into an empty table, rebuilt at commit.
    rebuild: Vec<String>,
    /// The CRM figures this process keeps, dropped at commit.
    memo: std::sync::Arc<super::memo::Memo>,
    /// The days whose CRM rollup rows the rows upserted so far may change, before and after
    /// (tracked only when the table was not empty: a first load rebuilds them all).
    days: BTreeSet<i64>,
}

/// What importing one file did, as the import log keeps it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ImportLogRow {
    /// The entity the file held.
    pub entity: Entity,
    /// The file's name.
    pub file: String,
    /// When (ms).
    pub imported_at: i64,
    /// Data rows read.
    pub rows_read: i64,
    /// Rows with a new key.
    pub inserted: i64,
    /// Rows changed.
    pub updated: i64,
    /// Rows the same as before.
    pub unchanged: i64,
    /// Rows refused.
    pub rejected: i64,
    /// 1 when written, 0 when strict mode refused the file.
    pub committed: i64,
}

impl Store {
    /// Records what importing one file did (the import page shows the latest per entity).
    pub async fn log_crm_import(&self, row: &ImportLogRow) -> Result<(), StoreError> {
        let mut conn = self.write_one().await?;
        sqlx::query(
            "INSERT INTO crm_import_log (entity, file, imported_at, rows_read, inserted, updated, \
                                         unchanged, rejected, committed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(row.entity.as_str())
        .bind(row.file.clone())
        .bind(row.imported_at)
        .bind(row.rows_read)
        .bind(row.inserted)
        .bind(row.updated)
        .bind(row.unchanged)
        .bind(row.rejected)
        .bind(row.committed)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The latest import of each entity.
    pub async fn last_crm_imports(&self) -> Result<Vec<ImportLogRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT entity, file, imported_at, rows_read, inserted, updated, unchanged, rejected, \
                    CAST(committed AS BIGINT) AS committed \
             FROM crm_import_log l \
             WHERE imported_at = (SELECT MAX(imported_at) FROM crm_import_log m \
                                  WHERE m.entity = l.entity) \
             ORDER BY entity",
        )
        .fetch_all(&self.pool)
        .await?)
    }

    /// Manager ids known from managers.csv, for checking the rows that refer to them.
    pub async fn crm_manager_ids(&self) -> Result<HashSet<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar("SELECT manager_id FROM crm_managers")
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().collect())
    }

    /// Starts importing one file of `entity`: takes the writer's turn and opens the transaction.
    pub async fn begin_crm_import(&self, entity: Entity) -> Result<CrmImport, StoreError> {
        let mut tx = self.write().await?;
        let setup = dialect::import_setup(self.backend, entity.table());
        sqlx::query(&setup).execute(&mut *tx).await?;
        let count_before = count_rows(&mut tx, entity).await?;
        let rebuild = if count_before == 0 {
            drop_secondary_indexes(&mut tx, self.backend, entity.table()).await?
        } else {
            Vec::new()
        };
        Ok(CrmImport {
            tx,
            entity,
            count_before,
            backend: self.backend,
            rebuild,
            memo: self.crm_memo.clone(),
            days: BTreeSet::new(),
        })
    }
}

async fn count_rows(tx: &mut WriteTx, entity: Entity) -> Result<i64, StoreError> {
    Ok(
        sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", entity.table()))
            .fetch_one(&mut **tx)
            .await?,
    )
}

/// Drops the table's secondary (non-unique) indexes and returns the statements that rebuild
/// them: the first load into an empty table builds them once at commit instead.
///
/// Maintaining three secondary indexes row by row was most of a 2-million-row first import
/// (on PostgreSQL 36 s of a plain `INSERT`, against 8.5 s with the primary key alone); building
/// each from the loaded table afterwards takes 1-4 s. The primary key and unique indexes stay:
/// the upsert needs them, and they catch a key repeated in the file. On PostgreSQL the drop
/// holds an ACCESS EXCLUSIVE lock until commit, which only holds up readers of a table that
/// was empty; SQLite's readers keep reading their snapshot.
async fn drop_secondary_indexes(
    tx: &mut WriteTx,
    backend: Backend,
    table: &str,
) -> Result<Vec<String>, StoreError> {
    let sql = dialect::secondary_indexes(backend);
    let rows: Vec<(String, String)> = sqlx::query_as(sql).bind(table).fetch_all(&mut **tx).await?;
    let mut rebuild = Vec::with_capacity(rows.len());
    for (name, create) in rows {
        rebuild.push(create);
        sqlx::query(&format!("DROP INDEX \"{name}\""))
            .execute(&mut **tx)
            .await?;
    }
    Ok(rebuild)
}

/// `days` as runs of consecutive days, each rebuilt by one pair of statements; past
/// [`MAX_RUNS`] runs, one span from the first to the last (fewer statements, more rows).
fn day_runs(days: &BTreeSet<i64>) -> Vec<DaySpan> {
    let mut runs: Vec<DaySpan> = Vec::new();
    for &day in days {
        match runs.last_mut() {
            Some(run) if run.1 + 1 == day => run.1 = day,
            _ => runs.push((day, day)),
        }
    }
    match (runs.first(), runs.last()) {
        (Some(first), Some(last)) if runs.len() > MAX_RUNS => vec![(first.0, last.1)],
        _ => runs,
    }
}

/// The most runs of days an import rebuilds one by one (see [`day_runs`]).
const MAX_RUNS: usize = 500;

/// What follows the rows of an upsert of `entity`: new keys are inserted, known keys updated
/// only where a value differs, so the affected-row count says what changed.
fn on_conflict_update(entity: Entity) -> String {
    let cols = entity.columns();
    let keys: Vec<&str> = cols.iter().filter(|c| c.key).map(|c| c.name).collect();
    let others: Vec<&str> = cols.iter().filter(|c| !c.key).map(|c| c.name).collect();
    let set: Vec<String> = others
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let differs: Vec<String> = others
        .iter()
        .map(|c| format!("{}.{c} IS DISTINCT FROM excluded.{c}", entity.table()))
        .collect();
    format!(
        " ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
        keys.join(", "),
        set.join(", "),
        differs.join(" OR ")
    )
}

impl CrmImport {
    /// Upserts a batch whose keys are distinct; returns how many rows were inserted or changed.
    pub async fn upsert(&mut self, rows: Vec<Vec<Value>>) -> Result<u64, StoreError> {
        let names: Vec<&str> = self.entity.columns().iter().map(|c| c.name).collect();
        let days = match self.count_before {
            0 => Vec::new(),
            _ => self.batch_days(&names, &rows).await?,
        };
        let affected = insert_batch(
            &mut self.tx,
            self.entity.table(),
            &names,
            rows,
            &on_conflict_update(self.entity),
        )
        .await?;
        // A batch of unchanged rows (a daily full export) changes no rollup row.
        if affected > 0 {
            self.days.extend(days);
        }
        Ok(affected)
    }

    /// The days of `rows` (a batch about to be upserted), as they are in the file and as their
    /// keys are stored now: the rollup days the batch can change.
    async fn batch_days(
        &mut self,
        names: &[&str],
        rows: &[Vec<Value>],
    ) -> Result<Vec<i64>, StoreError> {
        let Some((key, table, time, in_rows)) = crm_rollups::day_source(self.entity) else {
            return Ok(Vec::new());
        };
        let column = |name: &str| names.iter().position(|n| *n == name);
        let mut times: Vec<i64> = Vec::new();
        if let Some(t) = column(time).filter(|_| in_rows) {
            times.extend(rows.iter().filter_map(|r| match r.get(t) {
                Some(Value::Int(Some(ms))) => Some(*ms),
                _ => None,
            }));
        }
        let keys: Vec<&str> = match column(key) {
            Some(k) => rows
                .iter()
                .filter_map(|r| match r.get(k) {
                    Some(Value::Text(Some(id))) => Some(id.as_str()),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        let mut old_days: Vec<i64> = Vec::new();
        for chunk in keys.chunks(5_000) {
            let list: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT DISTINCT CAST({time} / {DAY_MS} AS BIGINT) FROM {table} WHERE {key} IN ({})",
                list.join(", ")
            );
            let query = chunk
                .iter()
                .fold(sqlx::query_scalar(&sql), |q, id| q.bind(*id));
            let old: Vec<i64> = query.fetch_all(&mut *self.tx).await?;
            old_days.extend(old);
        }
        old_days.extend(times.into_iter().map(day_of));
        Ok(old_days)
    }

    /// Commits and returns how many rows are new (the rest of the affected ones were updates).
    pub async fn commit(mut self) -> Result<u64, StoreError> {
        let rebuild = std::mem::take(&mut self.rebuild);
        if !rebuild.is_empty() {
            self.rebuild_indexes(self.entity.table(), &rebuild).await?;
        }
        let after = count_rows(&mut self.tx, self.entity).await?;
        // In the same transaction, so no reader sees the rows without their rollups.
        // A first load rebuilds every row; later imports the days they touched.
        let (statements, rollup_indexes) = match self.count_before {
            0 => {
                // Rewritten whole: their secondary indexes are built once, after the rows (a
                // first load of 2M activities on PostgreSQL: the rollup insert took 6.1-6.8 s
                // with its index kept, 3.6-3.8 s without, and the index 0.7 s after).
                let mut dropped = Vec::new();
                for table in crm_rollups::tables(self.entity) {
                    let creates = drop_secondary_indexes(&mut self.tx, self.backend, table).await?;
                    dropped.push((*table, creates));
                }
                (
                    crm_rollups::rebuild(self.backend, self.entity, None),
                    dropped,
                )
            }
            _ => (
                day_runs(&self.days)
                    .into_iter()
                    .flat_map(|run| crm_rollups::rebuild(self.backend, self.entity, Some(run)))
                    .collect(),
                Vec::new(),
            ),
        };
        for (sql, binds) in statements {
            // Not prepared for reuse: PostgreSQL would plan a reused statement once for any
            // days (after five runs), a scan of every row instead of the days' index range.
            let query = binds
                .into_iter()
                .fold(sqlx::query(&sql).persistent(false), |q, v| q.bind(v));
            query.execute(&mut *self.tx).await?;
        }
        for (table, creates) in rollup_indexes {
            self.rebuild_indexes(table, &creates).await?;
        }
        self.tx.commit().await?;
        self.memo.forget();
        Ok(u64::try_from(after - self.count_before).unwrap_or(0))
    }

    /// Builds the indexes [`drop_secondary_indexes`] dropped from `table` (`creates`), and
    /// refreshes its planner statistics, which otherwise describe the empty or replaced table
    /// (PostgreSQL, until autovacuum) or lack the rebuilt indexes (SQLite, where a `DROP INDEX`
    /// deletes their `sqlite_stat1` rows; left alone where nothing was ever analysed).
    async fn rebuild_indexes(&mut self, table: &str, creates: &[String]) -> Result<(), StoreError> {
        if let Some(setup) = dialect::index_rebuild_setup(self.backend) {
            sqlx::query(setup).execute(&mut *self.tx).await?;
        }
        let analyze = match dialect::statistics_kept(self.backend) {
            Some(check) => sqlx::query(check)
                .fetch_optional(&mut *self.tx)
                .await?
                .is_some(),
            None => true,
        };
        for create in creates {
            sqlx::query(create).execute(&mut *self.tx).await?;
        }
        if analyze {
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(&mut *self.tx)
                .await?;
        }
        Ok(())
    }

    /// Undoes everything this file wrote.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touched_days_are_rebuilt_in_runs_of_consecutive_days() {
        let days: BTreeSet<i64> = [3, 4, 5, 9, 11, 12].into_iter().collect();
        assert_eq!(day_runs(&days), [(3, 5), (9, 9), (11, 12)]);
        assert!(day_runs(&BTreeSet::new()).is_empty());
        let scattered: BTreeSet<i64> = (0..=2 * MAX_RUNS as i64).step_by(2).collect();
        assert_eq!(day_runs(&scattered), [(0, 2 * MAX_RUNS as i64)]);
    }
}
