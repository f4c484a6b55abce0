//! A folder of labelled calls: `NAME.json` beside each recording, in the format of
//! `samples/calls/` (documented in `samples/calls/README.md`). Only these fields are read:
//!
//! - `language` (`ru`, `en`), `duration_s`;
//! - `file`: the recording beside the JSON (default: `NAME` with an audio extension);
//! - `audio.channel_map`: `{"left": "manager", "right": "client"}` (default: that);
//! - `turns`: `[{"speaker", "text", "start_s", "end_s"}]`, the truth for transcription;
//! - `expected_criteria`: `{"greeting": "strong", ...}` (`strong`, `weak`, `absent`, `na`);
//! - `expected_outcome_likelihood`: `low`, `medium` or `high` (optional).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use serde::{Deserialize, Serialize};

use crate::domain::{ChannelMap, Language, Speaker};
use crate::rubric::Level;

/// Extensions tried for a recording when the JSON names none.
const AUDIO: [&str; 7] = ["mp3", "wav", "flac", "ogg", "opus", "m4a", "webm"];

/// One labelled call.
#[derive(Debug, Clone)]
pub struct LabelledCall {
    /// The JSON file's stem.
    pub name: String,
    /// The recording.
    pub recording: PathBuf,
    /// The labels' file.
    pub json: PathBuf,
    /// What the labeller wrote.
    pub truth: Truth,
}

/// The labels of one call.
#[derive(Debug, Clone, Deserialize)]
pub struct Truth {
    /// Recording file name, beside the JSON.
    #[serde(default)]
    pub file: Option<String>,
    /// `ru` or `en`.
    pub language: String,
    /// Length of the recording, seconds.
    pub duration_s: f64,
    /// Channel layout.
    #[serde(default)]
    pub audio: Option<AudioInfo>,
    /// True turns.
    #[serde(default)]
    pub turns: Vec<Turn>,
    /// Expected level per criterion id.
    #[serde(default)]
    pub expected_criteria: BTreeMap<String, Level>,
    /// Expected outcome.
    #[serde(default)]
    pub expected_outcome_likelihood: Option<Likelihood>,
    /// The upload's fields.
    #[serde(default)]
    pub upload: Option<UploadInfo>,
}

/// What the call was uploaded with.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadInfo {
    /// Who called whom.
    #[serde(default)]
    pub direction: Option<crate::domain::Direction>,
}

/// The recording's layout.
#[derive(Debug, Clone, Deserialize)]
pub struct AudioInfo {
    /// Which speaker is on which channel.
    #[serde(default)]
    pub channel_map: Option<BTreeMap<String, Speaker>>,
}

/// One true turn.
#[derive(Debug, Clone, Deserialize)]
pub struct Turn {
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Start, seconds.
    pub start_s: f64,
    /// End, seconds.
    pub end_s: f64,
}

/// How likely the deal is to move on after the call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Likelihood {
    /// Unlikely.
    Low,
    /// Could go either way.
    Medium,
    /// Likely.
    High,
}

impl Likelihood {
    /// The outcome an overall call score predicts: under 50 low, under 75 medium, else high
    /// (the bands a QA lead reads a score by; the scorecard itself predicts no outcome).
    pub fn from_score(overall: f64) -> Self {
        if overall < 50.0 {
            Likelihood::Low
        } else if overall < 75.0 {
            Likelihood::Medium
        } else {
            Likelihood::High
        }
    }

    /// The text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Likelihood::Low => "low",
            Likelihood::Medium => "medium",
            Likelihood::High => "high",
        }
    }
}

impl LabelledCall {
    /// The call's language as the pipeline takes it.
    pub fn language(&self) -> Language {
        Language::of_code(&self.truth.language)
    }

    /// The call's direction, when its labels give one.
    pub fn direction(&self) -> Option<crate::domain::Direction> {
        self.truth.upload.as_ref().and_then(|u| u.direction)
    }

    /// The channel layout (left then right).
    pub fn channels(&self) -> anyhow::Result<ChannelMap> {
        let Some(map) = self
            .truth
            .audio
            .as_ref()
            .and_then(|a| a.channel_map.as_ref())
        else {
            return Ok(ChannelMap::default());
        };
        let names: Vec<&str> = ["left", "right"]
            .iter()
            .filter_map(|side| map.get(*side).map(|s| s.as_str()))
            .collect();
        ChannelMap::parse(&names.join(","))
            .map_err(|e| anyhow::anyhow!("{}: audio.channel_map: {e}", self.name))
    }
}

/// Every labelled call in `dir` (sorted by name). A JSON without a recording beside it, or one
/// that does not parse, is an error naming the file: a silently skipped call would change the
/// figures.
pub fn load_dir(dir: &Path) -> anyhow::Result<Vec<LabelledCall>> {
    let mut jsons: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    jsons.sort();
    let mut calls = vec![];
    for json in jsons {
        let name = json
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        let text = std::fs::read_to_string(&json)
            .with_context(|| format!("cannot read {}", json.display()))?;
        let truth: Truth = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a labelled call", json.display()))?;
        let recording = match &truth.file {
            Some(file) => dir.join(file),
            None => AUDIO
                .iter()
                .map(|ext| dir.join(format!("{name}.{ext}")))
                .find(|p| p.exists())
                .unwrap_or_else(|| dir.join(format!("{name}.mp3"))),
        };
        if !recording.exists() {
            bail!(
                "{}: its recording {} is not there",
                json.display(),
                recording.display()
            );
        }
        calls.push(LabelledCall {
            name,
            recording,
            json,
            truth,
        });
    }
    if calls.is_empty() {
        bail!(
            "no labelled calls (NAME.json beside each recording) in {}",
            dir.display()
        );
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_calls_load_with_their_labels() {
        let calls = load_dir(Path::new("samples/calls")).expect("samples");
        assert_eq!(calls.len(), 6);
        let first = &calls[0];
        assert_eq!(first.name, "pub01_ru");
        assert!(first.recording.ends_with("pub01_ru.mp3"));
        assert_eq!(first.language(), Language::Ru);
        assert_eq!(first.channels().unwrap(), ChannelMap::default());
        assert_eq!(first.truth.expected_criteria["greeting"], Level::Strong);
        assert!(first.truth.expected_outcome_likelihood.is_some());
        assert!(!first.truth.turns.is_empty());
    }

    #[test]
    fn a_label_without_its_recording_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("x.json"),
            r#"{"language": "en", "duration_s": 1.0}"#,
        )
        .unwrap();
        let err = load_dir(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("x.json") && err.contains("is not there"),
            "{err}"
        );
    }

    #[test]
    fn scores_map_to_outcomes_by_band() {
        assert_eq!(Likelihood::from_score(49.9), Likelihood::Low);
        assert_eq!(Likelihood::from_score(50.0), Likelihood::Medium);
        assert_eq!(Likelihood::from_score(75.0), Likelihood::High);
    }
}
