//! `callgrade bench fuzz` (`make fuzz MINUTES=N`): a bounded mutation fuzz of the audio decoder
//! through the real isolated child, on stable Rust. Seeds are the sample calls and any other
//! folders given; each input is a seed with one to four mutations (bit flips, interesting
//! values, 32-bit length fields overwritten, chunks inserted, deleted or repeated, truncation,
//! splicing with another seed). It reports the inputs tried, how the child ended (decoded,
//! refused with a clear error, or crashed: each a clear call failure), and what must stay 0:
//! crashes or hangs of the parent. Inputs that crashed the child are kept for reproduction.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use crate::audio::{decode_isolated, DecodeError, DecodeLimits, DecoderProgram};

/// Options of the decoder fuzz run.
#[derive(Debug, Args)]
pub struct FuzzArgs {
    /// How long to run, in minutes.
    #[arg(long, default_value_t = 10.0)]
    pub minutes: f64,
    /// Folders (or files) of seed recordings; the sample calls by default.
    #[arg(long = "seeds", default_value = "samples/calls")]
    pub seeds: Vec<PathBuf>,
    /// Where inputs that crashed the child are kept.
    #[arg(long, default_value = "target/fuzz-crashes")]
    pub crashes: PathBuf,
    /// Decodes at once.
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
    /// Seed of the random mutations (a run is repeatable with the same seed and seeds).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

/// Longest part of a seed that is mutated: headers and the first frames are where parsers
/// break, and short inputs keep the run fast.
const SEED_BYTES: usize = 128 * 1024;
/// Past this the parent is considered hung (the child's own limit is 10 s).
const PARENT_WATCHDOG: Duration = Duration::from_secs(30);

fn load_seeds(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            for entry in std::fs::read_dir(path).with_context(|| format!("{}", path.display()))? {
                let p = entry?.path();
                if p.is_file()
                    && !matches!(
                        p.extension().and_then(|e| e.to_str()),
                        Some("json" | "md" | "tsv")
                    )
                {
                    files.push(p);
                }
            }
        } else if path.is_file() {
            files.push(path.clone());
        }
    }
    files.sort();
    let mut seeds = Vec::new();
    for f in files {
        let mut bytes = std::fs::read(&f)?;
        bytes.truncate(SEED_BYTES);
        if !bytes.is_empty() {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            seeds.push((name, bytes));
        }
    }
    anyhow::ensure!(!seeds.is_empty(), "no seed files found");
    Ok(seeds)
}

/// One to four random mutations of `input`.
fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..rng.gen_range(1..=4) {
        let len = data.len().max(1);
        let at = rng.gen_range(0..len);
        match rng.gen_range(0..8) {
            0 => {
                for _ in 0..rng.gen_range(1..=8) {
                    let i = rng.gen_range(0..len);
                    if let Some(b) = data.get_mut(i) {
                        *b ^= 1 << rng.gen_range(0..8);
                    }
                }
            }
            1 => {
                const INTERESTING: [u8; 6] = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE];
                for i in at..(at + rng.gen_range(1..=16)).min(data.len()) {
                    data[i] = INTERESTING[rng.gen_range(0..INTERESTING.len())];
                }
            }
            2 => {
                const LENGTHS: [u32; 5] = [0, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, 0x0001_0000];
                let value = LENGTHS[rng.gen_range(0..LENGTHS.len())];
                let bytes = if rng.gen_bool(0.5) {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                for (k, b) in bytes.iter().enumerate() {
                    if let Some(d) = data.get_mut(at + k) {
                        *d = *b;
                    }
                }
            }
            3 => {
                let chunk: Vec<u8> = (0..rng.gen_range(1..=256)).map(|_| rng.gen()).collect();
                data.splice(at..at, chunk);
            }
            4 => {
                let end = (at + rng.gen_range(1..=4096)).min(data.len());
                data.drain(at..end);
            }
            5 => {
                let end = (at + rng.gen_range(1..=4096)).min(data.len());
                let chunk = data[at..end].to_vec();
                for _ in 0..rng.gen_range(1..=8) {
                    data.splice(at..at, chunk.iter().copied());
                }
            }
            6 => data.truncate(at),
            _ => {
                let from = rng.gen_range(0..other.len().max(1));
                let piece = &other[from.min(other.len())..];
                data.truncate(at);
                data.extend_from_slice(&piece[..piece.len().min(SEED_BYTES)]);
            }
        }
    }
    data
}

/// How one input ended.
fn outcome(
    result: &Result<Result<crate::audio::DecodedAudio, DecodeError>, tokio::time::error::Elapsed>,
) -> &'static str {
    match result {
        Err(_) => "parent hang",
        Ok(Ok(_)) => "decoded",
        Ok(Err(DecodeError::Crashed(_))) => "child crashed (signal)",
        Ok(Err(DecodeError::OutOfMemory)) => "child over its memory limit",
        Ok(Err(DecodeError::TimedOut(_))) => "child over its time limit",
        Ok(Err(DecodeError::ChildFailed(m))) if m.contains("panicked") => "child panicked",
        Ok(Err(DecodeError::Spawn(_) | DecodeError::Io(_))) => "parent error",
        Ok(Err(_)) => "refused with a clear error",
    }
}

/// Runs the fuzz loop and prints a Markdown table; fails if the parent ever hung or erred.
pub async fn run(args: FuzzArgs) -> anyhow::Result<()> {
    let seeds = load_seeds(&args.seeds)?;
    let program = DecoderProgram::current_exe([crate::app::AUDIO_DECODE_CHILD])?;
    let limits = DecodeLimits {
        memory_bytes: 512 << 20,
        timeout: Duration::from_secs(10),
        ..DecodeLimits::default()
    };
    std::fs::create_dir_all(&args.crashes)?;
    let work = tempfile::tempdir()?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let deadline = Instant::now() + Duration::from_secs_f64(args.minutes * 60.0);
    let mut counts: BTreeMap<&'static str, u64> = BTreeMap::new();
    let mut tried = 0u64;
    let mut running = JoinSet::new();
    let started = Instant::now();
    while Instant::now() < deadline || !running.is_empty() {
        while running.len() < args.jobs.max(1) && Instant::now() < deadline {
            let (name, seed) = &seeds[rng.gen_range(0..seeds.len())];
            let other = &seeds[rng.gen_range(0..seeds.len())].1;
            let input = mutate(&mut rng, seed, other);
            tried += 1;
            let path = work.path().join(format!("{tried}.in"));
            std::fs::write(&path, &input)?;
            let (program, limits, label) =
                (program.clone(), limits.clone(), format!("{tried}-{name}"));
            running.spawn(async move {
                let result = tokio::time::timeout(
                    PARENT_WATCHDOG,
                    decode_isolated(&program, &path, &limits),
                )
                .await;
                let kind = outcome(&result);
                (kind, path, label)
            });
        }
        let Some(done) = running.join_next().await else {
            break;
        };
        let (kind, path, label) = done.context("a fuzz task panicked: the parent crashed")?;
        *counts.entry(kind).or_default() += 1;
        if kind != "decoded" && kind != "refused with a clear error" {
            let _ = std::fs::copy(&path, args.crashes.join(format!("{label}.bin")));
        }
        let _ = std::fs::remove_file(&path);
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!("| seeds | minutes | inputs tried | inputs/s |");
    println!("| ---: | ---: | ---: | ---: |");
    println!(
        "| {} | {minutes:.1} | {tried} | {:.1} |",
        seeds.len(),
        tried as f64 / (minutes * 60.0).max(1e-9)
    );
    println!();
    println!("| outcome | inputs |");
    println!("| --- | ---: |");
    for kind in [
        "decoded",
        "refused with a clear error",
        "child crashed (signal)",
        "child panicked",
        "child over its memory limit",
        "child over its time limit",
        "parent error",
        "parent hang",
    ] {
        println!("| {kind} | {} |", counts.get(kind).copied().unwrap_or(0));
    }
    let parent = counts.get("parent hang").copied().unwrap_or(0)
        + counts.get("parent error").copied().unwrap_or(0);
    anyhow::ensure!(
        parent == 0,
        "the parent hung or failed on {parent} inputs (kept in {})",
        args.crashes.display()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn mutations_change_inputs_and_never_panic() {
        let mut rng = StdRng::seed_from_u64(7);
        let seed: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut changed = 0;
        for _ in 0..2000 {
            let out = mutate(&mut rng, &seed, b"other seed");
            changed += usize::from(out != seed);
        }
        assert!(changed > 1900, "{changed}");
        // Empty inputs are mutated too.
        let _ = mutate(&mut rng, &[], &[]);
    }

    #[test]
    fn seeds_skip_ground_truth_files() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/calls");
        let seeds = load_seeds(&[dir]).expect("seeds");
        assert!(seeds.iter().all(|(n, _)| n.ends_with(".mp3")), "{seeds:?}");
    }
}
