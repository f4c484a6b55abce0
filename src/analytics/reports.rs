//! Quality reports for a manager or a team: what the scorecards say over a period, next to the
//! team's figures and the sales KPIs, and the latest coaching points to act on.

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use utoipa::ToSchema;

use super::kpis::{compute, Kpis, Period};
use super::stats::Ratio;
use super::AnalyticsConfig;
use crate::domain::{to_datetime, CallId};
use crate::store::{ConversationTally, KpiScope, QualityTallies, Store, StoreError, Tally, DAY_MS};

/// Scorecards whose coaching a manager report lists.
const RECENT_SCORECARDS: i64 = 5;
/// Criteria named as strongest and as weakest.
const NAMED_CRITERIA: usize = 2;

/// One criterion over the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CriterionStat {
    /// The criterion (e.g. `needs_discovery`).
    pub criterion_id: String,
    /// Mean value 0..1 over the calls where it applied.
    pub average: Option<f64>,
    /// Calls where it was met (strong) / calls where it applied.
    pub met: Ratio,
    /// The team's mean value, for comparison.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team_average: Option<f64>,
}

/// One week of scored calls.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct WeekPoint {
    /// Monday 00:00 UTC.
    pub week_start: chrono::DateTime<chrono::Utc>,
    /// Scored calls.
    pub calls: i64,
    /// Mean overall score.
    pub average_overall: Option<f64>,
}

/// Mean conversation figures.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Conversation {
    /// Transcribed calls measured.
    pub calls: i64,
    /// Manager's share of the talking, 0..1.
    pub talk_share: Option<f64>,
    /// Questions the manager asked per call.
    pub questions_per_call: Option<f64>,
    /// Longest manager monologue per call, seconds.
    pub longest_monologue_s: Option<f64>,
}

impl From<ConversationTally> for Conversation {
    fn from(t: ConversationTally) -> Self {
        let mean = |sum: f64, n: i64| (n > 0).then(|| sum / n as f64);
        Self {
            calls: t.calls,
            talk_share: mean(t.talk_sum, t.talk_n),
            questions_per_call: mean(t.questions_sum, t.calls),
            longest_monologue_s: mean(t.mono_sum, t.mono_n),
        }
    }
}

/// The coaching of one recent scorecard.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[schema(as = RecentCoaching)]
pub struct Coaching {
    /// The call.
    pub call_id: CallId,
    /// When it took place.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Its overall score.
    pub overall: Option<f64>,
    /// What went well.
    pub strengths: Vec<String>,
    /// What to improve, with a better phrasing where the scorer gave one.
    pub improvements: Vec<Improvement>,
    /// Agreed next steps.
    pub next_steps: Vec<NextStep>,
}

/// A coaching point.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Improvement {
    /// What to improve.
    pub text: String,
    /// How it could have been said.
    pub better_phrasing: Option<String>,
}

/// A next step from a scorecard.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[schema(as = RecentNextStep)]
pub struct NextStep {
    /// What to do.
    pub action: String,
    /// Who does it.
    pub owner: Option<String>,
    /// By when (YYYY-MM-DD).
    pub due_date: Option<String>,
}

/// Quality figures of one scope (a manager, a team).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Quality {
    /// Scored calls in the period.
    pub calls_analysed: i64,
    /// Mean overall score (0..100).
    pub average_overall: Option<f64>,
    /// Per criterion, by id.
    pub criteria: Vec<CriterionStat>,
    /// Highest mean value first.
    pub strongest_criteria: Vec<String>,
    /// Lowest mean value first.
    pub weakest_criteria: Vec<String>,
    /// Per week.
    pub weekly_trend: Vec<WeekPoint>,
    /// Conversation figures.
    pub conversation: Conversation,
}

/// `GET /api/v1/managers/{id}/report`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ManagerReport {
    /// The manager.
    pub manager_id: String,
    /// Their team (from managers.csv), if known.
    pub team: Option<String>,
    /// Period start.
    pub from: chrono::DateTime<chrono::Utc>,
    /// Period end (exclusive).
    pub to: chrono::DateTime<chrono::Utc>,
    /// The manager's quality figures (criteria carry the team's average beside them).
    pub quality: Quality,
    /// The team's quality figures for comparison.
    pub team_quality: Option<Quality>,
    /// Coaching of the latest scorecards, newest first.
    pub latest_coaching: Vec<Coaching>,
    /// The manager's sales KPIs.
    pub kpis: Kpis,
}

/// One manager's row of a team report.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TeamManagerRow {
    /// The manager.
    pub manager_id: String,
    /// Their quality figures.
    pub quality: Quality,
    /// Their KPIs.
    pub kpis: Kpis,
}

/// `GET /api/v1/teams/{team}/report`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TeamReport {
    /// The team.
    pub team: String,
    /// Period start.
    pub from: chrono::DateTime<chrono::Utc>,
    /// Period end (exclusive).
    pub to: chrono::DateTime<chrono::Utc>,
    /// The team's quality figures.
    pub quality: Quality,
    /// The team's KPIs.
    pub kpis: Kpis,
    /// One row per manager of the team.
    pub managers: Vec<TeamManagerRow>,
}

/// The quality figures of `scope` over `period`.
pub async fn quality(
    store: &Store,
    scope: &KpiScope,
    period: Period,
) -> Result<Quality, StoreError> {
    let scope = store.resolve_scope(scope).await?;
    let tallies = store
        .quality_tallies(&scope, period.from, period.to)
        .await?;
    Ok(quality_of(tallies))
}

/// The quality figures out of a scope's tallies.
pub fn quality_of(tallies: QualityTallies) -> Quality {
    let criteria: Vec<CriterionStat> = tallies
        .criteria
        .iter()
        .map(|(id, t)| CriterionStat {
            criterion_id: id.clone(),
            average: t.mean(),
            met: Ratio::of(t.met, t.rated),
            team_average: None,
        })
        .collect();
    let mut ranked: Vec<(&str, f64)> = criteria
        .iter()
        .filter_map(|c| c.average.map(|a| (c.criterion_id.as_str(), a)))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
    let strongest = ranked
        .iter()
        .take(NAMED_CRITERIA)
        .map(|(c, _)| c.to_string())
        .collect();
    let weakest = ranked
        .iter()
        .rev()
        .take(NAMED_CRITERIA)
        .map(|(c, _)| c.to_string())
        .collect();
    // Weeks start on Mondays (UTC); 1970-01-05, day 4, was the first Monday after the epoch.
    let mut weeks: std::collections::BTreeMap<i64, Tally> = Default::default();
    let mut summary = Tally::default();
    for (day, t) in &tallies.days {
        weeks.entry((day - 4).div_euclid(7)).or_default().add(*t);
        summary.add(*t);
    }
    let weekly_trend = weeks
        .into_iter()
        .map(|(week, t)| WeekPoint {
            week_start: to_datetime((week * 7 + 4) * DAY_MS),
            calls: t.calls,
            average_overall: t.mean(),
        })
        .collect();
    let conversation = tallies.conversation.into();
    Quality {
        calls_analysed: summary.calls,
        average_overall: summary.mean(),
        criteria,
        strongest_criteria: strongest,
        weakest_criteria: weakest,
        weekly_trend,
        conversation,
    }
}

/// The report of one manager.
pub async fn manager_report(
    store: &Store,
    config: &AnalyticsConfig,
    manager: &str,
    team: Option<String>,
    period: Period,
) -> Result<ManagerReport, StoreError> {
    let scope = KpiScope::Manager(manager.to_string());
    let team_scope = team.clone().map(KpiScope::Team);
    let team_quality = async {
        match &team_scope {
            Some(t) => quality(store, t, period).await.map(Some),
            None => Ok(None),
        }
    };
    let (mut own, team_quality, recent, kpis) = tokio::try_join!(
        quality(store, &scope, period),
        team_quality,
        store.report_recent_scores(&scope, period.from, period.to, RECENT_SCORECARDS),
        compute(store, config, &scope, period),
    )?;
    if let Some(tq) = &team_quality {
        for c in &mut own.criteria {
            c.team_average = tq
                .criteria
                .iter()
                .find(|t| t.criterion_id == c.criterion_id)
                .and_then(|t| t.average);
        }
    }
    let latest_coaching = recent
        .into_iter()
        .map(|r| {
            let doc: Json = serde_json::from_str(&r.document).unwrap_or(Json::Null);
            coaching_of(r.call_id, r.at, r.overall, &doc)
        })
        .collect();
    Ok(ManagerReport {
        manager_id: manager.to_string(),
        team,
        from: to_datetime(period.from),
        to: to_datetime(period.to),
        quality: own,
        team_quality,
        latest_coaching,
        kpis,
    })
}

/// The report of a team, with one row per manager.
pub async fn team_report(
    store: &Store,
    config: &AnalyticsConfig,
    team: &str,
    period: Period,
) -> Result<TeamReport, StoreError> {
    let scope = KpiScope::Team(team.to_string());
    let mut managers = Vec::new();
    for m in store.crm_managers_of(Some(team)).await? {
        let s = KpiScope::Manager(m.clone());
        managers.push(TeamManagerRow {
            quality: quality(store, &s, period).await?,
            kpis: compute(store, config, &s, period).await?,
            manager_id: m,
        });
    }
    Ok(TeamReport {
        team: team.to_string(),
        from: to_datetime(period.from),
        to: to_datetime(period.to),
        quality: quality(store, &scope, period).await?,
        kpis: compute(store, config, &scope, period).await?,
        managers,
    })
}

/// Reads the coaching out of a scorecard document, skipping whatever is not in the expected shape.
fn coaching_of(call_id: CallId, at: i64, overall: Option<f64>, doc: &Json) -> Coaching {
    let items = |path: &[&str]| -> Vec<Json> {
        let mut v = doc;
        for p in path {
            v = &v[*p];
        }
        v.as_array().cloned().unwrap_or_default()
    };
    let text = |v: &Json, key: &str| {
        v[key]
            .as_str()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    Coaching {
        call_id,
        at: to_datetime(at),
        overall,
        strengths: items(&["coaching", "strengths"])
            .iter()
            .filter_map(|s| text(s, "text").or_else(|| s.as_str().map(str::to_string)))
            .collect(),
        improvements: items(&["coaching", "improvements"])
            .iter()
            .filter_map(|i| {
                Some(Improvement {
                    text: text(i, "text")?,
                    better_phrasing: text(i, "better_phrasing"),
                })
            })
            .collect(),
        next_steps: items(&["next_steps"])
            .iter()
            .filter_map(|n| {
                Some(NextStep {
                    action: text(n, "action")?,
                    owner: text(n, "owner"),
                    due_date: text(n, "due_date"),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coaching_is_read_defensively() {
        let doc = serde_json::json!({
            "coaching": {
                "strengths": [{"text": "Warm greeting"}, 7],
                "improvements": [{"text": "Ask about budget", "better_phrasing": "What budget do you have?", "at_s": 12.5}, {"nope": 1}]
            },
            "next_steps": [{"action": "Send proposal", "owner": "manager", "due_date": null}, {"action": ""}]
        });
        let c = coaching_of(CallId::new(), 0, Some(80.0), &doc);
        assert_eq!(c.strengths, ["Warm greeting"]);
        assert_eq!(c.improvements.len(), 1);
        assert_eq!(
            c.improvements[0].better_phrasing.as_deref(),
            Some("What budget do you have?")
        );
        assert_eq!(c.next_steps.len(), 1);
        assert_eq!(c.next_steps[0].due_date, None);
        let empty = coaching_of(CallId::new(), 0, None, &Json::Null);
        assert!(empty.strengths.is_empty() && empty.next_steps.is_empty());
    }
}
