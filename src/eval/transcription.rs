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
use crate::transcript::Transcript;

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
}

impl TranscriptionFigures {
    fn finish(&mut self) {
        self.onset_median_s = median(&self.onsets);
        self.onset_p90_s = percentile(&self.onsets, 0.9);
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
    let calls = labelled::load_dir(&args.dir)?;
    let transcriber = Transcriber::new(&config.transcribe).await?;
    eprintln!(
        "{} labelled calls; transcribing with {}",
        calls.len(),
        config.transcribe.model
    );
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

/// The figures as a terminal table.
fn table(e: &TranscriptionEval) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{:.1}%", v * 100.0));
    let secs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
    let _ = writeln!(out, "\nwhisper model {}", e.model);
    let _ = writeln!(
        out,
        "{:<16} {:>7} {:>9} {:>8} {:>11} {:>10} {:>9} {:>13} {:>8}",
        "call",
        "WER",
        "manager",
        "client",
        "attribution",
        "onset med",
        "onset p90",
        "turns missed",
        "RTF"
    );
    for f in &e.calls {
        let _ = writeln!(
            out,
            "{:<16} {:>7} {:>9} {:>8} {:>11} {:>10} {:>9} {:>13} {:>8}",
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
            }
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
