//! `callgrade import PATH`: CRM files into the database, with a progress bar per file.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::import::{import_path, ImportOptions, ImportReport, Progress, MAX_LISTED_ERRORS};
use crate::app;
use crate::config::Config;

/// `callgrade import ...`
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// A CRM CSV file (named after its entity: managers.csv, deals.csv, ...) or a folder of them.
    pub path: PathBuf,
    /// Refuse a whole file when any of its rows is bad.
    #[arg(long)]
    pub strict: bool,
    /// No progress bars (for scripts and logs).
    #[arg(long)]
    pub quiet: bool,
}

/// Runs the import; exits 1 when a file was refused (strict) and 0 otherwise, printing every
/// refused row either way.
pub async fn import(config: &Config, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let store = app::open_store(config).await?;
    let quiet = args.quiet;
    let bar_for = |path: &Path, len: u64| -> Option<Progress> {
        if quiet {
            return None;
        }
        let bar = ProgressBar::new(len);
        bar.set_style(
            ProgressStyle::with_template(
                "{msg:<18} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.set_message(
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
        );
        Some(Arc::new(move |bytes| {
            bar.set_position(bytes);
            if bytes >= len {
                bar.finish();
            }
        }))
    };
    let options = ImportOptions {
        strict: args.strict,
    };
    let reports = import_path(&store, &args.path, options, bar_for).await?;
    store.close().await;
    for r in &reports {
        print_report(r);
    }
    Ok(if reports.iter().all(|r| r.committed) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn print_report(r: &ImportReport) {
    println!(
        "{}: {} rows: {} inserted, {} updated, {} unchanged, {} rejected{}",
        r.file,
        r.rows,
        r.inserted,
        r.updated,
        r.unchanged,
        r.rejected,
        if r.committed {
            ""
        } else {
            " (strict: nothing written)"
        }
    );
    for e in &r.errors {
        println!(
            "  {}:{}: {}{}",
            r.file,
            e.line,
            e.column
                .as_deref()
                .map(|c| format!("column {c}: "))
                .unwrap_or_default(),
            e.reason
        );
    }
    if r.errors.len() >= MAX_LISTED_ERRORS {
        println!("  (only the first {MAX_LISTED_ERRORS} rejected rows are listed)");
    }
}
