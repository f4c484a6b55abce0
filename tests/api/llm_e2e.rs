//! The real path of scoring: a real OpenAI-compatible server, llama.cpp's (the `xllamacpp`
//! wheel) serving SmolLM2-135M-Instruct, both from PyPI. `make test` starts it and sets
//! `TEST_LLM_BASE_URL` (and `TEST_REQUIRE_LLM=1`, which makes its absence a failure).
//! A 135M model's judgements carry no information: this asserts the plumbing and the shape of
//! what is stored, never the scores.

use std::time::Duration;

use callgrade::jobs::Registry;
use callgrade::llm::LlmClient;
use callgrade::pipeline::Stage;
use callgrade::scoring::job::ScoreJob;
use serde_json::Value;

use crate::helpers::{spawn_app_for, Backend};
use crate::scoring::corpus_transcript;

fn llm_url() -> Option<String> {
    match std::env::var("TEST_LLM_BASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("TEST_REQUIRE_LLM").as_deref() != Ok("1"),
                "TEST_REQUIRE_LLM=1 but TEST_LLM_BASE_URL is not set"
            );
            eprintln!("skipping: TEST_LLM_BASE_URL not set (make test starts a local LLM)");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_local_llm_scores_a_call_end_to_end() {
    let Some(url) = llm_url() else { return };
    let model = std::env::var("TEST_LLM_MODEL")
        .unwrap_or_else(|_| "SmolLM2-135M-Instruct.Q4_1".to_string());
    let app = spawn_app_for(
        Backend::Sqlite,
        move |c| {
            c.llm.base_url = url;
            c.llm.model = model;
            c.llm.timeout_seconds = 600;
            c.llm.max_retries = 1;
            c.llm.compact_json = true;
            // SmolLM2's context is 8,192 tokens (llama.cpp caps it there); its answers fill the
            // schema's bounds, which stay under 3,000 tokens.
            c.llm.context_tokens = 8192;
            c.llm.max_tokens = 3000;
        },
        |c| {
            Registry::new().register(ScoreJob::new(
                LlmClient::new(&c.llm).expect("llm"),
                c.scoring.clone(),
            ))
        },
    )
    .await;
    let id = app.upload_call("m-carter").await;
    app.store
        .save_transcript(&corpus_transcript(id, "pub06_en"), None)
        .await
        .expect("transcript");
    assert!(app
        .store
        .queue_stage(id, Stage::Score, 1)
        .await
        .expect("queue"));
    let started = std::time::Instant::now();
    loop {
        let status = app.call_status(id).await;
        if status == "done" || status == "failed" {
            let call = app.store.get_call(id).await.unwrap().unwrap();
            assert_eq!(status, "done", "scoring failed: {:?}", call.failure_reason);
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "still {status}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (status, s) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}/score"))
        .await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["status"], "scored");
    let criteria = s["criteria"].as_array().expect("criteria");
    assert_eq!(criteria.len(), 5);
    for c in criteria {
        assert!(
            ["strong", "weak", "absent", "na"].contains(&c["level"].as_str().unwrap_or("")),
            "{c}"
        );
        assert!(!c["rationale"].as_str().unwrap_or("").is_empty(), "{c}");
        for e in c["evidence"].as_array().expect("evidence") {
            // Whatever the model quoted, a quote is proof only when it was found.
            if e["verified"] == true {
                assert!(e["speaker"].is_string() && e["start_s"].is_number(), "{e}");
            } else {
                assert_eq!(e["speaker"], Value::Null, "{e}");
                assert_eq!(e["start_s"], Value::Null, "{e}");
                assert_eq!(c["low_confidence"], true, "{c}");
            }
        }
    }
    assert!(s["overall"].is_number());
    let p = &s["provenance"];
    assert_eq!(
        p["response_format"], "json_schema",
        "llama.cpp takes json_schema: {p}"
    );
    assert!(p["prompt_tokens"].as_u64().unwrap_or(0) > 500, "{p}");
    assert!(p["completion_tokens"].as_u64().unwrap_or(0) > 0, "{p}");
    eprintln!(
        "real LLM: overall {}, confidence {}, {} request(s), {} + {} tokens, {} ms waiting, {} ms local",
        s["overall"], s["confidence"], p["requests"], p["prompt_tokens"], p["completion_tokens"], p["llm_ms"], p["local_ms"]
    );
    app.stop().await;
}
