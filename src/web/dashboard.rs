//! The sales dashboards (decision 0017): the head's dashboard (`/dashboard`) and each manager's
//! own page (`/managers/{id}`).
//!
//! Every figure comes from the API's handlers (`/api/v1/kpis`, the insights, open deals,
//! calibration, the manager report), called with the session's principal, so the role rules
//! and the definitions are the API's (docs/crm-data.md). This module only lays them out: KPI
//! cards against the previous period, server-rendered SVG charts, tables that sort in the
//! browser and download as CSV from the same URL (`format=csv&table=...`). Every figure carries
//! `data-kpi` and `data-value` (the raw number) so tests and readers check it against the API.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use super::i18n::Lang;
use super::session::{urlencode, WebUser};
use super::{error_page, render, Nonce, PageCtx};
use crate::analytics::entity::PlanMetric;
use crate::analytics::insights::{Attention, QualityVsOutcome, SignalKind};
use crate::analytics::kpis::{Kpis, Period};
use crate::analytics::stats::wilson_95;
use crate::domain::Role;
use crate::http::analytics::{GroupBy, KpiQuery, KpiReport};
use crate::http::{ApiError, AppState};
use crate::store::{CrmManager, KpiScope};

/// Open deals listed on the dashboard and on a manager's page.
const OPEN_DEALS: usize = 100;

/// The dashboard pages.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard))
        .route("/managers/{id}", get(manager_page))
}

/// The query of both pages: a period (a preset or custom dates, the end **inclusive**), a team,
/// and for a CSV download the table's name.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct DashQuery {
    /// `this_month` (default), `last_month`, `this_quarter`; ignored when dates are given.
    #[serde(default)]
    pub period: String,
    /// First day, `YYYY-MM-DD`.
    #[serde(default)]
    pub from: String,
    /// Last day, `YYYY-MM-DD`, inclusive.
    #[serde(default)]
    pub to: String,
    /// Only this team.
    #[serde(default)]
    pub team: String,
    /// `csv` downloads `table`.
    #[serde(default)]
    pub format: String,
    /// The table to download.
    #[serde(default)]
    pub table: String,
}

/// A period of whole UTC days, both ends inclusive, as the UI says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    /// First day.
    pub first: NaiveDate,
    /// Last day (inclusive).
    pub last: NaiveDate,
}

impl Span {
    /// The period from the query: custom dates when both are given, else the preset, relative
    /// to `today`.
    pub fn from_query(
        q: &DashQuery,
        today: NaiveDate,
        lang: Lang,
    ) -> Result<(Self, &'static str), String> {
        let (from, to) = (q.from.trim(), q.to.trim());
        if !from.is_empty() || !to.is_empty() {
            let day = |s: &str, label: &str| {
                crate::domain::parse_day(s).map_err(|e| format!("{}: {e}", lang.t(label)))
            };
            let first = day(from, "filter_from")?;
            let last = day(to, "filter_to")?;
            if last < first {
                return Err(lang.t("dash_period_reversed").to_string());
            }
            return Ok((Self { first, last }, "custom"));
        }
        let month_start = today.with_day(1).unwrap_or(today);
        let end_of = |start: NaiveDate, months: u32| {
            start
                .checked_add_months(Months::new(months))
                .and_then(|d| d.pred_opt())
                .unwrap_or(start)
        };
        Ok(match q.period.as_str() {
            "last_month" => {
                let start = month_start
                    .checked_sub_months(Months::new(1))
                    .unwrap_or(month_start);
                (
                    Self {
                        first: start,
                        last: end_of(start, 1),
                    },
                    "last_month",
                )
            }
            "this_quarter" => {
                let q0 = (today.month0() / 3) * 3;
                let start = NaiveDate::from_ymd_opt(today.year(), q0 + 1, 1).unwrap_or(month_start);
                (
                    Self {
                        first: start,
                        last: end_of(start, 3),
                    },
                    "this_quarter",
                )
            }
            _ => (
                Self {
                    first: month_start,
                    last: end_of(month_start, 1),
                },
                "this_month",
            ),
        })
    }

    /// The period of the same length just before this one.
    pub fn previous(self) -> Self {
        let days = (self.last - self.first).num_days() as u64 + 1;
        let last = self.first.pred_opt().unwrap_or(self.first);
        let first = last.checked_sub_days(Days::new(days - 1)).unwrap_or(last);
        Self { first, last }
    }

    /// `[first 00:00, last + 1 day 00:00)` as the API's `from` and `to`.
    pub fn api_bounds(self) -> (String, String) {
        let end = self.last.succ_opt().unwrap_or(self.last);
        (self.first.to_string(), end.to_string())
    }

    fn period(self) -> Period {
        let (from, to) = self.api_bounds();
        Period::parse(&from, &to).unwrap_or(Period { from: 0, to: 1 })
    }
}

/// How a figure reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fmt {
    Count,
    Percent,
    Minutes,
    Days,
    Money,
    Score,
    Decimal,
}

/// Which way is good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    Neither,
}

/// A KPI of the cards and the managers table: its `data-kpi` name, how it reads, which way is
/// good.
struct Kpi {
    key: &'static str,
    fmt: Fmt,
    better: Better,
}

const fn kpi(key: &'static str, fmt: Fmt, better: Better) -> Kpi {
    Kpi { key, fmt, better }
}

/// The four groups of cards, by i18n key, and their figures.
const GROUPS: &[(&str, &[Kpi])] = &[
    (
        "dash_group_activity",
        &[
            kpi("calls.analysed", Fmt::Count, Better::Higher),
            kpi("new_leads", Fmt::Count, Better::Higher),
            kpi("productive_touch_share", Fmt::Percent, Better::Higher),
            kpi("lead_response.median_minutes", Fmt::Minutes, Better::Lower),
            kpi("lead_response.p90_minutes", Fmt::Minutes, Better::Lower),
            kpi("sla_breach_rate", Fmt::Percent, Better::Lower),
        ],
    ),
    (
        "dash_group_funnel",
        &[
            kpi("mql_to_sql", Fmt::Percent, Better::Higher),
            kpi("sales_cycle.median_days", Fmt::Days, Better::Lower),
            kpi("open_pipeline.deals", Fmt::Count, Better::Higher),
            kpi("open_pipeline.value", Fmt::Money, Better::Higher),
            kpi("deal_size.average", Fmt::Money, Better::Higher),
        ],
    ),
    (
        "dash_group_performance",
        &[
            kpi("win_rate", Fmt::Percent, Better::Higher),
            kpi("activities_per_won_deal", Fmt::Decimal, Better::Neither),
            kpi("calls.per_manager", Fmt::Decimal, Better::Higher),
            kpi("calls.average_score", Fmt::Score, Better::Higher),
            kpi("calls.critical_failure_share", Fmt::Percent, Better::Lower),
        ],
    ),
    (
        "dash_group_results",
        &[
            kpi("deal_size.revenue", Fmt::Money, Better::Higher),
            kpi("new_customers", Fmt::Count, Better::Higher),
            kpi("repeat_sale_rate", Fmt::Percent, Better::Higher),
        ],
    ),
];

/// The columns of the managers table.
const MANAGER_COLUMNS: &[Kpi] = &[
    kpi("calls.analysed", Fmt::Count, Better::Higher),
    kpi("calls.average_score", Fmt::Score, Better::Higher),
    kpi("calls.critical_failure_share", Fmt::Percent, Better::Lower),
    kpi("win_rate", Fmt::Percent, Better::Higher),
    kpi("deal_size.revenue", Fmt::Money, Better::Higher),
    kpi("plan_attainment", Fmt::Percent, Better::Higher),
    kpi("new_leads", Fmt::Count, Better::Higher),
    kpi("lead_response.median_minutes", Fmt::Minutes, Better::Lower),
    kpi("sla_breach_rate", Fmt::Percent, Better::Lower),
    kpi("productive_touch_share", Fmt::Percent, Better::Higher),
    kpi("open_pipeline.deals", Fmt::Count, Better::Higher),
    kpi("sales_cycle.median_days", Fmt::Days, Better::Lower),
];

/// The managers table's short column names (the cards use the full ones).
const MANAGER_HEADS: [&str; 12] = [
    "col_calls",
    "col_avg_score",
    "col_critical_share",
    "col_win_rate",
    "col_revenue",
    "col_plan",
    "col_new_leads",
    "col_response",
    "col_sla",
    "col_productive",
    "col_open_deals",
    "col_cycle",
];

/// A figure of [`Kpis`] by its `data-kpi` name (docs/crm-data.md lists them); a ratio is its
/// value (0..1). `plan_attainment` alone is the mean of the rows' attainments.
pub fn kpi_value(k: &Kpis, key: &str) -> Option<f64> {
    let count = |n: i64| Some(n as f64);
    if let Some(t) = key.strip_prefix("activities_by_type.") {
        return k
            .activities_by_type
            .iter()
            .find(|a| a.activity_type.as_str() == t)
            .map(|a| a.count as f64);
    }
    if let Some(m) = key.strip_prefix("plan_by_metric.") {
        return k
            .plan_by_metric
            .iter()
            .find(|p| p.metric.as_str() == m)
            .and_then(|p| p.value);
    }
    match key {
        "win_rate" => k.win_rate.value,
        "sales_cycle.median_days" => k.sales_cycle.median_days,
        "sales_cycle.mean_days" => k.sales_cycle.mean_days,
        "lead_response.median_minutes" => k.lead_response.median_minutes,
        "lead_response.p90_minutes" => k.lead_response.p90_minutes,
        "sla_breach_rate" => k.sla_breach_rate.ratio.value,
        "mql_to_sql" => k.mql_to_sql.value,
        "deal_size.average" => k.deal_size.average,
        "deal_size.revenue" => Some(k.deal_size.revenue),
        "repeat_sale_rate" => k.repeat_sale_rate.value,
        "productive_touch_share" => k.productive_touch_share.value,
        "activities_per_won_deal" => k.activities_per_won_deal.value,
        "new_leads" => count(k.new_leads),
        "new_customers" => count(k.new_customers),
        "open_pipeline.deals" => count(k.open_pipeline.deals),
        "open_pipeline.value" => Some(k.open_pipeline.value),
        "calls.analysed" => count(k.calls.analysed),
        "calls.average_score" => k.calls.average_score,
        "calls.critical_failure_share" => k.calls.critical_failure_share.value,
        "calls.per_manager" => k.calls.per_manager.value,
        "plan_attainment" => {
            let v: Vec<f64> = k.plan_attainment.iter().filter_map(|p| p.value).collect();
            crate::analytics::stats::mean(&v)
        }
        _ => None,
    }
}

/// A number as the UI shows it.
fn show(lang: Lang, fmt: Fmt, v: Option<f64>) -> String {
    let Some(v) = v else {
        return "—".to_string();
    };
    match fmt {
        Fmt::Count => grouped(lang, v, 0),
        Fmt::Percent => format!("{}%", lang.number(v * 100.0, 1)),
        Fmt::Minutes => format!("{} {}", lang.number(v, 1), lang.t("unit_min")),
        Fmt::Days => format!("{} {}", lang.number(v, 1), lang.t("unit_days")),
        Fmt::Money => grouped(lang, v, 0),
        Fmt::Score => lang.number(v, 1),
        Fmt::Decimal => lang.number(v, 1),
    }
}

/// Thousands grouped as each language writes them (`12,345` / `12 345`).
fn grouped(lang: Lang, v: f64, decimals: usize) -> String {
    let s = lang.number(v.abs(), decimals);
    let (int, frac) = match s.find(['.', ',']) {
        Some(i) => s.split_at(i),
        None => (s.as_str(), ""),
    };
    let sep = match lang {
        Lang::En => ",",
        Lang::Ru => "\u{a0}",
    };
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push_str(sep);
        }
        out.push(c);
    }
    format!("{}{out}{frac}", if v < 0.0 { "−" } else { "" })
}

/// One KPI card.
#[derive(Serialize)]
struct Card {
    key: &'static str,
    label: &'static str,
    value: String,
    raw: String,
    previous: String,
    previous_raw: String,
    change: String,
    /// `up-good`, `down-bad`...: how the change reads.
    trend: &'static str,
}

fn raw(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

fn card(lang: Lang, k: &Kpi, now: &Kpis, before: &Kpis) -> Card {
    let (v, p) = (kpi_value(now, k.key), kpi_value(before, k.key));
    let (change, dir) = match (v, p) {
        (Some(v), Some(p)) if k.fmt == Fmt::Percent => {
            let d = (v - p) * 100.0;
            (
                format!(
                    "{}{} {}",
                    sign(d),
                    lang.number(d.abs(), 1),
                    lang.t("unit_pp")
                ),
                d,
            )
        }
        (Some(v), Some(p)) if p != 0.0 => {
            let d = (v - p) / p.abs() * 100.0;
            (format!("{}{}%", sign(d), lang.number(d.abs(), 0)), d)
        }
        _ => (String::new(), 0.0),
    };
    let trend = match (dir.partial_cmp(&0.0), k.better) {
        (Some(std::cmp::Ordering::Greater), Better::Higher)
        | (Some(std::cmp::Ordering::Less), Better::Lower) => "good",
        (Some(std::cmp::Ordering::Greater), Better::Lower)
        | (Some(std::cmp::Ordering::Less), Better::Higher) => "bad",
        _ => "flat",
    };
    Card {
        key: k.key,
        label: lang.t(&label_key(k.key)),
        value: show(lang, k.fmt, v),
        raw: raw(v),
        previous: show(lang, k.fmt, p),
        previous_raw: raw(p),
        change,
        trend,
    }
}

fn sign(d: f64) -> &'static str {
    if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "−"
    } else {
        "±"
    }
}

fn label_key(kpi: &str) -> String {
    format!("kpi_{}", kpi.replace('.', "_"))
}

/// A table cell: the text shown (and exported), and the raw figure with its KPI attributes.
#[derive(Serialize, Default, Clone)]
struct Cell {
    text: String,
    /// `data-value`, and the sort key.
    raw: Option<String>,
    kpi: Option<String>,
    manager: Option<String>,
    team: Option<String>,
    href: Option<String>,
    /// An attention flag fires on this figure.
    flag: bool,
    /// `num` for right-aligned figures.
    class: &'static str,
}

impl Cell {
    fn text(s: impl Into<String>) -> Self {
        Self {
            text: s.into(),
            ..Default::default()
        }
    }

    fn link(s: impl Into<String>, href: String) -> Self {
        Self {
            href: Some(href),
            ..Self::text(s)
        }
    }

    fn figure(lang: Lang, fmt: Fmt, v: Option<f64>) -> Self {
        Self {
            text: show(lang, fmt, v),
            raw: Some(raw(v)),
            class: "num",
            ..Default::default()
        }
    }

    fn kpi(mut self, kpi: &str, manager: Option<&str>, team: Option<&str>) -> Self {
        self.kpi = Some(kpi.to_string());
        self.manager = manager.map(str::to_string);
        self.team = team.map(str::to_string);
        self
    }
}

/// A table as shown and as downloaded.
#[derive(Serialize)]
struct Table {
    id: &'static str,
    head: Vec<String>,
    /// Right-aligned columns.
    num: Vec<bool>,
    rows: Vec<Vec<Cell>>,
    /// A last row (the team average), not sorted with the rest.
    foot: Option<Vec<Cell>>,
    csv: String,
}

impl Table {
    fn new(id: &'static str, head: Vec<String>, here: &str) -> Self {
        let sep = if here.contains('?') { '&' } else { '?' };
        Self {
            id,
            num: vec![false; head.len()],
            head,
            rows: Vec::new(),
            foot: None,
            csv: format!("{here}{sep}format=csv&table={id}"),
        }
    }

    /// The table as CSV: UTF-8 with a BOM (so Excel reads Russian), exactly the texts shown.
    fn to_csv(&self) -> Result<Vec<u8>, csv::Error> {
        let mut w = csv::Writer::from_writer(vec![0xEF, 0xBB, 0xBF]);
        w.write_record(&self.head)?;
        for row in self.rows.iter().chain(self.foot.iter()) {
            w.write_record(row.iter().map(|c| c.text.as_str()))?;
        }
        w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
    }
}

fn csv_response(table: &Table, name: &str) -> Response {
    match table.to_csv() {
        Ok(bytes) => {
            let mut r = bytes.into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Ok(v) =
                HeaderValue::from_str(&format!("attachment; filename=\"{name}-{}.csv\"", table.id))
            {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            r
        }
        Err(e) => ApiError::Internal(e.to_string()).into_response(),
    }
}

/// One bar of the funnel.
#[derive(Serialize)]
struct FunnelBar {
    stage: String,
    count: i64,
    count_text: String,
    y: i64,
    x: f64,
    width: f64,
    /// Conversion from the stage before, shown between the bars.
    conversion: Option<String>,
    conversion_raw: String,
    conversion_key: String,
}

/// A stage, the deals that reached it, and the conversion into it (value, `from>to`).
type FunnelStage = (String, i64, Option<(f64, String)>);

/// The funnel's geometry: deals reaching each stage (from the stage conversions' counts).
fn funnel(lang: Lang, k: &Kpis) -> Vec<FunnelBar> {
    let Some(first) = k.stage_conversion.first() else {
        return Vec::new();
    };
    let mut stages: Vec<FunnelStage> =
        vec![(first.from_stage.clone(), first.ratio.denominator, None)];
    for c in &k.stage_conversion {
        stages.push((
            c.to_stage.clone(),
            c.ratio.numerator,
            c.ratio
                .value
                .map(|v| (v, format!("{}>{}", c.from_stage, c.to_stage))),
        ));
    }
    let max = stages.iter().map(|s| s.1).max().unwrap_or(0).max(1) as f64;
    // A 560-wide drawing: names up to x = 96, bars centred on 260, conversions from 428.
    const WIDTH: f64 = 320.0;
    stages
        .into_iter()
        .enumerate()
        .map(|(i, (stage, count, conv))| {
            let width = (count as f64 / max * WIDTH).max(2.0);
            FunnelBar {
                count_text: grouped(lang, count as f64, 0),
                y: i as i64 * 40,
                x: 260.0 - width / 2.0,
                width,
                conversion: conv
                    .as_ref()
                    .map(|(v, _)| format!("{}%", lang.number(v * 100.0, 1))),
                conversion_raw: conv
                    .as_ref()
                    .map(|(v, _)| format!("{v}"))
                    .unwrap_or_default(),
                conversion_key: conv.map(|(_, k)| k).unwrap_or_default(),
                stage,
                count,
            }
        })
        .collect()
}

/// A plan row drawn as a bar against its target.
#[derive(Serialize)]
struct PlanBar {
    manager: String,
    manager_id: String,
    metric: &'static str,
    metric_key: &'static str,
    actual: String,
    target: String,
    percent: String,
    raw: String,
    /// Bar length on a track of 150 where the target is at 100.
    bar: f64,
    band: &'static str,
}

fn plan_bars(lang: Lang, k: &Kpis, names: &HashMap<String, String>) -> Vec<PlanBar> {
    // One bar per manager and metric: the plan rows of the period summed, as `plan_by_metric`
    // sums them for a scope.
    let mut sums: Vec<(String, PlanMetric, f64, f64)> = Vec::new();
    for p in &k.plan_attainment {
        match sums
            .iter_mut()
            .find(|s| s.0 == p.manager_id && s.1 == p.metric)
        {
            Some(s) => {
                s.2 += p.target;
                s.3 += p.actual;
            }
            None => sums.push((p.manager_id.clone(), p.metric, p.target, p.actual)),
        }
    }
    let mut rows: Vec<PlanBar> = sums
        .into_iter()
        .map(|(manager_id, metric, target, actual)| {
            let n = |v: f64| {
                if metric == PlanMetric::Revenue {
                    grouped(lang, v, 0)
                } else {
                    lang.number(v, 0)
                }
            };
            let value = (target != 0.0).then(|| actual / target);
            PlanBar {
                manager: names
                    .get(&manager_id)
                    .cloned()
                    .unwrap_or_else(|| manager_id.clone()),
                manager_id,
                metric: lang.t(&format!("plan_{}", metric.as_str())),
                metric_key: metric.as_str(),
                actual: n(actual),
                target: n(target),
                percent: show(lang, Fmt::Percent, value),
                raw: raw(value),
                bar: (value.unwrap_or(0.0) * 100.0).clamp(0.0, 150.0),
                band: band_of(value.unwrap_or(0.0)),
            }
        })
        .collect();
    let order = |m: &str| PlanMetric::ALL.iter().position(|x| x.as_str() == m);
    rows.sort_by(|a, b| {
        a.manager
            .cmp(&b.manager)
            .then(order(a.metric_key).cmp(&order(b.metric_key)))
    });
    rows
}

/// The plan bars as a grid: a row per manager, a column per planned metric.
fn plan_matrix(lang: Lang, bars: Vec<PlanBar>) -> Value {
    let mut metrics: Vec<&'static str> = Vec::new();
    for m in PlanMetric::ALL {
        if bars.iter().any(|b| b.metric_key == m.as_str()) {
            metrics.push(m.as_str());
        }
    }
    let mut rows: Vec<(String, String, Vec<Option<PlanBar>>)> = Vec::new();
    for b in bars {
        let i = metrics.iter().position(|m| *m == b.metric_key).unwrap_or(0);
        if rows.last().is_none_or(|r| r.1 != b.manager_id) {
            let mut cells = Vec::new();
            cells.resize_with(metrics.len(), || None);
            rows.push((b.manager.clone(), b.manager_id.clone(), cells));
        }
        if let Some(r) = rows.last_mut() {
            r.2[i] = Some(b);
        }
    }
    let head: Vec<&str> = metrics
        .iter()
        .map(|m| lang.t(&format!("plan_{m}")))
        .collect();
    let rows: Vec<Value> = rows
        .into_iter()
        .map(|(name, id, cells)| context! { name => name, id => id, cells => cells })
        .collect();
    context! { head => head, rows => rows }
}

/// How an attainment reads: met, close, far.
fn band_of(attainment: f64) -> &'static str {
    if attainment >= 1.0 {
        "good"
    } else if attainment >= 0.8 {
        "mid"
    } else {
        "low"
    }
}

/// A manager in the quality-vs-win-rate scatter.
#[derive(Serialize)]
struct Dot {
    x: f64,
    y: f64,
    label: String,
    small: bool,
    title: String,
}

/// The scatter's dots, in a 0..100 (score) by 0..1 (win rate) plot of 520 x 260 px.
fn scatter(lang: Lang, q: &QualityVsOutcome, names: &HashMap<String, String>) -> Vec<Dot> {
    q.managers
        .iter()
        .filter_map(|m| {
            let (score, win) = (m.average_quality?, m.win_rate.value?);
            let name = names
                .get(&m.manager_id)
                .cloned()
                .unwrap_or_else(|| m.manager_id.clone());
            Some(Dot {
                x: 40.0 + score / 100.0 * 460.0,
                y: 230.0 - win * 210.0,
                title: format!(
                    "{name}: {} · {} ({}/{})",
                    lang.number(score, 1),
                    show(lang, Fmt::Percent, Some(win)),
                    m.win_rate.numerator,
                    m.win_rate.denominator
                ),
                label: name,
                small: m.insufficient_data,
            })
        })
        .collect()
}

/// A win-rate figure with its interval: "42% (31–54%) · n = 60", marked when the sample is small.
fn rate_with_ci(lang: Lang, k: i64, n: i64) -> String {
    match (n > 0, wilson_95(k, n)) {
        (true, Some((lo, hi))) => format!(
            "{} ({}–{}) · n = {n}",
            show(lang, Fmt::Percent, Some(k as f64 / n as f64)),
            lang.number(lo * 100.0, 0),
            show(lang, Fmt::Percent, Some(hi))
                .replace(",0%", "%")
                .replace(".0%", "%")
        ),
        _ => format!("— · n = {n}"),
    }
}

/// A criterion's title, or its id where no scorecard names it.
fn title_of(titles: &[(String, String)], id: &str) -> String {
    titles
        .iter()
        .find(|(c, _)| c == id)
        .map(|(_, t)| t.clone())
        .unwrap_or_else(|| id.to_string())
}

fn names_of(directory: &[CrmManager]) -> HashMap<String, String> {
    directory
        .iter()
        .map(|m| (m.manager_id.clone(), m.name.clone()))
        .collect()
}

fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// A refusal of the API as a page.
fn api_error_page(e: ApiError, web: &WebUser, nonce: &str) -> Result<Response, String> {
    match e {
        ApiError::NotFound(_) => Ok(error_page(
            StatusCode::NOT_FOUND,
            web.lang,
            nonce,
            Some(&web.user),
        )),
        ApiError::Forbidden(_) => Ok(error_page(
            StatusCode::FORBIDDEN,
            web.lang,
            nonce,
            Some(&web.user),
        )),
        ApiError::BadRequest(m) => Err(m),
        other => Ok(other.into_response()),
    }
}

/// The presets of the period picker, with their links.
fn presets(lang: Lang, chosen: &str, team: &str, base: &str) -> Vec<Value> {
    ["this_month", "last_month", "this_quarter"]
        .iter()
        .map(|p| {
            let mut href = format!("{base}?period={p}");
            if !team.is_empty() {
                href.push_str(&format!("&team={}", urlencode(team)));
            }
            context! { code => p, label => lang.t(&format!("dash_{p}")), href => href, current => *p == chosen }
        })
        .collect()
}

fn here_of(base: &str, q: &DashQuery, span: Span, preset: &str) -> String {
    let mut parts = Vec::new();
    if preset == "custom" {
        parts.push(format!("from={}", span.first));
        parts.push(format!("to={}", span.last));
    } else {
        parts.push(format!("period={preset}"));
    }
    if !q.team.trim().is_empty() {
        parts.push(format!("team={}", urlencode(q.team.trim())));
    }
    format!("{base}?{}", parts.join("&"))
}

/// Everything the dashboard shows, from the API's answers.
struct Figures {
    now: KpiReport,
    before: KpiReport,
    rows: KpiReport,
    outcome: QualityVsOutcome,
    attention: Attention,
    deals: crate::analytics::deals::OpenDeals,
    calibration: crate::http::scores::Calibration,
    trends: crate::analytics::trends::Trends,
}

async fn figures(
    state: &AppState,
    web: &WebUser,
    span: Span,
    team: Option<&str>,
) -> Result<Figures, ApiError> {
    use crate::http::{analytics, deals, insights, scores};
    let kq = |s: Span, by: Option<GroupBy>| {
        let (from, to) = s.api_bounds();
        KpiQuery {
            from,
            to,
            manager_id: None,
            team: team.map(str::to_string),
            by,
        }
    };
    let (from, to) = span.api_bounds();
    let weeks = ((span.last - span.first).num_days() / 7 + 1).clamp(12, 104) as usize;
    let (now, before, rows, outcome, attention, deals, calibration, trends) = tokio::try_join!(
        analytics::kpis(State(state.clone()), web.auth(), Query(kq(span, None))),
        analytics::kpis(
            State(state.clone()),
            web.auth(),
            Query(kq(span.previous(), None))
        ),
        analytics::kpis(
            State(state.clone()),
            web.auth(),
            Query(kq(span, Some(GroupBy::Manager)))
        ),
        insights::quality_vs_outcome(
            State(state.clone()),
            web.auth(),
            Query(insights::OutcomeQuery {
                from: from.clone(),
                to: to.clone(),
                team: team.map(str::to_string),
            })
        ),
        insights::attention(
            State(state.clone()),
            web.auth(),
            Query(insights::AttentionQuery {
                from: Some(from.clone()),
                to: Some(to.clone()),
            })
        ),
        deals::open(
            State(state.clone()),
            web.auth(),
            Query(deals::OpenDealsQuery {
                manager_id: None,
                limit: Some(if team.is_some() { 500 } else { OPEN_DEALS }),
            })
        ),
        scores::calibration(
            State(state.clone()),
            web.auth(),
            Query(scores::CalibrationQuery {
                from: Some(from.clone()),
                to: Some(to.clone()),
            })
        ),
        insights::trends(
            State(state.clone()),
            web.auth(),
            Query(insights::TrendQuery {
                to: Some(to.clone()),
                weeks: Some(weeks),
                team: team.map(str::to_string),
            })
        ),
    )?;
    Ok(Figures {
        now: now.0,
        before: before.0,
        rows: rows.0,
        outcome: outcome.0,
        attention: attention.0,
        deals: deals.0,
        calibration: calibration.0,
        trends: trends.0,
    })
}

/// `/dashboard`: the head's view of the team (admin, qa, head; a manager gets 403).
async fn dashboard(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Query(q): Query<DashQuery>,
) -> Response {
    let lang = web.lang;
    if web.principal.role == Role::Manager {
        return error_page(StatusCode::FORBIDDEN, lang, &nonce, Some(&web.user));
    }
    let (span, preset, mut error) = match Span::from_query(&q, today(), lang) {
        Ok((s, p)) => (s, p, None),
        Err(e) => (
            Span::from_query(&DashQuery::default(), today(), lang)
                .map(|x| x.0)
                .unwrap_or(Span {
                    first: today(),
                    last: today(),
                }),
            "this_month",
            Some(e),
        ),
    };
    let team = Some(q.team.trim()).filter(|t| !t.is_empty());
    let directory = state
        .store
        .crm_manager_directory()
        .await
        .unwrap_or_default();
    let names = names_of(&directory);
    let here = here_of("/dashboard", &q, span, preset);
    // A period that does not parse shows the page with its message and no figures.
    let figures = match error {
        Some(_) => None,
        None => match figures(&state, &web, span, team).await {
            Ok(f) => Some(f),
            Err(e) => match api_error_page(e, &web, &nonce) {
                Ok(page) => return page,
                Err(message) => {
                    error = Some(message);
                    None
                }
            },
        },
    };
    let titles = super::criterion_titles(&state, lang).await;
    let tables = figures
        .as_ref()
        .map(|f| dashboard_tables(lang, f, &names, &directory, &titles, &here));
    if q.format == "csv" {
        let Some(tables) = &tables else {
            return ApiError::BadRequest(error.unwrap_or_default()).into_response();
        };
        return match tables.iter().find(|t| t.id == q.table) {
            Some(t) => csv_response(t, &format!("dashboard-{}-{}", span.first, span.last)),
            None => {
                ApiError::NotFound(format!("no table {:?} on this page", q.table)).into_response()
            }
        };
    }
    let teams: Vec<String> = {
        let mut t: Vec<String> = directory.iter().filter_map(|m| m.team.clone()).collect();
        t.sort();
        t.dedup();
        t
    };
    let previous = span.previous();
    let body = figures.as_ref().map(|f| {
        let now = f.now.kpis.as_ref();
        let before = f.before.kpis.as_ref();
        let groups: Vec<Value> = match (now, before) {
            (Some(n), Some(b)) => GROUPS
                .iter()
                .map(|(title, kpis)| {
                    let cards: Vec<Card> = kpis.iter().map(|k| card(lang, k, n, b)).collect();
                    context! { title => lang.t(title), cards => cards }
                })
                .collect(),
            _ => Vec::new(),
        };
        let now = now.cloned();
        let activity: Vec<Value> = now
            .iter()
            .flat_map(|k| k.activities_by_type.iter())
            .map(|a| {
                let key = format!("activities_by_type.{}", a.activity_type.as_str());
                context! {
                    key => key,
                    label => lang.t(&format!("activity_{}", a.activity_type.as_str())),
                    value => grouped(lang, a.count as f64, 0),
                    raw => a.count,
                }
            })
            .collect();
        let plan_metrics: Vec<Value> = now
            .iter()
            .flat_map(|k| k.plan_by_metric.iter())
            .map(|p| {
                context! {
                    key => format!("plan_by_metric.{}", p.metric.as_str()),
                    label => lang.t(&format!("plan_{}", p.metric.as_str())),
                    value => show(lang, Fmt::Percent, p.value),
                    raw => raw(p.value),
                    bar => (p.value.unwrap_or(0.0) * 100.0).clamp(0.0, 150.0),
                    band => band_of(p.value.unwrap_or(0.0)),
                }
            })
            .collect();
        let funnel = now.as_ref().map(|k| funnel(lang, k)).unwrap_or_default();
        let plans = plan_matrix(
            lang,
            now.as_ref()
                .map(|k| plan_bars(lang, k, &names))
                .unwrap_or_default(),
        );
        let dots = scatter(lang, &f.outcome, &names);
        let flags = attention_items(lang, f, &names, &titles, team);
        let model_note = f.deals.note.clone();
        let trend = trend_data(lang, &f.trends, &names);
        context! {
            groups => groups,
            activity => activity,
            plan_metrics => plan_metrics,
            funnel => funnel,
            funnel_height => funnel_height(&now),
            plans => plans,
            dots => dots,
            flags => flags,
            model_note => model_note,
            trend => trend,
            outcome_deals => f.outcome.deals,
            min_sample => f.outcome.min_sample,
        }
    });
    let has_crm = !directory.is_empty();
    let ctx = PageCtx {
        lang,
        nonce: &nonce,
        user: Some(&web.user),
        here: &here,
        page: "dashboard",
    };
    let mut response = render(
        "dashboard.html",
        ctx,
        context! {
            presets => presets(lang, preset, q.team.trim(), "/dashboard"),
            preset => preset,
            first => span.first.to_string(),
            last => span.last.to_string(),
            previous_first => previous.first.to_string(),
            previous_last => previous.last.to_string(),
            teams => teams,
            team => q.team.trim(),
            body => body,
            tables => tables,
            has_crm => has_crm,
            error => error,
        },
    );
    if response.status() == StatusCode::OK && figures.is_none() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

fn funnel_height(now: &Option<Kpis>) -> i64 {
    now.as_ref()
        .map_or(0, |k| (k.stage_conversion.len() as i64 + 1) * 40)
}

/// The trends as uPlot reads them: x in Unix seconds, one line per group (the scope's first),
/// scores 0..100 and win rates in %, null where a week has nothing.
fn trend_data(
    lang: Lang,
    t: &crate::analytics::trends::Trends,
    names: &HashMap<String, String>,
) -> serde_json::Value {
    let label = |g: &Option<String>| match (g, &t.team) {
        (None, None) => lang.t("dash_company").to_string(),
        (None, Some(team)) => team.clone(),
        (Some(m), Some(_)) => names.get(m).cloned().unwrap_or_else(|| m.clone()),
        (Some(team), None) => team.clone(),
    };
    serde_json::json!({
        "x": t.weeks.iter().map(|w| w.timestamp()).collect::<Vec<_>>(),
        "series": t.series.iter().map(|s| serde_json::json!({
            "label": label(&s.group),
            "score": s.average_score,
            "win": s.win_rate.iter().map(|r| r.value.map(|v| (v * 1000.0).round() / 10.0)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "texts": {
            "score": lang.t("kpi_calls_average_score"),
            "win": lang.t("kpi_win_rate"),
        },
    })
}

/// The managers whose figures an attention flag points at, by (manager, kpi).
fn flagged(f: &Figures) -> Vec<(String, &'static str)> {
    let mut out = Vec::new();
    for item in &f.attention.managers {
        for s in &item.signals {
            let key = match s.kind {
                SignalKind::CallQuality => "calls.average_score",
                SignalKind::WinRate => "win_rate",
                SignalKind::SlaBreachRate => "sla_breach_rate",
                SignalKind::PlanAttainment => "plan_attainment",
            };
            out.push((item.manager_id.clone(), key));
        }
    }
    out
}

fn attention_items(
    lang: Lang,
    f: &Figures,
    names: &HashMap<String, String>,
    titles: &[(String, String)],
    team: Option<&str>,
) -> Vec<Value> {
    f.attention
        .managers
        .iter()
        .filter(|m| team.is_none_or(|t| m.team == t))
        .map(|m| {
            let signals: Vec<Value> = m
                .signals
                .iter()
                .map(|s| {
                    let (fmt, key) = match s.kind {
                        SignalKind::CallQuality => (Fmt::Score, "calls_average_score"),
                        SignalKind::WinRate => (Fmt::Percent, "win_rate"),
                        SignalKind::SlaBreachRate => (Fmt::Percent, "sla_breach_rate"),
                        SignalKind::PlanAttainment => (Fmt::Percent, "plan_attainment"),
                    };
                    context! {
                        label => lang.t(&format!("kpi_{key}")),
                        manager => show(lang, fmt, Some(s.manager_value)),
                        team => show(lang, fmt, Some(s.team_value)),
                        sample => s.sample,
                    }
                })
                .collect();
            let calls: Vec<Value> = m
                .evidence_calls
                .iter()
                .map(|c| context! { href => format!("/calls/{}", c.call_id), score => lang.number(c.overall, 0) })
                .collect();
            context! {
                manager_id => m.manager_id.clone(),
                name => names.get(&m.manager_id).cloned().unwrap_or_else(|| m.manager_id.clone()),
                team => m.team.clone(),
                signals => signals,
                calls => calls,
                focus => m.training_focus.iter().map(|c| title_of(titles, c)).collect::<Vec<_>>(),
            }
        })
        .collect()
}

/// The dashboard's tables (each also a CSV download).
fn dashboard_tables(
    lang: Lang,
    f: &Figures,
    names: &HashMap<String, String>,
    directory: &[CrmManager],
    titles: &[(String, String)],
    here: &str,
) -> Vec<Table> {
    let teams: HashMap<&str, &str> = directory
        .iter()
        .filter_map(|m| Some((m.manager_id.as_str(), m.team.as_deref()?)))
        .collect();
    let flags = flagged(f);
    // Managers side by side.
    let mut head = vec![
        lang.t("dash_col_manager").to_string(),
        lang.t("dash_col_team").to_string(),
    ];
    head.extend(
        MANAGER_COLUMNS
            .iter()
            .zip(MANAGER_HEADS)
            .map(|(_, h)| lang.t(h).to_string()),
    );
    let mut managers = Table::new("managers", head, here);
    for (i, _) in MANAGER_COLUMNS.iter().enumerate() {
        managers.num[i + 2] = true;
    }
    for row in f.rows.rows.iter().flatten() {
        let Some(id) = row.manager_id.as_deref() else {
            continue;
        };
        let mut cells = vec![
            Cell::link(
                names.get(id).cloned().unwrap_or_else(|| id.to_string()),
                format!("/managers/{}", urlencode(id)),
            ),
            Cell::text(teams.get(id).copied().unwrap_or("")),
        ];
        for k in MANAGER_COLUMNS {
            let mut c =
                Cell::figure(lang, k.fmt, kpi_value(&row.kpis, k.key)).kpi(k.key, Some(id), None);
            c.flag = flags.iter().any(|(m, key)| m == id && *key == k.key);
            cells.push(c);
        }
        managers.rows.push(cells);
    }
    if let Some(scope) = &f.now.kpis {
        let team = f.now.team.as_deref();
        let n = managers.rows.len().max(1) as f64;
        let mut foot = vec![
            Cell::text(lang.t(if team.is_some() {
                "dash_team_average"
            } else {
                "dash_company_average"
            })),
            Cell::text(team.unwrap_or("")),
        ];
        for k in MANAGER_COLUMNS {
            // Counts are averaged over the managers; ratios are the scope's own.
            let v = kpi_value(scope, k.key);
            let v = if k.fmt == Fmt::Count || k.fmt == Fmt::Money {
                v.map(|v| v / n)
            } else {
                v
            };
            foot.push(Cell::figure(
                lang,
                if k.fmt == Fmt::Count {
                    Fmt::Decimal
                } else {
                    k.fmt
                },
                v,
            ));
        }
        managers.foot = Some(foot);
    }

    // Lost reasons.
    let mut lost = Table::new(
        "lost_reasons",
        vec![
            lang.t("dash_col_reason").into(),
            lang.t("dash_col_deals").into(),
            lang.t("dash_col_share").into(),
        ],
        here,
    );
    lost.num = vec![false, true, true];
    for r in f.now.kpis.iter().flat_map(|k| k.lost_reasons.iter()) {
        let key = format!("lost_reasons.{}", r.reason.as_deref().unwrap_or(""));
        lost.rows.push(vec![
            Cell::text(
                r.reason
                    .clone()
                    .unwrap_or_else(|| lang.t("dash_no_reason").into()),
            ),
            Cell::figure(lang, Fmt::Count, Some(r.ratio.numerator as f64)),
            Cell::figure(lang, Fmt::Percent, r.ratio.value).kpi(&key, None, None),
        ]);
    }

    // Win rate by call-quality band.
    let mut bands = Table::new(
        "quality_bands",
        vec![
            lang.t("dash_col_band").into(),
            lang.t("dash_col_win_rate").into(),
            lang.t("dash_col_sample").into(),
        ],
        here,
    );
    bands.num = vec![false, true, false];
    for b in &f.outcome.score_bands {
        bands.rows.push(vec![
            Cell::text(format!(
                "{}–{}",
                lang.number(b.min_score, 0),
                lang.number(b.max_score, 0)
            )),
            Cell {
                text: rate_with_ci(lang, b.win_rate.numerator, b.win_rate.denominator),
                raw: Some(raw(b.win_rate.value)),
                class: "num",
                ..Default::default()
            },
            Cell::text(if b.insufficient_data {
                lang.t("dash_small_sample")
            } else {
                ""
            }),
        ]);
    }

    // Each criterion's lift.
    let mut criteria = Table::new(
        "criteria_lift",
        vec![
            lang.t("dash_col_criterion").into(),
            lang.t("dash_col_met").into(),
            lang.t("dash_col_not_met").into(),
            lang.t("dash_col_lift").into(),
            lang.t("dash_col_sample").into(),
        ],
        here,
    );
    criteria.num = vec![false, true, true, true, false];
    let mut lifts: Vec<_> = f.outcome.criteria.iter().collect();
    lifts.sort_by(|a, b| {
        b.lift
            .unwrap_or(f64::MIN)
            .total_cmp(&a.lift.unwrap_or(f64::MIN))
    });
    for c in lifts {
        let lift = c.lift.map(|l| {
            format!(
                "{}{} {}",
                sign(l),
                lang.number(l.abs() * 100.0, 1),
                lang.t("unit_pp")
            )
        });
        criteria.rows.push(vec![
            Cell::text(title_of(titles, &c.criterion_id)),
            Cell::text(rate_with_ci(
                lang,
                c.met.win_rate.numerator,
                c.met.win_rate.denominator,
            )),
            Cell::text(rate_with_ci(
                lang,
                c.not_met.win_rate.numerator,
                c.not_met.win_rate.denominator,
            )),
            Cell {
                text: lift.unwrap_or_else(|| "—".into()),
                raw: Some(raw(c.lift)),
                class: "num",
                ..Default::default()
            },
            Cell::text(if c.insufficient_data {
                lang.t("dash_small_sample")
            } else {
                ""
            }),
        ]);
    }

    // Open deals.
    let mut deals = Table::new(
        "open_deals",
        vec![
            lang.t("dash_col_deal").into(),
            lang.t("dash_col_manager").into(),
            lang.t("dash_col_stage").into(),
            lang.t("dash_col_win_probability").into(),
            lang.t("dash_col_last_call").into(),
            lang.t("dash_col_days_idle").into(),
            lang.t("dash_col_next_step").into(),
        ],
        here,
    );
    deals.num = vec![false, false, false, true, true, true, false];
    let in_scope = |m: &str| {
        f.now.team.is_none()
            || f.rows
                .rows
                .iter()
                .flatten()
                .any(|r| r.manager_id.as_deref() == Some(m))
    };
    for d in f
        .deals
        .deals
        .iter()
        .filter(|d| in_scope(&d.manager_id))
        .take(OPEN_DEALS)
    {
        let next = d
            .last_call_next_steps
            .first()
            .map(|s| s.action.clone())
            .or_else(|| d.next_steps.first().map(|s| s.text.clone()))
            .unwrap_or_default();
        let score = match (d.call_quality, d.last_call_id) {
            (Some(q), Some(id)) => Cell {
                href: Some(format!("/calls/{id}")),
                ..Cell::figure(lang, Fmt::Score, Some(q))
            },
            (q, _) => Cell::figure(lang, Fmt::Score, q),
        };
        deals.rows.push(vec![
            Cell::text(d.deal_id.clone()),
            Cell::link(
                names
                    .get(&d.manager_id)
                    .cloned()
                    .unwrap_or_else(|| d.manager_id.clone()),
                format!("/managers/{}", urlencode(&d.manager_id)),
            ),
            Cell::text(d.stage.clone().unwrap_or_default()),
            Cell::figure(lang, Fmt::Percent, d.win_probability),
            score,
            Cell::figure(lang, Fmt::Decimal, Some(d.days_since_last_touch)),
            Cell::text(next),
        ]);
    }

    // Calibration.
    let mut calibration = Table::new(
        "calibration",
        vec![
            lang.t("dash_col_criterion").into(),
            lang.t("dash_col_pairs").into(),
            lang.t("dash_col_exact").into(),
            lang.t("dash_col_within_one").into(),
            lang.t("dash_col_kappa").into(),
        ],
        here,
    );
    calibration.num = vec![false, true, true, true, true];
    for a in &f.calibration.criteria {
        calibration.rows.push(vec![
            Cell::text(title_of(titles, &a.criterion)),
            Cell::figure(lang, Fmt::Count, Some(a.pairs as f64)),
            Cell::figure(lang, Fmt::Percent, a.exact_rate),
            Cell::figure(lang, Fmt::Percent, a.within_one_rate),
            Cell {
                text: a
                    .weighted_kappa
                    .map(|k| lang.number(k, 2))
                    .unwrap_or_else(|| "—".into()),
                raw: Some(raw(a.weighted_kappa)),
                class: "num",
                ..Default::default()
            },
        ]);
    }
    // Where QA and the model disagreed, each linking to the call.
    let mut disagreements = Table::new(
        "disagreements",
        vec![
            lang.t("dash_col_when").into(),
            lang.t("dash_col_criterion").into(),
            lang.t("dash_col_ai").into(),
            lang.t("dash_col_qa").into(),
            lang.t("dash_col_comment").into(),
            lang.t("dash_col_call").into(),
        ],
        here,
    );
    for d in &f.calibration.disagreements {
        disagreements.rows.push(vec![
            Cell::text(
                crate::domain::to_datetime(d.qa_at)
                    .format("%Y-%m-%d")
                    .to_string(),
            ),
            Cell::text(title_of(titles, &d.criterion_id)),
            Cell::text(lang.t(&format!("level_{}", d.model_level))),
            Cell::text(lang.t(&format!("level_{}", d.qa_level))),
            Cell::text(d.qa_comment.clone().unwrap_or_default()),
            Cell::link(
                lang.t("dash_open_call"),
                format!("/calls/{}#criterion-{}", d.call_id, d.criterion_id),
            ),
        ]);
    }
    vec![
        managers,
        lost,
        bands,
        criteria,
        deals,
        calibration,
        disagreements,
    ]
}

/// `/managers/{id}`: one manager's page (a manager sees only their own: another's is a 404).
async fn manager_page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
    Query(q): Query<DashQuery>,
) -> Response {
    let lang = web.lang;
    if let Some(own) = web.principal.scope() {
        if own.as_str() != id {
            return error_page(StatusCode::NOT_FOUND, lang, &nonce, Some(&web.user));
        }
    }
    let (span, preset, error) = match Span::from_query(&q, today(), lang) {
        Ok((s, p)) => (s, p, None),
        Err(e) => (
            Span::from_query(&DashQuery::default(), today(), lang)
                .map(|x| x.0)
                .unwrap_or(Span {
                    first: today(),
                    last: today(),
                }),
            "this_month",
            Some(e),
        ),
    };
    let base = format!("/managers/{}", urlencode(&id));
    let here = here_of(
        &base,
        &DashQuery {
            team: String::new(),
            ..q.clone()
        },
        span,
        preset,
    );
    let directory = state
        .store
        .crm_manager_directory()
        .await
        .unwrap_or_default();
    let me = directory.iter().find(|m| m.manager_id == id);
    if me.is_none()
        && !state
            .store
            .manager_has_scored_calls(&id)
            .await
            .unwrap_or(false)
    {
        return error_page(StatusCode::NOT_FOUND, lang, &nonce, Some(&web.user));
    }
    let (from, to) = span.api_bounds();
    let report = crate::http::reports::manager(
        State(state.clone()),
        web.auth(),
        Path(id.clone()),
        Query(crate::http::reports::PeriodQuery {
            from: from.clone(),
            to: to.clone(),
        }),
    )
    .await;
    let report = match report {
        Ok(Json(r)) => r,
        Err(e) => match api_error_page(e, &web, &nonce) {
            Ok(page) => return page,
            Err(m) => return ApiError::BadRequest(m).into_response(),
        },
    };
    let deals = crate::http::deals::open(
        State(state.clone()),
        web.auth(),
        Query(crate::http::deals::OpenDealsQuery {
            manager_id: Some(id.clone()),
            limit: Some(50),
        }),
    )
    .await
    .map(|j| j.0)
    .ok();
    // The team's figures beside the manager's: an aggregate, as the report's team quality is.
    let team_kpis = match &report.team {
        Some(t) => crate::analytics::kpis::compute(
            &state.store,
            &state.config.analytics,
            &KpiScope::Team(t.clone()),
            span.period(),
        )
        .await
        .ok(),
        None => None,
    };
    let names = names_of(&directory);
    let titles = super::criterion_titles(&state, lang).await;
    let name = me.map(|m| m.name.clone()).unwrap_or_else(|| id.clone());

    let k = &report.kpis;
    let cards: Vec<Value> = MANAGER_COLUMNS
        .iter()
        .map(|c| {
            let v = kpi_value(k, c.key);
            let t = team_kpis.as_ref().and_then(|t| kpi_value(t, c.key));
            let t = if c.fmt == Fmt::Count {
                // A team's count is per manager here, to compare with one manager's.
                let n = directory
                    .iter()
                    .filter(|m| m.team == report.team)
                    .count()
                    .max(1) as f64;
                t.map(|t| t / n)
            } else {
                t
            };
            let fmt_team = if c.fmt == Fmt::Count {
                Fmt::Decimal
            } else {
                c.fmt
            };
            context! {
                key => c.key,
                label => lang.t(&label_key(c.key)),
                value => show(lang, c.fmt, v),
                raw => raw(v),
                team => show(lang, fmt_team, t),
                team_raw => raw(t),
            }
        })
        .collect();
    let weakest = report.quality.weakest_criteria.first().cloned();
    let criteria: Vec<Value> = report
        .quality
        .criteria
        .iter()
        .map(|c| {
            context! {
                id => c.criterion_id.clone(),
                label => title_of(&titles, &c.criterion_id),
                average => c.average.map(|a| lang.number(a * 100.0, 0)).unwrap_or_else(|| "—".into()),
                raw => raw(c.average),
                bar => (c.average.unwrap_or(0.0) * 100.0).clamp(0.0, 100.0),
                team => c.team_average.map(|a| lang.number(a * 100.0, 0)).unwrap_or_else(|| "—".into()),
                team_bar => (c.team_average.unwrap_or(0.0) * 100.0).clamp(0.0, 100.0),
                met => show(lang, Fmt::Percent, c.met.value),
                weakest => weakest.as_deref() == Some(c.criterion_id.as_str()),
            }
        })
        .collect();
    let weak_calls = match &weakest {
        Some(c) => state
            .store
            .weak_criterion_calls(&id, c, span.period().from, span.period().to, 5)
            .await
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let weak_calls: Vec<Value> = weak_calls
        .into_iter()
        .map(|w| {
            let href = match w.at_ms {
                Some(ms) => format!("/calls/{}?t={}", w.call_id, ms as f64 / 1000.0),
                None => format!("/calls/{}", w.call_id),
            };
            context! {
                href => href,
                when => crate::domain::to_datetime(w.call_at).format("%Y-%m-%d").to_string(),
                level => lang.t(&format!("level_{}", w.level)),
                quote => w.quote,
                at => w.at_ms.map(super::i18n::duration),
            }
        })
        .collect();
    let themes = coaching_themes(&report.latest_coaching);
    let trend = trend_svg(lang, &report.quality.weekly_trend);
    let plans = plan_bars(lang, k, &names);
    let funnel_bars = funnel(lang, k);
    let deals_view: Vec<Value> = deals
        .iter()
        .flat_map(|d| d.deals.iter())
        .map(|d| {
            context! {
                id => d.deal_id.clone(),
                stage => d.stage.clone().unwrap_or_default(),
                probability => show(lang, Fmt::Percent, d.win_probability),
                score => d.call_quality.map(|q| lang.number(q, 0)),
                call => d.last_call_id.map(|c| format!("/calls/{c}")),
                idle => lang.number(d.days_since_last_touch, 1),
                next => d.last_call_next_steps.iter().map(|s| s.action.clone()).chain(d.next_steps.iter().map(|s| s.text.clone())).collect::<Vec<_>>(),
            }
        })
        .collect();
    let ctx = PageCtx {
        lang,
        nonce: &nonce,
        user: Some(&web.user),
        here: &here,
        page: "manager",
    };
    render(
        "manager.html",
        ctx,
        context! {
            manager_id => id,
            name => name,
            team => report.team.clone(),
            presets => presets(lang, preset, "", &base),
            preset => preset,
            first => span.first.to_string(),
            last => span.last.to_string(),
            cards => cards,
            calls_analysed => report.quality.calls_analysed,
            average => report.quality.average_overall.map(|a| lang.number(a, 1)),
            criteria => criteria,
            weakest => weakest.map(|w| title_of(&titles, &w)),
            weak_calls => weak_calls,
            themes => themes,
            trend => trend,
            plans => plans,
            funnel => funnel_bars,
            funnel_height => funnel_height(&Some(k.clone())),
            deals => deals_view,
            model_note => deals.and_then(|d| d.note),
            error => error,
        },
    )
}

/// The weekly score trend as an SVG polyline in a 520 x 170 plot (scores 0..100 upward).
fn trend_svg(lang: Lang, weeks: &[crate::analytics::reports::WeekPoint]) -> Value {
    let points: Vec<(&crate::analytics::reports::WeekPoint, f64)> = weeks
        .iter()
        .filter_map(|w| Some((w, w.average_overall?)))
        .collect();
    let n = points.len().max(2) as f64 - 1.0;
    let xy: Vec<(f64, f64)> = points
        .iter()
        .enumerate()
        .map(|(i, (_, v))| {
            let x = if points.len() == 1 {
                275.0
            } else {
                50.0 + i as f64 / n * 450.0
            };
            (x, 140.0 - v.clamp(0.0, 100.0) * 1.2)
        })
        .collect();
    let dots: Vec<Value> = xy
        .iter()
        .zip(&points)
        .map(|((x, y), (w, v))| {
            context! {
                x => x, y => y,
                title => format!("{}: {} ({} {})", w.week_start.format("%Y-%m-%d"), lang.number(*v, 1), w.calls, lang.t("mgr_calls_unit")),
            }
        })
        .collect();
    let step = (points.len() / 6).max(1);
    let labels: Vec<Value> = xy
        .iter()
        .zip(&points)
        .enumerate()
        .filter(|(i, _)| i % step == 0)
        .map(|(_, ((x, _), (w, _)))| context! { x => x, text => w.week_start.format("%d.%m").to_string() })
        .collect();
    let line: Vec<String> = xy.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect();
    context! { points => line.join(" "), dots => dots, labels => labels }
}

/// The most frequent improvements across the recent scorecards, with an example call each.
fn coaching_themes(recent: &[crate::analytics::reports::Coaching]) -> Vec<Value> {
    let mut seen: Vec<(String, usize, String, Option<String>)> = Vec::new();
    for c in recent {
        for i in &c.improvements {
            let key = i.text.trim().to_lowercase();
            match seen.iter_mut().find(|s| s.0 == key) {
                Some(s) => s.1 += 1,
                None => seen.push((
                    key,
                    1,
                    i.text.clone(),
                    Some(format!("/calls/{}", c.call_id)),
                )),
            }
        }
    }
    seen.sort_by_key(|s| std::cmp::Reverse(s.1));
    seen.into_iter()
        .take(6)
        .map(|(_, n, text, href)| context! { text => text, count => n, href => href })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn presets_are_whole_inclusive_months_and_quarters() {
        let q = |p: &str| DashQuery {
            period: p.into(),
            ..Default::default()
        };
        let today = day("2026-03-18");
        let (s, p) = Span::from_query(&q(""), today, Lang::En).expect("valid");
        assert_eq!(
            (s.first, s.last, p),
            (day("2026-03-01"), day("2026-03-31"), "this_month")
        );
        assert_eq!(s.api_bounds(), ("2026-03-01".into(), "2026-04-01".into()));
        let (s, _) = Span::from_query(&q("last_month"), today, Lang::En).expect("valid");
        assert_eq!((s.first, s.last), (day("2026-02-01"), day("2026-02-28")));
        let (s, _) = Span::from_query(&q("this_quarter"), today, Lang::En).expect("valid");
        assert_eq!((s.first, s.last), (day("2026-01-01"), day("2026-03-31")));
        // January's last month is December of the year before.
        let (s, _) =
            Span::from_query(&q("last_month"), day("2026-01-05"), Lang::En).expect("valid");
        assert_eq!((s.first, s.last), (day("2025-12-01"), day("2025-12-31")));
    }

    #[test]
    fn custom_dates_include_the_last_day_and_compare_with_as_many_days_before() {
        let q = DashQuery {
            from: "2026-03-01".into(),
            to: "2026-03-31".into(),
            ..Default::default()
        };
        let (s, p) = Span::from_query(&q, day("2026-06-01"), Lang::Ru).expect("valid");
        assert_eq!(p, "custom");
        assert_eq!(s.api_bounds(), ("2026-03-01".into(), "2026-04-01".into()));
        let before = s.previous();
        assert_eq!(
            (before.first, before.last),
            (day("2026-01-29"), day("2026-02-28"))
        );
        let reversed = DashQuery {
            from: "2026-03-02".into(),
            to: "2026-03-01".into(),
            ..Default::default()
        };
        assert!(Span::from_query(&reversed, day("2026-06-01"), Lang::En).is_err());
        let bad = DashQuery {
            from: "March".into(),
            to: "2026-03-01".into(),
            ..Default::default()
        };
        assert!(Span::from_query(&bad, day("2026-06-01"), Lang::En).is_err());
    }

    #[test]
    fn numbers_are_grouped_as_each_language_writes_them() {
        assert_eq!(grouped(Lang::En, 1234567.0, 0), "1,234,567");
        assert_eq!(grouped(Lang::Ru, 1234567.0, 0), "1\u{a0}234\u{a0}567");
        assert_eq!(grouped(Lang::En, 999.0, 0), "999");
        assert_eq!(grouped(Lang::En, -1500.0, 0), "−1,500");
        assert_eq!(show(Lang::Ru, Fmt::Percent, Some(0.4567)), "45,7%");
        assert_eq!(show(Lang::En, Fmt::Count, None), "—");
    }

    #[test]
    fn a_table_downloads_as_exactly_its_texts_with_a_bom() {
        let mut t = Table::new(
            "x",
            vec!["Менеджер".into(), "Win rate".into()],
            "/dashboard?period=this_month",
        );
        assert_eq!(t.csv, "/dashboard?period=this_month&format=csv&table=x");
        t.rows.push(vec![
            Cell::text("Анна, \"East\""),
            Cell::figure(Lang::Ru, Fmt::Percent, Some(0.5)),
        ]);
        let bytes = t.to_csv().expect("csv");
        assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
        let text = std::str::from_utf8(&bytes[3..]).expect("utf-8");
        assert_eq!(
            text,
            "Менеджер,Win rate\n\"Анна, \"\"East\"\"\",\"50,0%\"\n"
        );
    }
}
