//! The `transcribe` job: recording -> decoded audio (child process) -> one whisper pass per
//! speaker channel (blocking pool) -> merged segments and metrics -> stored transcript.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use tracing::{info, Instrument};

use super::engine::{ChannelTranscript, Options, WhisperModel, WINDOW_SAMPLES};
use super::speech::Region;
use super::TranscribeError;
use super::SAMPLE_RATE;
use crate::audio::{decode_isolated_spooled, DecodeLimits, DecoderProgram, Pcm};
use crate::config::TranscribeConfig;
use crate::diarize::roles::{self, Said};
use crate::diarize::Diarizer;
use crate::domain::{now_millis, Direction, Language, Speaker};
use crate::jobs::{JobContext, JobError, JobHandler};
use crate::models::diarization::DiarizationModels;
use crate::pipeline::Stage;
use crate::playback::{muted_ogg, write_atomically, Playback};
use crate::recordings::Recordings;
use crate::redact::{redact_off_thread, Kind};
use crate::transcript::metrics::{self, MetricsConfig};
use crate::transcript::{merge_channels, Processing, Segment, Transcript};

/// Everything the job needs, fixed when the worker starts.
#[derive(Clone)]
pub struct TranscribeSettings {
    /// The ggml model file.
    pub model_path: PathBuf,
    /// Name shown in transcripts (`base`, `tiny.en`, or the file name).
    pub model_name: String,
    /// Silero VAD model, or `None` to transcribe the whole audio.
    pub vad_model: Option<PathBuf>,
    /// Language for calls uploaded with `auto` when the config names one.
    pub default_language: Language,
    /// Whisper threads.
    pub threads: usize,
    /// Vocabulary hint.
    pub initial_prompt: Option<String>,
    /// Hallucination thresholds.
    pub thresholds: super::guards::Thresholds,
    /// How the decoder child is started.
    pub decoder: DecoderProgram,
    /// Bounds on decoding.
    pub limits: DecodeLimits,
    /// Where recordings are.
    pub recordings: Recordings,
    /// Metrics settings.
    pub metrics: MetricsConfig,
    /// The speaker-separation networks, when `transcribe.diarization` is on and they are
    /// installed; `None` leaves a mono call as one `unknown` speaker.
    pub diarization: Option<DiarizationModels>,
    /// Voices a separated recording has.
    pub speakers: usize,
}

impl TranscribeSettings {
    /// Settings from the configuration; fails when the model or VAD model is not there.
    pub fn from_config(
        config: &TranscribeConfig,
        metrics: &MetricsConfig,
        recordings: Recordings,
        decoder: DecoderProgram,
    ) -> Result<Self, crate::models::ModelError> {
        let dir = config.model_dir();
        let model_path = dir.resolve(&config.model)?;
        let vad_model = if !config.vad {
            None
        } else if config.vad_model.as_os_str().is_empty() {
            Some(dir.vad_model()?)
        } else {
            Some(config.vad_model.clone())
        };
        Ok(Self {
            model_path,
            model_name: config.model.clone(),
            vad_model,
            default_language: config.language,
            threads: config.threads(),
            initial_prompt: Some(config.initial_prompt.clone()).filter(|p| !p.trim().is_empty()),
            thresholds: config.thresholds(),
            decoder,
            limits: config.decode_limits(),
            recordings,
            metrics: metrics.clone(),
            diarization: if config.diarization {
                crate::models::diarization::find(&dir)
            } else {
                None
            },
            speakers: config.speakers.clamp(2, 4),
        })
    }
}

/// The `transcribe` job handler. The model is loaded on the first job and shared after.
pub struct TranscribeJob {
    settings: TranscribeSettings,
    model: OnceCell<Arc<WhisperModel>>,
    diarizer: OnceCell<Arc<Diarizer>>,
    /// Kinds of personal data removed for good: from the stored transcript, and (muted) from
    /// the recording. Empty: the original is kept.
    store_redacted: Vec<Kind>,
}

impl TranscribeJob {
    /// A handler with `settings`.
    pub fn new(settings: TranscribeSettings) -> Self {
        Self {
            settings,
            model: OnceCell::new(),
            diarizer: OnceCell::new(),
            store_redacted: Vec::new(),
        }
    }

    /// Keeps no original: these kinds are redacted from the transcript before it is stored,
    /// and the recording is replaced by an Ogg Opus copy muted over them
    /// (`redaction.keep_original = false`).
    pub fn storing_redacted(mut self, kinds: Vec<Kind>) -> Self {
        self.store_redacted = kinds;
        self
    }

    /// `t` redacted for storage; when anything was found, the recording at `path` is first
    /// replaced, durably, by a copy muted over it, and playback files made from the original
    /// are dropped. Muting comes first: a crash in between leaves the transcript to be made
    /// again from the muted recording, never the original kept beside a redacted transcript.
    pub async fn redact_for_storage(
        &self,
        t: Transcript,
        path: &Path,
    ) -> Result<Transcript, JobError> {
        if self.store_redacted.is_empty() {
            return Ok(t);
        }
        let (redacted, spans) = redact_off_thread(t, &self.store_redacted).await;
        if spans.is_empty() {
            return Ok(redacted);
        }
        let bytes = muted_ogg(&self.settings.decoder, &self.settings.limits, path, &spans)
            .await
            .map_err(|e| JobError::Retryable(format!("muting the recording: {e}")))?;
        let dir = path
            .parent()
            .ok_or_else(|| JobError::Fatal("the recording has no folder".into()))?;
        write_atomically(dir, path, &bytes)
            .await
            .map_err(|e| JobError::Retryable(format!("replacing the recording: {e}")))?;
        Playback::new(
            self.settings.recordings.root(),
            self.settings.decoder.clone(),
            self.settings.limits.clone(),
        )
        .remove(redacted.call_id)
        .await;
        info!(call_id = %redacted.call_id, stretches = spans.len(), "personal data removed from the recording and transcript");
        Ok(redacted)
    }

    async fn model(&self) -> Result<Arc<WhisperModel>, JobError> {
        self.model
            .get_or_try_init(|| async {
                let path = self.settings.model_path.clone();
                let started = Instant::now();
                let model = blocking(move || WhisperModel::load(&path)).await??;
                info!(
                    model = %self.settings.model_path.display(),
                    seconds = started.elapsed().as_secs_f64(),
                    "speech model loaded"
                );
                Ok(Arc::new(model))
            })
            .await
            .cloned()
    }
}

impl TranscribeJob {
    /// The separation networks, loaded on the first mono call; `None` when not installed or
    /// turned off.
    async fn diarizer(&self) -> Result<Option<Arc<Diarizer>>, JobError> {
        let Some(models) = self.settings.diarization.clone() else {
            return Ok(None);
        };
        self.diarizer
            .get_or_try_init(|| async {
                let started = Instant::now();
                let d = blocking(move || Diarizer::load(&models))
                    .await?
                    .map_err(|e| {
                        JobError::Fatal(format!("loading the diarization models: {e:#}"))
                    })?;
                info!(
                    seconds = started.elapsed().as_secs_f64(),
                    "diarization models loaded"
                );
                Ok(Arc::new(d))
            })
            .await
            .cloned()
            .map(Some)
    }
}

/// Runs `f` on the blocking pool in the current span; a panic there fails the job, not the
/// worker.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, JobError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| JobError::Fatal(format!("transcription crashed: {e}")))
}

impl From<TranscribeError> for JobError {
    fn from(e: TranscribeError) -> Self {
        match e {
            // A missing or broken model is this machine's problem: another worker (or this one
            // after a fix) can still do the call.
            TranscribeError::Model { .. } | TranscribeError::Vad(_) => {
                JobError::Retryable(e.to_string())
            }
            TranscribeError::Whisper(_) => JobError::Fatal(e.to_string()),
            // Only a cancelled or taken-over run stops, and its outcome is not recorded.
            TranscribeError::Stopped => JobError::Retryable(e.to_string()),
        }
    }
}

#[async_trait]
impl JobHandler for TranscribeJob {
    fn kind(&self) -> &'static str {
        Stage::Transcribe.kind()
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let started = Instant::now();
        let call_id = ctx
            .job
            .call_id
            .ok_or_else(|| JobError::Fatal("transcribe job without a call".into()))?;
        let call = ctx
            .store
            .get_call(call_id)
            .await?
            .ok_or_else(|| JobError::Fatal("the call was deleted".into()))?;
        let path = self
            .settings
            .recordings
            .path(&call.call.storage_key)
            .ok_or_else(|| JobError::Fatal("the recording's storage key is invalid".into()))?;
        if !path.is_file() {
            return Err(JobError::Fatal(format!(
                "the recording file is missing ({})",
                call.call.storage_key
            )));
        }

        let t = Instant::now();
        // Spooled: the decoded samples wait in temporary files, not in this process's memory.
        let audio = decode_isolated_spooled(&self.settings.decoder, &path, &self.settings.limits)
            .instrument(tracing::info_span!("decode"))
            .await
            .map_err(|e| {
                if e.is_retryable() {
                    JobError::Retryable(e.to_string())
                } else {
                    JobError::Fatal(e.to_string())
                }
            })?;
        let decode_s = t.elapsed().as_secs_f64();
        let model = self.model().await?;
        let language = match call.call.language {
            Language::Auto => self.settings.default_language,
            given => given,
        };
        if language == Language::Ru && !model.is_multilingual() {
            return Err(JobError::Fatal(format!(
                "the call is in Russian but the speech model {} is English-only; \
                 configure a multilingual one (transcribe.model = \"base\")",
                self.settings.model_name
            )));
        }
        let speakers = speakers_for(audio.channels.len(), call.call.channels.speakers());
        let options = Options {
            language,
            threads: self.settings.threads,
            initial_prompt: self.settings.initial_prompt.clone(),
            vad_model: self.settings.vad_model.clone(),
            thresholds: self.settings.thresholds,
            window_samples: WINDOW_SAMPLES,
        };
        info!(
            %call_id,
            duration_s = audio.duration_s(),
            channels = audio.channels.len(),
            codec = %audio.source.codec,
            "decoded"
        );

        let duration_s = audio.duration_s();
        let mut processing = Processing {
            decode_s,
            threads: options.threads,
            vad: options.vad_model.is_some(),
            ..Default::default()
        };
        let channels = audio.channels;
        let separation = match self.diarizer().await? {
            Some(diarizer) => Some(Separation {
                // The roles rule listens for the manager's own name; a CRM that is not
                // imported (or a lookup that fails) only leaves that cue out.
                manager_name: ctx
                    .store
                    .crm_manager_name(call.call.manager_id.as_str())
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(%call_id, error = %e, "could not read the manager's name");
                        None
                    }),
                diarizer,
                options: crate::diarize::Options {
                    speakers: self.settings.speakers,
                    ..Default::default()
                },
                direction: call.call.direction,
                first: call
                    .call
                    .first_speaker
                    .or_else(|| first_voice_role(call.call.channels.speakers())),
            }),
            None => None,
        };
        let (model, cancel, opts) = (model.clone(), ctx.cancel.clone(), options.clone());
        let speakers_for_job = speakers.clone();
        let recognised = blocking(move || {
            recognise(
                &model,
                channels,
                &speakers_for_job,
                &opts,
                separation.as_ref(),
                &cancel,
            )
        })
        .instrument(tracing::info_span!("whisper"))
        .await??
        .ok_or_else(|| JobError::Retryable("stopped before finishing".into()))?;
        processing.vad_s = recognised.vad_s;
        processing.transcription_s = recognised.whisper_s;
        processing.speech_s = recognised.speech_s;
        processing.dropped_segments = recognised.dropped_segments;
        processing.diarization_s = recognised.diarization_s;
        processing.speaker_roles = recognised.speaker_roles.clone();
        let speakers = recognised.speakers.clone().unwrap_or(speakers);
        let detected = recognised.language;
        let segments = recognised.segments;
        let language = match language {
            Language::Auto => detected.unwrap_or_else(|| "en".into()),
            given => given.as_str().to_string(),
        };
        let metrics = metrics::compute(
            &segments,
            duration_s,
            Language::of_code(&language),
            &self.settings.metrics,
        );
        processing.total_s = started.elapsed().as_secs_f64();
        processing.real_time_factor = if duration_s > 0.0 {
            processing.total_s / duration_s
        } else {
            0.0
        };
        let transcript = Transcript {
            call_id,
            language,
            model: self.settings.model_name.clone(),
            duration_s,
            speakers,
            segments,
            metrics,
            processing,
            warnings: audio.warnings,
            created_at: now_millis(),
        };
        let transcript = self.redact_for_storage(transcript, &path).await?;
        ctx.store
            .save_transcript(&transcript, ctx.fence.as_ref())
            .await?;
        info!(
            %call_id,
            segments = transcript.segments.len(),
            rtf = transcript.processing.real_time_factor,
            "transcribed"
        );
        Ok(())
    }
}

/// What whisper made of all channels of one recording.
#[derive(Debug, Clone, Default)]
pub struct Recognised {
    /// Every speaker's segments on one timeline.
    pub segments: Vec<Segment>,
    /// Language whisper used or detected.
    pub language: Option<String>,
    /// Seconds in VAD.
    pub vad_s: f64,
    /// Seconds in whisper.
    pub whisper_s: f64,
    /// Seconds of speech found.
    pub speech_s: f64,
    /// Segments the guards dropped.
    pub dropped_segments: usize,
    /// Seconds separating the voices of a mono channel.
    pub diarization_s: f64,
    /// The voices of a separated mono channel in order of first speech, with their roles
    /// (`None` when nothing was separated: the channels' speakers stand).
    pub speakers: Option<Vec<Speaker>>,
    /// How the separated voices got their roles.
    pub speaker_roles: Option<String>,
}

/// Separating the voices of a mono channel.
pub struct Separation {
    /// The networks.
    pub diarizer: Arc<Diarizer>,
    /// How to separate.
    pub options: crate::diarize::Options,
    /// The call's direction, for the roles rule.
    pub direction: Option<Direction>,
    /// The call's manager as managers.csv names them, when the CRM knows them.
    pub manager_name: Option<String>,
    /// The role of the first voice, when the upload said it (`channels=client,manager` on a
    /// mono file); otherwise the rule decides.
    pub first: Option<Speaker>,
}

/// The first voice's role an upload's channel map sets for a mono file: `client,manager` says
/// the client speaks first. The default `manager,client` leaves it to the rule, since it is
/// also what an upload without the field gets.
pub fn first_voice_role(map: &[Speaker]) -> Option<Speaker> {
    match map {
        [Speaker::Client, Speaker::Manager] => Some(Speaker::Client),
        _ => None,
    }
}

/// Transcribes each channel as its speaker, one after the other (each pass already uses every
/// thread it is given), and merges them by time. Blocking. `None` when `cancel` fired.
pub fn recognise(
    model: &WhisperModel,
    channels: Vec<Pcm>,
    speakers: &[Speaker],
    options: &Options,
    separation: Option<&Separation>,
    cancel: &CancellationToken,
) -> Result<Option<Recognised>, TranscribeError> {
    if let Some(sep) = separation {
        let mono = channels.len() == 1 && speakers == [Speaker::Unknown];
        let same = channels.len() == 2 && same_samples(&channels[0], &channels[1])?;
        if mono || same {
            return recognise_separated(model, &channels[0], options, sep, cancel);
        }
    }
    let mut out = Recognised::default();
    let mut per_channel = Vec::new();
    for (pcm, speaker) in channels.iter().zip(speakers.iter().copied()) {
        if cancel.is_cancelled() {
            return Ok(None);
        }
        let r = match transcribe_channel(model, pcm, speaker, options, cancel) {
            Err(TranscribeError::Stopped) => return Ok(None),
            other => other?,
        };
        out.vad_s += r.vad_seconds;
        out.whisper_s += r.whisper_seconds;
        out.speech_s += r.speech_seconds;
        out.dropped_segments += r.dropped_segments;
        out.language = out.language.or(r.language);
        per_channel.push(r.segments);
    }
    out.segments = merge_channels(per_channel);
    Ok(Some(out))
}

/// Whether two channels hold the same samples (a mono call saved as stereo), compared a
/// minute at a time.
fn same_samples(a: &Pcm, b: &Pcm) -> Result<bool, TranscribeError> {
    let read_err =
        |e: std::io::Error| TranscribeError::Whisper(format!("reading decoded audio: {e}"));
    if a.frames() != b.frames() {
        return Ok(false);
    }
    let step = 60 * SAMPLE_RATE;
    let mut pos = 0;
    while pos < a.frames() {
        let (x, y) = (
            a.read(pos, step).map_err(read_err)?,
            b.read(pos, step).map_err(read_err)?,
        );
        if x.len() != y.len() || x.iter().zip(&y).any(|(p, q)| (p - q).abs() > 1e-4) {
            return Ok(false);
        }
        pos += step;
    }
    Ok(true)
}

/// One channel with several voices: separated (decision 0021), each voice's stretches
/// recognised as a stereo channel is, the voices' roles set by the upload or the rule
/// ([`crate::diarize::roles`]). A channel with one voice found is recognised as one unknown
/// speaker.
fn recognise_separated(
    model: &WhisperModel,
    pcm: &Pcm,
    options: &Options,
    sep: &Separation,
    cancel: &CancellationToken,
) -> Result<Option<Recognised>, TranscribeError> {
    let audio = pcm
        .read(0, pcm.frames())
        .map_err(|e| TranscribeError::Whisper(format!("reading decoded audio: {e}")))?;
    let started = Instant::now();
    let found = sep
        .diarizer
        .separate(&audio, &sep.options)
        .map_err(|e| TranscribeError::Whisper(format!("separating the speakers: {e:#}")))?;
    let diarization_s = started.elapsed().as_secs_f64();
    info!(
        voices = found.speakers,
        turns = found.turns.len(),
        seconds = diarization_s,
        cohesion = found.cohesion,
        separation = found.separation,
        "voices separated"
    );
    let mut out = Recognised {
        diarization_s,
        ..Default::default()
    };
    if found.speakers < 2 {
        let r = match transcribe_channel(model, pcm, Speaker::Unknown, options, cancel) {
            Err(TranscribeError::Stopped) => return Ok(None),
            other => other?,
        };
        out.vad_s = r.vad_seconds;
        out.whisper_s = r.whisper_seconds;
        out.speech_s = r.speech_seconds;
        out.dropped_segments = r.dropped_segments;
        out.language = r.language;
        out.segments = r.segments;
        out.speaker_roles = Some("one voice found: the channel is one unknown speaker".into());
        return Ok(Some(out));
    }
    let turns: Vec<(Region, Speaker)> = found
        .turns
        .iter()
        .map(|t| {
            (
                Region {
                    start: t.start,
                    end: t.end,
                },
                Speaker::voice(t.speaker).unwrap_or(Speaker::Unknown),
            )
        })
        .collect();
    let r = match model.transcribe_turns(&audio, &turns, options, cancel) {
        Err(TranscribeError::Stopped) => return Ok(None),
        other => other?,
    };
    out.whisper_s = r.whisper_seconds;
    out.speech_s = r.speech_seconds;
    out.dropped_segments = r.dropped_segments;
    out.language = r.language;
    let mut segments = r.segments;
    segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    let voices: Vec<Speaker> = (0..found.speakers).filter_map(Speaker::voice).collect();
    let roles = assign_roles(&segments, &voices, sep);
    for s in &mut segments {
        if let Some(i) = voices.iter().position(|v| *v == s.speaker) {
            s.speaker = roles.speakers[i];
        }
    }
    out.segments = segments;
    out.speakers = Some(roles.speakers);
    out.speaker_roles = Some(roles.note);
    Ok(Some(out))
}

/// The voices' roles, in order of first speech, and how they were decided.
struct Assigned {
    speakers: Vec<Speaker>,
    note: String,
}

/// The upload's word when it gave one, else the rule's when it is confident; otherwise the
/// voices keep their `speaker_N` labels.
fn assign_roles(segments: &[Segment], voices: &[Speaker], sep: &Separation) -> Assigned {
    let roles_with = |manager: usize| -> Vec<Speaker> {
        (0..voices.len())
            .map(|i| {
                if i == manager {
                    Speaker::Manager
                } else {
                    Speaker::Client
                }
            })
            .collect()
    };
    if let Some(first) = sep.first {
        let manager = if first == Speaker::Manager { 0 } else { 1 };
        return Assigned {
            speakers: roles_with(manager),
            note: format!("set for the call (upload or QA): the first voice is the {first}"),
        };
    }
    let said: Vec<Said<'_>> = segments
        .iter()
        .filter_map(|s| {
            voices
                .iter()
                .position(|v| *v == s.speaker)
                .map(|speaker| Said {
                    speaker,
                    text: &s.text,
                })
        })
        .collect();
    let decided = roles::decide(
        &said,
        voices.len(),
        sep.direction,
        sep.manager_name.as_deref(),
    );
    let evidence = decided.evidence.join("; ");
    match decided.manager {
        Some(manager) => Assigned {
            speakers: roles_with(manager),
            note: format!(
                "by rule (confidence {:.2}): speaker_{} is the manager; {evidence}",
                decided.confidence,
                manager + 1
            ),
        },
        None => Assigned {
            speakers: voices.to_vec(),
            note: format!(
                "roles not known (confidence {:.2} < {:.2}): {}",
                decided.confidence,
                roles::CONFIDENT,
                if evidence.is_empty() {
                    "no cue found".into()
                } else {
                    evidence
                }
            ),
        },
    }
}

/// One channel, read and recognised a window at a time (`options.window_samples`), so memory
/// stays bounded for a recording of any length. A window after which more audio follows ends
/// at the quietest 50 ms of its last 30 s, so no word is cut in two; its segments are moved to
/// the recording's timeline.
fn transcribe_channel(
    model: &WhisperModel,
    pcm: &Pcm,
    speaker: Speaker,
    options: &Options,
    cancel: &CancellationToken,
) -> Result<ChannelTranscript, TranscribeError> {
    let read_err =
        |e: std::io::Error| TranscribeError::Whisper(format!("reading decoded audio: {e}"));
    let total = pcm.frames();
    let window = options.window_samples.max(SAMPLE_RATE);
    let mut out = ChannelTranscript::default();
    let mut pos = 0;
    loop {
        let samples = pcm.read(pos, window).map_err(read_err)?;
        let last = pos + samples.len() >= total;
        let end = if last {
            samples.len()
        } else {
            quiet_cut(&samples, (30 * SAMPLE_RATE).min(samples.len() / 2))
        };
        let part = model.transcribe(&samples[..end], speaker, options, cancel)?;
        let offset = pos as f64 / SAMPLE_RATE as f64;
        out.segments.extend(part.segments.into_iter().map(|mut s| {
            s.start += offset;
            s.end += offset;
            for w in &mut s.words {
                w.start += offset;
                w.end += offset;
            }
            s
        }));
        out.language = out.language.or(part.language);
        out.speech_seconds += part.speech_seconds;
        out.vad_seconds += part.vad_seconds;
        out.whisper_seconds += part.whisper_seconds;
        out.dropped_segments += part.dropped_segments;
        pos += end.max(1);
        if last || pos >= total {
            return Ok(out);
        }
    }
}

/// Where to end a window: the middle of the quietest 50 ms in its last `search` samples.
fn quiet_cut(samples: &[f32], search: usize) -> usize {
    const STEP: usize = SAMPLE_RATE / 20;
    let from = samples.len().saturating_sub(search);
    let mut best = (f32::INFINITY, samples.len());
    let mut at = from;
    while at + STEP <= samples.len() {
        let energy: f32 = samples[at..at + STEP].iter().map(|s| s * s).sum();
        if energy < best.0 {
            best = (energy, at + STEP / 2);
        }
        at += STEP;
    }
    best.1
}

/// Who speaks on each decoded channel: the upload's channel map for stereo; for mono the one
/// speaker it names, else `unknown`.
pub fn speakers_for(channels: usize, map: &[Speaker]) -> Vec<Speaker> {
    match (channels, map) {
        (1, [only]) => vec![*only],
        (1, _) => vec![Speaker::Unknown],
        (n, map) => (0..n)
            .map(|i| map.get(i).copied().unwrap_or(Speaker::Unknown))
            .collect(),
    }
}
