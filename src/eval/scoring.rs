//! `callgrade eval scoring DIR`: the real pipeline on labelled calls, the model's levels
//! against the labels.
//!
//! Levels are compared on one ordinal scale (absent 0, weak 1, strong 2; not applicable
//! apart), so every criterion reads alike whatever its answer scale. The expected overall
//! score is the labels' levels weighted as the scorecard weights them (absent 0, weak half,
//! strong full); the predicted outcome is the model's overall score in bands
//! ([`Likelihood::from_score`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::labelled::{self, LabelledCall, Likelihood};
use super::{write_json, Transcriber};
use crate::analytics::stats::pearson;
use crate::config::Config;
use crate::domain::CallId;
use crate::llm::LlmClient;
use crate::rubric::{Level, Rubric, RubricSet};
use crate::scoring::calibration::{agreement, Agreement, Pair};
use crate::scoring::card::ScoreCard;
use crate::scoring::job::ScoreJob;
use crate::store::StoredRubric;
use crate::transcript::Transcript;

/// Options of `callgrade eval scoring`.
#[derive(Debug, Args)]
pub struct EvalScoringArgs {
    /// Folder of recordings with a labelled `NAME.json` beside each (see `samples/calls`).
    pub dir: PathBuf,
    /// Scorecard id (default: `scoring.rubric`).
    #[arg(long)]
    pub rubric: Option<String>,
    /// Score the labelled turns instead of transcribing: the scorer alone, without speech
    /// recognition's errors.
    #[arg(long)]
    pub labelled_turns: bool,
    /// Also write the figures as JSON to this file (`-`: standard output).
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// The figures of one run.
#[derive(Debug, Serialize)]
pub struct ScoringEval {
    /// The LLM.
    pub model: String,
    /// Scorecard id.
    pub rubric: String,
    /// `whisper:<model>` or `labelled turns`.
    pub transcripts: String,
    /// Per criterion, the model against the labels, in the shape of the QA calibration.
    pub criteria: Vec<Agreement>,
    /// Overall score against the labels' weighted levels.
    pub overall: OverallAgreement,
    /// Predicted against labelled outcome.
    pub outcome: OutcomeAgreement,
    /// What it cost.
    pub cost: Cost,
    /// Each call.
    pub calls: Vec<CallEval>,
}

/// Overall scores against the labels.
#[derive(Debug, Serialize)]
pub struct OverallAgreement {
    /// Scored calls with labels.
    pub pairs: usize,
    /// Pearson's r (`null` under three calls or without spread).
    pub pearson_r: Option<f64>,
    /// Mean absolute difference, points of 100.
    pub mean_abs_diff: Option<f64>,
}

/// Outcomes against the labels.
#[derive(Debug, Serialize)]
pub struct OutcomeAgreement {
    /// Scored calls with a labelled outcome.
    pub pairs: usize,
    /// Of those, predicted right.
    pub exact: usize,
    /// Share right.
    pub exact_rate: Option<f64>,
    /// `confusion[labelled][predicted]` over low, medium, high.
    pub confusion: Vec<Vec<usize>>,
}

/// Tokens and time.
#[derive(Debug, Default, Serialize)]
pub struct Cost {
    /// Calls run.
    pub calls: usize,
    /// Calls whose scoring failed (not in the agreement figures).
    pub failed: usize,
    /// Minutes of audio.
    pub audio_minutes: f64,
    /// Seconds transcribing.
    pub transcription_s: f64,
    /// Seconds waiting for the LLM.
    pub llm_s: f64,
    /// Tokens sent.
    pub prompt_tokens: u64,
    /// Tokens received.
    pub completion_tokens: u64,
    /// Repair requests.
    pub repairs: u32,
}

/// One call's result.
#[derive(Debug, Serialize)]
pub struct CallEval {
    /// The labelled file's name.
    pub name: String,
    /// Per criterion: (label, model) levels.
    pub levels: BTreeMap<String, (Level, Option<Level>)>,
    /// The labels' weighted overall.
    pub expected_overall: Option<f64>,
    /// The model's overall.
    pub overall: Option<f64>,
    /// Labelled outcome.
    pub expected_outcome: Option<Likelihood>,
    /// Predicted outcome.
    pub predicted_outcome: Option<Likelihood>,
    /// Why scoring failed, if it did.
    pub failure: Option<String>,
}

/// Runs the evaluation and prints its table.
pub async fn run(args: EvalScoringArgs, config: &Config) -> anyhow::Result<()> {
    let calls = labelled::load_dir(&args.dir)?;
    let llm = LlmClient::new(&config.llm).context(
        "scoring needs an LLM: set CALLGRADE_LLM_BASE_URL and CALLGRADE_LLM_MODEL \
         (scripts/llm-server.sh start runs a small local one)",
    )?;
    let model = llm.model().to_string();
    let rubric_id = args
        .rubric
        .clone()
        .unwrap_or_else(|| config.scoring.rubric.clone());
    let job = ScoreJob::new(llm, config.scoring.clone()).redacting(config.redaction.kinds.clone());
    let rubrics = RubricSet::load(config.scoring.rubrics_dir())?;
    let transcriber = if args.labelled_turns {
        None
    } else {
        Some(Transcriber::new(&config.transcribe).await?)
    };
    eprintln!(
        "{} labelled calls; scoring with {model} against {rubric_id}, transcripts from {}",
        calls.len(),
        if args.labelled_turns {
            "the labelled turns".to_string()
        } else {
            format!("whisper {}", config.transcribe.model)
        }
    );
    let mut cost = Cost::default();
    let mut results = vec![];
    let mut pairs: BTreeMap<String, Vec<Pair>> = BTreeMap::new();
    for call in &calls {
        let started = Instant::now();
        let transcript = match &transcriber {
            Some(t) => t.transcribe(call).await?,
            None => truth_transcript(call)?,
        };
        if transcriber.is_some() {
            cost.transcription_s += started.elapsed().as_secs_f64();
        }
        cost.calls += 1;
        cost.audio_minutes += call.truth.duration_s / 60.0;
        let loaded = rubrics
            .get_or_any_language(&rubric_id, &transcript.language)
            .with_context(|| format!("no scorecard {rubric_id}"))?;
        let stored = StoredRubric::unregistered(loaded);
        let day = chrono::Utc::now().date_naive();
        let scored = job.score(&transcript, day, &stored).await;
        let mut result = compare(call, &stored.rubric, scored.as_ref().ok());
        match scored {
            Ok(card) => {
                if let Some(p) = &card.provenance {
                    cost.llm_s += p.llm_ms as f64 / 1000.0;
                    cost.prompt_tokens += p.prompt_tokens;
                    cost.completion_tokens += p.completion_tokens;
                    cost.repairs += p.repairs;
                }
                for (id, (label, model)) in &result.levels {
                    pairs.entry(id.clone()).or_default().push(Pair {
                        scale_max: 2,
                        model: model.and_then(ordinal),
                        qa: ordinal(*label),
                    });
                }
            }
            Err(e) => {
                cost.failed += 1;
                eprintln!("{}: scoring failed: {e}", call.name);
                result.failure = Some(e.to_string());
            }
        }
        results.push(result);
        eprintln!(
            "{}: done in {:.0} s",
            call.name,
            started.elapsed().as_secs_f64()
        );
    }
    let eval = summarise(
        model,
        rubric_id,
        if args.labelled_turns {
            "labelled turns".into()
        } else {
            format!("whisper:{}", config.transcribe.model)
        },
        pairs,
        cost,
        results,
    );
    print!("{}", table(&eval));
    if let Some(path) = &args.json {
        write_json(path, &eval)?;
    }
    Ok(())
}

/// A transcript of the labelled turns.
fn truth_transcript(call: &LabelledCall) -> anyhow::Result<Transcript> {
    let text = std::fs::read_to_string(&call.json)
        .with_context(|| format!("cannot read {}", call.json.display()))?;
    crate::bench::score::transcript_from_truth(CallId::new(), &text)
}

/// Levels on one ordinal scale: absent 0, weak 1, strong 2; not applicable has none.
fn ordinal(level: Level) -> Option<u8> {
    match level {
        Level::Absent => Some(0),
        Level::Weak => Some(1),
        Level::Strong => Some(2),
        Level::Na => None,
    }
}

/// The labels' overall: their levels weighted as the scorecard weights the criteria.
fn expected_overall(rubric: &Rubric, labels: &BTreeMap<String, Level>) -> Option<f64> {
    let (mut sum, mut weights) = (0.0, 0.0);
    for (_, c) in rubric.criteria() {
        let Some(v) = labels.get(&c.id).copied().and_then(ordinal) else {
            continue;
        };
        sum += f64::from(v) / 2.0 * c.weight;
        weights += c.weight;
    }
    (weights > 0.0).then(|| (sum / weights * 1000.0).round() / 10.0)
}

/// One call's labels beside the model's card (`None` when scoring failed).
fn compare(call: &LabelledCall, rubric: &Rubric, card: Option<&ScoreCard>) -> CallEval {
    let labels = &call.truth.expected_criteria;
    let levels = labels
        .iter()
        .filter(|(id, _)| rubric.criterion(id).is_some())
        .map(|(id, label)| {
            let model = card
                .and_then(|c| c.criteria.iter().find(|x| &x.id == id))
                .map(|x| x.final_level);
            (id.clone(), (*label, model))
        })
        .collect();
    let overall = card.and_then(|c| c.overall);
    CallEval {
        name: call.name.clone(),
        levels,
        expected_overall: expected_overall(rubric, labels),
        overall,
        expected_outcome: call.truth.expected_outcome_likelihood,
        predicted_outcome: overall.map(Likelihood::from_score),
        failure: None,
    }
}

fn summarise(
    model: String,
    rubric: String,
    transcripts: String,
    pairs: BTreeMap<String, Vec<Pair>>,
    cost: Cost,
    calls: Vec<CallEval>,
) -> ScoringEval {
    let criteria = pairs.iter().map(|(id, p)| agreement(id, p)).collect();
    let overall_pairs: Vec<(f64, f64)> = calls
        .iter()
        .filter_map(|c| Some((c.expected_overall?, c.overall?)))
        .collect();
    let overall = OverallAgreement {
        pairs: overall_pairs.len(),
        pearson_r: pearson(&overall_pairs).map(|r| (r * 1000.0).round() / 1000.0),
        mean_abs_diff: crate::analytics::stats::mean(
            &overall_pairs
                .iter()
                .map(|(e, m)| (e - m).abs())
                .collect::<Vec<_>>(),
        ),
    };
    let outcomes: Vec<(Likelihood, Likelihood)> = calls
        .iter()
        .filter_map(|c| Some((c.expected_outcome?, c.predicted_outcome?)))
        .collect();
    let mut confusion = vec![vec![0usize; 3]; 3];
    for (e, p) in &outcomes {
        confusion[*e as usize][*p as usize] += 1;
    }
    let exact = outcomes.iter().filter(|(e, p)| e == p).count();
    let outcome = OutcomeAgreement {
        pairs: outcomes.len(),
        exact,
        exact_rate: (!outcomes.is_empty()).then(|| exact as f64 / outcomes.len() as f64),
        confusion,
    };
    ScoringEval {
        model,
        rubric,
        transcripts,
        criteria,
        overall,
        outcome,
        cost,
        calls,
    }
}

/// The figures as a terminal table.
fn table(e: &ScoringEval) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
    let _ = writeln!(
        out,
        "\nmodel {} · scorecard {} · transcripts: {}",
        e.model, e.rubric, e.transcripts
    );
    let _ = writeln!(
        out,
        "{:<20} {:>5} {:>7} {:>9} {:>8}   confusion (rows: label absent/weak/strong; columns: model)",
        "criterion", "pairs", "exact", "within 1", "kappa"
    );
    for a in &e.criteria {
        let rows: Vec<String> = a
            .confusion
            .iter()
            .map(|r| {
                r.iter()
                    .map(|n| n.to_string())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let _ = writeln!(
            out,
            "{:<20} {:>5} {:>7} {:>9} {:>8}   [{}]{}",
            a.criterion,
            a.pairs,
            opt(a.exact_rate, 2),
            opt(a.within_one_rate, 2),
            opt(a.weighted_kappa, 3),
            rows.join(" | "),
            if a.na_disagreements > 0 {
                format!("  n/a disagreements {}", a.na_disagreements)
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        out,
        "overall score: r = {} over {} calls, mean |difference| {} points",
        opt(e.overall.pearson_r, 3),
        e.overall.pairs,
        opt(e.overall.mean_abs_diff, 1)
    );
    let _ = writeln!(
        out,
        "outcome (score bands <50 low, <75 medium, else high): {} of {} right ({})",
        e.outcome.exact,
        e.outcome.pairs,
        opt(e.outcome.exact_rate, 2)
    );
    let c = &e.cost;
    let _ = writeln!(
        out,
        "cost: {} calls ({} failed), {:.1} audio minutes; transcription {:.0} s; LLM {:.0} s, \
         {} prompt + {} completion tokens, {} repairs",
        c.calls,
        c.failed,
        c.audio_minutes,
        c.transcription_s,
        c.llm_s,
        c.prompt_tokens,
        c.completion_tokens,
        c.repairs
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rubric() -> Rubric {
        RubricSet::builtin()
            .get("sales-standard", "en")
            .expect("builtin")
            .rubric
            .clone()
    }

    #[test]
    fn the_expected_overall_weighs_levels_as_the_scorecard_does() {
        let all_strong: BTreeMap<String, Level> = rubric()
            .criteria()
            .map(|(_, c)| (c.id.clone(), Level::Strong))
            .collect();
        assert_eq!(expected_overall(&rubric(), &all_strong), Some(100.0));
        let mut mixed = all_strong.clone();
        for v in mixed.values_mut() {
            *v = Level::Weak;
        }
        assert_eq!(expected_overall(&rubric(), &mixed), Some(50.0));
        assert_eq!(expected_overall(&rubric(), &BTreeMap::new()), None);
    }

    #[test]
    fn a_summary_counts_levels_outcomes_and_overall() {
        let call = |name: &str, label: Level, model: Level, e: f64, m: f64| CallEval {
            name: name.into(),
            levels: [("greeting".to_string(), (label, Some(model)))].into(),
            expected_overall: Some(e),
            overall: Some(m),
            expected_outcome: Some(Likelihood::from_score(e)),
            predicted_outcome: Some(Likelihood::from_score(m)),
            failure: None,
        };
        let calls = vec![
            call("a", Level::Strong, Level::Strong, 90.0, 85.0),
            call("b", Level::Absent, Level::Weak, 20.0, 55.0),
            call("c", Level::Weak, Level::Weak, 50.0, 60.0),
        ];
        let mut pairs: BTreeMap<String, Vec<Pair>> = BTreeMap::new();
        for c in &calls {
            let (label, model) = c.levels["greeting"];
            pairs.entry("greeting".into()).or_default().push(Pair {
                scale_max: 2,
                model: model.and_then(ordinal),
                qa: ordinal(label),
            });
        }
        let e = summarise(
            "m".into(),
            "r".into(),
            "t".into(),
            pairs,
            Cost::default(),
            calls,
        );
        let g = &e.criteria[0];
        assert_eq!((g.pairs, g.exact, g.within_one), (3, 2, 3));
        assert_eq!(
            g.confusion,
            vec![vec![0, 1, 0], vec![0, 1, 0], vec![0, 0, 1]]
        );
        assert_eq!(e.outcome.pairs, 3);
        assert_eq!(e.outcome.exact, 2, "b: low labelled, medium predicted");
        assert!(e.overall.pearson_r.unwrap() > 0.9);
        assert!(table(&e).contains("greeting"));
    }
}
