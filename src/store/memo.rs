//! Figures kept until what they were read from changes.
//!
//! Two kinds of source, each with a stamp that moves whenever it changes, whichever process
//! wrote:
//! - **the CRM tables** change only by import (`store/crm.rs`), and every import adds a row to
//!   `crm_import_log`: its count and latest time are the stamp;
//! - **the call-quality rollups** (`quality_daily`, `conversation_daily`, `deal_quality`)
//!   change only through `Store::refresh_rollups`/`refresh_deal_quality` and the full rebuild,
//!   which bump `rollup_stamp` in the same transaction (migration 0012): a score written or
//!   corrected, a transcript stored, a call deleted.
//!
//! Each use reads the stamp (one probe of a one-row or small table) and drops everything kept
//! when it moved. Concurrent uses of one key wait for one computation instead of each running
//! it (a dashboard asks for the same figures from several of its parts at once). The
//! dashboards ask for the same periods again and again; this turns those reads into one per
//! change (decision 0018).

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::OnceCell;

use super::{Store, StoreError};

/// At most this many rows are kept per memo (a figure counts the rows it holds), so a run of
/// all-time periods cannot grow the process without bound; past it, everything kept is dropped.
const MAX_ROWS: usize = 2_000_000;

/// A source's stamp: it differs whenever the source changed.
pub(super) type Stamp = (i64, Option<i64>);

type Value = Arc<dyn Any + Send + Sync>;

/// What one memo keeps.
#[derive(Default)]
pub(super) struct Memo {
    kept: Mutex<Kept>,
}

#[derive(Default)]
struct Kept {
    /// Moves when this process changes the source and knows it (a CRM import's commit),
    /// before the stamp in the database does.
    generation: u64,
    stamp: Option<Stamp>,
    rows: usize,
    values: HashMap<String, Arc<OnceCell<Value>>>,
}

impl Memo {
    /// Drops everything kept: this process has just changed the source.
    pub(super) fn forget(&self) {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        *kept = Kept {
            generation: kept.generation + 1,
            ..Kept::default()
        };
    }

    /// `make()`'s value for `key` under `stamp`: kept, or computed once however many ask at
    /// the same time. `rows` says how large a value is (see [`MAX_ROWS`]).
    async fn get<T, F, Fut>(
        &self,
        stamp: Stamp,
        key: String,
        rows: impl FnOnce(&T) -> usize,
        make: F,
    ) -> Result<Arc<T>, StoreError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let (cell, generation) = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.stamp != Some(stamp) {
                *kept = Kept {
                    generation: kept.generation,
                    stamp: Some(stamp),
                    ..Kept::default()
                };
            }
            let cell = kept.values.entry(key).or_default().clone();
            (cell, kept.generation)
        };
        let mut size = None;
        let value = cell
            .get_or_try_init(|| async {
                let v = make().await?;
                size = Some(rows(&v).max(1));
                Ok::<Value, StoreError>(Arc::new(v))
            })
            .await?
            .clone();
        if let Some(size) = size {
            // This use computed it: count it, unless the source moved meanwhile (then the
            // cell belongs to a map already dropped and nothing is kept).
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.stamp == Some(stamp) && kept.generation == generation {
                if kept.rows + size > MAX_ROWS {
                    kept.values.clear();
                    kept.rows = 0;
                }
                kept.rows += size;
            }
        }
        value
            .downcast::<T>()
            .map_err(|_| StoreError::Corrupt("a kept figure has another type".into()))
    }
}

impl Store {
    /// The CRM import log's count and latest time: it moves with every import.
    async fn crm_stamp(&self) -> Result<Stamp, StoreError> {
        Ok(sqlx::query_as(
            "SELECT COUNT(*) AS imports, MAX(imported_at) AS imported_at FROM crm_import_log",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    /// The rollups' generation: it moves with every refresh and rebuild.
    async fn rollup_stamp(&self) -> Result<Stamp, StoreError> {
        let generation: i64 =
            sqlx::query_scalar("SELECT generation FROM rollup_stamp WHERE id = 1")
                .fetch_one(&self.pool)
                .await?;
        Ok((generation, None))
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
        self.crm_memo.get(stamp, key, rows, make).await
    }

    /// `make()`'s value for `key`, kept until the call-quality rollups or the CRM change.
    /// `make` may read the rollups, the scores and calls behind them, and the CRM tables.
    pub async fn quality_memo<T, F, Fut>(
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
        let (rollups, crm) = tokio::try_join!(self.rollup_stamp(), self.crm_stamp())?;
        // One stamp of both: the generation, and the import count and time folded in.
        let stamp = (
            rollups.0,
            Some(crm.0.wrapping_mul(1_000_003) ^ crm.1.unwrap_or(0)),
        );
        self.quality_memo.get(stamp, key, rows, make).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_uses_of_a_key_compute_it_once_and_a_new_stamp_drops_it() {
        let memo = Memo::default();
        let runs = AtomicUsize::new(0);
        let make = || async {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            Ok::<_, StoreError>(42u32)
        };
        let (a, b) = tokio::join!(
            memo.get((1, None), "k".into(), |_| 1, make),
            memo.get((1, None), "k".into(), |_| 1, make),
        );
        assert_eq!((*a.unwrap(), *b.unwrap()), (42, 42));
        assert_eq!(runs.load(Ordering::SeqCst), 1, "one computation for both");
        memo.get((1, None), "k".into(), |_| 1, make).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1, "kept");
        memo.get((2, None), "k".into(), |_| 1, make).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 2, "the source moved");
        memo.forget();
        memo.get((2, None), "k".into(), |_| 1, make).await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 3, "this process changed it");
    }

    #[tokio::test]
    async fn a_failed_computation_is_not_kept() {
        let memo = Memo::default();
        let failed = memo
            .get(
                (1, None),
                "k".into(),
                |_: &u8| 1,
                || async { Err::<u8, _>(StoreError::Corrupt("boom".into())) },
            )
            .await;
        assert!(failed.is_err());
        let ok = memo
            .get(
                (1, None),
                "k".into(),
                |_| 1,
                || async { Ok::<u8, StoreError>(7) },
            )
            .await;
        assert_eq!(*ok.unwrap(), 7);
    }
}
