//! Workers in real child processes: killed with SIGKILL mid-job, stopped with SIGTERM, and two
//! of them sharing one queue.
//!
//! The child is this test binary itself, running the ignored test `child_worker_process`, which
//! starts a real `Worker` with a slow test job kind. Environment variables configure it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use callgrade::domain::JobId;
use callgrade::jobs::{JobContext, JobError, JobHandler, Registry, Worker};
use callgrade::store::{NewJob, Store};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::helpers::{count, create_results_table, fast_queue, Backend, TestDb};
use crate::on_both_backends;

const KIND: &str = "test.slow";

struct Slow {
    sleep: Duration,
}

#[async_trait]
impl JobHandler for Slow {
    fn kind(&self) -> &'static str {
        KIND
    }
    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let me = std::process::id().to_string();
        let key = ctx.job.id.to_string();
        sqlx::query("INSERT INTO test_runs (job_key, worker, phase) VALUES ($1, $2, 'started')")
            .bind(key.clone())
            .bind(me.clone())
            .execute(ctx.store.pool())
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?;
        tokio::time::sleep(self.sleep).await;
        crate::test_jobs::write_result(ctx, KIND).await?;
        sqlx::query("INSERT INTO test_runs (job_key, worker, phase) VALUES ($1, $2, 'finished')")
            .bind(key)
            .bind(me)
            .execute(ctx.store.pool())
            .await
            .map_err(|e| JobError::Retryable(e.to_string()))?;
        Ok(())
    }
}

/// The body of a child worker process; does nothing when run without its environment.
#[test]
#[ignore = "entry point of the child worker processes the other tests start"]
fn child_worker_process() {
    let Ok(url) = std::env::var("CG_CHILD_DB_URL") else {
        return;
    };
    let sleep_ms: u64 = std::env::var("CG_CHILD_SLEEP_MS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let grace: u64 = std::env::var("CG_CHILD_GRACE_S")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async move {
        let store = Store::open(&url).await.expect("open store");
        let mut config = fast_queue();
        config.shutdown_grace_seconds = grace;
        config.concurrency.insert(KIND.into(), 4);
        let registry = Registry::new().register(Slow {
            sleep: Duration::from_millis(sleep_ms),
        });
        Worker::new(store, registry, config)
            .run(callgrade::app::shutdown_on_signals())
            .await;
    });
}

fn spawn_worker(url: &str, sleep_ms: u64, grace_s: u64) -> Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "process::child_worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("CG_CHILD_DB_URL", url)
        .env("CG_CHILD_SLEEP_MS", sleep_ms.to_string())
        .env("CG_CHILD_GRACE_S", grace_s.to_string())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn child worker")
}

fn sigterm(child: &Child) {
    kill(
        Pid::from_raw(i32::try_from(child.id()).expect("pid")),
        Signal::SIGTERM,
    )
    .expect("send SIGTERM");
}

async fn wait_exit(child: &mut Child, timeout: Duration) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        assert!(
            started.elapsed() < timeout,
            "child did not exit within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wait_until(store: &Store, sql: &str, want: i64, timeout: Duration) {
    let started = Instant::now();
    loop {
        let n = count(store, sql).await;
        if n >= want {
            return;
        }
        assert!(
            started.elapsed() < timeout,
            "{sql} = {n}, wanted {want} within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn setup(backend: Backend, jobs: usize) -> (TestDb, Store, Vec<JobId>) {
    let db = TestDb::new(backend).await;
    let store = Store::open(&db.url).await.expect("open");
    create_results_table(&store).await;
    let new: Vec<NewJob> = (0..jobs).map(|_| NewJob::standalone(KIND, 3)).collect();
    store.enqueue_many(&new).await.expect("enqueue");
    (db, store, new.iter().map(|j| j.id).collect())
}

async fn a_job_killed_mid_run_completes_after_restart_with_one_result(backend: Backend) {
    let (db, store, ids) = setup(backend, 1).await;
    let mut first = spawn_worker(&db.url, 60_000, 2);
    wait_until(
        &store,
        "SELECT COUNT(*) FROM test_runs WHERE phase = 'started'",
        1,
        Duration::from_secs(30),
    )
    .await;

    first.kill().expect("SIGKILL"); // std's kill is SIGKILL: no chance to clean up
    let killed_at = Instant::now();
    first.wait().expect("reap");
    let job = store.get_job(ids[0]).await.expect("get").expect("job");
    assert_eq!(
        job.state.as_str(),
        "running",
        "the dead worker's lease still holds the job"
    );
    assert_eq!(count(&store, "SELECT COUNT(*) FROM test_results").await, 0);

    let mut second = spawn_worker(&db.url, 100, 2);
    wait_until(
        &store,
        "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let recovered_in = killed_at.elapsed();
    sigterm(&second);
    assert!(wait_exit(&mut second, Duration::from_secs(10))
        .await
        .success());

    let job = store.get_job(ids[0]).await.expect("get").expect("job");
    assert_eq!(job.attempts, 2, "the crashed attempt counts");
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM test_results").await,
        1,
        "exactly one result row"
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM test_runs WHERE phase = 'started'"
        )
        .await,
        2
    );
    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM test_runs WHERE phase = 'finished'"
        )
        .await,
        1
    );
    // Lease 2 s, polling 50 ms: far inside the 60 s promise.
    assert!(
        recovered_in < Duration::from_secs(20),
        "recovered in {recovered_in:?}"
    );
}

async fn sigterm_releases_a_running_job_after_the_grace_period(backend: Backend) {
    let (db, store, ids) = setup(backend, 1).await;
    let mut child = spawn_worker(&db.url, 60_000, 1);
    wait_until(
        &store,
        "SELECT COUNT(*) FROM test_runs WHERE phase = 'started'",
        1,
        Duration::from_secs(30),
    )
    .await;
    let asked = Instant::now();
    sigterm(&child);
    let status = wait_exit(&mut child, Duration::from_secs(10)).await;
    assert!(status.success(), "graceful exit, got {status:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        asked.elapsed()
    );

    let job = store.get_job(ids[0]).await.expect("get").expect("job");
    assert_eq!(job.state.as_str(), "queued", "released for another worker");
    assert_eq!(job.attempts, 0, "a released attempt does not count");
    assert_eq!(job.worker_id, None);
    assert_eq!(count(&store, "SELECT COUNT(*) FROM test_results").await, 0);
}

async fn sigterm_lets_a_job_finish_within_the_grace_period(backend: Backend) {
    let (db, store, ids) = setup(backend, 1).await;
    let mut child = spawn_worker(&db.url, 1_500, 20);
    wait_until(
        &store,
        "SELECT COUNT(*) FROM test_runs WHERE phase = 'started'",
        1,
        Duration::from_secs(30),
    )
    .await;
    sigterm(&child);
    assert!(wait_exit(&mut child, Duration::from_secs(15))
        .await
        .success());
    let job = store.get_job(ids[0]).await.expect("get").expect("job");
    assert_eq!(job.state.as_str(), "succeeded");
    assert_eq!(count(&store, "SELECT COUNT(*) FROM test_results").await, 1);
}

async fn two_worker_processes_never_run_the_same_job(backend: Backend) {
    let (db, store, _) = setup(backend, 0).await;
    let mut a = spawn_worker(&db.url, 15, 2);
    let mut b = spawn_worker(&db.url, 15, 2);
    // Let both start before work appears, so both compete for it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let jobs: Vec<NewJob> = (0..200).map(|_| NewJob::standalone(KIND, 3)).collect();
    store.enqueue_many(&jobs).await.expect("enqueue");
    wait_until(
        &store,
        "SELECT COUNT(*) FROM jobs WHERE state = 'succeeded'",
        200,
        Duration::from_secs(60),
    )
    .await;
    sigterm(&a);
    sigterm(&b);
    assert!(wait_exit(&mut a, Duration::from_secs(10)).await.success());
    assert!(wait_exit(&mut b, Duration::from_secs(10)).await.success());

    assert_eq!(
        count(
            &store,
            "SELECT COUNT(*) FROM test_runs WHERE phase = 'started'"
        )
        .await,
        200,
        "each job ran once"
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM (SELECT job_key FROM test_runs GROUP BY job_key HAVING COUNT(*) > 2) t").await,
        0
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM test_results").await,
        200
    );
    assert_eq!(
        count(&store, "SELECT COUNT(DISTINCT worker) FROM test_runs").await,
        2,
        "both workers took jobs"
    );
}

on_both_backends!(
    a_job_killed_mid_run_completes_after_restart_with_one_result,
    sigterm_releases_a_running_job_after_the_grace_period,
    sigterm_lets_a_job_finish_within_the_grace_period,
    two_worker_processes_never_run_the_same_job,
);
