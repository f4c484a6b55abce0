//! The calls workspace over a real socket: the call page (transcript, scorecard, verified quotes
//! that seek, QA corrections with history), its audio with HTTP Range and server-side peaks,
//! the transcode of a recording browsers cannot play, the upload page's answers in the user's
//! language, the queue and users pages and their role rules.

use std::time::Duration;

use callgrade::domain::{CallId, Role, Speaker};
use callgrade::jobs::Registry;
use callgrade::pipeline::Stage;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, RANGE};
use reqwest::StatusCode;

use crate::fake_llm::{FakeLlm, Reply};
use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;
use crate::scoring::{app_with_llm, corpus_transcript};
use crate::web::{browser, create_user, get, sign_in};

const WAIT: Duration = Duration::from_secs(30);

fn sample(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("samples/calls")
            .join(name),
    )
    .expect("sample call")
}

/// The sample call pub06_en (real MP3, stereo) of `manager`, with its true transcript, scored
/// by the stand-in LLM with quotes copied from the transcript.
pub(crate) async fn scored_sample(app: &TestApp, manager: &str) -> CallId {
    let r = app
        .upload(&app.admin, manager, sample("pub06_en.mp3"), "pub06_en.mp3")
        .await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let body: serde_json::Value = r.json().await.unwrap();
    let id: CallId = body["id"].as_str().unwrap().parse().unwrap();
    app.store
        .save_transcript(&corpus_transcript(id, "pub06_en"), None)
        .await
        .unwrap();
    assert!(app.store.queue_stage(id, Stage::Score, 3).await.unwrap());
    app.wait_for_status(id, "done", WAIT).await;
    id
}

async fn the_call_page_shows_the_call_and_its_evidence_seeks(backend: Backend) {
    let llm = FakeLlm::start(vec![]).await;
    llm.always(Reply::Valid { answer: 1 });
    let app = app_with_llm(backend, &llm, |_| {}).await;
    let id = scored_sample(&app, "m-owner").await;
    create_user(&app, "qa", Role::Qa, None).await;
    create_user(&app, "owner", Role::Manager, Some("m-owner")).await;
    create_user(&app, "other", Role::Manager, Some("m-other")).await;
    let qa = sign_in(&app, "qa").await;

    let r = get(&app, &format!("/calls/{id}"), &qa).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    // The transcript as turns with their times, the player, the scorecard.
    assert!(html.contains(r#"<ol class="turns" id="turns">"#), "{html}");
    assert!(html.contains(r#"class="turn speaker-manager" data-start="#));
    assert!(html.contains(r#"class="turn speaker-client" data-start="#));
    assert!(html.contains(&format!(r#"src="/calls/{id}/audio""#)));
    assert!(html.contains(&format!(r#"data-peaks="/calls/{id}/peaks""#)));
    assert!(html.contains(r#"id="criterion-"#));
    // Verified quotes are links that seek; the stand-in quoted real lines.
    assert!(
        html.contains(r##"<blockquote class="quote verified"><a href="#t="##),
        "a verified quote links to its moment"
    );
    // QA may correct; the conversation metrics are shown.
    assert!(html.contains(r#"action="/calls/"#) && html.contains(r#"/correct""#));
    assert!(html.contains(r#"id="metrics-title""#));
    // QA may swap the speakers of a stereo call; the waveform's colours follow the speakers.
    assert!(html.contains(&format!(r#"action="/calls/{id}/swap-speakers""#)));
    assert!(html.contains(r#"data-speakers="manager,client""#));

    // The manager whose call it is reads it, without QA's forms; another manager gets 404.
    let owner = sign_in(&app, "owner").await;
    let html = get(&app, &format!("/calls/{id}"), &owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"<ol class="turns""#));
    assert!(!html.contains("/correct\""));
    assert!(!html.contains("/swap-speakers\""));
    let other = sign_in(&app, "other").await;
    let r = get(&app, &format!("/calls/{id}"), &other).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains(r#"class="code">404<"#));
    for path in ["audio", "peaks"] {
        let r = get(&app, &format!("/calls/{id}/{path}"), &other).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = get(&app, &format!("/calls/{}", CallId::new()), &qa).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The calls list's filters over the score: range, critical failure, a criterion's level,
    // language, team.
    let card = app.store.get_score(id).await.unwrap().unwrap();
    let c = &card.criteria[0];
    let listed = |query: String| {
        let qa = qa.clone();
        let app = &app;
        async move {
            let r = get(app, &format!("/calls?{query}"), &qa).await;
            let status = r.status();
            let html = r.text().await.unwrap();
            (status, html.contains(&format!("/calls/{id}\"")))
        }
    };
    let overall = card.overall.unwrap();
    assert_eq!(
        listed(format!("min={}&max=100", overall.floor())).await,
        (StatusCode::OK, true)
    );
    assert_eq!(
        listed(format!("min={}", (overall + 1.0).min(100.0)))
            .await
            .1,
        overall >= 99.5
    );
    assert_eq!(listed("min=101".into()).await.0, StatusCode::BAD_REQUEST);
    let critical = !card.critical_failures.is_empty();
    assert_eq!(listed("critical=yes".into()).await.1, critical);
    assert_eq!(listed("critical=no".into()).await.1, !critical);
    let level = c.final_level.as_str();
    assert!(listed(format!("criterion={}&level={level}", c.id)).await.1);
    let other_level = if level == "absent" {
        "strong"
    } else {
        "absent"
    };
    assert!(
        !listed(format!("criterion={}&level={other_level}", c.id))
            .await
            .1
    );
    assert!(!listed("language=ru".into()).await.1);
    assert!(listed("language=auto".into()).await.1);
    assert!(!listed("team=nobody".into()).await.1);
    app.stop().await;
}
on_both_backends!(the_call_page_shows_the_call_and_its_evidence_seeks);

/// A mono call whose voices were separated but whose roles the rule could not tell: the page
/// says so to everyone, and offers QA (only) a button per voice to name the manager.
async fn a_call_whose_roles_are_not_known_lets_qa_name_the_manager(backend: Backend) {
    let llm = FakeLlm::start(vec![]).await;
    llm.always(Reply::Valid { answer: 1 });
    let app = app_with_llm(backend, &llm, |_| {}).await;
    let id = scored_sample(&app, "m-owner").await;
    let mut t = app
        .store
        .get_transcript(id)
        .await
        .unwrap()
        .expect("transcript");
    t.speakers = vec![Speaker::Speaker1, Speaker::Speaker2];
    for s in &mut t.segments {
        s.speaker = if s.speaker == Speaker::Manager {
            Speaker::Speaker1
        } else {
            Speaker::Speaker2
        };
    }
    app.store.save_transcript(&t, None).await.unwrap();
    create_user(&app, "qa", Role::Qa, None).await;
    create_user(&app, "owner", Role::Manager, Some("m-owner")).await;
    let qa = sign_in(&app, "qa").await;
    let html = get(&app, &format!("/calls/{id}"), &qa)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"class="notice roles-unknown""#), "{html}");
    assert!(html.contains(r#"class="turn speaker-speaker_1" data-start="#));
    for voice in ["speaker_1", "speaker_2"] {
        assert!(
            html.contains(&format!(r#"name="manager" value="{voice}""#)),
            "{voice}"
        );
    }
    assert!(
        !html.contains("/swap-speakers\""),
        "no manager and client to swap"
    );
    let owner = sign_in(&app, "owner").await;
    let html = get(&app, &format!("/calls/{id}"), &owner)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains(r#"class="notice roles-unknown""#));
    assert!(!html.contains(&format!(r#"action="/calls/{id}/roles""#)));

    let r = browser()
        .post(app.url(&format!("/calls/{id}/roles")))
        .header(COOKIE, qa.clone())
        .header("sec-fetch-site", "same-origin")
        .form(&[("manager", "speaker_1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        format!("/calls/{id}?done=roles").as_str()
    );
    let after = app.store.get_transcript(id).await.unwrap().expect("kept");
    assert_eq!(after.speakers, vec![Speaker::Manager, Speaker::Client]);
    let html = get(&app, &format!("/calls/{id}?done=roles"), &qa)
        .await
        .text()
        .await
        .unwrap();
    assert!(!html.contains("roles-unknown"));
    assert!(html.contains(r#"class="notice" role="status""#));
    app.stop().await;
}

on_both_backends!(a_call_whose_roles_are_not_known_lets_qa_name_the_manager);

async fn qa_corrects_a_criterion_on_the_page_and_keeps_the_history(backend: Backend) {
    let llm = FakeLlm::start(vec![]).await;
    llm.always(Reply::Valid { answer: 1 });
    let app = app_with_llm(backend, &llm, |_| {}).await;
    let id = scored_sample(&app, "m-owner").await;
    create_user(&app, "qa", Role::Qa, None).await;
    create_user(&app, "owner", Role::Manager, Some("m-owner")).await;
    let qa = sign_in(&app, "qa").await;
    let card = app.store.get_score(id).await.unwrap().unwrap();
    let criterion = card.criteria[0].id.clone();

    let top = card.criteria[0].scale_max.to_string();
    let correct = |cookie: String, answer: &str, comment: &'static str| {
        let answer = answer.to_string();
        let (app_url, criterion) = (app.url(&format!("/calls/{id}/correct")), criterion.clone());
        async move {
            browser()
                .post(app_url)
                .header(COOKIE, cookie)
                .header("sec-fetch-site", "same-origin")
                .form(&[
                    ("criterion", criterion.as_str()),
                    ("answer", answer.as_str()),
                    ("comment", comment),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let r = correct(qa.clone(), "0", "The manager never asked about the budget").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers()[LOCATION],
        format!("/calls/{id}?done=corrected#criterion-{criterion}").as_str()
    );
    let r = correct(
        qa.clone(),
        &top,
        "Listened again: the budget question is at 0:41",
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let card = app.store.get_score(id).await.unwrap().unwrap();
    let c = &card.criteria[0];
    assert_eq!(
        c.qa.as_ref().unwrap().answer,
        Some(card.criteria[0].scale_max)
    );
    assert_eq!(c.qa_history.len(), 1, "the first correction is kept");
    assert_eq!(c.qa_history[0].answer, Some(0));
    let html = get(&app, &format!("/calls/{id}?done=corrected"), &qa)
        .await
        .text()
        .await
        .unwrap();
    assert!(html.contains("Correction saved"));
    assert!(
        html.contains("The manager never asked about the budget"),
        "history shown"
    );

    // A correction without a reason is refused on the page, in words.
    let r = correct(qa.clone(), "1", "  ").await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("a correction needs a comment"));
    // The manager may read but not correct.
    let owner = sign_in(&app, "owner").await;
    let r = correct(owner, &top, "I did it right").await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        app.store.get_score(id).await.unwrap().unwrap().criteria[0]
            .qa_history
            .len(),
        1
    );
    app.stop().await;
}
on_both_backends!(qa_corrects_a_criterion_on_the_page_and_keeps_the_history);

async fn audio_is_served_in_ranges_with_peaks_from_the_server(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let bytes = sample("pub06_en.mp3");
    let r = app
        .upload(&app.admin, "m-owner", bytes.clone(), "pub06_en.mp3")
        .await;
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    create_user(&app, "owner", Role::Manager, Some("m-owner")).await;
    let owner = sign_in(&app, "owner").await;

    // The page's path, through the session: a range answers 206 with exactly those bytes.
    let r = browser()
        .get(app.url(&format!("/calls/{id}/audio")))
        .header(COOKIE, &owner)
        .header(RANGE, "bytes=100-1099")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(r.headers()[CONTENT_TYPE], "audio/mpeg");
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 100-1099/{}", bytes.len()).as_str()
    );
    assert!(
        r.headers().get("content-encoding").is_none(),
        "audio is never gzipped"
    );
    assert_eq!(r.bytes().await.unwrap().as_ref(), &bytes[100..1100]);
    let r = browser()
        .get(app.url(&format!("/calls/{id}/audio")))
        .header(COOKIE, &owner)
        .header(RANGE, format!("bytes={}-", bytes.len() + 10))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    // Without a session: the sign-in page, not the recording.
    let r = get(&app, &format!("/calls/{id}/audio"), "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // The API's path, bearer only, same rules.
    let r = app
        .client
        .get(app.url(&format!("/api/v1/calls/{id}/audio")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.bytes().await.unwrap().len(), bytes.len());
    let other = app.token(Role::Manager, Some("m-other")).await;
    let (status, _) = app
        .get_json(&other, &format!("/api/v1/calls/{id}/audio"))
        .await;
    assert_eq!(status, 404);

    // Peaks: one list per channel, covering the call's length, a few thousand numbers at most.
    let (status, peaks) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}/peaks"))
        .await;
    assert_eq!(status, 200, "{peaks}");
    let channels = peaks["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "stereo: a lane per speaker");
    let duration = peaks["duration_s"].as_f64().unwrap();
    assert!((duration - 68.7).abs() < 1.0, "duration {duration}");
    let n = channels[0].as_array().unwrap().len();
    assert!((3000..=8000).contains(&n), "{n} peaks");
    let loudest = channels[0]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v.as_f64())
        .fold(0.0, f64::max);
    assert!(
        loudest > 0.05 && loudest <= 1.0,
        "speech is drawn: {loudest}"
    );
    // Kept: the second answer is the same document, from the derived file.
    let again = browser()
        .get(app.url(&format!("/calls/{id}/peaks")))
        .header(COOKIE, &owner)
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(again, peaks);
    assert!(app
        .recordings_dir()
        .join("derived")
        .join(format!("{id}.peaks.json"))
        .exists());
    // Deleting the call deletes what was derived from it.
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/calls/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(!app
        .recordings_dir()
        .join("derived")
        .join(format!("{id}.peaks.json"))
        .exists());
    app.stop().await;
}
on_both_backends!(audio_is_served_in_ranges_with_peaks_from_the_server);

/// G.711 A-law, the usual coding of European telephony WAV files.
fn alaw(sample: i16) -> u8 {
    let mut pcm = i32::from(sample) >> 3;
    let sign = if pcm >= 0 { 0xD5 } else { 0x55 };
    if pcm < 0 {
        pcm = -pcm - 1;
    }
    let ends = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let seg = ends.iter().position(|&e| pcm <= e).unwrap_or(8);
    let byte = if seg >= 8 {
        0x7F
    } else {
        let shift = if seg < 2 { 1 } else { seg };
        ((seg << 4) as i32 | ((pcm >> shift) & 0x0F)) as u8
    };
    byte ^ sign
}

fn alaw_wav(seconds: u32) -> Vec<u8> {
    let rate = 8000u32;
    let data: Vec<u8> = (0..rate * seconds)
        .map(|i| alaw((8000.0 * (i as f32 * 0.12).sin()) as i16))
        .collect();
    let mut w = Vec::new();
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(4 + 26 + 12 + 8 + data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&18u32.to_le_bytes());
    w.extend_from_slice(&6u16.to_le_bytes()); // WAVE_FORMAT_ALAW
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&8u16.to_le_bytes());
    w.extend_from_slice(&0u16.to_le_bytes());
    w.extend_from_slice(b"fact");
    w.extend_from_slice(&4u32.to_le_bytes());
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&(data.len() as u32).to_le_bytes());
    w.extend_from_slice(&data);
    w
}

async fn a_law_recordings_are_transcoded_once_to_ogg_opus(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let r = app
        .upload(&app.admin, "m-owner", alaw_wav(3), "alaw.wav")
        .await;
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let id = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fetch = || async {
        app.client
            .get(app.url(&format!("/api/v1/calls/{id}/audio")))
            .bearer_auth(&app.admin)
            .send()
            .await
            .unwrap()
    };
    let r = fetch().await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "audio/ogg");
    let first = r.bytes().await.unwrap();
    assert_eq!(
        callgrade::audio::sniff(&first).unwrap(),
        callgrade::audio::AudioFormat::OggOpus
    );
    let kept = app
        .recordings_dir()
        .join("derived")
        .join(format!("{id}.ogg"));
    let modified = std::fs::metadata(&kept).unwrap().modified().unwrap();
    let second = fetch().await.bytes().await.unwrap();
    assert_eq!(first, second);
    assert_eq!(
        std::fs::metadata(&kept).unwrap().modified().unwrap(),
        modified,
        "made once and kept"
    );
    // And it plays back as the three seconds it was.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("back.ogg");
    std::fs::write(&path, &first).unwrap();
    let decoded = callgrade::audio::decode_file(&path, &Default::default()).unwrap();
    assert!(
        (decoded.duration_s() - 3.0).abs() < 0.05,
        "{}",
        decoded.duration_s()
    );
    app.stop().await;
}
on_both_backends!(a_law_recordings_are_transcoded_once_to_ogg_opus);

async fn upload_on_the_page(
    app: &TestApp,
    cookie: &str,
    bytes: Vec<u8>,
    name: &str,
) -> (StatusCode, serde_json::Value) {
    let form = reqwest::multipart::Form::new()
        .text("manager_id", "m-owner")
        .text("language", "en")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    let r = browser()
        .post(app.url("/upload"))
        .header(COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .multipart(form)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or_default())
}

async fn the_upload_page_answers_each_file_in_the_user_s_language(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    create_user(&app, "qa", Role::Qa, None).await;
    create_user(&app, "head", Role::Head, None).await;
    let qa = sign_in(&app, "qa").await;
    let html = get(&app, "/upload", &qa).await.text().await.unwrap();
    assert!(
        html.contains(r#"<input id="files" name="file" type="file" multiple"#),
        "{html}"
    );
    assert!(html.contains(r#"<label for="manager_id">"#));

    let (status, body) = upload_on_the_page(&app, &qa, sample("pub06_en.mp3"), "a.mp3").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["ok"], true);
    let url = body["url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/calls/"));
    let (status, body) = upload_on_the_page(&app, &qa, sample("pub06_en.mp3"), "again.mp3").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["duplicate"], true);
    assert_eq!(
        body["url"],
        url.as_str(),
        "a duplicate links to the existing call"
    );

    // Refusals in the user's language.
    let ru = format!("{qa}; callgrade_lang=ru");
    let (status, body) =
        upload_on_the_page(&app, &ru, b"just some text, not audio".to_vec(), "x.mp3").await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(body["ok"], false);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("Это не аудиозапись"),
        "{body}"
    );
    let (status, body) = upload_on_the_page(&app, &qa, Vec::new(), "empty.mp3").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["message"], "The file is empty.");

    // A head of sales reads, but does not upload.
    let head = sign_in(&app, "head").await;
    assert_eq!(
        get(&app, "/upload", &head).await.status(),
        StatusCode::FORBIDDEN
    );
    let (status, _) = upload_on_the_page(&app, &head, sample("pub05_en.mp3"), "h.mp3").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.stop().await;
}
on_both_backends!(the_upload_page_answers_each_file_in_the_user_s_language);

async fn the_queue_and_users_pages_follow_the_roles(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let id = app.upload_call("m-owner").await;
    create_user(&app, "admin", Role::Admin, None).await;
    create_user(&app, "head", Role::Head, None).await;
    create_user(&app, "owner", Role::Manager, Some("m-owner")).await;
    let admin = sign_in(&app, "admin").await;
    let head = sign_in(&app, "head").await;
    let owner = sign_in(&app, "owner").await;

    // The queue: the waiting job with its call; admin may cancel, head only reads.
    let html = get(&app, "/queue", &admin).await.text().await.unwrap();
    assert!(html.contains(&format!(r#"href="/calls/{id}""#)), "{html}");
    assert!(html.contains("/cancel\""));
    let html = get(&app, "/queue", &head).await.text().await.unwrap();
    assert!(html.contains(&format!(r#"href="/calls/{id}""#)));
    assert!(!html.contains("/cancel\"") && !html.contains("/retry\""));
    assert_eq!(
        get(&app, "/queue", &owner).await.status(),
        StatusCode::FORBIDDEN
    );
    let job = app.store.latest_job_for_call(id).await.unwrap().unwrap();
    let post = |path: String, cookie: String, form: Vec<(&'static str, String)>| {
        let url = app.url(&path);
        async move {
            browser()
                .post(url)
                .header(COOKIE, cookie)
                .header("sec-fetch-site", "same-origin")
                .form(&form)
                .send()
                .await
                .unwrap()
        }
    };
    let r = post(format!("/queue/{}/cancel", job.id), head.clone(), vec![]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = post(format!("/queue/{}/cancel", job.id), admin.clone(), vec![]).await;
    assert_eq!(r.headers()[LOCATION], "/queue?done=cancelled");
    assert_eq!(app.call_status(id).await, "failed");
    let r = post(format!("/queue/{}/cancel", job.id), admin.clone(), vec![]).await;
    assert_eq!(r.headers()[LOCATION], "/queue?error=conflict");

    // Users: only the admin; create, reset a password (ends sessions), disable.
    assert_eq!(
        get(&app, "/users", &head).await.status(),
        StatusCode::FORBIDDEN
    );
    let r = post(
        "/users".into(),
        admin.clone(),
        vec![
            ("username", "New.Manager".into()),
            ("role", "manager".into()),
            ("manager", "m-new".into()),
            ("password", "short".into()),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("at least 10 characters"));
    let r = post(
        "/users".into(),
        admin.clone(),
        vec![
            ("username", "New.Manager".into()),
            ("role", "manager".into()),
            ("manager", "m-new".into()),
            ("password", "a long enough password".into()),
        ],
    )
    .await;
    assert_eq!(r.headers()[LOCATION], "/users?done=created");
    let user = app
        .store
        .user_by_name("new.manager")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.manager_id.unwrap().to_string(), "m-new");
    let html = get(&app, "/users", &admin).await.text().await.unwrap();
    assert!(html.contains("new.manager") && html.contains("m-new"));
    let r = post(
        "/users/owner/password".into(),
        admin.clone(),
        vec![("password", "another long password".into())],
    )
    .await;
    assert_eq!(r.headers()[LOCATION], "/users?done=password");
    assert_eq!(
        get(&app, "/calls", &owner).await.status(),
        StatusCode::SEE_OTHER,
        "a new password ends the user's sessions"
    );
    let r = post("/users/new.manager/disable".into(), admin.clone(), vec![]).await;
    assert_eq!(r.headers()[LOCATION], "/users?done=disabled");
    assert!(app
        .store
        .user_by_name("new.manager")
        .await
        .unwrap()
        .unwrap()
        .disabled_at
        .is_some());
    let r = post("/users/admin/disable".into(), admin.clone(), vec![]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "not yourself");
    app.stop().await;
}
on_both_backends!(the_queue_and_users_pages_follow_the_roles);

/// The calls list's critical-failure filter starts from the calls that have one (a partial
/// index): the same calls, newest first, page after page, with the other filters, as checking
/// every call would give.
async fn the_critical_failure_filter_lists_exactly_those_calls_page_by_page(backend: Backend) {
    use callgrade::store::{CallFilter, RowFilter};
    let app = spawn_app(backend, Registry::new()).await;
    // Twelve scored calls of two managers, every third with a critical failure; one unscored.
    let mut ids = Vec::new();
    for i in 0..13_i64 {
        let id = CallId::new();
        let manager = if i % 2 == 0 { "m-a" } else { "m-b" };
        sqlx::query(
            "INSERT INTO calls (id, manager_id, started_at, size_bytes, sha256, storage_key, \
             status, created_at, updated_at) VALUES ($1, $2, $3, 1, $1, 'k', 'done', $3, $3)",
        )
        .bind(id.to_string())
        .bind(manager)
        .bind(1_772_445_600_000 + i * 60_000)
        .execute(app.store.pool())
        .await
        .unwrap();
        if i < 12 {
            sqlx::query(
                "INSERT INTO scores (call_id, status, rubric_id, rubric_language, \
                 rubric_version, overall, critical_failures, language, document, scored_at, \
                 updated_at) VALUES ($1, 'scored', 'default', 'en', 1, 50.0, $2, 'en', '{}', 0, 0)",
            )
            .bind(id.to_string())
            .bind(i64::from(i % 3 == 0) * (1 + i % 2))
            .execute(app.store.pool())
            .await
            .unwrap();
        }
        // Unscored calls are in neither list.
        ids.push((id, manager, (i < 12).then_some(i % 3 == 0)));
    }
    // Ids are time-ordered (v7): newest first is the reverse of insertion.
    let expected = |manager: Option<&str>, critical: bool| -> Vec<CallId> {
        ids.iter()
            .rev()
            .filter(|(_, m, c)| manager.is_none_or(|x| x == *m) && *c == Some(critical))
            .map(|(id, _, _)| *id)
            .collect()
    };
    for manager in [None, Some("m-a"), Some("m-b")] {
        for critical in [true, false] {
            for limit in [1, 2, 50] {
                let mut listed = Vec::new();
                let mut filter = CallFilter {
                    manager_id: manager.map(|m| m.parse().unwrap()),
                    limit,
                    ..Default::default()
                };
                let rows = RowFilter {
                    critical: Some(critical),
                    ..Default::default()
                };
                loop {
                    let page = app.store.list_call_rows(&filter, &rows).await.unwrap();
                    listed.extend(page.iter().map(|r| r.record.call.id));
                    match page.last() {
                        Some(r) if page.len() as i64 == limit => {
                            filter.before = Some(r.record.call.id)
                        }
                        _ => break,
                    }
                }
                assert_eq!(
                    listed,
                    expected(manager, critical),
                    "{manager:?} critical={critical} limit={limit}"
                );
            }
        }
    }
    app.stop().await;
}
on_both_backends!(the_critical_failure_filter_lists_exactly_those_calls_page_by_page);
