//! KPIs over the hand-computed fixture (`tests/fixtures/crm/README.md` has the arithmetic).

use callgrade::analytics::import::{import_path, ImportOptions};
use callgrade::domain::Role;
use callgrade::jobs::Registry;
use serde_json::{json, Value};

use crate::analytics_import::{import_csv, FIXTURES};
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

const MARCH: &str = "from=2026-03-01&to=2026-04-01";

pub(crate) async fn app_with_fixture(backend: Backend) -> TestApp {
    let app = spawn_app(backend, Registry::new()).await;
    import_fixture(&app).await;
    app
}

/// Imports the hand-computed CRM fixture; every row must be accepted.
pub(crate) async fn import_fixture(app: &TestApp) {
    let reports = import_path(
        &app.store,
        std::path::Path::new(FIXTURES),
        ImportOptions::default(),
        |_, _| None,
    )
    .await
    .expect("import fixture");
    assert!(reports.iter().all(|r| r.rejected == 0), "{reports:?}");
}

#[track_caller]
fn close(v: &Value, expected: f64) {
    let got = v
        .as_f64()
        .unwrap_or_else(|| panic!("{v} is not a number, expected {expected}"));
    assert!(
        (got - expected).abs() < 1e-6,
        "got {got}, expected {expected}"
    );
}

#[track_caller]
fn ratio(v: &Value, numerator: i64, denominator: i64) {
    assert_eq!(
        (v["numerator"].as_i64(), v["denominator"].as_i64()),
        (Some(numerator), Some(denominator)),
        "{v}"
    );
    if denominator == 0 {
        assert!(v["value"].is_null(), "{v}");
    } else {
        close(&v["value"], numerator as f64 / denominator as f64);
    }
}

#[track_caller]
fn stages(k: &Value, expected: [(i64, i64); 5]) {
    let steps = k["stage_conversion"].as_array().expect("stages");
    let names: Vec<(&str, &str)> = steps
        .iter()
        .map(|s| {
            (
                s["from_stage"].as_str().expect("from"),
                s["to_stage"].as_str().expect("to"),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("new", "qualified"),
            ("qualified", "meeting"),
            ("meeting", "proposal"),
            ("proposal", "negotiation"),
            ("negotiation", "won")
        ]
    );
    for (step, (n, d)) in steps.iter().zip(expected) {
        ratio(step, n, d);
    }
}

async fn kpis(app: &TestApp, token: &str, query: &str) -> Value {
    let (status, body) = app
        .get_json(token, &format!("/api/v1/kpis?{MARCH}{query}"))
        .await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn company_kpis_match_the_hand_computed_figures(backend: Backend) {
    let app = app_with_fixture(backend).await;
    let body = kpis(&app, &app.admin, "").await;
    assert_eq!(body["from"], "2026-03-01T00:00:00Z");
    let k = &body["kpis"];
    stages(k, [(5, 5), (5, 5), (4, 5), (3, 4), (3, 3)]);
    ratio(&k["win_rate"], 3, 5);
    assert_eq!(k["sales_cycle"]["deals"], 3);
    close(
        &k["sales_cycle"]["mean_days"],
        (10.0 + 15.5 + 2.0 + 2.0 / 24.0) / 3.0,
    );
    close(&k["sales_cycle"]["median_days"], 10.0);
    assert_eq!(k["lead_response"]["answered"], 6);
    close(&k["lead_response"]["median_minutes"], 15.0);
    close(&k["lead_response"]["p90_minutes"], 35.0);
    ratio(&k["sla_breach_rate"], 4, 8);
    assert_eq!(k["sla_breach_rate"]["sla_minutes"], 10);
    ratio(&k["mql_to_sql"], 3, 4);
    assert_eq!(
        (
            k["deal_size"]["deals_with_amount"].as_i64(),
            k["deal_size"]["deals_without_amount"].as_i64()
        ),
        (Some(2), Some(1))
    );
    close(&k["deal_size"]["average"], 750.0);
    close(&k["deal_size"]["revenue"], 1500.0);
    ratio(&k["repeat_sale_rate"], 1, 2);
    ratio(&k["productive_touch_share"], 4, 7);
    ratio(&k["activities_per_won_deal"], 4, 3);
    let plans: Vec<(String, String, f64, f64, Option<f64>)> = k["plan_attainment"]
        .as_array()
        .expect("plans")
        .iter()
        .map(|p| {
            (
                p["manager_id"].as_str().expect("m").to_string(),
                p["metric"].as_str().expect("metric").to_string(),
                p["target"].as_f64().expect("target"),
                p["actual"].as_f64().expect("actual"),
                p["value"].as_f64(),
            )
        })
        .collect();
    let s = |m: &str, metric: &str, t: f64, a: f64, v: Option<f64>| {
        (m.to_string(), metric.to_string(), t, a, v)
    };
    assert_eq!(
        plans,
        vec![
            s("m1", "calls", 4.0, 2.0, Some(0.5)),
            s("m1", "deals_won", 5.0, 2.0, Some(0.4)),
            s("m1", "meetings", 2.0, 1.0, Some(0.5)),
            s("m1", "revenue", 2000.0, 1000.0, Some(0.5)),
            s("m2", "revenue", 0.0, 500.0, None),
            s("m3", "calls", 3.0, 3.0, Some(1.0)),
        ]
    );
    assert_eq!(k["plan_attainment"][0]["period_end"], "2026-03-31");
    app.stop().await;
}

async fn manager_and_team_kpis_count_only_their_own_rows(backend: Backend) {
    let app = app_with_fixture(backend).await;
    let m1 = kpis(&app, &app.admin, "&manager_id=m1").await;
    let k = &m1["kpis"];
    stages(k, [(3, 3), (3, 3), (3, 3), (2, 3), (2, 2)]);
    ratio(&k["win_rate"], 2, 3);
    close(&k["sales_cycle"]["mean_days"], 12.75);
    close(&k["sales_cycle"]["median_days"], 12.75);
    close(&k["lead_response"]["median_minutes"], 10.0);
    close(&k["lead_response"]["p90_minutes"], 26.0);
    ratio(&k["sla_breach_rate"], 1, 3);
    ratio(&k["mql_to_sql"], 1, 2);
    close(&k["deal_size"]["average"], 1000.0);
    close(&k["deal_size"]["revenue"], 1000.0);
    ratio(&k["repeat_sale_rate"], 0, 2);
    ratio(&k["productive_touch_share"], 2, 4);
    ratio(&k["activities_per_won_deal"], 3, 2);
    assert_eq!(k["plan_attainment"].as_array().map(Vec::len), Some(4));

    let east = kpis(&app, &app.admin, "&team=east").await;
    let k = &east["kpis"];
    stages(k, [(3, 3), (3, 3), (3, 3), (2, 3), (2, 2)]);
    ratio(&k["win_rate"], 3, 4);
    close(&k["sales_cycle"]["median_days"], 10.0);
    close(&k["lead_response"]["median_minutes"], 15.0);
    close(&k["lead_response"]["p90_minutes"], 27.0);
    ratio(&k["sla_breach_rate"], 3, 6);
    ratio(&k["mql_to_sql"], 2, 3);
    close(&k["deal_size"]["revenue"], 1500.0);
    ratio(&k["repeat_sale_rate"], 1, 2);
    ratio(&k["productive_touch_share"], 3, 5);
    ratio(&k["activities_per_won_deal"], 4, 3);
    assert_eq!(k["plan_attainment"].as_array().map(Vec::len), Some(5));

    let by_manager = kpis(&app, &app.admin, "&by=manager").await;
    let rows = by_manager["rows"].as_array().expect("rows");
    let ids: Vec<&str> = rows
        .iter()
        .map(|r| r["manager_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["m1", "m2", "m3"]);
    // One grouped read gives each manager exactly what asking for them alone gives.
    for (row, id) in rows.iter().zip(ids) {
        let alone = kpis(&app, &app.admin, &format!("&manager_id={id}")).await;
        assert_eq!(row["kpis"], alone["kpis"], "{id}");
    }
    assert_eq!(rows[0]["kpis"], m1["kpis"]);
    let m3 = &rows[2]["kpis"];
    ratio(&m3["win_rate"], 0, 1);
    assert!(m3["sales_cycle"]["mean_days"].is_null());
    ratio(&m3["activities_per_won_deal"], 0, 0);
    close(&m3["lead_response"]["median_minutes"], 1.0);
    ratio(&m3["mql_to_sql"], 0, 0);

    let by_team = kpis(&app, &app.admin, "&by=team").await;
    let teams: Vec<&str> = by_team["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["team"].as_str().expect("team"))
        .collect();
    assert_eq!(teams, ["east", "west"]);
    assert_eq!(by_team["rows"][0]["kpis"], east["kpis"]);
    app.stop().await;
}

async fn a_manager_token_sees_only_its_own_figures(backend: Backend) {
    let app = app_with_fixture(backend).await;
    let token = app.token(Role::Manager, Some("m1")).await;
    let own = kpis(&app, &token, "").await;
    assert_eq!(own["manager_id"], "m1");
    let admin_view = kpis(&app, &app.admin, "&manager_id=m1").await;
    assert_eq!(own["kpis"], admin_view["kpis"]);
    // Another manager's figures are theirs (404, as for their calls); team figures are not
    // for the manager role at all (403).
    for (query, expected) in [
        ("&manager_id=m2", 404),
        ("&team=east", 403),
        ("&by=team", 403),
    ] {
        let (status, body) = app
            .get_json(&token, &format!("/api/v1/kpis?{MARCH}{query}"))
            .await;
        assert_eq!(status, expected, "{query}: {body}");
    }
    let by_manager = kpis(&app, &token, "&by=manager").await;
    assert_eq!(by_manager["rows"].as_array().map(Vec::len), Some(1));
    let (status, _) = app
        .get_json(&app.admin, &format!("/api/v1/kpis?{MARCH}&team=north"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get_json(&app.admin, "/api/v1/kpis?from=2026-04-01&to=2026-03-01")
        .await;
    assert_eq!(status, 400);
    app.stop().await;
}

/// The figures the dashboards added (docs/crm-data.md, "Added by callgrade"), by hand.
async fn the_dashboard_kpis_match_the_hand_computed_figures(backend: Backend) {
    let app = app_with_fixture(backend).await;
    let k = &kpis(&app, &app.admin, "").await["kpis"];
    // Leads l1-l6, l9 and l10 were created in March (l7 and l8 are February in UTC).
    assert_eq!(k["new_leads"], 8);
    // a1-a4, a7-a9; a6 is February in UTC, a5 is April.
    let by_type: Vec<(String, i64, i64)> = k["activities_by_type"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["activity_type"].as_str().unwrap().to_string(),
                a["count"].as_i64().unwrap(),
                a["productive"].as_i64().unwrap(),
            )
        })
        .collect();
    let t = |s: &str, n, p| (s.to_string(), n, p);
    assert_eq!(
        by_type,
        vec![
            t("call", 4, 2),
            t("email", 1, 0),
            t("meeting", 1, 1),
            t("demo", 1, 1),
            t("proposal", 0, 0),
            t("message", 0, 0),
        ]
    );
    // Open at 1 April 00:00 UTC: d6 (open, no amount) and d7 (won at 01:00 UTC on 1 April);
    // d5 was created after the period.
    assert_eq!(k["open_pipeline"]["deals"], 2);
    assert_eq!(k["open_pipeline"]["deals_without_amount"], 1);
    close(&k["open_pipeline"]["value"], 2000.0);
    // d3 (price) and d9 (timing).
    let lost = k["lost_reasons"].as_array().unwrap();
    assert_eq!(lost.len(), 2, "{lost:?}");
    assert_eq!(lost[0]["reason"], "price");
    ratio(&lost[0], 1, 2);
    assert_eq!(lost[1]["reason"], "timing");
    // c2's first win is d2 in March; c1 first won in February (d8).
    assert_eq!(k["new_customers"], 1);
    // Per metric over the rows above: calls (4 + 3 targets, 2 + 3 actual), revenue (2000 + 0,
    // 1000 + 500).
    let metric = |m: &str| {
        k["plan_by_metric"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["metric"] == m)
            .cloned()
            .unwrap_or_else(|| panic!("{m}"))
    };
    close(&metric("calls")["value"], 5.0 / 7.0);
    assert_eq!(metric("calls")["rows"], 2);
    close(&metric("revenue")["value"], 0.75);
    close(&metric("deals_won")["value"], 0.4);
    close(&metric("meetings")["value"], 0.5);
    assert_eq!(k["plan_by_metric"].as_array().unwrap().len(), 4);
    // No calls in this fixture: zero analysed, the ratios undefined, three managers.
    assert_eq!(k["calls"]["analysed"], 0);
    assert!(k["calls"]["average_score"].is_null());
    ratio(&k["calls"]["critical_failure_share"], 0, 0);
    ratio(&k["calls"]["per_manager"], 0, 3);

    // Per manager and team.
    let m1 = &kpis(&app, &app.admin, "&manager_id=m1").await["kpis"];
    assert_eq!(m1["new_customers"], 1);
    assert_eq!(m1["new_leads"], 3);
    assert_eq!(m1["open_pipeline"]["deals"], 0);
    assert_eq!(m1["lost_reasons"][0]["reason"], "price");
    ratio(&m1["calls"]["per_manager"], 0, 1);
    let west = &kpis(&app, &app.admin, "&team=west").await["kpis"];
    assert_eq!(west["open_pipeline"]["deals"], 1, "d7");
    close(&west["open_pipeline"]["value"], 2000.0);
    assert_eq!(west["new_customers"], 0, "c4's d7 closed in April");
    assert_eq!(west["lost_reasons"][0]["reason"], "timing");
    app.stop().await;
}

/// CRM figures are kept between requests until the next import: one that changes a deal shows
/// at once, in the total, per manager and per team.
async fn an_import_shows_in_the_next_answer(backend: Backend) {
    let app = app_with_fixture(backend).await;
    let before = kpis(&app, &app.admin, "").await;
    let by_manager = kpis(&app, &app.admin, "&by=manager").await;
    let won = before["kpis"]["win_rate"]["numerator"]
        .as_i64()
        .expect("won");
    let m3_won = by_manager["rows"][2]["kpis"]["win_rate"]["numerator"]
        .as_i64()
        .expect("m3 won");
    let deals = "deal_id,manager_id,created_at,status,customer_id,lead_id,closed_at,amount,currency,lost_reason\n\
                 d90,m3,2026-03-03T10:00:00Z,won,c90,,2026-03-25T10:00:00Z,700,EUR,\n";
    let (status, report) = import_csv(&app, &app.admin, "deals", "", deals).await;
    assert_eq!(status, 200, "{report}");
    let after = kpis(&app, &app.admin, "").await;
    assert_eq!(
        after["kpis"]["win_rate"]["numerator"].as_i64(),
        Some(won + 1)
    );
    let by_manager = kpis(&app, &app.admin, "&by=manager").await;
    assert_eq!(
        by_manager["rows"][2]["kpis"]["win_rate"]["numerator"].as_i64(),
        Some(m3_won + 1)
    );
    let m3 = kpis(&app, &app.admin, "&manager_id=m3").await;
    assert_eq!(by_manager["rows"][2]["kpis"], m3["kpis"]);
    app.stop().await;
}

/// The dashboard's team figures are the team's managers' rows added up (plus the two figures
/// that do not add up, read for the team): each equals the team's own read.
async fn team_figures_added_up_from_their_managers_equal_the_teams_own(backend: Backend) {
    use callgrade::analytics::kpis::{compute, compute_teams, Period};
    use callgrade::store::{KpiKey, KpiScope};
    use std::collections::BTreeMap;
    let app = app_with_fixture(backend).await;
    let config = &app.config.analytics;
    for (from, to) in [("2026-03-01", "2026-04-01"), ("2026-01-01", "2026-12-31")] {
        let period = Period::parse(from, to).expect("period");
        let mut teams: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for m in app.store.crm_manager_directory().await.expect("directory") {
            if let Some(team) = m.team {
                teams.entry(team).or_default().push(m.manager_id);
            }
        }
        assert!(teams.len() >= 2, "{teams:?}");
        let everyone = KpiScope::Managers(teams.values().flatten().cloned().collect());
        let tallies = app
            .store
            .quality_tallies_by(&everyone, KpiKey::Manager, period.from, period.to)
            .await
            .expect("tallies");
        let (by_team, by_manager) = compute_teams(&app.store, config, &teams, &tallies, period)
            .await
            .expect("teams");
        for (team, members) in &teams {
            let own = compute(&app.store, config, &KpiScope::Team(team.clone()), period)
                .await
                .expect("team");
            assert_eq!(
                serde_json::to_value(&by_team[team]).unwrap(),
                serde_json::to_value(&own).unwrap(),
                "{team} {from}..{to}"
            );
            for m in members {
                let own = compute(&app.store, config, &KpiScope::Manager(m.clone()), period)
                    .await
                    .expect("manager");
                assert_eq!(
                    serde_json::to_value(&by_manager[m]).unwrap(),
                    serde_json::to_value(&own).unwrap(),
                    "{m} {from}..{to}"
                );
            }
        }
    }
    app.stop().await;
}

/// The speaker-roles rule of a mono call listens for the call's manager's own name: it comes
/// from managers.csv, and a manager the CRM does not know has none.
async fn a_call_s_manager_is_named_as_the_crm_names_them(backend: Backend) {
    let app = app_with_fixture(backend).await;
    assert_eq!(
        app.store
            .crm_manager_name("m1")
            .await
            .expect("name")
            .as_deref(),
        Some("Anna Ivanova")
    );
    assert_eq!(
        app.store.crm_manager_name("m-unknown").await.expect("name"),
        None
    );
    app.stop().await;
}

/// The daily CRM rollups (decision 0023) give the raw rows' figures for any period: whole
/// days, partial days at either edge, a part of one day; for everyone, a manager and a team,
/// in total and per manager; and again after a re-import moves, changes and adds rows. The
/// expected figures are counted here from the raw tables, row by row.
async fn crm_rollups_give_the_raw_rows_figures_for_any_period(backend: Backend) {
    use callgrade::store::{KpiKey, KpiScope};
    use std::collections::{BTreeMap, BTreeSet};
    let app = app_with_fixture(backend).await;
    let funnel = app.config.analytics.funnel_stages.clone();
    let ms = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .expect("time")
            .timestamp_millis()
    };
    let periods = [
        ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z"),
        ("2026-02-01T00:00:00Z", "2026-05-01T00:00:00Z"),
        ("2026-03-02T11:00:00Z", "2026-03-31T23:59:59Z"),
        ("2026-03-02T11:00:00.001Z", "2026-04-01T00:00:00.001Z"),
        ("2026-03-01T00:30:00Z", "2026-03-20T12:00:00Z"),
        ("2026-03-10T00:00:00Z", "2026-03-10T12:00:00Z"),
        ("2026-03-05T00:00:00Z", "2026-03-06T00:00:00Z"),
        ("2026-03-31T22:00:00Z", "2026-04-01T02:00:00Z"),
    ];
    let team = app
        .store
        .resolve_scope(&KpiScope::Team("east".into()))
        .await
        .expect("team");
    let scopes = [
        (KpiScope::All, None),
        (KpiScope::Manager("m1".into()), Some(vec!["m1"])),
        (KpiScope::Team("east".into()), Some(vec!["m1", "m2"])),
        (team, Some(vec!["m1", "m2"])),
    ];
    let check = |round: &'static str| {
        let app = &app;
        let (funnel, periods, scopes) = (&funnel, &periods, &scopes);
        async move {
            let activities: Vec<(String, String, i64, Option<String>)> =
                sqlx::query_as("SELECT manager_id, type, at, outcome FROM crm_activities")
                    .fetch_all(app.store.pool())
                    .await
                    .expect("activities");
            let deals: Vec<(String, String, i64, String)> =
                sqlx::query_as("SELECT deal_id, manager_id, created_at, status FROM crm_deals")
                    .fetch_all(app.store.pool())
                    .await
                    .expect("deals");
            let stages: Vec<(String, String)> =
                sqlx::query_as("SELECT deal_id, stage FROM crm_deal_stages")
                    .fetch_all(app.store.pool())
                    .await
                    .expect("stages");
            for (from, to) in periods {
                let (from, to) = (ms(from), ms(to));
                for (scope, members) in scopes {
                    let ours = |m: &str| members.as_ref().is_none_or(|v| v.contains(&m));
                    for key in [KpiKey::Total, KpiKey::Manager] {
                        let k = |m: &str| (key == KpiKey::Manager).then(|| m.to_string());
                        let mut expected: BTreeMap<(Option<String>, String), (i64, i64)> =
                            BTreeMap::new();
                        for (m, kind, at, outcome) in &activities {
                            if *at >= from && *at < to && ours(m) {
                                let e = expected.entry((k(m), kind.clone())).or_default();
                                e.0 += 1;
                                e.1 += i64::from(outcome.as_deref() == Some("productive"));
                            }
                        }
                        let (by_type, _) = app
                            .store
                            .kpi_activities(scope, key, from, to)
                            .await
                            .expect("activities");
                        let got: BTreeMap<_, _> = by_type
                            .into_iter()
                            .map(|a| ((a.manager_id, a.kind.to_string()), (a.total, a.productive)))
                            .collect();
                        let what = format!("{round}: {scope:?} {key:?} {from}..{to}");
                        assert_eq!(got, expected, "activities, {what}");

                        let mut expected: BTreeMap<(Option<String>, i64), i64> = BTreeMap::new();
                        for (id, m, created, status) in &deals {
                            if *created < from || *created >= to || !ours(m) {
                                continue;
                            }
                            let reached: BTreeSet<usize> = stages
                                .iter()
                                .filter(|(d, _)| d == id)
                                .filter_map(|(_, s)| funnel.iter().position(|f| f == s))
                                .collect();
                            let r = if status == "won" {
                                funnel.len() as i64 - 1
                            } else {
                                reached.last().map_or(-1, |i| *i as i64)
                            };
                            *expected.entry((k(m), r)).or_default() += 1;
                        }
                        let got: BTreeMap<_, _> = app
                            .store
                            .kpi_stage_reach(scope, key, from, to, funnel)
                            .await
                            .expect("reach")
                            .into_iter()
                            .map(|(k, r, n)| ((k, r), n))
                            .collect();
                        assert_eq!(got, expected, "stage reach, {what}");
                    }
                }
            }
        }
    };
    check("imported").await;
    // A re-import: an activity moves to another day and one changes outcome, one is added;
    // a deal moves to another day, a stage row and a deal are added, a deal is won.
    let (status, report) = import_csv(
        &app,
        &app.admin,
        "activities",
        "",
        "activity_id,manager_id,type,at,deal_id,outcome,duration_s\n\
         a1,m1,call,2026-03-05T11:00:00Z,d1,productive,300\n\
         a3,m1,call,2026-03-10T11:00:00Z,d2,productive,60\n\
         a12,m2,email,2026-03-10T06:00:00Z,,productive,\n",
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let (status, report) = import_csv(
        &app,
        &app.admin,
        "deals",
        "",
        "deal_id,manager_id,created_at,status,closed_at\n\
         d6,m2,2026-03-10T03:00:00Z,open,\n\
         d9,m3,2026-03-03T00:00:00Z,won,2026-03-13T00:00:00Z\n\
         d10,m1,2026-03-09T23:00:00Z,open,\n",
    )
    .await;
    assert_eq!(status, 200, "{report}");
    let (status, report) = import_csv(
        &app,
        &app.admin,
        "deal_stages",
        "",
        "deal_id,stage,entered_at\n\
         d3,negotiation,2026-03-20T00:00:00Z\n\
         d10,meeting,2026-04-01T00:00:00Z\n",
    )
    .await;
    assert_eq!(status, 200, "{report}");
    check("re-imported").await;
    // Migration 0017's backfill (a database imported before the rollups) writes the same rows
    // as the rebuild at import.
    let rows = || async {
        let activity: Vec<(i64, String, String, i64, i64)> = sqlx::query_as(
            "SELECT day, manager_id, type, total, productive FROM crm_activity_daily ORDER BY 1, 2, 3",
        )
        .fetch_all(app.store.pool())
        .await
        .expect("activity rows");
        let deal: Vec<(i64, String, String, String, i64)> = sqlx::query_as(
            "SELECT day, manager_id, status, stages, deals FROM crm_deal_daily ORDER BY 1, 2, 3, 4",
        )
        .fetch_all(app.store.pool())
        .await
        .expect("deal rows");
        (activity, deal)
    };
    let rebuilt = rows().await;
    assert!(!rebuilt.0.is_empty() && !rebuilt.1.is_empty());
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let migration = std::fs::read_to_string(format!(
        "{}/migrations/{folder}/0017_crm_rollups.sql",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("migration");
    let inserts: Vec<&str> = migration
        .split(';')
        .map(str::trim)
        .filter(|s| s.contains("INSERT INTO"))
        .collect();
    assert_eq!(inserts.len(), 2, "{inserts:?}");
    for sql in [
        "DELETE FROM crm_activity_daily",
        "DELETE FROM crm_deal_daily",
    ]
    .into_iter()
    .chain(inserts)
    {
        sqlx::query(sql)
            .execute(app.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    assert_eq!(rows().await, rebuilt);
    app.stop().await;
}

on_both_backends!(
    crm_rollups_give_the_raw_rows_figures_for_any_period,
    a_call_s_manager_is_named_as_the_crm_names_them,
    team_figures_added_up_from_their_managers_equal_the_teams_own,
    an_import_shows_in_the_next_answer,
    the_dashboard_kpis_match_the_hand_computed_figures,
    company_kpis_match_the_hand_computed_figures,
    manager_and_team_kpis_count_only_their_own_rows,
    a_manager_token_sees_only_its_own_figures,
);

/// Leads still inside their SLA at `now` are not breaches yet when the period runs past now.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_lead_breaches_only_once_the_sla_has_passed_by_now() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let now = chrono::Utc::now();
    let at = |minutes: i64| (now - chrono::Duration::minutes(minutes)).to_rfc3339();
    let csv = format!(
        "lead_id,created_at\nfresh,{}\nstale,{}\nedge,{}\n",
        at(3),
        at(15),
        at(9)
    );
    let (status, report) = import_csv(&app, &app.admin, "leads", "", &csv).await;
    assert_eq!(status, 200, "{report}");
    let (_, body) = app
        .get_json(
            &app.admin,
            &format!(
                "/api/v1/kpis?from={}&to=2100-01-01",
                (now - chrono::Duration::days(1)).format("%Y-%m-%d")
            ),
        )
        .await;
    let breach = &body["kpis"]["sla_breach_rate"];
    assert_eq!(
        (breach["numerator"].clone(), breach["denominator"].clone()),
        (json!(1), json!(3)),
        "{body}"
    );
    assert_eq!(body["kpis"]["lead_response"]["answered"], 0);
    assert!(body["kpis"]["lead_response"]["median_minutes"].is_null());
    app.stop().await;
}
