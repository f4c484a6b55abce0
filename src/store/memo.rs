//! Figures worked out of the CRM tables alone, kept until the CRM changes.
//!
//! The CRM tables change only by import (`store/crm.rs`), and every import adds a row to
//! `crm_import_log`. So a figure read from them stays true until that log moves: each use reads
//! the log's count and latest time (one probe of a small table) and drops everything kept when
//! they differ, whichever process imported. The dashboards ask for the same periods again and
//! again (every load, every manager's row, every team of the attention list); this turns
//! those reads into one per import (decision 0018).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use super::{Store, StoreError};

/// At most this many rows are kept (a figure counts the rows it holds), so a run of all-time
/// periods cannot grow the process without bound; past it, everything kept is dropped.
const MAX_ROWS: usize = 2_000_000;

/// What [`Store::crm_memo`] keeps.
#[derive(Default)]
pub(super) struct CrmMemo {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Moves when this process commits an import (before its log row is written).
    generation: u64,
    stamp: Option<(i64, Option<i64>)>,
    rows: usize,
    values: HashMap<String, Arc<dyn Any + Send + Sync>>,
}

impl CrmMemo {
    /// Drops everything kept: this process has just committed an import.
    pub(super) fn forget(&self) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        *kept = Kept {
            generation: kept.generation + 1,
            ..Kept::default()
        };
    }
}

impl Store {
    /// The CRM import log's count and latest time: it moves with every import.
    async fn crm_stamp(&self) -> Result<(i64, Option<i64>), StoreError> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*) AS imports, MAX(imported_at) AS imported_at FROM crm_import_log",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// `make()`'s value for `key`, kept until the next CRM import. `make` must read only the
    /// CRM tables; `rows` says how large a value is (see [`MAX_ROWS`]).
    pub async fn crm_memo<T, F, Fut>(
        &self,
        key: String,
        rows: impl FnOnce(&T) -> usize,
        make: F,
    ) -> Result<Arc<T>, StoreError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        // The stamp is read before the rows: an import landing in between leaves a value kept
        // under the older stamp, which the next use drops.
        let stamp = self.crm_stamp().await?;
        let generation = {
            let mut kept = self.crm_memo.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.stamp != Some(stamp) {
                *kept = Kept {
                    generation: kept.generation,
                    stamp: Some(stamp),
                    ..Kept::default()
                };
            }
            if let Some(v) = kept.values.get(&key) {
                if let Ok(v) = v.clone().downcast::<T>() {
                    return Ok(v);
                }
            }
            kept.generation
        };
        let value = Arc::new(make().await?);
        let size = rows(&value).max(1);
        let mut kept = self.crm_memo.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.stamp == Some(stamp) && kept.generation == generation {
            if kept.rows + size > MAX_ROWS {
                kept.values.clear();
                kept.rows = 0;
            }
            kept.rows += size;
            kept.values.insert(key, value.clone());
        }
        Ok(value)
    }
}
