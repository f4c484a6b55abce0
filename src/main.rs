//! The `callgrade` binary: parse the command line, set up logging, hand over to the library.

use std::ffi::OsStr;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // The isolated audio decoder is this binary started again with a hidden first argument;
    // it must not start a runtime or logging (its stdout is the audio stream).
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(OsStr::new(callgrade::app::AUDIO_DECODE_CHILD)) {
        return callgrade::audio::run_decode_child(args);
    }
    let cli = callgrade::cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(callgrade::cli::run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
