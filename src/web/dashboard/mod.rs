//! The sales dashboards (decision 0017): the head's dashboard (`/dashboard`) and each manager's
//! own page (`/managers/{id}`).
//!
//! Every figure comes from the API's handlers (`/api/v1/kpis`, the insights, open deals,
//! calibration, the manager report), called with the session's principal, so the role rules
//! and the definitions are the API's (docs/crm-data.md). This module only lays them out: KPI
//! cards against the previous period, server-rendered SVG charts, tables that sort in the
//! browser and download as CSV from the same URL (`format=csv&table=...`). Every figure carries
//! `data-kpi` and `data-value` (the raw number) so tests and readers check it against the API.

mod charts;
mod figures;
mod manager;
mod period;
mod table;

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use minijinja::{context, Value};

use self::charts::{
    band_of, funnel, funnel_height, plan_bars, plan_matrix, rate_with_ci, scatter, trend_data,
};
use self::figures::{
    card, grouped, kpi_value, raw, show, sign, Card, Fmt, GROUPS, MANAGER_COLUMNS, MANAGER_HEADS,
};
use self::period::{here_of, presets, today, DashQuery, Span};
use self::table::{csv_response, Cell, Table};
use super::i18n::Lang;
use super::session::{urlencode, WebUser};
use super::{error_page, render, Nonce, PageCtx};
use crate::analytics::insights::{Attention, QualityVsOutcome, SignalKind};
use crate::domain::Role;
use crate::http::analytics::{GroupBy, KpiQuery, KpiReport};
use crate::http::{ApiError, AppState};
use crate::store::CrmManager;

/// Open deals listed on the dashboard and on a manager's page.
const OPEN_DEALS: usize = 100;

/// The dashboard pages. Each only reads, so each reads its kept figures under one stamp per
/// source (`store::one_reading`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/dashboard", get(dashboard))
        .route("/managers/{id}", get(manager::manager_page))
        .route_layer(axum::middleware::from_fn(
            |req: axum::extract::Request, next: axum::middleware::Next| {
                crate::store::one_reading(next.run(req))
            },
        ))
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

/// A refusal of the API as a page.
pub(super) fn api_error_page(e: ApiError, web: &WebUser, nonce: &str) -> Result<Response, String> {
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
        timed(
            "kpis",
            analytics::kpis(State(state.clone()), web.auth(), Query(kq(span, None)))
        ),
        timed(
            "kpis, previous period",
            analytics::kpis(
                State(state.clone()),
                web.auth(),
                Query(kq(span.previous(), None))
            )
        ),
        timed(
            "kpis by manager",
            analytics::kpis(
                State(state.clone()),
                web.auth(),
                Query(kq(span, Some(GroupBy::Manager)))
            )
        ),
        timed(
            "quality vs outcome",
            insights::quality_vs_outcome(
                State(state.clone()),
                web.auth(),
                Query(insights::OutcomeQuery {
                    from: from.clone(),
                    to: to.clone(),
                    team: team.map(str::to_string),
                })
            )
        ),
        timed(
            "attention",
            insights::attention(
                State(state.clone()),
                web.auth(),
                Query(insights::AttentionQuery {
                    from: Some(from.clone()),
                    to: Some(to.clone()),
                    team: team.map(str::to_string),
                })
            )
        ),
        timed(
            "open deals",
            deals::open(
                State(state.clone()),
                web.auth(),
                Query(deals::OpenDealsQuery {
                    manager_id: None,
                    team: team.map(str::to_string),
                    limit: Some(OPEN_DEALS),
                })
            )
        ),
        timed(
            "calibration",
            scores::calibration(
                State(state.clone()),
                web.auth(),
                Query(scores::CalibrationQuery {
                    from: Some(from.clone()),
                    to: Some(to.clone()),
                })
            )
        ),
        timed(
            "trends",
            insights::trends(
                State(state.clone()),
                web.auth(),
                Query(insights::TrendQuery {
                    to: Some(to.clone()),
                    weeks: Some(weeks),
                    team: team.map(str::to_string),
                })
            )
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

/// `fut`, its time logged at debug level: which of the page's figures is slow.
async fn timed<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    let start = std::time::Instant::now();
    let out = fut.await;
    tracing::debug!(
        what,
        ms = start.elapsed().as_secs_f64() * 1e3,
        "dashboard figure"
    );
    out
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
    let (span, preset, mut error) = Span::or_this_month(&q, today(), lang);
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
                .map(|c| {
                    let href = match c.at_s {
                        Some(at) => format!("/calls/{}?t={at}", c.call_id),
                        None => format!("/calls/{}", c.call_id),
                    };
                    context! {
                        href => href,
                        score => lang.number(c.overall, 0),
                        at => c.at_s.map(|s| crate::web::i18n::duration((s * 1000.0) as i64)),
                    }
                })
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
    for d in &f.deals.deals {
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
