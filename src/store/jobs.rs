//! The durable job queue: rows in `jobs`, claimed with a lease.
//!
//! Life of a job: `queued` -> (claim) `running` -> `succeeded` | `queued` again (retryable error,
//! with backoff) | `dead` (fatal error or attempts exhausted) | `cancelled`. A running job whose
//! lease expired (its worker died) is claimable again. Every transition that changes what a user
//! sees about a call happens in the same transaction as the job transition. See
//! `docs/decisions/0001-job-queue.md`.

use sqlx::FromRow;

use super::decode::JsonText;
use super::{Store, StoreError, WriteTx};
use crate::domain::{now_millis, CallId, CallStatus, JobId, JobState, Millis};

/// A job to queue.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Identifier.
    pub id: JobId,
    /// Registered job kind, e.g. `transcribe`.
    pub kind: String,
    /// The call it works on, if any.
    pub call_id: Option<CallId>,
    /// Kind-specific input.
    pub payload: serde_json::Value,
    /// Attempts before the job is dead.
    pub max_attempts: u32,
    /// Not before this time.
    pub run_at: Millis,
}

impl NewJob {
    /// A job of `kind` tied to no call, runnable now (maintenance work, tests, benchmarks).
    pub fn standalone(kind: &str, max_attempts: u32) -> Self {
        Self {
            id: JobId::new(),
            kind: kind.to_string(),
            call_id: None,
            payload: serde_json::json!({}),
            max_attempts,
            run_at: now_millis(),
        }
    }

    /// A job of `kind` for `call_id`, runnable now.
    pub fn for_call(kind: &str, call_id: CallId, max_attempts: u32) -> Self {
        Self {
            id: JobId::new(),
            kind: kind.to_string(),
            call_id: Some(call_id),
            payload: serde_json::json!({}),
            max_attempts,
            run_at: now_millis(),
        }
    }
}

/// A job this worker holds a lease on.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedJob {
    /// Identifier.
    pub id: JobId,
    /// Kind.
    pub kind: String,
    /// Call it works on.
    pub call_id: Option<CallId>,
    /// Input.
    #[sqlx(try_from = "JsonText<serde_json::Value>")]
    pub payload: serde_json::Value,
    /// This attempt's number, from 1.
    #[sqlx(rename = "attempts", try_from = "i64")]
    pub attempt: u32,
    /// Attempts allowed.
    #[sqlx(try_from = "i64")]
    pub max_attempts: u32,
}

/// A job as listed in the API.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct JobRecord {
    /// Identifier.
    pub id: JobId,
    /// Kind.
    pub kind: String,
    /// Call it works on.
    pub call_id: Option<CallId>,
    /// State.
    pub state: JobState,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts allowed.
    pub max_attempts: i64,
    /// Not before.
    pub run_at: Millis,
    /// Lease expiry while running.
    pub lease_until: Option<Millis>,
    /// The worker holding it.
    pub worker_id: Option<String>,
    /// The last error, kept after the job died.
    pub last_error: Option<String>,
    /// Created.
    pub created_at: Millis,
    /// Last change.
    pub updated_at: Millis,
    /// Finished (succeeded, dead, cancelled).
    pub finished_at: Option<Millis>,
}

/// Number of jobs per (state, kind).
#[derive(Debug, Clone, PartialEq, Eq, FromRow)]
pub struct JobCounts {
    /// State.
    pub state: JobState,
    /// Kind.
    pub kind: String,
    /// How many.
    #[sqlx(rename = "n")]
    pub count: i64,
}

/// One claim of a job: the worker holding it and the attempt number the claim gave it. Every
/// write a run makes is fenced by it, so once the lease has passed to another claim (even one of
/// the same worker) the stale run's heartbeats, results and outcome change nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The job.
    pub job: JobId,
    /// The worker holding it.
    pub worker: String,
    /// The attempt this claim made (each claim counts one).
    pub attempt: u32,
}

impl Fence {
    /// The fence of `job` as claimed by `worker`.
    pub fn of(job: &ClaimedJob, worker: &str) -> Self {
        Self {
            job: job.id,
            worker: worker.to_string(),
            attempt: job.attempt,
        }
    }

    /// Checks, inside a write transaction, that the claim still holds its job (locking the
    /// job's row on PostgreSQL until the transaction ends, so no claim can pass it meanwhile).
    pub(super) async fn hold(&self, tx: &mut WriteTx) -> Result<(), StoreError> {
        let lock = tx.for_update();
        let held: Option<i64> = sqlx::query_scalar(&format!(
            "SELECT 1 FROM jobs WHERE id = $1 AND worker_id = $2 AND attempts = $3 \
             AND state = 'running'{lock}"
        ))
        .bind(self.job.to_string())
        .bind(self.worker.clone())
        .bind(i64::from(self.attempt))
        .fetch_optional(&mut **tx)
        .await?;
        held.map(|_| ()).ok_or(StoreError::Fenced)
    }
}

/// How a failed attempt ends.
#[derive(Debug, Clone)]
pub enum JobFailure {
    /// Try again at this time.
    RetryAt(Millis),
    /// Give up; the call (if any) is marked failed with this reason.
    Dead {
        /// Shown on the call.
        call_reason: String,
    },
}

const JOB_COLUMNS: &str = "id, kind, call_id, state, attempts, max_attempts, run_at, lease_until, \
     worker_id, last_error, created_at, updated_at, finished_at";

/// Inserts a job inside an open transaction (so it commits with the domain write).
pub(crate) async fn insert_job(
    tx: &mut WriteTx,
    job: &NewJob,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO jobs (id, kind, call_id, payload, state, attempts, max_attempts, run_at, \
         created_at, updated_at) VALUES ($1, $2, $3, $4, 'queued', 0, $5, $6, $7, $7)",
    )
    .bind(job.id.to_string())
    .bind(job.kind.clone())
    .bind(job.call_id.map(|c| c.to_string()))
    .bind(job.payload.to_string())
    .bind(i64::from(job.max_attempts))
    .bind(job.run_at)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_call_status_tx(
    tx: &mut WriteTx,
    call_id: Option<CallId>,
    status: CallStatus,
    reason: Option<&str>,
    now: Millis,
) -> Result<(), StoreError> {
    if let Some(call_id) = call_id {
        sqlx::query(
            "UPDATE calls SET status = $1, failure_reason = $2, updated_at = $3 WHERE id = $4",
        )
        .bind(status.as_str().to_string())
        .bind(reason.map(str::to_string))
        .bind(now)
        .bind(call_id.to_string())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

impl Store {
    /// Queues a job on its own (jobs tied to a domain write use the write's transaction).
    pub async fn enqueue(&self, job: &NewJob) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        insert_job(&mut tx, job, now_millis()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Queues `stage` for `call` again (a rescore) and shows the call as waiting for it, in one
    /// transaction. Returns false when that stage is already queued or running for the call.
    pub async fn queue_stage(
        &self,
        call: CallId,
        stage: crate::pipeline::Stage,
        max_attempts: u32,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let mut tx = self.write().await?;
        let job = NewJob::for_call(stage.kind(), call, max_attempts);
        match insert_job(&mut tx, &job, now).await {
            Ok(()) => {}
            Err(StoreError::Database(e)) if StoreError::is_unique_violation(&e) => {
                return Ok(false);
            }
            Err(e) => return Err(e),
        }
        set_call_status_tx(&mut tx, Some(call), stage.waiting_status(), None, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Queues many jobs in one transaction (used by tools and the benchmark).
    pub async fn enqueue_many(&self, jobs: &[NewJob]) -> Result<(), StoreError> {
        let now = now_millis();
        let mut tx = self.write().await?;
        for job in jobs {
            insert_job(&mut tx, job, now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` runnable jobs of `kind` for `worker_id`, leased until
    /// `now + lease_ms`: queued jobs that are due, and running jobs whose lease expired (their
    /// worker died) while they have attempts left.
    ///
    /// One statement takes the jobs: on PostgreSQL its row locks use `SKIP LOCKED`, so workers
    /// on many machines never wait on (or take) each other's rows; on SQLite the single
    /// `UPDATE ... RETURNING` runs under the database's one write lock.
    pub async fn claim_jobs(
        &self,
        kind: &str,
        worker_id: &str,
        limit: usize,
        lease_ms: i64,
        running: &[JobId],
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        // A job this worker is still running is never claimed again by it, even when its lease
        // ran out (a stalled database): the run goes on or stops on its own fence.
        let not_running: String = if running.is_empty() {
            String::new()
        } else {
            let ids: Vec<String> = (0..running.len()).map(|i| format!("${}", 6 + i)).collect();
            format!(" AND id NOT IN ({})", ids.join(", "))
        };
        let now = now_millis();
        let lock = super::dialect::claim_lock(self.backend);
        // Two candidate sets, each one index range scan: taking over expired leases first
        // (older work), then due queued jobs in order. One `OR` query would make the database
        // sort every queued row on every claim.
        let candidates = [
            "state = 'running' AND lease_until < $3 AND attempts < max_attempts",
            "state = 'queued' AND run_at <= $3 ORDER BY run_at",
        ];
        let mut claimed = Vec::new();
        for candidate in candidates {
            let want = limit.saturating_sub(claimed.len());
            if want == 0 {
                break;
            }
            let sql = format!(
                "UPDATE jobs SET state = 'running', attempts = attempts + 1, worker_id = $1, \
                 lease_until = $2, started_at = $3, updated_at = $3 \
                 WHERE id IN (SELECT id FROM jobs WHERE kind = $4{not_running} AND {candidate} \
                 LIMIT $5{lock}) \
                 RETURNING id, kind, call_id, payload, attempts, max_attempts"
            );
            let mut conn = self.write_one().await?;
            let mut query = sqlx::query_as(&sql)
                .bind(worker_id.to_string())
                .bind(now + lease_ms)
                .bind(now)
                .bind(kind.to_string())
                .bind(i64::try_from(want).unwrap_or(i64::MAX));
            for id in running {
                query = query.bind(id.to_string());
            }
            claimed.extend(query.fetch_all(&mut *conn).await?);
        }
        Ok(claimed)
    }

    /// Marks dead the jobs of `kind` whose lease expired on their last allowed attempt: their
    /// worker died every time, so running them again would likely kill another one. Workers
    /// call this now and then, not on every claim, to keep claims to one write.
    pub async fn reap_exhausted(&self, kind: &str) -> Result<(), StoreError> {
        let now = now_millis();
        const REASON: &str = "the worker running this job stopped responding on every attempt";
        let mut tx = self.write().await?;
        let calls: Vec<Option<CallId>> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'dead', last_error = $1, finished_at = $2, updated_at = $2, \
             lease_until = NULL WHERE kind = $3 AND state = 'running' AND lease_until < $2 \
             AND attempts >= max_attempts RETURNING call_id",
        )
        .bind(REASON.to_string())
        .bind(now)
        .bind(kind.to_string())
        .fetch_all(&mut *tx)
        .await?;
        for call_id in calls {
            set_call_status_tx(&mut tx, call_id, CallStatus::Failed, Some(REASON), now).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Extends the lease of a job this worker still holds. `false` means the job was cancelled
    /// or taken over: the worker must stop working on it.
    pub async fn heartbeat(&self, fence: &Fence, lease_ms: i64) -> Result<bool, StoreError> {
        let now = now_millis();
        let mut conn = self.write_one().await?;
        let done = sqlx::query(
            "UPDATE jobs SET lease_until = $1, updated_at = $2 \
             WHERE id = $3 AND worker_id = $4 AND attempts = $5 AND state = 'running'",
        )
        .bind(now + lease_ms)
        .bind(now)
        .bind(fence.job.to_string())
        .bind(fence.worker.clone())
        .bind(i64::from(fence.attempt))
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `fence` still holds its job (a read: cheap enough to ask every second, so a
    /// cancelled job or a lost lease stops its run within moments).
    pub async fn still_holds(&self, fence: &Fence) -> Result<bool, StoreError> {
        let held: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM jobs WHERE id = $1 AND worker_id = $2 AND attempts = $3 \
             AND state = 'running'",
        )
        .bind(fence.job.to_string())
        .bind(fence.worker.clone())
        .bind(i64::from(fence.attempt))
        .fetch_optional(&self.pool)
        .await?;
        Ok(held.is_some())
    }

    /// Marks a job this worker holds as succeeded, queues its follow-up and moves the call on,
    /// all in one transaction. `false` means the worker no longer held the job (nothing written).
    pub async fn complete_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        follow_up: Option<&NewJob>,
        call_status: Option<CallStatus>,
    ) -> Result<bool, StoreError> {
        const SQL: &str =
            "UPDATE jobs SET state = 'succeeded', finished_at = $1, updated_at = $1, \
             lease_until = NULL WHERE id = $2 AND worker_id = $3 AND attempts = $4 \
             AND state = 'running'";
        let now = now_millis();
        if follow_up.is_none() && call_status.is_none() {
            // Nothing else to write: one statement is atomic on its own, and skipping
            // BEGIN/COMMIT is a third of the round trips of a busy queue.
            let mut conn = self.write_one().await?;
            let done = sqlx::query(SQL)
                .bind(now)
                .bind(job.id.to_string())
                .bind(worker_id.to_string())
                .bind(i64::from(job.attempt))
                .execute(&mut *conn)
                .await?;
            return Ok(done.rows_affected() == 1);
        }
        let mut tx = self.write().await?;
        let done = sqlx::query(SQL)
            .bind(now)
            .bind(job.id.to_string())
            .bind(worker_id.to_string())
            .bind(i64::from(job.attempt))
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(next) = follow_up {
            insert_job(&mut tx, next, now).await?;
        }
        if let Some(status) = call_status {
            set_call_status_tx(&mut tx, job.call_id, status, None, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Records a failed attempt: back to the queue at a later time, or dead. `false` means the
    /// worker no longer held the job.
    pub async fn fail_job(
        &self,
        job: &ClaimedJob,
        worker_id: &str,
        error: &str,
        outcome: &JobFailure,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let mut tx = self.write().await?;
        let (state, run_at, finished) = match outcome {
            JobFailure::RetryAt(at) => (JobState::Queued, *at, None),
            JobFailure::Dead { .. } => (JobState::Dead, now, Some(now)),
        };
        let done = sqlx::query(
            "UPDATE jobs SET state = $1, run_at = $2, finished_at = $3, last_error = $4, \
             lease_until = NULL, worker_id = NULL, updated_at = $5 \
             WHERE id = $6 AND worker_id = $7 AND attempts = $8 AND state = 'running'",
        )
        .bind(state.as_str().to_string())
        .bind(run_at)
        .bind(finished)
        .bind(error.to_string())
        .bind(now)
        .bind(job.id.to_string())
        .bind(worker_id.to_string())
        .bind(i64::from(job.attempt))
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        if let JobFailure::Dead { call_reason } = outcome {
            set_call_status_tx(
                &mut tx,
                job.call_id,
                CallStatus::Failed,
                Some(call_reason),
                now,
            )
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Hands a job back to the queue without counting the attempt (graceful shutdown).
    pub async fn release_job(&self, job: &ClaimedJob, worker_id: &str) -> Result<bool, StoreError> {
        let now = now_millis();
        let mut conn = self.write_one().await?;
        let done = sqlx::query(
            "UPDATE jobs SET state = 'queued', attempts = attempts - 1, run_at = $1, \
             lease_until = NULL, worker_id = NULL, updated_at = $1 \
             WHERE id = $2 AND worker_id = $3 AND attempts = $4 AND state = 'running'",
        )
        .bind(now)
        .bind(job.id.to_string())
        .bind(worker_id.to_string())
        .bind(i64::from(job.attempt))
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Cancels a queued or running job; its call is marked failed. `None` if no such job,
    /// `Some(false)` if it had already finished.
    pub async fn cancel_job(&self, id: JobId) -> Result<Option<bool>, StoreError> {
        let now = now_millis();
        let mut tx = self.write().await?;
        let row: Option<Option<CallId>> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'cancelled', finished_at = $1, updated_at = $1, \
             lease_until = NULL, last_error = 'cancelled by a user' \
             WHERE id = $2 AND state IN ('queued', 'running') RETURNING call_id",
        )
        .bind(now)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(call_id) = row else {
            drop(tx);
            return Ok(self.get_job(id).await?.map(|_| false));
        };
        set_call_status_tx(
            &mut tx,
            call_id,
            CallStatus::Failed,
            Some("cancelled by a user"),
            now,
        )
        .await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    /// Puts a dead or cancelled job back in the queue with fresh attempts; its call goes back
    /// to `call_status`. `None` if no such job, `Some(false)` if it was not dead or cancelled.
    pub async fn retry_job(
        &self,
        id: JobId,
        call_status: CallStatus,
    ) -> Result<Option<bool>, StoreError> {
        let now = now_millis();
        let mut tx = self.write().await?;
        let row: Result<Option<Option<CallId>>, sqlx::Error> = sqlx::query_scalar(
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $1, finished_at = NULL, \
             lease_until = NULL, worker_id = NULL, updated_at = $1 \
             WHERE id = $2 AND state IN ('dead', 'cancelled') RETURNING call_id",
        )
        .bind(now)
        .bind(id.to_string())
        .fetch_optional(&mut *tx)
        .await;
        let row = match row {
            Ok(row) => row,
            // Another job of the same kind is already live for this call.
            Err(e) if StoreError::is_unique_violation(&e) => return Ok(Some(false)),
            Err(e) => return Err(e.into()),
        };
        let Some(call_id) = row else {
            drop(tx);
            return Ok(self.get_job(id).await?.map(|_| false));
        };
        set_call_status_tx(&mut tx, call_id, call_status, None, now).await?;
        tx.commit().await?;
        Ok(Some(true))
    }

    /// One job by id.
    pub async fn get_job(&self, id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let sql = format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = $1");
        let row = sqlx::query_as::<_, JobRecord>(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// The newest job of a call (the one that decides what a retry restarts).
    pub async fn latest_job_for_call(&self, call: CallId) -> Result<Option<JobRecord>, StoreError> {
        let sql =
            format!("SELECT {JOB_COLUMNS} FROM jobs WHERE call_id = $1 ORDER BY id DESC LIMIT 1");
        let row = sqlx::query_as::<_, JobRecord>(&sql)
            .bind(call.to_string())
            .fetch_optional(&self.pool)
            .await?;
        Ok(row)
    }

    /// Jobs, newest first, optionally in one state, before a keyset cursor.
    pub async fn list_jobs(
        &self,
        state: Option<JobState>,
        before: Option<JobId>,
        limit: i64,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let sql = format!(
            "SELECT {JOB_COLUMNS} FROM jobs WHERE ($1 = '' OR state = $1) AND ($2 = '' OR id < $2) \
             ORDER BY id DESC LIMIT $3"
        );
        let rows = sqlx::query_as::<_, JobRecord>(&sql)
            .bind(state.map(|s| s.as_str().to_string()).unwrap_or_default())
            .bind(before.map(|b| b.to_string()).unwrap_or_default())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// How many jobs are in each (state, kind).
    pub async fn job_counts(&self) -> Result<Vec<JobCounts>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT state, kind, COUNT(*) AS n FROM jobs GROUP BY state, kind ORDER BY state, kind",
        )
        .fetch_all(&self.pool)
        .await?)
    }
}
