//! `callgrade upload`: a client for the upload API, with progress for several files.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use futures::TryStreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use reqwest::multipart::{Form, Part};
use tokio_util::io::ReaderStream;

use crate::cli::{ServerArgs, UploadArgs};
use crate::config::Secret;
use crate::http::calls::{CallPage, UploadResponse};

/// Uploads every file; a failed file is reported and the rest still go. Exit code 1 if any failed.
pub async fn upload(args: UploadArgs) -> anyhow::Result<ExitCode> {
    warn_if_token_on_command_line(&args.token);
    let client = reqwest::Client::builder()
        .build()
        .context("building the HTTP client")?;
    let url = format!("{}/api/v1/calls", args.server.trim_end_matches('/'));
    let bars = MultiProgress::new();
    let overall = bars.add(ProgressBar::new(args.files.len() as u64));
    overall.set_style(
        ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} files")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    overall.set_prefix("upload");
    let mut failures = 0;
    for path in &args.files {
        match upload_one(&client, &url, &args, path, &bars).await {
            Ok(r) => {
                let note = if r.duplicate {
                    " (duplicate: already uploaded)"
                } else {
                    ""
                };
                say(
                    &bars,
                    format!("{} -> call {} [{}]{note}", path.display(), r.id, r.status),
                )?;
            }
            Err(e) => {
                failures += 1;
                say(&bars, format!("{} -> FAILED: {e:#}", path.display()))?;
            }
        }
        overall.inc(1);
    }
    overall.finish_and_clear();
    if failures > 0 {
        eprintln!("{failures} of {} uploads failed", args.files.len());
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints a result line to stdout above the progress bars (which live on stderr, and are
/// hidden when it is not a terminal).
fn say(bars: &MultiProgress, line: String) -> std::io::Result<()> {
    bars.suspend(|| println!("{line}"));
    Ok(())
}

async fn upload_one(
    client: &reqwest::Client,
    url: &str,
    args: &UploadArgs,
    path: &Path,
    bars: &MultiProgress,
) -> anyhow::Result<UploadResponse> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("cannot open {}", path.display()))?;
    let len = file.metadata().await?.len();
    let bar = bars.add(ProgressBar::new(len));
    bar.set_style(
        ProgressStyle::with_template(
            "  {msg:30!} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let progress = bar.clone();
    let stream = ReaderStream::new(file).inspect_ok(move |chunk| progress.inc(chunk.len() as u64));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "recording".into());
    let mut form = Form::new()
        .part(
            "file",
            Part::stream_with_length(reqwest::Body::wrap_stream(stream), len).file_name(name),
        )
        .text("manager_id", args.manager.clone());
    for (field, value) in [
        ("deal_id", &args.deal),
        ("customer_id", &args.customer),
        ("direction", &args.direction),
        ("started_at", &args.started_at),
        ("language", &args.language),
        ("channels", &args.channels),
        ("speakers", &args.speakers),
    ] {
        if let Some(v) = value {
            form = form.text(field, v.clone());
        }
    }
    let response = client
        .post(url)
        .bearer_auth(args.token.expose())
        .multipart(form)
        .send()
        .await;
    bar.finish_and_clear();
    let response = response.with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        anyhow::bail!("{status}: {}", error_message(body));
    }
    serde_json::from_str(&body).with_context(|| format!("unexpected answer: {body}"))
}

/// Prints the newest calls with their status (one page of up to 200).
pub async fn list_calls(args: ServerArgs) -> anyhow::Result<()> {
    let body = get(&args, "/api/v1/calls?limit=200").await?;
    let page: CallPage =
        serde_json::from_str(&body).with_context(|| format!("unexpected answer: {body}"))?;
    println!(
        "{:<36}  {:<12}  {:<13}  {:<22}  REASON",
        "CALL", "MANAGER", "STATUS", "FILE"
    );
    for c in page.items {
        println!(
            "{:<36}  {:<12}  {:<13}  {:<22}  {}",
            c.id,
            c.manager_id,
            c.status,
            c.original_filename.unwrap_or_default(),
            c.failure_reason.unwrap_or_default()
        );
    }
    Ok(())
}

/// Prints a call's transcript in the requested format.
pub async fn transcript(args: crate::cli::TranscriptArgs) -> anyhow::Result<()> {
    let path = format!(
        "/api/v1/calls/{}/transcript?format={}",
        args.call_id, args.format
    );
    let body = get(&args.server, &path).await?;
    print!("{body}");
    if !body.ends_with('\n') {
        println!();
    }
    Ok(())
}

/// Prints a call's scorecard: a readable summary, or the JSON document.
pub async fn score(args: crate::cli::ScoreArgs) -> anyhow::Result<()> {
    let body = get(
        &args.server,
        &format!("/api/v1/calls/{}/score", args.call_id),
    )
    .await?;
    if args.json {
        println!("{body}");
        return Ok(());
    }
    let card: crate::scoring::card::ScoreCard = serde_json::from_str(&body)
        .context("the server sent a scorecard this client cannot read")?;
    print!("{}", card.summary());
    Ok(())
}

/// A token given with `--token` sits in the process list, where every user of the machine can
/// read it; the environment variable does not.
fn warn_if_token_on_command_line(token: &Secret) {
    if std::env::var("CALLGRADE_TOKEN").ok().as_deref() != Some(token.expose()) {
        eprintln!(
            "warning: --token on the command line is visible to other users (ps); \
             set CALLGRADE_TOKEN instead"
        );
    }
}

/// The message of an API error body (`{"error": {"message": ...}}`), or the body itself.
fn error_message(body: String) -> String {
    serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
        .unwrap_or(body)
}

/// GETs `path` from the server; an error status becomes an error with the API's message.
async fn get(server: &ServerArgs, path: &str) -> anyhow::Result<String> {
    warn_if_token_on_command_line(&server.token);
    let url = format!("{}{path}", server.server.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&url)
        .bearer_auth(server.token.expose())
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        anyhow::bail!("{status}: {}", error_message(body));
    }
    Ok(body)
}
