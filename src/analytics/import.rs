//! Streaming CSV import: a blocking thread reads and checks rows one at a time and hands
//! batches over a bounded channel to the writer, which upserts them in the file's one
//! transaction. Memory stays bounded whatever the file size: one batch in flight, one being
//! built, and at most [`MAX_LISTED_ERRORS`] rejected rows described in the report.
//!
//! A rejected row never stops the good ones (unless `strict`), and is never dropped silently:
//! it is counted, and listed with its line, column and reason.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use utoipa::ToSchema;

use super::entity::{check_row, CellError, Entity, Problem, Value};
use crate::store::{Store, StoreError};

/// Rejected rows described one by one in a report; the rest are counted.
pub const MAX_LISTED_ERRORS: usize = 1000;

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Reject the whole file when any row is bad.
    pub strict: bool,
}

/// Called from the reader thread with the bytes read so far.
pub type Progress = Arc<dyn Fn(u64) + Send + Sync>;

/// A row (or the header) that was not imported, and why.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RowError {
    /// Line in the file (the header is line 1).
    pub line: u64,
    /// The column at fault, if one is.
    pub column: Option<String>,
    /// Why, in words a CRM admin can act on (English; `code` says it for other languages).
    pub reason: String,
    /// What was wrong, as a stable code (absent in reports stored before codes were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<Problem>,
    /// The refused cell's value, at most 80 characters, when a cell is at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The values allowed, for `bad_choice`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

impl RowError {
    /// An error of the whole line (no cell to blame).
    fn of_line(line: u64, code: Problem, column: Option<String>, reason: String) -> Self {
        Self {
            line,
            column,
            reason,
            code: Some(code),
            value: None,
            expected: None,
        }
    }

    /// A refused cell.
    fn of_cell(line: u64, e: CellError, cell: Option<&str>) -> Self {
        Self {
            line,
            column: Some(e.column.to_string()),
            reason: e.reason,
            code: Some(e.problem),
            value: cell
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(|c| c.chars().take(80).collect()),
            expected: e.expected,
        }
    }
}

/// What importing one file did.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    /// The file's name.
    pub file: String,
    /// What it holds.
    pub entity: Entity,
    /// Data rows read (the header not counted).
    pub rows: u64,
    /// Rows with a new key.
    pub inserted: u64,
    /// Rows whose key existed with different values.
    pub updated: u64,
    /// Rows whose key existed with the same values.
    pub unchanged: u64,
    /// Rows refused (see `errors`); in strict mode with any refused row, nothing is written.
    pub rejected: u64,
    /// Valid rows left unwritten because strict mode refused the file (0 otherwise).
    pub not_written: u64,
    /// Whether the file's rows were written (false: strict mode refused the file).
    pub committed: bool,
    /// The refused rows, in file order (at most 1000; `rejected` counts all).
    pub errors: Vec<RowError>,
}

/// An import that could not run at all (as opposed to rows it refused).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// The file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The path does not exist.
    #[error("{0}: not found")]
    NotFound(String),
    /// A file name that names no entity of the contract.
    #[error("{0}: the file name names no CRM entity (expected managers.csv, customers.csv, leads.csv, deals.csv, deal_stages.csv, activities.csv or plans.csv)")]
    UnknownFile(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The reader thread died.
    #[error("the CSV reader failed: {0}")]
    Reader(String),
}

enum Msg {
    Rows(Vec<Vec<Value>>),
    Rejected(RowError),
    Done { rows: u64 },
}

/// Imports one CSV file of `entity` (its name only labels the report).
pub async fn import_file(
    store: &Store,
    entity: Entity,
    path: &Path,
    name: &str,
    options: ImportOptions,
    progress: Option<Progress>,
) -> Result<ImportReport, ImportError> {
    let file = std::fs::File::open(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    import_reader(store, entity, Box::new(file), name, options, progress).await
}

/// Imports every CRM file of a folder (or one file), managers first; other files are skipped.
pub async fn import_path(
    store: &Store,
    path: &Path,
    options: ImportOptions,
    progress: impl Fn(&Path, u64) -> Option<Progress>,
) -> Result<Vec<ImportReport>, ImportError> {
    let io = |source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !path.exists() {
        return Err(ImportError::NotFound(path.display().to_string()));
    }
    let mut files: Vec<(Entity, PathBuf)> = Vec::new();
    if path.is_dir() {
        for entry in std::fs::read_dir(path).map_err(io)? {
            let p = entry.map_err(io)?.path();
            if let Some(e) = Entity::from_path(&p) {
                files.push((e, p));
            }
        }
        files.sort_by_key(|(e, _)| Entity::IMPORT_ORDER.iter().position(|o| o == e));
    } else {
        let e = Entity::from_path(path)
            .ok_or_else(|| ImportError::UnknownFile(path.display().to_string()))?;
        files.push((e, path.to_path_buf()));
    }
    let mut reports = Vec::new();
    for (entity, file) in files {
        let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let report =
            import_file(store, entity, &file, &name, options, progress(&file, len)).await?;
        reports.push(report);
    }
    Ok(reports)
}

/// Imports CSV text from `input`.
pub async fn import_reader(
    store: &Store,
    entity: Entity,
    input: Box<dyn Read + Send>,
    name: &str,
    options: ImportOptions,
    progress: Option<Progress>,
) -> Result<ImportReport, ImportError> {
    let managers = store.crm_manager_ids().await?;
    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let batch_rows = crate::store::dialect::import_batch_rows(store.backend());
    let reader = tokio::task::spawn_blocking(move || {
        read_rows(entity, input, &managers, &tx, progress, batch_rows)
    });

    let mut import = store.begin_crm_import(entity).await?;
    let mut report = ImportReport {
        file: name.to_string(),
        entity,
        rows: 0,
        inserted: 0,
        updated: 0,
        unchanged: 0,
        rejected: 0,
        not_written: 0,
        committed: false,
        errors: Vec::new(),
    };
    let mut accepted = 0u64;
    let mut affected = 0u64;
    while let Some(msg) = rx.recv().await {
        match msg {
            Msg::Rows(rows) => {
                accepted += rows.len() as u64;
                // In strict mode a bad row has been seen (or may come): keep reading to report
                // every one, but write nothing more.
                if !(options.strict && report.rejected > 0) {
                    affected += import.upsert(rows).await?;
                }
            }
            Msg::Rejected(e) => {
                report.rejected += 1;
                if report.errors.len() < MAX_LISTED_ERRORS {
                    report.errors.push(e);
                }
            }
            Msg::Done { rows } => report.rows = rows,
        }
    }
    reader
        .await
        .map_err(|e| ImportError::Reader(e.to_string()))?;
    if options.strict && report.rejected > 0 {
        import.rollback().await?;
        report.not_written = report.rows.saturating_sub(report.rejected);
        log(store, &report).await;
        return Ok(report);
    }
    let inserted = import.commit().await?;
    report.committed = true;
    report.inserted = inserted;
    report.updated = affected.saturating_sub(inserted);
    report.unchanged = accepted.saturating_sub(affected);
    tracing::info!(
        file = %report.file, entity = %entity, rows = report.rows, inserted = report.inserted,
        updated = report.updated, unchanged = report.unchanged, rejected = report.rejected,
        "CRM file imported"
    );
    log(store, &report).await;
    Ok(report)
}

/// Keeps what the import did for the import page; a failure to log is not the import's.
async fn log(store: &Store, report: &ImportReport) {
    let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let row = crate::store::ImportLogRow {
        entity: report.entity,
        file: report.file.clone(),
        imported_at: crate::domain::now_millis(),
        rows_read: n(report.rows),
        inserted: n(report.inserted),
        updated: n(report.updated),
        unchanged: n(report.unchanged),
        rejected: n(report.rejected),
        committed: i64::from(report.committed),
    };
    if let Err(e) = store.log_crm_import(&row).await {
        tracing::warn!(error = %e, file = %report.file, "the import was not logged");
    }
}

/// The hash of a row's key columns.
fn key_hash(
    hasher: &std::collections::hash_map::RandomState,
    columns: &[super::entity::Column],
    values: &[Value],
) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = hasher.build_hasher();
    for (c, v) in columns.iter().zip(values) {
        if c.key {
            match v {
                Value::Text(t) => (0u8, t).hash(&mut h),
                Value::Int(i) => (1u8, i).hash(&mut h),
                Value::Real(r) => (2u8, r.map(f64::to_bits)).hash(&mut h),
            }
        }
    }
    h.finish()
}

/// The reader thread: parses, checks and batches rows; stops early only if the writer is gone.
fn read_rows(
    entity: Entity,
    input: Box<dyn Read + Send>,
    managers: &HashSet<String>,
    tx: &mpsc::Sender<Msg>,
    progress: Option<Progress>,
    batch_rows: usize,
) {
    let send = |m: Msg| tx.blocking_send(m).is_ok();
    let columns = entity.columns();
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .has_headers(true)
        .from_reader(input);
    let header: Vec<String> = match csv.headers() {
        Ok(h) => h
            .iter()
            .map(|c| c.trim().trim_start_matches('\u{feff}').to_ascii_lowercase())
            .collect(),
        Err(e) => {
            send(Msg::Rejected(RowError::of_line(
                1,
                Problem::UnreadableHeader,
                None,
                format!("unreadable header: {e}"),
            )));
            send(Msg::Done { rows: 0 });
            return;
        }
    };
    let positions: Vec<Option<usize>> = columns
        .iter()
        .map(|c| header.iter().position(|h| h == c.name))
        .collect();
    let missing: Vec<&str> = columns
        .iter()
        .zip(&positions)
        .filter(|(c, p)| c.required && p.is_none())
        .map(|(c, _)| c.name)
        .collect();

    let mut batch: Vec<Vec<Value>> = Vec::with_capacity(batch_rows);
    let mut batch_keys: HashSet<u64> = HashSet::with_capacity(batch_rows);
    let hasher = std::collections::hash_map::RandomState::new();
    let mut rows = 0u64;
    let mut record = csv::StringRecord::new();
    loop {
        let line = csv.position().line() + 1;
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                // A broken quote or invalid UTF-8 ends what can be read of the file.
                rows += 1;
                send(Msg::Rejected(RowError::of_line(
                    e.position().map_or(line, |p| p.line()),
                    Problem::UnreadableCsv,
                    None,
                    format!("unreadable CSV: {e}"),
                )));
                if matches!(e.kind(), csv::ErrorKind::Utf8 { .. }) {
                    continue;
                }
                break;
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        rows += 1;
        if record.iter().all(|c| c.trim().is_empty()) {
            rows -= 1; // A blank line is not a row.
            continue;
        }
        if let Some(first) = missing.first() {
            let ok = send(Msg::Rejected(RowError::of_line(
                line,
                Problem::MissingColumn,
                Some((*first).to_string()),
                format!("required column {first} is missing from the header"),
            )));
            if !ok {
                return;
            }
            continue;
        }
        let mut values = Vec::with_capacity(columns.len());
        let mut error = None;
        for (c, pos) in columns.iter().zip(&positions) {
            let cell = pos.and_then(|p| record.get(p));
            match c.check(cell, managers) {
                Ok(v) => values.push(v),
                Err(e) => {
                    error = Some(RowError::of_cell(line, e, cell));
                    break;
                }
            }
        }
        if error.is_none() {
            if let Err(e) = check_row(entity, &values) {
                let at = columns.iter().position(|c| c.name == e.column);
                let cell = at.and_then(|i| positions[i]).and_then(|p| record.get(p));
                error = Some(RowError::of_cell(line, e, cell));
            }
        }
        if let Some(e) = error {
            if !send(Msg::Rejected(e)) {
                return;
            }
            continue;
        }
        // A key seen twice in one statement is refused by PostgreSQL, so the batch is sent
        // first and the later row updates the earlier one, as it would across files. Keys are
        // compared by hash: a collision only sends a batch early.
        let key = key_hash(&hasher, columns, &values);
        if batch_keys.contains(&key) || batch.len() >= batch_rows {
            if !send(Msg::Rows(std::mem::take(&mut batch))) {
                return;
            }
            batch_keys.clear();
            if let Some(p) = &progress {
                p(csv.position().byte());
            }
        }
        batch_keys.insert(key);
        batch.push(values);
    }
    if !batch.is_empty() && !send(Msg::Rows(batch)) {
        return;
    }
    if let Some(p) = &progress {
        p(csv.position().byte());
    }
    send(Msg::Done { rows });
}
