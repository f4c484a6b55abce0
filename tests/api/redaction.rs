//! Personal data redaction (issue 15, part 1): what the LLM receives, and what readers other
//! than admins read, search and hear when the scope says so.

use std::time::Duration;

use callgrade::audio::{decode_file, DecodeLimits};
use callgrade::domain::{CallId, Role, Speaker};
use callgrade::jobs::Registry;
use callgrade::pipeline::Stage;
use callgrade::redact::Scope;
use callgrade::transcript::{Segment, Transcript, Word};

use crate::fake_llm::{self, FakeLlm};
use crate::helpers::{spawn_app_for, Backend};
use crate::on_both_backends;
use crate::scoring::{app_with_llm, corpus_transcript};

const WAIT: Duration = Duration::from_secs(30);

/// A client segment at `start` whose words are `text` split at spaces, 0.3 s each.
fn client_says(start: f64, text: &str) -> Segment {
    let words: Vec<Word> = text
        .split_whitespace()
        .enumerate()
        .map(|(i, w)| Word {
            text: w.into(),
            start: start + 0.3 * i as f64,
            end: start + 0.3 * (i + 1) as f64,
            probability: 0.9,
        })
        .collect();
    Segment {
        speaker: Speaker::Client,
        start,
        end: words.last().map_or(start, |w| w.end),
        text: text.into(),
        confidence: 0.9,
        words,
    }
}

const SAID: [&str; 5] = [
    "Мой телефон +7 916 123-45-67, почта ivan.petrov@mail.ru.",
    "Карта 4111 1111 1111 1111, паспорт серия 45 08 номер 123456.",
    "ИНН 7707083893, СНИЛС 112-233-445 95, ОГРН 1027700132195.",
    "Или перезвоните на восемь девятьсот шестнадцать сто двадцать три сорок пять шестьдесят семь",
    "и продублируйте на иван собака яндекс точка ру",
];

/// Every value said above, in a form that must not reach the LLM.
const VALUES: [&str; 10] = [
    "916",
    "ivan.petrov",
    "4111",
    "123456",
    "7707083893",
    "112-233-445",
    "1027700132195",
    "девятьсот шестнадцать",
    "собака",
    "яндекс",
];

fn with_personal_data(id: CallId) -> Transcript {
    let mut t = corpus_transcript(id, "pub01_ru");
    let mut at = t.duration_s + 1.0;
    for line in SAID {
        let segment = client_says(at, line);
        at = segment.end + 0.5;
        t.segments.push(segment);
    }
    t.duration_s = at;
    t
}

async fn no_redacted_value_reaches_the_llm(backend: Backend) {
    let llm = FakeLlm::start(vec![]).await;
    let app = app_with_llm(backend, &llm, |_| {}).await;
    let id = app.upload_call("m-sokolov").await;
    app.store
        .save_transcript(&with_personal_data(id), None)
        .await
        .expect("transcript");
    assert!(app.store.queue_stage(id, Stage::Score, 3).await.unwrap());
    app.wait_for_status(id, "done", WAIT).await;

    let requests = llm.requests();
    assert!(!requests.is_empty());
    let sent: String = requests
        .iter()
        .map(|r| {
            format!(
                "{}\n{}",
                fake_llm::system_prompt(r),
                fake_llm::user_prompt(r)
            )
        })
        .collect();
    for value in VALUES {
        assert!(!sent.contains(value), "{value:?} reached the LLM");
    }
    for placeholder in [
        "[телефон]",
        "[почта]",
        "[карта]",
        "[паспорт]",
        "[ИНН]",
        "[СНИЛС]",
        "[ОГРН]",
    ] {
        assert!(sent.contains(placeholder), "{placeholder} missing");
    }
    // With the default scope only the LLM is kept from the values: people read what was said.
    let (status, t) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}/transcript"))
        .await;
    assert_eq!(status, 200);
    assert!(t.to_string().contains("+7 916 123-45-67"));
    app.stop().await;
}

/// Even an admin's search finds the segment by its words and shows the placeholder, and finds
/// nothing by the number.
async fn the_index_holds_only_the_placeholder(app: &crate::helpers::TestApp) {
    let (_, found) = app
        .get_json(&app.admin, "/api/v1/search?q=phone%20number")
        .await;
    let text = found["items"][0]["text"].as_str().unwrap_or_default();
    assert!(text.contains("[phone]"), "{found}");
    let (_, found) = app.get_json(&app.admin, "/api/v1/search?q=2671").await;
    assert_eq!(found["items"], serde_json::json!([]), "{found}");
}

async fn readers_but_admins_read_search_and_hear_it_redacted(backend: Backend) {
    let app = spawn_app_for(
        backend,
        |c| c.redaction.scope = Scope::EveryoneButAdmins,
        |_| Registry::new(),
    )
    .await;
    let bytes = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/calls/pub06_en.mp3"),
    )
    .expect("sample call");
    let r = app
        .upload(&app.admin, "m-owner", bytes, "pub06_en.mp3")
        .await;
    assert_eq!(r.status(), 202);
    let id: CallId = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut t = corpus_transcript(id, "pub06_en");
    t.call_id = id;
    t.segments.retain(|s| s.end < 20.0 || s.start > 26.0);
    t.segments.push(client_says(
        20.0,
        "my phone number is +1 415 555 2671 thanks",
    ));
    t.segments.sort_by(|a, b| a.start.total_cmp(&b.start));
    app.store.save_transcript(&t, None).await.expect("save");
    let owner = app.token(Role::Manager, Some("m-owner")).await;

    // The transcript.
    let (_, theirs) = app
        .get_json(&owner, &format!("/api/v1/calls/{id}/transcript"))
        .await;
    let (_, admins) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}/transcript"))
        .await;
    assert!(theirs
        .to_string()
        .contains("my phone number is [phone] thanks"));
    assert!(!theirs.to_string().contains("2671"));
    assert!(admins.to_string().contains("+1 415 555 2671"));

    // Search snippets.
    let (_, found) = app
        .get_json(&owner, "/api/v1/search?q=phone%20number")
        .await;
    let text = found["items"][0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("[phone]") && !text.contains("2671"),
        "{found}"
    );
    // The index itself holds the placeholder: nobody finds the call by the number.
    the_index_holds_only_the_placeholder(&app).await;

    // The audio: silence where the number was said, the recording elsewhere.
    let r = app
        .get_as(&owner, &format!("/api/v1/calls/{id}/audio"))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "audio/ogg");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("muted.ogg");
    std::fs::write(&path, r.bytes().await.unwrap()).unwrap();
    let muted = decode_file(&path, &DecodeLimits::default()).expect("decodes");
    let original = decode_file(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/calls/pub06_en.mp3"),
        &DecodeLimits::default(),
    )
    .unwrap();
    let rms = |channels: &[Vec<f32>], from: f64, to: f64| -> f64 {
        let (a, b) = ((from * 16_000.0) as usize, (to * 16_000.0) as usize);
        let samples: Vec<f32> = channels.iter().flat_map(|c| c[a..b].to_vec()).collect();
        (samples.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
    };
    // The number's words: 4 (+1) to 7 (2671) of the segment, 21.2 s to 22.4 s.
    let number = (21.2, 22.4);
    assert!(
        rms(&original.channels, number.0, number.1) > 0.01,
        "the recording has sound where the number is muted: {}",
        rms(&original.channels, number.0, number.1)
    );
    assert!(
        rms(&muted.channels, number.0, number.1) < 1e-3,
        "muted: {}",
        rms(&muted.channels, number.0, number.1)
    );
    let elsewhere = rms(&muted.channels, 0.0, 19.0);
    assert!(
        elsewhere > 0.5 * rms(&original.channels, 0.0, 19.0),
        "elsewhere {elsewhere}"
    );
    let r = app
        .get_as(&app.admin, &format!("/api/v1/calls/{id}/audio"))
        .await;
    assert_eq!(
        r.headers()["content-type"],
        "audio/mpeg",
        "admins hear the original"
    );
    app.stop().await;
}

on_both_backends!(
    no_redacted_value_reaches_the_llm,
    readers_but_admins_read_search_and_hear_it_redacted
);

/// `redaction.keep_original = false`: what the transcribe job stores has no value left, and
/// the recording itself is replaced by a copy muted over each value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_original_the_recording_is_muted_and_the_transcript_redacted() {
    let Some(model) = crate::transcribe::model("tiny.en") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let recordings = callgrade::recordings::Recordings::new(dir.path());
    let path = recordings.path("2026/12/call.audio").unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let sample =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/calls/pub06_en.mp3");
    std::fs::copy(&sample, &path).unwrap();
    let tc = callgrade::config::TranscribeConfig {
        model: model.display().to_string(),
        ..Default::default()
    };
    let settings = callgrade::transcribe::job::TranscribeSettings::from_config(
        &tc,
        &Default::default(),
        recordings,
        callgrade::audio::DecoderProgram::new(
            env!("CARGO_BIN_EXE_callgrade"),
            ["audio-decode-child"],
        ),
    )
    .expect("settings");
    let job = callgrade::transcribe::job::TranscribeJob::new(settings)
        .storing_redacted(callgrade::redact::Kind::ALL.to_vec());
    let mut t = corpus_transcript(CallId::new(), "pub06_en");
    t.segments.retain(|s| s.end < 20.0 || s.start > 26.0);
    t.segments.push(client_says(
        20.0,
        "my phone number is +1 415 555 2671 thanks",
    ));
    t.segments.sort_by(|a, b| a.start.total_cmp(&b.start));

    let stored = job.redact_for_storage(t, &path).await.expect("redacted");

    let text = serde_json::to_string(&stored).unwrap();
    assert!(text.contains("[phone]") && !text.contains("2671"));
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(
        &bytes[..4],
        b"OggS",
        "the recording is now the muted Ogg Opus"
    );
    let muted = decode_file(&path, &DecodeLimits::default()).unwrap();
    let energy = |from: f64, to: f64| -> f64 {
        let (a, b) = ((from * 16_000.0) as usize, (to * 16_000.0) as usize);
        muted
            .channels
            .iter()
            .flat_map(|c| c[a..b].iter())
            .map(|x| f64::from(*x).powi(2))
            .sum::<f64>()
            / (b - a) as f64
    };
    assert!(energy(21.2, 22.4).sqrt() < 1e-3);
    assert!(energy(0.0, 19.0).sqrt() > 0.005);
    assert!(
        !path.with_extension("muting").exists(),
        "no partial file is left"
    );
}

async fn a_change_of_settings_indexes_every_transcript_again(backend: Backend) {
    // Indexed under the default scope (only the LLM is kept from values): the number is found.
    let app = spawn_app_for(backend, |_| {}, |_| Registry::new()).await;
    let id = app.upload_call("m-owner").await;
    let mut t = corpus_transcript(id, "pub06_en");
    t.segments.push(client_says(
        70.0,
        "my phone number is +1 415 555 2671 thanks",
    ));
    app.store.save_transcript(&t, None).await.expect("save");
    let (_, found) = app.get_json(&app.admin, "/api/v1/search?q=2671").await;
    assert_eq!(found["items"].as_array().map(Vec::len), Some(1), "{found}");

    // A start with scope everyone_but_admins indexes it again, without the number.
    let hidden = app
        .store
        .clone()
        .redacting_search(callgrade::redact::Kind::ALL);
    callgrade::search::index_backlog(hidden.clone(), Default::default()).await;
    the_index_holds_only_the_placeholder(&app).await;
    // Nothing is left pending under the new settings, and the old ones see it as pending.
    assert_eq!(hidden.index_pending_transcripts("", 8).await.unwrap(), None);
    assert!(app
        .store
        .index_pending_transcripts("", 8)
        .await
        .unwrap()
        .is_some());
    app.stop().await;
}

on_both_backends!(a_change_of_settings_indexes_every_transcript_again);
