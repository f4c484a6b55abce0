//! `callgrade eval`: how far the pipeline agrees with calls someone has labelled.
//!
//! A labelled folder holds recordings and, beside each, a JSON file in the format of
//! `samples/calls/` (see [`labelled`]): the true turns with their speakers and times, the
//! expected level of each criterion and the expected outcome. [`scoring`] runs the real
//! pipeline (decode, whisper, the configured LLM) and compares levels, overall scores and
//! outcomes; [`transcription`] compares the words, who said them and when turns begin. Both
//! print a table and can write the same figures as JSON, and the scoring figures have the
//! shape of the calibration against QA corrections (`GET /api/v1/calibration`), so "the model
//! against our labels" and "the model against our QA" read alike.

pub mod labelled;
pub mod redaction;
pub mod scoring;
pub mod text;
pub mod transcription;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Subcommand;
use tokio_util::sync::CancellationToken;

use crate::audio::DecoderProgram;
use crate::config::{Config, TranscribeConfig};
use crate::domain::{CallId, ChannelMap, Language, ManagerId};
use crate::jobs::{JobContext, JobHandler};
use crate::recordings::Recordings;
use crate::store::{ClaimedJob, InsertCall, NewCall, NewJob, Store};
use crate::transcribe::job::{TranscribeJob, TranscribeSettings};
use crate::transcript::Transcript;

/// `callgrade eval ...`
#[derive(Debug, Subcommand)]
pub enum EvalCommand {
    /// Scoring against labelled calls: agreement per criterion (exact, within one level,
    /// weighted kappa, confusion matrix), overall score correlation, outcome agreement, cost.
    Scoring(scoring::EvalScoringArgs),
    /// Transcription against labelled turns: word error rate per speaker, speaker attribution,
    /// turn-onset error.
    Transcription(transcription::EvalTranscriptionArgs),
    /// Redaction against a labelled set of utterances: recall and precision per kind of
    /// personal data (default: the set compiled in).
    Redaction(redaction::EvalRedactionArgs),
}

/// Runs an `eval` command.
pub async fn run(command: EvalCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        EvalCommand::Scoring(args) => scoring::run(args, config).await,
        EvalCommand::Transcription(args) => transcription::run(args, config).await,
        EvalCommand::Redaction(args) => redaction::run(args),
    }
}

/// The transcription stage as the server runs it (isolated decode, VAD, whisper per channel,
/// merge, metrics), on a scratch database that is thrown away. `eval` and `bench transcribe`
/// both run recordings through it.
pub struct Transcriber {
    _scratch: tempfile::TempDir,
    store: Store,
    recordings: Recordings,
    handler: Arc<TranscribeJob>,
}

impl Transcriber {
    /// A transcriber with these transcription settings.
    pub async fn new(config: &TranscribeConfig) -> anyhow::Result<Self> {
        let scratch = tempfile::tempdir()?;
        let recordings = Recordings::new(scratch.path().join("recordings"));
        let store = Store::open(&format!("sqlite://{}/eval.db", scratch.path().display())).await?;
        let settings = TranscribeSettings::from_config(
            config,
            &Default::default(),
            recordings.clone(),
            DecoderProgram::current_exe([crate::app::AUDIO_DECODE_CHILD])?,
        )?;
        Ok(Self {
            _scratch: scratch,
            store,
            recordings,
            handler: Arc::new(TranscribeJob::new(settings)),
        })
    }

    /// Copies `recording` in as a call of `language` with these channels, not yet transcribed.
    pub async fn stage(
        &self,
        recording: &Path,
        language: Language,
        channels: ChannelMap,
        direction: Option<crate::domain::Direction>,
    ) -> anyhow::Result<CallId> {
        let id = CallId::new();
        let key = format!("eval/{id}.audio");
        let path = self.recordings.path(&key).context("storage key")?;
        std::fs::create_dir_all(path.parent().context("parent")?)?;
        std::fs::copy(recording, &path)
            .with_context(|| format!("cannot read {}", recording.display()))?;
        let new = NewCall {
            id,
            manager_id: ManagerId::parse("eval").map_err(|e| anyhow::anyhow!("{e}"))?,
            deal_id: None,
            customer_id: None,
            direction,
            started_at: None,
            language,
            channels,
            first_speaker: None,
            original_filename: None,
            content_type: None,
            size_bytes: 0,
            sha256: id.to_string(),
            storage_key: key,
        };
        if let InsertCall::Duplicate(_) = self
            .store
            .insert_call(&new, &NewJob::for_call("eval", id, 1))
            .await?
        {
            anyhow::bail!("duplicate call");
        }
        Ok(id)
    }

    /// Runs the transcribe job on a staged call (several may run at once).
    pub async fn run(&self, id: CallId) -> anyhow::Result<()> {
        let ctx = JobContext {
            job: ClaimedJob {
                id: crate::domain::JobId::new(),
                kind: crate::pipeline::Stage::Transcribe.kind().into(),
                call_id: Some(id),
                payload: serde_json::json!({}),
                attempt: 1,
                max_attempts: 1,
            },
            fence: None,
            store: self.store.clone(),
            cancel: CancellationToken::new(),
        };
        self.handler
            .run(&ctx)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// A 16 kHz mono WAV copy of `recording` in the scratch folder, its channels averaged: a
    /// stereo call as a mono phone system would have recorded it, with the channels as the
    /// reference for speaker separation.
    pub async fn mixdown(&self, recording: &Path) -> anyhow::Result<PathBuf> {
        let audio = crate::audio::decode_isolated_spooled(
            &DecoderProgram::current_exe([crate::app::AUDIO_DECODE_CHILD])?,
            recording,
            &Default::default(),
        )
        .await?;
        let frames = audio.channels.first().map_or(0, |c| c.frames());
        let mut mono = vec![0f32; frames];
        for channel in &audio.channels {
            for (m, s) in mono.iter_mut().zip(channel.read(0, frames)?) {
                *m += s / audio.channels.len() as f32;
            }
        }
        let name = recording
            .file_stem()
            .and_then(|n| n.to_str())
            .unwrap_or("call");
        let path = self._scratch.path().join(format!("{name}.mono16k.wav"));
        std::fs::write(&path, wav16(&mono))?;
        Ok(path)
    }

    /// The stored transcript of a call that [`Self::run`] transcribed.
    pub async fn transcript(&self, id: CallId) -> anyhow::Result<Transcript> {
        self.store
            .get_transcript(id)
            .await?
            .context("no transcript stored")
    }

    /// The transcript of `call`'s recording, as the server would store it.
    pub async fn transcribe(&self, call: &labelled::LabelledCall) -> anyhow::Result<Transcript> {
        let id = self
            .stage(
                &call.recording,
                call.language(),
                call.channels()?,
                call.direction(),
            )
            .await?;
        self.run(id)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e}", call.name))?;
        self.transcript(id).await.with_context(|| call.name.clone())
    }
}

/// 16-bit PCM WAV bytes of 16 kHz mono samples.
fn wav16(samples: &[f32]) -> Vec<u8> {
    let data = (samples.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&16_000u32.to_le_bytes());
    out.extend_from_slice(&32_000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for s in samples {
        out.extend_from_slice(&((s.clamp(-1.0, 1.0) * 32767.0).round() as i16).to_le_bytes());
    }
    out
}

/// Writes `value` as pretty JSON to `path` (`-` = standard output).
fn write_json(path: &Path, value: &impl serde::Serialize) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value)?;
    if path == Path::new("-") {
        println!("{text}");
    } else {
        std::fs::write(path, text + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("figures written to {}", path.display());
    }
    Ok(())
}
