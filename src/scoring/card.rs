//! The scorecard of one call: what the API returns and what is stored.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::domain::{CallId, Millis, Speaker};
use crate::rubric::{Level, Rubric};

/// Whether a call was judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ScoreStatus {
    /// Scored against the scorecard.
    Scored,
    /// Too little speech to judge; `reason` says why.
    NotScorable,
}

impl ScoreStatus {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            ScoreStatus::Scored => "scored",
            ScoreStatus::NotScorable => "not_scorable",
        }
    }
}

/// Which scorecard version a score was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RubricRef {
    /// Scorecard id.
    pub id: String,
    /// Its language variant.
    pub language: String,
    /// Version (1, 2, ...).
    pub version: i64,
}

/// The scorecard of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ScoreCard {
    /// The call.
    #[schema(value_type = String)]
    pub call_id: CallId,
    /// Scored or not scorable.
    pub status: ScoreStatus,
    /// Why the call was not scored.
    pub reason: Option<String>,
    /// The scorecard version used.
    pub rubric: RubricRef,
    /// Language of the call and of the texts below.
    pub language: String,
    /// Weighted overall score 0-100, after QA corrections.
    pub overall: Option<f64>,
    /// The overall score as the model answered, before corrections.
    pub model_overall: Option<f64>,
    /// 0-1: the share of applicable criteria whose judgement is backed by verified evidence.
    pub confidence: Option<f64>,
    /// Critical criteria failed (absent): the call is flagged when this is not empty.
    pub critical_failures: Vec<String>,
    /// One entry per criterion of the scorecard, in its order.
    pub criteria: Vec<CriterionScore>,
    /// Feedback for the manager.
    pub coaching: Coaching,
    /// Next-best steps for the deal.
    pub next_steps: Vec<NextStep>,
    /// How the score was produced.
    pub provenance: Option<Provenance>,
    /// When it was scored, Unix milliseconds.
    pub scored_at: Millis,
}

/// The judgement of one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CriterionScore {
    /// Criterion id.
    pub id: String,
    /// Its section.
    pub section: String,
    /// Title in the scorecard's language.
    pub title: String,
    /// Weight in the overall score.
    pub weight: f64,
    /// Whether failing it flags the call.
    pub critical: bool,
    /// Top of its scale.
    pub scale_max: u8,
    /// The model's answer (`null` = not applicable).
    pub answer: Option<u8>,
    /// The level the model's answer means.
    pub level: Level,
    /// Why, in a sentence or two.
    pub rationale: String,
    /// Quotes offered as proof, each checked against the transcript.
    pub evidence: Vec<Evidence>,
    /// True when a quote could not be found in the transcript, a positive judgement has no
    /// verified quote behind it, or the model's text was not an answer: a reviewer should look.
    pub low_confidence: bool,
    /// Why `low_confidence` is set (absent on scores made before reasons were kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_confidence_reason: Option<Doubt>,
    /// Which of the model's texts for this criterion were not answers and were dropped, and
    /// why ("criterion greeting: rationale has no letters"); the texts themselves are not kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<String>,
    /// A QA specialist's correction, if any; the model's answer above stays as it was.
    pub qa: Option<QaCorrection>,
    /// Earlier corrections of this criterion, oldest first (the current one is `qa`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub qa_history: Vec<QaCorrection>,
    /// The level that counts: the correction's if there is one, else the model's.
    pub final_level: Level,
    /// The answer that counts, normalised to 0-1 (`null` = not applicable).
    pub final_value: Option<f64>,
}

impl CriterionScore {
    /// The answer that counts.
    pub fn final_answer(&self) -> Option<u8> {
        match &self.qa {
            Some(qa) => qa.answer,
            None => self.answer,
        }
    }
}

/// Why a criterion's judgement is in doubt, the strongest reason first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Doubt {
    /// The model's rationale or quotes were not text (repetitions, no letters, a field name)
    /// and were dropped; `dropped` says what.
    UnusableText,
    /// A quote the model gave is not in the transcript.
    QuoteNotFound,
    /// A positive judgement with no verified quote behind it.
    NoVerifiedQuote,
}

/// A quote the model gave, and what callgrade found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// The quote as the model gave it.
    pub quote: String,
    /// Whether it is in the transcript (normalised fuzzy match). Unverified quotes are never
    /// proof.
    pub verified: bool,
    /// Who said it (verified quotes only).
    pub speaker: Option<Speaker>,
    /// When, seconds from the start (verified quotes only).
    pub start_s: Option<f64>,
    /// The transcript text it matched.
    pub matched_text: Option<String>,
    /// Match quality 0-1.
    pub similarity: f64,
}

/// A QA specialist's correction of one criterion.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QaCorrection {
    /// The corrected answer (`null` = not applicable).
    pub answer: Option<u8>,
    /// The level it means.
    pub level: Level,
    /// Why.
    pub comment: String,
    /// Who (token name).
    pub by: String,
    /// When, Unix milliseconds.
    pub at: Millis,
}

/// Coaching for the manager.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Coaching {
    /// What went well (two or three).
    pub strengths: Vec<CoachingPoint>,
    /// What to improve (two or three), each with a better phrasing.
    pub improvements: Vec<CoachingPoint>,
}

/// One coaching point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CoachingPoint {
    /// The point.
    pub text: String,
    /// For improvements: what the manager could have said.
    pub better_phrasing: Option<String>,
    /// The moment it refers to, seconds (from a verified quote).
    pub at_s: Option<f64>,
    /// The quote it refers to, when the model gave one.
    pub quote: Option<Evidence>,
}

/// A next-best step for the deal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NextStep {
    /// What to do.
    pub action: String,
    /// Who: `manager`, `client` or `both`.
    pub owner: String,
    /// Days after the call.
    pub due_in_days: Option<u32>,
    /// The date that makes, `YYYY-MM-DD` (from the call's start time).
    pub due_date: Option<String>,
}

/// How a score was produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Provenance {
    /// Model name as configured.
    pub model: String,
    /// Host of the LLM server.
    pub server_host: String,
    /// SHA-256 of the prompt templates used.
    pub prompt_hash: String,
    /// Structured-output mode the server accepted (`json_schema`, `json_object`, `text`).
    pub response_format: String,
    /// Parts the transcript was split into to fit the context.
    pub parts: u32,
    /// Requests made (parts, repairs).
    pub requests: u32,
    /// Answers that needed a repair request.
    pub repairs: u32,
    /// Tokens sent.
    pub prompt_tokens: u64,
    /// Tokens received.
    pub completion_tokens: u64,
    /// Time spent waiting for the LLM, milliseconds.
    pub llm_ms: u64,
    /// Time spent on everything else (prompting, parsing, verifying), milliseconds.
    pub local_ms: u64,
}

impl ScoreCard {
    /// A plain-text summary for the terminal: figures, criteria with their verified
    /// evidence, coaching and next steps.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        if self.status == ScoreStatus::NotScorable {
            let _ = writeln!(
                out,
                "not scorable: {}",
                self.reason.as_deref().unwrap_or("no reason given")
            );
            return out;
        }
        let pct = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
        let _ = writeln!(
            out,
            "overall {} / 100, confidence {}, scorecard {} v{} ({}){}",
            pct(self.overall),
            self.confidence
                .map_or("-".into(), |c| format!("{:.0}%", c * 100.0)),
            self.rubric.id,
            self.rubric.version,
            self.rubric.language,
            if self.critical_failures.is_empty() {
                String::new()
            } else {
                format!("; CRITICAL: {}", self.critical_failures.join(", "))
            }
        );
        for c in &self.criteria {
            let answer = c
                .final_answer()
                .map_or("n/a".into(), |a| format!("{a}/{}", c.scale_max));
            let flag = match (c.low_confidence, c.low_confidence_reason) {
                (false, _) => "",
                (true, Some(Doubt::UnusableText)) => {
                    "  (low confidence: the model's text was not an answer and was dropped)"
                }
                (true, Some(Doubt::QuoteNotFound)) => {
                    "  (low confidence: a quote is not in the call)"
                }
                (true, Some(Doubt::NoVerifiedQuote)) => "  (low confidence: no quote backs it)",
                (true, None) => "  (low confidence)",
            };
            let qa = if c.qa.is_some() {
                "  [QA corrected]"
            } else {
                ""
            };
            let _ = writeln!(
                out,
                "  {:<20} {:<6} {:<5} {}{flag}{qa}",
                c.id,
                c.final_level.as_str(),
                answer,
                c.rationale
            );
            for e in &c.evidence {
                match (e.verified, e.speaker, e.start_s) {
                    (true, Some(who), Some(at)) => {
                        let _ = writeln!(
                            out,
                            "      [{}] {who}: \"{}\"",
                            crate::scoring::prompt::clock(at),
                            e.quote
                        );
                    }
                    _ => {
                        let _ = writeln!(out, "      (not in the transcript) \"{}\"", e.quote);
                    }
                }
            }
        }
        let points = |out: &mut String, title: &str, list: &[CoachingPoint]| {
            if list.is_empty() {
                return;
            }
            let _ = writeln!(out, "{title}");
            for p in list {
                let _ = writeln!(out, "  - {}", p.text);
                if let Some(b) = &p.better_phrasing {
                    let _ = writeln!(out, "    try: \"{b}\"");
                }
            }
        };
        points(&mut out, "strengths", &self.coaching.strengths);
        points(&mut out, "to improve", &self.coaching.improvements);
        if !self.next_steps.is_empty() {
            let _ = writeln!(out, "next steps");
            for s in &self.next_steps {
                let _ = writeln!(
                    out,
                    "  - {} ({}{})",
                    s.action,
                    s.owner,
                    s.due_date
                        .as_deref()
                        .map(|d| format!(", by {d}"))
                        .unwrap_or_default()
                );
            }
        }
        if let Some(p) = &self.provenance {
            let _ = writeln!(
                out,
                "model {} at {}, {} request(s), {} + {} tokens, {:.1} s",
                p.model,
                p.server_host,
                p.requests,
                p.prompt_tokens,
                p.completion_tokens,
                p.llm_ms as f64 / 1000.0
            );
        }
        out
    }

    /// Recomputes what follows from the criteria: final levels and values, the overall scores,
    /// the critical failures and the confidence.
    pub fn recompute(&mut self, rubric: Option<&Rubric>) {
        for c in &mut self.criteria {
            let max = rubric
                .and_then(|r| r.criterion(&c.id))
                .map(|(_, k)| k.max())
                .unwrap_or(c.scale_max)
                .max(1);
            let answer = c.final_answer();
            c.final_level = c.qa.as_ref().map(|q| q.level).unwrap_or(c.level);
            c.final_value = answer.map(|a| f64::from(a.min(max)) / f64::from(max));
        }
        let weighted = |value: &dyn Fn(&CriterionScore) -> Option<f64>| {
            let (sum, weights) = self
                .criteria
                .iter()
                .filter_map(|c| value(c).map(|v| (v * c.weight, c.weight)))
                .fold((0.0, 0.0), |(s, w), (v, cw)| (s + v, w + cw));
            (weights > 0.0).then(|| (sum / weights * 1000.0).round() / 10.0)
        };
        self.overall = weighted(&|c| c.final_value);
        self.model_overall = weighted(&|c| {
            c.answer
                .map(|a| f64::from(a.min(c.scale_max)) / f64::from(c.scale_max.max(1)))
        });
        self.critical_failures = self
            .criteria
            .iter()
            .filter(|c| c.critical && c.final_level == Level::Absent)
            .map(|c| c.id.clone())
            .collect();
        let applicable: Vec<_> = self
            .criteria
            .iter()
            .filter(|c| c.final_level != Level::Na)
            .collect();
        self.confidence = (!applicable.is_empty()).then(|| {
            let trusted = applicable
                .iter()
                .filter(|c| !c.low_confidence || c.qa.is_some())
                .count();
            ((trusted as f64 / applicable.len() as f64) * 100.0).round() / 100.0
        });
    }
}
