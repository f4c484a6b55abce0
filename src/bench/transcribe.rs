//! `callgrade bench transcribe`: real-time factor, pipeline overhead and peak memory of the
//! transcription stage, for each model x VAD on/off x whisper threads x jobs at once.
//!
//! Each configuration runs in a fresh child process (this binary again), so its peak memory
//! (VmHWM) is its own. A run is the real job handler on real files: isolated decode, VAD,
//! whisper per channel, merge, metrics and the write to a scratch SQLite database.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde::{Deserialize, Serialize};

use crate::config::{Config, TranscribeConfig};
use crate::domain::{ChannelMap, Language};
use crate::eval::Transcriber;

/// Options of the transcription benchmark.
#[derive(Debug, Args)]
pub struct TranscribeBenchArgs {
    /// Recordings to transcribe (default: the sample calls in samples/calls).
    pub files: Vec<PathBuf>,
    /// Models to measure (installed names).
    #[arg(long, value_delimiter = ',', default_value = "tiny.en,base")]
    pub models: Vec<String>,
    /// Whisper thread counts.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub threads: Vec<usize>,
    /// Jobs run at once.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub jobs: Vec<usize>,
    /// VAD settings to measure: on, off.
    #[arg(long, value_delimiter = ',', default_value = "on,off")]
    pub vad: Vec<String>,
    /// Internal: run one configuration and print its figures as JSON.
    #[arg(long, hide = true)]
    pub child: Option<String>,
}

/// One configuration's figures.
#[derive(Debug, Serialize, Deserialize)]
struct Figures {
    model: String,
    vad: bool,
    threads: usize,
    jobs: usize,
    audio_s: f64,
    wall_s: f64,
    whisper_s: f64,
    decode_s: f64,
    vad_s: f64,
    overhead_s: f64,
    peak_rss_mib: f64,
}

/// Runs the benchmark and prints a Markdown table.
pub async fn run(args: TranscribeBenchArgs, config: &Config) -> anyhow::Result<()> {
    let files = if args.files.is_empty() {
        sample_calls()?
    } else {
        args.files.clone()
    };
    if let Some(spec) = &args.child {
        let figures = child(spec, &files, &config.transcribe).await?;
        println!("{}", serde_json::to_string(&figures)?);
        return Ok(());
    }
    let exe = std::env::current_exe()?;
    println!(
        "files: {}",
        files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("| model | VAD | threads | jobs at once | audio s | wall s | RTF (wall / audio) | whisper s | overhead s (decode+VAD+merge+store) | overhead / whisper | peak RSS MiB |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for model in &args.models {
        for vad in &args.vad {
            for threads in &args.threads {
                for jobs in &args.jobs {
                    let spec = format!("{model}:{vad}:{threads}:{jobs}");
                    let out = Command::new(&exe)
                        .args(["bench", "transcribe", "--child", &spec])
                        .args(&files)
                        .output()
                        .context("cannot run the benchmark child")?;
                    if !out.status.success() {
                        bail!("{spec} failed: {}", String::from_utf8_lossy(&out.stderr));
                    }
                    let line = String::from_utf8_lossy(&out.stdout);
                    let f: Figures = serde_json::from_str(line.trim().lines().last().unwrap_or(""))
                        .with_context(|| format!("{spec}: unexpected output {line}"))?;
                    println!(
                        "| {} | {} | {} | {} | {:.1} | {:.1} | {:.3} | {:.1} | {:.2} | {:.1}% | {:.0} |",
                        f.model,
                        if f.vad { "on" } else { "off" },
                        f.threads,
                        f.jobs,
                        f.audio_s,
                        f.wall_s,
                        f.wall_s / f.audio_s,
                        f.whisper_s,
                        f.overhead_s,
                        100.0 * f.overhead_s / f.whisper_s.max(1e-9),
                        f.peak_rss_mib
                    );
                }
            }
        }
    }
    Ok(())
}

fn sample_calls() -> anyhow::Result<Vec<PathBuf>> {
    let dir = Path::new("samples/calls");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("no files given and {} is missing", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "mp3"))
        .collect();
    files.sort();
    Ok(files)
}

async fn child(spec: &str, files: &[PathBuf], base: &TranscribeConfig) -> anyhow::Result<Figures> {
    let parts: Vec<&str> = spec.split(':').collect();
    let [model, vad, threads, jobs] = parts[..] else {
        bail!("bad child spec {spec}");
    };
    let (threads, jobs): (usize, usize) = (threads.parse()?, jobs.parse()?);
    let config = TranscribeConfig {
        model: model.to_string(),
        vad: vad == "on",
        threads,
        ..base.clone()
    };
    let transcriber = Arc::new(Transcriber::new(&config).await?);
    let mut calls = Vec::new();
    for f in files {
        // The corpus names its language; an English-only model gets every file as English
        // (its Russian text is gibberish, but the figures here are about speed).
        let language = if f.to_string_lossy().contains("_ru") && !model.ends_with(".en") {
            Language::Ru
        } else {
            Language::En
        };
        calls.push(
            transcriber
                .stage(f, language, ChannelMap::default(), None)
                .await?,
        );
    }
    // Load the model before the clock starts: a worker loads it once, not per call.
    if let Some(first) = calls.first() {
        transcriber.run(*first).await?;
    }
    let started = Instant::now();
    let queue = Arc::new(tokio::sync::Mutex::new(calls.clone()));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..jobs.max(1) {
        let (queue, transcriber) = (queue.clone(), transcriber.clone());
        tasks.spawn(async move {
            loop {
                let Some(id) = queue.lock().await.pop() else {
                    break;
                };
                transcriber.run(id).await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    let wall_s = started.elapsed().as_secs_f64();
    let mut f = Figures {
        model: model.into(),
        vad: vad == "on",
        threads,
        jobs,
        audio_s: 0.0,
        wall_s,
        whisper_s: 0.0,
        decode_s: 0.0,
        vad_s: 0.0,
        overhead_s: 0.0,
        peak_rss_mib: peak_rss_mib(),
    };
    for id in calls {
        let t = transcriber.transcript(id).await?;
        f.audio_s += t.duration_s;
        f.whisper_s += t.processing.transcription_s;
        f.decode_s += t.processing.decode_s;
        f.vad_s += t.processing.vad_s;
        f.overhead_s += t.processing.total_s - t.processing.transcription_s;
    }
    Ok(f)
}

/// Peak resident memory of this process (VmHWM), MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        })
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}
