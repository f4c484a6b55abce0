//! The decoder child: the far side of [`super::decode_isolated`].
//!
//! It limits its own address space first thing (so even a decoder that asks for tens of
//! gigabytes fails fast instead of pushing the machine into swap or the OOM killer), then
//! decodes one file and streams 16 kHz audio to stdout in the [`super::wire`] format.
//! Error text goes to stderr for humans and as an ERROR frame for the parent.

use std::ffi::OsString;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use rlimit::Resource;

use super::decode::decode_to_sink;
use super::resample::To16k;
use super::types::{DecodeLimits, FaultInjection};
use super::wire::{ChildSummary, FrameWriter};

/// Exit status after a decode error that was reported in an ERROR frame.
pub(crate) const EXIT_DECODE_ERROR: u8 = 1;
/// Exit status for a malformed command line (a bug in the parent, not the file).
pub(crate) const EXIT_USAGE: u8 = 2;

/// Command-line flags shared by both sides.
pub(crate) const FLAG_MAX_DURATION: &str = "--max-duration-s";
pub(crate) const FLAG_MEMORY: &str = "--memory-limit-bytes";
pub(crate) const FLAG_FAULT: &str = "--fault";

/// Entry point of the hidden decoder subcommand. `args` are the arguments after the
/// subcommand name: `<input> [--max-duration-s N] [--memory-limit-bytes N]`.
pub fn run_decode_child<I: IntoIterator<Item = OsString>>(args: I) -> ExitCode {
    let (input, limits) = match parse_args(args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("decode child: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if let Err(err) = limit_self(limits.memory_bytes) {
        eprintln!("decode child: cannot apply resource limits: {err}");
        return ExitCode::from(EXIT_USAGE);
    }
    if let Some(fault) = limits.fault {
        inject(fault);
    }
    let stdout = std::io::stdout().lock();
    let writer = match FrameWriter::new(BufWriter::with_capacity(64 * 1024, stdout)) {
        Ok(writer) => writer,
        Err(err) => {
            eprintln!("decode child: {err}");
            return ExitCode::from(EXIT_DECODE_ERROR);
        }
    };
    let mut sink = To16k::new(writer);
    let result = decode_to_sink(&input, &limits, &mut sink);
    let mut writer = sink.into_inner();
    let outcome = result.and_then(|report| {
        let summary = ChildSummary {
            source: report.source_info(),
            warnings: report.warnings,
        };
        writer.done(&summary)
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{err}");
            // If even this write fails the parent still has stderr and the exit status.
            let _ = writer.error(&err);
            ExitCode::from(EXIT_DECODE_ERROR)
        }
    }
}

/// Parse `<input>` and the flags; unknown flags are an error so a version skew between
/// parent and child is loud.
fn parse_args<I: IntoIterator<Item = OsString>>(
    args: I,
) -> Result<(PathBuf, DecodeLimits), String> {
    let mut limits = DecodeLimits::default();
    let mut input = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .and_then(|v| v.into_string().ok())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match arg.to_str() {
            Some(FLAG_MAX_DURATION) => {
                let secs = value(FLAG_MAX_DURATION)?;
                limits.max_duration = Duration::from_secs(number(&secs)?);
            }
            Some(FLAG_MEMORY) => limits.memory_bytes = number(&value(FLAG_MEMORY)?)?,
            Some(FLAG_FAULT) => limits.fault = Some(parse_fault(&value(FLAG_FAULT)?)?),
            Some(flag) if flag.starts_with("--") => return Err(format!("unknown flag {flag}")),
            _ if input.is_none() => input = Some(PathBuf::from(arg)),
            _ => return Err("more than one input file".into()),
        }
    }
    Ok((input.ok_or("no input file given")?, limits))
}

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("not a number: {text}"))
}

/// `alloc:BYTES`, `sleep:SECONDS` or `abort`.
pub(crate) fn parse_fault(text: &str) -> Result<FaultInjection, String> {
    match text.split_once(':') {
        Some(("alloc", n)) => Ok(FaultInjection::Allocate(number(n)?)),
        Some(("sleep", n)) => Ok(FaultInjection::Sleep(Duration::from_secs(number(n)?))),
        None if text == "abort" => Ok(FaultInjection::Abort),
        _ => Err(format!("unknown fault {text}")),
    }
}

/// The flag value for `fault`, the inverse of [`parse_fault`].
pub(crate) fn fault_arg(fault: FaultInjection) -> String {
    match fault {
        FaultInjection::Allocate(n) => format!("alloc:{n}"),
        FaultInjection::Sleep(d) => format!("sleep:{}", d.as_secs()),
        FaultInjection::Abort => "abort".into(),
    }
}

/// Cap our own address space, and switch off core dumps: a crashing decoder on a worker
/// should not write gigabytes of core files.
fn limit_self(memory_bytes: u64) -> std::io::Result<()> {
    Resource::AS.set(memory_bytes, memory_bytes)?;
    Resource::CORE.set(0, 0)?;
    Ok(())
}

/// Misbehave on purpose (isolation tests only).
fn inject(fault: FaultInjection) {
    match fault {
        FaultInjection::Allocate(bytes) => {
            let len = usize::try_from(bytes).unwrap_or(usize::MAX);
            // Touch every byte so the memory is really taken, not just reserved.
            let block = vec![1u8; len];
            std::hint::black_box(&block);
        }
        FaultInjection::Sleep(duration) => std::thread::sleep(duration),
        FaultInjection::Abort => std::process::abort(),
    }
    let _ = std::io::stderr().flush();
}
