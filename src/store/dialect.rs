//! The statements that differ between SQLite and PostgreSQL, in one place. Everything else in
//! the store is portable SQL with `$n` placeholders, run through sqlx's `Any` driver.

use super::Backend;

/// How a batch of rows travels in one `INSERT` (see `store/bulk.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchRows {
    /// A multi-row `VALUES` list, one parameter per cell (SQLite).
    Parameters,
    /// The whole batch as one JSON parameter unpacked by `json_to_recordset` (PostgreSQL): the
    /// statement text is the same for every batch, and a NULL needs no parameter type.
    JsonRecordset,
}

/// How this backend's bulk inserts carry their rows.
pub fn batch_rows(backend: Backend) -> BatchRows {
    match backend {
        Backend::Sqlite => BatchRows::Parameters,
        Backend::Postgres => BatchRows::JsonRecordset,
    }
}

/// What an import transaction runs before rebuilding the indexes it dropped. PostgreSQL:
/// sorting a 2-million-row index in the default 64 MiB spills to disk; this transaction only.
pub fn index_rebuild_setup(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Postgres => Some("SET LOCAL maintenance_work_mem = '256MB'"),
        Backend::Sqlite => None,
    }
}

/// A query returning a row when the database keeps planner statistics that a rebuilt table
/// should refresh; `None` where it always does. On SQLite a `DROP INDEX` deletes the index's
/// `sqlite_stat1` rows, but a database never analysed has no such table and stays that way.
pub fn statistics_kept(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Sqlite => {
            Some("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
        }
        Backend::Postgres => None,
    }
}

/// Whether the database admits one writer at a time (SQLite): the store then queues this
/// process's write transactions on its own write turn instead of letting them spin on
/// `SQLITE_BUSY` (see `store/write.rs`).
pub fn single_writer(backend: Backend) -> bool {
    match backend {
        Backend::Sqlite => true,
        Backend::Postgres => false,
    }
}

/// Connections in a pool when the configuration does not say.
pub fn pool_size(backend: Backend) -> u32 {
    match backend {
        Backend::Sqlite => 8,
        Backend::Postgres => 16,
    }
}

/// Statements run on every new connection.
///
/// SQLite: WAL lets readers run beside the one writer. FULL syncs the WAL at every commit: a
/// 202 means the call and its job survive a power cut, not only a process crash as NORMAL would
/// (issue 14, item 9; its cost is in docs/PERFORMANCE.md). busy_timeout makes writers from
/// several tasks and processes queue up instead of failing with SQLITE_BUSY. A 64 MiB page
/// cache (the default is 2 MiB) keeps the pages a dashboard's reads walk again and again parsed
/// in memory: under `perf`, a cold company dashboard at full size spent 13% of its time in
/// `btreeInitPage`, setting up pages it had dropped, and 7% with this cache
/// (docs/PERFORMANCE.md). Pages are taken
/// only as they are read, so a small database stays small in memory.
pub fn connection_setup(backend: Backend) -> &'static [&'static str] {
    match backend {
        Backend::Sqlite => &[
            "PRAGMA journal_mode = WAL",
            "PRAGMA synchronous = FULL",
            "PRAGMA busy_timeout = 10000",
            "PRAGMA foreign_keys = ON",
            "PRAGMA mmap_size = 4294967296",
            "PRAGMA cache_size = -65536",
        ],
        Backend::Postgres => &[],
    }
}

/// Statements that refresh the query planner's statistics where the engine does not keep them
/// itself. SQLite gathers none unless asked, and without them it guesses at every index's
/// selectivity; `PRAGMA optimize` (as SQLite advises: with `0x10002` when the process starts,
/// plain from then on) runs ANALYZE only on tables whose statistics are missing or stale,
/// each bounded by `analysis_limit`, so it costs milliseconds even on a large database. A
/// pooled connection loads the new statistics when it next reads the schema (sqlx replaces
/// connections within 30 minutes). PostgreSQL's autovacuum analyzes by itself.
pub fn refresh_statistics(backend: Backend, at_start: bool) -> &'static [&'static str] {
    match (backend, at_start) {
        (Backend::Sqlite, true) => &["PRAGMA analysis_limit = 1000", "PRAGMA optimize = 0x10002"],
        (Backend::Sqlite, false) => &["PRAGMA analysis_limit = 1000", "PRAGMA optimize"],
        (Backend::Postgres, _) => &[],
    }
}

/// How a write transaction begins, when not with a plain `BEGIN`. SQLite takes the write lock
/// now, not at the first write: what the transaction reads cannot change under it, and it never
/// has to upgrade a read lock (SQLITE_BUSY).
pub fn begin_write(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Sqlite => Some("BEGIN IMMEDIATE"),
        Backend::Postgres => None,
    }
}

/// A statement taking a transaction-scoped lock on one key (`$1`, an `i64`), when the backend
/// needs one: on PostgreSQL two workers finishing calls of the same manager and day would
/// otherwise each rebuild the rollup rows without the other's call. SQLite's write transaction
/// already excludes every other writer.
pub fn key_lock(backend: Backend) -> Option<&'static str> {
    match backend {
        Backend::Postgres => Some("SELECT pg_advisory_xact_lock($1)"),
        Backend::Sqlite => None,
    }
}

/// The end of a `SELECT` that reads rows a transaction will change: ` FOR UPDATE` locks them
/// on PostgreSQL; a SQLite write transaction (`BEGIN IMMEDIATE`) already excludes every other
/// writer.
pub fn for_update(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    }
}

/// The end of the queue claim's inner `SELECT`: on PostgreSQL workers on many machines skip
/// each other's locked rows instead of waiting for them; SQLite has one writer anyway.
pub fn claim_lock(backend: Backend) -> &'static str {
    match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    }
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

/// Rows per CRM import batch.
pub fn import_batch_rows(backend: Backend) -> usize {
    /// One parameter per cell: 10 columns * 500 stays far under SQLite's limit.
    const SQLITE_IMPORT_BATCH_ROWS: usize = 500;
    /// A batch is one JSON parameter: larger batches mean fewer round trips.
    const POSTGRES_IMPORT_BATCH_ROWS: usize = 5_000;
    match backend {
        Backend::Sqlite => SQLITE_IMPORT_BATCH_ROWS,
        Backend::Postgres => POSTGRES_IMPORT_BATCH_ROWS,
    }
}

/// What an import transaction of `table` runs first. SQLite: a million-row file inserts into
/// several indexes in random key order, and the default 2 MiB page cache turned that into page
/// I/O; 64 MiB, for this connection (as [`connection_setup`] now gives every connection, said
/// again here so an import never depends on it). PostgreSQL: one import per table at a time (two
/// interleaved upserts of the same keys could deadlock each other); EXCLUSIVE mode still lets
/// reports read the old rows.
pub fn import_setup(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Sqlite => "PRAGMA cache_size = -65536".to_string(),
        Backend::Postgres => format!("LOCK TABLE {table} IN EXCLUSIVE MODE"),
    }
}

/// Lists a table's secondary (non-unique, not constraint) indexes: name and `CREATE` statement;
/// the table's name is the one parameter.
pub fn secondary_indexes(backend: Backend) -> &'static str {
    match backend {
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
    }
}

/// Refreshes a table's planner statistics after a bulk load; `VACUUM` too on PostgreSQL, which
/// marks pages all-visible (index-only scans need that).
pub fn vacuum_analyze(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Sqlite => format!("ANALYZE {table}"),
        Backend::Postgres => format!("VACUUM ANALYZE {table}"),
    }
}

/// Empties a table: `TRUNCATE` on PostgreSQL (after a `DELETE` its indexes still hold the
/// dead rows until a vacuum); `DELETE` on SQLite, which has no `TRUNCATE`.
pub fn empty_table(backend: Backend, table: &str) -> String {
    match backend {
        Backend::Postgres => format!("TRUNCATE {table}"),
        Backend::Sqlite => format!("DELETE FROM {table}"),
    }
}

/// How a search finds its rows: the `FROM .. WHERE` that selects the segments (`s`) whose
/// stems hold every term of the query in `$1` (see [`text_query`]), and the row key to order
/// and page by, named as this engine walks it in order.
pub struct TextSearch {
    /// `FROM .. WHERE <match>`.
    pub from_where: &'static str,
    /// The row key (`search_segments.id`).
    pub key: &'static str,
    /// The match alone, on a row `s` of `search_segments` (PostgreSQL; SQLite matches only
    /// through its FTS table).
    pub matches: &'static str,
}

/// SQLite: the FTS5 index over the stems (`search_fts`), joined to its rows by rowid and
/// ordered by the index's own rowid, which FTS5 walks in order, stopping after a page, instead
/// of sorting every match. PostgreSQL: the rows' `tsvector` of the same stems (GIN index),
/// ordered by the primary key, which the planner walks instead for a very common word. Both
/// index the stems as they are (FTS5's `ascii` tokenizer, PostgreSQL's `array_to_tsvector`):
/// no engine's own word rules come between the stems written in Rust and the match.
pub fn text_search(backend: Backend) -> TextSearch {
    match backend {
        Backend::Sqlite => TextSearch {
            from_where: "FROM search_fts JOIN search_segments s ON s.id = search_fts.rowid \
                         WHERE search_fts MATCH $1",
            key: "search_fts.rowid",
            matches: "s.id IN (SELECT rowid FROM search_fts WHERE search_fts MATCH $1)",
        },
        Backend::Postgres => TextSearch {
            from_where: "FROM search_segments s \
                         WHERE s.terms @@ CAST(CAST($1 AS TEXT) AS tsquery)",
            key: "s.id",
            matches: "s.terms @@ CAST(CAST($1 AS TEXT) AS tsquery)",
        },
    }
}

/// The `$1` of [`text_search`]: every one of `terms` required, each quoted so that no stem is
/// read as query syntax (`NOT`, `OR`, `*`, `!`).
pub fn text_query(backend: Backend, terms: &[String]) -> String {
    match backend {
        Backend::Sqlite => terms
            .iter()
            .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" AND "),
        Backend::Postgres => terms
            .iter()
            .map(|t| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(" & "),
    }
}

/// The inner join that keeps the written order of its tables. SQLite's planner, without
/// histograms, can misjudge a time range and scan a large table it should only probe (the
/// closed deals of a month joined to their calls scanned all 100,000 scores: 520 ms instead of
/// 12); its `CROSS JOIN` keeps the order written. PostgreSQL plans with histograms, and there
/// `CROSS JOIN` takes no `ON`.
pub fn ordered_join(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "CROSS JOIN",
        Backend::Postgres => "JOIN",
    }
}
