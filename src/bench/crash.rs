//! `callgrade bench crash` (`make bench-crash`): rounds of SIGKILL at random moments while
//! clients upload recordings and the worker transcribes them, on SQLite and PostgreSQL.
//!
//! Each round starts the real server on the same data, lets a few clients upload sample calls
//! (each under its own manager, so every upload is a new call) for a random time, and kills the
//! server with `kill -9`. After the restart the clients retry what was not acknowledged, as a
//! real client would; the upload is idempotent per manager and content, so a retry of an upload
//! that was stored before the kill gets the same call. At the end, with the server dead, the
//! database and the files are checked directly: every acknowledged upload has its call row and
//! its recording with the acknowledged SHA-256 (lost: must be 0), no upload is stored twice and
//! no job is live twice (duplicates: must be 0), and after the sweep no unfinished upload and no
//! recording without a call is left (orphans: must be 0).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use super::upload::BenchServer;
use crate::domain::CallId;
use crate::recordings::Recordings;
use crate::store::Store;

/// Options of the crash benchmark.
#[derive(Debug, Args)]
pub struct CrashBenchArgs {
    /// Rounds of kill -9 per backend.
    #[arg(long, default_value_t = 100)]
    pub rounds: usize,
    /// Clients uploading at once.
    #[arg(long, default_value_t = 4)]
    pub uploaders: usize,
    /// Longest a round runs before the kill, in seconds (each round picks a random moment).
    #[arg(long, default_value_t = 4.0)]
    pub max_seconds: f64,
    /// Folder of recordings to upload.
    #[arg(long, default_value = "samples/calls")]
    pub samples: PathBuf,
    /// PostgreSQL database to run against as well (must be empty).
    #[arg(long, env = "CALLGRADE_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// Skip SQLite.
    #[arg(long)]
    pub no_sqlite: bool,
    /// Seed of the random moments (a run is repeatable in its choices, not its timing).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// An upload the server acknowledged.
#[derive(Debug, Clone)]
struct Acked {
    id: String,
    sha256: String,
}

/// An upload that got no acknowledgement (in flight at the kill, or refused by the dead server).
#[derive(Debug, Clone)]
struct Unacked {
    manager: String,
    sample: usize,
}

/// One upload; the call id, and whether the server already had it (200 rather than 202).
async fn upload(
    server: (&reqwest::Client, &str, &str),
    bytes: &[u8],
    manager: &str,
) -> anyhow::Result<(String, bool)> {
    let (client, base, token) = server;
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("call.mp3"),
        )
        .text("manager_id", manager.to_string());
    let answer = client
        .post(format!("{base}/api/v1/calls"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    let status = answer.status();
    let body: serde_json::Value = answer.json().await?;
    anyhow::ensure!(status.is_success(), "upload answered {status}: {body}");
    let id = body["id"].as_str().context("no id")?.to_string();
    Ok((id, status == reqwest::StatusCode::OK))
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What one backend's run found.
#[derive(Debug, Default)]
struct Outcome {
    acked: usize,
    retried: usize,
    stored_before_kill: usize,
    lost: usize,
    duplicate_calls: i64,
    duplicate_live_jobs: i64,
    swept_parts: usize,
    swept_orphans: usize,
    orphans_left: usize,
    transcripts: i64,
    running_at_kill: usize,
}

/// Unfinished uploads and recording files with no call row under `root`, found the way the
/// sweep finds them (every file counts: the cutoff is in the future).
async fn leftovers(store: &Store, root: &Path) -> anyhow::Result<usize> {
    let future = std::time::SystemTime::now() + Duration::from_secs(3600);
    let (parts, recordings) = crate::recordings::old_leftovers(root, future);
    let ids: Vec<CallId> = recordings.iter().map(|(_, id)| *id).collect();
    let mut left = parts.len();
    for batch in ids.chunks(500) {
        let known = store.existing_calls(batch).await?;
        left += batch.iter().filter(|id| !known.contains(id)).count();
    }
    Ok(left)
}

async fn bench_backend(
    name: &str,
    database_url: Option<&str>,
    args: &CrashBenchArgs,
    samples: &Arc<Vec<Vec<u8>>>,
) -> anyhow::Result<Outcome> {
    let mut server = BenchServer::start_on(
        "crash",
        database_url,
        &[
            // Killed runs come back quickly, so jobs are taken over again and again.
            ("CALLGRADE_QUEUE__LEASE_SECONDS", "5"),
            ("CALLGRADE_QUEUE__POLL_INTERVAL_MS", "100"),
            // One warning per restart about scoring being off is noise here.
            ("RUST_LOG", "error"),
        ],
    )
    .await?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut outcome = Outcome::default();
    let acked_all: Arc<Mutex<Vec<Acked>>> = Arc::default();
    for round in 0..args.rounds {
        let unacked: Arc<Mutex<Vec<Unacked>>> = Arc::default();
        let round_acked: Arc<Mutex<Vec<Acked>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = tokio::task::JoinSet::new();
        for u in 0..args.uploaders {
            let (client, base, token) = (
                server.client.clone(),
                server.base.clone(),
                server.token.clone(),
            );
            let (samples, unacked, round_acked, stop) = (
                samples.clone(),
                unacked.clone(),
                round_acked.clone(),
                stop.clone(),
            );
            let seed = rng.gen::<u64>();
            tasks.spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                for k in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let sample = rng.gen_range(0..samples.len());
                    let manager = format!("crash-{round}-{u}-{k}");
                    let bytes = &samples[sample];
                    match upload((&client, &base, &token), bytes, &manager).await {
                        Ok((id, _)) => round_acked.lock().await.push(Acked {
                            id,
                            sha256: sha256_hex(bytes),
                        }),
                        Err(_) => {
                            unacked.lock().await.push(Unacked { manager, sample });
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(rng.gen_range(0..300))).await;
                }
            });
        }
        let moment = rng.gen_range(0.2..args.max_seconds.max(0.3));
        tokio::time::sleep(Duration::from_secs_f64(moment)).await;
        // What the worker was doing when the lights went out (for the write-up).
        if let Ok(r) = server
            .client
            .get(format!("{}/api/v1/jobs?state=running", server.base))
            .bearer_auth(&server.token)
            .timeout(Duration::from_millis(500))
            .send()
            .await
        {
            if let Ok(v) = r.json::<serde_json::Value>().await {
                outcome.running_at_kill += v["items"].as_array().map_or(0, Vec::len);
            }
        }
        server.kill().await;
        stop.store(true, Ordering::Relaxed);
        while tasks.join_next().await.is_some() {}
        server.restart().await?;
        // The clients retry what got no answer: the same bytes under the same manager.
        for u in unacked.lock().await.iter() {
            let bytes = &samples[u.sample];
            let (id, known) = upload(
                (&server.client, &server.base, &server.token),
                bytes,
                &u.manager,
            )
            .await
            .with_context(|| format!("{name}: round {round}: retrying an upload"))?;
            outcome.retried += 1;
            outcome.stored_before_kill += usize::from(known);
            round_acked.lock().await.push(Acked {
                id,
                sha256: sha256_hex(bytes),
            });
        }
        // This round's acknowledged calls answer after the restart.
        for a in round_acked.lock().await.iter() {
            let r = server
                .client
                .get(format!("{}/api/v1/calls/{}", server.base, a.id))
                .bearer_auth(&server.token)
                .send()
                .await?;
            if !r.status().is_success() {
                eprintln!(
                    "{name}: round {round}: acknowledged call {} answers {}",
                    a.id,
                    r.status()
                );
            }
        }
        acked_all
            .lock()
            .await
            .extend(round_acked.lock().await.drain(..));
        if (round + 1) % 10 == 0 {
            eprintln!(
                "{name}: {} rounds, {} uploads acknowledged",
                round + 1,
                acked_all.lock().await.len()
            );
        }
    }
    // The last kill, then everything is checked from the database and the disk.
    server.kill().await;
    let store = Store::open(&server.database_url).await?;
    let root = server.dir.join("data").join("recordings");
    let recordings = Recordings::new(&root);
    let acked = acked_all.lock().await.clone();
    outcome.acked = acked.len();
    for a in &acked {
        let id: CallId = a.id.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
        let intact = match store.get_call(id).await? {
            None => false,
            Some(call) if call.call.sha256 != a.sha256 => false,
            Some(call) => recordings
                .path(&call.call.storage_key)
                .and_then(|p| std::fs::read(p).ok())
                .is_some_and(|bytes| sha256_hex(&bytes) == a.sha256),
        };
        if !intact {
            eprintln!("{name}: LOST: acknowledged call {}", a.id);
            outcome.lost += 1;
        }
    }
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move { sqlx::query_scalar::<_, i64>(sql).fetch_one(&pool).await }
    };
    outcome.duplicate_calls = count(
        "SELECT COUNT(*) FROM (SELECT manager_id, sha256 FROM calls \
         GROUP BY manager_id, sha256 HAVING COUNT(*) > 1) d",
    )
    .await?;
    outcome.duplicate_live_jobs = count(
        "SELECT COUNT(*) FROM (SELECT call_id, kind FROM jobs \
         WHERE state IN ('queued', 'running') GROUP BY call_id, kind HAVING COUNT(*) > 1) d",
    )
    .await?;
    outcome.transcripts = count("SELECT COUNT(*) FROM transcripts").await?;
    let swept = recordings.sweep(&store, Duration::ZERO).await?;
    outcome.swept_parts = swept.parts;
    outcome.swept_orphans = swept.orphans;
    outcome.orphans_left = leftovers(&store, &root).await?;
    store.close().await;
    server.stop().await;
    Ok(outcome)
}

/// Runs the rounds on each backend asked for and prints the table.
pub async fn run(args: CrashBenchArgs) -> anyhow::Result<()> {
    let mut samples = Vec::new();
    for entry in
        std::fs::read_dir(&args.samples).with_context(|| format!("{}", args.samples.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "mp3") {
            samples.push(std::fs::read(&path)?);
        }
    }
    anyhow::ensure!(
        !samples.is_empty(),
        "no .mp3 recordings in {}",
        args.samples.display()
    );
    let samples = Arc::new(samples);
    let mut rows = Vec::new();
    if !args.no_sqlite {
        rows.push((
            "SQLite",
            bench_backend("SQLite", None, &args, &samples).await?,
        ));
    }
    if let Some(url) = args.postgres.clone() {
        rows.push((
            "PostgreSQL",
            bench_backend("PostgreSQL", Some(&url), &args, &samples).await?,
        ));
    }
    println!("| backend | rounds | uploads acknowledged | retried after a kill | of those already stored | jobs running at the kills | transcripts written | lost | duplicate calls | duplicate live jobs | swept .part | swept orphans | orphans left |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut held = true;
    for (name, o) in &rows {
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            args.rounds,
            o.acked,
            o.retried,
            o.stored_before_kill,
            o.running_at_kill,
            o.transcripts,
            o.lost,
            o.duplicate_calls,
            o.duplicate_live_jobs,
            o.swept_parts,
            o.swept_orphans,
            o.orphans_left
        );
        held &= o.lost == 0
            && o.duplicate_calls == 0
            && o.duplicate_live_jobs == 0
            && o.orphans_left == 0;
    }
    if !held {
        anyhow::bail!("TARGET MISSED: an acknowledged upload was lost, duplicated or orphaned");
    }
    Ok(())
}
