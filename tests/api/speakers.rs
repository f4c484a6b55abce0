//! QA swaps a stereo call's manager and client when the channels were the other way round.

use std::time::Duration;

use callgrade::domain::{CallId, Role, Speaker};
use callgrade::pipeline::Stage;
use callgrade::transcript::Transcript;

use crate::fake_llm::{self, FakeLlm};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::scoring::{app_with_llm, corpus_transcript};

const WAIT: Duration = Duration::from_secs(60);

/// `POST /api/v1/calls/{id}/swap-speakers` with `token`.
async fn swap(app: &TestApp, id: CallId, token: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/calls/{id}/swap-speakers")))
        .bearer_auth(token)
        .send()
        .await
        .expect("swap request")
}

fn talk_share(t: &Transcript, who: Speaker) -> f64 {
    t.metrics
        .speakers
        .iter()
        .find(|s| s.speaker == who)
        .map_or(0.0, |s| s.talk_share)
}

async fn qa_swaps_the_speakers_of_a_stereo_call_and_it_is_scored_again(backend: Backend) {
    let llm = FakeLlm::start(vec![]).await;
    let app = app_with_llm(backend, &llm, |_| {}).await;
    let id = app.upload_call("m-carter").await;
    let before = corpus_transcript(id, "pub06_en");
    app.store
        .save_transcript(&before, None)
        .await
        .expect("transcript");
    assert!(app.store.queue_stage(id, Stage::Score, 3).await.unwrap());
    app.wait_for_status(id, "done", WAIT).await;
    let scored_before = llm.requests().len();

    // The manager whose call it is may read it, not rewrite who said what.
    let manager = app.token(Role::Manager, Some("m-carter")).await;
    let r = swap(&app, id, &manager).await;
    assert_eq!(r.status(), 403);

    let qa = app.token(Role::Qa, None).await;
    let r = swap(&app, id, &qa).await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["channels"], "client,manager");
    assert_eq!(body["rescore_queued"], true);

    let after = app.store.get_transcript(id).await.unwrap().expect("kept");
    assert_eq!(after.speakers, vec![Speaker::Client, Speaker::Manager]);
    assert_eq!(after.segments.len(), before.segments.len());
    for (a, b) in after.segments.iter().zip(&before.segments) {
        assert_eq!((a.start, &a.text), (b.start, &b.text));
        assert_eq!(Some(a.speaker), b.speaker.other(), "{}", a.text);
    }
    let share = |t: &Transcript, who| (talk_share(t, who) * 1000.0).round();
    assert_eq!(
        share(&after, Speaker::Manager),
        share(&before, Speaker::Client)
    );
    assert_ne!(
        share(&after, Speaker::Manager),
        share(&before, Speaker::Manager)
    );
    let call = app.store.get_call(id).await.unwrap().expect("call");
    assert_eq!(call.call.channels.to_string(), "client,manager");
    // A stereo call's roles are its channels'; who speaks first is not stored.
    assert_eq!(call.call.first_speaker, None);

    // Scored again, with the former client's lines as the manager's.
    app.wait_for_status(id, "done", WAIT).await;
    let requests = llm.requests();
    assert!(requests.len() > scored_before, "no second scoring");
    let prompt = fake_llm::user_prompt(requests.last().expect("a request"));
    let opening = prompt
        .lines()
        .find(|l| l.contains("this is Emily Carter"))
        .expect("the opening line");
    assert!(opening.contains("] C: "), "{opening}");

    // Swapping again restores the recording's own order.
    let r = swap(&app, id, &qa).await;
    assert_eq!(r.status(), 200);
    let again = app.store.get_transcript(id).await.unwrap().expect("kept");
    assert_eq!(again.speakers, before.speakers);
    assert!(again
        .segments
        .iter()
        .zip(&before.segments)
        .all(|(a, b)| a.speaker == b.speaker));
    app.stop().await;
}

async fn a_mono_call_has_no_speakers_to_swap(backend: Backend) {
    let llm = FakeLlm::start(vec![]).await;
    let app = app_with_llm(backend, &llm, |_| {}).await;
    let id = app.upload_call("m-carter").await;
    let mut mono = corpus_transcript(id, "pub06_en");
    mono.speakers = vec![Speaker::Unknown];
    for s in &mut mono.segments {
        s.speaker = Speaker::Unknown;
    }
    app.store.save_transcript(&mono, None).await.unwrap();
    assert!(app.store.queue_stage(id, Stage::Score, 3).await.unwrap());
    app.wait_for_status(id, "done", WAIT).await;
    let r = swap(&app, id, &app.admin).await;
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("mono"),
        "{body}"
    );
    let kept = app.store.get_transcript(id).await.unwrap().expect("kept");
    assert_eq!(kept, mono);
    app.stop().await;
}

/// `POST /api/v1/calls/{id}/roles` naming `manager`, with `token`.
async fn name_manager(app: &TestApp, id: CallId, token: &str, manager: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/calls/{id}/roles")))
        .bearer_auth(token)
        .json(&serde_json::json!({ "manager": manager }))
        .send()
        .await
        .expect("roles request")
}

/// A mono call whose voices were separated but whose roles the rule could not tell: stored
/// and indexed as speaker_1/speaker_2, scored with the model told the roles are not known,
/// until QA names the manager; then it is a manager-and-client call, scored again.
async fn qa_names_the_manager_of_a_separated_mono_call(backend: Backend) {
    let llm = FakeLlm::start(vec![]).await;
    let app = app_with_llm(backend, &llm, |_| {}).await;
    let id = app.upload_call("m-carter").await;
    let roles = corpus_transcript(id, "pub06_en");
    let mut voices = roles.clone();
    // The client spoke first here: speaker_1 is the client, speaker_2 the manager.
    let voice = |s: Speaker| match s {
        Speaker::Manager => Speaker::Speaker2,
        _ => Speaker::Speaker1,
    };
    voices.speakers = vec![Speaker::Speaker1, Speaker::Speaker2];
    for s in &mut voices.segments {
        s.speaker = voice(s.speaker);
    }
    app.store.save_transcript(&voices, None).await.unwrap();
    assert!(app.store.queue_stage(id, Stage::Score, 3).await.unwrap());
    app.wait_for_status(id, "done", WAIT).await;
    let first = llm.requests();
    let prompt = fake_llm::user_prompt(first.last().expect("a request"));
    assert!(prompt.contains("] S2: "), "{prompt}");
    assert!(!prompt.contains("] M: "), "{prompt}");
    let system = fake_llm::system_prompt(first.last().expect("a request"));
    assert!(
        system.contains("Roles not known"),
        "the model is told: {system}"
    );

    // Swapping needs a manager and a client; the error says what to do instead.
    let r = swap(&app, id, &app.admin).await;
    assert_eq!(r.status(), 409);
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body.to_string().contains("/roles"), "{body}");

    let manager = app.token(Role::Manager, Some("m-carter")).await;
    assert_eq!(
        name_manager(&app, id, &manager, "speaker_2").await.status(),
        403
    );
    let qa = app.token(Role::Qa, None).await;
    // A speaker the transcript does not have.
    assert_eq!(name_manager(&app, id, &qa, "speaker_3").await.status(), 409);
    let r = name_manager(&app, id, &qa, "speaker_2").await;
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    // The first voice is the client: what a mono upload's `channels=client,manager` says.
    assert_eq!(body["channels"], "client,manager");
    assert_eq!(body["rescore_queued"], true);
    let after = app.store.get_transcript(id).await.unwrap().expect("kept");
    assert_eq!(after.speakers, vec![Speaker::Client, Speaker::Manager]);
    for (a, b) in after.segments.iter().zip(&roles.segments) {
        assert_eq!((a.speaker, &a.text), (b.speaker, &b.text));
    }
    assert!(talk_share(&after, Speaker::Manager) > 0.3);
    let call = app.store.get_call(id).await.unwrap().expect("call");
    assert_eq!(call.call.channels.to_string(), "client,manager");
    // Kept for a later transcription of the recording, so the rule does not decide again.
    assert_eq!(call.call.first_speaker, Some(Speaker::Client));

    app.wait_for_status(id, "done", WAIT).await;
    let requests = llm.requests();
    assert!(requests.len() > first.len(), "no second scoring");
    let prompt = fake_llm::user_prompt(requests.last().expect("a request"));
    let opening = prompt
        .lines()
        .find(|l| l.contains("this is Emily Carter"))
        .expect("the opening line");
    assert!(opening.contains("] M: "), "{opening}");
    // Named once, the voices are gone: naming one again is refused.
    assert_eq!(name_manager(&app, id, &qa, "speaker_1").await.status(), 409);
    app.stop().await;
}

on_both_backends!(
    qa_swaps_the_speakers_of_a_stereo_call_and_it_is_scored_again,
    a_mono_call_has_no_speakers_to_swap,
    qa_names_the_manager_of_a_separated_mono_call,
);
