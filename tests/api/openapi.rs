//! The OpenAPI document is generated from the code; the checked-in copy must match it.

use callgrade::jobs::Registry;

use crate::helpers::{spawn_app, Backend};

const CHECKED_IN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

#[tokio::test]
async fn checked_in_openapi_matches_the_code() {
    let generated = serde_json::to_string_pretty(&callgrade::http::openapi()).expect("json") + "\n";
    if std::env::var("UPDATE_OPENAPI").as_deref() == Ok("1") {
        std::fs::write(CHECKED_IN, &generated).expect("write docs/openapi.json");
    }
    let checked_in = std::fs::read_to_string(CHECKED_IN).unwrap_or_default();
    assert!(
        checked_in == generated,
        "docs/openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test openapi` and commit it"
    );
}

#[tokio::test]
async fn the_served_document_is_the_generated_one() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let served: serde_json::Value = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(
        served,
        serde_json::to_value(callgrade::http::openapi()).expect("json")
    );
    assert!(served["paths"]["/api/v1/calls"]["post"].is_object());
    assert!(served["components"]["securitySchemes"]["bearer"].is_object());
    app.stop().await;
}

#[tokio::test]
async fn health_probes_and_metrics_answer() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    app.upload_call("m-1").await;
    for path in ["/healthz", "/readyz"] {
        let r = app.client.get(app.url(path)).send().await.expect("get");
        assert_eq!(r.status(), 200, "{path}");
    }
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("callgrade_queue_jobs{state=\"queued\",kind=\"transcribe\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("callgrade_http_request_duration_seconds_bucket"),
        "{metrics}"
    );
    let r = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("get");
    assert!(r.headers().contains_key("x-request-id"));
    app.stop().await;
}

/// utoipa names a schema after its type and keeps the last one registered under a name: two
/// types called the same would make every reference to one point at the other (it happened:
/// the report's `Coaching` and the scorecard's). Schema names are unique across the crate.
#[test]
fn no_two_schemas_share_a_name() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut names = std::collections::BTreeMap::<String, Vec<String>>::new();
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read src") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if !line.contains("derive(") || !line.contains("ToSchema") {
                    continue;
                }
                let mut renamed = None;
                for next in lines.iter().skip(i + 1).take(6) {
                    if let Some(rest) = next.trim().strip_prefix("#[schema(as = ") {
                        renamed = Some(rest.trim_end_matches(")]").to_string());
                    }
                    let words: Vec<&str> = next.split_whitespace().collect();
                    if let [_, "struct" | "enum", name, ..] = words.as_slice() {
                        let name = renamed
                            .take()
                            .unwrap_or_else(|| name.trim_end_matches(['{', '(', ';']).to_string());
                        names
                            .entry(name)
                            .or_default()
                            .push(path.display().to_string());
                        break;
                    }
                }
            }
        }
    }
    let shared: Vec<_> = names.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(shared.is_empty(), "schema names used twice: {shared:?}");
    assert!(names.contains_key("ManagerReport") && names.contains_key("RecentCoaching"));
}
