//! Insights for the head of sales: does call quality go with winning (quality vs outcome), and
//! which managers may need support (attention). Both refuse to conclude from small samples:
//! anything drawn from fewer than `analytics.min_sample` items is marked `insufficient_data`
//! or not flagged at all.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entity::DealStatus;
use super::kpis::{compute_teams, everyone, rows_scope, Kpis, Period};
use super::reports::{quality_of, Quality};
use super::stats::{mean, wilson_95, Ratio};
use super::AnalyticsConfig;
use crate::domain::{to_datetime, CallId};
use crate::store::{KpiKey, KpiScope, QualityTallies, Store, StoreError};

/// Lower bounds of the overall-score bands (0..100); the last band includes 100.
const SCORE_BANDS: [f64; 4] = [0.0, 50.0, 65.0, 80.0];
/// Lowest-scored calls listed as evidence for a manager.
const EVIDENCE_CALLS: i64 = 5;

/// Win rate of the deals whose average call score falls in a band.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ScoreBand {
    /// Lowest average score in the band (inclusive).
    pub min_score: f64,
    /// Upper bound (exclusive, except 100).
    pub max_score: f64,
    /// Won deals / closed deals in the band.
    pub win_rate: Ratio,
    /// Fewer deals than `min_sample`.
    pub insufficient_data: bool,
}

/// Win rate of one group of deals with its 95% Wilson interval.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct GroupWinRate {
    /// Won / closed deals.
    pub win_rate: Ratio,
    /// Lower bound of the 95% Wilson interval.
    pub ci_low: Option<f64>,
    /// Upper bound of the 95% Wilson interval.
    pub ci_high: Option<f64>,
}

impl GroupWinRate {
    fn of(won: i64, deals: i64) -> Self {
        let ci = wilson_95(won, deals);
        Self {
            win_rate: Ratio::of(won, deals),
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
        }
    }
}

/// Win rate when a criterion was met on a deal's calls, and when it was not.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CriterionOutcome {
    /// The criterion.
    pub criterion_id: String,
    /// Deals where it was met on at least half of the calls where it applied.
    pub met: GroupWinRate,
    /// Deals where it was not.
    pub not_met: GroupWinRate,
    /// Win rate when met minus win rate when not (percentage points as a fraction).
    pub lift: Option<f64>,
    /// Either group has fewer deals than `min_sample`: do not read anything into it.
    pub insufficient_data: bool,
}

/// A manager's average call quality beside their win rate.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ManagerOutcome {
    /// The manager.
    pub manager_id: String,
    /// Mean of their deals' average call scores.
    pub average_quality: Option<f64>,
    /// Won / closed deals (those with scored calls).
    pub win_rate: Ratio,
    /// Fewer deals than `min_sample`.
    pub insufficient_data: bool,
}

/// `GET /api/v1/insights/quality-vs-outcome`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct QualityVsOutcome {
    /// Period start (deals closed from).
    pub from: chrono::DateTime<chrono::Utc>,
    /// Period end (exclusive).
    pub to: chrono::DateTime<chrono::Utc>,
    /// Closed deals with scored calls.
    pub deals: i64,
    /// Smallest group a figure is read from.
    pub min_sample: u64,
    /// Win rate by average-score band.
    pub score_bands: Vec<ScoreBand>,
    /// Per criterion.
    pub criteria: Vec<CriterionOutcome>,
    /// Per manager.
    pub managers: Vec<ManagerOutcome>,
}

/// Win rates by call quality over deals closed in the period that have scored calls.
pub async fn quality_vs_outcome(
    store: &Store,
    config: &AnalyticsConfig,
    scope: &KpiScope,
    period: Period,
) -> Result<QualityVsOutcome, StoreError> {
    let min = i64::try_from(config.min_sample).unwrap_or(i64::MAX);
    let scope = &store.resolve_scope(scope).await?;
    // Side by side: each joins the period's closed deals to their quality rows.
    let (deals, deal_criteria) = tokio::try_join!(
        store.insight_deals(scope, period.from, period.to),
        store.insight_criteria(scope, period.from, period.to),
    )?;
    let score_bands = SCORE_BANDS
        .iter()
        .enumerate()
        .map(|(i, &lo)| {
            let hi = SCORE_BANDS.get(i + 1).copied().unwrap_or(100.0);
            let last = i + 1 == SCORE_BANDS.len();
            let in_band: Vec<bool> = deals
                .iter()
                .filter(|d| {
                    d.average_overall
                        .is_some_and(|q| q >= lo && (q < hi || (last && q <= hi)))
                })
                .map(|d| d.status == DealStatus::Won)
                .collect();
            let n = in_band.len() as i64;
            ScoreBand {
                min_score: lo,
                max_score: hi,
                win_rate: Ratio::of(in_band.iter().filter(|w| **w).count() as i64, n),
                insufficient_data: n < min,
            }
        })
        .collect();

    // criterion -> (met deals, met won, not-met deals, not-met won)
    let mut by_criterion: BTreeMap<String, [i64; 4]> = BTreeMap::new();
    for c in deal_criteria {
        let e = by_criterion.entry(c.criterion_id).or_default();
        let offset = if c.met.0 { 0 } else { 2 };
        e[offset] += c.deals;
        if c.status == DealStatus::Won {
            e[offset + 1] += c.deals;
        }
    }
    let criteria = by_criterion
        .into_iter()
        .map(|(criterion_id, [md, mw, nd, nw])| {
            let met = GroupWinRate::of(mw, md);
            let not_met = GroupWinRate::of(nw, nd);
            let lift = match (met.win_rate.value, not_met.win_rate.value) {
                (Some(a), Some(b)) => Some(a - b),
                _ => None,
            };
            CriterionOutcome {
                criterion_id,
                met,
                not_met,
                lift,
                insufficient_data: md < min || nd < min,
            }
        })
        .collect();

    let mut by_manager: BTreeMap<&str, (Vec<f64>, i64, i64)> = BTreeMap::new();
    for d in &deals {
        let e = by_manager.entry(d.manager_id.as_str()).or_default();
        e.0.extend(d.average_overall);
        e.1 += i64::from(d.status == DealStatus::Won);
        e.2 += 1;
    }
    let managers = by_manager
        .into_iter()
        .map(|(m, (scores, won, n))| ManagerOutcome {
            manager_id: m.to_string(),
            average_quality: mean(&scores),
            win_rate: Ratio::of(won, n),
            insufficient_data: n < min,
        })
        .collect();
    Ok(QualityVsOutcome {
        from: to_datetime(period.from),
        to: to_datetime(period.to),
        deals: deals.len() as i64,
        min_sample: config.min_sample,
        score_bands,
        criteria,
        managers,
    })
}

/// What a signal compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// Average overall call score.
    CallQuality,
    /// Win rate.
    WinRate,
    /// Lead-response SLA breach rate (higher is worse).
    SlaBreachRate,
    /// Mean plan attainment.
    PlanAttainment,
}

/// One figure where a manager is well behind the team.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Signal {
    /// What is compared.
    pub kind: SignalKind,
    /// The manager's figure.
    pub manager_value: f64,
    /// The team's figure.
    pub team_value: f64,
    /// How many items the manager's figure rests on (calls, deals, leads or plan rows).
    pub sample: i64,
}

/// A call behind a finding.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct EvidenceCall {
    /// The call.
    pub call_id: CallId,
    /// Its overall score.
    pub overall: f64,
    /// Its URL.
    pub url: String,
    /// Where to start listening, seconds from the start: the first point to improve that the
    /// model tied to a quote, else the first verified quote of a weak or absent criterion.
    pub at_s: Option<f64>,
}

/// A manager who may need support, with the figures behind it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AttentionItem {
    /// The manager.
    pub manager_id: String,
    /// Their team.
    pub team: String,
    /// Where they are well behind the team.
    pub signals: Vec<Signal>,
    /// Their lowest-scored calls in the period, to listen to first.
    pub evidence_calls: Vec<EvidenceCall>,
    /// Criteria to train first (their weakest).
    pub training_focus: Vec<String>,
    /// A suggestion for the person who coaches them; not a verdict.
    pub advice: String,
}

/// `GET /api/v1/insights/attention`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Attention {
    /// Period start.
    pub from: chrono::DateTime<chrono::Utc>,
    /// Period end (exclusive).
    pub to: chrono::DateTime<chrono::Utc>,
    /// Smallest sample a signal is drawn from.
    pub min_sample: u64,
    /// Managers to look at, by team.
    pub managers: Vec<AttentionItem>,
}

fn plan_mean(k: &Kpis) -> (Option<f64>, i64) {
    let values: Vec<f64> = k.plan_attainment.iter().filter_map(|p| p.value).collect();
    (mean(&values), values.len() as i64)
}

/// Signals where `m` is well behind `team`, each only from a large enough sample.
fn signals(config: &AnalyticsConfig, m: (&Quality, &Kpis), team: (&Quality, &Kpis)) -> Vec<Signal> {
    let min = i64::try_from(config.min_sample).unwrap_or(i64::MAX);
    let gap = config.attention_rate_gap;
    let mut out = Vec::new();
    let mut check = |kind, mine: Option<f64>, theirs: Option<f64>, sample: i64, enough: bool| {
        if let (Some(mv), Some(tv)) = (mine, theirs) {
            if enough && worse_by(kind, mv, tv, config.attention_score_gap, gap) {
                out.push(Signal {
                    kind,
                    manager_value: mv,
                    team_value: tv,
                    sample,
                });
            }
        }
    };
    check(
        SignalKind::CallQuality,
        m.0.average_overall,
        team.0.average_overall,
        m.0.calls_analysed,
        m.0.calls_analysed >= min,
    );
    check(
        SignalKind::WinRate,
        m.1.win_rate.value,
        team.1.win_rate.value,
        m.1.win_rate.denominator,
        m.1.win_rate.denominator >= min,
    );
    check(
        SignalKind::SlaBreachRate,
        m.1.sla_breach_rate.ratio.value,
        team.1.sla_breach_rate.ratio.value,
        m.1.sla_breach_rate.ratio.denominator,
        m.1.sla_breach_rate.ratio.denominator >= min,
    );
    let (mp, n) = plan_mean(m.1);
    let (tp, _) = plan_mean(team.1);
    // Plan rows are few by nature (one per metric and month): one is enough to compare.
    check(SignalKind::PlanAttainment, mp, tp, n, n > 0);
    out
}

fn worse_by(kind: SignalKind, mine: f64, team: f64, score_gap: f64, rate_gap: f64) -> bool {
    match kind {
        SignalKind::CallQuality => mine < team - score_gap,
        SignalKind::SlaBreachRate => mine > team + rate_gap,
        SignalKind::WinRate | SignalKind::PlanAttainment => mine < team - rate_gap,
    }
}

fn advice(manager: &str, team: &str, signals: &[Signal], focus: &[String]) -> String {
    let parts: Vec<String> = signals
        .iter()
        .map(|s| match s.kind {
            SignalKind::CallQuality => format!(
                "average call score {:.0} against the team's {:.0} over {} scored calls",
                s.manager_value, s.team_value, s.sample
            ),
            SignalKind::WinRate => format!(
                "win rate {:.0}% against the team's {:.0}% over {} closed deals",
                s.manager_value * 100.0,
                s.team_value * 100.0,
                s.sample
            ),
            SignalKind::SlaBreachRate => format!(
                "{:.0}% of leads answered after the SLA against the team's {:.0}% over {} leads",
                s.manager_value * 100.0,
                s.team_value * 100.0,
                s.sample
            ),
            SignalKind::PlanAttainment => format!(
                "plan attainment {:.0}% against the team's {:.0}%",
                s.manager_value * 100.0,
                s.team_value * 100.0
            ),
        })
        .collect();
    let figures = parts.join("; ");
    let focus = if focus.is_empty() {
        String::new()
    } else {
        format!(
            " A coaching conversation about {} may be a good place to start.",
            focus.join(" and ")
        )
    };
    format!(
        "{manager} may benefit from support: {figures} (team {team}). These figures can have \
         causes outside the calls (lead mix, territory, absence); listening to the calls listed \
         together with {manager} is a better first step than drawing conclusions.{focus}"
    )
}

/// Managers well behind their team on quality or KPIs, per team, with the evidence.
///
/// Every compared manager's figures come from one grouped read (not a dozen reads each), and
/// each team's from one scope read: the dashboard asks for this on every load.
pub async fn attention(
    store: &Store,
    config: &AnalyticsConfig,
    period: Period,
    team: Option<&str>,
) -> Result<Attention, StoreError> {
    // Teams in order, each with its managers in order of id.
    let mut teams: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for m in store.crm_manager_directory().await? {
        if let Some(team) = m.team {
            teams.entry(team).or_default().push(m.manager_id);
        }
    }
    // A team of one has nobody to be compared with.
    teams.retain(|t, members| members.len() >= 2 && team.is_none_or(|only| only == t));
    // Everyone's rows when the whole company is compared: the company's KPIs read the same.
    let compared = rows_scope(store, &everyone(&teams)).await?;
    let mut tallies = store
        .quality_tallies_by(&compared, KpiKey::Manager, period.from, period.to)
        .await?;
    let (team_kpis, mut own_kpis) = compute_teams(store, config, &teams, &tallies, period).await?;
    let mut managers = Vec::new();
    for (team, members) in &teams {
        let mut team_tallies = QualityTallies::default();
        for m in members {
            if let Some(t) = tallies.get(&Some(m.clone())) {
                team_tallies.add(t);
            }
        }
        let team_quality = &quality_of(team_tallies);
        let Some(team_kpis) = team_kpis.get(team) else {
            continue;
        };
        for m in members {
            let mq = quality_of(tallies.remove(&Some(m.clone())).unwrap_or_default());
            let Some(mk) = own_kpis.remove(m) else {
                continue;
            };
            let found = signals(config, (&mq, &mk), (team_quality, team_kpis));
            if found.is_empty() {
                continue;
            }
            let training_focus = mq.weakest_criteria.clone();
            managers.push(AttentionItem {
                advice: advice(m, team, &found, &training_focus),
                manager_id: m.clone(),
                team: team.clone(),
                signals: found,
                evidence_calls: Vec::new(),
                training_focus,
            });
        }
    }
    // The evidence of every flagged manager in one read.
    let flagged: Vec<String> = managers.iter().map(|a| a.manager_id.clone()).collect();
    let mut lowest = store
        .lowest_scored_calls(&flagged, period.from, period.to, EVIDENCE_CALLS)
        .await?;
    for item in &mut managers {
        item.evidence_calls = lowest
            .remove(&item.manager_id)
            .unwrap_or_default()
            .into_iter()
            .map(|c| EvidenceCall {
                url: format!("/api/v1/calls/{}", c.call_id),
                call_id: c.call_id,
                overall: c.overall,
                at_s: c.at_s,
            })
            .collect();
    }
    Ok(Attention {
        from: to_datetime(period.from),
        to: to_datetime(period.to),
        min_sample: config.min_sample,
        managers,
    })
}
