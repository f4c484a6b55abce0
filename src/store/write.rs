//! Writing: the only ways to get a connection that may write hold the SQLite write turn.
//!
//! SQLite has one writer at a time. Writers inside this process take turns on a lock (the
//! *write turn*) instead of meeting in SQLite's busy handler, which sleeps in steps of up to
//! 100 ms. A [`WriteTx`] (a transaction) and a [`WriteConn`] (one statement that commits on
//! its own) hold the turn for their whole life, so a write cannot forget it, and functions
//! that write as part of something larger take `&mut WriteTx` instead of taking it again.
//! Opening a second one in a task that already holds the turn would wait for ever; it is
//! refused at once with [`StoreError::NestedWrite`] instead (inside a tokio task, where every
//! request and job runs; the runtime's root future has no task id to tell by).
//!
//! On SQLite a transaction starts with `BEGIN IMMEDIATE`, so what it reads it reads under the
//! write lock (other processes too); on PostgreSQL a read-modify-write reads its rows with
//! [`WriteTx::for_update`]. See docs/decisions/0013-store-shape.md.

use std::collections::HashSet;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Transaction};
use tokio::sync::OwnedMutexGuard;

use super::{Backend, Store, StoreError};

/// The SQLite write turn of one store (shared by its clones).
#[derive(Default, Clone)]
pub(crate) struct WriteGate {
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Tasks holding the turn now, to refuse a nested write instead of deadlocking.
    holders: Arc<Mutex<HashSet<tokio::task::Id>>>,
}

/// This process's turn to write, held until dropped.
struct Turn {
    _guard: OwnedMutexGuard<()>,
    holders: Arc<Mutex<HashSet<tokio::task::Id>>>,
    task: Option<tokio::task::Id>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        if let Some(task) = self.task {
            self.holders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&task);
        }
    }
}

impl WriteGate {
    async fn take(&self) -> Result<Turn, StoreError> {
        let task = tokio::task::try_id();
        if let Some(task) = task {
            let holders = self.holders.lock().unwrap_or_else(|p| p.into_inner());
            if holders.contains(&task) {
                return Err(StoreError::NestedWrite);
            }
        }
        let guard = self.turn.clone().lock_owned().await;
        if let Some(task) = task {
            self.holders
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(task);
        }
        Ok(Turn {
            _guard: guard,
            holders: self.holders.clone(),
            task,
        })
    }
}

/// A write transaction: commits with [`WriteTx::commit`], rolls back when dropped.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    // Declared after `tx`: the transaction ends (rolled back if not committed) before the
    // turn is given back.
    _turn: Option<Turn>,
}

impl WriteTx {
    /// Commits, then gives the write turn back.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.tx.commit().await?;
        Ok(())
    }

    /// Rolls back, then gives the write turn back (dropping does the same, without waiting).
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// The engine the transaction runs on.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// What a `SELECT` of a read-modify-write ends with: ` FOR UPDATE` on PostgreSQL (the rows
    /// are locked until the commit); nothing on SQLite, where the transaction already holds
    /// the database's write lock.
    pub fn for_update(&self) -> &'static str {
        super::dialect::for_update(self.backend)
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// A connection for one statement that commits on its own (no `BEGIN`/`COMMIT` round trips:
/// the busy queue's heartbeats and completions), holding the write turn.
pub struct WriteConn {
    conn: PoolConnection<Any>,
    _turn: Option<Turn>,
}

impl Deref for WriteConn {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for WriteConn {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}

impl Store {
    async fn turn(&self) -> Result<Option<Turn>, StoreError> {
        match &self.write_gate {
            Some(gate) => gate.take().await.map(Some),
            None => Ok(None),
        }
    }

    /// Starts a write transaction (taking this process's write turn on SQLite first).
    pub async fn write(&self) -> Result<WriteTx, StoreError> {
        let turn = self.turn().await?;
        let tx = match super::dialect::begin_write(self.backend) {
            Some(begin) => self.pool.begin_with(begin).await?,
            None => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            backend: self.backend,
            _turn: turn,
        })
    }

    /// A connection for a single writing statement (taking the write turn on SQLite).
    pub async fn write_one(&self) -> Result<WriteConn, StoreError> {
        let turn = self.turn().await?;
        let conn = self.pool.acquire().await?;
        Ok(WriteConn { conn, _turn: turn })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_write_in_the_same_task_is_refused_not_a_deadlock() {
        // In a task, as every request and job runs (the runtime's root future has no task id).
        tokio::spawn(second_write_in_one_task()).await.unwrap();
    }

    async fn second_write_in_one_task() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let tx = store.write().await.unwrap();
        let nested = tokio::time::timeout(std::time::Duration::from_secs(5), store.write())
            .await
            .expect("refused at once, not after a wait");
        assert!(matches!(nested, Err(StoreError::NestedWrite)));
        let nested = tokio::time::timeout(std::time::Duration::from_secs(5), store.write_one())
            .await
            .expect("refused at once");
        assert!(matches!(nested, Err(StoreError::NestedWrite)));
        tx.commit().await.unwrap();
        // The turn is back: the same task may write again.
        store.write().await.unwrap().commit().await.unwrap();
        // Another task waits for its turn instead of being refused.
        let held = store.write().await.unwrap();
        let other = tokio::spawn({
            let store = store.clone();
            async move { store.write().await.map(|_| ()) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!other.is_finished(), "waits for the turn");
        drop(held);
        other.await.unwrap().unwrap();
    }

    /// Writes are made only through [`Store::write`] and [`Store::write_one`]: no statement in
    /// the store runs `execute` on the pool itself (which would write without the turn).
    #[test]
    fn no_store_statement_executes_on_the_pool_directly() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut offenders = Vec::new();
        for folder in ["src/store", "src/analytics", "src/bench"] {
            for entry in std::fs::read_dir(dir.join(folder)).unwrap() {
                let path = entry.unwrap().path();
                // Migrations run before anything else; this file holds the check itself.
                if path.extension().is_none_or(|e| e != "rs")
                    || path.ends_with("migrations.rs")
                    || path.ends_with("write.rs")
                {
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (n, line) in text.lines().enumerate() {
                    let l = line.replace(' ', "");
                    if l.contains(".execute(&self.pool)")
                        || l.contains(".execute(self.pool())")
                        || l.contains(".execute(store.pool())")
                        || l.contains("write_turn()")
                    {
                        offenders.push(format!("{}:{}", path.display(), n + 1));
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "writes outside a WriteTx: {offenders:?}"
        );
    }
}
