//! `callgrade bench upload`: streams a large recording to a real `callgrade serve` process and
//! reports how much that server's peak memory grew (target: < 50 MB for 200 MB).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::AsyncWriteExt;

use crate::domain::Role;
use crate::http::tokens::create_token;
use crate::store::Store;

/// Options of the upload benchmark.
#[derive(Debug, Args)]
pub struct UploadBenchArgs {
    /// Size of the uploaded file in MiB.
    #[arg(long, default_value_t = 200)]
    pub size_mb: u64,
    /// Small uploads (64 KiB each, one after another) timed for throughput: each is one commit
    /// that must be durable before its 202.
    #[arg(long, default_value_t = 300)]
    pub small: usize,
}

/// Peak and current resident memory of a process, in KiB, from /proc.
pub(crate) fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok((field("VmHWM:"), field("VmRSS:")))
}

async fn write_file(path: &Path, size: u64) -> anyhow::Result<()> {
    let mut f = tokio::fs::File::create(path).await?;
    // A valid WAV header (8 kHz mono 16-bit) so the upload passes the content check.
    let data_len = u32::try_from(size.saturating_sub(44)).unwrap_or(u32::MAX);
    let header = super::wav_header(1, 8000, data_len);
    f.write_all(&header).await?;
    let mut block = vec![0u8; 1 << 20];
    let mut written = header.len() as u64;
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    while written < size {
        // Cheap pseudo-random bytes so nothing along the way can compress or deduplicate them.
        for chunk in block.chunks_mut(8) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            chunk.copy_from_slice(&seed.to_le_bytes()[..chunk.len()]);
        }
        let n = (size - written).min(block.len() as u64) as usize;
        f.write_all(&block[..n]).await?;
        written += n as u64;
    }
    f.sync_all().await?;
    Ok(())
}

/// Uploads `path` as a call of `manager`; the new call's id.
pub(crate) async fn upload(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &Path,
    manager: &str,
) -> anyhow::Result<String> {
    let file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(file));
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::stream_with_length(body, len).file_name("big.mp3"),
        )
        .text("manager_id", manager.to_string());
    let r = client
        .post(format!("{base}/api/v1/calls"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await?;
    if !r.status().is_success() {
        bail!(
            "upload answered {}: {}",
            r.status(),
            r.text().await.unwrap_or_default()
        );
    }
    let body: serde_json::Value = r.json().await?;
    Ok(body["id"].as_str().unwrap_or_default().to_string())
}

/// Uploads `count` distinct 64 KiB recordings one after another: uploads per second and the
/// p50/p99 latency in ms (`None` for a count of 0).
async fn small_uploads(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    dir: &Path,
    count: usize,
) -> anyhow::Result<Option<(f64, f64, f64)>> {
    if count == 0 {
        return Ok(None);
    }
    let mut files = Vec::with_capacity(count);
    for i in 0..count {
        let path = dir.join(format!("small-{i}.wav"));
        write_file(&path, 64 << 10).await?;
        // Distinct content, so none is a duplicate of another.
        let mut f = tokio::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .await?;
        f.write_all(&(i as u64).to_le_bytes()).await?;
        files.push(path);
    }
    let mut took = Vec::with_capacity(count);
    let started = Instant::now();
    for path in &files {
        let t = Instant::now();
        upload(client, base, token, path, "m-small").await?;
        took.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let per_second = count as f64 / started.elapsed().as_secs_f64();
    took.sort_by(f64::total_cmp);
    let at = |q: f64| took[((took.len() - 1) as f64 * q).round() as usize];
    Ok(Some((per_second, at(0.5), at(0.99))))
}

/// A real `callgrade serve` process on a scratch data folder and database (SQLite in that
/// folder unless a PostgreSQL URL is given), with a QA token, for the benchmarks that measure a
/// server from outside. It can be killed with SIGKILL and started again on the same data.
pub(crate) struct BenchServer {
    /// The scratch folder (database, data, the benchmark's own files).
    pub dir: std::path::PathBuf,
    /// The server's process id, for its memory figures.
    pub pid: u32,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// A QA token.
    pub token: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    /// The database the server uses.
    pub database_url: String,
    port: u16,
    env: Vec<(String, String)>,
    process: Option<tokio::process::Child>,
}

impl BenchServer {
    /// Starts the server on SQLite with `env` on top of its scratch settings; waits until it
    /// is ready.
    pub async fn start(name: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        Self::start_on(name, None, env).await
    }

    /// As [`BenchServer::start`], on `database_url` when given (an empty database).
    pub async fn start_on(
        name: &str,
        database_url: Option<&str>,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "callgrade-bench-{name}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&dir)?;
        let database_url = database_url
            .map(str::to_string)
            .unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.display()));
        let store = Store::open(&database_url).await?;
        let token = create_token(&store, "bench", Role::Qa, None).await?.secret;
        store.close().await;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let mut server = Self {
            dir,
            pid: 0,
            base: format!("http://127.0.0.1:{port}"),
            token,
            client: reqwest::Client::new(),
            database_url,
            port,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            process: None,
        };
        server.spawn().await?;
        Ok(server)
    }

    /// Starts the process and waits until `/readyz` answers.
    async fn spawn(&mut self) -> anyhow::Result<()> {
        let process = tokio::process::Command::new(std::env::current_exe()?)
            .arg("serve")
            .env("CALLGRADE_DATABASE_URL", &self.database_url)
            .env("CALLGRADE_DATA_DIR", self.dir.join("data"))
            .env("CALLGRADE_LISTEN", format!("127.0.0.1:{}", self.port))
            // The server's own log filter, to see inside a slow request (default: warnings).
            .env(
                "RUST_LOG",
                std::env::var("BENCH_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting callgrade serve")?;
        self.pid = process.id().context("server pid")?;
        self.process = Some(process);
        let started = Instant::now();
        while self
            .client
            .get(format!("{}/readyz", self.base))
            .send()
            .await
            .is_err()
        {
            if started.elapsed() > Duration::from_secs(60) {
                bail!("the server did not start");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    /// Kills the server with SIGKILL (no shutdown of any kind) and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.kill().await;
        }
    }

    /// Starts the server again on the same data, port and settings.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        // A fresh client: the old one's pooled connections died with the server.
        self.client = reqwest::Client::new();
        self.spawn().await
    }

    /// Stops the server and removes its scratch folder.
    pub async fn stop(mut self) {
        self.kill().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the benchmark and prints a Markdown table.
pub async fn run(args: UploadBenchArgs) -> anyhow::Result<()> {
    let size = args.size_mb * 1024 * 1024;
    let max_upload = (size * 2).to_string();
    let server = BenchServer::start(
        "upload",
        &[("CALLGRADE_MAX_UPLOAD_BYTES", max_upload.as_str())],
    )
    .await?;
    let (dir, pid, token) = (server.dir.clone(), server.pid, server.token.clone());
    let (client, base) = (server.client.clone(), server.base.clone());
    // Warm up: one small upload so the baseline includes everything a first request loads.
    let small = dir.join("small.bin");
    write_file(&small, 1 << 20).await?;
    upload(&client, &base, &token, &small, "m-warmup").await?;
    let throughput = small_uploads(&client, &base, &token, &dir, args.small).await?;
    let (peak_before, rss_before) = memory_kib(pid)?;

    let big = dir.join("big.bin");
    write_file(&big, size).await?;
    let t = Instant::now();
    upload(&client, &base, &token, &big, "m-bench").await?;
    let seconds = t.elapsed().as_secs_f64();
    let (peak_after, _) = memory_kib(pid)?;
    server.stop().await;

    let growth_mib = peak_after.saturating_sub(peak_before) as f64 / 1024.0;
    println!("| upload | seconds | MiB/s | server RSS before (MiB) | server peak before (MiB) | server peak after (MiB) | peak growth (MiB) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} MiB | {:.2} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
        args.size_mb,
        seconds,
        args.size_mb as f64 / seconds,
        rss_before as f64 / 1024.0,
        peak_before as f64 / 1024.0,
        peak_after as f64 / 1024.0,
        growth_mib
    );
    if let Some((per_second, p50, p99)) = throughput {
        println!();
        println!("| small uploads (64 KiB, sequential) | uploads/s | p50 (ms) | p99 (ms) |");
        println!("| ---: | ---: | ---: | ---: |");
        println!("| {} | {per_second:.0} | {p50:.1} | {p99:.1} |", args.small);
    }
    if growth_mib >= 50.0 {
        eprintln!("TARGET MISSED: peak memory grew by {growth_mib:.1} MiB (target < 50 MiB)");
    }
    Ok(())
}
