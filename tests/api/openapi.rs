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
