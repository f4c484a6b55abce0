//! The charts' geometry: the funnel, plan bars and grid, the quality/win-rate scatter and the
//! score trend as numbers the templates draw as SVG, and the weekly trends as uPlot data.

use std::collections::HashMap;

use minijinja::{context, Value};
use serde::Serialize;

use super::figures::{grouped, raw, show, Fmt};
use crate::analytics::entity::PlanMetric;
use crate::analytics::insights::QualityVsOutcome;
use crate::analytics::kpis::Kpis;
use crate::analytics::stats::wilson_95;
use crate::web::i18n::Lang;

/// One bar of the funnel.
#[derive(Serialize)]
pub(super) struct FunnelBar {
    pub(super) stage: String,
    pub(super) count: i64,
    pub(super) count_text: String,
    pub(super) y: i64,
    pub(super) x: f64,
    pub(super) width: f64,
    /// Conversion from the stage before, shown between the bars.
    pub(super) conversion: Option<String>,
    pub(super) conversion_raw: String,
    pub(super) conversion_key: String,
}

/// A stage, the deals that reached it, and the conversion into it (value, `from>to`).
pub(super) type FunnelStage = (String, i64, Option<(f64, String)>);

/// The funnel's geometry: deals reaching each stage (from the stage conversions' counts).
pub(super) fn funnel(lang: Lang, k: &Kpis) -> Vec<FunnelBar> {
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
pub(super) struct PlanBar {
    pub(super) manager: String,
    pub(super) manager_id: String,
    pub(super) metric: &'static str,
    pub(super) metric_key: &'static str,
    pub(super) actual: String,
    pub(super) target: String,
    pub(super) percent: String,
    pub(super) raw: String,
    /// Bar length on a track of 150 where the target is at 100.
    pub(super) bar: f64,
    pub(super) band: &'static str,
}

pub(super) fn plan_bars(lang: Lang, k: &Kpis, names: &HashMap<String, String>) -> Vec<PlanBar> {
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
pub(super) fn plan_matrix(lang: Lang, bars: Vec<PlanBar>) -> Value {
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
pub(super) fn band_of(attainment: f64) -> &'static str {
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
pub(super) struct Dot {
    pub(super) x: f64,
    pub(super) y: f64,
    pub(super) label: String,
    pub(super) small: bool,
    pub(super) title: String,
}

/// The scatter's dots, in a 0..100 (score) by 0..1 (win rate) plot of 520 x 260 px.
pub(super) fn scatter(
    lang: Lang,
    q: &QualityVsOutcome,
    names: &HashMap<String, String>,
) -> Vec<Dot> {
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
pub(super) fn rate_with_ci(lang: Lang, k: i64, n: i64) -> String {
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

pub(super) fn funnel_height(now: &Option<Kpis>) -> i64 {
    now.as_ref()
        .map_or(0, |k| (k.stage_conversion.len() as i64 + 1) * 40)
}

/// The trends as uPlot reads them: x in Unix seconds, one line per group (the scope's first),
/// scores 0..100 and win rates in %, null where a week has nothing.
pub(super) fn trend_data(
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

/// The weekly score trend as an SVG polyline in a 520 x 170 plot (scores 0..100 upward).
pub(super) fn trend_svg(lang: Lang, weeks: &[crate::analytics::reports::WeekPoint]) -> Value {
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
