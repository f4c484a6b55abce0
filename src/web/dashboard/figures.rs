//! The KPI figures of the pages: which ones, how each reads (format, which way is good), its
//! value from the API's `Kpis` by its `data-kpi` name, and a card against the previous period.

use serde::Serialize;

use crate::analytics::kpis::Kpis;
use crate::web::i18n::Lang;

/// How a figure reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fmt {
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
pub(super) enum Better {
    Higher,
    Lower,
    Neither,
}

/// A KPI of the cards and the managers table: its `data-kpi` name, how it reads, which way is
/// good.
pub(super) struct Kpi {
    pub(super) key: &'static str,
    pub(super) fmt: Fmt,
    pub(super) better: Better,
}

pub(super) const fn kpi(key: &'static str, fmt: Fmt, better: Better) -> Kpi {
    Kpi { key, fmt, better }
}

/// The four groups of cards, by i18n key, and their figures.
pub(super) const GROUPS: &[(&str, &[Kpi])] = &[
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
pub(super) const MANAGER_COLUMNS: &[Kpi] = &[
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
pub(super) const MANAGER_HEADS: [&str; 12] = [
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
pub(super) fn show(lang: Lang, fmt: Fmt, v: Option<f64>) -> String {
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
pub(super) fn grouped(lang: Lang, v: f64, decimals: usize) -> String {
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
pub(super) struct Card {
    pub(super) key: &'static str,
    pub(super) label: &'static str,
    pub(super) value: String,
    pub(super) raw: String,
    pub(super) previous: String,
    pub(super) previous_raw: String,
    pub(super) change: String,
    /// `up-good`, `down-bad`...: how the change reads.
    pub(super) trend: &'static str,
}

pub(super) fn raw(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

pub(super) fn card(lang: Lang, k: &Kpi, now: &Kpis, before: &Kpis) -> Card {
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

pub(super) fn sign(d: f64) -> &'static str {
    if d > 0.0 {
        "+"
    } else if d < 0.0 {
        "−"
    } else {
        "±"
    }
}

pub(super) fn label_key(kpi: &str) -> String {
    format!("kpi_{}", kpi.replace('.', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_as_each_language_writes_them() {
        assert_eq!(grouped(Lang::En, 1234567.0, 0), "1,234,567");
        assert_eq!(grouped(Lang::Ru, 1234567.0, 0), "1\u{a0}234\u{a0}567");
        assert_eq!(grouped(Lang::En, 999.0, 0), "999");
        assert_eq!(grouped(Lang::En, -1500.0, 0), "−1,500");
        assert_eq!(show(Lang::Ru, Fmt::Percent, Some(0.4567)), "45,7%");
        assert_eq!(show(Lang::En, Fmt::Count, None), "—");
    }
}
