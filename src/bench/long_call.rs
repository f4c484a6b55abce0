//! `callgrade bench long-call`: a real `callgrade serve` process transcribes a three-hour stereo
//! recording, and the benchmark reports how much the server's peak memory grew (issue 14,
//! item 6; target <= 150 MB). The recording is low-level noise, different on each side, so
//! both channels are decoded, spooled and run through VAD window by window, as a long silent
//! or hostile upload would be.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use tokio::io::AsyncWriteExt;

use super::upload::{memory_kib, upload, BenchServer};

/// Options of the long-call benchmark.
#[derive(Debug, Args)]
pub struct LongCallBenchArgs {
    /// Length of the recording in minutes (three hours, less a few seconds under the limit).
    #[arg(long, default_value_t = 179)]
    pub minutes: u64,
    /// Installed speech model the server loads.
    #[arg(long, default_value = "tiny.en")]
    pub model: String,
}

/// Writes a stereo 8 kHz 16-bit WAV of `seconds` of quiet noise (about -60 dBFS).
async fn write_noise_wav(path: &Path, seconds: u64) -> anyhow::Result<()> {
    let frames = seconds * 8000;
    let data_len = u32::try_from(frames * 4).context("recording too long for a WAV")?;
    let mut f = tokio::io::BufWriter::new(tokio::fs::File::create(path).await?);
    let header = super::wav_header(2, 8000, data_len);
    f.write_all(&header).await?;
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut block = Vec::with_capacity(1 << 20);
    for _ in 0..frames {
        for _ in 0..2 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let sample = (seed % 65) as i16 - 32;
            block.extend_from_slice(&sample.to_le_bytes());
        }
        if block.len() >= 1 << 20 {
            f.write_all(&block).await?;
            block.clear();
        }
    }
    f.write_all(&block).await?;
    f.flush().await?;
    Ok(())
}

async fn call_status(client: &reqwest::Client, base: &str, token: &str, id: &str) -> String {
    let Ok(r) = client
        .get(format!("{base}/api/v1/calls/{id}"))
        .bearer_auth(token)
        .send()
        .await
    else {
        return String::new();
    };
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    body["status"].as_str().unwrap_or_default().to_string()
}

/// Uploads `path` and waits until its transcription ended; its final status and the time.
async fn transcribe(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    path: &Path,
    limit: Duration,
) -> anyhow::Result<(String, f64)> {
    let id = upload(client, base, token, path, "m-long").await?;
    let started = Instant::now();
    loop {
        let status = call_status(client, base, token, &id).await;
        if matches!(status.as_str(), "scoring" | "failed" | "done") {
            return Ok((status, started.elapsed().as_secs_f64()));
        }
        if started.elapsed() > limit {
            bail!("call {id} still {status} after {limit:?}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Runs the benchmark and prints a Markdown table.
pub async fn run(args: LongCallBenchArgs) -> anyhow::Result<()> {
    let server = BenchServer::start(
        "long",
        &[
            ("CALLGRADE_MAX_UPLOAD_BYTES", "2147483648"),
            ("CALLGRADE_TRANSCRIBE__MODEL", args.model.as_str()),
            ("CALLGRADE_TRANSCRIBE__DECODE_TIMEOUT_SECONDS", "1800"),
        ],
    )
    .await?;
    let (dir, pid, token) = (server.dir.clone(), server.pid, server.token.clone());
    let (client, base) = (server.client.clone(), server.base.clone());
    // Warm-up: a one-minute call loads the model and the VAD, so the baseline has them.
    let short = dir.join("short.wav");
    write_noise_wav(&short, 60).await?;
    let (status, _) = transcribe(&client, &base, &token, &short, Duration::from_secs(300)).await?;
    if status != "scoring" {
        bail!("the warm-up call ended {status}");
    }
    let (peak_before, rss_before) = memory_kib(pid)?;
    let long = dir.join("long.wav");
    write_noise_wav(&long, args.minutes * 60).await?;
    let size_mb = std::fs::metadata(&long)?.len() as f64 / 1e6;
    let (status, seconds) =
        transcribe(&client, &base, &token, &long, Duration::from_secs(3600)).await?;
    let (peak_after, _) = memory_kib(pid)?;
    server.stop().await;
    let growth_mb = peak_after.saturating_sub(peak_before) as f64 * 1024.0 / 1e6;
    println!("| recording | file MB | status | seconds | server RSS before (MiB) | peak before (MiB) | peak after (MiB) | peak growth (MB) |");
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {} min stereo, 8 kHz WAV | {size_mb:.0} | {status} | {seconds:.0} | {:.1} | {:.1} | {:.1} | {growth_mb:.1} |",
        args.minutes,
        rss_before as f64 / 1024.0,
        peak_before as f64 / 1024.0,
        peak_after as f64 / 1024.0,
    );
    if status != "scoring" {
        eprintln!("the long call ended {status}: see the server log");
    }
    if growth_mb > 150.0 {
        eprintln!("TARGET MISSED: peak memory grew by {growth_mb:.1} MB (target <= 150 MB)");
    }
    Ok(())
}
