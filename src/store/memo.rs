//! Figures kept until what they were read from changes.
//!
//! Two kinds of source, each with a stamp that moves whenever it changes, whichever process
//! wrote:
//! - **the CRM tables** change only by import (`store/crm.rs`), and every import adds a row to
//!   `crm_import_log`: its count and latest time are the stamp;
//! - **the call-quality rollups** (`quality_daily`, `conversation_daily`, `deal_quality`,
//!   `deal_quality_total`) change only through `Store::refresh_rollups`/`refresh_deal_quality`
//!   and the full rebuild, which bump `rollup_stamp` in the same transaction (migration
//!   0012): a score written or corrected, a transcript stored, a call deleted.
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

/// What a kept figure is read from, so what drops it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depends {
    /// The CRM tables only: kept until the next import.
    Crm,
    /// The call-quality rollups, the scores and calls behind them, and the CRM tables: kept
    /// until a score, transcript or call changes, or an import.
    Quality,
}

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
}

/// A memo with the stamp its source has now: what [`Store::memo`] hands out.
pub struct Stamped<'a> {
    memo: &'a Memo,
    stamp: Stamp,
}

impl Stamped<'_> {
    /// `make`'s value for `key`: kept, or computed once however many ask at the same time
    /// (`make` runs only when nothing is kept; it is a closure, not a future, so the large
    /// query futures are not carried in every caller's state). `rows` says how large a value
    /// is (see [`MAX_ROWS`]). `make` must read only what the memo's [`Depends`] names.
    pub async fn get<T, F, Fut>(
        self,
        key: String,
        rows: impl FnOnce(&T) -> usize,
        make: F,
    ) -> Result<Arc<T>, StoreError>
    where
        T: Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, StoreError>>,
    {
        let Self { memo, stamp } = self;
        let (cell, generation) = {
            let mut kept = memo.kept.lock().unwrap_or_else(|e| e.into_inner());
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
            let mut kept = memo.kept.lock().unwrap_or_else(|e| e.into_inner());
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

    /// One stamp of the rollups and the CRM: the generation, and the import count and time
    /// folded in.
    async fn quality_stamp(&self) -> Result<Stamp, StoreError> {
        let (rollups, crm) = tokio::try_join!(self.rollup_stamp(), self.crm_stamp())?;
        Ok((
            rollups.0,
            Some(crm.0.wrapping_mul(1_000_003) ^ crm.1.unwrap_or(0)),
        ))
    }

    /// The memo of figures read from what `depends` names, with that source's stamp now
    /// (read before the figures: a change landing in between leaves a value kept under the
    /// older stamp, which the next use drops). `.get(key, rows, make)` on it.
    pub async fn memo(&self, depends: Depends) -> Result<Stamped<'_>, StoreError> {
        Ok(match depends {
            Depends::Crm => Stamped {
                memo: &self.crm_memo,
                stamp: self.crm_stamp().await?,
            },
            Depends::Quality => Stamped {
                memo: &self.quality_memo,
                stamp: self.quality_stamp().await?,
            },
        })
    }
}
