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

use super::decode::decode_file_to_sink;
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
pub(crate) const FLAG_TIMEOUT: &str = "--timeout-s";

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
    if let Err(err) = limit_self(&limits) {
        eprintln!("decode child: cannot apply resource limits: {err}");
        return ExitCode::from(EXIT_USAGE);
    }
    // Opened before the sandbox closes the file system: the input is all the child reads.
    let file = match std::fs::File::open(&input) {
        Ok(file) => file,
        Err(err) => {
            eprintln!("decode child: cannot open {}: {err}", input.display());
            return ExitCode::from(EXIT_DECODE_ERROR);
        }
    };
    if let Err(err) = super::sandbox::confine() {
        eprintln!("decode child: cannot confine itself: {err}");
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
    let result = decode_file_to_sink(file, &limits, &mut sink);
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
            Some(FLAG_TIMEOUT) => {
                limits.timeout = Duration::from_secs(number(&value(FLAG_TIMEOUT)?)?);
            }
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
        None if text == "escape" => Ok(FaultInjection::Escape),
        _ => Err(format!("unknown fault {text}")),
    }
}

/// The flag value for `fault`, the inverse of [`parse_fault`].
pub(crate) fn fault_arg(fault: FaultInjection) -> String {
    match fault {
        FaultInjection::Allocate(n) => format!("alloc:{n}"),
        FaultInjection::Sleep(d) => format!("sleep:{}", d.as_secs()),
        FaultInjection::Abort => "abort".into(),
        FaultInjection::Escape => "escape".into(),
    }
}

/// Cap our own address space, CPU time, file writes and open files, and switch off core
/// dumps: a crashing decoder on a worker should not write gigabytes of core files.
fn limit_self(limits: &DecodeLimits) -> std::io::Result<()> {
    Resource::AS.set(limits.memory_bytes, limits.memory_bytes)?;
    Resource::CORE.set(0, 0)?;
    // The parent kills the child at its wall-clock limit; CPU time is a second line for a
    // child the parent lost track of. The soft limit sends SIGXCPU, the hard one SIGKILL.
    let cpu = limits.timeout.as_secs().saturating_add(5);
    Resource::CPU.set(cpu, cpu.saturating_add(1))?;
    // The child writes only to its pipes, never to a file.
    Resource::FSIZE.set(0, 0)?;
    // stdin, stdout, stderr, the input, and a few for the runtime library.
    Resource::NOFILE.set(16, 16)?;
    Ok(())
}

/// Tries what a decoder exploit would try, and reports each outcome on stderr in one line that
/// the isolation test reads: the environment, a TCP socket, a file other than the input, and
/// running a program. Then it exits as a decode failure.
fn escape() -> ! {
    let vars = std::env::vars_os().count();
    let socket = match std::net::TcpStream::connect("127.0.0.1:9") {
        Ok(_) => "connected".to_string(),
        Err(e) => format!("refused ({})", e.kind()),
    };
    let read = match std::fs::read("/etc/hostname") {
        Ok(_) => "read".to_string(),
        Err(e) => format!("refused ({})", e.kind()),
    };
    let exec = match std::process::Command::new("/bin/true").status() {
        Ok(_) => "ran".to_string(),
        Err(e) => format!("refused ({})", e.kind()),
    };
    eprintln!("escape: env={vars} socket={socket} read={read} exec={exec}");
    std::process::exit(i32::from(EXIT_DECODE_ERROR));
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
        FaultInjection::Escape => escape(),
    }
    let _ = std::io::stderr().flush();
}
