//! Quality reports over scorecards written straight into `scores` and `score_criteria` (the
//! scoring stage is built elsewhere). Expected figures are worked out beside each assertion.

use callgrade::domain::Role;
use callgrade::jobs::Registry;
use callgrade::store::Store;
use serde_json::{json, Value};

use crate::analytics_import::{import_csv, FIXTURES};
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

fn ms(t: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(t)
        .expect("time")
        .timestamp_millis()
}

/// A scored call: (criterion, value, met) rows, and optional (talk share, questions, monologue).
pub struct Scored<'a> {
    pub id: &'a str,
    pub manager: &'a str,
    pub started_at: Option<&'a str>,
    pub created_at: &'a str,
    pub status: &'a str,
    pub overall: f64,
    pub criteria: &'a [(&'a str, Option<f64>, Option<i64>)],
    pub conversation: Option<(f64, f64, f64)>,
    pub document: Value,
}

pub async fn insert_scored(store: &Store, c: &Scored<'_>) {
    let id = uuid::Uuid::parse_str(c.id).expect("uuid").to_string();
    sqlx::query(
        "INSERT INTO calls (id, manager_id, started_at, size_bytes, sha256, storage_key, status, created_at, updated_at) \
         VALUES ($1, $2, $3, 1, $4, 'x', 'done', $5, $5)",
    )
    .bind(&id)
    .bind(c.manager)
    .bind(c.started_at.map(ms))
    .bind(format!("sha-{id}"))
    .bind(ms(c.created_at))
    .execute(store.pool())
    .await
    .expect("insert call");
    sqlx::query(
        "INSERT INTO scores (call_id, status, rubric_id, rubric_language, rubric_version, overall, language, document, scored_at, updated_at) \
         VALUES ($1, $2, 'default', 'en', 1, $3, 'en', $4, 0, 0)",
    )
    .bind(&id)
    .bind(c.status)
    .bind(c.overall)
    .bind(c.document.to_string())
    .execute(store.pool())
    .await
    .expect("insert score");
    for (criterion, value, met) in c.criteria {
        let level = match met {
            Some(1) => "strong",
            Some(_) => "weak",
            None => "na",
        };
        sqlx::query(
            "INSERT INTO score_criteria (call_id, criterion_id, section_id, weight, critical, scale_max, model_level, value, level, met) \
             VALUES ($1, $2, 's', 1.0, 0, 2, $3, $4, $3, $5)",
        )
        // A NULL f64 is bound as float4 on PostgreSQL (sqlx Any): never reuse the statement.
        .persistent(false)
        .bind(&id)
        .bind(*criterion)
        .bind(level)
        .bind(*value)
        .bind(*met)
        .execute(store.pool())
        .await
        .expect("insert criterion");
    }
    if let Some((talk, questions, mono)) = c.conversation {
        sqlx::query(
            "INSERT INTO call_conversation (call_id, manager_talk_share, manager_questions, manager_longest_monologue_s, duration_s) \
             VALUES ($1, $2, $3, $4, 600.0)",
        )
        .bind(&id)
        .bind(talk)
        .bind(questions)
        .bind(mono)
        .execute(store.pool())
        .await
        .expect("insert conversation");
    }
    // The rows went in behind the store's back, so its daily rollups are rebuilt as after a bulk
    // load. The write paths that keep them up to date are tested on their own below.
    store.rebuild_rollups().await.expect("rebuild rollups");
}

const K1: &str = "01900000-0000-7000-8000-000000000001";
const K2: &str = "01900000-0000-7000-8000-000000000002";
const K3: &str = "01900000-0000-7000-8000-000000000003";

async fn app_with_scores(backend: Backend) -> TestApp {
    let app = spawn_app(backend, Registry::new()).await;
    let managers = std::fs::read_to_string(format!("{FIXTURES}/managers.csv")).expect("fixture");
    import_csv(&app, &app.admin, "managers", "", &managers).await;
    let none = json!({});
    let calls = [
        Scored {
            id: K1,
            manager: "m1",
            started_at: Some("2026-03-02T10:00:00Z"),
            created_at: "2026-03-02T11:00:00Z",
            status: "scored",
            overall: 60.0,
            criteria: &[
                ("greeting", Some(1.0), Some(1)),
                ("needs_discovery", Some(0.5), Some(0)),
                ("closing", Some(0.0), Some(0)),
            ],
            conversation: Some((0.6, 4.0, 30.0)),
            document: none.clone(),
        },
        Scored {
            id: K2,
            manager: "m1",
            started_at: Some("2026-03-04T12:00:00+02:00"),
            created_at: "2026-03-04T11:00:00Z",
            status: "scored",
            overall: 80.0,
            criteria: &[
                ("greeting", Some(1.0), Some(1)),
                ("needs_discovery", Some(1.0), Some(1)),
                ("closing", None, None),
            ],
            conversation: Some((0.5, 6.0, 50.0)),
            document: none.clone(),
        },
        Scored {
            id: K3,
            manager: "m1",
            started_at: None,
            created_at: "2026-03-10T10:00:00Z",
            status: "scored",
            overall: 75.0,
            criteria: &[
                ("greeting", Some(0.5), Some(0)),
                ("needs_discovery", Some(0.0), Some(0)),
                ("closing", Some(1.0), Some(1)),
            ],
            conversation: None,
            document: json!({
                "coaching": {
                    "strengths": [{"text": "Clear summary at the end"}],
                    "improvements": [{"text": "Ask about the decision process", "better_phrasing": "Who else decides on this?", "at_s": 95.0}]
                },
                "next_steps": [{"action": "Send the proposal", "owner": "manager", "due_date": "2026-03-12"}]
            }),
        },
        // Before the period (no started_at: created_at places it).
        Scored {
            id: "01900000-0000-7000-8000-000000000004",
            manager: "m1",
            started_at: None,
            created_at: "2026-02-20T10:00:00Z",
            status: "scored",
            overall: 10.0,
            criteria: &[("greeting", Some(0.0), Some(0))],
            conversation: None,
            document: none.clone(),
        },
        // Teammate.
        Scored {
            id: "01900000-0000-7000-8000-000000000005",
            manager: "m2",
            started_at: Some("2026-03-03T09:00:00Z"),
            created_at: "2026-03-03T09:30:00Z",
            status: "scored",
            overall: 40.0,
            criteria: &[
                ("greeting", Some(0.0), Some(0)),
                ("needs_discovery", Some(0.5), Some(0)),
                ("closing", Some(0.0), Some(0)),
            ],
            conversation: Some((0.8, 2.0, 90.0)),
            document: none.clone(),
        },
        // Not scorable: not analysed.
        Scored {
            id: "01900000-0000-7000-8000-000000000006",
            manager: "m1",
            started_at: Some("2026-03-05T10:00:00Z"),
            created_at: "2026-03-05T10:00:00Z",
            status: "not_scorable",
            overall: 0.0,
            criteria: &[],
            conversation: None,
            document: none.clone(),
        },
        // Other team.
        Scored {
            id: "01900000-0000-7000-8000-000000000007",
            manager: "m3",
            started_at: Some("2026-03-05T10:00:00Z"),
            created_at: "2026-03-05T10:00:00Z",
            status: "scored",
            overall: 90.0,
            criteria: &[("greeting", Some(1.0), Some(1))],
            conversation: Some((0.4, 9.0, 20.0)),
            document: none,
        },
    ];
    for c in &calls {
        insert_scored(&app.store, c).await;
    }
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

fn criterion<'a>(q: &'a Value, id: &str) -> &'a Value {
    q["criteria"]
        .as_array()
        .expect("criteria")
        .iter()
        .find(|c| c["criterion_id"] == id)
        .expect("criterion")
}

async fn a_manager_report_compares_the_manager_with_the_team(backend: Backend) {
    let app = app_with_scores(backend).await;
    let (status, r) = app
        .get_json(
            &app.admin,
            "/api/v1/managers/m1/report?from=2026-03-01&to=2026-04-01",
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["team"], "east");
    let q = &r["quality"];
    // k1 60, k2 80, k3 75 (k4 before the period, k6 not scorable).
    assert_eq!(q["calls_analysed"], 3);
    close(&q["average_overall"], (60.0 + 80.0 + 75.0) / 3.0);
    // greeting 1, 1, 0.5; needs_discovery 0.5, 1, 0; closing 0, n/a, 1.
    close(&criterion(q, "greeting")["average"], 2.5 / 3.0);
    assert_eq!(
        criterion(q, "greeting")["met"],
        json!({"numerator": 2, "denominator": 3, "value": 2.0 / 3.0})
    );
    close(&criterion(q, "needs_discovery")["average"], 0.5);
    close(&criterion(q, "closing")["average"], 0.5);
    assert_eq!(criterion(q, "closing")["met"]["denominator"], 2);
    // Team east = m1 + m2 (k5: greeting 0, needs_discovery 0.5, closing 0).
    close(&criterion(q, "greeting")["team_average"], 2.5 / 4.0);
    close(&criterion(q, "closing")["team_average"], 1.0 / 3.0);
    assert_eq!(q["strongest_criteria"], json!(["greeting", "closing"]));
    assert_eq!(q["weakest_criteria"], json!(["needs_discovery", "closing"]));
    // Weeks start on Monday 00:00 UTC: k1, k2 in the week of 03-02; k3 in the week of 03-09.
    assert_eq!(q["weekly_trend"][0]["week_start"], "2026-03-02T00:00:00Z");
    assert_eq!(q["weekly_trend"][0]["calls"], 2);
    close(&q["weekly_trend"][0]["average_overall"], 70.0);
    assert_eq!(q["weekly_trend"][1]["week_start"], "2026-03-09T00:00:00Z");
    close(&q["weekly_trend"][1]["average_overall"], 75.0);
    // Conversation: k1 and k2 have figures; the team adds k5.
    assert_eq!(q["conversation"]["calls"], 2);
    close(&q["conversation"]["talk_share"], 0.55);
    close(&q["conversation"]["questions_per_call"], 5.0);
    close(&q["conversation"]["longest_monologue_s"], 40.0);
    let t = &r["team_quality"];
    assert_eq!(t["calls_analysed"], 4);
    close(&t["average_overall"], (60.0 + 80.0 + 75.0 + 40.0) / 4.0);
    close(&t["conversation"]["talk_share"], (0.6 + 0.5 + 0.8) / 3.0);
    // Latest coaching, newest first: k3 (with coaching), k2, k1.
    let coaching = r["latest_coaching"].as_array().expect("coaching");
    assert_eq!(coaching.len(), 3);
    assert_eq!(coaching[0]["call_id"], K3);
    assert_eq!(
        coaching[0]["improvements"][0]["better_phrasing"],
        "Who else decides on this?"
    );
    assert_eq!(coaching[0]["next_steps"][0]["action"], "Send the proposal");
    assert_eq!(
        coaching[0]["strengths"],
        json!(["Clear summary at the end"])
    );
    assert_eq!(coaching[1]["call_id"], K2);
    assert!(
        r["kpis"]["win_rate"]["value"].is_null(),
        "no CRM deals in this test"
    );
    app.stop().await;
}

async fn a_team_report_has_one_row_per_manager(backend: Backend) {
    let app = app_with_scores(backend).await;
    let (status, r) = app
        .get_json(
            &app.admin,
            "/api/v1/teams/east/report?from=2026-03-01&to=2026-04-01",
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["quality"]["calls_analysed"], 4);
    close(&r["quality"]["average_overall"], 63.75);
    let rows = r["managers"].as_array().expect("managers");
    assert_eq!(
        rows.iter()
            .map(|m| m["manager_id"].as_str().expect("id"))
            .collect::<Vec<_>>(),
        ["m1", "m2"]
    );
    assert_eq!(rows[1]["quality"]["calls_analysed"], 1);
    close(&rows[1]["quality"]["average_overall"], 40.0);
    app.stop().await;
}

async fn managers_read_only_their_own_report(backend: Backend) {
    let app = app_with_scores(backend).await;
    let m2 = app.token(Role::Manager, Some("m2")).await;
    let period = "?from=2026-03-01&to=2026-04-01";
    let (status, own) = app
        .get_json(&m2, &format!("/api/v1/managers/m2/report{period}"))
        .await;
    assert_eq!(status, 200, "{own}");
    assert_eq!(own["quality"]["calls_analysed"], 1);
    let (status, _) = app
        .get_json(&m2, &format!("/api/v1/managers/m1/report{period}"))
        .await;
    assert_eq!(status, 404, "another manager's report is theirs");
    let (status, _) = app
        .get_json(&m2, &format!("/api/v1/teams/east/report{period}"))
        .await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get_json(&app.admin, &format!("/api/v1/teams/north/report{period}"))
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get_json(
            &app.admin,
            &format!("/api/v1/managers/nobody/report{period}"),
        )
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

/// Whole days come from the daily rollups and the partial days at a period's edges from the raw
/// rows: both give the raw figures. Deleting a call takes it out of its manager's day at once.
async fn reports_stay_exact_across_partial_days_and_deletions(backend: Backend) {
    let app = app_with_scores(backend).await;
    // k2 and k3 had a critical failure: the KPIs' share counts them from the daily rollups
    // (whole days) and from the raw rows (the partial days at both ends).
    sqlx::query("UPDATE scores SET critical_failures = 1 WHERE call_id IN ($1, $2)")
        .bind(K2)
        .bind(K3)
        .execute(app.store.pool())
        .await
        .expect("mark critical");
    app.store.rebuild_rollups().await.expect("rebuild rollups");
    let critical = |from: &'static str, to: &'static str| {
        let app = &app;
        async move {
            let (status, k) = app
                .get_json(
                    &app.admin,
                    &format!("/api/v1/kpis?manager_id=m1&from={from}&to={to}"),
                )
                .await;
            assert_eq!(status, 200, "{k}");
            let share = &k["kpis"]["calls"]["critical_failure_share"];
            (share["numerator"].as_i64(), share["denominator"].as_i64())
        }
    };
    // k2 (03-04) inside, k3 (03-10 10:00) at the end, k1 (03-02 10:00) before the start.
    assert_eq!(
        critical("2026-03-02T10:30:00Z", "2026-03-10T10:00:00Z").await,
        (Some(1), Some(1))
    );
    assert_eq!(
        critical("2026-03-02T10:31:00Z", "2026-03-10T10:01:00Z").await,
        (Some(2), Some(2))
    );
    assert_eq!(
        critical("2026-03-01", "2026-04-01").await,
        (Some(2), Some(3))
    );
    // [03-02 10:30, 03-10 10:00): k1 (03-02 10:00) is before it, k3 (03-10 10:00) at its end,
    // k2 (03-04 10:00 UTC) and m2's k5 (03-03 09:00) inside.
    let (status, r) = app
        .get_json(
            &app.admin,
            "/api/v1/managers/m1/report?from=2026-03-02T10:30:00Z&to=2026-03-10T10:00:00Z",
        )
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["quality"]["calls_analysed"], 1);
    close(&r["quality"]["average_overall"], 80.0);
    assert_eq!(r["team_quality"]["calls_analysed"], 2);
    close(&r["team_quality"]["average_overall"], 60.0);
    // One minute later at both ends: k1 still out, k3 in.
    let (_, r) = app
        .get_json(
            &app.admin,
            "/api/v1/managers/m1/report?from=2026-03-02T10:31:00Z&to=2026-03-10T10:01:00Z",
        )
        .await;
    assert_eq!(r["quality"]["calls_analysed"], 2);
    close(&r["quality"]["average_overall"], 77.5);

    let k2 = K2.parse().expect("call id");
    app.store.delete_call(k2).await.expect("delete");
    let (_, r) = app
        .get_json(
            &app.admin,
            "/api/v1/managers/m1/report?from=2026-03-01&to=2026-04-01",
        )
        .await;
    let q = &r["quality"];
    // k1 60 and k3 75 remain; greeting 1 and 0.5; k2's conversation figures are gone.
    assert_eq!(q["calls_analysed"], 2);
    close(&q["average_overall"], 67.5);
    close(&criterion(q, "greeting")["average"], 0.75);
    assert_eq!(q["conversation"]["calls"], 1);
    close(&q["conversation"]["talk_share"], 0.6);
    // The deletion refreshed the day's rollup: k3 is the one critical call left of two.
    assert_eq!(
        critical("2026-03-01", "2026-04-01").await,
        (Some(1), Some(2))
    );
    app.stop().await;
}

on_both_backends!(
    a_manager_report_compares_the_manager_with_the_team,
    reports_stay_exact_across_partial_days_and_deletions,
    a_team_report_has_one_row_per_manager,
    managers_read_only_their_own_report,
);

/// `save_transcript` copies the manager's talk share, questions and longest monologue into
/// `call_conversation`, and a second save (a retried job) replaces them.
async fn saving_a_transcript_keeps_its_conversation_figures(backend: Backend) {
    use sqlx::Row;
    let app = spawn_app(backend, Registry::new()).await;
    // m1 known to the CRM, so the report exists before any of m1's calls is scored.
    let managers = std::fs::read_to_string(format!("{FIXTURES}/managers.csv")).expect("fixture");
    import_csv(&app, &app.admin, "managers", "", &managers).await;
    let id = app.upload_call("m1").await;
    let speaker = |who: &str, share: f64, mono: f64| {
        json!({"speaker": who, "talk_seconds": 30.0, "talk_share": share, "turns": 3,
               "longest_monologue_s": mono, "words": 100, "words_per_minute": 200.0,
               "filler_words": 1, "fillers_per_100_words": 1.0, "interruptions": 0})
    };
    let transcript = |share: f64, questions: u32| -> callgrade::transcript::Transcript {
        serde_json::from_value(json!({
            "call_id": id.to_string(), "language": "en", "model": "tiny.en", "duration_s": 60.0,
            "speakers": ["manager", "client"], "segments": [],
            "metrics": {"duration_s": 60.0, "speakers": [speaker("manager", share, 20.0), speaker("client", 1.0 - share, 5.0)],
                        "manager_questions": questions, "manager_questions_per_minute": 4.0,
                        "interruptions": 0, "silence_share": 0.1, "longest_silence_s": 2.0},
            "processing": {"decode_s": 0.1, "vad_s": 0.1, "transcription_s": 1.0, "total_s": 1.2,
                           "speech_s": 50.0, "real_time_factor": 0.02, "dropped_segments": 0,
                           "threads": 2, "vad": true},
            "warnings": [], "created_at": 0
        }))
        .expect("transcript")
    };
    app.store
        .save_transcript(&transcript(0.6, 4), None)
        .await
        .expect("save");
    app.store
        .save_transcript(&transcript(0.7, 5), None)
        .await
        .expect("save again");
    let row = sqlx::query("SELECT manager_talk_share, manager_questions, manager_longest_monologue_s FROM call_conversation WHERE call_id = $1")
        .bind(id.to_string())
        .fetch_one(app.store.pool())
        .await
        .expect("row");
    let values: (f64, f64, f64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!(values, (0.7, 5.0, 20.0));
    // The report reads the call's day from the rollups, which the second save replaced.
    let today = chrono::Utc::now().date_naive();
    let period = format!(
        "from={}&to={}",
        today.pred_opt().expect("yesterday"),
        today.succ_opt().expect("tomorrow")
    );
    let (status, r) = app
        .get_json(&app.admin, &format!("/api/v1/managers/m1/report?{period}"))
        .await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["quality"]["conversation"]["calls"], 1);
    close(&r["quality"]["conversation"]["talk_share"], 0.7);
    close(&r["quality"]["conversation"]["questions_per_call"], 5.0);
    app.stop().await;
}

on_both_backends!(saving_a_transcript_keeps_its_conversation_figures);
