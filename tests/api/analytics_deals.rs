//! Open deals: ranked by a model trained on closed deals, or honestly unranked without enough
//! history; next best steps from rules and from the last call's scorecard.

use callgrade::domain::Role;
use callgrade::jobs::Registry;
use serde_json::json;

use crate::analytics_import::{import_csv, FIXTURES};
use crate::analytics_reports::{insert_scored, Scored};
use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

fn days_ago(days: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339()
}

/// 12 won deals that reached negotiation with 6 activities each, 12 lost ones that stopped at
/// `new` with one activity; then two open deals, one like the winners and one like the losers.
async fn seed(app: &TestApp, closed_each: usize) {
    let managers = std::fs::read_to_string(format!("{FIXTURES}/managers.csv")).expect("fixture");
    import_csv(app, &app.admin, "managers", "", &managers).await;
    let mut deals = String::from("deal_id,manager_id,created_at,status,closed_at,lead_id\n");
    let mut stages = String::from("deal_id,stage,entered_at\n");
    let mut acts = String::from("activity_id,manager_id,type,at,deal_id\n");
    for i in 0..closed_each {
        for (kind, stage, n) in [("won", "negotiation", 6), ("lost", "new", 1)] {
            let id = format!("{kind}{i}");
            deals += &format!("{id},m1,{},{kind},{},\n", days_ago(100), days_ago(60));
            stages += &format!("{id},{stage},{}\n", days_ago(90));
            for a in 0..n {
                acts += &format!("{id}-a{a},m1,call,{},{id}\n", days_ago(61 + a));
            }
        }
    }
    deals += &format!(
        "HOT,m1,{},open,,L1\nCOLD,m2,{},open,,\n",
        days_ago(20),
        days_ago(40)
    );
    stages += &format!(
        "HOT,negotiation,{}\nCOLD,new,{}\n",
        days_ago(5),
        days_ago(40)
    );
    for a in 0..6 {
        acts += &format!("HOT-a{a},m1,call,{},HOT\n", days_ago(1 + a));
    }
    let leads = format!(
        "lead_id,created_at,manager_id,first_response_at\nL1,{},m1,{}\n",
        days_ago(21),
        (chrono::Utc::now() - chrono::Duration::days(21) + chrono::Duration::minutes(45))
            .to_rfc3339()
    );
    for (entity, csv) in [
        ("leads", leads),
        ("deals", deals),
        ("deal_stages", stages),
        ("activities", acts),
    ] {
        let (status, report) = import_csv(app, &app.admin, entity, "", &csv).await;
        assert_eq!(
            (status, report["rejected"].as_u64()),
            (200, Some(0)),
            "{entity}: {report}"
        );
    }
    let call = "01900000-0000-7000-8000-000000000099";
    insert_scored(&app.store, &Scored {
        id: call, manager: "m1", started_at: Some(&days_ago(2)), created_at: &days_ago(2), status: "scored", overall: 70.0,
        criteria: &[("closing", Some(0.0), Some(0))], conversation: None,
        document: json!({"next_steps": [{"action": "Send the revised quote", "owner": "manager", "due_date": "2026-12-10"}]}),
    }).await;
    sqlx::query("UPDATE calls SET deal_id = 'HOT' WHERE id = $1")
        .bind(call)
        .execute(app.store.pool())
        .await
        .expect("link");
    // Linked behind the store's back: roll up again, as after a bulk load.
    app.store.rebuild_rollups().await.expect("rollups");
}

async fn open_deals_are_ranked_by_a_calibrated_model_with_next_steps(backend: Backend) {
    let app = spawn_app_with(backend, Registry::new(), |c| {
        c.analytics.min_training_deals = 10
    })
    .await;
    seed(&app, 12).await;
    let (status, r) = app.get_json(&app.admin, "/api/v1/deals/open").await;
    assert_eq!(status, 200, "{r}");
    let model = &r["model"];
    assert_eq!(model["trained_on"], 24);
    assert_eq!(model["held_out"], 4, "the most recent fifth");
    let brier = model["brier_held_out"].as_f64().expect("brier");
    assert!(
        (0.0..0.25).contains(&brier),
        "better than a coin on separable history: {brier}"
    );
    let ids: Vec<&str> = r["deals"]
        .as_array()
        .expect("deals")
        .iter()
        .map(|d| d["deal_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["HOT", "COLD"]);
    let hot = &r["deals"][0];
    let cold = &r["deals"][1];
    assert!(hot["win_probability"].as_f64().expect("p") > 0.5, "{hot}");
    assert!(cold["win_probability"].as_f64().expect("p") < 0.5, "{cold}");
    assert_eq!(hot["stage"], "negotiation");
    let reasons = |d: &serde_json::Value| -> Vec<String> {
        d["next_steps"]
            .as_array()
            .expect("steps")
            .iter()
            .map(|s| s["reason"].as_str().expect("reason").to_string())
            .collect()
    };
    assert_eq!(reasons(hot), ["missed_sla", "no_agreed_next_step"], "{hot}");
    assert_eq!(reasons(cold), ["no_recent_touch"], "{cold}");
    assert_eq!(
        hot["last_call_next_steps"][0]["action"],
        "Send the revised quote"
    );

    let m2 = app.token(Role::Manager, Some("m2")).await;
    let (status, own) = app.get_json(&m2, "/api/v1/deals/open").await;
    assert_eq!(status, 200);
    assert_eq!(
        own["deals"].as_array().map(Vec::len),
        Some(1),
        "only COLD is m2's"
    );
    let (status, _) = app.get_json(&m2, "/api/v1/deals/open?manager_id=m1").await;
    assert_eq!(status, 404, "another manager's deals are theirs");

    // A team's open deals; the model and the deals kept between requests follow an import.
    let team_ids = |r: &serde_json::Value| -> Vec<String> {
        r["deals"]
            .as_array()
            .expect("deals")
            .iter()
            .map(|d| d["deal_id"].as_str().expect("id").to_string())
            .collect()
    };
    let (status, east) = app
        .get_json(&app.admin, "/api/v1/deals/open?team=east")
        .await;
    assert_eq!(status, 200, "{east}");
    assert_eq!(team_ids(&east), ["HOT", "COLD"]);
    let (status, west) = app
        .get_json(&app.admin, "/api/v1/deals/open?team=west")
        .await;
    assert_eq!(status, 200, "{west}");
    assert!(team_ids(&west).is_empty(), "{west}");
    let (status, body) = app
        .get_json(&app.admin, "/api/v1/deals/open?team=nowhere")
        .await;
    assert_eq!(status, 404, "{body}");
    assert!(body.to_string().contains("nowhere"), "{body}");
    let deals = format!(
        "deal_id,manager_id,created_at,status,closed_at,lead_id\nWEST1,m3,{},open,,\n",
        days_ago(5)
    );
    let (status, report) = import_csv(&app, &app.admin, "deals", "", &deals).await;
    assert_eq!(status, 200, "{report}");
    let (_, west) = app
        .get_json(&app.admin, "/api/v1/deals/open?team=west")
        .await;
    assert_eq!(team_ids(&west), ["WEST1"], "seen right after the import");
    app.stop().await;
}

async fn too_few_closed_deals_give_no_probability_and_say_why(backend: Backend) {
    let app = spawn_app_with(backend, Registry::new(), |_| {}).await;
    seed(&app, 3).await;
    let (status, r) = app.get_json(&app.admin, "/api/v1/deals/open").await;
    assert_eq!(status, 200, "{r}");
    assert!(r["model"].is_null(), "{r}");
    assert!(
        r["note"]
            .as_str()
            .expect("note")
            .contains("too few closed deals"),
        "{r}"
    );
    assert!(r["deals"]
        .as_array()
        .expect("deals")
        .iter()
        .all(|d| d["win_probability"].is_null()));
    assert_eq!(
        r["deals"][0]["deal_id"], "COLD",
        "longest untouched first without a model"
    );
    app.stop().await;
}

/// Uploads a small call as `token` for `manager`, tagged with `deal`; the answer's status and body.
async fn upload_tagged(
    app: &TestApp,
    token: &str,
    manager: &str,
    deal: &str,
) -> (u16, serde_json::Value) {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(crate::helpers::unique_bytes()).file_name("c.wav"),
        )
        .text("manager_id", manager.to_string())
        .text("deal_id", deal.to_string());
    let r = app
        .client
        .post(app.url("/api/v1/calls"))
        .bearer_auth(token)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or_default())
}

fn deal<'a>(view: &'a serde_json::Value, id: &str) -> Option<&'a serde_json::Value> {
    view["deals"]
        .as_array()
        .expect("deals")
        .iter()
        .find(|d| d["deal_id"] == id)
}

async fn a_manager_cannot_reach_another_managers_deal_view(backend: Backend) {
    let app = spawn_app_with(backend, Registry::new(), |c| {
        c.analytics.min_training_deals = 10
    })
    .await;
    seed(&app, 12).await;
    let m1 = app.token(Role::Manager, Some("m1")).await;
    let m2 = app.token(Role::Manager, Some("m2")).await;
    let m1_call = "01900000-0000-7000-8000-000000000099";

    // m2 tags a call with m1's deal: refused, clearly, and nothing is stored.
    let (status, body) = upload_tagged(&app, &m2, "m2", "HOT").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        message.contains("deal_id") && message.contains("another manager"),
        "{message}"
    );
    assert_eq!(
        crate::helpers::count(
            &app.store,
            "SELECT COUNT(*) FROM calls WHERE manager_id = 'm2'"
        )
        .await,
        0
    );
    // Their own deal, and a deal the CRM does not know yet, are fine.
    assert_eq!(upload_tagged(&app, &m2, "m2", "COLD").await.0, 202);
    assert_eq!(
        upload_tagged(&app, &m2, "m2", "NOT-IN-CRM-YET").await.0,
        202
    );

    // A newer scored call of m2 on HOT (QA may tag any deal): m1's view keeps to m1's calls,
    // heads see every call on the deal.
    let m2_call = "01900000-0000-7000-8000-0000000000aa";
    insert_scored(&app.store, &Scored {
        id: m2_call, manager: "m2", started_at: Some(&days_ago(1)), created_at: &days_ago(1), status: "scored", overall: 10.0,
        criteria: &[("closing", Some(1.0), Some(1))], conversation: None,
        document: json!({"next_steps": [{"action": "m2's private plan", "owner": "manager", "due_date": "2026-12-11"}]}),
    }).await;
    sqlx::query("UPDATE calls SET deal_id = 'HOT' WHERE id = $1")
        .bind(m2_call)
        .execute(app.store.pool())
        .await
        .expect("link");
    app.store.rebuild_rollups().await.expect("rollups");
    let (_, own) = app.get_json(&m1, "/api/v1/deals/open").await;
    let hot = deal(&own, "HOT").expect("HOT is m1's");
    assert_eq!(hot["last_call_id"], m1_call, "{hot}");
    assert_eq!(hot["call_quality"], 70.0, "{hot}");
    assert!(!own.to_string().contains("m2's private plan"), "{own}");
    assert!(!own.to_string().contains(m2_call), "{own}");
    let (_, all) = app.get_json(&app.admin, "/api/v1/deals/open").await;
    let hot = deal(&all, "HOT").expect("HOT");
    assert_eq!(hot["last_call_id"], m2_call, "heads see every call: {hot}");
    assert_eq!(hot["call_quality"], 40.0, "{hot}");

    // The CRM reassigns HOT to m2: m1 no longer sees it, and m2 sees only m2's own call on it.
    let deals = format!(
        "deal_id,manager_id,created_at,status,closed_at,lead_id\nHOT,m2,{},open,,L1\n",
        days_ago(20)
    );
    let (status, report) = import_csv(&app, &app.admin, "deals", "", &deals).await;
    assert_eq!(status, 200, "{report}");
    let (_, own) = app.get_json(&m1, "/api/v1/deals/open").await;
    assert!(deal(&own, "HOT").is_none(), "{own}");
    let (_, theirs) = app.get_json(&m2, "/api/v1/deals/open").await;
    let hot = deal(&theirs, "HOT").expect("HOT is m2's now");
    assert_eq!(hot["last_call_id"], m2_call, "{hot}");
    assert_eq!(hot["call_quality"], 10.0, "{hot}");
    assert!(!theirs.to_string().contains(m1_call), "{theirs}");
    assert!(
        !theirs.to_string().contains("Send the revised quote"),
        "{theirs}"
    );
    // And m1 may no longer tag calls with it.
    assert_eq!(upload_tagged(&app, &m1, "m1", "HOT").await.0, 422);
    app.stop().await;
}

on_both_backends!(
    a_manager_cannot_reach_another_managers_deal_view,
    open_deals_are_ranked_by_a_calibrated_model_with_next_steps,
    too_few_closed_deals_give_no_probability_and_say_why,
);
