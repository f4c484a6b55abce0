//! Search across calls: word forms found the same way on SQLite and PostgreSQL, the role rule,
//! the index kept with its transcript (replaced, deleted), transcripts saved before the index
//! existed, and the search page.

use std::time::{Duration, Instant};

use callgrade::config::Config;
use callgrade::domain::{CallId, CallStatus, Role, Speaker};
use callgrade::jobs::Registry;
use callgrade::store::{SearchFilter, Store};
use callgrade::transcript::Transcript;
use reqwest::header::{ACCEPT_LANGUAGE, COOKIE};
use reqwest::StatusCode;
use serde_json::{json, Value};
use thirtyfour::prelude::*;
use tokio_util::sync::CancellationToken;

use crate::helpers::{count, fast_queue, spawn_app, unique_bytes, Backend, TestApp, TestDb};
use crate::on_both_backends;
use crate::scoring::corpus_transcript;
use crate::transcribe::shared;
use crate::web::{browser, create_user, get, sign_in};

/// A transcript of `call` with one 4.5-second segment every 5 seconds per `(speaker, text)`.
fn transcript(call: CallId, language: &str, lines: &[(&str, &str)]) -> Transcript {
    let segments: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (speaker, text))| {
            json!({"speaker": speaker, "start": i as f64 * 5.0, "end": i as f64 * 5.0 + 4.5,
                   "text": text, "confidence": 0.9, "words": []})
        })
        .collect();
    serde_json::from_value(json!({
        "call_id": call.to_string(), "language": language, "model": "base", "duration_s": 60.0,
        "speakers": ["manager", "client"], "segments": segments,
        "metrics": {"duration_s": 60.0, "speakers": [], "manager_questions": 0,
                    "manager_questions_per_minute": 0.0, "interruptions": 0,
                    "silence_share": 0.0, "longest_silence_s": 0.0},
        "processing": {"decode_s": 0.1, "vad_s": 0.1, "transcription_s": 1.0, "total_s": 1.2,
                       "speech_s": 50.0, "real_time_factor": 0.02, "dropped_segments": 0,
                       "threads": 2, "vad": true},
        "warnings": [], "created_at": 0
    }))
    .expect("transcript")
}

/// Uploads a call of `manager` that started at `started_at` (RFC 3339).
async fn upload_at(app: &TestApp, manager: &str, started_at: &str) -> CallId {
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(unique_bytes()).file_name("call.wav"),
        )
        .text("manager_id", manager.to_string())
        .text("started_at", started_at.to_string());
    let r = app
        .client
        .post(app.url("/api/v1/calls"))
        .bearer_auth(&app.admin)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{:?}", r.text().await);
    let body: Value = r.json().await.unwrap();
    body["id"].as_str().unwrap().parse().unwrap()
}

/// A search as `token`: the status and the body.
async fn search(app: &TestApp, token: &str, query: &str) -> (u16, Value) {
    let r = app
        .client
        .get(app.url("/api/v1/search"))
        .query(&query_pairs(query))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// `a=b&c=d` as pairs, so that reqwest encodes the Cyrillic.
fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The hits of a search as `call:second` pairs, in order; fails on anything but 200.
async fn hits(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, body) = search(app, token, query).await;
    assert_eq!(status, 200, "{query}: {body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{}:{}", h["call_id"].as_str().unwrap(), h["start_s"]))
        .collect()
}

/// The snippet of a hit with the matches in brackets.
fn marked(hit: &Value) -> String {
    hit["snippet"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let text = p["text"].as_str().unwrap();
            if p["hit"] == true {
                format!("[{text}]")
            } else {
                text.to_string()
            }
        })
        .collect()
}

struct Calls {
    /// m-1, 2 March, Russian.
    ru: CallId,
    /// m-2, 5 March, English with a Russian line.
    en: CallId,
    /// m-1, 1 March, language not known.
    auto: CallId,
}

async fn three_calls(app: &TestApp) -> Calls {
    let ru = upload_at(app, "m-1", "2026-03-02T10:00:00Z").await;
    let en = upload_at(app, "m-2", "2026-03-05T10:00:00Z").await;
    let auto = upload_at(app, "m-1", "2026-03-01T10:00:00Z").await;
    let saved = [
        transcript(
            ru,
            "ru",
            &[
                ("manager", "Наша цена на тариф — сто тысяч."),
                ("client", "Цены у конкурентов ниже, ещё и скидка есть."),
                ("manager", "Давайте обсудим скидку."),
            ],
        ),
        transcript(
            en,
            "en",
            &[
                ("manager", "Let me walk you through our pricing."),
                ("client", "The price is too high for us."),
                ("client", "Еще вопрос про цену."),
            ],
        ),
        transcript(auto, "auto", &[("client", "Всё понятно, спасибо.")]),
    ];
    for t in &saved {
        app.store.save_transcript(t, None).await.unwrap();
    }
    Calls { ru, en, auto }
}

async fn word_forms_and_filters_find_the_same_segments_on_both_backends(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let Calls { ru, en, auto } = three_calls(&app).await;
    let admin = app.admin.clone();
    // As `hits` writes them: the JSON number of the start, e.g. `10.0`.
    let at = |call: CallId, s: u32| format!("{call}:{}", json!(f64::from(s)));

    // Russian forms, newest call first, then in the call's order: "цену" finds "цена", "Цены"
    // and "цену", also in an English call.
    let prices = vec![at(en, 10), at(ru, 0), at(ru, 5)];
    assert_eq!(hits(&app, &admin, "q=цену").await, prices);
    assert_eq!(hits(&app, &admin, "q=ЦЕНАМИ").await, prices);
    // ё and е are one letter.
    assert_eq!(
        hits(&app, &admin, "q=ещё").await,
        vec![at(en, 10), at(ru, 5)]
    );
    assert_eq!(
        hits(&app, &admin, "q=еще").await,
        hits(&app, &admin, "q=ещё").await
    );
    assert_eq!(hits(&app, &admin, "q=все").await, vec![at(auto, 0)]);
    // English: "pricing" finds "price".
    assert_eq!(
        hits(&app, &admin, "q=pricing").await,
        vec![at(en, 0), at(en, 5)]
    );
    assert_eq!(
        hits(&app, &admin, "q=Prices").await,
        vec![at(en, 0), at(en, 5)]
    );
    // Every word must be in the segment.
    assert_eq!(hits(&app, &admin, "q=цена скидками").await, vec![at(ru, 5)]);
    assert!(hits(&app, &admin, "q=цена pricing").await.is_empty());
    // Words that look like query syntax are words.
    assert!(hits(&app, &admin, "q=NOT цена OR \"*").await.is_empty());

    // What a hit carries: its call, speaker, times, text, and the matches marked.
    let (_, body) = search(&app, &admin, "q=цена скидка").await;
    let hit = &body["items"][0];
    assert_eq!(hit["call_id"], ru.to_string());
    assert_eq!(hit["manager_id"], "m-1");
    assert_eq!(hit["started_at"], "2026-03-02T10:00:00Z");
    assert_eq!(hit["speaker"], "client");
    assert_eq!(
        (hit["start_s"].as_f64(), hit["end_s"].as_f64()),
        (Some(5.0), Some(9.5))
    );
    assert_eq!(hit["text"], "Цены у конкурентов ниже, ещё и скидка есть.");
    assert_eq!(
        marked(hit),
        "[Цены] у конкурентов ниже, ещё и [скидка] есть."
    );
    assert_eq!(hit["page_url"], format!("/calls/{ru}?t=5"));
    assert_eq!(hit["call_url"], format!("/api/v1/calls/{ru}"));

    // Filters: speaker, the call's day, manager.
    assert_eq!(
        hits(&app, &admin, "q=цену&speaker=client").await,
        vec![at(en, 10), at(ru, 5)]
    );
    assert_eq!(
        hits(&app, &admin, "q=цену&from=2026-03-03").await,
        vec![at(en, 10)]
    );
    assert_eq!(
        hits(&app, &admin, "q=цену&to=2026-03-03").await,
        vec![at(ru, 0), at(ru, 5)]
    );
    // To the millisecond: the English call started at 10:00:00.000 on 5 March.
    assert_eq!(
        hits(&app, &admin, "q=цену&from=2026-03-05T10:00:00Z").await,
        vec![at(en, 10)]
    );
    assert!(hits(&app, &admin, "q=цену&from=2026-03-05T10:00:00.001Z")
        .await
        .is_empty());
    assert_eq!(
        hits(
            &app,
            &admin,
            "q=цену&from=2026-03-02T10:00:00Z&to=2026-03-05T10:00:00.001Z"
        )
        .await,
        prices
    );
    assert_eq!(
        hits(&app, &admin, "q=цену&to=2026-03-05T10:00:00Z").await,
        vec![at(ru, 0), at(ru, 5)]
    );
    assert_eq!(
        hits(&app, &admin, "q=цену&manager_id=m-2").await,
        vec![at(en, 10)]
    );

    // Pages: one hit each, following next_cursor, give the same order; the last has none.
    let mut paged = Vec::new();
    let mut query = "q=цену&limit=1".to_string();
    loop {
        let (status, body) = search(&app, &admin, &query).await;
        assert_eq!(status, 200, "{body}");
        for h in body["items"].as_array().unwrap() {
            paged.push(format!(
                "{}:{}",
                h["call_id"].as_str().unwrap(),
                h["start_s"]
            ));
        }
        match body["next_cursor"].as_str() {
            Some(cursor) => query = format!("q=цену&limit=1&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(paged, prices);

    // A second transcription replaces the call's rows.
    app.store
        .save_transcript(&transcript(ru, "ru", &[("manager", "Цена выросла.")]), None)
        .await
        .unwrap();
    assert!(hits(&app, &admin, "q=скидка").await.is_empty());
    assert_eq!(hits(&app, &admin, "q=выросли").await, vec![at(ru, 0)]);
    assert_eq!(
        hits(&app, &admin, "q=цену").await,
        vec![at(en, 10), at(ru, 0)]
    );

    // Deleting a call deletes its rows, and on SQLite its entries in the FTS index.
    app.store.delete_call(en).await.unwrap();
    assert!(hits(&app, &admin, "q=pricing").await.is_empty());
    let left = format!("SELECT COUNT(*) FROM search_segments WHERE call_id = '{en}'");
    assert_eq!(count(&app.store, &left).await, 0);
    if backend == Backend::Sqlite {
        let entries = "SELECT COUNT(*) FROM search_fts WHERE search_fts MATCH '\"price\"'";
        assert_eq!(count(&app.store, entries).await, 0);
        sqlx::query("INSERT INTO search_fts (search_fts) VALUES ('integrity-check')")
            .execute(app.store.pool())
            .await
            .expect("the FTS index matches its rows");
    }
    app.stop().await;
}

async fn each_role_finds_only_the_calls_it_may_see(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let Calls { ru, en, .. } = three_calls(&app).await;
    let calls_of = |hits: Vec<String>| -> Vec<String> {
        let mut calls: Vec<String> = hits
            .into_iter()
            .map(|h| h.split(':').next().unwrap_or_default().to_string())
            .collect();
        calls.dedup();
        calls
    };
    let both = vec![en.to_string(), ru.to_string()];
    for role in [Role::Admin, Role::Qa, Role::Head] {
        let token = app.token(role, None).await;
        assert_eq!(calls_of(hits(&app, &token, "q=цена").await), both, "{role}");
        assert_eq!(
            calls_of(hits(&app, &token, "q=цена&manager_id=m-2").await),
            vec![en.to_string()],
            "{role}"
        );
    }
    let owner = app.token(Role::Manager, Some("m-1")).await;
    assert_eq!(
        calls_of(hits(&app, &owner, "q=цена").await),
        vec![ru.to_string()]
    );
    assert_eq!(
        calls_of(hits(&app, &owner, "q=цена&manager_id=m-1").await),
        vec![ru.to_string()]
    );
    // Another manager's calls: 404, as in the calls list.
    let (status, body) = search(&app, &owner, "q=цена&manager_id=m-2").await;
    assert_eq!(status, 404, "{body}");
    // A colleague's only call holds "pricing": nothing for m-1.
    assert!(hits(&app, &owner, "q=pricing").await.is_empty());
    let colleague = app.token(Role::Manager, Some("m-2")).await;
    assert_eq!(
        calls_of(hits(&app, &colleague, "q=цена").await),
        vec![en.to_string()]
    );
    let r = app
        .client
        .get(app.url("/api/v1/search?q=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

/// A transcript saved by a version without the search index is found once the server has
/// started: the migration leaves it out, the start-up step indexes it.
async fn transcripts_saved_before_the_index_are_found_after_the_upgrade(backend: Backend) {
    let db = TestDb::new(backend).await;
    // The database as the version before: migrations up to 0006.
    let old = Store::connect(&db.url).await.unwrap();
    let folder = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("migrations")
        .join(folder);
    let mut before = sqlx::migrate::Migrator::new(dir.as_path()).await.unwrap();
    before.migrations = before
        .migrations
        .iter()
        .filter(|m| m.version <= 6)
        .cloned()
        .collect::<Vec<_>>()
        .into();
    before.run(old.pool()).await.unwrap();
    let call = CallId::new();
    sqlx::query(
        "INSERT INTO calls (id, manager_id, started_at, language, channels, size_bytes, sha256, \
         storage_key, status, created_at, updated_at) \
         VALUES ($1, 'm-1', $2, 'ru', 'manager,client', 1, 'x', 'k', 'done', $2, $2)",
    )
    .bind(call.to_string())
    .bind(1_772_445_600_000_i64)
    .execute(old.pool())
    .await
    .unwrap();
    let t = transcript(call, "ru", &[("client", "Какие у вас цены?")]);
    sqlx::query(
        "INSERT INTO transcripts (call_id, language, model, duration_ms, speech_ms, words, \
         document, created_at) VALUES ($1, 'ru', 'base', 60000, 50000, 4, $2, 0)",
    )
    .bind(call.to_string())
    .bind(serde_json::to_string(&t).unwrap())
    .execute(old.pool())
    .await
    .unwrap();
    old.close().await;

    // The new version: migrations applied, the transcript not in the index yet.
    let store = Store::open(&db.url).await.unwrap();
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM search_segments").await,
        0
    );
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        database_url: db.url.clone(),
        data_dir: data.path().to_path_buf(),
        queue: fast_queue(),
        ..Config::default()
    };
    callgrade::app::sync_rubrics(&store, &config).await.unwrap();
    let token = callgrade::http::tokens::create_token(&store, "admin", Role::Admin, None)
        .await
        .unwrap()
        .secret;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(callgrade::app::serve_with_store(
        listener,
        config,
        store.clone(),
        Registry::new(),
        shutdown.clone(),
    ));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let found = loop {
        let body: Value = client
            .get(format!("{base}/api/v1/search"))
            .query(&[("q", "цена")])
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = body["items"].as_array().cloned().unwrap_or_default();
        if !items.is_empty() || started.elapsed() > Duration::from_secs(10) {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(found.len(), 1, "the earlier transcript is found");
    assert_eq!(found[0]["call_id"], call.to_string());
    assert_eq!(marked(&found[0]), "Какие у вас [цены]?");
    // Done once: nothing is left for a later start.
    assert_eq!(store.index_pending_transcripts("", 8).await.unwrap(), None);
    // A transcript indexed by an older version of the stemming is indexed again, its rows
    // replaced, not added to.
    sqlx::query("UPDATE search_indexed SET version = 0")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(
        store.index_pending_transcripts("", 8).await.unwrap(),
        Some((call.to_string(), 1))
    );
    assert_eq!(
        count(&store, "SELECT COUNT(*) FROM search_segments").await,
        1
    );
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

/// Two calls that start in the same second, whose ids even pick the same slot: each call's
/// hits stay together and in order, the same on both backends, and a second transcription
/// keeps the call's place.
async fn calls_of_one_second_keep_their_hits_together_and_in_order(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let first = CallId(uuid::Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0042,
    ));
    let second = CallId(uuid::Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0001_0042,
    ));
    for call in [first, second] {
        sqlx::query(
            "INSERT INTO calls (id, manager_id, started_at, size_bytes, sha256, storage_key, \
             status, created_at, updated_at) VALUES ($1, 'm-1', $2, 1, $1, 'k', 'done', 0, 0)",
        )
        .bind(call.to_string())
        .bind(1_772_445_600_500_i64)
        .execute(app.store.pool())
        .await
        .unwrap();
    }
    let lines = [("client", "цена один"), ("manager", "цена два")];
    for call in [first, second] {
        let t = transcript(call, "ru", &lines);
        app.store.save_transcript(&t, None).await.unwrap();
    }
    let at = |call: CallId, s: u32| format!("{call}:{}", json!(f64::from(s)));
    // The later indexed call took the next slot of the second: it comes first.
    let expected = vec![at(second, 0), at(second, 5), at(first, 0), at(first, 5)];
    assert_eq!(hits(&app, &app.admin, "q=цены").await, expected);
    let t = transcript(first, "ru", &lines);
    app.store.save_transcript(&t, None).await.unwrap();
    assert_eq!(hits(&app, &app.admin, "q=цены").await, expected);
    app.stop().await;
}

/// A search for several terms (words, or a word and a manager) finds the same hits whichever
/// way it runs: on PostgreSQL a window of the newest rows walked in order, then the index for
/// what lies below it, here with windows from one row to all of them; and before the start-up
/// step has marked the index current, when a manager is checked on the rows instead of through
/// the manager's term.
async fn several_terms_find_the_same_hits_by_every_plan(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let Calls { ru, en, .. } = three_calls(&app).await;
    let more = upload_at(&app, "m-2", "2026-03-04T09:00:00Z").await;
    let lines = [
        ("manager", "Цена и скидка на год."),
        ("client", "Цена высокая, скидка маленькая."),
        ("manager", "Скидка только сегодня."),
        ("client", "Хорошо, цена понятна, price is fine."),
    ];
    app.store
        .save_transcript(&transcript(more, "ru", &lines), None)
        .await
        .unwrap();
    let fresh = Store::connect(&app.config.database_url).await.unwrap();
    assert!(app.store.search_index_current(), "marked at start-up");
    assert!(!fresh.search_index_current());
    let m1: callgrade::domain::ManagerId = "m-1".parse().unwrap();
    let m2: callgrade::domain::ManagerId = "m-2".parse().unwrap();
    let of = |m: &callgrade::domain::ManagerId| SearchFilter {
        manager_id: Some(m.clone()),
        ..Default::default()
    };
    let cases: Vec<(&str, SearchFilter)> = vec![
        ("цена скидка", SearchFilter::default()),
        ("цена", of(&m2)),
        ("цена", of(&m1)),
        ("скидка", of(&m2)),
        ("цена price", of(&m2)),
        ("pricing", of(&m1)),
        (
            "цена скидка",
            SearchFilter {
                speaker: Some(Speaker::Client),
                from: Some(1_772_582_400_000), // 2026-03-04
                ..Default::default()
            },
        ),
    ];
    let mut found_any = 0;
    for (words, filter) in cases {
        let query = callgrade::search::Query::parse(words).unwrap();
        for limit in [1, 2, 50] {
            // Every page, following the cursor, as one list.
            let all = |store: Store| {
                let filter = filter.clone();
                let terms = query.terms().to_vec();
                async move {
                    let mut ids = Vec::new();
                    let mut page = SearchFilter { limit, ..filter };
                    loop {
                        let hits = store.search_segments(&terms, &page).await.unwrap();
                        ids.extend(hits.iter().map(|h| (h.call_id, h.segment)));
                        match hits.last() {
                            Some(h) if hits.len() as i64 == limit => page.after = Some(h.cursor()),
                            _ => break ids,
                        }
                    }
                }
            };
            let expected = all(app.store.clone()).await;
            for window in [1, 2, 3, 20, 40, 60, 1000] {
                let store = app.store.clone().with_search_window(window);
                assert_eq!(
                    all(store).await,
                    expected,
                    "{words} {filter:?} window {window}"
                );
            }
            assert_eq!(
                all(fresh.clone()).await,
                expected,
                "{words} {filter:?} rows checked"
            );
            found_any += expected.len();
        }
    }
    assert!(found_any > 20, "the cases find something: {found_any}");
    // What each case must find, by hand: "цена" by m-2 is in `en` (once) and `more` (3 lines).
    let query = callgrade::search::Query::parse("цена").unwrap();
    let calls: Vec<CallId> = app
        .store
        .search_segments(
            query.terms(),
            &SearchFilter {
                limit: 50,
                ..of(&m2)
            },
        )
        .await
        .unwrap()
        .iter()
        .map(|h| h.call_id)
        .collect();
    assert_eq!(calls, vec![en, more, more, more]);
    let hits = app
        .store
        .search_segments(
            query.terms(),
            &SearchFilter {
                limit: 50,
                ..of(&m1)
            },
        )
        .await
        .unwrap();
    assert!(
        hits.iter().all(|h| h.call_id == ru) && hits.len() == 2,
        "{hits:?}"
    );
    fresh.close().await;
    app.stop().await;
}

on_both_backends!(
    several_terms_find_the_same_hits_by_every_plan,
    calls_of_one_second_keep_their_hits_together_and_in_order,
    word_forms_and_filters_find_the_same_segments_on_both_backends,
    each_role_finds_only_the_calls_it_may_see,
    transcripts_saved_before_the_index_are_found_after_the_upgrade,
    the_search_page_shows_marked_hits_that_open_the_call_at_their_time,
);

#[tokio::test]
async fn a_query_without_words_or_with_a_bad_page_is_refused_with_a_reason() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    for (query, says) in [
        ("", "no words"),
        ("q=", "no words"),
        ("q= ?! …", "no words"),
        ("q=цена&limit=0", "limit"),
        ("q=цена&limit=101", "limit"),
        ("q=цена&cursor=nonsense", "cursor"),
        ("q=цена&from=March", "from"),
    ] {
        let (status, body) = search(&app, &app.admin, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "bad_request", "{query}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{query}: {message}");
    }
    app.stop().await;
}

/// A link's `href` attribute as the page writes it (the template escapes `/`).
fn href(path: &str) -> String {
    format!("href=\"{}\"", path.replace('/', "&#x2f;"))
}

async fn the_search_page_shows_marked_hits_that_open_the_call_at_their_time(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let Calls { ru, en, .. } = three_calls(&app).await;
    // A segment whose text looks like markup: shown as text.
    let tricky = upload_at(&app, "m-1", "2026-03-03T10:00:00Z").await;
    app.store
        .save_transcript(
            &transcript(
                tricky,
                "ru",
                &[("manager", "<b>цена</b> & <script>x</script>")],
            ),
            None,
        )
        .await
        .unwrap();
    create_user(&app, "mila", Role::Manager, Some("m-1")).await;
    create_user(&app, "head", Role::Head, None).await;

    // Not signed in: to the sign-in page and back.
    let r = get(&app, "/search?q=x", "").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // No words yet: the form and a hint, no results.
    let head = sign_in(&app, "head").await;
    let page = get(&app, "/search", &head).await.text().await.unwrap();
    assert!(page.contains("name=\"q\""), "{page}");
    assert!(page.contains("name=\"manager\""), "{page}");
    assert!(!page.contains("class=\"hits\""), "{page}");

    // Hits: each opens its call at its second, the matched words marked and the text escaped.
    let r = get(&app, "/search?q=%D1%86%D0%B5%D0%BD%D1%83", &head).await; // "цену"
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(page.contains(&href(&format!("/calls/{en}?t=10"))), "{page}");
    assert!(page.contains(&href(&format!("/calls/{ru}?t=5"))), "{page}");
    assert!(page.contains("Еще вопрос про <mark>цену</mark>."), "{page}");
    assert!(page.contains("<mark>Цены</mark> у конкурентов"), "{page}");
    assert!(
        page.contains("&lt;b&gt;<mark>цена</mark>&lt;&#x2f;b&gt; &amp; &lt;script&gt;"),
        "{page}"
    );
    assert!(!page.contains("<script>x"), "{page}");
    assert!(page.contains("0:10"), "the hit's time: {page}");

    // A manager finds only their own calls, whatever the form asks, and has no manager field.
    let mila = sign_in(&app, "mila").await;
    let page = get(
        &app,
        "/search?q=%D1%86%D0%B5%D0%BD%D1%83&manager=m-2",
        &mila,
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(page.contains(&href(&format!("/calls/{ru}?t=5"))), "{page}");
    assert!(
        !page.contains(&en.to_string()),
        "a colleague's call leaked: {page}"
    );
    assert!(!page.contains("name=\"manager\""), "{page}");

    // Nothing found: a message; a query of no words: the reason, in Russian for a Russian reader.
    let page = get(&app, "/search?q=zebra", &head)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Nothing found."), "{page}");
    let r = browser()
        .get(app.url("/search?q=%21%21"))
        .header(COOKIE, &head)
        .header(ACCEPT_LANGUAGE, "ru")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let page = r.text().await.unwrap();
    assert!(page.contains("Введите хотя бы одно слово"), "{page}");
    assert!(page.contains("Поиск по звонкам"), "{page}");
    app.stop().await;
}

/// In Chromium: a Russian word typed in one form finds the call that says it in another, and
/// its hit opens the call page playing from that moment.
#[tokio::test]
async fn a_word_form_found_in_chromium_opens_the_call_at_the_hit() {
    let Some(driver) = crate::browser::driver_process() else {
        return;
    };
    crate::browser::with_browser(&driver, "ru-RU", search_in_chromium).await;
}

async fn search_in_chromium(b: WebDriver) {
    use crate::browser::{js_f64, wait_for};
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let recording = std::fs::read(shared("calls/pub04_ru.mp3")).unwrap();
    let r = app
        .upload(&app.admin, "m-zaitsev", recording, "pub04_ru.mp3")
        .await;
    assert_eq!(r.status(), 202);
    let id: CallId = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.store
        .save_transcript(&corpus_transcript(id, "pub04_ru"), None)
        .await
        .unwrap();
    app.store
        .set_call_status(id, CallStatus::Done, None)
        .await
        .unwrap();
    create_user(&app, "qa", Role::Qa, None).await;
    crate::browser::sign_in(&b, &app, "qa").await;

    // The call says "Завтра такой цены не будет" at 29.5 s; the search is for "цена".
    b.goto(app.url("/search")).await.unwrap();
    b.find(By::Id("q"))
        .await
        .unwrap()
        .send_keys("цена")
        .await
        .unwrap();
    b.find(By::Css("form[role=search] button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for(&b, "the hit", |_, s| s.contains("<mark>цены</mark>")).await;
    b.find(By::Css("a.hit"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let at = format!("/calls/{id}?t=29");
    wait_for(&b, "the call page at the hit", |url, _| url.ends_with(&at)).await;
    let started = Instant::now();
    loop {
        let now = js_f64(&b, "return document.getElementById('audio').currentTime").await;
        if (now - 29.0).abs() <= 0.5 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the audio is at {now} s, not at the hit"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
}
