//! Slow and idle clients cannot take the server down: headers and bodies have timeouts, idle
//! connections are closed, and connections beyond the cap get 503 (issue 14, item 2).

use std::time::{Duration, Instant};

use callgrade::jobs::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{spawn_app_with, Backend, TestApp};

/// Reads what the server sends until it closes the connection (EOF or reset), or `None` if it
/// is still open after `within`.
async fn until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, read_all).await.ok()?;
    Some(String::from_utf8_lossy(&seen).into_owned())
}

/// An authenticated call list, timed.
async fn timed_list(app: &TestApp) -> (u16, Duration) {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let r = client
        .get(app.url("/api/v1/calls"))
        .bearer_auth(&app.admin)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the real request is answered");
    (r.status().as_u16(), started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_idle_connections_and_a_stalled_upload_do_not_starve_a_real_request() {
    callgrade::http::server::raise_open_files_limit();
    let app = spawn_app_with(Backend::Sqlite, Registry::new(), |c| {
        c.http.header_timeout_seconds = 2;
        c.http.body_timeout_seconds = 2;
    })
    .await;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for i in 0..2000 {
        let mut s = TcpStream::connect(&addr).await.expect("connect");
        if i % 2 == 1 {
            // Half-open: a request line and one header, then nothing.
            s.write_all(b"GET /api/v1/calls HTTP/1.1\r\nhost: x\r\n")
                .await
                .expect("partial headers");
        }
        idle.push(s);
    }
    // An upload that sends its headers and a little of its body, then stalls.
    let mut slow = TcpStream::connect(&addr).await.expect("connect");
    let head = format!(
        "POST /api/v1/calls HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\n\
         content-type: multipart/form-data; boundary=XX\r\ncontent-length: 1000000\r\n\r\n\
         --XX\r\ncontent-disposition: form-data; name=\"file\"; filename=\"a.wav\"\r\n\r\nRIFF",
        app.admin
    );
    slow.write_all(head.as_bytes()).await.expect("slow upload");

    for _ in 0..5 {
        let (status, took) = timed_list(&app).await;
        assert_eq!(status, 200);
        assert!(
            took < Duration::from_secs(1),
            "a real request waited {took:?} behind idle connections"
        );
    }

    // Every idle connection is closed within the header timeout (plus slack for 2,000 closes).
    let started = Instant::now();
    let mut still_open = 0;
    let closes = idle
        .iter_mut()
        .map(|s| until_closed(s, Duration::from_secs(8)));
    for closed in futures::future::join_all(closes).await {
        if closed.is_none() {
            still_open += 1;
        }
    }
    assert_eq!(
        still_open,
        0,
        "idle connections still open after {:?}",
        started.elapsed()
    );
    let answer = until_closed(&mut slow, Duration::from_secs(8))
        .await
        .expect("the stalled upload's connection is closed");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "a stalled body is answered 408 or dropped: {answer}"
    );
    assert_eq!(
        crate::helpers::count(&app.store, "SELECT COUNT(*) FROM calls").await,
        0
    );
    assert_eq!(timed_list(&app).await.0, 200, "the server is still fine");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_get_503_and_the_server_recovers() {
    let app = spawn_app_with(Backend::Sqlite, Registry::new(), |c| {
        c.http.max_connections = 20;
    })
    .await;
    let addr = app.base_url.trim_start_matches("http://").to_string();
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(TcpStream::connect(&addr).await.expect("connect"));
    }
    // Give the server a moment to accept all 20 into their slots.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut extra = TcpStream::connect(&addr).await.expect("connect");
    let _ = extra
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
        .await;
    let answer = until_closed(&mut extra, Duration::from_secs(3))
        .await
        .expect("the extra connection is answered and closed");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("\"code\":\"unavailable\""), "{answer}");
    drop(held);
    // The server notices the closed connections and gives their slots back; until then a new
    // request may still get the 503.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let answer = reqwest::Client::new()
            .get(app.url("/api/v1/calls"))
            .bearer_auth(&app.admin)
            .send()
            .await;
        match answer {
            Ok(r) if r.status() == 200 => break,
            Ok(r) => assert_eq!(r.status(), 503, "only the cap may refuse"),
            Err(e) => panic!("a refused request must still get an answer: {e:?}"),
        }
        assert!(Instant::now() < deadline, "slots are given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}
