//! Scoring: a call's transcript judged by an LLM against the team's scorecard.
//!
//! [`job`] runs the `score` stage: fit the transcript into the model's context ([`prompt`]),
//! ask for a JSON answer in the strongest structured form the server supports
//! ([`crate::llm`]), validate it ([`answer`]), dropping text that is not an answer ([`degenerate`]), with one
//! repair request, check every quote
//! against the transcript ([`evidence`]) and store the [`card::ScoreCard`]. QA corrections
//! and calibration against them live in [`calibration`].

pub mod answer;
pub mod calibration;
pub mod card;
pub mod degenerate;
pub mod evidence;
pub mod job;
pub mod prompt;

use serde::{Deserialize, Serialize};

use crate::domain::Language;
use std::path::PathBuf;

/// Scoring settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScoringConfig {
    /// Scorecard id used for new calls.
    pub rubric: String,
    /// Folder of scorecard files that add to or replace the built-in ones; empty: none.
    pub rubrics_dir: PathBuf,
    /// Language of rationales and coaching: `auto` (the call's) or `ru` / `en`.
    pub language: Language,
    /// Calls with less speech than this (seconds, both speakers) are not scored.
    pub min_speech_seconds: f64,
    /// Calls with fewer words than this are not scored.
    pub min_words: usize,
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            rubric: "sales-standard".into(),
            rubrics_dir: PathBuf::new(),
            language: Language::Auto,
            min_speech_seconds: 30.0,
            min_words: 50,
        }
    }
}

impl ScoringConfig {
    /// The scorecard folder, if one is configured.
    pub fn rubrics_dir(&self) -> Option<&std::path::Path> {
        (!self.rubrics_dir.as_os_str().is_empty()).then_some(self.rubrics_dir.as_path())
    }
}
