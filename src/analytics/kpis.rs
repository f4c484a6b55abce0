//! The sales KPIs of the data contract for a period `[from, to)`, for everyone, a manager or a
//! team. Each ratio carries the counts behind it and is null when its denominator is zero.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::entity::{ActivityType, PlanMetric};
use super::stats::{mean, median, percentile, Ratio};
use super::AnalyticsConfig;
use crate::domain::{day_start, now_millis, parse_bound, parse_day, to_datetime};
use std::collections::{BTreeMap, HashMap};

use crate::store::{
    ActivityCount, Depends, KpiKey, KpiScope, LeadTimes, QualityTallies, Store, StoreError, Tally,
    WonDeal,
};

const MINUTE_MS: f64 = 60_000.0;
const DAY_MS: f64 = 86_400_000.0;

/// A period `[from, to)` in Unix ms UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// Start, inclusive.
    pub from: i64,
    /// End, exclusive.
    pub to: i64,
}

/// A period that does not parse or is empty.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PeriodError(pub String);

impl Period {
    /// Parses `from` and `to`, each a date (`YYYY-MM-DD`, 00:00 UTC) or an RFC 3339 time.
    pub fn parse(from: &str, to: &str) -> Result<Self, PeriodError> {
        let bound =
            |name: &str, s: &str| parse_bound(s).map_err(|e| PeriodError(format!("{name}: {e}")));
        let from_ms = bound("from", from)?;
        let to_ms = bound("to", to)?;
        if to_ms <= from_ms {
            return Err(PeriodError(format!(
                "to ({to}) must be after from ({from})"
            )));
        }
        Ok(Self {
            from: from_ms,
            to: to_ms,
        })
    }

    /// The calendar days (UTC) the period touches, first and last.
    fn days(&self) -> (NaiveDate, NaiveDate) {
        (
            to_datetime(self.from).date_naive(),
            to_datetime(self.to - 1).date_naive(),
        )
    }
}

/// Conversion from one funnel stage to the next.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct StageConversion {
    /// The stage deals reached first.
    pub from_stage: String,
    /// The next stage.
    pub to_stage: String,
    /// Deals that reached `to_stage` / deals that reached `from_stage`.
    #[serde(flatten)]
    pub ratio: Ratio,
}

/// Days from creation to close of the deals won in the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SalesCycle {
    /// Won deals measured.
    pub deals: i64,
    /// Mean days.
    pub mean_days: Option<f64>,
    /// Median days.
    pub median_days: Option<f64>,
}

/// Minutes from lead creation to first response, over answered leads.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ResponseTime {
    /// Answered leads measured.
    pub answered: i64,
    /// Median minutes.
    pub median_minutes: Option<f64>,
    /// 90th percentile minutes (linear interpolation).
    pub p90_minutes: Option<f64>,
}

/// Share of leads answered later than the SLA, or not answered though the SLA has passed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SlaBreach {
    /// The SLA in minutes (exactly this long is on time).
    pub sla_minutes: u64,
    /// Breaches / all leads created in the period.
    #[serde(flatten)]
    pub ratio: Ratio,
}

/// Amounts of the deals won in the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DealSize {
    /// Won deals with an amount.
    pub deals_with_amount: i64,
    /// Won deals without one (in win figures, not here).
    pub deals_without_amount: i64,
    /// Mean amount.
    pub average: Option<f64>,
    /// Sum of amounts.
    pub revenue: f64,
}

/// One plan row's attainment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct PlanAttainment {
    /// The manager.
    pub manager_id: String,
    /// What is planned.
    pub metric: PlanMetric,
    /// First day.
    pub period_start: String,
    /// Last day (inclusive).
    pub period_end: String,
    /// Target.
    pub target: f64,
    /// Actual in the plan's own period.
    pub actual: f64,
    /// actual / target, or null for a zero target.
    pub value: Option<f64>,
}

/// Plan attainment of one metric over every plan row of it that overlaps the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct MetricAttainment {
    /// What is planned.
    pub metric: PlanMetric,
    /// Plan rows counted.
    pub rows: i64,
    /// Sum of their targets.
    pub target: f64,
    /// Sum of their actuals.
    pub actual: f64,
    /// actual / target, or null for a zero target.
    pub value: Option<f64>,
}

/// Deals open at the end of the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct OpenPipeline {
    /// Deals created before the period's end and not closed before it.
    pub deals: i64,
    /// Of those, without an amount (counted here, not in `value`).
    pub deals_without_amount: i64,
    /// Sum of their known amounts.
    pub value: f64,
}

/// Deals lost in the period for one reason.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct LostReason {
    /// The reason as the CRM wrote it (whitespace collapsed), or null where none was given.
    pub reason: Option<String>,
    /// Deals lost for it / all deals lost in the period.
    #[serde(flatten)]
    pub ratio: Ratio,
}

/// Activities of one type in the period.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ActivityTypeCount {
    /// The type.
    #[schema(value_type = String)]
    pub activity_type: ActivityType,
    /// Activities of this type.
    pub count: i64,
    /// Of those, productive.
    pub productive: i64,
}

/// The scored calls of the period (by when the call took place).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct CallFigures {
    /// Calls scored.
    pub analysed: i64,
    /// Mean overall score (0..100) of those with one.
    pub average_score: Option<f64>,
    /// Calls with at least one critical failure / calls scored.
    pub critical_failure_share: Ratio,
    /// Calls scored / managers in the scope (managers.csv; 1 for one manager).
    pub per_manager: Ratio,
}

/// Every KPI of the contract for one period and scope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Kpis {
    /// S_i -> S_i+1 for each funnel step, over deals created in the period.
    pub stage_conversion: Vec<StageConversion>,
    /// Won / (won + lost), deals closed in the period.
    pub win_rate: Ratio,
    /// Won deals' creation-to-close days.
    pub sales_cycle: SalesCycle,
    /// Lead response time.
    pub lead_response: ResponseTime,
    /// SLA breach rate.
    pub sla_breach_rate: SlaBreach,
    /// Leads with sql_at / leads with mql_at.
    pub mql_to_sql: Ratio,
    /// Average deal size and revenue.
    pub deal_size: DealSize,
    /// Customers with 2+ won deals / customers with a deal won in the period.
    pub repeat_sale_rate: Ratio,
    /// Productive activities / all activities.
    pub productive_touch_share: Ratio,
    /// Activities on deals won in the period / those deals.
    pub activities_per_won_deal: Ratio,
    /// Each plan row overlapping the period.
    pub plan_attainment: Vec<PlanAttainment>,
    /// Per metric: summed actuals / summed targets of those rows (metrics with rows only, in
    /// the contract's order).
    pub plan_by_metric: Vec<MetricAttainment>,
    /// Leads created in the period.
    pub new_leads: i64,
    /// Activities in the period per type (every type, zero included, in the contract's order).
    pub activities_by_type: Vec<ActivityTypeCount>,
    /// Deals open at the period's end.
    pub open_pipeline: OpenPipeline,
    /// Deals lost in the period by reason, most frequent first.
    pub lost_reasons: Vec<LostReason>,
    /// Customers whose first won deal closed in the period.
    pub new_customers: i64,
    /// Scored calls.
    pub calls: CallFigures,
}

/// What the store returns for one key (a scope's total, or one manager), before the KPIs are
/// worked out of it.
#[derive(Debug, Default, Clone)]
struct Raw {
    reach: Vec<(i64, i64)>,
    won: i64,
    lost: i64,
    won_deals: Vec<WonDeal>,
    leads: Vec<LeadTimes>,
    customers: i64,
    repeaters: i64,
    activity_types: Vec<ActivityCount>,
    on_won: i64,
    plans: Vec<PlanAttainment>,
    pipeline: (i64, i64, f64),
    lost_reasons: Vec<(Option<String>, i64)>,
    new_customers: i64,
    /// The call-quality tally over the period's days; its `met` counts the calls with a
    /// critical failure (the overall rollup rows keep that count).
    tally: Tally,
}

impl Raw {
    /// Adds one more manager's CRM rows to a team's or the company's: every figure but the
    /// ones that do not add up over managers (a customer's purchases may span two of the
    /// managers, and so may an activity on a won deal), which [`team_extras`] and
    /// [`company_extras`] read for the whole scope.
    fn absorb_crm(&mut self, o: &Raw) {
        self.reach.extend_from_slice(&o.reach);
        self.won += o.won;
        self.lost += o.lost;
        self.won_deals.extend_from_slice(&o.won_deals);
        self.leads.extend_from_slice(&o.leads);
        for a in &o.activity_types {
            match self.activity_types.iter_mut().find(|r| r.kind == a.kind) {
                Some(r) => {
                    r.total += a.total;
                    r.productive += a.productive;
                }
                None => self.activity_types.push(ActivityCount {
                    manager_id: None,
                    ..a.clone()
                }),
            }
        }
        self.plans.extend_from_slice(&o.plans);
        self.pipeline.0 += o.pipeline.0;
        self.pipeline.1 += o.pipeline.1;
        self.pipeline.2 += o.pipeline.2;
        self.lost_reasons.extend_from_slice(&o.lost_reasons);
        self.new_customers += o.new_customers;
    }
}

/// Computes every KPI for `scope` over `period`.
pub async fn compute(
    store: &Store,
    config: &AnalyticsConfig,
    scope: &KpiScope,
    period: Period,
) -> Result<Kpis, StoreError> {
    let (raw, managers) = match scope {
        KpiScope::All => (
            company(store, config, period).await?,
            store.crm_managers_of(None).await?.len(),
        ),
        KpiScope::Team(t) => {
            let managers = store.crm_managers_of(Some(t)).await?;
            (
                team(store, config, t, &managers, period).await?,
                managers.len(),
            )
        }
        KpiScope::Manager(_) => (total(store, config, scope, period).await?, 1),
        KpiScope::Managers(ids) => (total(store, config, scope, period).await?, ids.len()),
    };
    Ok(assemble(config, period, raw, managers as i64))
}

/// One scope's figures read as one total.
async fn total(
    store: &Store,
    config: &AnalyticsConfig,
    scope: &KpiScope,
    period: Period,
) -> Result<Raw, StoreError> {
    Ok(gather(store, config, scope, KpiKey::Total, period)
        .await?
        .remove(&None)
        .unwrap_or_default())
}

/// The company's figures: everyone's rows per manager added up (those with no manager, or
/// one managers.csv does not list, among them), and the figures that do not add up over
/// managers read for the company. The managers' table and the attention list read the same
/// rows ([`rows_scope`]), so a company dashboard reads them once.
async fn company(
    store: &Store,
    config: &AnalyticsConfig,
    period: Period,
) -> Result<Raw, StoreError> {
    let Period { from, to } = period;
    let (rows, tallies, extras) = tokio::try_join!(
        crm_rows(store, config, &KpiScope::All, KpiKey::Manager, period),
        store.quality_calls_by(&KpiScope::All, KpiKey::Manager, from, to),
        company_extras(store, period),
    )?;
    Ok(added_up(&rows, &tallies, *extras))
}

/// A team's figures: its managers' rows added up, and the figures that do not add up over
/// managers read for the team ([`team_extras`]). A team's dashboard reads the same rows for
/// its managers' table and its attention list.
async fn team(
    store: &Store,
    config: &AnalyticsConfig,
    team: &str,
    managers: &[String],
    period: Period,
) -> Result<Raw, StoreError> {
    let Period { from, to } = period;
    let scope = KpiScope::Managers(managers.to_vec());
    let teams = KpiScope::Team(team.to_string());
    let (rows, tallies, extras) = tokio::try_join!(
        crm_rows(store, config, &scope, KpiKey::Manager, period),
        store.quality_calls_by(&scope, KpiKey::Manager, from, to),
        team_extras(store, &teams, period),
    )?;
    Ok(added_up(
        &rows,
        &tallies,
        extras.get(team).copied().unwrap_or_default(),
    ))
}

/// Per-manager rows added up, with the figures that do not add up (customers, repeat
/// customers, activities on won deals) read for the whole scope.
fn added_up(
    rows: &HashMap<Option<String>, Raw>,
    tallies: &BTreeMap<Option<String>, QualityTallies>,
    (customers, repeaters, on_won): (i64, i64, i64),
) -> Raw {
    // In order of manager, so lists such as the plan rows come out as one read for the whole
    // scope orders them (by manager, then period and metric).
    let mut managers: Vec<&Option<String>> = rows.keys().collect();
    managers.sort();
    let mut raw = Raw::default();
    for m in managers {
        raw.absorb_crm(&rows[m]);
    }
    for t in tallies.values().flat_map(|t| t.days.values()) {
        raw.tally.add(*t);
    }
    (raw.customers, raw.repeaters, raw.on_won) = (customers, repeaters, on_won);
    raw
}

/// The company's customers with a won deal in `period`, those of them with two or more, and
/// its activities on deals won in the period: [`team_extras`] for the whole company. Kept until
/// the next CRM import.
async fn company_extras(
    store: &Store,
    period: Period,
) -> Result<std::sync::Arc<(i64, i64, i64)>, StoreError> {
    let Period { from, to } = period;
    store
        .memo(Depends::Crm)
        .await?
        .get(
            format!("company extras {from} {to}"),
            |_| 1,
            || async {
                let (customers, on_won) = tokio::try_join!(
                    store.kpi_repeat_customers(&KpiScope::All, KpiKey::Total, from, to),
                    store.kpi_activities_on_won(&KpiScope::All, KpiKey::Total, from, to),
                )?;
                let (c, r) = customers.first().map_or((0, 0), |&(_, c, r)| (c, r));
                Ok((c, r, on_won.first().map_or(0, |&(_, n)| n)))
            },
        )
        .await
}

/// How to read the per-manager rows of `managers`: everyone's, when they are every manager of
/// managers.csv (the company's managers' table, its attention list), so that the company's
/// figures ([`company`]) share the read; else theirs alone.
pub(super) async fn rows_scope(store: &Store, managers: &[String]) -> Result<KpiScope, StoreError> {
    let everyone = store.crm_managers_of(None).await?;
    Ok(if everyone.as_slice() == managers {
        KpiScope::All
    } else {
        KpiScope::Managers(managers.to_vec())
    })
}

/// Every KPI of each of `managers` over `period`, in their order: the same figures as
/// [`compute`] for each of them alone, read with one grouped query per figure.
pub async fn compute_by_manager(
    store: &Store,
    config: &AnalyticsConfig,
    managers: &[String],
    period: Period,
) -> Result<Vec<(String, Kpis)>, StoreError> {
    let scope = rows_scope(store, managers).await?;
    let mut raw = gather(store, config, &scope, KpiKey::Manager, period).await?;
    Ok(managers
        .iter()
        .map(|m| {
            let own = raw.remove(&Some(m.clone())).unwrap_or_default();
            (m.clone(), assemble(config, period, own, 1))
        })
        .collect())
}

/// Every KPI of each team of `teams` (name -> its managers, as managers.csv groups them) and
/// of each of those managers,
/// given their quality tallies over `period` (from [`Store::quality_tallies_by`] per manager):
/// the same figures as [`compute`] for each team and each manager alone, with the call figures
/// read once for everyone and added up per team.
pub async fn compute_teams(
    store: &Store,
    config: &AnalyticsConfig,
    teams: &BTreeMap<String, Vec<String>>,
    tallies: &BTreeMap<Option<String>, QualityTallies>,
    period: Period,
) -> Result<(HashMap<String, Kpis>, HashMap<String, Kpis>), StoreError> {
    let everyone = rows_scope(store, &everyone(teams)).await?;
    // A team's figures are its managers' rows added up (read once for everyone, below), but
    // for the two that do not add up over managers: those are read for one team alone (a
    // team's page), else for every team at once.
    let extras_of = match (teams.len(), teams.keys().next()) {
        (1, Some(one)) => KpiScope::Team(one.clone()),
        _ => KpiScope::All,
    };
    let (own, extras) = tokio::try_join!(
        crm_rows(store, config, &everyone, KpiKey::Manager, period),
        team_extras(store, &extras_of, period),
    )?;
    let calls = |m: &String| -> Tally {
        let key = Some(m.clone());
        let mut tally = Tally::default();
        for t in tallies
            .get(&key)
            .map(|t| t.days.values())
            .into_iter()
            .flatten()
        {
            tally.add(*t);
        }
        tally
    };
    let mut by_team = HashMap::new();
    let mut by_manager = HashMap::new();
    for (team, members) in teams {
        let mut team_raw = Raw::default();
        (team_raw.customers, team_raw.repeaters, team_raw.on_won) =
            extras.get(team).copied().unwrap_or_default();
        for m in members {
            let tally = calls(m);
            team_raw.tally.add(tally);
            let mut raw = own.get(&Some(m.clone())).cloned().unwrap_or_default();
            team_raw.absorb_crm(&raw);
            raw.tally = tally;
            by_manager.insert(m.clone(), assemble(config, period, raw, 1));
        }
        let n = members.len() as i64;
        by_team.insert(team.clone(), assemble(config, period, team_raw, n));
    }
    Ok((by_team, by_manager))
}

/// The managers of `teams`, in order of id: the list the managers' table reads too
/// (`Store::crm_managers_of`), so that a dashboard's figures over the same managers share
/// their kept reads (the memos are keyed by the list).
pub fn everyone(teams: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = teams.values().flatten().cloned().collect();
    all.sort();
    all.dedup();
    all
}

/// The store's rows for `scope` over `period`, per key. `scope` must be resolved.
async fn gather(
    store: &Store,
    config: &AnalyticsConfig,
    scope: &KpiScope,
    key: KpiKey,
    period: Period,
) -> Result<HashMap<Option<String>, Raw>, StoreError> {
    let Period { from, to } = period;
    let (crm, tallies) = tokio::try_join!(
        crm_rows(store, config, scope, key, period),
        store.quality_calls_by(scope, key, from, to),
    )?;
    let mut out = (*crm).clone();
    for (k, t) in tallies.iter() {
        let e = out.entry(k.clone()).or_default();
        for day in t.days.values() {
            e.tally.add(*day);
        }
    }
    Ok(out)
}

/// Per team of managers.csv (of `teams`: every team, or one `KpiScope::Team`): its customers
/// with a won deal in `period`, those of them with two or more, and its activities on deals it
/// won in the period: the CRM figures that do not add up over the team's managers. In two
/// reads, kept until the next CRM import.
async fn team_extras(
    store: &Store,
    teams: &KpiScope,
    period: Period,
) -> Result<std::sync::Arc<HashMap<String, (i64, i64, i64)>>, StoreError> {
    let Period { from, to } = period;
    store
        .memo(Depends::Crm)
        .await?
        .get(
            format!("team extras {teams:?} {from} {to}"),
            HashMap::len,
            || store.kpi_team_extras(teams, from, to),
        )
        .await
}

/// The CRM part of [`gather`]: read once per CRM import ([`Store::memo`]), as the
/// dashboards ask for the same periods on every load.
async fn crm_rows(
    store: &Store,
    config: &AnalyticsConfig,
    scope: &KpiScope,
    key: KpiKey,
    period: Period,
) -> Result<std::sync::Arc<HashMap<Option<String>, Raw>>, StoreError> {
    let Period { from, to } = period;
    let funnel = &config.funnel_stages;
    let memo_key = format!("kpis {scope:?} {key:?} {from} {to} {funnel:?}");
    let rows = |m: &HashMap<Option<String>, Raw>| -> usize {
        m.values()
            .map(|r| r.won_deals.len() + r.leads.len() + r.activity_types.len() + r.plans.len() + 1)
            .sum()
    };
    store
        .memo(Depends::Crm)
        .await?
        .get(memo_key, rows, || async {
            // Independent queries run side by side: on PostgreSQL each is a round trip, and
            // the pool has connections to spare.
            let (
                reach,
                closed,
                won_deals,
                leads,
                customers,
                (activity_types, on_won),
                plan_rows,
                pipeline,
                lost_rows,
                new_customers,
            ) = tokio::try_join!(
                store.kpi_stage_reach(scope, key, from, to, funnel),
                store.kpi_closed(scope, key, from, to),
                store.kpi_won_deals(scope, key, from, to),
                store.kpi_leads(scope, key, from, to),
                store.kpi_repeat_customers(scope, key, from, to),
                store.kpi_activities(scope, key, from, to),
                plans(store, scope, period),
                store.kpi_open_pipeline(scope, key, from, to),
                store.kpi_lost_reasons(scope, key, from, to),
                store.kpi_new_customers(scope, key, from, to),
            )?;
            let mut out: HashMap<Option<String>, Raw> = HashMap::new();
            for (k, r, n) in reach {
                out.entry(k).or_default().reach.push((r, n));
            }
            for (k, won, lost) in closed {
                let e = out.entry(k).or_default();
                (e.won, e.lost) = (won, lost);
            }
            for d in won_deals {
                out.entry(d.manager_id.clone())
                    .or_default()
                    .won_deals
                    .push(d);
            }
            for l in leads {
                out.entry(l.manager_id.clone()).or_default().leads.push(l);
            }
            for (k, customers, repeaters) in customers {
                let e = out.entry(k).or_default();
                (e.customers, e.repeaters) = (customers, repeaters);
            }
            for a in activity_types {
                out.entry(a.manager_id.clone())
                    .or_default()
                    .activity_types
                    .push(a);
            }
            for (k, n) in on_won {
                out.entry(k).or_default().on_won = n;
            }
            for p in plan_rows {
                let k = match key {
                    KpiKey::Total => None,
                    KpiKey::Manager => Some(p.manager_id.clone()),
                };
                out.entry(k).or_default().plans.push(p);
            }
            for (k, deals, without, value) in pipeline {
                out.entry(k).or_default().pipeline = (deals, without, value);
            }
            for (k, reason, n) in lost_rows {
                out.entry(k).or_default().lost_reasons.push((reason, n));
            }
            for (k, n) in new_customers {
                out.entry(k).or_default().new_customers = n;
            }
            Ok(out)
        })
        .await
}

/// The KPIs out of one key's rows; `managers` is how many managers the key stands for.
fn assemble(config: &AnalyticsConfig, period: Period, raw: Raw, managers: i64) -> Kpis {
    let Period { to, .. } = period;
    let funnel = &config.funnel_stages;
    let Raw {
        reach,
        won,
        lost,
        won_deals,
        leads,
        customers,
        repeaters,
        activity_types,
        on_won,
        plans: plan_attainment,
        pipeline,
        lost_reasons: lost_rows,
        new_customers,
        tally: tallies,
    } = raw;
    let activities_by_type: Vec<ActivityTypeCount> = ActivityType::ALL
        .iter()
        .map(|&t| {
            let row = activity_types.iter().find(|r| r.kind == t);
            ActivityTypeCount {
                activity_type: t,
                count: row.map_or(0, |r| r.total),
                productive: row.map_or(0, |r| r.productive),
            }
        })
        .collect();
    let activities: i64 = activities_by_type.iter().map(|a| a.count).sum();
    let productive: i64 = activities_by_type.iter().map(|a| a.productive).sum();
    let reached = |i: usize| -> i64 {
        reach
            .iter()
            .filter(|(r, _)| *r >= i as i64)
            .map(|(_, n)| n)
            .sum()
    };
    let stage_conversion = funnel
        .windows(2)
        .enumerate()
        .map(|(i, w)| StageConversion {
            from_stage: w[0].clone(),
            to_stage: w[1].clone(),
            ratio: Ratio::of(reached(i + 1), reached(i)),
        })
        .collect();

    let cycles: Vec<f64> = won_deals
        .iter()
        .map(|d| (d.closed_at - d.created_at) as f64 / DAY_MS)
        .collect();
    let amounts: Vec<f64> = won_deals.iter().filter_map(|d| d.amount).collect();

    let sla_ms = i64::try_from(config.response_sla_minutes)
        .unwrap_or(i64::MAX / 60_000)
        .saturating_mul(60_000);
    let horizon = to.min(now_millis());
    let responses: Vec<f64> = leads
        .iter()
        .filter_map(|l| {
            l.first_response_at
                .map(|r| (r - l.created_at) as f64 / MINUTE_MS)
        })
        .collect();
    let breaches = leads
        .iter()
        .filter(|l| match l.first_response_at {
            Some(r) => r - l.created_at > sla_ms,
            None => horizon - l.created_at > sla_ms,
        })
        .count() as i64;
    let mql = leads.iter().filter(|l| l.mql_at.is_some()).count() as i64;
    let mql_sql = leads
        .iter()
        .filter(|l| l.mql_at.is_some() && l.sql_at.is_some())
        .count() as i64;

    Kpis {
        stage_conversion,
        win_rate: Ratio::of(won, won + lost),
        sales_cycle: SalesCycle {
            deals: cycles.len() as i64,
            mean_days: mean(&cycles),
            median_days: median(&cycles),
        },
        lead_response: ResponseTime {
            answered: responses.len() as i64,
            median_minutes: median(&responses),
            p90_minutes: percentile(&responses, 0.9),
        },
        sla_breach_rate: SlaBreach {
            sla_minutes: config.response_sla_minutes,
            ratio: Ratio::of(breaches, leads.len() as i64),
        },
        mql_to_sql: Ratio::of(mql_sql, mql),
        deal_size: DealSize {
            deals_with_amount: amounts.len() as i64,
            deals_without_amount: (won_deals.len() - amounts.len()) as i64,
            average: mean(&amounts),
            revenue: amounts.iter().sum(),
        },
        repeat_sale_rate: Ratio::of(repeaters, customers),
        productive_touch_share: Ratio::of(productive, activities),
        activities_per_won_deal: Ratio::of(on_won, won_deals.len() as i64),
        plan_by_metric: by_metric(&plan_attainment),
        plan_attainment,
        new_leads: leads.len() as i64,
        activities_by_type,
        open_pipeline: OpenPipeline {
            deals: pipeline.0,
            deals_without_amount: pipeline.1,
            value: pipeline.2,
        },
        lost_reasons: lost_reasons(lost_rows),
        new_customers,
        calls: CallFigures {
            analysed: tallies.calls,
            average_score: tallies.mean(),
            critical_failure_share: Ratio::of(tallies.met, tallies.calls),
            per_manager: Ratio::of(tallies.calls, managers),
        },
    }
}

/// Plan rows summed per metric.
fn by_metric(rows: &[PlanAttainment]) -> Vec<MetricAttainment> {
    PlanMetric::ALL
        .iter()
        .filter_map(|&metric| {
            let of: Vec<&PlanAttainment> = rows.iter().filter(|r| r.metric == metric).collect();
            if of.is_empty() {
                return None;
            }
            let target: f64 = of.iter().map(|r| r.target).sum();
            let actual: f64 = of.iter().map(|r| r.actual).sum();
            Some(MetricAttainment {
                metric,
                rows: of.len() as i64,
                target,
                actual,
                value: (target != 0.0).then(|| actual / target),
            })
        })
        .collect()
}

/// Lost deals by reason: whitespace collapsed (a quoted CSV cell may hold line breaks), blank
/// as none, most frequent first, then by reason.
fn lost_reasons(rows: Vec<(Option<String>, i64)>) -> Vec<LostReason> {
    let mut by_reason: std::collections::BTreeMap<Option<String>, i64> = Default::default();
    for (reason, n) in rows {
        let reason = reason
            .map(|r| r.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|r| !r.is_empty());
        *by_reason.entry(reason).or_default() += n;
    }
    let lost: i64 = by_reason.values().sum();
    let mut out: Vec<LostReason> = by_reason
        .into_iter()
        .map(|(reason, n)| LostReason {
            reason,
            ratio: Ratio::of(n, lost),
        })
        .collect();
    out.sort_by_key(|r| std::cmp::Reverse(r.ratio.numerator));
    out
}

/// Attainment of each plan row overlapping the period, counted in the plan's own days.
///
/// Plans share their periods (a month, a quarter), so the actuals are read once per distinct
/// plan period for all of its rows' managers, grouped by manager: two reads per period instead
/// of one per row (a company of 200 managers with four planned metrics had 800).
async fn plans(
    store: &Store,
    scope: &KpiScope,
    period: Period,
) -> Result<Vec<PlanAttainment>, StoreError> {
    let (first, last) = period.days();
    let rows = store
        .kpi_plans(
            scope,
            &first.format("%Y-%m-%d").to_string(),
            &last.format("%Y-%m-%d").to_string(),
        )
        .await?;
    let mut spans: Vec<(String, String)> = rows
        .iter()
        .map(|p| (p.period_start.clone(), p.period_end.clone()))
        .collect();
    spans.sort();
    spans.dedup();
    let actuals = futures::future::try_join_all(spans.into_iter().map(|span| {
        let mut managers: Vec<String> = rows
            .iter()
            .filter(|p| p.period_start == span.0 && p.period_end == span.1)
            .map(|p| p.manager_id.clone())
            .collect();
        managers.sort();
        managers.dedup();
        async move {
            let (from, to) = plan_bounds(&span.0, &span.1)?;
            // Kept: the company's KPIs and its managers' rows ask for the same actuals (the
            // same plan period, the same managers) on every dashboard.
            let key = format!("plan actuals {managers:?} {from} {to}");
            let managers = KpiScope::Managers(managers);
            let actuals = store
                .memo(Depends::Crm)
                .await?
                .get(
                    key,
                    |(a, w): &(Vec<_>, Vec<_>)| a.len() + w.len(),
                    || async {
                        tokio::try_join!(
                            store.kpi_plan_activities(&managers, from, to),
                            store.kpi_plan_wins(&managers, from, to),
                        )
                    },
                )
                .await?;
            Ok::<_, StoreError>((span, actuals))
        }
    }))
    .await?;
    let actuals: std::collections::HashMap<_, _> = actuals.into_iter().collect();
    Ok(rows
        .into_iter()
        .map(|p| {
            let (activities, wins) = &*actuals[&(p.period_start.clone(), p.period_end.clone())];
            let win = wins.iter().find(|(m, _, _)| *m == p.manager_id);
            let actual = match p.metric.activity_type() {
                Some(kind) => activities
                    .iter()
                    .find(|(m, t, _)| *m == p.manager_id && *t == kind)
                    .map_or(0, |a| a.2) as f64,
                None if p.metric == PlanMetric::Revenue => win.and_then(|w| w.2).unwrap_or(0.0),
                None => win.map_or(0, |w| w.1) as f64,
            };
            PlanAttainment {
                manager_id: p.manager_id,
                metric: p.metric,
                period_start: p.period_start,
                period_end: p.period_end,
                target: p.target,
                actual,
                value: (p.target != 0.0).then(|| actual / p.target),
            }
        })
        .collect())
}

/// A plan's days as `[from, to)` in ms: its `period_end` is inclusive, so the plan runs until
/// 00:00 UTC of the next day.
fn plan_bounds(start: &str, end: &str) -> Result<(i64, i64), StoreError> {
    let start = parse_day(start).map_err(StoreError::Corrupt)?;
    let end = parse_day(end).map_err(StoreError::Corrupt)?;
    Ok((
        day_start(start),
        day_start(end.checked_add_days(Days::new(1)).unwrap_or(end)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_accept_dates_and_times_in_utc() {
        let p = Period::parse("2026-03-01", "2026-04-01T02:00:00+02:00").expect("valid");
        assert_eq!(
            p.from,
            day_start(NaiveDate::from_ymd_opt(2026, 3, 1).expect("date"))
        );
        assert_eq!(
            p.to,
            day_start(NaiveDate::from_ymd_opt(2026, 4, 1).expect("date"))
        );
        let (first, last) = p.days();
        assert_eq!(first.to_string(), "2026-03-01");
        assert_eq!(last.to_string(), "2026-03-31");
        assert!(Period::parse("2026-04-01", "2026-03-01").is_err());
        assert!(Period::parse("March", "2026-03-01").is_err());
    }
}
