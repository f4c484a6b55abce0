//! `/managers/{id}`: one manager's page.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use minijinja::{context, Value};

use super::charts::{funnel, funnel_height, plan_bars, trend_svg};
use super::figures::{kpi_value, label_key, raw, show, Fmt, MANAGER_COLUMNS};
use super::period::{here_of, presets, today, DashQuery, Span};
use super::{api_error_page, names_of, title_of};
use crate::http::{ApiError, AppState};
use crate::store::KpiScope;
use crate::web::session::{urlencode, WebUser};
use crate::web::{error_page, render, Nonce, PageCtx};

/// `/managers/{id}`: one manager's page (a manager sees only their own: another's is a 404).
pub(super) async fn manager_page(
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
    let (span, preset, error) = Span::or_this_month(&q, today(), lang);
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
            team: None,
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
    let titles = crate::web::criterion_titles(&state, lang).await;
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
                at => w.at_ms.map(crate::web::i18n::duration),
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

/// The most frequent improvements across the recent scorecards, with an example call each.
pub(super) fn coaching_themes(recent: &[crate::analytics::reports::Coaching]) -> Vec<Value> {
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
