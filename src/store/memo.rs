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
use std::time::Instant;

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
    /// Reads of the source's stamp.
    probe: Probe,
}

/// One read of a source's stamp at a time, shared by whoever asked while it waited. A page's
/// figures all ask at once, and each used to read the stamp alone: a team's dashboard read the
/// CRM's 19 times and the rollups' 10 times, on PostgreSQL 77 ms of round trips between them.
/// A caller takes only a read that began after it asked, so it never gets a stamp older than
/// its own call: it may wait for one read in flight and then one more, never for more.
#[derive(Default)]
struct Probe {
    /// When the last read began, and what it found.
    last: tokio::sync::Mutex<Option<(Instant, Stamp)>>,
}

impl Probe {
    async fn read<F, Fut>(&self, read: F) -> Result<Stamp, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Stamp, StoreError>>,
    {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((began, stamp)) = *last {
            if began >= asked {
                return Ok(stamp);
            }
        }
        let began = Instant::now();
        let stamp = read().await?;
        *last = Some((began, stamp));
        Ok(stamp)
    }
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

tokio::task_local! {
    /// The stamps of one page's figures (see [`one_reading`]).
    static PAGE: Arc<PageStamps>;
}

/// Each source's stamp as a page first read it.
#[derive(Default)]
struct PageStamps {
    crm: OnceCell<Stamp>,
    rollups: OnceCell<Stamp>,
}

/// Runs `page` with each source's stamp read once, at its first use, and every figure of the
/// page kept or read under that stamp: a dashboard's dozens of kept figures cost two stamp
/// reads, not one each, and they all describe the data as of one moment. For pages that only
/// read, of one store: a change landing meanwhile shows from the next page on.
pub async fn one_reading<F: Future>(page: F) -> F::Output {
    PAGE.scope(Arc::default(), page).await
}

impl Store {
    /// The CRM import log's count and latest time: it moves with every import.
    async fn crm_stamp(&self) -> Result<Stamp, StoreError> {
        let read = || {
            self.crm_memo.probe.read(|| async {
                Ok(sqlx::query_as(
                    "SELECT COUNT(*) AS imports, MAX(imported_at) AS imported_at FROM crm_import_log",
                )
                .fetch_one(&self.pool)
                .await?)
            })
        };
        match PAGE.try_with(Arc::clone) {
            Ok(page) => page.crm.get_or_try_init(read).await.copied(),
            Err(_) => read().await,
        }
    }

    /// The rollups' generation: it moves with every refresh and rebuild.
    async fn rollup_stamp(&self) -> Result<Stamp, StoreError> {
        let read = || {
            self.quality_memo.probe.read(|| async {
                let generation: i64 =
                    sqlx::query_scalar("SELECT generation FROM rollup_stamp WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?;
                Ok((generation, None))
            })
        };
        match PAGE.try_with(Arc::clone) {
            Ok(page) => page.rollups.get_or_try_init(read).await.copied(),
            Err(_) => read().await,
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn callers_share_a_stamp_read_only_when_it_began_after_they_asked() {
        let probe = Probe::default();
        let reads = AtomicI64::new(0);
        let read = || async {
            let n = reads.fetch_add(1, Ordering::SeqCst) + 1;
            tokio::time::sleep(Duration::from_millis(20)).await;
            Ok((n, None))
        };
        // One after another: each caller asked after the last read began, so each reads.
        assert_eq!(probe.read(read).await.unwrap().0, 1);
        assert_eq!(probe.read(read).await.unwrap().0, 2);
        // Ten at once: the first reads; the rest asked while that read was under way, so they
        // wait for it and share one more read, which began after they all asked.
        let got = futures::future::join_all((0..10).map(|_| probe.read(read))).await;
        let got: Vec<i64> = got.into_iter().map(|s| s.unwrap().0).collect();
        assert_eq!(got[0], 3);
        assert!(got[1..].iter().all(|&n| n == 4), "{got:?}");
        assert_eq!(reads.load(Ordering::SeqCst), 4);
    }
}
