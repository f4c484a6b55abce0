//! Every endpoint with every role: who may do what, and managers never see colleagues' calls.

use std::collections::BTreeSet;

use callgrade::domain::Role;
use callgrade::jobs::Registry;

use crate::helpers::{spawn_app, spawn_app_with, unique_bytes, Backend, TestApp};
use crate::on_both_backends;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Nobody,
    Admin,
    Qa,
    Head,
    /// Manager m-1, whose calls the tests use.
    Owner,
    /// Manager m-2.
    Colleague,
}

const EVERYONE: [Who; 6] = [
    Who::Nobody,
    Who::Admin,
    Who::Qa,
    Who::Head,
    Who::Owner,
    Who::Colleague,
];

struct Tokens {
    admin: String,
    qa: String,
    head: String,
    owner: String,
    colleague: String,
}

impl Tokens {
    async fn new(app: &TestApp) -> Self {
        Self {
            admin: app.admin.clone(),
            qa: app.token(Role::Qa, None).await,
            head: app.token(Role::Head, None).await,
            owner: app.token(Role::Manager, Some("m-1")).await,
            colleague: app.token(Role::Manager, Some("m-2")).await,
        }
    }

    fn of(&self, who: Who) -> Option<&str> {
        match who {
            Who::Nobody => None,
            Who::Admin => Some(&self.admin),
            Who::Qa => Some(&self.qa),
            Who::Head => Some(&self.head),
            Who::Owner => Some(&self.owner),
            Who::Colleague => Some(&self.colleague),
        }
    }
}

/// Sends one request as `who`; a fresh call/job/token is made for destructive endpoints.
async fn send(app: &TestApp, tokens: &Tokens, who: Who, method: &str, route: &str) -> u16 {
    let call = app.upload_call("m-1").await;
    let job = app
        .store
        .latest_job_for_call(call)
        .await
        .expect("job")
        .expect("job")
        .id;
    let token_id = {
        let (_, list) = app.get_json(&app.admin, "/api/v1/tokens").await;
        list[0]["id"].as_str().expect("token id").to_string()
    };
    let path = route
        .replace("/api/v1/calls/{id}", &format!("/api/v1/calls/{call}"))
        .replace("/api/v1/jobs/{id}", &format!("/api/v1/jobs/{job}"))
        .replace("/api/v1/tokens/{id}", &format!("/api/v1/tokens/{token_id}"))
        .replace("/api/v1/managers/{id}", "/api/v1/managers/m-1")
        .replace("{team}", "east")
        .replace("{entity}", "managers")
        .replace("/api/v1/rubrics/{id}", "/api/v1/rubrics/sales-standard")
        .replace("{language}", "en")
        .replace("{criterion}", "greeting");
    let path = match path.as_str() {
        "/api/v1/rescore" => format!("{path}?rubric=sales-standard"),
        "/api/v1/search" => format!("{path}?q=price"),
        _ => path,
    };
    let needs_period = ["/api/v1/kpis", "/report", "/quality-vs-outcome"];
    let path = if needs_period.iter().any(|p| path.ends_with(p)) {
        format!("{path}?from=2026-03-01&to=2026-04-01")
    } else {
        path
    };
    let mut req = match method {
        "get" => app.client.get(app.url(&path)),
        "post" => app.client.post(app.url(&path)),
        "delete" => app.client.delete(app.url(&path)),
        "put" => app.client.put(app.url(&path)),
        other => panic!("method {other}"),
    };
    if (method, route) == ("post", "/api/v1/calls") {
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(unique_bytes()).file_name("c.mp3"),
            )
            .text("manager_id", "m-1");
        req = req.multipart(form);
    }
    if method == "put" {
        req = req.json(&serde_json::json!({"answer": 1, "comment": "checked by QA"}));
    }
    if (method, route) == ("post", "/api/v1/rubrics") {
        req = req
            .header("content-type", "application/toml")
            .body(include_str!("../../rubrics/sales-standard.en.toml"));
    }
    if (method, route) == ("post", "/api/v1/calls/{id}/roles") {
        req = req.json(&serde_json::json!({"manager": "speaker_2"}));
    }
    if (method, route) == ("post", "/api/v1/tokens") {
        req = req.json(&serde_json::json!({"name": "new", "role": "qa"}));
    }
    if let Some(t) = tokens.of(who) {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("send").status().as_u16()
}

/// Expected status per endpoint and caller.
fn expected(method: &str, route: &str, who: Who) -> u16 {
    use Who::*;
    let public = matches!(
        route,
        "/healthz" | "/readyz" | "/metrics" | "/api/v1/openapi.json"
    );
    if public {
        return 200;
    }
    if who == Nobody {
        return 401;
    }
    match (method, route, who) {
        ("post", "/api/v1/calls", Admin | Qa | Owner) => 202,
        ("post", "/api/v1/calls", Head | Colleague) => 403,
        ("get", "/api/v1/calls", _) => 200,
        // Everyone may search; a manager's search covers their own calls (tests/api/search.rs).
        ("get", "/api/v1/search", _) => 200,
        ("get", "/api/v1/calls/{id}", Colleague) => 404,
        ("get", "/api/v1/calls/{id}", _) => 200,
        // The call is queued, so it has no transcript yet: 404 for everyone who may see it
        // (with a message saying so), and the same 404 for a colleague.
        ("get", "/api/v1/calls/{id}/transcript", _) => 404,
        // The recording and its waveform: whoever may see the call, even while it is queued.
        ("get", "/api/v1/calls/{id}/audio" | "/api/v1/calls/{id}/peaks", Colleague) => 404,
        ("get", "/api/v1/calls/{id}/audio" | "/api/v1/calls/{id}/peaks", _) => 200,
        ("delete", "/api/v1/calls/{id}", Admin | Qa) => 204,
        ("delete", "/api/v1/calls/{id}", Colleague) => 404,
        ("delete", "/api/v1/calls/{id}", _) => 403,
        // The call is queued, not failed: allowed roles get 409.
        ("post", "/api/v1/calls/{id}/retry", Admin | Qa) => 409,
        ("post", "/api/v1/calls/{id}/retry", Colleague) => 404,
        ("post", "/api/v1/calls/{id}/retry", _) => 403,
        // The call is queued, not transcribed: nothing to swap yet for the roles that may.
        ("post", "/api/v1/calls/{id}/swap-speakers", Admin | Qa) => 409,
        ("post", "/api/v1/calls/{id}/swap-speakers", Colleague) => 404,
        ("post", "/api/v1/calls/{id}/swap-speakers", _) => 403,
        ("post", "/api/v1/calls/{id}/roles", Admin | Qa) => 409,
        ("post", "/api/v1/calls/{id}/roles", Colleague) => 404,
        ("post", "/api/v1/calls/{id}/roles", _) => 403,
        // Scores. The call is queued: no transcript, no score yet.
        ("get", "/api/v1/calls/{id}/score", _) => 404,
        (
            "post" | "put",
            "/api/v1/calls/{id}/rescore" | "/api/v1/calls/{id}/score/criteria/{criterion}",
            Colleague,
        ) => 404,
        ("post", "/api/v1/calls/{id}/rescore", Admin | Qa) => 409,
        ("put", "/api/v1/calls/{id}/score/criteria/{criterion}", Admin | Qa) => 404,
        (
            "post" | "put",
            "/api/v1/calls/{id}/rescore" | "/api/v1/calls/{id}/score/criteria/{criterion}",
            _,
        ) => 403,
        ("post", "/api/v1/rescore", Admin | Qa) => 202,
        ("post", "/api/v1/rescore", _) => 403,
        ("get", "/api/v1/calibration", Admin | Qa | Head) => 200,
        ("get", "/api/v1/calibration", _) => 403,
        ("get", "/api/v1/rubrics" | "/api/v1/rubrics/{id}/{language}", _) => 200,
        // The built-in scorecard again: already a version, so 200 rather than 201.
        ("post", "/api/v1/rubrics", Admin | Qa) => 200,
        ("post", "/api/v1/rubrics", _) => 403,
        ("get", "/api/v1/jobs", Admin | Qa | Head) => 200,
        ("post", "/api/v1/jobs/{id}/cancel", Admin | Qa) => 200,
        ("post", "/api/v1/jobs/{id}/retry", Admin | Qa) => 409,
        (
            "get" | "post",
            "/api/v1/jobs" | "/api/v1/jobs/{id}/cancel" | "/api/v1/jobs/{id}/retry",
            _,
        ) => 403,
        ("get", "/api/v1/tokens", Admin) => 200,
        ("post", "/api/v1/tokens", Admin) => 201,
        ("delete", "/api/v1/tokens/{id}", Admin) => 204,
        (_, "/api/v1/tokens" | "/api/v1/tokens/{id}", _) => 403,
        // Sales analytics. No CRM data is loaded: unknown managers and teams are 404 for those
        // who may read them; a manager's own report exists even before the CRM knows them.
        ("post", "/api/v1/import/{entity}", Admin | Qa | Head) => 200,
        ("post", "/api/v1/import/{entity}", _) => 403,
        ("get", "/api/v1/kpis" | "/api/v1/deals/open", _) => 200,
        ("get", "/api/v1/managers/{id}/report", Owner) => 200,
        ("get", "/api/v1/managers/{id}/report", Colleague) => 404,
        ("get", "/api/v1/managers/{id}/report", _) => 404,
        ("get", "/api/v1/teams/{team}/report", Admin | Qa | Head) => 404,
        ("get", "/api/v1/teams/{team}/report", _) => 403,
        (
            "get",
            "/api/v1/insights/quality-vs-outcome" | "/api/v1/insights/attention" | "/api/v1/trends",
            Admin | Qa | Head,
        ) => 200,
        (
            "get",
            "/api/v1/insights/quality-vs-outcome" | "/api/v1/insights/attention" | "/api/v1/trends",
            _,
        ) => 403,
        other => panic!("no expectation for {other:?}: add the new endpoint to this table"),
    }
}

async fn every_endpoint_answers_every_role_as_specified(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let tokens = Tokens::new(&app).await;
    let spec = serde_json::to_value(callgrade::http::openapi()).expect("spec");
    let mut routes: BTreeSet<(String, String)> = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            routes.insert((method.clone(), path.clone()));
        }
    }
    routes.insert(("get".into(), "/api/v1/openapi.json".into()));
    assert!(routes.len() >= 14, "{routes:?}");
    let mut failures = vec![];
    for (method, route) in &routes {
        for who in EVERYONE {
            // Revoking the admin's own token would lock the test out: revoke a spare one.
            if (method.as_str(), route.as_str()) == ("delete", "/api/v1/tokens/{id}") {
                app.token(Role::Qa, None).await;
            }
            let want = expected(method, route, who);
            let got = send(&app, &tokens, who, method, route).await;
            if got != want {
                failures.push(format!(
                    "{method} {route} as {who:?}: got {got}, want {want}"
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

async fn managers_only_ever_see_their_own_calls(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let tokens = Tokens::new(&app).await;
    let mine = app.upload_call("m-1").await;
    let theirs = app.upload_call("m-2").await;
    let (_, page) = app
        .get_json(tokens.of(Who::Owner).expect("t"), "/api/v1/calls")
        .await;
    let ids: Vec<&str> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| c["id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, vec![mine.to_string()]);
    let (status, _) = app
        .get_json(
            tokens.of(Who::Owner).expect("t"),
            &format!("/api/v1/calls/{theirs}"),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = app
        .get_json(
            tokens.of(Who::Owner).expect("t"),
            "/api/v1/calls?manager_id=m-2",
        )
        .await;
    assert_eq!(status, 404);
    // A manager may upload their own calls without naming themselves.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(unique_bytes()).file_name("x.mp3"),
    );
    let r = app
        .client
        .post(app.url("/api/v1/calls"))
        .bearer_auth(tokens.of(Who::Owner).expect("t"))
        .multipart(form)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 202);
    // Revoked tokens stop working.
    let (_, list) = app.get_json(&app.admin, "/api/v1/tokens").await;
    let owner_id = list
        .as_array()
        .expect("tokens")
        .iter()
        .find(|t| t["manager_id"] == "m-1")
        .expect("owner")["id"]
        .as_str()
        .expect("id")
        .to_string();
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/tokens/{owner_id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("revoke");
    assert_eq!(r.status(), 204);
    let (status, _) = app
        .get_json(tokens.of(Who::Owner).expect("t"), "/api/v1/calls")
        .await;
    assert_eq!(status, 401);
    app.stop().await;
}

/// A scorecard loaded from a file records the file's path as its origin: admins and QA see
/// it, other roles see only that it came from a file (the path tells how the server is laid out).
async fn scorecard_file_paths_are_shown_only_to_admins_and_qa(backend: Backend) {
    let rubrics = tempfile::tempdir().expect("tempdir");
    let text = include_str!("../../rubrics/sales-standard.en.toml")
        .replace("id = \"sales-standard\"", "id = \"team-standard\"");
    std::fs::write(rubrics.path().join("team-standard.en.toml"), text).expect("write");
    let folder = rubrics.path().to_path_buf();
    let app = spawn_app_with(backend, Registry::new(), move |c| {
        c.scoring.rubrics_dir = folder;
    })
    .await;
    let path = rubrics.path().to_str().unwrap().to_string();
    for (role, manager, sees_path) in [
        (Role::Admin, None, true),
        (Role::Qa, None, true),
        (Role::Head, None, false),
        (Role::Manager, Some("m-1"), false),
    ] {
        let token = app.token(role, manager).await;
        for route in [
            "/api/v1/rubrics".to_string(),
            "/api/v1/rubrics/team-standard/en".to_string(),
        ] {
            let (status, body) = app.get_json(&token, &route).await;
            assert_eq!(status, 200, "{role:?} {route}");
            let text = body.to_string();
            assert_eq!(
                text.contains(&path),
                sees_path,
                "{role:?} {route}: {text:.400}"
            );
            if !sees_path {
                assert!(text.contains("\"origin\":\"file\""), "{role:?} {route}");
                if route == "/api/v1/rubrics" {
                    assert!(text.contains("\"origin\":\"builtin\""), "{role:?} {route}");
                }
            }
        }
    }
    app.stop().await;
}

on_both_backends!(
    every_endpoint_answers_every_role_as_specified,
    managers_only_ever_see_their_own_calls,
    scorecard_file_paths_are_shown_only_to_admins_and_qa,
);
