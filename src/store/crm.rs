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
    /// Secondary indexes dropped for a bulk load into an empty table, rebuilt at commit.
    rebuild: Vec<String>,
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
        let setup = match self.backend {
            // A million-row file inserts into several indexes in random key order; SQLite's
            // default 2 MiB page cache turned that into page I/O. 64 MiB, for this connection.
            Backend::Sqlite => "PRAGMA cache_size = -65536".to_string(),
            // One import per table at a time (two interleaved upserts of the same keys could
            // deadlock each other); EXCLUSIVE mode still lets reports read the old rows.
            Backend::Postgres => format!("LOCK TABLE {} IN EXCLUSIVE MODE", entity.table()),
        };
        sqlx::query(&setup).execute(&mut *tx).await?;
        let count_before = count_rows(&mut tx, entity).await?;
        let rebuild = if count_before == 0 {
            drop_secondary_indexes(&mut tx, self.backend, entity).await?
        } else {
            Vec::new()
        };
        Ok(CrmImport {
            tx,
            entity,
            count_before,
            backend: self.backend,
            rebuild,
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
    tx: &mut Transaction<'static, Any>,
    backend: Backend,
    entity: Entity,
) -> Result<Vec<String>, StoreError> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT CAST(i.relname AS TEXT), pg_get_indexdef(i.oid) FROM pg_index x \
             JOIN pg_class i ON i.oid = x.indexrelid \
             WHERE x.indrelid = CAST(CAST($1 AS TEXT) AS regclass) \
               AND NOT x.indisprimary AND NOT x.indisunique"
        }
        // origin 'c': made by CREATE INDEX (not a PRIMARY KEY or UNIQUE constraint).
        Backend::Sqlite => {
            "SELECT il.name, m.sql FROM pragma_index_list(?) AS il \
             JOIN sqlite_master AS m ON m.type = 'index' AND m.name = il.name \
             WHERE il.origin = 'c' AND il.\"unique\" = 0"
        }
    };
    let rows = sqlx::query(sql)
        .bind(entity.table())
        .fetch_all(&mut **tx)
        .await?;
    let mut rebuild = Vec::with_capacity(rows.len());
    for row in rows {
        let name: String = row.try_get(0)?;
        rebuild.push(row.try_get::<String, _>(1)?);
        sqlx::query(&format!("DROP INDEX \"{name}\""))
            .execute(&mut **tx)
            .await?;
    }
    Ok(rebuild)
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
///
/// Written straight into one buffer: building a `serde_json::Map` per row made allocation half
/// of a 2-million-row import's CPU time.
pub fn json_rows(names: &[&str], rows: &[Vec<Value>]) -> Result<String, StoreError> {
    let keys: Vec<String> = names
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<_, _>>()
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut out = Vec::with_capacity(rows.len() * 24 * names.len().max(1));
    out.push(b'[');
    for (r, row) in rows.iter().enumerate() {
        if r > 0 {
            out.push(b',');
        }
        out.push(b'{');
        for (c, (key, v)) in keys.iter().zip(row).enumerate() {
            if c > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key.as_bytes());
            out.push(b':');
            // serde_json writes None, NaN and infinity as null: JSON has nothing else for them.
            match v {
                Value::Text(t) => serde_json::to_writer(&mut out, t),
                Value::Int(i) => serde_json::to_writer(&mut out, i),
                Value::Real(r) => serde_json::to_writer(&mut out, r),
            }
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        }
        out.push(b'}');
    }
    out.push(b']');
    String::from_utf8(out).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl CrmImport<'_> {
    /// Upserts a batch whose keys are distinct; returns how many rows were inserted or changed.
    pub async fn upsert(&mut self, rows: Vec<Vec<Value>>) -> Result<u64, StoreError> {
        if rows.is_empty() {
            return Ok(0);
        }
        if self.backend == Backend::Postgres {
            let sql = upsert_sql(self.entity, rows.len(), self.backend, &sql_types(&rows[0]));
            let names: Vec<&str> = self.entity.columns().iter().map(|c| c.name).collect();
            let done = sqlx::query(&sql)
                .bind(json_rows(&names, &rows)?)
                .execute(&mut *self.tx)
                .await?;
            return Ok(done.rows_affected());
        }
        let sql = upsert_sql(self.entity, rows.len(), self.backend, &[]);
        let mut q = sqlx::query(&sql);
        for row in rows {
            for v in row {
                q = match v {
                    Value::Text(t) => q.bind(t),
                    Value::Int(i) => q.bind(i),
                    Value::Real(r) => q.bind(r),
                };
            }
        }
        Ok(q.execute(&mut *self.tx).await?.rows_affected())
    }

    /// Commits and returns how many rows are new (the rest of the affected ones were updates).
    pub async fn commit(mut self) -> Result<u64, StoreError> {
        if !self.rebuild.is_empty() {
            self.rebuild_indexes().await?;
        }
        let after = count_rows(&mut self.tx, self.entity).await?;
        self.tx.commit().await?;
        Ok(u64::try_from(after - self.count_before).unwrap_or(0))
    }

    /// Builds the indexes [`drop_secondary_indexes`] dropped, and refreshes the table's planner
    /// statistics, which otherwise describe the empty table (PostgreSQL, until autovacuum) or
    /// lack the rebuilt indexes (SQLite, where a `DROP INDEX` deletes their `sqlite_stat1`
    /// rows; left alone where nothing was ever analysed).
    async fn rebuild_indexes(&mut self) -> Result<(), StoreError> {
        let analyze = match self.backend {
            Backend::Postgres => {
                // Sorting a 2-million-row index in 64 MiB spills to disk; this transaction only.
                sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
                    .execute(&mut *self.tx)
                    .await?;
                true
            }
            Backend::Sqlite => sqlx::query(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'",
            )
            .fetch_optional(&mut *self.tx)
            .await?
            .is_some(),
        };
        for create in &self.rebuild {
            sqlx::query(create).execute(&mut *self.tx).await?;
        }
        if analyze {
            sqlx::query(&format!("ANALYZE {}", self.entity.table()))
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
    fn json_rows_escape_text_and_write_nulls_for_missing_and_non_finite_values() {
        let rows = vec![
            vec![
                Value::Text(Some("a \"quoted\"\nline, ünïcode".into())),
                Value::Int(Some(-42)),
                Value::Real(Some(1.5)),
            ],
            vec![
                Value::Text(None),
                Value::Int(None),
                Value::Real(Some(f64::NAN)),
            ],
        ];
        let text = json_rows(&["t", "i", "r"], &rows).expect("json");
        let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(
            parsed,
            serde_json::json!([
                {"t": "a \"quoted\"\nline, ünïcode", "i": -42, "r": 1.5},
                {"t": null, "i": null, "r": null},
            ])
        );
        assert_eq!(json_rows(&["t"], &[]).expect("json"), "[]");
    }
}
