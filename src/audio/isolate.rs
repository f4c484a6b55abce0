//! Run the decoder in a child process and collect its audio without blocking the runtime.
//!
//! Decoders parse hostile bytes, and symphonia has known inputs that abort the process or
//! request absurd allocations. Running it as a child of the same binary (the hidden decoder
//! subcommand, see [`super::run_decode_child`]) turns each of those into one failed job:
//! the child caps its own memory, the parent caps the wall-clock time, and any death is
//! mapped to a [`DecodeError`] a person can read.

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use tokio::io::{AsyncRead, AsyncReadExt, BufReader};
use tokio::process::Command;

use super::child::{
    fault_arg, EXIT_USAGE, FLAG_FAULT, FLAG_MAX_DURATION, FLAG_MEMORY, FLAG_TIMEOUT,
};
use super::error::DecodeError;
use super::pcm::{average, Pcm, PcmWriter};
use super::types::{DecodeLimits, DecodedAudio, TARGET_SAMPLE_RATE};
use super::wire::{read_child_output, ChildOutput};

/// How much of the child's stderr is kept for the error message (its tail matters most).
const STDERR_KEEP: usize = 16 * 1024;
/// Signal number of SIGABRT, which Rust raises when an allocation fails.
const SIGABRT: i32 = 6;

/// The program (and leading arguments) that runs the decoder child, e.g.
/// `callgrade audio-decode-child`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecoderProgram {
    program: PathBuf,
    leading_args: Vec<OsString>,
}

impl DecoderProgram {
    /// `program` run as `program <leading_args...> <input> [flags]`.
    pub fn new<P, I, A>(program: P, leading_args: I) -> Self
    where
        P: Into<PathBuf>,
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        Self {
            program: program.into(),
            leading_args: leading_args.into_iter().map(Into::into).collect(),
        }
    }

    /// The running binary itself with the given subcommand arguments: the usual setup, since
    /// the child entry point is compiled into the same binary.
    pub fn current_exe<I, A>(leading_args: I) -> Result<Self, DecodeError>
    where
        I: IntoIterator<Item = A>,
        A: Into<OsString>,
    {
        let program = std::env::current_exe().map_err(|e| DecodeError::Spawn(e.to_string()))?;
        Ok(Self::new(program, leading_args))
    }
}

/// Decode `input` in a child process under `limits`, returning 16 kHz audio in memory.
///
/// Cancel-safe: dropping the future kills the child.
pub async fn decode_isolated(
    program: &DecoderProgram,
    input: &Path,
    limits: &DecodeLimits,
) -> Result<DecodedAudio, DecodeError> {
    let audio = decode_isolated_to(program, input, limits, false).await?;
    let mut channels = Vec::with_capacity(audio.channels.len());
    for channel in audio.channels {
        channels.push(channel.into_vec()?);
    }
    Ok(DecodedAudio {
        sample_rate: audio.sample_rate,
        channels,
        source: audio.source,
        identical_channels_merged: audio.identical_channels_merged,
        warnings: audio.warnings,
    })
}

/// [`decode_isolated`] with each channel spooled to an unnamed temporary file as it arrives,
/// so the caller's memory does not grow with the recording's length. Identical stereo channels
/// are still folded to one, compared while they stream in.
pub async fn decode_isolated_spooled(
    program: &DecoderProgram,
    input: &Path,
    limits: &DecodeLimits,
) -> Result<SpooledAudio, DecodeError> {
    decode_isolated_to(program, input, limits, true).await
}

async fn decode_isolated_to(
    program: &DecoderProgram,
    input: &Path,
    limits: &DecodeLimits,
    spool: bool,
) -> Result<SpooledAudio, DecodeError> {
    let max_s = limits.max_duration.as_secs();
    let mut command = Command::new(&program.program);
    command
        .args(&program.leading_args)
        .arg(input)
        .arg(FLAG_MAX_DURATION)
        .arg(max_s.to_string())
        .arg(FLAG_MEMORY)
        .arg(limits.memory_bytes.to_string())
        .arg(FLAG_TIMEOUT)
        .arg(limits.timeout.as_secs().max(1).to_string());
    if let Some(fault) = limits.fault {
        command.arg(FLAG_FAULT).arg(fault_arg(fault));
    }
    // The child parses hostile files with C code (libopus): it gets none of the server's
    // environment (LLM key, database password), and confines itself further (sandbox.rs).
    command
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| DecodeError::Spawn(e.to_string()))?;
    let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
        return Err(DecodeError::Spawn("decoder pipes were not set up".into()));
    };
    // One second of slack over the limit covers the resampler's rounding.
    let max_frames = max_s
        .saturating_add(1)
        .saturating_mul(u64::from(TARGET_SAMPLE_RATE));
    let max_frames = usize::try_from(max_frames).unwrap_or(usize::MAX);

    let run = async {
        let read_audio = async {
            let read = read_child_output(
                BufReader::with_capacity(256 * 1024, stdout),
                max_frames,
                spool,
            )
            .await;
            if read.is_err() {
                // A child we no longer listen to could block on a full pipe: end it now.
                let _ = child.start_kill();
            }
            read
        };
        let (audio, stderr) = tokio::join!(read_audio, read_tail(stderr, STDERR_KEEP));
        let status = child.wait().await;
        (audio, stderr, status)
    };
    let finished = tokio::time::timeout(limits.timeout, run).await;
    let (audio, stderr, status) = match finished {
        Ok(done) => done,
        Err(_) => {
            let _ = child.kill().await;
            return Err(DecodeError::TimedOut(limits.timeout.as_secs()));
        }
    };
    let status = status?;
    let stderr = String::from_utf8_lossy(&stderr).into_owned();
    let output = audio?;
    let checked = classify(status, &stderr, output)?;
    // Equal lengths are part of the contract downstream; a shorter channel would be a bug.
    let frames = checked
        .channels
        .iter()
        .map(PcmWriter::frames)
        .min()
        .unwrap_or(0);
    let mut channels = Vec::with_capacity(checked.channels.len());
    for channel in checked.channels {
        channels.push(channel.finish(frames).await?);
    }
    let identical_channels_merged = channels.len() == 2 && checked.correlation.same_signal();
    if identical_channels_merged {
        let both = std::mem::take(&mut channels);
        let merged = tokio::task::spawn_blocking(move || average(&both[0], &both[1]))
            .await
            .map_err(|e| DecodeError::Io(e.to_string()))??;
        channels.push(merged);
    }
    Ok(SpooledAudio {
        sample_rate: TARGET_SAMPLE_RATE,
        channels,
        source: checked.summary.source,
        identical_channels_merged,
        warnings: checked.summary.warnings,
    })
}

/// Decoded audio whose channels may live in temporary files (see [`decode_isolated_spooled`]).
#[derive(Debug)]
pub struct SpooledAudio {
    /// Always [`TARGET_SAMPLE_RATE`].
    pub sample_rate: u32,
    /// One channel (mono) or two (left/manager first), all the same length.
    pub channels: Vec<Pcm>,
    /// What the upload was before decoding.
    pub source: super::types::SourceInfo,
    /// True when a stereo file carried the same signal on both sides and was folded to mono.
    pub identical_channels_merged: bool,
    /// Non-fatal problems met while decoding.
    pub warnings: Vec<String>,
}

impl SpooledAudio {
    /// Length of the audio in seconds.
    pub fn duration_s(&self) -> f64 {
        let frames = self.channels.first().map_or(0, Pcm::frames);
        frames as f64 / f64::from(self.sample_rate)
    }
}

/// A child's output that passed every check: its channels, their correlation, its summary.
struct Checked {
    channels: Vec<PcmWriter>,
    correlation: super::channels::Correlation,
    summary: super::wire::ChildSummary,
}

/// Turn what the child left behind into audio or the most specific error available.
fn classify(status: ExitStatus, stderr: &str, output: ChildOutput) -> Result<Checked, DecodeError> {
    if let Some(err) = output.error {
        return Err(err);
    }
    if let Some(signal) = status.signal() {
        // Rust prints this line before aborting when an allocation fails, which under our
        // RLIMIT_AS is exactly "the decoder wanted more memory than it may have".
        if signal == SIGABRT && stderr.contains("memory allocation of") {
            return Err(DecodeError::OutOfMemory);
        }
        return Err(DecodeError::Crashed(signal));
    }
    if !status.success() {
        let last = last_line(stderr);
        let detail = if stderr.contains("panicked") {
            format!("decoder crashed: {last}")
        } else if status.code() == Some(i32::from(EXIT_USAGE)) {
            format!("decoder was started wrongly: {last}")
        } else if last.is_empty() {
            format!("exit status {status}")
        } else {
            last
        };
        return Err(DecodeError::ChildFailed(detail));
    }
    let Some(summary) = output.summary else {
        return Err(DecodeError::ChildFailed(
            "decoder ended without finishing its output".into(),
        ));
    };
    if output.sample_rate != TARGET_SAMPLE_RATE || output.channels.is_empty() {
        return Err(DecodeError::ChildFailed(
            "decoder returned no usable audio".into(),
        ));
    }
    Ok(Checked {
        channels: output.channels,
        correlation: output.correlation,
        summary,
    })
}

/// Read a stream to its end, keeping only its last `keep` bytes (so a chatty child cannot
/// make us buffer without bound, and we still have its final message).
async fn read_tail<R: AsyncRead + Unpin>(mut input: R, keep: usize) -> Vec<u8> {
    let mut tail = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match input.read(&mut chunk).await {
            Ok(0) | Err(_) => return tail,
            Ok(n) => {
                tail.extend_from_slice(&chunk[..n]);
                if tail.len() > 2 * keep {
                    tail.drain(..tail.len() - keep);
                }
            }
        }
    }
}

fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string()
}
