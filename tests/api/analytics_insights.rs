//! Quality vs outcome and the attention list, over scorecards written straight into the
//! database and deals imported from CSV. Expected figures are worked out beside each assertion.

use callgrade::domain::Role;
use callgrade::jobs::Registry;
use serde_json::{json, Value};

use crate::analytics_import::{import_csv, FIXTURES};
use crate::analytics_reports::{insert_scored, Scored};
use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

const MARCH: &str = "from=2026-03-01&to=2026-04-01";

fn uuid(n: u32) -> String {
    format!("01900000-0000-7000-8000-{n:012}")
}

/// Scored calls: (call n, manager, deal, overall, closing met).
async fn seed(app: &TestApp, calls: &[(u32, &str, Option<&str>, f64, i64)]) {
    for (n, manager, deal, overall, closing) in calls {
        let id = uuid(*n);
        insert_scored(
            &app.store,
            &Scored {
                id: &id,
                manager,
                started_at: Some("2026-03-10T10:00:00Z"),
                created_at: "2026-03-10T10:00:00Z",
                status: "scored",
                overall: *overall,
                criteria: &[("closing", Some(*closing as f64), Some(*closing))],
                conversation: None,
                document: json!({}),
            },
        )
        .await;
        if let Some(deal) = deal {
            sqlx::query("UPDATE calls SET deal_id = $1 WHERE id = $2")
                .bind(*deal)
                .bind(&id)
                .execute(app.store.pool())
                .await
                .expect("link deal");
        }
    }
    // The deals were linked behind the store's back: roll up again, as after a bulk load.
    app.store.rebuild_rollups().await.expect("rollups");
}

async fn app(backend: Backend) -> TestApp {
    let app = spawn_app_with(backend, Registry::new(), |c| c.analytics.min_sample = 2).await;
    let managers = std::fs::read_to_string(format!("{FIXTURES}/managers.csv")).expect("fixture");
    import_csv(
        &app,
        &app.admin,
        "managers",
        "",
        &(managers + "m4,Dana Lee,east,\n"),
    )
    .await;
    app
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

async fn win_rates_are_broken_down_by_score_band_and_criterion(backend: Backend) {
    let app = app(backend).await;
    let deals = "deal_id,manager_id,created_at,status,closed_at\n\
        D1,m1,2026-02-01T00:00:00Z,won,2026-03-20T00:00:00Z\n\
        D2,m1,2026-02-01T00:00:00Z,won,2026-03-20T00:00:00Z\n\
        D3,m1,2026-02-01T00:00:00Z,lost,2026-03-20T00:00:00Z\n\
        D4,m2,2026-02-01T00:00:00Z,lost,2026-03-20T00:00:00Z\n\
        D5,m2,2026-02-01T00:00:00Z,won,2026-03-20T00:00:00Z\n\
        D6,m2,2026-02-01T00:00:00Z,open,\n";
    import_csv(&app, &app.admin, "deals", "", deals).await;
    // D2 has two calls (70, 80 -> 75; closing met on one of two -> met on half -> counts as met).
    seed(
        &app,
        &[
            (1, "m1", Some("D1"), 90.0, 1),
            (2, "m1", Some("D2"), 70.0, 1),
            (3, "m1", Some("D2"), 80.0, 0),
            (4, "m1", Some("D3"), 40.0, 0),
            (5, "m2", Some("D4"), 60.0, 1),
            (6, "m2", Some("D5"), 55.0, 0),
            (7, "m2", Some("D6"), 99.0, 1), // open deal: not counted
            (8, "m2", None, 10.0, 0),       // no deal: not counted
        ],
    )
    .await;
    let (status, r) = app
        .get_json(
            &app.admin,
            &format!("/api/v1/insights/quality-vs-outcome?{MARCH}"),
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["deals"], 5);
    // Bands: [0,50) D3 lost; [50,65) D4 lost, D5 won; [65,80) D2 won; [80,100] D1 won.
    let bands: Vec<(i64, i64, bool)> = r["score_bands"]
        .as_array()
        .expect("bands")
        .iter()
        .map(|b| {
            (
                b["win_rate"]["numerator"].as_i64().expect("n"),
                b["win_rate"]["denominator"].as_i64().expect("d"),
                b["insufficient_data"].as_bool().expect("flag"),
            )
        })
        .collect();
    assert_eq!(
        bands,
        [(0, 1, true), (1, 2, false), (1, 1, true), (1, 1, true)]
    );
    // closing met: D1 won, D2 won, D4 lost -> 2/3; not met: D3 lost, D5 won -> 1/2.
    let closing = &r["criteria"][0];
    assert_eq!(closing["criterion_id"], "closing");
    assert_eq!(
        (
            closing["met"]["win_rate"]["numerator"].as_i64(),
            closing["met"]["win_rate"]["denominator"].as_i64()
        ),
        (Some(2), Some(3))
    );
    assert_eq!(
        (
            closing["not_met"]["win_rate"]["numerator"].as_i64(),
            closing["not_met"]["win_rate"]["denominator"].as_i64()
        ),
        (Some(1), Some(2))
    );
    close(&closing["lift"], 2.0 / 3.0 - 0.5);
    assert_eq!(closing["insufficient_data"], false);
    // Wilson 95% for 2 of 3: (0.2077, 0.9385).
    assert!(
        (closing["met"]["ci_low"].as_f64().expect("low") - 0.2077).abs() < 1e-4,
        "{closing}"
    );
    assert!(
        (closing["met"]["ci_high"].as_f64().expect("high") - 0.9385).abs() < 1e-4,
        "{closing}"
    );
    // Managers: m1 deals D1 90, D2 75, D3 40 -> 68.33, won 2/3; m2 D4 60, D5 55 -> 57.5, 1/2.
    close(
        &r["managers"][0]["average_quality"],
        (90.0 + 75.0 + 40.0) / 3.0,
    );
    assert_eq!(r["managers"][0]["win_rate"]["numerator"], 2);
    close(&r["managers"][1]["average_quality"], 57.5);

    let manager = app.token(Role::Manager, Some("m1")).await;
    let (status, _) = app
        .get_json(
            &manager,
            &format!("/api/v1/insights/quality-vs-outcome?{MARCH}"),
        )
        .await;
    assert_eq!(status, 403);
    app.stop().await;
}

async fn attention_names_managers_well_below_their_team_with_evidence(backend: Backend) {
    let app = app(backend).await;
    seed(
        &app,
        &[
            (1, "m1", None, 90.0, 1),
            (2, "m1", None, 80.0, 1),
            (3, "m2", None, 40.0, 0),
            (4, "m2", None, 30.0, 0),
            (5, "m4", None, 10.0, 0),
            (6, "m3", None, 5.0, 0),
            (7, "m3", None, 5.0, 0),
        ],
    )
    .await;
    // Team east: (90 + 80 + 40 + 30 + 10) / 5 = 50; m2 35 is 15 below -> flagged; m1 85 not;
    // m4 10 is far below but on 1 call (< min_sample 2) -> not flagged; m3 is alone in west.
    let (status, r) = app
        .get_json(&app.admin, &format!("/api/v1/insights/attention?{MARCH}"))
        .await;
    assert_eq!(status, 200, "{r}");
    let flagged: Vec<&str> = r["managers"]
        .as_array()
        .expect("managers")
        .iter()
        .map(|m| m["manager_id"].as_str().expect("id"))
        .collect();
    assert_eq!(flagged, ["m2"], "{r}");
    let m2 = &r["managers"][0];
    assert_eq!(m2["signals"][0]["kind"], "call_quality");
    close(&m2["signals"][0]["manager_value"], 35.0);
    close(&m2["signals"][0]["team_value"], 50.0);
    assert_eq!(m2["signals"][0]["sample"], 2);
    let evidence: Vec<&str> = m2["evidence_calls"]
        .as_array()
        .expect("calls")
        .iter()
        .map(|c| c["call_id"].as_str().expect("id"))
        .collect();
    assert_eq!(evidence, [uuid(4), uuid(3)], "lowest score first");
    // The evidence of several managers is read at once, at most `limit` calls each.
    let march = (
        chrono::DateTime::parse_from_rfc3339("2026-03-01T00:00:00Z")
            .expect("from")
            .timestamp_millis(),
        chrono::DateTime::parse_from_rfc3339("2026-04-01T00:00:00Z")
            .expect("to")
            .timestamp_millis(),
    );
    let managers = ["m1", "m2", "m3", "nobody"].map(String::from);
    let lowest = app
        .store
        .lowest_scored_calls(&managers, march.0, march.1, 1)
        .await
        .expect("lowest");
    let ids = |m: &str| -> Vec<String> {
        lowest
            .get(m)
            .map(|v| v.iter().map(|c| c.call_id.to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(ids("m1"), [uuid(2)]);
    assert_eq!(ids("m2"), [uuid(4)]);
    assert_eq!(ids("m3"), [uuid(6)], "a tie goes to the smaller id");
    assert!(ids("nobody").is_empty());
    assert_eq!(m2["training_focus"], json!(["closing"]));
    let advice = m2["advice"].as_str().expect("advice");
    assert!(advice.contains("may benefit from support"), "{advice}");
    assert!(
        advice.contains("average call score 35 against the team's 50 over 2 scored calls"),
        "{advice}"
    );
    let (status, _) = app
        .get_json(&app.admin, "/api/v1/insights/attention?from=2026-03-01")
        .await;
    assert_eq!(status, 400);
    let (status, _) = app.get_json(&app.admin, "/api/v1/insights/attention").await;
    assert_eq!(status, 200);
    // One team's list: m2 is in east; west has nobody to compare; an unknown team is a 404.
    for (team, expected) in [("east", vec!["m2"]), ("west", vec![])] {
        let (status, r) = app
            .get_json(
                &app.admin,
                &format!("/api/v1/insights/attention?{MARCH}&team={team}"),
            )
            .await;
        assert_eq!(status, 200, "{r}");
        let flagged: Vec<&str> = r["managers"]
            .as_array()
            .expect("managers")
            .iter()
            .map(|m| m["manager_id"].as_str().expect("id"))
            .collect();
        assert_eq!(flagged, expected, "{team}: {r}");
    }
    let (status, _) = app
        .get_json(
            &app.admin,
            &format!("/api/v1/insights/attention?{MARCH}&team=nowhere"),
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

on_both_backends!(
    win_rates_are_broken_down_by_score_band_and_criterion,
    attention_names_managers_well_below_their_team_with_evidence,
);
