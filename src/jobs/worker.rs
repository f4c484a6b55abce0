//! The worker: claims jobs of the registered kinds, runs them under a lease, records outcomes.
//!
//! Concurrency is per kind (a semaphore each): a worker claims at most as many jobs of a kind as
//! it has free slots for. While a job runs, a heartbeat renews its lease every third of the lease;
//! if the renewal finds the job cancelled or taken over, the handler is stopped. On shutdown the
//! worker stops claiming, lets running jobs finish for a grace period, then stops them and hands
//! them back to the queue without counting the attempt.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn, Instrument};

use super::public_reason::public_reason;
use super::{backoff_delay, JobContext, JobError, JobHandler, Registry};
use crate::config::QueueConfig;
use crate::domain::{now_millis, CallStatus, JobId};
use crate::pipeline::Stage;
use crate::store::{ClaimedJob, Fence, JobFailure, NewJob, Store, StoreError};

/// Reaches a worker in the same process: wakes it after an upload, stops a job it runs.
#[derive(Clone, Default)]
pub struct WorkerHandle {
    wake: Arc<Notify>,
    /// The jobs this worker is running, with the token that stops each run.
    running: Arc<std::sync::Mutex<HashMap<JobId, CancellationToken>>>,
}

impl WorkerHandle {
    /// Tells the worker there may be new work.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Stops the run of `job` at once if this worker runs it (a job cancelled through this
    /// process's API); runs in other processes see the cancellation within a second.
    pub fn stop(&self, job: JobId) {
        if let Some(run) = self.running().get(&job) {
            run.cancel();
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashMap<JobId, CancellationToken>> {
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Runs jobs from the queue until shut down.
pub struct Worker {
    store: Store,
    registry: Registry,
    config: QueueConfig,
    id: String,
    handle: WorkerHandle,
}

impl Worker {
    /// A worker over `store` running the kinds in `registry`.
    pub fn new(store: Store, registry: Registry, config: QueueConfig) -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "host".into());
        let suffix = uuid::Uuid::new_v4().simple().to_string();
        let id = format!("{host}-{}-{}", std::process::id(), &suffix[..8]);
        Self {
            store,
            registry,
            config,
            id,
            handle: WorkerHandle::default(),
        }
    }

    /// This worker's id as recorded on the jobs it holds.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A handle to wake this worker.
    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Claims and runs jobs until `shutdown` fires, then drains gracefully.
    pub async fn run(self, shutdown: CancellationToken) {
        let kinds = self.registry.kinds();
        if kinds.is_empty() {
            warn!("worker has no job kinds registered; it will only wait for shutdown");
        }
        info!(worker = %self.id, kinds = ?kinds, "worker started");
        let slots: HashMap<&'static str, Arc<Semaphore>> = kinds
            .iter()
            .map(|k| (*k, Arc::new(Semaphore::new(self.config.concurrency_for(k)))))
            .collect();
        let lease_ms = i64::try_from(self.config.lease().as_millis()).unwrap_or(30_000);
        let poll = Duration::from_millis(self.config.poll_interval_ms.max(10));
        // Stops every running job; fired only after the shutdown grace period.
        let hard_stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let mut last_reap: Option<Instant> = None;

        while !shutdown.is_cancelled() {
            if last_reap.is_none_or(|t| t.elapsed() > self.config.lease() / 2) {
                for kind in &kinds {
                    if let Err(e) = self.store.reap_exhausted(kind).await {
                        warn!(error = %e, kind, "could not reap abandoned jobs");
                    }
                }
                last_reap = Some(Instant::now());
            }
            let mut claimed_any = false;
            let mut store_failed = false;
            for kind in &kinds {
                let sem = &slots[kind];
                let free = sem.available_permits();
                if free == 0 {
                    continue;
                }
                let running = self.running_now();
                match self
                    .store
                    .claim_jobs(kind, &self.id, free, lease_ms, &running)
                    .await
                {
                    Ok(jobs) => {
                        for job in jobs {
                            let Ok(permit) = sem.clone().try_acquire_owned() else {
                                // Cannot happen: we claimed at most `free`; be safe anyway.
                                let _ = self.store.release_job(&job, &self.id).await;
                                continue;
                            };
                            claimed_any = true;
                            self.spawn_job(&mut tasks, job, permit, &hard_stop, lease_ms);
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, kind, "could not claim jobs");
                        store_failed = true;
                    }
                }
            }
            while let Some(done) = tasks.try_join_next() {
                if let Err(e) = done {
                    warn!(error = %e, "job task panicked");
                }
            }
            if claimed_any && !store_failed {
                continue;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.handle.wake.notified() => {}
                _ = tokio::time::sleep(poll) => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            }
        }

        let running = tasks.len();
        if running > 0 {
            info!(
                running,
                grace_s = self.config.shutdown_grace_seconds,
                "shutting down: waiting for running jobs"
            );
            let grace = tokio::time::sleep(Duration::from_secs(self.config.shutdown_grace_seconds));
            tokio::pin!(grace);
            loop {
                tokio::select! {
                    next = tasks.join_next() => if next.is_none() { break },
                    _ = &mut grace, if !hard_stop.is_cancelled() => {
                        info!(left = tasks.len(), "grace period over: releasing running jobs");
                        hard_stop.cancel();
                    }
                }
            }
        }
        info!(worker = %self.id, "worker stopped");
    }

    /// Jobs this worker is running now: it never claims one of them again.
    fn running_now(&self) -> Vec<JobId> {
        self.handle.running().keys().copied().collect()
    }

    fn spawn_job(
        &self,
        tasks: &mut JoinSet<()>,
        job: ClaimedJob,
        permit: OwnedSemaphorePermit,
        hard_stop: &CancellationToken,
        lease_ms: i64,
    ) {
        let Some(handler) = self.registry.get(&job.kind) else {
            return;
        };
        let cancel = hard_stop.child_token();
        let span = tracing::info_span!("job", id = %job.id, kind = %job.kind, call = ?job.call_id.map(|c| c.to_string()), attempt = job.attempt);
        let runner = JobRunner {
            store: self.store.clone(),
            worker_id: self.id.clone(),
            config: self.config.clone(),
            lease_ms,
            hard_stop: hard_stop.clone(),
        };
        let handle = self.handle.clone();
        let id = job.id;
        handle.running().insert(id, cancel.clone());
        tasks.spawn(
            async move {
                runner.run(handler, job, cancel).await;
                handle.running().remove(&id);
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// Runs one claimed job to its recorded outcome.
struct JobRunner {
    store: Store,
    worker_id: String,
    config: QueueConfig,
    lease_ms: i64,
    hard_stop: CancellationToken,
}

impl JobRunner {
    async fn run(self, handler: Arc<dyn JobHandler>, job: ClaimedJob, cancel: CancellationToken) {
        let stage = Stage::from_kind(&job.kind);
        if let (Some(stage), Some(call_id)) = (stage, job.call_id) {
            if let Err(e) = self
                .store
                .set_call_status(call_id, stage.call_status(), None)
                .await
            {
                warn!(error = %e, "could not update call status");
            }
        }
        let started = Instant::now();
        let fence = Fence::of(&job, &self.worker_id);
        let ctx = JobContext {
            job: job.clone(),
            fence: Some(fence.clone()),
            store: self.store.clone(),
            cancel: cancel.clone(),
        };
        let heartbeat = self.keep_lease(&fence, cancel.clone());
        let result = tokio::select! {
            r = handler.run(&ctx) => Some(r),
            _ = cancel.cancelled() => None,
            _ = heartbeat => None,
        };
        let elapsed = started.elapsed().as_secs_f64();
        let outcome = match result {
            Some(Ok(())) => self.succeed(&job, stage).await,
            Some(Err(e)) => self.fail(&job, stage, e).await,
            None if self.hard_stop.is_cancelled() => {
                let released = self.store.release_job(&job, &self.worker_id).await;
                info!(?released, "job released at shutdown");
                Ok("released")
            }
            None => {
                warn!("job stopped: it was cancelled or another worker took it over");
                Ok("lost")
            }
        };
        let outcome = outcome.unwrap_or_else(|e| {
            // The lease will expire and another attempt will run: at-least-once.
            warn!(error = %e, "could not record job outcome");
            "unrecorded"
        });
        metrics::histogram!("callgrade_job_duration_seconds", "kind" => job.kind.clone(), "outcome" => outcome)
            .record(elapsed);
        metrics::counter!("callgrade_jobs_finished_total", "kind" => job.kind.clone(), "outcome" => outcome)
            .increment(1);
    }

    /// Renews the lease every third of it and, every second in between, checks that the claim
    /// still holds (a read), so a cancelled job or a lease taken over stops within moments; a
    /// lease that ran out while the database could not be reached stops the run too. Returns
    /// only when the job must stop.
    async fn keep_lease(&self, fence: &Fence, cancel: CancellationToken) {
        let lease = Duration::from_millis(u64::try_from(self.lease_ms).unwrap_or(30_000));
        let renew_every = (lease / 3).max(Duration::from_millis(50));
        let check_every = renew_every.min(Duration::from_secs(1));
        let mut renewed = Instant::now();
        loop {
            tokio::time::sleep(check_every).await;
            let renew = renewed.elapsed() >= renew_every;
            let held = if renew {
                self.store.heartbeat(fence, self.lease_ms).await
            } else {
                self.store.still_holds(fence).await
            };
            match held {
                Ok(true) if renew => renewed = Instant::now(),
                Ok(true) => {}
                Ok(false) => {
                    cancel.cancel();
                    return;
                }
                Err(e) => {
                    warn!(error = %e, "heartbeat failed; retrying");
                    if renewed.elapsed() >= lease {
                        warn!("the lease ran out before it could be renewed: stopping the run");
                        cancel.cancel();
                        return;
                    }
                }
            }
        }
    }

    async fn succeed(
        &self,
        job: &ClaimedJob,
        stage: Option<Stage>,
    ) -> Result<&'static str, StoreError> {
        let (follow_up, status) = match (stage, job.call_id) {
            (Some(stage), Some(call_id)) => match stage.next() {
                Some(next) => (
                    Some(NewJob::for_call(
                        next.kind(),
                        call_id,
                        self.config.max_attempts,
                    )),
                    Some(next.waiting_status()),
                ),
                None => (None, Some(CallStatus::Done)),
            },
            _ => (None, None),
        };
        let recorded = self
            .store
            .complete_job(job, &self.worker_id, follow_up.as_ref(), status)
            .await?;
        Ok(if recorded { "succeeded" } else { "lost" })
    }

    async fn fail(
        &self,
        job: &ClaimedJob,
        stage: Option<Stage>,
        error: JobError,
    ) -> Result<&'static str, StoreError> {
        let (message, retry) = match &error {
            JobError::Retryable(m) => (m.clone(), job.attempt < job.max_attempts),
            JobError::Fatal(m) => (m.clone(), false),
        };
        let failure = if retry {
            let delay = backoff_delay(
                job.attempt,
                Duration::from_millis(self.config.backoff_base_ms),
                Duration::from_millis(self.config.backoff_max_ms),
            );
            warn!(error = %message, retry_in_s = delay.as_secs_f64(), "job failed; will retry");
            JobFailure::RetryAt(
                now_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2),
            )
        } else {
            warn!(error = %message, "job failed for good");
            // The job keeps the whole message for admins; the call shows it without internals.
            let host = self.worker_id.rsplitn(3, '-').nth(2).unwrap_or_default();
            let shown = public_reason(&message, &[&self.worker_id, host]);
            let call_reason = match stage {
                Some(stage) => format!("{} failed: {shown}", stage.label()),
                None => shown,
            };
            JobFailure::Dead { call_reason }
        };
        let recorded = self
            .store
            .fail_job(job, &self.worker_id, &message, &failure)
            .await?;
        Ok(match (recorded, retry) {
            (false, _) => "lost",
            (true, true) => "retry",
            (true, false) => "dead",
        })
    }
}
