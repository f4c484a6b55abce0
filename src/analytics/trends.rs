//! Weekly trends of call quality and win rate for the dashboards: per team across the company,
//! or per manager within a team, beside the scope's own line. Weeks run Monday 00:00 UTC to
//! Monday; scores come from the daily rollups (whole days only, so exact), win rates from the
//! deals closed in each week.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::stats::Ratio;
use crate::domain::to_datetime;
use crate::store::{KpiScope, Store, StoreError, Tally, DAY_MS};

const WEEK_MS: i64 = 7 * DAY_MS;
/// 1970-01-05, the first Monday after the epoch, as days.
const FIRST_MONDAY: i64 = 4;

/// A group's weeks: the score tally and (won, closed) of each.
type Weekly = (Vec<Tally>, Vec<(i64, i64)>);

/// One line of a trend chart.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TrendSeries {
    /// A team (across the company) or a manager (within a team); null for the scope itself.
    pub group: Option<String>,
    /// Scored calls per week.
    pub calls: Vec<i64>,
    /// Mean overall score per week (null without scored calls).
    pub average_score: Vec<Option<f64>>,
    /// Deals won / closed per week.
    pub win_rate: Vec<Ratio>,
}

/// `GET /api/v1/trends`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Trends {
    /// Monday 00:00 UTC of each week, oldest first.
    pub weeks: Vec<chrono::DateTime<chrono::Utc>>,
    /// The team asked for (null: the company).
    pub team: Option<String>,
    /// The scope's own line first, then one per team (company) or manager (team).
    pub series: Vec<TrendSeries>,
}

/// The Monday 00:00 UTC on or before `ms`.
pub fn week_start(ms: i64) -> i64 {
    let day = ms.div_euclid(DAY_MS);
    (day - (day - FIRST_MONDAY).rem_euclid(7)) * DAY_MS
}

/// The `weeks` weeks up to the one holding `last_ms`, per team (no `team`) or per manager of
/// `team`.
pub async fn trends(
    store: &Store,
    team: Option<&str>,
    last_ms: i64,
    weeks: usize,
) -> Result<Trends, StoreError> {
    let weeks = weeks.clamp(1, 104);
    let end = week_start(last_ms) + WEEK_MS;
    let start = end - weeks as i64 * WEEK_MS;
    let directory = store.crm_manager_directory().await?;
    // manager -> group
    let group_of: HashMap<String, String> = directory
        .iter()
        .filter_map(|m| match team {
            None => Some((m.manager_id.clone(), m.team.clone()?)),
            Some(t) => {
                (m.team.as_deref() == Some(t)).then(|| (m.manager_id.clone(), m.manager_id.clone()))
            }
        })
        .collect();
    let in_scope = |m: &str| team.is_none() || group_of.contains_key(m);
    // The team's managers are read by index, not filtered after reading everyone's rows.
    let scope = match team {
        None => KpiScope::All,
        Some(_) => KpiScope::Managers(group_of.keys().cloned().collect()),
    };
    let (scores, closed) = tokio::try_join!(
        store.weekly_quality_rows(&scope, start / DAY_MS, end / DAY_MS),
        store.weekly_closed_rows(&scope, start, end),
    )?;
    let mut groups: BTreeMap<Option<String>, Weekly> = BTreeMap::new();
    let blank = || (vec![Tally::default(); weeks], vec![(0, 0); weeks]);
    groups.insert(None, blank());
    for g in group_of.values() {
        groups.entry(Some(g.clone())).or_insert_with(blank);
    }
    for (manager, week, tally) in scores {
        let w = week as usize;
        if !in_scope(&manager) || w >= weeks {
            continue;
        }
        for key in [Some(None), group_of.get(&manager).map(|g| Some(g.clone()))]
            .into_iter()
            .flatten()
        {
            if let Some(g) = groups.get_mut(&key) {
                g.0[w].add(tally);
            }
        }
    }
    for (manager, week, won, n) in closed.iter() {
        let w = *week as usize;
        if !in_scope(manager) || w >= weeks {
            continue;
        }
        for key in [Some(None), group_of.get(manager).map(|g| Some(g.clone()))]
            .into_iter()
            .flatten()
        {
            if let Some(g) = groups.get_mut(&key) {
                g.1[w].0 += won;
                g.1[w].1 += n;
            }
        }
    }
    let series = groups
        .into_iter()
        .map(|(group, (tallies, wins))| TrendSeries {
            group,
            calls: tallies.iter().map(|t| t.calls).collect(),
            average_score: tallies.iter().map(Tally::mean).collect(),
            win_rate: wins.iter().map(|&(w, n)| Ratio::of(w, n)).collect(),
        })
        .collect();
    Ok(Trends {
        weeks: (0..weeks)
            .map(|i| to_datetime(start + i as i64 * WEEK_MS))
            .collect(),
        team: team.map(str::to_string),
        series,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_utc() {
        // 2026-03-04 is a Wednesday; its week starts on Monday 2026-03-02.
        let wed = chrono::DateTime::parse_from_rfc3339("2026-03-04T15:00:00Z")
            .expect("time")
            .timestamp_millis();
        let mon = chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z")
            .expect("time")
            .timestamp_millis();
        assert_eq!(week_start(wed), mon);
        assert_eq!(week_start(mon), mon);
        assert_eq!(week_start(mon - 1), mon - WEEK_MS);
    }
}
