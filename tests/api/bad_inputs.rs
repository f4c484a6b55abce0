//! Every broken input of `../shared/testdata/calls/bad/` in one batch with good files: each bad
//! file is refused at upload (415) or fails its own job with a clear reason, or gives an empty
//! or near-empty transcript; the good files still finish and the server stays up.

use std::time::Duration;

use crate::helpers::Backend;
use crate::transcribe::{
    call_id, model, shared, spawn_transcribing, transcript, upload_file, wait_transcribed,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_broken_files_fails_each_alone_and_good_files_still_finish() {
    let Some(tiny) = model("tiny.en") else { return };
    let app = spawn_transcribing(Backend::Sqlite, &tiny).await;
    let fields = [("manager_id", "m-bad"), ("language", "en")];

    // Not audio at all: refused at the door with a clear message.
    for f in ["empty.mp3", "random_bytes.wav", "text_renamed.mp3"] {
        let (status, body) = upload_file(&app, &shared(&format!("calls/bad/{f}")), &fields).await;
        // An empty body is a malformed upload (400); content that is not audio is 415.
        let expected = if f == "empty.mp3" { 400 } else { 415 };
        assert_eq!(status, expected, "{f}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{f}: {body}");
    }

    // Audio-looking files and good ones, interleaved in one batch.
    let batch = [
        "calls/bad/truncated_3kb.mp3",
        "audio/jfk.wav",
        "calls/bad/huge_header.wav",
        "calls/bad/short_0.2s.wav",
        "calls/bad/silence_10min.mp3",
        "audio/jfk.mp3",
    ];
    let mut ids = Vec::new();
    for f in batch {
        let (status, body) = upload_file(&app, &shared(f), &fields).await;
        assert_eq!(status, 202, "{f}: {body}");
        ids.push((f, call_id(&body)));
    }
    for (f, id) in &ids {
        let status = wait_transcribed(&app, *id, Duration::from_secs(300)).await;
        let call = app.store.get_call(*id).await.expect("store").expect("call");
        match *f {
            "audio/jfk.wav" | "audio/jfk.mp3" => {
                assert_eq!(status, "scoring", "{f}: {:?}", call.failure_reason);
                let t = transcript(&app, *id).await;
                assert!(t.segments.iter().any(|s| s.text.contains("country")), "{f}");
            }
            "calls/bad/truncated_3kb.mp3" => {
                if status == "failed" {
                    assert!(
                        call.failure_reason.is_some(),
                        "{f}: failed without a reason"
                    );
                } else {
                    let t = transcript(&app, *id).await;
                    assert!(
                        t.duration_s < 2.0,
                        "{f}: decoded {} s, the header claims 109 s",
                        t.duration_s
                    );
                }
            }
            "calls/bad/huge_header.wav" => {
                if status == "failed" {
                    assert!(call.failure_reason.is_some(), "{f}");
                } else {
                    let t = transcript(&app, *id).await;
                    assert!(
                        (t.duration_s - 1.0).abs() < 0.2,
                        "{f}: decoded {} s",
                        t.duration_s
                    );
                }
            }
            "calls/bad/short_0.2s.wav" => {
                assert_eq!(status, "scoring", "{f}: {:?}", call.failure_reason);
                let t = transcript(&app, *id).await;
                let words: usize = t
                    .segments
                    .iter()
                    .map(|s| s.text.split_whitespace().count())
                    .sum();
                assert!(words <= 1, "{f}: {:?}", t.segments);
            }
            "calls/bad/silence_10min.mp3" => {
                assert_eq!(status, "scoring", "{f}: {:?}", call.failure_reason);
                let t = transcript(&app, *id).await;
                assert!(
                    (t.duration_s - 600.0).abs() < 2.0,
                    "{f}: {} s",
                    t.duration_s
                );
                assert!(t.segments.is_empty(), "{f}: hallucinated {:?}", t.segments);
                assert!(t.metrics.speakers.iter().all(|s| s.talk_seconds == 0.0));
            }
            other => unreachable!("{other}"),
        }
    }
    let (status, _) = app.get_json(&app.admin, "/healthz").await;
    assert_eq!(status, 200, "the server is still up");
    app.stop().await;
}
