//! Scorecards (rubrics): the team's sales standard as data.
//!
//! A scorecard is a TOML file (`rubrics/*.toml`): sections of criteria, each saying what
//! *strong*, *weak* and *absent* look like, its weight, its answer type and whether failing it
//! flags the call. The default standard ships in Russian and English, compiled into the
//! binary; a configured folder adds or overrides scorecards. A scorecard is identified by
//! `(id, language)`; a change to its text makes a new version (see [`crate::store`]), and every
//! score records the version it was made with.

mod set;

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use set::{LoadedRubric, RubricSet, RubricSource};

/// A scorecard that parsed and validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Rubric {
    /// Stable id shared by the language variants, e.g. `sales-standard`.
    pub id: String,
    /// Language of its texts (`ru`, `en`).
    pub language: String,
    /// Title shown to users.
    pub title: String,
    /// What the standard is about.
    #[serde(default)]
    pub description: String,
    /// Sections in call order.
    pub sections: Vec<Section>,
}

/// A group of criteria (greeting, needs discovery, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Section {
    /// Id, unique in the scorecard.
    pub id: String,
    /// Title shown to users.
    pub title: String,
    /// The criteria of this section.
    pub criteria: Vec<Criterion>,
}

/// One thing the manager is judged on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Criterion {
    /// Id, unique in the scorecard and the same in every language variant.
    pub id: String,
    /// Title shown to users.
    pub title: String,
    /// What the criterion asks for.
    pub description: String,
    /// What doing it well looks like.
    pub strong: String,
    /// What a poor attempt looks like.
    pub weak: String,
    /// What not doing it looks like.
    pub absent: String,
    /// Weight in the overall score.
    #[serde(default = "one")]
    pub weight: f64,
    /// How the model answers.
    #[serde(default)]
    pub answer: AnswerType,
    /// Top of the scale for `scale` answers (`yes_no` is always 1).
    #[serde(default = "two")]
    pub scale_max: u8,
    /// Whether "not applicable" is a valid answer.
    #[serde(default)]
    pub na_allowed: bool,
    /// Whether failing it (absent) flags the whole call.
    #[serde(default)]
    pub critical: bool,
}

fn one() -> f64 {
    1.0
}

fn two() -> u8 {
    2
}

/// How a criterion is answered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AnswerType {
    /// 0..=scale_max.
    #[default]
    Scale,
    /// 0 (no) or 1 (yes).
    YesNo,
}

/// How well a criterion was done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Not done at all.
    Absent,
    /// Attempted but poorly.
    Weak,
    /// Done as the standard describes.
    Strong,
    /// Not applicable in this call.
    Na,
}

impl Level {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Absent => "absent",
            Level::Weak => "weak",
            Level::Strong => "strong",
            Level::Na => "na",
        }
    }
}

impl std::str::FromStr for Level {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "absent" => Ok(Level::Absent),
            "weak" => Ok(Level::Weak),
            "strong" => Ok(Level::Strong),
            "na" => Ok(Level::Na),
            other => Err(format!("unknown level {other:?}")),
        }
    }
}

impl Criterion {
    /// The highest answer.
    pub fn max(&self) -> u8 {
        match self.answer {
            AnswerType::Scale => self.scale_max,
            AnswerType::YesNo => 1,
        }
    }

    /// The level an answer means (`None` = not applicable).
    pub fn level(&self, answer: Option<u8>) -> Level {
        match answer {
            None => Level::Na,
            Some(0) => Level::Absent,
            Some(a) if a >= self.max() => Level::Strong,
            Some(_) => Level::Weak,
        }
    }

    /// The answer normalised to 0..1 (`None` = not applicable).
    pub fn value(&self, answer: Option<u8>) -> Option<f64> {
        answer.map(|a| f64::from(a.min(self.max())) / f64::from(self.max()))
    }

    /// Whether `answer` is a valid answer to this criterion.
    pub fn accepts(&self, answer: Option<u8>) -> bool {
        match answer {
            None => self.na_allowed,
            Some(a) => a <= self.max(),
        }
    }
}

/// Why a scorecard file was refused.
#[derive(Debug, thiserror::Error)]
pub enum RubricError {
    /// Not valid TOML or missing fields.
    #[error("scorecard {origin}: {message}")]
    Parse {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// Parsed but inconsistent.
    #[error("scorecard {origin}: {message}")]
    Invalid {
        /// Where it came from.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// The folder could not be read.
    #[error("scorecards folder {path}: {source}")]
    Io {
        /// The folder.
        path: String,
        /// The error.
        source: std::io::Error,
    },
}

impl Rubric {
    /// Parses and validates a scorecard; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, RubricError> {
        let rubric: Rubric = toml::from_str(text).map_err(|e| RubricError::Parse {
            origin: origin.to_string(),
            message: e.message().to_string(),
        })?;
        rubric.validate().map_err(|message| RubricError::Invalid {
            origin: origin.to_string(),
            message,
        })?;
        Ok(rubric)
    }

    fn validate(&self) -> Result<(), String> {
        let id_ok = |id: &str| {
            !id.is_empty()
                && id.len() <= 64
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        if !id_ok(&self.id) {
            return Err(format!(
                "id {:?} must be 1-64 characters of a-z, 0-9, _ and -",
                self.id
            ));
        }
        if !matches!(self.language.as_str(), "ru" | "en") {
            return Err(format!(
                "language {:?} must be \"ru\" or \"en\"",
                self.language
            ));
        }
        if self.sections.is_empty() {
            return Err("it has no sections".into());
        }
        let mut seen = BTreeSet::new();
        for section in &self.sections {
            if !id_ok(&section.id) {
                return Err(format!("section id {:?} is not a valid id", section.id));
            }
            if section.criteria.is_empty() {
                return Err(format!("section {} has no criteria", section.id));
            }
            for c in &section.criteria {
                if !id_ok(&c.id) {
                    return Err(format!("criterion id {:?} is not a valid id", c.id));
                }
                if !seen.insert(c.id.as_str()) {
                    return Err(format!("criterion id {} appears twice", c.id));
                }
                if !(c.weight.is_finite() && c.weight > 0.0) {
                    return Err(format!("criterion {}: weight must be above 0", c.id));
                }
                if c.answer == AnswerType::Scale && !(1..=10).contains(&c.scale_max) {
                    return Err(format!("criterion {}: scale_max must be 1..10", c.id));
                }
                for (name, text) in [
                    ("title", &c.title),
                    ("description", &c.description),
                    ("strong", &c.strong),
                    ("weak", &c.weak),
                    ("absent", &c.absent),
                ] {
                    if text.trim().is_empty() {
                        return Err(format!("criterion {}: {name} is empty", c.id));
                    }
                }
            }
        }
        Ok(())
    }

    /// Every criterion with its section, in order.
    pub fn criteria(&self) -> impl Iterator<Item = (&Section, &Criterion)> {
        self.sections
            .iter()
            .flat_map(|s| s.criteria.iter().map(move |c| (s, c)))
    }

    /// The criterion `id`.
    pub fn criterion(&self, id: &str) -> Option<(&Section, &Criterion)> {
        self.criteria().find(|(_, c)| c.id == id)
    }

    /// SHA-256 of the canonical form: the same content hashes the same however it is laid
    /// out in the file, so reformatting a file does not make a new version.
    pub fn content_hash(&self) -> String {
        let canonical = serde_json::to_vec(self).unwrap_or_default();
        hex::encode(Sha256::digest(canonical))
    }
}

#[cfg(test)]
mod tests;
