//! `callgrade bench score`: what the scoring stage costs per call against the configured LLM
//! server: prompt tokens per minute of call, latency, and the share of the time callgrade's
//! own work takes (prompting, parsing, verifying quotes) beside waiting for the model.
//!
//! Transcripts are the sample calls' true turns (`samples/calls/*.json`), so the figures do not
//! depend on speech recognition and no speech model is needed.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;

use crate::config::Config;
use crate::domain::{now_millis, CallId, Speaker};
use crate::llm::LlmClient;
use crate::rubric::RubricSet;
use crate::scoring::job::ScoreJob;
use crate::store::StoredRubric;
use crate::transcript::metrics::{self, MetricsConfig};
use crate::transcript::{Processing, Segment, Transcript};

/// Options of the scoring benchmark.
#[derive(Debug, Args)]
pub struct ScoreBenchArgs {
    /// Call files with true turns (the corpus JSON format; default: samples/calls/*.json).
    pub files: Vec<PathBuf>,
    /// Times each call is scored.
    #[arg(long, default_value_t = 1)]
    pub repeat: usize,
}

#[derive(Deserialize)]
struct Truth {
    language: String,
    duration_s: f64,
    turns: Vec<Turn>,
}

#[derive(Deserialize)]
struct Turn {
    speaker: Speaker,
    text: String,
    start_s: f64,
    end_s: f64,
}

/// A transcript made of a corpus file's true turns (the JSON beside each sample call).
pub fn transcript_from_truth(call_id: CallId, json: &str) -> anyhow::Result<Transcript> {
    let truth: Truth = serde_json::from_str(json).context("not a call file with turns")?;
    let segments: Vec<Segment> = truth
        .turns
        .into_iter()
        .map(|t| Segment {
            speaker: t.speaker,
            start: t.start_s,
            end: t.end_s,
            text: t.text,
            confidence: 1.0,
            words: vec![],
        })
        .collect();
    let speech_s = segments.iter().map(|s| s.end - s.start).sum();
    Ok(Transcript {
        call_id,
        language: truth.language.clone(),
        model: "truth".into(),
        duration_s: truth.duration_s,
        speakers: vec![Speaker::Manager, Speaker::Client],
        metrics: metrics::compute(
            &segments,
            truth.duration_s,
            crate::domain::Language::of_code(&truth.language),
            &MetricsConfig::default(),
        ),
        segments,
        processing: Processing {
            speech_s,
            ..Processing::default()
        },
        warnings: vec![],
        created_at: now_millis(),
    })
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Runs the benchmark and prints one line per call and the totals.
pub async fn run(args: ScoreBenchArgs, config: &Config) -> anyhow::Result<()> {
    let llm = LlmClient::new(&config.llm).context(
        "the scoring benchmark needs an LLM: set CALLGRADE_LLM_BASE_URL and CALLGRADE_LLM_MODEL \
         (scripts/llm-server.sh start runs a small local one)",
    )?;
    println!(
        "model {} at {}, response_format {}",
        llm.model(),
        llm.host(),
        config.llm.response_format
    );
    let job = ScoreJob::new(llm, config.scoring.clone()).redacting(config.redaction.kinds.clone());
    let files = if args.files.is_empty() {
        let mut f: Vec<PathBuf> = std::fs::read_dir(Path::new("samples/calls"))
            .context("samples/calls (run from the repository, or name the files)")?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        f.sort();
        f
    } else {
        args.files.clone()
    };
    if files.is_empty() {
        bail!("no call files to score");
    }
    let rubrics = RubricSet::load(config.scoring.rubrics_dir())?;
    println!(
        "{:<16} {:>6} {:>8} {:>8} {:>9} {:>8} {:>8} {:>7} {:>7}",
        "call", "min", "prompt", "answer", "tok/min", "llm s", "local ms", "cpu %", "repairs"
    );
    let (mut minutes, mut prompt, mut wall, mut llm_s, mut local_ms, mut cpu) =
        (0.0, 0u64, 0.0, 0.0, 0u64, 0.0);
    for path in &files {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let t = transcript_from_truth(CallId::new(), &text)
            .with_context(|| path.display().to_string())?;
        let loaded = rubrics
            .get_or_any_language(&config.scoring.rubric, &t.language)
            .with_context(|| format!("no scorecard {}", config.scoring.rubric))?;
        let stored = StoredRubric::unregistered(loaded);
        let day = chrono::Utc::now().date_naive();
        for _ in 0..args.repeat {
            let cpu0 = cpu_seconds().unwrap_or(0.0);
            let started = Instant::now();
            let card = job
                .score(&t, day, &stored)
                .await
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            let w = started.elapsed().as_secs_f64();
            let c = cpu_seconds().unwrap_or(0.0) - cpu0;
            let p = card.provenance.context("no provenance")?;
            let m = t.duration_s / 60.0;
            println!(
                "{:<16} {:>6.2} {:>8} {:>8} {:>9.0} {:>8.1} {:>8} {:>6.2}% {:>7}",
                path.file_stem().and_then(|s| s.to_str()).unwrap_or("?"),
                m,
                p.prompt_tokens,
                p.completion_tokens,
                p.prompt_tokens as f64 / m,
                p.llm_ms as f64 / 1000.0,
                p.local_ms,
                100.0 * c / w.max(1e-9),
                p.repairs
            );
            minutes += m;
            prompt += p.prompt_tokens;
            wall += w;
            llm_s += p.llm_ms as f64 / 1000.0;
            local_ms += p.local_ms;
            cpu += c;
        }
    }
    let n = (files.len() * args.repeat) as f64;
    println!(
        "total: {n:.0} scorings, {:.0} prompt tokens per call-minute, mean latency {:.1} s, \
         callgrade's own work {:.0} ms ({:.2}% of the wall time; its process used {:.2}% of one core)",
        prompt as f64 / minutes.max(1e-9),
        wall / n,
        local_ms as f64,
        100.0 * (local_ms as f64 / 1000.0) / (llm_s + local_ms as f64 / 1000.0).max(1e-9),
        100.0 * cpu / wall.max(1e-9)
    );
    Ok(())
}
