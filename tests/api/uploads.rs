//! Uploads: streamed to disk, durable, deduplicated, and refused clearly when wrong.

use callgrade::jobs::Registry;

use crate::helpers::{count, spawn_app, spawn_app_with, unique_bytes, Backend};
use crate::on_both_backends;

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

async fn an_upload_is_stored_under_a_server_name_and_queued(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let bytes = unique_bytes();
    let r = app
        .upload(&app.admin, "m-1", bytes.clone(), "../../x.mp3")
        .await;
    assert_eq!(r.status(), 202);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["status"], "queued");
    assert_eq!(body["duplicate"], false);
    let id = body["id"].as_str().expect("id");
    assert_eq!(body["url"], format!("/api/v1/calls/{id}"));

    let files = files_under(app.data_dir.path());
    assert_eq!(files.len(), 1, "{files:?}");
    let stored = &files[0];
    assert!(
        stored.starts_with(app.recordings_dir()),
        "stored inside the data folder: {stored:?}"
    );
    assert!(
        stored.to_string_lossy().ends_with(&format!("{id}.audio")),
        "server-generated name: {stored:?}"
    );
    assert_eq!(std::fs::read(stored).expect("read"), bytes);
    assert!(!app
        .data_dir
        .path()
        .parent()
        .expect("parent")
        .join("x.mp3")
        .exists());

    let (status, call) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}"))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        call["original_filename"], "../../x.mp3",
        "the client's name is kept only as metadata"
    );
    assert_eq!(call["latest_job"]["kind"], "transcribe");
    assert_eq!(call["latest_job"]["state"], "queued");
    assert_eq!(call["size_bytes"], bytes.len());
    // No `speakers` field: the roles rule decides who speaks first on one channel.
    assert_eq!(call["first_speaker"], serde_json::Value::Null);

    // `speakers` says who speaks first on a one-channel recording; it is kept with the call.
    for (given, stored) in [
        ("client,manager", serde_json::json!("client")),
        ("manager,client", serde_json::json!("manager")),
        ("auto", serde_json::Value::Null),
    ] {
        let r = app
            .upload_with(
                &app.admin,
                unique_bytes(),
                "mono.wav",
                &[("manager_id", "m-1"), ("speakers", given)],
            )
            .await;
        assert_eq!(r.status(), 202, "{given}");
        let body: serde_json::Value = r.json().await.expect("json");
        let url = body["url"].as_str().expect("url").to_string();
        let (_, call) = app.get_json(&app.admin, &url).await;
        assert_eq!(call["first_speaker"], stored, "{given}: {call}");
    }
    app.stop().await;
}

async fn the_same_file_for_the_same_manager_is_a_duplicate(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let bytes = unique_bytes();
    let first: serde_json::Value = app
        .upload(&app.admin, "m-1", bytes.clone(), "a.mp3")
        .await
        .json()
        .await
        .expect("json");
    let again = app.upload(&app.admin, "m-1", bytes.clone(), "b.mp3").await;
    assert_eq!(again.status(), 200);
    let again: serde_json::Value = again.json().await.expect("json");
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["id"], first["id"]);
    assert_eq!(
        count(&app.store, "SELECT COUNT(*) FROM jobs").await,
        1,
        "no second job queued"
    );
    assert_eq!(
        files_under(&app.recordings_dir()).len(),
        1,
        "the second copy is not kept"
    );

    let other = app.upload(&app.admin, "m-2", bytes, "a.mp3").await;
    assert_eq!(
        other.status(),
        202,
        "another manager's identical file is a new call"
    );
    app.stop().await;
}

async fn an_upload_over_the_limit_is_refused_with_413_and_leaves_nothing(backend: Backend) {
    let app = spawn_app_with(backend, Registry::new(), |c| c.max_upload_bytes = 10_000).await;
    let r = app
        .upload(&app.admin, "m-1", vec![1u8; 20_000], "big.mp3")
        .await;
    assert_eq!(r.status(), 413);
    let body: serde_json::Value = r.json().await.expect("json");
    assert_eq!(body["error"]["code"], "payload_too_large");
    // Far over the limit: refused before the body is read. The server answers 413 and closes
    // the connection, so a client still sending may see the connection drop instead of the
    // answer; either way nothing may be stored.
    let form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![1u8; 3_000_000]).file_name("huge.mp3"),
        )
        .text("manager_id", "m-1");
    let sent = app
        .client
        .post(app.url("/api/v1/calls"))
        .bearer_auth(&app.admin)
        .multipart(form)
        .send()
        .await;
    if let Ok(r) = sent {
        assert_eq!(r.status(), 413);
    }
    assert_eq!(count(&app.store, "SELECT COUNT(*) FROM calls").await, 0);
    assert!(
        files_under(app.data_dir.path()).is_empty(),
        "no partial files left"
    );
    // The server is still fine.
    assert_eq!(
        app.upload(&app.admin, "m-1", crate::helpers::wav_of(2_000), "ok.mp3")
            .await
            .status(),
        202
    );
    app.stop().await;
}

/// Sends a refused request and then a good upload on the same client (so on the same pooled
/// connection when the server keeps it), 50 times: the refusal must never break the next request.
async fn refusals_keep_the_next_request_working(
    app: &crate::helpers::TestApp,
    expected: u16,
    refused: impl Fn() -> reqwest::multipart::Form,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .expect("client");
    for round in 0..50 {
        let r = client
            .post(app.url("/api/v1/calls"))
            .bearer_auth(&app.admin)
            .multipart(refused())
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the refused request failed: {e:?}"));
        assert_eq!(r.status(), expected, "round {round}");
        let body: serde_json::Value = r.json().await.expect("json error body");
        assert!(body["error"]["message"].is_string(), "round {round}");
        let form = reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(unique_bytes()).file_name("ok.wav"),
            )
            .text("manager_id", "m-1");
        let r = client
            .post(app.url("/api/v1/calls"))
            .bearer_auth(&app.admin)
            .multipart(form)
            .send()
            .await
            .unwrap_or_else(|e| panic!("round {round}: the upload after a refusal failed: {e:?}"));
        assert_eq!(r.status(), 202, "round {round}");
    }
    assert_eq!(count(&app.store, "SELECT COUNT(*) FROM calls").await, 50);
}

async fn after_a_413_the_same_connection_uploads_the_next_file(backend: Backend) {
    let app = spawn_app_with(backend, Registry::new(), |c| c.max_upload_bytes = 10_000).await;
    refusals_keep_the_next_request_working(&app, 413, || {
        reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(vec![1u8; 200_000]).file_name("big.wav"),
            )
            .text("manager_id", "m-1")
    })
    .await;
    app.stop().await;
}

async fn after_a_415_the_same_connection_uploads_the_next_file(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    refusals_keep_the_next_request_working(&app, 415, || {
        reqwest::multipart::Form::new()
            .part(
                "file",
                reqwest::multipart::Part::bytes(b"just some notes, not audio\n".repeat(4000))
                    .file_name("notes.mp3"),
            )
            .text("manager_id", "m-1")
    })
    .await;
    app.stop().await;
}

async fn after_a_bad_form_the_same_connection_uploads_the_next_file(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    // The unknown field comes first, so the server refuses before it reaches the file.
    refusals_keep_the_next_request_working(&app, 400, || {
        reqwest::multipart::Form::new()
            .text("colour", "red")
            .text("manager_id", "m-1")
            .part(
                "file",
                reqwest::multipart::Part::bytes(vec![7u8; 300_000]).file_name("a.wav"),
            )
    })
    .await;
    app.stop().await;
}

async fn the_frameworks_own_rejections_have_the_error_shape_too(backend: Backend) {
    let app = spawn_app_with(backend, Registry::new(), |c| c.max_upload_bytes = 10_000).await;
    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.expect("request");
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body: serde_json::Value = r.json().await.unwrap_or_default();
        (status, kind, body)
    };
    let c = &app.client;
    let token = app.admin.as_str();
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "JSON syntax",
            c.post(app.url("/api/v1/tokens"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body("{\"name\": "),
            400,
            "bad_request",
        ),
        (
            "JSON types",
            c.post(app.url("/api/v1/tokens"))
                .bearer_auth(token)
                .json(&serde_json::json!({"name": 5, "role": []})),
            422,
            "invalid",
        ),
        (
            "query decoding",
            c.get(app.url("/api/v1/calls?limit=many"))
                .bearer_auth(token),
            400,
            "bad_request",
        ),
        (
            "missing boundary",
            c.post(app.url("/api/v1/calls"))
                .bearer_auth(token)
                .header("content-type", "multipart/form-data")
                .body("x"),
            400,
            "bad_request",
        ),
        (
            "method",
            c.patch(app.url("/api/v1/calls")).bearer_auth(token),
            405,
            "method_not_allowed",
        ),
        (
            // Outside /api/ an unknown path is the web app's HTML 404 page (tests/api/web.rs).
            "unknown route",
            c.get(app.url("/api/v1/no/such/page")).bearer_auth(token),
            404,
            "not_found",
        ),
    ];
    for (what, req, status, code) in cases {
        let (got, kind, body) = send(req).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(kind.starts_with("application/json"), "{what}: {kind}");
        assert_eq!(body["error"]["code"], code, "{what}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{what}: {body}"
        );
    }
    app.stop().await;
}

async fn bad_forms_get_400_with_a_clear_message(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let cases: Vec<(reqwest::multipart::Form, &str)> = vec![
        (
            reqwest::multipart::Form::new().text("manager_id", "m-1"),
            "no 'file' field",
        ),
        (
            reqwest::multipart::Form::new().part(
                "file",
                reqwest::multipart::Part::bytes(unique_bytes()).file_name("a.mp3"),
            ),
            "manager_id is required",
        ),
        (
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(unique_bytes()).file_name("a.mp3"),
                )
                .text("manager_id", "m-1")
                .text("started_at", "yesterday"),
            "started_at: not an RFC 3339 time",
        ),
        (
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(unique_bytes()).file_name("a.mp3"),
                )
                .text("manager_id", "m-1")
                .text("direction", "sideways"),
            "direction: unknown Direction",
        ),
        (
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(unique_bytes()).file_name("a.mp3"),
                )
                .text("manager_id", "m-1")
                .text("channels", "left,right"),
            "channels",
        ),
        (
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(unique_bytes()).file_name("a.mp3"),
                )
                .text("manager_id", "m-1")
                .text("speakers", "manager,manager"),
            "speakers",
        ),
        (
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(unique_bytes()).file_name("a.mp3"),
                )
                .text("manager_id", "m-1")
                .text("speakers", "manager"),
            "speakers: must be auto, manager,client",
        ),
        (
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(unique_bytes()).file_name("a.mp3"),
                )
                .text("manager_id", "m-1")
                .text("colour", "red"),
            "unknown form field \"colour\"",
        ),
        (
            reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(vec![]).file_name("a.mp3"),
                )
                .text("manager_id", "m-1"),
            "empty",
        ),
    ];
    for (form, expected) in cases {
        let r = app
            .client
            .post(app.url("/api/v1/calls"))
            .bearer_auth(&app.admin)
            .multipart(form)
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 400, "expected 400 for {expected}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "bad_request");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(
            message.contains(expected),
            "{message:?} should mention {expected:?}"
        );
    }
    // Malformed multipart: a body that does not match its boundary.
    let r = app
        .client
        .post(app.url("/api/v1/calls"))
        .bearer_auth(&app.admin)
        .header("content-type", "multipart/form-data; boundary=XYZ")
        .body("--XYZ\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nabc")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400);
    let body: serde_json::Value = r.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .expect("message")
            .contains("malformed multipart"),
        "{body}"
    );
    let r = app
        .client
        .post(app.url("/api/v1/calls"))
        .bearer_auth(&app.admin)
        .body("not multipart")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 400, "no multipart content type");
    assert_eq!(count(&app.store, "SELECT COUNT(*) FROM calls").await, 0);
    assert!(
        files_under(app.data_dir.path()).is_empty(),
        "nothing left behind"
    );
    app.stop().await;
}

async fn content_that_is_not_audio_is_refused_with_415(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let corpus =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata/calls/bad");
    for (file, expected) in [
        ("text_renamed.mp3", "looks like text"),
        ("random_bytes.wav", "not a supported audio recording"),
    ] {
        let bytes = std::fs::read(corpus.join(file)).expect("bad file");
        let r = app.upload(&app.admin, "m-1", bytes, file).await;
        assert_eq!(r.status(), 415, "{file}");
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["error"]["code"], "unsupported_media_type");
        let message = body["error"]["message"].as_str().expect("message");
        assert!(message.contains(expected), "{file}: {message}");
    }
    // A real call named like text is accepted: the content decides, not the name.
    let mp3 = std::fs::read(corpus.join("../pub05_en.mp3")).expect("call");
    assert_eq!(
        app.upload(&app.admin, "m-1", mp3, "notes.txt")
            .await
            .status(),
        202
    );
    assert_eq!(count(&app.store, "SELECT COUNT(*) FROM calls").await, 1);
    app.stop().await;
}

async fn listing_pages_through_calls_with_a_cursor_and_filters(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(
            app.upload_call(if i % 2 == 0 { "m-1" } else { "m-2" })
                .await
                .to_string(),
        );
    }
    let mut seen = vec![];
    let mut path = "/api/v1/calls?limit=2".to_string();
    loop {
        let (status, page) = app.get_json(&app.admin, &path).await;
        assert_eq!(status, 200);
        for c in page["items"].as_array().expect("items") {
            seen.push(c["id"].as_str().expect("id").to_string());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/calls?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    ids.reverse();
    assert_eq!(seen, ids, "newest first, each call once");
    let (_, page) = app
        .get_json(&app.admin, "/api/v1/calls?manager_id=m-2")
        .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 2);
    let (_, page) = app.get_json(&app.admin, "/api/v1/calls?status=done").await;
    assert_eq!(page["items"].as_array().expect("items").len(), 0);
    let (_, page) = app
        .get_json(
            &app.admin,
            "/api/v1/calls?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
        )
        .await;
    assert_eq!(page["items"].as_array().expect("items").len(), 0);
    let (status, body) = app.get_json(&app.admin, "/api/v1/calls?limit=0").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app.get_json(&app.admin, "/api/v1/calls?from=soon").await;
    assert_eq!(status, 400);
    app.stop().await;
}

async fn deleting_a_call_removes_its_recording_and_jobs(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let id = app.upload_call("m-1").await;
    assert_eq!(files_under(&app.recordings_dir()).len(), 1);
    let r = app
        .client
        .delete(app.url(&format!("/api/v1/calls/{id}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), 204);
    assert!(files_under(&app.recordings_dir()).is_empty());
    assert_eq!(count(&app.store, "SELECT COUNT(*) FROM jobs").await, 0);
    let (status, _) = app
        .get_json(&app.admin, &format!("/api/v1/calls/{id}"))
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

async fn errors_share_one_json_shape_and_unknown_paths_are_404(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let (status, body) = app.get_json(&app.admin, "/api/v1/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = app.get_json(&app.admin, "/api/v1/calls/not-a-uuid").await;
    assert_eq!(status, 404);
    assert!(body["error"]["message"].is_string());
    let (status, body) = app.get_json("cgt_wrong", "/api/v1/calls").await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized");
    app.stop().await;
}

on_both_backends!(
    leftovers_of_a_crash_are_swept_after_the_grace_period_and_files_are_private,
    an_upload_is_stored_under_a_server_name_and_queued,
    content_that_is_not_audio_is_refused_with_415,
    the_same_file_for_the_same_manager_is_a_duplicate,
    an_upload_over_the_limit_is_refused_with_413_and_leaves_nothing,
    after_a_413_the_same_connection_uploads_the_next_file,
    after_a_415_the_same_connection_uploads_the_next_file,
    after_a_bad_form_the_same_connection_uploads_the_next_file,
    bad_forms_get_400_with_a_clear_message,
    listing_pages_through_calls_with_a_cursor_and_filters,
    deleting_a_call_removes_its_recording_and_jobs,
    errors_share_one_json_shape_and_unknown_paths_are_404,
    the_frameworks_own_rejections_have_the_error_shape_too,
);

#[tokio::test]
async fn a_broken_database_gives_503_and_500_without_internals() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    app.store.close().await;
    let r = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 503);
    let (status, body) = app.get_json(&app.admin, "/api/v1/calls").await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["code"], "internal");
    let message = body["error"]["message"].as_str().expect("message");
    assert!(
        !message.to_lowercase().contains("pool") && !message.contains("sqlx"),
        "{message}"
    );
    assert!(message.contains("x-request-id"), "{message}");
    let r = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), 200, "the process itself is alive");
    app.shutdown.cancel();
}

async fn leftovers_of_a_crash_are_swept_after_the_grace_period_and_files_are_private(
    backend: Backend,
) {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(backend, Registry::new()).await;
    let id = app.upload_call("m-1").await;
    let stored = files_under(&app.recordings_dir());
    assert_eq!(stored.len(), 1);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode(&stored[0]),
        0o600,
        "recordings are readable by the service only"
    );
    assert_eq!(mode(stored[0].parent().unwrap()), 0o700);
    assert_eq!(mode(&app.recordings_dir().join("tmp")), 0o700);

    // What a kill -9 leaves: an unfinished upload, and a recording whose call was never
    // committed; one of each old, one of each fresh (maybe an upload in progress).
    let month = stored[0].parent().unwrap().to_path_buf();
    let tmp = app.recordings_dir().join("tmp");
    let old_part = tmp.join("old.part");
    let new_part = tmp.join("new.part");
    let old_orphan = month.join(format!("{}.audio", callgrade::domain::CallId::new()));
    let new_orphan = month.join(format!("{}.audio", callgrade::domain::CallId::new()));
    let long_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for (path, old) in [
        (&old_part, true),
        (&new_part, false),
        (&old_orphan, true),
        (&new_orphan, false),
    ] {
        let f = std::fs::File::create(path).unwrap();
        if old {
            f.set_modified(long_ago).unwrap();
        }
    }
    // More old orphans than one batch of the sweep's call lookups.
    let many: Vec<_> = (0..1200)
        .map(|_| month.join(format!("{}.audio", callgrade::domain::CallId::new())))
        .collect();
    for path in &many {
        std::fs::File::create(path)
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
    }
    // The recording of a committed call is kept however old it is.
    std::fs::File::options()
        .write(true)
        .open(&stored[0])
        .unwrap()
        .set_modified(long_ago)
        .unwrap();

    let recordings = callgrade::recordings::Recordings::new(app.recordings_dir());
    let swept = recordings
        .sweep(&app.store, callgrade::app::SWEEP_GRACE)
        .await
        .unwrap();
    assert_eq!((swept.parts, swept.orphans), (1, 1 + many.len()));
    assert!(!old_part.exists() && !old_orphan.exists());
    assert!(many.iter().all(|p| !p.exists()));
    assert!(
        new_part.exists() && new_orphan.exists(),
        "fresh files may be uploads in progress"
    );
    assert!(stored[0].exists(), "call {id} keeps its recording");
    app.stop().await;
}
