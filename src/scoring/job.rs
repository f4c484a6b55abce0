//! The `score` job: transcript -> prompts -> LLM -> validated answer -> verified evidence ->
//! stored scorecard. The call is `done` when it succeeds.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{Datelike, Days};
use tracing::info;

use super::answer::{self, Answer};
use super::card::{
    Coaching, CoachingPoint, CriterionScore, Doubt, NextStep, Provenance, RubricRef, ScoreCard,
    ScoreStatus,
};
use super::evidence;
use super::prompt::{self, CallContext, Prompts};
use super::ScoringConfig;
use crate::domain::{now_millis, to_datetime, Language};
use crate::jobs::{JobContext, JobError, JobHandler};
use crate::llm::{estimate_tokens, json::extract_object, LlmClient, LlmError, ResponseMode};
use crate::pipeline::Stage;
use crate::redact::{redact_off_thread, Kind};
use crate::rubric::{Level, Rubric};
use crate::store::StoredRubric;
use crate::transcript::Transcript;

/// The `score` job handler.
pub struct ScoreJob {
    llm: Arc<LlmClient>,
    prompts: Prompts,
    config: ScoringConfig,
    /// Kinds of personal data taken out before the transcript is sent.
    redact: Vec<Kind>,
}

impl From<LlmError> for JobError {
    fn from(e: LlmError) -> Self {
        // The HTTP layer has already retried what can pass; every LLM error ends the job with
        // its reason, and a user retries the call once the cause is fixed.
        JobError::Fatal(e.to_string())
    }
}

impl ScoreJob {
    /// A handler scoring with `llm`.
    pub fn new(llm: LlmClient, config: ScoringConfig) -> Self {
        Self {
            llm: Arc::new(llm),
            prompts: Prompts::new(),
            config,
            redact: Kind::ALL.to_vec(),
        }
    }

    /// Redacts these kinds (default: all) from what the LLM receives; evidence is verified
    /// against the same redacted text.
    pub fn redacting(mut self, kinds: Vec<Kind>) -> Self {
        self.redact = kinds;
        self
    }

    /// Why a call cannot be judged, if it cannot.
    fn not_scorable(&self, t: &Transcript) -> Option<String> {
        let words: usize = t
            .segments
            .iter()
            .map(|s| s.text.split_whitespace().count())
            .sum();
        let speech = t.processing.speech_s;
        if speech < self.config.min_speech_seconds {
            Some(format!(
                "too short to judge: {speech:.0} s of speech (at least {:.0} s needed)",
                self.config.min_speech_seconds
            ))
        } else if words < self.config.min_words {
            Some(format!(
                "too short to judge: {words} words (at least {} needed)",
                self.config.min_words
            ))
        } else {
            None
        }
    }

    /// Scores `t`, a call that took place on `call_day` (one LLM request per part, plus at
    /// most one repair each).
    pub async fn score(
        &self,
        t: &Transcript,
        call_day: chrono::NaiveDate,
        stored: &StoredRubric,
    ) -> Result<ScoreCard, JobError> {
        let started = Instant::now();
        let (redacted, _) = redact_off_thread(t.clone(), &self.redact).await;
        let t = &redacted;
        let rubric = &stored.rubric;
        let language = match self.config.language {
            Language::Auto => Language::of_code(&t.language),
            given => given,
        };
        let ctx = CallContext {
            rubric,
            version: stored.version,
            duration_s: t.duration_s,
            started_on: Some(call_day.format("%Y-%m-%d").to_string()),
            output_language: language,
            roles_unknown: t.segments.iter().any(|s| s.speaker.is_voice()),
        };
        let system = self.prompts.system(&ctx).map_err(fatal)?;
        let overhead = estimate_tokens(&system)
            + estimate_tokens(&self.prompts.user(&ctx, &[], 1, 2).map_err(fatal)?)
            + u64::from(self.llm.config().max_tokens);
        let budget = u64::from(self.llm.config().context_tokens).saturating_sub(overhead);
        if budget < 200 {
            return Err(JobError::Fatal(format!(
                "llm.context_tokens ({}) leaves no room for the transcript after the scorecard \
                 and llm.max_tokens ({}): raise context_tokens or lower max_tokens",
                self.llm.config().context_tokens,
                self.llm.config().max_tokens
            )));
        }
        let parts = prompt::split(prompt::lines(&t.segments), budget);
        let schema = answer::schema(rubric);
        let mut usage = Provenance {
            model: self.llm.model().to_string(),
            server_host: self.llm.host().to_string(),
            prompt_hash: self.prompts.hash().to_string(),
            response_format: String::new(),
            parts: parts.len() as u32,
            requests: 0,
            repairs: 0,
            prompt_tokens: 0,
            completion_tokens: 0,
            llm_ms: 0,
            local_ms: 0,
        };
        let mut answers = vec![];
        for (i, lines) in parts.iter().enumerate() {
            let user = self
                .prompts
                .user(&ctx, lines, i + 1, parts.len())
                .map_err(fatal)?;
            answers.push(
                self.ask(rubric, &system, &user, &schema, &mut usage)
                    .await?,
            );
        }
        let merged = answer::merge(answers)
            .ok_or_else(|| JobError::Fatal("the transcript has no lines to score".into()))?;
        let mut card = build_card(t, stored, language, merged, call_day);
        usage.local_ms = (started.elapsed().as_millis() as u64).saturating_sub(usage.llm_ms);
        card.provenance = Some(usage);
        Ok(card)
    }

    /// One request, validated; one repair request if the answer is unusable.
    async fn ask(
        &self,
        rubric: &Rubric,
        system: &str,
        user: &str,
        schema: &serde_json::Value,
        usage: &mut Provenance,
    ) -> Result<Answer, JobError> {
        let mut prompt = user.to_string();
        // An answer whose only fault is degenerate text, kept in case the repair is worse.
        let mut first: Option<Answer> = None;
        for attempt in 0..2 {
            let reply = self
                .llm
                .complete_json(system, &prompt, "call_score", schema)
                .await?;
            usage.requests += 1;
            usage.prompt_tokens += reply.prompt_tokens;
            usage.completion_tokens += reply.completion_tokens;
            usage.llm_ms += reply.elapsed.as_millis() as u64;
            usage.response_format = reply.mode.as_str().to_string();
            let parsed = if reply.truncated() {
                Err(format!(
                    "the answer was cut off at the token limit ({} tokens)",
                    self.llm.config().max_tokens
                ))
            } else {
                let value = match reply.mode {
                    ResponseMode::Text => extract_object(&reply.content),
                    _ => serde_json::from_str(reply.content.trim())
                        .ok()
                        .or_else(|| extract_object(&reply.content)),
                };
                match value {
                    Some(v) => answer::parse(&v, rubric),
                    None => Err("the answer is not a JSON object".to_string()),
                }
            };
            let parsed = match parsed {
                Ok(a) if !a.dropped.is_empty() && attempt == 0 => {
                    let problems = format!(
                        "these texts are not answers and were dropped: {}; write real sentences \
                         from the call instead",
                        a.dropped.join("; ")
                    );
                    first = Some(a);
                    Err(problems)
                }
                Ok(a) => return self.usable(Some(a), first),
                Err(_) if attempt == 1 && first.is_some() => return self.usable(None, first),
                other => other,
            };
            match parsed {
                Ok(a) => return Ok(a),
                Err(problems) if attempt == 0 => {
                    tracing::warn!(%problems, "LLM answer refused; asking once more");
                    usage.repairs += 1;
                    let repair = self
                        .prompts
                        .repair(rubric, &problems, reply.truncated())
                        .map_err(fatal)?;
                    let previous: String = reply.content.chars().take(4000).collect();
                    prompt = format!("{user}\n\nYour previous answer:\n{previous}\n\n{repair}");
                }
                Err(problems) => {
                    return Err(JobError::Fatal(format!(
                        "the LLM's answer was invalid twice; nothing was stored: {problems}"
                    )))
                }
            }
        }
        Err(JobError::Fatal("unreachable: no answer".into()))
    }
}

impl ScoreJob {
    /// The repaired answer if it has text left, else the first one if that has; when neither
    /// has, the call fails: levels with nothing but loops around them are not a judgement.
    fn usable(&self, repaired: Option<Answer>, first: Option<Answer>) -> Result<Answer, JobError> {
        let mut tried = vec![];
        for a in [repaired, first].into_iter().flatten() {
            if a.usable() {
                if !a.dropped.is_empty() {
                    tracing::warn!(dropped = %a.dropped.join("; "), "degenerate LLM text dropped");
                }
                return Ok(a);
            }
            tried.extend(a.dropped);
        }
        tried.dedup();
        Err(JobError::Fatal(format!(
            "the model produced no usable text (model {}); nothing was stored: {}",
            self.llm.model(),
            tried.join("; ")
        )))
    }
}

fn fatal(e: impl std::fmt::Display) -> JobError {
    JobError::Fatal(e.to_string())
}

/// The scorecard for `answer`: levels from the scorecard, quotes verified, dates resolved.
fn build_card(
    t: &Transcript,
    stored: &StoredRubric,
    language: Language,
    answer: Answer,
    call_day: chrono::NaiveDate,
) -> ScoreCard {
    let rubric = &stored.rubric;
    let criteria = rubric
        .criteria()
        .zip(answer.criteria)
        .map(|((section, c), a)| {
            let evidence: Vec<_> = a
                .quotes
                .iter()
                .map(|q| evidence::verify(q, &t.segments))
                .collect();
            let level = c.level(a.answer);
            let any_unverified = evidence.iter().any(|e| !e.verified);
            let positive_without_proof = matches!(level, Level::Strong | Level::Weak)
                && !evidence.iter().any(|e| e.verified);
            let doubt = if !a.dropped.is_empty() {
                Some(Doubt::UnusableText)
            } else if any_unverified {
                Some(Doubt::QuoteNotFound)
            } else if positive_without_proof {
                Some(Doubt::NoVerifiedQuote)
            } else {
                None
            };
            CriterionScore {
                id: c.id.clone(),
                section: section.id.clone(),
                title: c.title.clone(),
                weight: c.weight,
                critical: c.critical,
                scale_max: c.max(),
                answer: a.answer,
                level,
                rationale: a.rationale,
                evidence,
                low_confidence: doubt.is_some(),
                low_confidence_reason: doubt,
                dropped: a.dropped,
                qa: None,
                qa_history: Vec::new(),
                final_level: level,
                final_value: c.value(a.answer),
            }
        })
        .collect();
    let point = |p: answer::Point| {
        let quote = p.quote.map(|q| evidence::verify(&q, &t.segments));
        CoachingPoint {
            text: p.text,
            better_phrasing: p.better_phrasing,
            at_s: quote.as_ref().and_then(|q| q.start_s),
            quote,
        }
    };
    let next_steps = answer
        .next_steps
        .into_iter()
        .map(|s| {
            let days = s.due_in_days.map(|d| d.round() as u32);
            NextStep {
                action: s.action,
                owner: s.owner.unwrap_or_else(|| "manager".into()),
                due_in_days: days,
                due_date: days
                    .and_then(|d| call_day.checked_add_days(Days::new(u64::from(d))))
                    .map(|d| format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())),
            }
        })
        .collect();
    let mut card = ScoreCard {
        call_id: t.call_id,
        status: ScoreStatus::Scored,
        reason: None,
        rubric: RubricRef {
            id: rubric.id.clone(),
            language: rubric.language.clone(),
            version: stored.version,
        },
        language: language.as_str().to_string(),
        overall: None,
        model_overall: None,
        confidence: None,
        critical_failures: vec![],
        criteria,
        coaching: Coaching {
            strengths: answer.strengths.into_iter().map(point).collect(),
            improvements: answer.improvements.into_iter().map(point).collect(),
        },
        next_steps,
        provenance: None,
        scored_at: now_millis(),
    };
    card.recompute(Some(rubric));
    card
}

#[async_trait]
impl JobHandler for ScoreJob {
    fn kind(&self) -> &'static str {
        Stage::Score.kind()
    }

    async fn run(&self, ctx: &JobContext) -> Result<(), JobError> {
        let call_id = ctx
            .job
            .call_id
            .ok_or_else(|| JobError::Fatal("score job without a call".into()))?;
        let call = ctx
            .store
            .get_call(call_id)
            .await?
            .ok_or_else(|| JobError::Fatal("the call was deleted".into()))?;
        let t = ctx.store.get_transcript(call_id).await?.ok_or_else(|| {
            JobError::Fatal("the call has no transcript; transcribe it first".into())
        })?;
        let stored = ctx
            .store
            .current_rubric(&self.config.rubric, &t.language)
            .await?
            .ok_or_else(|| {
                JobError::Fatal(format!(
                    "no scorecard {:?} is registered (see scoring.rubric)",
                    self.config.rubric
                ))
            })?;
        if let Some(reason) = self.not_scorable(&t) {
            info!(call = %call_id, %reason, "not scorable");
            let card = ScoreCard {
                call_id,
                status: ScoreStatus::NotScorable,
                reason: Some(reason),
                rubric: RubricRef {
                    id: stored.rubric.id.clone(),
                    language: stored.rubric.language.clone(),
                    version: stored.version,
                },
                language: t.language.clone(),
                overall: None,
                model_overall: None,
                confidence: None,
                critical_failures: vec![],
                criteria: vec![],
                coaching: Coaching::default(),
                next_steps: vec![],
                provenance: None,
                scored_at: now_millis(),
            };
            ctx.store.save_score(&card, ctx.fence.as_ref()).await?;
            return Ok(());
        }
        let call_day = to_datetime(call.call.started_at.unwrap_or(call.created_at)).date_naive();
        let card = tokio::select! {
            card = self.score(&t, call_day, &stored) => card?,
            _ = ctx.cancel.cancelled() => return Err(JobError::Retryable("stopped".into())),
        };
        ctx.store.save_score(&card, ctx.fence.as_ref()).await?;
        info!(
            call = %call_id,
            overall = card.overall,
            confidence = card.confidence,
            critical = card.critical_failures.len(),
            "call scored"
        );
        Ok(())
    }
}
