//! `callgrade eval transcription DIR`: the real transcription stage on labelled calls, against
//! their true turns.
//!
//! - **WER** per speaker: each speaker's words in time order against that speaker's true
//!   words, so a word given to the wrong speaker counts on both sides; and for the whole call,
//!   everyone's words in time order.
//! - **Speaker attribution**: the share of recognised words (by segment, weighted by its words)
//!   whose segment's midpoint falls in a true turn of the speaker it was given to, among those
//!   that fall in any true turn.
//! - **Turn-onset error**: for each true turn, how far the first recognised segment of that
//!   speaker that starts between 2 s before the turn and its end starts from the turn's start;
//!   a turn with none is counted as missed.
//! - **DER** (diarization error rate) of who-speaks-when as the transcript stores it (each
//!   segment a stretch of its speaker's speech), against the true turns, at 10 ms: missed
//!   speech, false alarm and confusion over the true speech, overlap included; with no collar
//!   and with 0.25 s around every true turn's ends left out. A manager or client segment counts
//!   only for that role, so roles given the wrong way round count as errors; voices whose
//!   roles are not known (`speaker_N`) take the mapping that suits them best.
//!
//! `--mono` mixes each recording down to one channel first: a stereo call as a mono phone
//! system would record it, with its channels as the exact reference for speaker separation.

use std::path::PathBuf;
use std::time::Instant;

use clap::Args;
use serde::Serialize;

use super::labelled::{self, LabelledCall};
use super::text::{word_errors, WordErrors};
use super::{write_json, Transcriber};
use crate::analytics::stats::{median, percentile};
use crate::config::Config;
use crate::domain::Speaker;
use crate::transcript::{Segment, Transcript};

/// How early a recognised segment may start before the true turn and still be its onset.
const ONSET_SLACK_S: f64 = 2.0;

/// Options of `callgrade eval transcription`.
#[derive(Debug, Args)]
pub struct EvalTranscriptionArgs {
    /// Folder of recordings with a labelled `NAME.json` beside each (see `samples/calls`).
    pub dir: PathBuf,
    /// Also write the figures as JSON to this file (`-`: standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Mix each recording down to one 16 kHz channel first, to measure speaker separation.
    #[arg(long)]
    pub mono: bool,
}

/// One call's figures, or the totals.
#[derive(Debug, Default, Serialize)]
pub struct TranscriptionFigures {
    /// The call (or `all`).
    pub name: String,
    /// The whole call's words.
    pub wer: WordErrors,
    /// The manager's words.
    pub wer_manager: WordErrors,
    /// The client's words.
    pub wer_client: WordErrors,
    /// Recognised words in a true turn of the speaker they were given to.
    pub attributed_right: usize,
    /// Recognised words inside any true turn.
    pub attributed: usize,
    /// Onset errors of the turns found, seconds.
    #[serde(skip)]
    pub onsets: Vec<f64>,
    /// Median onset error, seconds.
    pub onset_median_s: Option<f64>,
    /// 90th percentile onset error, seconds.
    pub onset_p90_s: Option<f64>,
    /// True turns.
    pub turns: usize,
    /// True turns with no recognised segment near their start.
    pub turns_missed: usize,
    /// Seconds of audio.
    pub audio_s: f64,
    /// Seconds the stage took.
    pub wall_s: f64,
    /// Seconds of it separating voices (mono calls).
    pub diarization_s: f64,
    /// Diarization error: errors and true speech, in 10 ms frames, without a collar.
    #[serde(skip)]
    pub der_frames: [usize; 2],
    /// The same with a 0.25 s collar.
    #[serde(skip)]
    pub der_collar_frames: [usize; 2],
    /// DER without a collar.
    pub der: Option<f64>,
    /// DER with a 0.25 s collar.
    pub der_collar: Option<f64>,
    /// The transcript's speakers (for a separated mono call: its voices in order of first
    /// speech, with the roles they were given).
    pub speakers: String,
    /// Whether the manager and the client were told apart the right way round: most of the
    /// manager's true speech given to `manager` and the client's to `client` (`None`: no roles).
    pub roles_right: Option<bool>,
    /// Calls whose roles were right, of those with roles (totals).
    pub roles_right_calls: usize,
    /// Calls with roles (totals).
    pub roles_calls: usize,
}

impl TranscriptionFigures {
    fn finish(&mut self) {
        self.onset_median_s = median(&self.onsets);
        self.onset_p90_s = percentile(&self.onsets, 0.9);
        let rate = |f: [usize; 2]| (f[1] > 0).then(|| f[0] as f64 / f[1] as f64);
        self.der = rate(self.der_frames);
        self.der_collar = rate(self.der_collar_frames);
    }

    fn add(&mut self, o: &TranscriptionFigures) {
        self.wer.add(o.wer);
        self.wer_manager.add(o.wer_manager);
        self.wer_client.add(o.wer_client);
        self.attributed_right += o.attributed_right;
        self.attributed += o.attributed;
        self.onsets.extend_from_slice(&o.onsets);
        self.turns += o.turns;
        self.turns_missed += o.turns_missed;
        self.audio_s += o.audio_s;
        self.wall_s += o.wall_s;
        self.diarization_s += o.diarization_s;
        for i in 0..2 {
            self.der_frames[i] += o.der_frames[i];
            self.der_collar_frames[i] += o.der_collar_frames[i];
        }
        if let Some(right) = o.roles_right {
            self.roles_calls += 1;
            self.roles_right_calls += usize::from(right);
        }
    }

    /// Share of attributed words given to the right speaker.
    pub fn attribution(&self) -> Option<f64> {
        (self.attributed > 0).then(|| self.attributed_right as f64 / self.attributed as f64)
    }
}

/// The figures of one run.
#[derive(Debug, Serialize)]
pub struct TranscriptionEval {
    /// The speech model.
    pub model: String,
    /// Every call, then `all`.
    pub calls: Vec<TranscriptionFigures>,
}

/// Runs the evaluation and prints its table.
pub async fn run(args: EvalTranscriptionArgs, config: &Config) -> anyhow::Result<()> {
    let mut calls = labelled::load_dir(&args.dir)?;
    let transcriber = Transcriber::new(&config.transcribe).await?;
    eprintln!(
        "{} labelled calls; transcribing with {}{}",
        calls.len(),
        config.transcribe.model,
        if args.mono {
            ", each mixed down to mono"
        } else {
            ""
        }
    );
    if args.mono {
        for call in &mut calls {
            call.recording = transcriber.mixdown(&call.recording).await?;
            call.truth.audio = None;
        }
    }
    let mut all = TranscriptionFigures {
        name: "all".into(),
        ..Default::default()
    };
    let mut figures = vec![];
    for call in &calls {
        let started = Instant::now();
        let t = transcriber.transcribe(call).await?;
        let mut f = compare(call, &t);
        f.wall_s = started.elapsed().as_secs_f64();
        f.finish();
        all.add(&f);
        eprintln!("{}: done in {:.0} s", call.name, f.wall_s);
        figures.push(f);
    }
    all.finish();
    figures.push(all);
    let eval = TranscriptionEval {
        model: config.transcribe.model.clone(),
        calls: figures,
    };
    print!("{}", table(&eval));
    if let Some(path) = &args.json {
        write_json(path, &eval)?;
    }
    Ok(())
}

/// One call's figures (times aside).
pub fn compare(call: &LabelledCall, t: &Transcript) -> TranscriptionFigures {
    let turns = &call.truth.turns;
    let text_of = |who: Option<Speaker>, truth: bool| -> String {
        if truth {
            let mut ts: Vec<_> = turns
                .iter()
                .filter(|x| who.is_none_or(|w| x.speaker == w))
                .collect();
            ts.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
            ts.iter()
                .map(|x| x.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        } else {
            let mut ss: Vec<_> = t
                .segments
                .iter()
                .filter(|s| who.is_none_or(|w| s.speaker == w))
                .collect();
            ss.sort_by(|a, b| a.start.total_cmp(&b.start));
            ss.iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" ")
        }
    };
    let mut f = TranscriptionFigures {
        name: call.name.clone(),
        wer: word_errors(&text_of(None, true), &text_of(None, false)),
        wer_manager: word_errors(
            &text_of(Some(Speaker::Manager), true),
            &text_of(Some(Speaker::Manager), false),
        ),
        wer_client: word_errors(
            &text_of(Some(Speaker::Client), true),
            &text_of(Some(Speaker::Client), false),
        ),
        turns: turns.len(),
        audio_s: call.truth.duration_s,
        diarization_s: t.processing.diarization_s,
        der_frames: der_frames(turns, &t.segments, t.duration_s, 0.0),
        der_collar_frames: der_frames(turns, &t.segments, t.duration_s, 0.25),
        speakers: t
            .speakers
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(","),
        roles_right: roles_right(turns, &t.segments),
        ..Default::default()
    };
    for s in &t.segments {
        let words = super::text::words(&s.text).len();
        let mid = (s.start + s.end) / 2.0;
        let inside: Vec<_> = turns
            .iter()
            .filter(|x| x.start_s <= mid && mid <= x.end_s)
            .collect();
        if inside.is_empty() {
            continue;
        }
        f.attributed += words;
        if inside.iter().any(|x| x.speaker == s.speaker) {
            f.attributed_right += words;
        }
    }
    for turn in turns {
        let onset = t
            .segments
            .iter()
            .filter(|s| {
                s.speaker == turn.speaker
                    && s.start >= turn.start_s - ONSET_SLACK_S
                    && s.start <= turn.end_s
            })
            .map(|s| s.start)
            .min_by(f64::total_cmp);
        match onset {
            Some(start) => f.onsets.push((start - turn.start_s).abs()),
            None => f.turns_missed += 1,
        }
    }
    f
}

/// 10 ms frames of `seconds`.
fn frame(seconds: f64) -> usize {
    (seconds.max(0.0) * 100.0).round() as usize
}

/// (errors, true speech) in 10 ms frames: missed speech, false alarm and confusion, overlap
/// included, leaving out `collar` seconds either side of every true turn's ends. Role-labelled
/// segments count for their role; voices with unknown roles take their best mapping.
pub fn der_frames(
    turns: &[labelled::Turn],
    segments: &[Segment],
    duration: f64,
    collar: f64,
) -> [usize; 2] {
    let end = turns
        .iter()
        .map(|t| t.end_s)
        .chain(segments.iter().map(|s| s.end))
        .fold(duration, f64::max);
    let n = frame(end) + 1;
    let roles = [Speaker::Manager, Speaker::Client];
    let mut truth = vec![[false; 2]; n];
    let mut skip = vec![false; n];
    for t in turns {
        if let Some(r) = roles.iter().position(|&x| x == t.speaker) {
            for f in truth
                .iter_mut()
                .take(frame(t.end_s).min(n))
                .skip(frame(t.start_s))
            {
                f[r] = true;
            }
        }
        if collar > 0.0 {
            for edge in [t.start_s, t.end_s] {
                for f in skip
                    .iter_mut()
                    .take(frame(edge + collar).min(n))
                    .skip(frame(edge - collar))
                {
                    *f = true;
                }
            }
        }
    }
    // The voices with unknown roles, and the ways they can map to the two roles.
    let mut voices: Vec<Speaker> = segments
        .iter()
        .map(|s| s.speaker)
        .filter(|s| s.is_voice())
        .collect();
    voices.sort_by_key(|s| s.as_str());
    voices.dedup();
    let mappings: Vec<Vec<Option<usize>>> = match voices.len() {
        0 => vec![vec![]],
        1 => vec![vec![Some(0)], vec![Some(1)]],
        // More than two voices: the first two take the roles, the rest are errors.
        _ => vec![
            (0..voices.len()).map(|i| (i < 2).then_some(i)).collect(),
            (0..voices.len())
                .map(|i| (i < 2).then_some(1 - i))
                .collect(),
        ],
    };
    let mut best = [usize::MAX, 0];
    for mapping in &mappings {
        // Per frame: which roles the transcript says talk, and how many speakers it names.
        let mut said = vec![[false; 2]; n];
        let mut named = vec![0usize; n];
        for s in segments {
            let role = match roles.iter().position(|&x| x == s.speaker) {
                Some(r) => Some(r),
                None => voices
                    .iter()
                    .position(|&v| v == s.speaker)
                    .and_then(|i| mapping[i]),
            };
            for f in frame(s.start)..frame(s.end).min(n) {
                named[f] += 1;
                if let Some(r) = role {
                    said[f][r] = true;
                }
            }
        }
        let (mut errors, mut total) = (0usize, 0usize);
        for f in 0..n {
            if skip[f] {
                continue;
            }
            let reference = truth[f].iter().filter(|&&x| x).count();
            let right = (0..2).filter(|&r| truth[f][r] && said[f][r]).count();
            total += reference;
            errors += reference.max(named[f].min(2)) - right;
        }
        if errors < best[0] {
            best = [errors, total];
        }
    }
    best
}

/// Whether the roles came out the right way round: the manager's true speech is mostly under
/// `manager` segments and the client's under `client` ones; `None` when the transcript has no
/// manager and client.
fn roles_right(turns: &[labelled::Turn], segments: &[Segment]) -> Option<bool> {
    let has = |r: Speaker| segments.iter().any(|s| s.speaker == r);
    if !has(Speaker::Manager) || !has(Speaker::Client) {
        return None;
    }
    let mut agree = 0.0;
    let mut disagree = 0.0;
    for t in turns {
        for s in segments {
            let overlap = (s.end.min(t.end_s) - s.start.max(t.start_s)).max(0.0);
            if s.speaker == t.speaker {
                agree += overlap;
            } else if s.speaker.other() == Some(t.speaker) {
                disagree += overlap;
            }
        }
    }
    Some(agree > disagree)
}

/// The figures as a terminal table.
fn table(e: &TranscriptionEval) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let _ = writeln!(out, "\nwhisper model {}", e.model);
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>9} {:>8} {:>11} {:>10} {:>9} {:>13} {:>8} {:>7} {:>9} {:>16} {:>8}",
        "call",
        "WER",
        "manager",
        "client",
        "attribution",
        "onset med",
        "onset p90",
        "turns missed",
        "RTF",
        "DER",
        "DER .25s",
        "roles",
        "sep. s"
    );
    for f in &e.calls {
        let roles = match (f.roles_right, f.roles_calls) {
            (Some(true), _) => "right".to_string(),
            (Some(false), _) => "WRONG".to_string(),
            (None, 0) => f.speakers.clone(),
            (None, n) => format!("{} of {n} right", f.roles_right_calls),
        };
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>9} {:>8} {:>11} {:>10} {:>9} {:>13} {:>8} {:>7} {:>9} {:>16} {:>8}",
            f.name,
            pct(f.wer.rate()),
            pct(f.wer_manager.rate()),
            pct(f.wer_client.rate()),
            pct(f.attribution()),
            secs(f.onset_median_s),
            secs(f.onset_p90_s),
            format!("{} of {}", f.turns_missed, f.turns),
            if f.audio_s > 0.0 {
                format!("{:.2}", f.wall_s / f.audio_s)
            } else {
                "-".into()
            },
            pct(f.der),
            pct(f.der_collar),
            roles,
            format!("{:.1}", f.diarization_s)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::labelled::{Truth, Turn};
    use crate::transcript::Segment;

    fn call(turns: Vec<Turn>) -> LabelledCall {
        LabelledCall {
            name: "c".into(),
            recording: PathBuf::from("c.wav"),
            json: PathBuf::from("c.json"),
            truth: Truth {
                file: None,
                language: "en".into(),
                duration_s: 10.0,
                audio: None,
                turns,
                expected_criteria: Default::default(),
                expected_outcome_likelihood: None,
                upload: None,
            },
        }
    }

    fn turn(speaker: Speaker, text: &str, start_s: f64, end_s: f64) -> Turn {
        Turn {
            speaker,
            text: text.into(),
            start_s,
            end_s,
        }
    }

    fn segment(speaker: Speaker, text: &str, start: f64, end: f64) -> Segment {
        Segment {
            speaker,
            start,
            end,
            text: text.into(),
            confidence: 1.0,
            words: vec![],
        }
    }

    #[test]
    fn der_counts_missed_false_and_confused_speech_and_roles_the_wrong_way_round() {
        let turns = vec![
            turn(Speaker::Manager, "a", 0.0, 4.0),
            turn(Speaker::Client, "b", 4.0, 6.0),
        ];
        let rate = |segments: &[Segment], collar| {
            let [e, t] = der_frames(&turns, segments, 6.0, collar);
            e as f64 / t as f64
        };
        let right = [
            segment(Speaker::Manager, "a", 0.0, 4.0),
            segment(Speaker::Client, "b", 4.0, 6.0),
        ];
        assert_eq!(rate(&right, 0.0), 0.0);
        // Roles the wrong way round: all confusion.
        let swapped = [
            segment(Speaker::Client, "a", 0.0, 4.0),
            segment(Speaker::Manager, "b", 4.0, 6.0),
        ];
        assert_eq!(rate(&swapped, 0.0), 1.0);
        // Unknown roles take their best mapping.
        let voices = [
            segment(Speaker::Speaker2, "a", 0.0, 4.0),
            segment(Speaker::Speaker1, "b", 4.0, 6.0),
        ];
        assert_eq!(rate(&voices, 0.0), 0.0);
        // One second of the client missed, half a second of extra speech after the end.
        let late = [
            segment(Speaker::Manager, "a", 0.0, 4.0),
            segment(Speaker::Client, "b", 5.0, 6.5),
        ];
        assert!(
            (rate(&late, 0.0) - 1.5 / 6.0).abs() < 0.01,
            "{}",
            rate(&late, 0.0)
        );
        // A 0.25 s collar forgives boundary slips, not a whole second.
        let slip = [
            segment(Speaker::Manager, "a", 0.0, 4.2),
            segment(Speaker::Client, "b", 4.2, 6.0),
        ];
        assert!(rate(&slip, 0.0) > 0.0);
        assert_eq!(rate(&slip, 0.25), 0.0);
        assert_eq!(roles_right(&turns, &right), Some(true));
        assert_eq!(roles_right(&turns, &swapped), Some(false));
        assert_eq!(roles_right(&turns, &voices), None);
    }

    #[test]
    fn words_given_to_the_wrong_speaker_count_against_both() {
        let c = call(vec![
            turn(Speaker::Manager, "good morning how are you", 0.0, 2.0),
            turn(Speaker::Client, "fine thanks", 2.5, 3.5),
            turn(Speaker::Manager, "great", 6.0, 7.0),
        ]);
        let segments = vec![
            segment(Speaker::Manager, "good morning how are you", 0.3, 2.0),
            // The client's words given to the manager.
            segment(Speaker::Manager, "fine thanks", 2.6, 3.4),
        ];
        let t = Transcript {
            call_id: crate::domain::CallId::new(),
            language: "en".into(),
            model: "test".into(),
            duration_s: 10.0,
            speakers: vec![Speaker::Manager, Speaker::Client],
            metrics: crate::transcript::metrics::compute(
                &segments,
                10.0,
                crate::domain::Language::En,
                &Default::default(),
            ),
            segments,
            processing: Default::default(),
            warnings: vec![],
            created_at: 0,
        };
        let mut f = compare(&c, &t);
        f.finish();
        assert_eq!(f.wer.errors, 1, "one word missed in all: 'great'");
        assert_eq!(
            f.wer_manager.errors, 2,
            "'great' heard as 'fine', 'thanks' inserted"
        );
        assert_eq!(f.wer_client.errors, 2, "'fine thanks' missing");
        assert_eq!((f.attributed_right, f.attributed), (5, 7));
        assert_eq!(f.turns_missed, 2, "the client's turn and 'great'");
        assert_eq!(f.onsets.len(), 1);
        assert!((f.onset_median_s.unwrap() - 0.3).abs() < 1e-9);
    }
}
