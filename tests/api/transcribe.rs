//! The transcription stage end to end: upload -> isolated decode -> VAD -> whisper per speaker
//! channel -> stored transcript, with the models `make test` installs (`tiny.en`, `base`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use callgrade::audio::DecoderProgram;
use callgrade::config::Config;
use callgrade::domain::{CallId, Speaker};
use callgrade::jobs::Registry;
use callgrade::models::ModelDir;
use callgrade::recordings::Recordings;
use callgrade::transcribe::job::{TranscribeJob, TranscribeSettings};
use callgrade::transcript::Transcript;
use serde::Deserialize;

use callgrade::llm::LlmClient;
use callgrade::scoring::job::ScoreJob;

use crate::fake_llm::FakeLlm;
use crate::helpers::{spawn_app_for, Backend, TestApp};
use crate::on_both_backends;

pub fn shared(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/testdata")
        .join(path)
}

/// The installed model `name`. `make test` installs the models first and sets
/// `TEST_REQUIRE_MODELS=1`, so there a missing model fails the test instead of skipping it.
pub fn model(name: &str) -> Option<PathBuf> {
    let dir = ModelDir::from_config(Path::new(""));
    match dir.resolve(name) {
        Ok(p) => Some(p),
        Err(e) => {
            assert!(
                std::env::var("TEST_REQUIRE_MODELS").as_deref() != Ok("1"),
                "TEST_REQUIRE_MODELS=1 but {e}"
            );
            eprintln!("skipping: {e}");
            None
        }
    }
}

/// The job handler as `callgrade serve` builds it, with the decoder child being the
/// `callgrade` binary cargo built for these tests.
pub fn transcribe_registry(config: &Config, model: &Path) -> Registry {
    let mut tc = config.transcribe.clone();
    tc.model = model.display().to_string();
    let settings = TranscribeSettings::from_config(
        &tc,
        &config.metrics,
        Recordings::new(config.recordings_dir()),
        DecoderProgram::new(env!("CARGO_BIN_EXE_callgrade"), ["audio-decode-child"]),
    )
    .expect("settings");
    Registry::new().register(TranscribeJob::new(settings))
}

pub async fn spawn_transcribing(backend: Backend, model: &Path) -> TestApp {
    let model = model.to_path_buf();
    spawn_app_for(
        backend,
        |c| c.queue.lease_seconds = 30,
        move |c| transcribe_registry(c, &model),
    )
    .await
}

/// Uploads a file with form fields; returns the HTTP status and body.
pub async fn upload_file(
    app: &TestApp,
    path: &Path,
    fields: &[(&str, &str)],
) -> (u16, serde_json::Value) {
    let bytes = std::fs::read(path).expect("read test file");
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("call");
    let mut form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    let r = app
        .client
        .post(app.url("/api/v1/calls"))
        .bearer_auth(&app.admin)
        .multipart(form)
        .send()
        .await
        .expect("upload");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

pub fn call_id(body: &serde_json::Value) -> CallId {
    body["id"].as_str().expect("id").parse().expect("call id")
}

/// Waits until the call has left transcription: `scoring` (transcribed) or `failed`.
pub async fn wait_transcribed(app: &TestApp, id: CallId, timeout: Duration) -> String {
    let started = std::time::Instant::now();
    loop {
        let status = app.call_status(id).await;
        if status == "scoring" || status == "failed" || status == "done" {
            return status;
        }
        assert!(
            started.elapsed() < timeout,
            "call {id} still {status} after {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn transcript(app: &TestApp, id: CallId) -> Transcript {
    let (status, body) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}/transcript"))
        .await;
    assert_eq!(status, 200, "{body}");
    serde_json::from_value(body).expect("transcript JSON")
}

/// Word error rate, as `callgrade eval transcription` counts it.
pub use callgrade::eval::text::wer;

const JFK: &str = "And so my fellow Americans, ask not what your country can do for you, \
                   ask what you can do for your country.";

async fn jfk_wav_and_mp3_become_the_expected_sentence(backend: Backend) {
    let Some(tiny) = model("tiny.en") else { return };
    let app = spawn_transcribing(backend, &tiny).await;
    for file in ["audio/jfk.wav", "audio/jfk.mp3"] {
        let (status, body) = upload_file(&app, &shared(file), &[("manager_id", "m-1")]).await;
        assert_eq!(status, 202, "{body}");
        let id = call_id(&body);
        let status = wait_transcribed(&app, id, Duration::from_secs(180)).await;
        assert_eq!(
            status,
            "scoring",
            "{file}: {:?}",
            app.store.get_call(id).await
        );
        let t = transcript(&app, id).await;
        let text: String = t
            .segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let w = wer(JFK, &text);
        assert!(w <= 0.10, "{file}: WER {w:.3} for {text:?}");
        assert_eq!(t.language, "en");
        assert_eq!(
            t.speakers,
            vec![Speaker::Unknown],
            "mono is one unknown speaker"
        );
        assert!(
            (t.duration_s - 11.0).abs() < 0.5,
            "{file}: {} s",
            t.duration_s
        );
        assert!(t.segments.iter().all(|s| s.speaker == Speaker::Unknown));
        let words: Vec<_> = t.segments.iter().flat_map(|s| &s.words).collect();
        assert!(words.len() >= 18, "word timestamps: {}", words.len());
        assert!(
            words.windows(2).all(|w| w[0].start <= w[1].start + 0.01),
            "words in order"
        );
        assert!(t.processing.transcription_s > 0.0 && t.processing.real_time_factor > 0.0);
        // The manager sees their own transcript; a colleague gets the same 404 as for nothing.
        let own = app
            .token(callgrade::domain::Role::Manager, Some("m-1"))
            .await;
        let other = app
            .token(callgrade::domain::Role::Manager, Some("m-2"))
            .await;
        let path = format!("/api/v1/calls/{id}/transcript");
        assert_eq!(app.get_json(&own, &path).await.0, 200);
        assert_eq!(app.get_json(&other, &path).await.0, 404);
        // The call's JSON carries the metrics; the other formats render.
        let (_, call) = app
            .get_json(&app.admin, &format!("/api/v1/calls/{id}"))
            .await;
        assert!(call["metrics"]["speakers"].is_array(), "{call}");
        for (format, needle) in [("text", "country"), ("srt", "-->"), ("vtt", "WEBVTT")] {
            let r = app
                .client
                .get(app.url(&format!("/api/v1/calls/{id}/transcript?format={format}")))
                .bearer_auth(&app.admin)
                .send()
                .await
                .expect("request");
            assert_eq!(r.status(), 200);
            let body = r.text().await.expect("body");
            assert!(body.contains(needle), "{format}: {body}");
        }
    }
    app.stop().await;
}

on_both_backends!(jfk_wav_and_mp3_become_the_expected_sentence);

/// `models install --quantize q8_0`'s file is one whisper.cpp loads and transcribes with.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_q8_0_copy_of_a_model_transcribes_like_the_original() {
    let Some(tiny) = model("tiny.en") else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let models = callgrade::models::ModelDir::new(dir.path());
    models.add(&tiny, Some("tiny.en")).expect("add");
    let q = models.quantize_q8_0("tiny.en").expect("quantise");
    assert_eq!(q.name, "tiny.en-q8_0");
    let original = std::fs::metadata(&tiny).unwrap().len() as f64;
    let ratio = q.bytes as f64 / original;
    assert!(
        (0.5..0.65).contains(&ratio),
        "q8_0 is about half of f16: {ratio:.2}"
    );
    let path = q.path.clone();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_callgrade"))
            .arg("transcribe")
            .arg(shared("audio/jfk.wav"))
            .arg("--model")
            .arg(&path)
            .args(["--language", "en", "--json"])
            .output()
            .expect("run callgrade transcribe")
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let segments: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).expect("json");
    let text: Vec<&str> = segments.iter().filter_map(|s| s["text"].as_str()).collect();
    let w = wer(JFK, &text.join(" "));
    assert!(w <= 0.1, "WER {w:.3}: {text:?}");
}

#[derive(Debug, Deserialize)]
pub struct Truth {
    pub language: String,
    pub duration_s: f64,
    pub turns: Vec<TrueTurn>,
    pub talk_seconds: TalkSeconds,
    pub upload: UploadTruth,
}

#[derive(Debug, Deserialize)]
pub struct TrueTurn {
    pub speaker: Speaker,
    pub text: String,
    pub start_s: f64,
    pub end_s: f64,
}

#[derive(Debug, Deserialize)]
pub struct TalkSeconds {
    pub manager: f64,
    pub client: f64,
}

#[derive(Debug, Deserialize)]
pub struct UploadTruth {
    pub manager_id: String,
    #[serde(default)]
    pub direction: Option<String>,
}

pub fn truth(stem: &str) -> Truth {
    let text = std::fs::read_to_string(shared(&format!("calls/{stem}.json"))).expect("truth json");
    serde_json::from_str(&text).expect("truth parses")
}

/// Seconds covered by the union of `intervals`.
fn union_seconds(mut intervals: Vec<(f64, f64)>) -> f64 {
    intervals.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut total, mut cur): (f64, Option<(f64, f64)>) = (0.0, None);
    for (s, e) in intervals {
        match cur {
            Some((cs, ce)) if s <= ce => cur = Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += ce - cs;
                cur = Some((s, e));
            }
            None => cur = Some((s, e)),
        }
    }
    total + cur.map_or(0.0, |(s, e)| e - s)
}

/// How a transcript compares with the truth of its call.
#[derive(Debug)]
pub struct CallScore {
    pub turns: usize,
    pub misattributed: usize,
    pub onset_errors: Vec<f64>,
    pub talk_error: [f64; 2],
    pub wer: f64,
}

pub fn score(t: &Transcript, truth: &Truth) -> CallScore {
    let mut misattributed = 0;
    let mut onset_errors = Vec::new();
    for turn in &truth.turns {
        // Who the transcript says speaks during this turn (by overlapping word time).
        let mut by_speaker = [0.0f64; 2];
        for s in &t.segments {
            let overlap = (s.end.min(turn.end_s) - s.start.max(turn.start_s)).max(0.0);
            match s.speaker {
                Speaker::Manager => by_speaker[0] += overlap,
                Speaker::Client => by_speaker[1] += overlap,
                _ => {}
            }
        }
        let heard = if by_speaker[0] >= by_speaker[1] {
            Speaker::Manager
        } else {
            Speaker::Client
        };
        if by_speaker[0] + by_speaker[1] > 0.0 && heard != turn.speaker {
            misattributed += 1;
        }
        // Onset: where the transcript says the turn's speaker starts talking in it: the start
        // of the first of their segments that overlaps the turn.
        let onset = t
            .segments
            .iter()
            .filter(|s| s.speaker == turn.speaker && !s.words.is_empty())
            .filter(|s| s.end > turn.start_s && s.start < turn.end_s)
            .map(|s| s.start)
            .fold(f64::INFINITY, f64::min);
        if onset.is_finite() {
            onset_errors.push(onset - turn.start_s);
        } else {
            onset_errors.push(f64::NAN);
        }
    }
    let talk = |sp: Speaker| {
        union_seconds(
            t.segments
                .iter()
                .filter(|s| s.speaker == sp)
                .map(|s| (s.start, s.end))
                .collect(),
        )
    };
    let rel = |got: f64, want: f64| (got - want) / want;
    let reference: String = truth
        .turns
        .iter()
        .map(|t| t.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let hyp: String = t
        .segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    CallScore {
        turns: truth.turns.len(),
        misattributed,
        onset_errors,
        talk_error: [
            rel(talk(Speaker::Manager), truth.talk_seconds.manager),
            rel(talk(Speaker::Client), truth.talk_seconds.client),
        ],
        wer: wer(&reference, &hyp),
    }
}

/// Every recording of the corpus goes upload -> transcript -> score. With `base`, each stereo
/// call (MP3, and the FLAC and Ogg Opus copies) is checked for speakers by channel, onsets and
/// talk time, and its word error rate is printed and bounded by what was measured (see
/// docs/PERFORMANCE.md); the mono mixdowns are transcribed as one speaker. Scoring runs through
/// the stand-in LLM server (the real local model has its own test, `llm_e2e`), whose quotes
/// are copied from the prompt's transcript lines: every one of them must verify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_corpus_call_is_transcribed_by_speaker_and_scored() {
    let Some(base) = model("base") else { return };
    let llm = FakeLlm::start(vec![]).await;
    let url = llm.url.clone();
    let app = spawn_app_for(
        Backend::Sqlite,
        |c| {
            c.queue.lease_seconds = 30;
            // As whisper.cpp's recorded transcripts were made (see parity_with_whisper_cpp):
            // two threads, and the mono files as one channel, not separated into voices
            // (`mono_calls_are_separated_into_manager_and_client` separates them).
            c.transcribe.threads = 2;
            c.transcribe.diarization = false;
            c.llm.base_url = url;
            c.llm.model = "fake-model".into();
        },
        move |c| {
            transcribe_registry(c, &base).register(ScoreJob::new(
                LlmClient::new(&c.llm).expect("llm"),
                c.scoring.clone(),
            ))
        },
    )
    .await;
    let files = [
        "pub01_ru.mp3",
        "pub02_ru.mp3",
        "pub03_ru.mp3",
        "pub04_ru.mp3",
        "pub04_ru_stereo.ogg",
        "pub04_ru_mono16k.wav",
        "pub05_en.mp3",
        "pub06_en.mp3",
        "pub06_en_stereo.flac",
        "pub06_en_mono16k.wav",
    ];
    // CALLGRADE_TEST_CALLS=pub05_en.mp3,... narrows the run while working on one call.
    let only = std::env::var("CALLGRADE_TEST_CALLS").unwrap_or_default();
    let mut ids = Vec::new();
    for f in files
        .into_iter()
        .filter(|f| only.is_empty() || only.split(',').any(|o| o == *f))
    {
        let stem = f.rsplit_once('.').map_or(f, |(s, _)| s);
        let truth = truth(stem);
        let (status, body) = upload_file(
            &app,
            &shared(&format!("calls/{f}")),
            &[
                ("manager_id", &truth.upload.manager_id),
                ("language", &truth.language),
            ],
        )
        .await;
        assert_eq!(status, 202, "{f}: {body}");
        ids.push((f, stem, truth, call_id(&body)));
    }
    let mut failures = Vec::new();
    for (f, stem, truth, id) in &ids {
        let status = wait_transcribed(&app, *id, Duration::from_secs(900)).await;
        assert!(
            status == "scoring" || status == "done",
            "{f}: {:?}",
            app.store.get_call(*id).await
        );
        let t = transcript(&app, *id).await;
        if f.contains("mono") {
            assert_eq!(t.speakers, vec![Speaker::Unknown], "{f}");
            assert!(!t.segments.is_empty(), "{f}: empty transcript");
            if let Some(failure) = parity_with_whisper_cpp(stem, truth, &t) {
                failures.push(failure);
            }
            continue;
        }
        assert_eq!(t.speakers, vec![Speaker::Manager, Speaker::Client], "{f}");
        assert!(
            (t.duration_s - truth.duration_s).abs() < 0.5,
            "{f}: {} s",
            t.duration_s
        );
        let s = score(&t, truth);
        // A turn with no recognised word at all is only acceptable for a blip under half a
        // second (pub02_ru's client says "Так..." in 0.13 s); every other onset is within 0.5 s.
        let late: Vec<String> = s
            .onset_errors
            .iter()
            .zip(&truth.turns)
            .enumerate()
            .filter(|(_, (e, turn))| {
                if e.is_nan() {
                    turn.end_s - turn.start_s >= 0.5
                } else {
                    e.abs() > 0.5
                }
            })
            .map(|(i, (e, _))| format!("turn {i}: {e:+.2}"))
            .collect();
        eprintln!(
            "{f}: {} turns, {} misattributed, onsets off by >0.5 s: {:?}, talk error manager {:+.1}% client {:+.1}%, WER {:.3}, RTF {:.3}",
            s.turns,
            s.misattributed,
            late,
            s.talk_error[0] * 100.0,
            s.talk_error[1] * 100.0,
            s.wer,
            t.processing.real_time_factor
        );
        if s.misattributed > 0 {
            failures.push(format!(
                "{f}: {} turns on the wrong speaker",
                s.misattributed
            ));
        }
        if !late.is_empty() {
            failures.push(format!("{f}: onsets {late:?}"));
        }
        if s.talk_error.iter().any(|e| e.abs() > 0.10) {
            failures.push(format!("{f}: talk time off by {:?}", s.talk_error));
        }
        let bound = if truth.language == "ru" {
            RU_WER_BOUND
        } else {
            EN_WER_BOUND
        };
        if s.wer > bound {
            failures.push(format!("{f}: WER {:.3} over {bound}", s.wer));
        }
    }
    for (f, _stem, _truth, id) in &ids {
        app.wait_for_status(*id, "done", Duration::from_secs(120))
            .await;
        let (status, s) = app
            .get_json(&app.admin, &format!("/api/v1/calls/{id}/score"))
            .await;
        assert_eq!(status, 200, "{f}: {s}");
        assert_eq!(s["status"], "scored", "{f}: {s}");
        let criteria = s["criteria"].as_array().expect("criteria");
        assert_eq!(criteria.len(), 5, "{f}");
        if !f.contains("mono") {
            for c in criteria {
                for e in c["evidence"].as_array().expect("evidence") {
                    if e["verified"] != true {
                        failures.push(format!("{f}: quote not verified: {e}"));
                    } else if e["speaker"] != "manager" {
                        failures.push(format!("{f}: manager quote found on {}", e["speaker"]));
                    }
                }
            }
        }
    }
    app.stop().await;
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Accuracy parity (issue 16): on a mono 16 kHz call, callgrade's words may be at most half a
/// point worse than whisper.cpp's own command-line tool with the same model, greedy decoding,
/// Silero VAD and two threads. Its transcripts are recorded in `tests/fixtures/whisper-cpp/`
/// (the command is in the README there); both are scored against the true turns in start order.
fn parity_with_whisper_cpp(stem: &str, truth: &Truth, t: &Transcript) -> Option<String> {
    let mut turns: Vec<_> = truth.turns.iter().collect();
    turns.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let reference = turns
        .iter()
        .map(|x| x.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let ours = wer(
        &reference,
        &t.segments
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" "),
    );
    let recorded = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("tests/fixtures/whisper-cpp/{stem}.txt"));
    let theirs = wer(
        &reference,
        &std::fs::read_to_string(&recorded).expect("whisper.cpp's recorded transcript"),
    );
    eprintln!("{stem}: WER {ours:.3}, whisper.cpp's CLI {theirs:.3}");
    (ours > theirs + 0.005)
        .then(|| format!("{stem}: WER {ours:.3}, over whisper.cpp's {theirs:.3} + 0.005"))
}

/// Measured with `base` on the synthetic Festival voices: 0.19-0.30 over the five Russian
/// files (docs/PERFORMANCE.md); the bound leaves room for thread-count nondeterminism.
const RU_WER_BOUND: f64 = 0.35;
/// Measured with `base` on the robotic espeak-ng voices: 0.30-0.43 over the three English
/// files (tiny.en does the real English sentence of jfk at 0).
const EN_WER_BOUND: f64 = 0.50;

/// Speaker separation (issue 16): the two 16 kHz mono mixdowns of the corpus, uploaded as a
/// mono phone system would send them, come back with a manager and a client: the roles right
/// (by the rule, from what was said), who-speaks-when within the 15% diarization error,
/// the metrics and the scorecard's quotes on the right person.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mono_calls_are_separated_into_manager_and_client() {
    let Some(base) = model("base") else { return };
    if callgrade::models::diarization::find(&ModelDir::from_config(Path::new(""))).is_none() {
        assert!(
            std::env::var("TEST_REQUIRE_MODELS").as_deref() != Ok("1"),
            "TEST_REQUIRE_MODELS=1 but the diarization models are not installed \
             (callgrade models install diarization)"
        );
        eprintln!("skipping: the diarization models are not installed");
        return;
    }
    let app = spawn_app_for(
        Backend::Sqlite,
        |c| {
            c.queue.lease_seconds = 30;
            c.transcribe.threads = 2;
            c.transcribe.diarization = true;
        },
        move |c| transcribe_registry(c, &base),
    )
    .await;
    let mut failures = Vec::new();
    for stem in ["pub04_ru_mono16k", "pub06_en_mono16k"] {
        let truth = truth(stem);
        let mut fields = vec![
            ("manager_id", truth.upload.manager_id.as_str()),
            ("language", truth.language.as_str()),
        ];
        if let Some(d) = &truth.upload.direction {
            fields.push(("direction", d.as_str()));
        }
        // pub06_en's upload says who speaks first (the manager); pub04_ru's leaves it to the rule.
        let told = stem.starts_with("pub06");
        if told {
            fields.push(("speakers", "manager,client"));
        }
        let (status, body) =
            upload_file(&app, &shared(&format!("calls/{stem}.wav")), &fields).await;
        assert_eq!(status, 202, "{stem}: {body}");
        let id = call_id(&body);
        let status = wait_transcribed(&app, id, Duration::from_secs(900)).await;
        assert_eq!(
            status,
            "scoring",
            "{stem}: {:?}",
            app.store.get_call(id).await
        );
        let t = transcript(&app, id).await;
        assert!(t.processing.diarization_s > 0.0, "{stem}: not separated");
        let note = t.processing.speaker_roles.clone().unwrap_or_default();
        let decided_by = if told { "set for the call" } else { "by rule" };
        assert!(note.starts_with(decided_by), "{stem}: {note}");
        assert_eq!(t.speakers.len(), 2, "{stem}: {:?}", t.speakers);
        assert!(
            t.speakers.contains(&Speaker::Manager) && t.speakers.contains(&Speaker::Client),
            "{stem}: {:?}",
            t.speakers
        );
        let turns: Vec<callgrade::eval::labelled::Turn> = truth
            .turns
            .iter()
            .map(|x| callgrade::eval::labelled::Turn {
                speaker: x.speaker,
                text: x.text.clone(),
                start_s: x.start_s,
                end_s: x.end_s,
            })
            .collect();
        let [errors, total] =
            callgrade::eval::transcription::der_frames(&turns, &t.segments, t.duration_s, 0.0);
        let der = errors as f64 / total as f64;
        let s = score(&t, &truth);
        eprintln!(
            "{stem}: DER {:.1}%, {} of {} turns misattributed, talk error manager {:+.1}% client {:+.1}%, WER {:.3}, separation {:.1} s of {:.1} s; roles {note}",
            der * 100.0,
            s.misattributed,
            s.turns,
            s.talk_error[0] * 100.0,
            s.talk_error[1] * 100.0,
            s.wer,
            t.processing.diarization_s,
            t.processing.total_s,
        );
        if der > 0.15 {
            failures.push(format!("{stem}: DER {der:.3} over 0.15"));
        }
        // Most turns on the right person (a short backchannel inside the other's turn may
        // go to the wrong voice).
        if s.misattributed * 10 > s.turns {
            failures.push(format!(
                "{stem}: {} of {} turns on the wrong speaker",
                s.misattributed, s.turns
            ));
        }
        if s.talk_error.iter().any(|e| e.abs() > 0.25) {
            failures.push(format!("{stem}: talk time off by {:?}", s.talk_error));
        }
        // The metrics are a two-sided call's.
        let shares: Vec<_> = t.metrics.speakers.iter().map(|m| m.speaker).collect();
        assert!(
            shares.contains(&Speaker::Manager) && shares.contains(&Speaker::Client),
            "{stem}"
        );
    }
    app.stop().await;
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The hallucination guards alone (VAD off): ten minutes of digital silence through whisper
/// give no text, not "Thank you." twenty times.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_minutes_of_silence_without_vad_give_an_empty_transcript() {
    use callgrade::audio::{decode_isolated, DecodeLimits};
    use callgrade::transcribe::engine::{Options, WhisperModel};
    let Some(tiny) = model("tiny.en") else { return };
    let program = DecoderProgram::new(env!("CARGO_BIN_EXE_callgrade"), ["audio-decode-child"]);
    let audio = decode_isolated(
        &program,
        &shared("calls/bad/silence_10min.mp3"),
        &DecodeLimits::default(),
    )
    .await
    .expect("decodes");
    assert!((audio.duration_s() - 600.0).abs() < 2.0);
    let samples = audio.channels.into_iter().next().expect("a channel");
    let out = tokio::task::spawn_blocking(move || {
        let model = WhisperModel::load(&tiny).expect("model loads");
        let options = Options {
            language: callgrade::domain::Language::En,
            threads: 2,
            initial_prompt: None,
            vad_model: None,
            thresholds: Default::default(),
            window_samples: callgrade::transcribe::engine::WINDOW_SAMPLES,
        };
        model
            .transcribe(&samples, Speaker::Unknown, &options, &Default::default())
            .expect("transcribes")
    })
    .await
    .expect("no panic");
    assert!(out.segments.is_empty(), "hallucinated: {:?}", out.segments);
}

/// Whisper passes in progress, from the metrics endpoint.
async fn whisper_passes_running(app: &TestApp) -> f64 {
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find(|l| l.starts_with("callgrade_whisper_passes_running "))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_stops_its_whisper_pass_within_one_encoder_window() {
    let Some(base) = model("base") else { return };
    let app = spawn_transcribing(Backend::Sqlite, &base).await;
    // A long Russian call: `base` needs far longer than the test for it.
    let (status, body) = upload_file(
        &app,
        &shared("calls/pub01_ru.mp3"),
        &[("manager_id", "m-1"), ("language", "ru")],
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let id = call_id(&body);
    let started = std::time::Instant::now();
    while whisper_passes_running(&app).await < 1.0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "whisper never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let whisper get properly into the pass (VAD is done: the gauge counts inference only).
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        whisper_passes_running(&app).await,
        1.0,
        "still in the first pass"
    );
    let job = app
        .store
        .latest_job_for_call(id)
        .await
        .expect("get")
        .expect("job");
    let r = app
        .client
        .post(app.url(&format!("/api/v1/jobs/{}/cancel", job.id)))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("cancel");
    assert_eq!(r.status(), 200);
    let cancelled = std::time::Instant::now();
    // whisper.cpp asks its abort callback between encoder and decoder steps, not inside one:
    // the pass ends within one encoder run of a 30-s window (0.2-2.5 s for `base` on two cores;
    // the 2-s target is missed in the worst case, see docs/PERFORMANCE.md). Before the
    // callback the pass ran to the end of the channel: tens of seconds for this call.
    while whisper_passes_running(&app).await > 0.0 {
        assert!(
            cancelled.elapsed() < Duration::from_secs(5),
            "whisper still running {:?} after the cancel",
            cancelled.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("whisper stopped {:?} after the cancel", cancelled.elapsed());
    assert_eq!(app.call_status(id).await, "failed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recording_longer_than_a_window_is_recognised_window_by_window_on_one_timeline() {
    use callgrade::audio::{decode_isolated_spooled, DecoderProgram, Pcm};
    use callgrade::transcribe::engine::{Options, WhisperModel};
    let Some(tiny) = model("tiny.en") else { return };
    let program = DecoderProgram::new(env!("CARGO_BIN_EXE_callgrade"), ["audio-decode-child"]);
    let audio = decode_isolated_spooled(&program, &shared("audio/jfk.wav"), &Default::default())
        .await
        .expect("decode");
    assert!(
        matches!(audio.channels[0], Pcm::File { .. }),
        "the samples wait in a file, not in memory"
    );
    let vad = callgrade::models::ModelDir::from_config(Path::new(""))
        .vad_model()
        .expect("vad model");
    let run = |window_s: usize, channels: Vec<Pcm>| {
        let (tiny, vad) = (tiny.clone(), vad.clone());
        tokio::task::spawn_blocking(move || {
            let model = WhisperModel::load(&tiny).expect("model");
            let options = Options {
                language: callgrade::domain::Language::En,
                threads: 2,
                initial_prompt: None,
                vad_model: Some(vad),
                thresholds: Default::default(),
                window_samples: window_s * 16_000,
            };
            callgrade::transcribe::job::recognise(
                &model,
                channels,
                &[Speaker::Unknown],
                &options,
                None,
                &Default::default(),
            )
            .expect("recognise")
            .expect("not cancelled")
        })
    };
    // 11 s of speech in windows of 4 s: three windows, cut in pauses.
    let windowed = run(4, audio.channels).await.expect("join");
    let text: String = windowed
        .segments
        .iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    let w = wer(JFK, &text);
    assert!(w <= 0.25, "WER {w:.3} for {text:?}");
    let words: Vec<_> = windowed.segments.iter().flat_map(|s| &s.words).collect();
    assert!(
        words.windows(2).all(|w| w[0].start <= w[1].start + 0.01),
        "one timeline across windows"
    );
    assert!(
        words.last().is_some_and(|w| w.end > 8.0 && w.end < 11.5),
        "{words:?}"
    );
}
