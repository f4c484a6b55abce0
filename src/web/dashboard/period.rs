//! The period of a dashboard page as people say it: a preset or custom dates whose end is
//! inclusive, turned into the API's half-open `[from, to)` in one place.

use chrono::{Datelike, Days, Months, NaiveDate, Utc};
use minijinja::{context, Value};
use serde::{Deserialize, Serialize};

use crate::analytics::kpis::Period;
use crate::web::i18n::Lang;
use crate::web::session::urlencode;

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

    /// The query's period and preset, or (when it does not parse) this month with the reason.
    pub(super) fn or_this_month(
        q: &DashQuery,
        today: NaiveDate,
        lang: Lang,
    ) -> (Self, &'static str, Option<String>) {
        match Self::from_query(q, today, lang) {
            Ok((span, preset)) => (span, preset, None),
            Err(e) => {
                let month = Self::from_query(&DashQuery::default(), today, lang)
                    .map(|x| x.0)
                    .unwrap_or(Self {
                        first: today,
                        last: today,
                    });
                (month, "this_month", Some(e))
            }
        }
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

    pub(super) fn period(self) -> Period {
        let (from, to) = self.api_bounds();
        Period::parse(&from, &to).unwrap_or(Period { from: 0, to: 1 })
    }
}

pub(super) fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The presets of the period picker, with their links.
pub(super) fn presets(lang: Lang, chosen: &str, team: &str, base: &str) -> Vec<Value> {
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

pub(super) fn here_of(base: &str, q: &DashQuery, span: Span, preset: &str) -> String {
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
}
