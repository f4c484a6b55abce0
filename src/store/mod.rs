//! Storage: one interface over SQLite (the embedded default) and PostgreSQL.
//!
//! Queries are written once in portable SQL and run through sqlx's `Any` driver with `$n`
//! placeholders, which both backends accept; the few statements that must differ live in
//! [`dialect`]. Each backend has its own migrations folder, embedded in the binary and applied
//! at start-up. See decisions 0002 and 0013.
//!
//! Where things live:
//!
//! | what | file |
//! |---|---|
//! | a call (upload, status, delete) | `calls.rs` |
//! | a job and the queue (claim, lease, fence, retry) | `jobs.rs` |
//! | a transcript | `transcripts.rs` |
//! | the search index of transcript segments and its query | `search.rs` |
//! | a score, its criteria and QA corrections | `scores.rs` |
//! | scorecard versions | `rubrics.rs` |
//! | API tokens | `tokens.rs` |
//! | web-app users and their sessions | `accounts.rs` |
//! | CRM rows and their import | `crm.rs` |
//! | KPIs (funnel, win rate, cycle, SLA, plans) and the scope every analytics read takes | `kpis.rs` |
//! | daily quality rollups and the reports' averages | `rollups.rs` |
//! | latest coaching and per-call conversation figures | `reports.rs` |
//! | deal features for the win model | `deals.rs` |
//! | call quality against deal outcomes | `insights.rs` |
//!
//! Machinery: `write.rs` (the only ways to write), `dialect.rs` (what differs per backend),
//! `bulk.rs` (the bulk-insert builder), `decode.rs` (ids, enums and JSON documents decode
//! themselves, so every row is a derived `FromRow`), `migrations.rs`.

mod accounts;
mod bulk;
mod calls;
mod crm;
mod crm_rollups;
mod deals;
mod decode;
pub mod dialect;
mod insights;
mod jobs;
mod kpis;
mod memo;
mod migrations;
mod reports;
mod rollups;
mod rubrics;
mod scores;
mod search;
mod tokens;
mod transcripts;
mod write;

use std::path::Path;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub use accounts::{Credentials, SessionLimits, UserRecord};
pub use bulk::{insert_batch, json_rows, select_json_rows, sql_types};
pub use calls::{CallFilter, CallRecord, CallRow, InsertCall, NewCall, RowFilter};
pub use crm::{CrmImport, ImportLogRow};
pub use deals::{DealFeatures, DealSet, DealStamp, LastCall};
pub use insights::{DealCriterion, LowCall, ScoredDeal, WeakCall};
pub use jobs::{ClaimedJob, Fence, JobCounts, JobFailure, JobRecord, NewJob};
pub use kpis::{ActivityCount, CrmManager, KpiKey, KpiScope, LeadTimes, PlanRow, WonDeal};
pub use memo::{one_reading, Depends};
pub use reports::RecentScore;
pub use rollups::{ConversationTally, QualityTallies, Tally, DAY_MS};
pub use rubrics::StoredRubric;
pub use scores::Disagreement;
pub use search::{SearchCursor, SearchFilter, SearchHit};
pub use tokens::TokenRecord;
pub use write::{WriteConn, WriteTx};

/// Which database engine a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (embedded default).
    Sqlite,
    /// PostgreSQL server (shared queue for several machines).
    Postgres,
}

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or refused a statement.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored value did not parse (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A uniqueness rule was violated.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A run's claim on its job has passed to another run: its write was refused.
    #[error(
        "this run no longer holds its job (its lease passed to another run); nothing was written"
    )]
    Fenced,
    /// A write was opened inside another in the same task (it would wait for ever on the
    /// first's write turn): a bug, refused at once.
    #[error("a write was started inside another write of the same task")]
    NestedWrite,
    /// A file-system operation around the database failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl StoreError {
    fn is_unique_violation(err: &sqlx::Error) -> bool {
        matches!(err, sqlx::Error::Database(db) if db.is_unique_violation())
    }
}

/// The database handle shared by the HTTP API and the workers.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer at a time: writers in this process take turns (see
    /// [`write`]); other processes still wait via `busy_timeout`.
    write_gate: Option<write::WriteGate>,
    /// Rows a search for several terms walks on PostgreSQL before it uses the index alone
    /// ([`search::SEARCH_WINDOW`]; tests make it small).
    search_window: usize,
    /// Whether every transcript's search rows are of the current [`crate::search::INDEX_VERSION`]
    /// (set by the start-up backlog when it finds none left): until then rows written by an
    /// older version may lack the manager's term, and a manager filter is checked on the rows.
    search_index_current: Arc<AtomicBool>,
    /// Kinds of personal data replaced in the search index ([`Store::redacting_search`]).
    search_redact: Arc<[crate::redact::Kind]>,
    /// Figures of the CRM tables, kept until the next import ([`Store::memo`]).
    crm_memo: Arc<memo::Memo>,
    /// Call-quality figures, kept until the rollups or the CRM change ([`Store::memo`]).
    quality_memo: Arc<memo::Memo>,
}

impl Store {
    /// Connects to `url`, creating a SQLite file (and its folder) if missing.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::connect_with(url, None).await
    }

    /// As [`Store::connect`], with at most `max_connections` pooled connections (tests that
    /// need every statement on one connection use 1).
    pub async fn connect_with(url: &str, max_connections: Option<u32>) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, url) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or(path);
            if path != ":memory:" {
                if let Some(parent) = Path::new(path).parent() {
                    if !parent.as_os_str().is_empty() {
                        std::fs::create_dir_all(parent)?;
                    }
                }
            }
            let url = if url.contains("mode=") {
                url.to_string()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (Backend::Sqlite, url)
        } else {
            (Backend::Postgres, url.to_string())
        };
        let options = AnyPoolOptions::new()
            .max_connections(max_connections.unwrap_or(dialect::pool_size(backend)))
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    for statement in dialect::connection_setup(backend) {
                        conn.execute(*statement).await?;
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await?;
        let write_gate = dialect::single_writer(backend).then(write::WriteGate::default);
        Ok(Self {
            pool,
            backend,
            write_gate,
            search_window: search::SEARCH_WINDOW,
            search_index_current: Arc::default(),
            search_redact: Arc::from([]),
            crm_memo: Arc::default(),
            quality_memo: Arc::default(),
        })
    }

    /// This store with the search index holding transcripts with `kinds` of personal data
    /// replaced by their placeholders (`redaction.scope = "everyone_but_admins"`). Transcripts
    /// indexed under other settings are indexed again by [`crate::search::index_backlog`].
    pub fn redacting_search(mut self, kinds: &[crate::redact::Kind]) -> Self {
        self.search_redact = Arc::from(kinds);
        self
    }

    /// Connects and applies pending migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let store = Self::connect(url).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the backend's pending migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrations::run(&self.pool, self.backend).await
    }

    /// This store with searches for several terms on PostgreSQL walking `rows` of the newest
    /// index rows before turning to the index alone (default [`search::SEARCH_WINDOW`]): for
    /// tests of both paths on a few rows.
    pub fn with_search_window(mut self, rows: usize) -> Self {
        self.search_window = rows;
        self
    }

    /// Records that the search index holds every transcript at the current version (every
    /// clone of this store sees it).
    pub fn mark_search_index_current(&self) {
        self.search_index_current.store(true, Ordering::Relaxed);
    }

    /// Whether [`Self::mark_search_index_current`] was called.
    pub fn search_index_current(&self) -> bool {
        self.search_index_current.load(Ordering::Relaxed)
    }

    /// Refreshes the query planner's statistics where the engine needs to be asked
    /// ([`dialect::refresh_statistics`]); `at_start` once per process, when it opens the store.
    pub async fn refresh_statistics(&self, at_start: bool) -> Result<(), StoreError> {
        let statements = dialect::refresh_statistics(self.backend, at_start);
        if statements.is_empty() {
            return Ok(());
        }
        let mut conn = self.write_one().await?;
        for statement in statements {
            sqlx::query(statement).execute(&mut *conn).await?;
        }
        Ok(())
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The connection pool, for tests and tools that need raw access.
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
