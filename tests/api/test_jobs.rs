//! Job handlers that exist only in tests: they stand in for the real pipeline stages so the
//! queue's behaviour can be driven precisely.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use callgrade::jobs::{JobContext, JobError, JobHandler};

/// What a test handler does on each attempt.
#[derive(Clone, Debug)]
pub enum Behaviour {
    /// Writes its result and succeeds.
    Succeed,
    /// Fails retryably on the first `n` attempts, then succeeds.
    FailFirst(usize),
    /// Fails fatally.
    Fatal,
    /// Sleeps, then writes its result and succeeds.
    Sleep(Duration),
}

/// Counters a test can read.
#[derive(Default)]
pub struct Probe {
    pub runs: AtomicUsize,
    pub running: AtomicUsize,
    pub max_running: AtomicUsize,
}

pub struct TestHandler {
    pub kind: &'static str,
    pub behaviour: Behaviour,
    pub probe: Arc<Probe>,
}

impl TestHandler {
    pub fn new(kind: &'static str, behaviour: Behaviour) -> (Self, Arc<Probe>) {
        let probe = Arc::new(Probe::default());
        (
            Self {
                kind,
                behaviour,
                probe: probe.clone(),
            },
            probe,
        )
    }
}

struct RunningGuard(Arc<Probe>);

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Writes the job's result once: a second run of the same job inserts nothing.
pub async fn write_result(ctx: &JobContext, kind: &str) -> Result<(), JobError> {
    let key = match ctx.job.call_id {
        Some(call) => format!("{kind}:{call}"),
        None => ctx.job.id.to_string(),
    };
    sqlx::query(
        "INSERT INTO test_results (job_key, worker) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(key)
    .bind(std::process::id().to_string())
    .execute(ctx.store.pool())
    .await
    .map_err(|e| JobError::Retryable(e.to_string()))?;
    Ok(())
}

#[async_trait]
impl JobHandler for TestHandler {
    fn kind(&self) -> &'static str {
        self.kind
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let run = self.probe.runs.fetch_add(1, Ordering::SeqCst) + 1;
        let now = self.probe.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.probe.max_running.fetch_max(now, Ordering::SeqCst);
        let _guard = RunningGuard(self.probe.clone());
        match &self.behaviour {
            Behaviour::Succeed => {}
            Behaviour::FailFirst(n) if run <= *n => {
                return Err(JobError::Retryable(format!("temporary failure {run}")))
            }
            Behaviour::FailFirst(_) => {}
            Behaviour::Fatal => return Err(JobError::Fatal("the recording is corrupt".into())),
            Behaviour::Sleep(d) => tokio::time::sleep(*d).await,
        }
        write_result(ctx, self.kind).await
    }
}
