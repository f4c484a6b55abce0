//! CRM rows: batched, idempotent upserts by the contract's keys, in one transaction per file.

use std::collections::HashSet;

use sqlx::{Any, Row, Transaction};

use super::{Backend, Store, StoreError};
use crate::analytics::entity::{Entity, Value};

/// One file's import transaction. Dropping it without [`CrmImport::commit`] rolls back.
pub struct CrmImport<'a> {
    tx: Transaction<'static, Any>,
    entity: Entity,
    count_before: i64,
    backend: Backend,
    _turn: Option<tokio::sync::MutexGuard<'a, ()>>,
}

impl Store {
    /// Manager ids known from managers.csv, for checking the rows that refer to them.
    pub async fn crm_manager_ids(&self) -> Result<HashSet<String>, StoreError> {
        let rows = sqlx::query("SELECT manager_id FROM crm_managers")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(StoreError::from))
            .collect()
    }

    /// Starts importing one file of `entity`: takes the writer's turn and opens the transaction.
    pub async fn begin_crm_import(&self, entity: Entity) -> Result<CrmImport<'_>, StoreError> {
        let turn = self.write_turn().await;
        let mut tx = self.pool.begin().await?;
        if self.backend == Backend::Sqlite {
            // A million-row file inserts into several indexes in random key order; SQLite's
            // default 2 MiB page cache turned that into page I/O. 64 MiB, for this connection.
            sqlx::query("PRAGMA cache_size = -65536")
                .execute(&mut *tx)
                .await?;
        }
        let count_before = count_rows(&mut tx, entity).await?;
        Ok(CrmImport {
            tx,
            entity,
            count_before,
            backend: self.backend,
            _turn: turn,
        })
    }
}

async fn count_rows(tx: &mut Transaction<'static, Any>, entity: Entity) -> Result<i64, StoreError> {
    let row = sqlx::query(&format!("SELECT COUNT(*) FROM {}", entity.table()))
        .fetch_one(&mut **tx)
        .await?;
    Ok(row.try_get::<i64, _>(0)?)
}

/// Appends the `n`th placeholder. SQLite gets anonymous `?`: sqlx looks each `$n` up by name,
/// and SQLite finds a name by a linear scan, which made a 3,500-parameter batch quadratic
/// (75% of an import's CPU time went to `sqlite3_bind_parameter_name`).
pub fn push_placeholder(sql: &mut String, backend: Backend, n: usize) {
    match backend {
        Backend::Sqlite => sql.push('?'),
        Backend::Postgres => sql.push_str(&format!("${n}")),
    }
}

/// The statement that upserts `rows` rows of `entity`: new keys are inserted, known keys updated
/// only where a value differs, so the affected-row count says what changed.
///
/// SQLite gets a multi-row `VALUES` list. PostgreSQL gets the whole batch as one JSON parameter
/// unpacked by `json_to_recordset`: the statement text is the same for every batch, so it is
/// prepared once per connection instead of parsing and planning thousands of parameters each
/// time, and a NULL needs no parameter type (sqlx's Any driver binds a NULL f64 as float4).
/// `types` are the SQL types of the columns, in order (PostgreSQL only).
fn upsert_sql(entity: Entity, rows: usize, backend: Backend, types: &[&str]) -> String {
    let cols = entity.columns();
    let names: Vec<&str> = cols.iter().map(|c| c.name).collect();
    let keys: Vec<&str> = cols.iter().filter(|c| c.key).map(|c| c.name).collect();
    let others: Vec<&str> = cols.iter().filter(|c| !c.key).map(|c| c.name).collect();
    let mut sql = format!("INSERT INTO {} ({}) ", entity.table(), names.join(", "));
    match backend {
        Backend::Postgres => {
            sql.push_str(&select_json_rows(&names, types));
        }
        Backend::Sqlite => {
            sql.push_str("VALUES ");
            let mut n = 0;
            for r in 0..rows {
                if r > 0 {
                    sql.push_str(", ");
                }
                sql.push('(');
                for c in 0..cols.len() {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    n += 1;
                    push_placeholder(&mut sql, backend, n);
                }
                sql.push(')');
            }
        }
    }
    let set: Vec<String> = others
        .iter()
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    let differs: Vec<String> = others
        .iter()
        .map(|c| format!("{}.{c} IS DISTINCT FROM excluded.{c}", entity.table()))
        .collect();
    sql.push_str(&format!(
        " ON CONFLICT ({}) DO UPDATE SET {} WHERE {}",
        keys.join(", "),
        set.join(", "),
        differs.join(" OR ")
    ));
    sql
}

/// The SQL types of a row's values, for [`select_json_rows`].
pub fn sql_types(row: &[Value]) -> Vec<&'static str> {
    row.iter()
        .map(|v| match v {
            Value::Text(_) => "TEXT",
            Value::Int(_) => "BIGINT",
            Value::Real(_) => "DOUBLE PRECISION",
        })
        .collect()
}

/// `SELECT <names> FROM json_to_recordset($1) ...` (PostgreSQL): rows sent as one JSON
/// parameter ([`json_rows`]), so the statement is the same whatever the batch size.
pub fn select_json_rows(names: &[&str], types: &[&str]) -> String {
    let record: Vec<String> = names
        .iter()
        .zip(types)
        .map(|(n, t)| format!("{n} {t}"))
        .collect();
    format!(
        "SELECT {} FROM json_to_recordset(CAST($1 AS json)) AS r({})",
        names.join(", "),
        record.join(", ")
    )
}

/// The rows as a JSON array of objects keyed by column name, for [`select_json_rows`].
pub fn json_rows(names: &[&str], rows: &[Vec<Value>]) -> Result<String, StoreError> {
    let batch: Vec<serde_json::Map<String, serde_json::Value>> = rows
        .iter()
        .map(|row| {
            names
                .iter()
                .zip(row)
                .map(|(n, v)| {
                    let v = match v {
                        Value::Text(t) => serde_json::json!(t),
                        Value::Int(i) => serde_json::json!(i),
                        Value::Real(r) => serde_json::json!(r),
                    };
                    (n.to_string(), v)
                })
                .collect()
        })
        .collect();
    serde_json::to_string(&batch).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl CrmImport<'_> {
    /// Upserts a batch whose keys are distinct; returns how many rows were inserted or changed.
    pub async fn upsert(&mut self, rows: &[Vec<Value>]) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        if self.backend == Backend::Postgres {
            let sql = upsert_sql(self.entity, rows.len(), self.backend, &sql_types(&rows[0]));
            let names: Vec<&str> = self.entity.columns().iter().map(|c| c.name).collect();
            let done = sqlx::query(&sql)
                .bind(json_rows(&names, rows)?)
                .execute(&mut *self.tx)
                .await?;
            return Ok(done.rows_affected());
        }
        let sql = upsert_sql(self.entity, rows.len(), self.backend, &[]);
        let mut q = sqlx::query(&sql);
        for row in rows {
            for v in row {
                q = match v {
                    Value::Text(t) => q.bind(t.clone()),
                    Value::Int(i) => q.bind(*i),
                    Value::Real(r) => q.bind(*r),
                };
            }
        }
        Ok(q.execute(&mut *self.tx).await?.rows_affected())
    }

    /// Commits and returns how many rows are new (the rest of the affected ones were updates).
    pub async fn commit(mut self) -> Result<u64, StoreError> {
        let after = count_rows(&mut self.tx, self.entity).await?;
        self.tx.commit().await?;
        Ok(u64::try_from(after - self.count_before).unwrap_or(0))
    }

    /// Undoes everything this file wrote.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }
}
