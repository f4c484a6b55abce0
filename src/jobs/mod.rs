//! Background work: job handlers, the registry of kinds, and the worker that runs them.
//!
//! A job kind is a [`JobHandler`] registered in a [`Registry`]. The [`worker::Worker`] claims
//! jobs of registered kinds from the database queue (see [`crate::store`]), runs them with a
//! lease it keeps alive, and records the outcome. Handlers say whether a failure is worth
//! retrying ([`JobError::Retryable`]) or not ([`JobError::Fatal`]).

pub(crate) mod backoff;
pub mod public_reason;
pub mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub use backoff::backoff_delay;
pub use worker::{Worker, WorkerHandle};

use crate::store::{ClaimedJob, Fence, Store};

/// Why a job attempt failed, and whether trying again could help.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum JobError {
    /// A passing problem (network, busy server): retried with backoff.
    #[error("{0}")]
    Retryable(String),
    /// Trying again cannot help (corrupt input, bad configuration): the job is dead at once.
    #[error("{0}")]
    Fatal(String),
}

impl From<crate::store::StoreError> for JobError {
    fn from(e: crate::store::StoreError) -> Self {
        JobError::Retryable(e.to_string())
    }
}

/// What a handler gets for one attempt.
pub struct JobContext {
    /// The claimed job.
    pub job: ClaimedJob,
    /// This run's claim: result writes pass it to the store, which refuses them once the
    /// lease has passed to another run. `None` outside a worker (the transcription bench).
    pub fence: Option<Fence>,
    /// The database.
    pub store: Store,
    /// Fires when the job must stop: it was cancelled, taken over, or the worker is shutting
    /// down past its grace period. Long handlers check it between steps.
    pub cancel: CancellationToken,
}

/// One kind of background work.
#[async_trait]
pub trait JobHandler: Send + Sync + 'static {
    /// The kind name stored in the queue, e.g. `transcribe`.
    fn kind(&self) -> &'static str;

    /// Does the work. Results must be written idempotently (unique keys, upserts): after a
    /// crash the same job can run again.
    async fn run(&self, ctx: &JobContext) -> Result<(), JobError>;
}

/// The job kinds this process can run.
#[derive(Clone, Default)]
pub struct Registry {
    handlers: BTreeMap<&'static str, Arc<dyn JobHandler>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler; a later handler of the same kind replaces the earlier one.
    pub fn register(mut self, handler: impl JobHandler) -> Self {
        self.handlers.insert(handler.kind(), Arc::new(handler));
        self
    }

    /// The handler for `kind`.
    pub fn get(&self, kind: &str) -> Option<Arc<dyn JobHandler>> {
        self.handlers.get(kind).cloned()
    }

    /// Registered kinds, sorted.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.handlers.keys().copied().collect()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.handlers.is_empty()
    }
}
