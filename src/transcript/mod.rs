//! Transcripts: timestamped, per-speaker segments, the speaker turns built from them, and the
//! conversation metrics computed from the turns.
//!
//! A stereo telephony call is transcribed channel by channel; [`merge_channels`] puts the two
//! speakers' segments on one timeline. Everything here is plain data and arithmetic, so it is
//! tested without a speech model.

pub mod format;
pub mod metrics;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{CallId, Millis, Speaker};
use metrics::ConversationMetrics;

/// One recognised word with its time on the recording's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Word {
    /// The word as recognised (with its punctuation).
    pub text: String,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// Recogniser's probability for the word, 0-1.
    pub probability: f32,
}

/// A stretch of one speaker's speech.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Segment {
    /// Who speaks.
    pub speaker: Speaker,
    /// Start, seconds from the beginning of the recording.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// What was said.
    pub text: String,
    /// Mean token probability, 0-1.
    pub confidence: f32,
    /// Words with times (may be empty when the recogniser gave none).
    #[serde(default)]
    pub words: Vec<Word>,
}

impl Segment {
    /// Length in seconds.
    pub fn duration(&self) -> f64 {
        (self.end - self.start).max(0.0)
    }
}

/// A call's stored transcript: what was said, by whom and when, the conversation metrics, and
/// what producing it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Transcript {
    /// The call.
    #[schema(value_type = String)]
    pub call_id: CallId,
    /// Language of the speech: the one given at upload, or the one detected.
    pub language: String,
    /// Speech model that produced it.
    pub model: String,
    /// Length of the recording, seconds.
    pub duration_s: f64,
    /// Speakers by channel: two for stereo telephony, one (`unknown`) for mono.
    pub speakers: Vec<Speaker>,
    /// Segments of all speakers on one timeline, ordered by start.
    pub segments: Vec<Segment>,
    /// Talk share, questions, monologues, interruptions, pace, silence, filler words.
    pub metrics: ConversationMetrics,
    /// Time spent on each step.
    pub processing: Processing,
    /// Non-fatal problems (e.g. a truncated file), for whoever reviews the call.
    pub warnings: Vec<String>,
    /// When it was stored, Unix milliseconds.
    pub created_at: Millis,
}

/// What producing a transcript cost, in wall-clock seconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Processing {
    /// Decoding and resampling (in the child process).
    pub decode_s: f64,
    /// Voice activity detection, all channels.
    pub vad_s: f64,
    /// Speech recognition, all channels.
    pub transcription_s: f64,
    /// Everything, from claiming the job to storing the result.
    pub total_s: f64,
    /// Seconds of speech VAD found (all channels), or the audio length without VAD.
    pub speech_s: f64,
    /// Total time over the recording's length: below 1 is faster than real time.
    pub real_time_factor: f64,
    /// Segments the hallucination guards dropped.
    pub dropped_segments: usize,
    /// CPU threads whisper used.
    pub threads: usize,
    /// Whether VAD was on.
    pub vad: bool,
    /// Separating the voices of a mono recording (0 when it was not separated).
    #[serde(default)]
    pub diarization_s: f64,
    /// How the speakers of a separated mono recording got their roles, e.g. "by rule
    /// (confidence 2.5): speaker_2 said \"меня зовут\"", or why they stayed speaker_1/speaker_2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker_roles: Option<String>,
}

/// Puts the segments of each channel on one timeline, ordered by start (then speaker).
pub fn merge_channels(channels: Vec<Vec<Segment>>) -> Vec<Segment> {
    let mut all: Vec<Segment> = channels.into_iter().flatten().collect();
    all.sort_by(|a, b| {
        a.start
            .total_cmp(&b.start)
            .then_with(|| a.speaker.as_str().cmp(b.speaker.as_str()))
    });
    all
}

/// A speaker turn: consecutive segments of one speaker, not broken by the other speaker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Turn {
    /// Who speaks.
    pub speaker: Speaker,
    /// Start, seconds.
    pub start: f64,
    /// End, seconds.
    pub end: f64,
    /// The turn's text.
    pub text: String,
}

/// Joins a speaker's consecutive segments into turns. A pause longer than `max_pause_s`
/// inside one speaker's speech starts a new turn (a long silence is not one monologue).
pub fn turns(segments: &[Segment], max_pause_s: f64) -> Vec<Turn> {
    let mut out: Vec<Turn> = Vec::new();
    for s in segments {
        if s.text.trim().is_empty() {
            continue;
        }
        match out.last_mut() {
            Some(t) if t.speaker == s.speaker && s.start - t.end <= max_pause_s => {
                t.end = t.end.max(s.end);
                t.text.push(' ');
                t.text.push_str(s.text.trim());
            }
            _ => out.push(Turn {
                speaker: s.speaker,
                start: s.start,
                end: s.end,
                text: s.text.trim().to_string(),
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn seg(speaker: Speaker, start: f64, end: f64, text: &str) -> Segment {
        Segment {
            speaker,
            start,
            end,
            text: text.into(),
            confidence: 0.9,
            words: vec![],
        }
    }

    #[test]
    fn channels_merge_by_time_and_turns_join_one_speakers_segments() {
        let manager = vec![
            seg(Speaker::Manager, 0.5, 2.0, "Hello."),
            seg(Speaker::Manager, 2.3, 4.0, "How are you?"),
        ];
        let client = vec![seg(Speaker::Client, 4.5, 6.0, "Fine.")];
        let merged = merge_channels(vec![manager, client]);
        assert_eq!(
            merged.iter().map(|s| s.start).collect::<Vec<_>>(),
            vec![0.5, 2.3, 4.5]
        );
        let turns = turns(&merged, 1.5);
        assert_eq!(turns.len(), 2);
        assert_eq!(turns[0].text, "Hello. How are you?");
        assert_eq!((turns[0].start, turns[0].end), (0.5, 4.0));
    }

    #[test]
    fn a_long_pause_splits_a_speakers_turn() {
        let s = vec![
            seg(Speaker::Manager, 0.0, 1.0, "One."),
            seg(Speaker::Manager, 5.0, 6.0, "Two."),
        ];
        assert_eq!(turns(&s, 1.5).len(), 2);
    }
}
