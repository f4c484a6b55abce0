//! `callgrade bench queue`: enqueue and claim+complete throughput of no-op jobs.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::QueueConfig;
use crate::domain::JobState;
use crate::jobs::{JobContext, JobError, JobHandler, Registry, Worker};
use crate::store::{NewJob, Store};

/// Options of the queue benchmark.
#[derive(Debug, Args)]
pub struct QueueBenchArgs {
    /// Jobs per run.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Worker counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1,4")]
    pub workers: Vec<usize>,
    /// Concurrent jobs per worker.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// PostgreSQL URL to measure as well (a scratch database: its jobs table is emptied).
    #[arg(long, env = "CALLGRADE_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
}

const KIND: &str = "bench.noop";

struct Noop;

#[async_trait]
impl JobHandler for Noop {
    fn kind(&self) -> &'static str {
        KIND
    }
    async fn run(&self, _ctx: &JobContext) -> Result<(), JobError> {
        Ok(())
    }
}

fn jobs(n: usize) -> Vec<NewJob> {
    (0..n).map(|_| NewJob::standalone(KIND, 3)).collect()
}

async fn clear(store: &Store) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM jobs WHERE kind = $1")
        .bind(KIND)
        .execute(&mut *store.write_one().await?)
        .await?;
    Ok(())
}

async fn succeeded(store: &Store) -> anyhow::Result<i64> {
    Ok(
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1 AND state = $2")
            .bind(KIND)
            .bind(JobState::Succeeded.as_str())
            .fetch_one(store.pool())
            .await?,
    )
}

/// One measured figure.
struct Row {
    backend: &'static str,
    what: String,
    jobs: usize,
    seconds: f64,
}

async fn bench_backend(
    name: &'static str,
    url: &str,
    args: &QueueBenchArgs,
    out: &mut Vec<Row>,
) -> anyhow::Result<()> {
    let store = Store::open(url).await?;
    clear(&store).await?;

    // Enqueue one job per transaction: what uploads do.
    let single = args.jobs.min(5_000);
    let started = Instant::now();
    for job in jobs(single) {
        store.enqueue(&job).await?;
    }
    out.push(Row {
        backend: name,
        what: "enqueue, one job per transaction".into(),
        jobs: single,
        seconds: started.elapsed().as_secs_f64(),
    });
    clear(&store).await?;

    // Enqueue in batches of 500.
    let started = Instant::now();
    for chunk in jobs(args.jobs).chunks(500) {
        store.enqueue_many(chunk).await?;
    }
    out.push(Row {
        backend: name,
        what: "enqueue, 500 per transaction".into(),
        jobs: args.jobs,
        seconds: started.elapsed().as_secs_f64(),
    });

    for &workers in &args.workers {
        clear(&store).await?;
        for chunk in jobs(args.jobs).chunks(500) {
            store.enqueue_many(chunk).await?;
        }
        let config = QueueConfig {
            poll_interval_ms: 20,
            concurrency: [(KIND.to_string(), args.concurrency)].into_iter().collect(),
            ..QueueConfig::default()
        };
        let shutdown = CancellationToken::new();
        let started = Instant::now();
        let mut handles = Vec::new();
        for _ in 0..workers {
            let worker = Worker::new(
                store.clone(),
                Registry::new().register(Noop),
                config.clone(),
            );
            handles.push(tokio::spawn(worker.run(shutdown.clone())));
        }
        loop {
            if succeeded(&store).await? >= args.jobs as i64 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        shutdown.cancel();
        for h in handles {
            h.await?;
        }
        out.push(Row {
            backend: name,
            what: format!(
                "claim+complete, {workers} worker(s) x {} slots",
                args.concurrency
            ),
            jobs: args.jobs,
            seconds,
        });
    }
    clear(&store).await?;
    store.close().await;
    Ok(())
}

/// Runs the benchmark and prints a Markdown table.
pub async fn run(args: QueueBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile_dir()?;
    let sqlite_url = format!("sqlite://{}/bench.db", dir.display());
    let mut rows = Vec::new();
    bench_backend("SQLite", &sqlite_url, &args, &mut rows).await?;
    if let Some(pg) = &args.postgres {
        bench_backend("PostgreSQL", pg, &args, &mut rows).await?;
    } else {
        eprintln!("(no --postgres URL given: PostgreSQL skipped)");
    }
    let _ = std::fs::remove_dir_all(&dir);
    println!("| backend | operation | jobs | seconds | jobs/s |");
    println!("| --- | --- | ---: | ---: | ---: |");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} | {:.0} |",
            r.backend,
            r.what,
            r.jobs,
            r.seconds,
            r.jobs as f64 / r.seconds
        );
    }
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir =
        std::env::temp_dir().join(format!("callgrade-bench-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
