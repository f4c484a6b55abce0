//! The whisper model and one channel's transcription: VAD, decoding, guards, word times.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tokio_util::sync::CancellationToken;
use whisper_rs::{
    DtwMode, DtwModelPreset, DtwParameters, FullParams, SamplingStrategy, WhisperContext,
    WhisperContextParameters, WhisperVadContext, WhisperVadContextParams, WhisperVadParams,
};

use super::guards::{self, Candidate, Thresholds};
use super::speech::{self, Joined, Region};
use super::{TranscribeError, SAMPLE_RATE};
use crate::domain::{Language, Speaker};
use crate::transcript::{Segment, Word};

/// How to transcribe.
#[derive(Debug, Clone)]
pub struct Options {
    /// Spoken language, or auto-detect.
    pub language: Language,
    /// CPU threads for whisper.
    pub threads: usize,
    /// Product and company names that help the recogniser.
    pub initial_prompt: Option<String>,
    /// Silero VAD model; `None` transcribes the whole audio.
    pub vad_model: Option<PathBuf>,
    /// Hallucination thresholds.
    pub thresholds: Thresholds,
    /// Longest stretch of one channel recognised at once, in samples ([`WINDOW_SAMPLES`]).
    pub window_samples: usize,
}

/// Longest stretch of one channel held and recognised at once: ten minutes, 38 MB of 16 kHz
/// f32 samples, whatever the recording's length. A call shorter than this is one window.
pub const WINDOW_SAMPLES: usize = 600 * SAMPLE_RATE;

/// The result for one channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelTranscript {
    /// Kept segments on the recording's timeline.
    pub segments: Vec<Segment>,
    /// Language whisper used or detected (two-letter code).
    pub language: Option<String>,
    /// Seconds of speech VAD found (the whole audio without VAD).
    pub speech_seconds: f64,
    /// Wall-clock seconds spent in VAD.
    pub vad_seconds: f64,
    /// Wall-clock seconds spent in whisper.
    pub whisper_seconds: f64,
    /// Segments dropped by the guards.
    pub dropped_segments: usize,
}

/// The alignment-head preset of a standard model, from its file's dimensions.
fn dtw_preset(path: &Path) -> Option<DtwModelPreset> {
    let file = std::fs::File::open(path).ok()?;
    let header = crate::models::ggml::read(&mut std::io::BufReader::new(file), false).ok()?;
    let en = !header.hparams.is_multilingual();
    Some(match (header.hparams.size_name()?, en) {
        ("tiny", true) => DtwModelPreset::TinyEn,
        ("tiny", false) => DtwModelPreset::Tiny,
        ("base", true) => DtwModelPreset::BaseEn,
        ("base", false) => DtwModelPreset::Base,
        ("small", true) => DtwModelPreset::SmallEn,
        ("small", false) => DtwModelPreset::Small,
        ("medium", true) => DtwModelPreset::MediumEn,
        ("medium", false) => DtwModelPreset::Medium,
        _ => return None,
    })
}

/// Sends whisper.cpp's and ggml's own log lines (which go to stderr by default, a few per
/// decoded token) to `tracing`, where RUST_LOG filters them like everything else.
fn route_native_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(whisper_rs::install_logging_hooks);
}

/// A loaded whisper model, shared by every transcription in the process.
pub struct WhisperModel {
    ctx: WhisperContext,
    path: PathBuf,
}

impl WhisperModel {
    /// Loads a whisper.cpp ggml model.
    pub fn load(path: &Path) -> Result<Self, TranscribeError> {
        route_native_logs();
        let err = |reason: String| TranscribeError::Model {
            path: path.display().to_string(),
            reason,
        };
        if !path.is_file() {
            return Err(err(
                "no such file (install one with `callgrade models install base`)".into(),
            ));
        }
        let path_str = path
            .to_str()
            .ok_or_else(|| err("the path is not UTF-8".into()))?;
        // Word times from dynamic time warping over the alignment heads of known models:
        // whisper.cpp's default token times drift by up to a second, too coarse to tell which
        // speech region (and so which turn) a word belongs to.
        let preset = dtw_preset(path);
        let mut params = WhisperContextParameters::default();
        if let Some(model_preset) = preset {
            params.dtw_parameters(DtwParameters {
                mode: DtwMode::ModelPreset { model_preset },
                ..Default::default()
            });
        }
        let ctx =
            WhisperContext::new_with_params(path_str, params).map_err(|e| err(e.to_string()))?;
        Ok(Self {
            ctx,
            path: path.to_path_buf(),
        })
    }

    /// Where the model was loaded from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the model knows languages other than English.
    pub fn is_multilingual(&self) -> bool {
        self.ctx.is_multilingual()
    }

    /// Transcribes one speaker's 16 kHz mono audio; whisper stops within moments of `stop`
    /// firing (its abort callback), and the pass then ends with [`TranscribeError::Stopped`].
    pub fn transcribe(
        &self,
        audio: &[f32],
        speaker: Speaker,
        options: &Options,
        stop: &CancellationToken,
    ) -> Result<ChannelTranscript, TranscribeError> {
        let started = Instant::now();
        let joined = match &options.vad_model {
            Some(vad) => {
                let regions = detect_speech(vad, audio, options.threads)?;
                // Context around speech (see `vad_pad_s`), regions closer than 300 ms joined,
                // half a second of silence between regions: whisper ends a segment at such a
                // pause, so segments rarely straddle two regions and words at the joins stay
                // apart.
                let regions = speech::normalise(
                    &regions,
                    (vad_pad_s(speaker) * SAMPLE_RATE as f64) as usize,
                    SAMPLE_RATE * 3 / 10,
                    audio.len(),
                );
                speech::join(audio, &regions, SAMPLE_RATE / 2, SAMPLE_RATE)
            }
            None => Joined::whole(audio.to_vec(), SAMPLE_RATE),
        };
        let vad_seconds = if options.vad_model.is_some() {
            started.elapsed().as_secs_f64()
        } else {
            0.0
        };
        let mut out = ChannelTranscript {
            speech_seconds: joined.speech_seconds(),
            vad_seconds,
            ..Default::default()
        };
        // Less than 0.1 s of speech: nothing to recognise (and whisper would invent something).
        if joined.samples.len() < SAMPLE_RATE / 10 {
            return Ok(out);
        }
        let t = Instant::now();
        if stop.is_cancelled() {
            return Err(TranscribeError::Stopped);
        }
        self.run_whisper(&joined, speaker, options, stop, &mut out)?;
        out.whisper_seconds = t.elapsed().as_secs_f64();
        Ok(out)
    }

    /// Transcribes the turns of separated voices on one channel (`turns`: each stretch with
    /// its voice) in one whisper pass: each voice's turns are padded and merged on their own,
    /// then all are joined in time order, so each piece of the joined buffer is one voice's and
    /// every word goes to the voice of the piece it falls in. One pass costs what the channel's
    /// own transcription would (a pass per voice would pad each voice's last 30 s window).
    pub fn transcribe_turns(
        &self,
        audio: &[f32],
        turns: &[(Region, Speaker)],
        options: &Options,
        stop: &CancellationToken,
    ) -> Result<ChannelTranscript, TranscribeError> {
        let mut voices: Vec<Speaker> = turns.iter().map(|(_, s)| *s).collect();
        voices.sort_by_key(|s| s.as_str());
        voices.dedup();
        let mut pieces: Vec<(Region, Speaker)> = Vec::new();
        for voice in voices {
            let regions: Vec<Region> = turns
                .iter()
                .filter(|(_, s)| *s == voice)
                .map(|(r, _)| *r)
                .collect();
            let regions = speech::normalise(
                &regions,
                (vad_pad_s(voice) * SAMPLE_RATE as f64) as usize,
                SAMPLE_RATE * 3 / 10,
                audio.len(),
            );
            pieces.extend(regions.into_iter().map(|r| (r, voice)));
        }
        pieces.sort_by_key(|(r, s)| (r.start, s.as_str()));
        let regions: Vec<Region> = pieces.iter().map(|(r, _)| *r).collect();
        let joined = speech::join(audio, &regions, SAMPLE_RATE / 2, SAMPLE_RATE)
            .with_labels(pieces.iter().map(|(_, s)| *s).collect());
        let mut out = ChannelTranscript {
            speech_seconds: joined.speech_seconds(),
            ..Default::default()
        };
        if joined.samples.len() < SAMPLE_RATE / 10 {
            return Ok(out);
        }
        if stop.is_cancelled() {
            return Err(TranscribeError::Stopped);
        }
        let t = Instant::now();
        let speaker = pieces.first().map_or(Speaker::Unknown, |(_, s)| *s);
        self.run_whisper(&joined, speaker, options, stop, &mut out)?;
        out.whisper_seconds = t.elapsed().as_secs_f64();
        Ok(out)
    }

    fn run_whisper(
        &self,
        joined: &Joined,
        speaker: Speaker,
        options: &Options,
        stop: &CancellationToken,
        out: &mut ChannelTranscript,
    ) -> Result<(), TranscribeError> {
        let whisper_err = |e: whisper_rs::WhisperError| TranscribeError::Whisper(e.to_string());
        let mut state = self.ctx.create_state().map_err(whisper_err)?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(options.threads.max(1)).unwrap_or(1));
        let language = match (options.language, self.ctx.is_multilingual()) {
            (_, false) => "en",
            (Language::Auto, true) => "auto",
            (l, true) => l.as_str(),
        };
        params.set_language(Some(language));
        // Guards against loops: no text carried between windows, no non-speech tokens, and
        // whisper's own fallbacks (temperature steps when a window decodes badly).
        params.set_no_context(true);
        params.set_suppress_nst(true);
        params.set_suppress_blank(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.2);
        // whisper.cpp skips a whole 30 s window when it judges it silent; on VAD-joined speech
        // that throws away real turns. The guards judge each segment instead.
        params.set_no_speech_thold(if options.vad_model.is_some() {
            1.0
        } else {
            options.thresholds.no_speech
        });
        params.set_logprob_thold(options.thresholds.logprob);
        params.set_token_timestamps(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        if let Some(prompt) = options
            .initial_prompt
            .as_deref()
            .filter(|p| !p.trim().is_empty())
        {
            params.set_initial_prompt(prompt);
        }
        // whisper.cpp asks between its graph computations: a cancelled job or a lost lease
        // frees the CPU within moments instead of at the end of the pass. The callback type is
        // the boxed trait object itself, as whisper-rs's trampoline reads its user data as `F`.
        let stopped = stop.clone();
        let abort: Box<dyn FnMut() -> bool> = Box::new(move || stopped.is_cancelled());
        params.set_abort_callback_safe::<_, Box<dyn FnMut() -> bool>>(Some(abort));
        let ran = {
            let _running = RunningPass::start();
            state.full(params, &joined.samples)
        };
        if stop.is_cancelled() {
            return Err(TranscribeError::Stopped);
        }
        ran.map_err(whisper_err)?;
        out.language =
            whisper_rs::get_lang_str(state.full_lang_id_from_state()).map(str::to_string);

        let eot = self.ctx.token_eot();
        let mut raw = Vec::new();
        for seg in state.as_iter() {
            let text = seg
                .to_str_lossy()
                .map(|t| t.trim().to_string())
                .unwrap_or_default();
            // Words with the speech region each starts in: whisper sees regions joined by short
            // gaps, so one of its segments can span a pause of minutes in the recording (while
            // the other speaker talks). Such segments are split at the region boundaries.
            let mut words: Vec<(Word, usize)> = Vec::new();
            let (mut logprob_sum, mut prob_sum, mut n) = (0.0f32, 0.0f32, 0usize);
            for i in 0..seg.n_tokens() {
                let Some(token) = seg.get_token(i) else {
                    continue;
                };
                let data = token.token_data();
                if data.id >= eot {
                    continue; // special tokens: timestamps, language, end of text
                }
                logprob_sum += data.plog;
                prob_sum += data.p;
                n += 1;
                let piece = token
                    .to_str_lossy()
                    .map(|s| s.into_owned())
                    .unwrap_or_default();
                // DTW gives one time per token (where it is said); fall back to whisper's
                // own start/end estimate without it.
                let (t0, t1) = if data.t_dtw >= 0 {
                    let t = data.t_dtw as f64 / 100.0;
                    (t, t)
                } else {
                    (data.t0 as f64 / 100.0, data.t1 as f64 / 100.0)
                };
                let starts_word = piece.starts_with(' ') || words.is_empty();
                match words.last_mut() {
                    Some((w, _)) if !starts_word => {
                        w.text.push_str(&piece);
                        w.end = w.end.max(joined.to_original(t1));
                        w.probability = w.probability.min(data.p);
                    }
                    _ => words.push((
                        Word {
                            text: piece.trim().to_string(),
                            start: joined.to_original_start(t0),
                            end: joined.to_original(t1),
                            probability: data.p,
                        },
                        // A word belongs to the region its middle falls in (token start times
                        // often lie in the silence before the word).
                        joined.piece_of_word((t0 + t1) / 2.0),
                    )),
                }
            }
            words.retain(|(w, _)| !w.text.is_empty());
            let avg_logprob = if n > 0 {
                logprob_sum / n as f32
            } else {
                f32::NEG_INFINITY
            };
            let seg_t0 = seg.start_timestamp() as f64 / 100.0;
            let seg_t1 = seg.end_timestamp() as f64 / 100.0;
            let start = joined.to_original_start(seg_t0);
            let end = joined.to_original(seg_t1).max(start);
            let confidence = if n > 0 { prob_sum / n as f32 } else { 0.0 };
            let mut pieces =
                split_at_regions(joined, speaker, (start, end), &text, confidence, words);
            // Separated voices: each piece is one voice's.
            for (segment, region) in &mut pieces {
                let piece = if *region == usize::MAX {
                    joined.piece_at((seg_t0 + seg_t1) / 2.0)
                } else {
                    *region
                };
                if let Some(voice) = joined.label(piece) {
                    segment.speaker = voice;
                }
            }
            // The first words of a region are where whisper most often drops a word ("Sure,
            // I'll..."), so a segment that starts within a second after VAD heard the region's
            // speech begin starts there.
            for (segment, region) in &mut pieces {
                if let Some((lo, _)) = joined.piece_span(*region) {
                    let onset = if lo > 0.0 {
                        lo + vad_pad_s(speaker)
                    } else {
                        lo
                    };
                    if segment.start > onset && segment.start - onset <= 1.0 {
                        segment.start = onset;
                    }
                }
            }
            let pieces: Vec<Segment> = pieces.into_iter().map(|(s, _)| s).collect();
            raw.push((
                Candidate {
                    text,
                    no_speech_prob: seg.no_speech_probability(),
                    avg_logprob,
                },
                pieces,
            ));
        }
        let candidates: Vec<Candidate> = raw.iter().map(|(c, _)| c.clone()).collect();
        for ((_, pieces), verdict) in raw
            .into_iter()
            .zip(guards::filter(&candidates, &options.thresholds))
        {
            match verdict {
                None => out.segments.extend(pieces),
                Some(reason) => {
                    tracing::debug!(?reason, pieces = pieces.len(), "dropped a segment");
                    out.dropped_segments += 1;
                }
            }
        }
        Ok(())
    }
}

/// Context a VAD region gets on each side, seconds, on top of the 30 ms Silero's own settings
/// add (see `speech::normalise`). Measured with `base` (docs/PERFORMANCE.md, "Parity with
/// whisper.cpp"): one speaker's own channel of a stereo call does best with 200 ms (a shorter
/// pad costs the short replies of the client's channel their first word), a channel where
/// both speakers talk (a mono recording) with 100 ms, which with Silero's 30 ms is the 130 ms
/// of trailing context whisper.cpp's own VAD gives a region; 200 ms there adds 1.4 points of
/// word errors in Russian.
fn vad_pad_s(speaker: Speaker) -> f64 {
    match speaker {
        // Both speakers on one channel: mono, or separated from mono.
        s if s == Speaker::Unknown || s.is_voice() => 0.1,
        _ => 0.2,
    }
}

/// One whisper segment as stored: one segment per speech region its words fall in, timed by
/// its words and kept inside the region. whisper's own segment times are coarse (a window's
/// last segment often "ends" at the window's end), which on the joined buffer can mean a
/// minute of the recording; words are tighter. Without words, the segment keeps whisper's times.
fn split_at_regions(
    joined: &Joined,
    speaker: Speaker,
    (start, end): (f64, f64),
    text: &str,
    confidence: f32,
    words: Vec<(Word, usize)>,
) -> Vec<(Segment, usize)> {
    if words.is_empty() {
        return vec![(
            Segment {
                speaker,
                start,
                end,
                text: text.to_string(),
                confidence,
                words: vec![],
            },
            usize::MAX, // no words: no region to time it by
        )];
    }
    let one_region = words.windows(2).all(|w| w[0].1 == w[1].1);
    let mut out: Vec<(Segment, usize)> = Vec::new();
    for (word, region) in words {
        match out.last_mut() {
            Some((s, r)) if *r == region => {
                s.end = s.end.max(word.end);
                s.words.push(word);
            }
            _ => out.push((
                Segment {
                    speaker,
                    start: word.start,
                    end: word.end,
                    text: String::new(),
                    confidence,
                    words: vec![word],
                },
                region,
            )),
        }
    }
    out.into_iter()
        .map(|(mut s, region)| {
            if let Some((lo, hi)) = joined.piece_span(region) {
                for w in &mut s.words {
                    w.start = w.start.clamp(lo, hi);
                    w.end = w.end.clamp(w.start, hi);
                }
                s.start = s.words.first().map_or(lo, |w| w.start);
                s.end = s.words.iter().map(|w| w.end).fold(s.start, f64::max);
            }
            s.text = if one_region {
                text.to_string()
            } else {
                s.words
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            if !one_region {
                s.confidence =
                    s.words.iter().map(|w| w.probability).sum::<f32>() / s.words.len() as f32;
            }
            (s, region)
        })
        .collect()
}

/// Counts whisper inference passes in progress (`callgrade_whisper_passes_running`), so an
/// operator (and a test) can see that a cancelled job really gave its CPU back.
struct RunningPass;

impl RunningPass {
    fn start() -> Self {
        ::metrics::gauge!("callgrade_whisper_passes_running").increment(1.0);
        Self
    }
}

impl Drop for RunningPass {
    fn drop(&mut self) {
        ::metrics::gauge!("callgrade_whisper_passes_running").decrement(1.0);
    }
}

/// Speech regions of `audio` (16 kHz mono) found by whisper.cpp's Silero VAD, in samples.
pub fn detect_speech(
    model: &Path,
    audio: &[f32],
    threads: usize,
) -> Result<Vec<Region>, TranscribeError> {
    let model_str = model
        .to_str()
        .ok_or_else(|| TranscribeError::Vad("the VAD model path is not UTF-8".into()))?;
    if !model.is_file() {
        return Err(TranscribeError::Vad(format!(
            "VAD model {} not found",
            model.display()
        )));
    }
    route_native_logs();
    let mut ctx_params = WhisperVadContextParams::new();
    ctx_params.set_n_threads(i32::try_from(threads.max(1)).unwrap_or(1));
    let mut vad = WhisperVadContext::new(model_str, ctx_params)
        .map_err(|e| TranscribeError::Vad(e.to_string()))?;
    let segments = vad
        .segments_from_samples(WhisperVadParams::new(), audio)
        .map_err(|e| TranscribeError::Vad(e.to_string()))?;
    // Timestamps come in centiseconds.
    let to_sample = |cs: f32| ((cs.max(0.0) as f64 / 100.0) * SAMPLE_RATE as f64) as usize;
    Ok(segments
        .map(|s| Region {
            start: to_sample(s.start).min(audio.len()),
            end: to_sample(s.end).min(audio.len()),
        })
        .filter(|r| r.end > r.start)
        .collect())
}
