//! The one bulk-insert builder: a batch of rows in one statement, shaped for each backend.
//! The CRM import and the benchmarks' generated data both go through it.

use super::dialect::{self, BatchRows};
use super::{StoreError, WriteTx};
use crate::analytics::entity::Value;

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

/// `INSERT INTO <table> (<cols>) <rows>` for `rows` rows: a multi-row `VALUES` list on SQLite;
/// on PostgreSQL the whole batch as one JSON parameter unpacked by `json_to_recordset`, so the
/// statement text is the same for every batch (prepared once per connection instead of parsing
/// and planning thousands of parameters each time) and a NULL needs no parameter type (sqlx's
/// Any driver binds a NULL f64 as float4). `types` are the columns' SQL types (PostgreSQL).
pub fn insert_sql(
    backend: super::Backend,
    table: &str,
    cols: &[&str],
    rows: usize,
    types: &[&str],
) -> String {
    let mut sql = format!("INSERT INTO {table} ({}) ", cols.join(", "));
    match dialect::batch_rows(backend) {
        BatchRows::JsonRecordset => sql.push_str(&select_json_rows(cols, types)),
        BatchRows::Parameters => {
            sql.push_str("VALUES ");
            let mut n = 0;
            for r in 0..rows {
                sql.push_str(if r > 0 { ", (" } else { "(" });
                for c in 0..cols.len() {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    n += 1;
                    dialect::push_placeholder(&mut sql, backend, n);
                }
                sql.push(')');
            }
        }
    }
    sql
}

/// Inserts one batch of `rows` into `table` inside `tx`, with `suffix` after the rows (an
/// `ON CONFLICT` clause, or nothing); how many rows it affected.
pub async fn insert_batch(
    tx: &mut WriteTx,
    table: &str,
    cols: &[&str],
    rows: Vec<Vec<Value>>,
    suffix: &str,
) -> Result<u64, StoreError> {
    let Some(first) = rows.first() else {
        return Ok(0);
    };
    let backend = tx.backend();
    let sql = insert_sql(backend, table, cols, rows.len(), &sql_types(first)) + suffix;
    let done = match dialect::batch_rows(backend) {
        BatchRows::JsonRecordset => {
            sqlx::query(&sql)
                .bind(json_rows(cols, &rows)?)
                .execute(&mut **tx)
                .await?
        }
        BatchRows::Parameters => {
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
            q.execute(&mut **tx).await?
        }
    };
    Ok(done.rows_affected())
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
