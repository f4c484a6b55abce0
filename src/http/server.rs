//! The HTTP server loop: accepts connections and serves the router, with the limits that keep
//! slow or idle clients from taking the server down (issue 14, item 2).
//!
//! `axum::serve` sets no timer, so hyper's header-read timeout never fires there: a client
//! that opens a connection and sends nothing holds a socket for ever, and enough of them run
//! the process out of file descriptors. Here every connection gets
//! - a header-read timeout (`http.header_timeout_seconds`), which hyper also applies while a
//!   kept-alive connection waits for its next request, so idle connections are closed too;
//! - a body timeout between body chunks (`http.body_timeout_seconds`, a router layer);
//! - a place under a cap (`http.max_connections`): beyond it the connection is answered 503 with
//!   `Retry-After` and closed, instead of the listener failing with "too many open files".

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::HttpConfig;

/// How long shutdown waits for requests in flight before it drops their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The answer to a connection over the cap (its body is the API's error shape).
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 92\r\n\r\n\
{\"error\":{\"code\":\"unavailable\",\"message\":\"the server has too many open connections; retry\"}}";

/// Raises this process's open-files limit to its hard limit, so the connection cap (not the
/// kernel) decides when to refuse; returns the new soft limit.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(e) => {
            warn!(error = %e, "could not raise the open-files limit");
            None
        }
    }
}

/// Serves `router` on `listener` until `shutdown` fires, then finishes the requests in flight
/// (at most [`SHUTDOWN_GRACE`]) and returns.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &HttpConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let files = raise_open_files_limit();
    if let Some(files) = files {
        // Each connection is one descriptor; the database, recordings and logs need some too.
        if limits.max_connections as u64 + 256 > files {
            warn!(
                max_connections = limits.max_connections,
                open_files = files,
                "http.max_connections is close to the open-files limit: raise the hard limit (ulimit -Hn)"
            );
        }
    }
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .keep_alive(true);
    let graceful = GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait, go on.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tokio::spawn(refuse_busy(stream.0));
            continue;
        };
        let (stream, peer) = stream;
        let _ = stream.set_nodelay(true);
        // Each request learns the client's address (sign-in limits per address).
        let router = router.clone();
        let service = TowerToHyperService::new(tower::service_fn(
            move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                tower::ServiceExt::oneshot(router.clone(), req)
            },
        ));
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                // Timeouts, resets and clients that leave mid-request: theirs, not ours.
                debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {
            info!("shutdown: connections still open after the grace period are dropped");
        }
    }
    Ok(())
}

/// Answers 503 to a connection over the cap and closes it, within two seconds. The answer
/// waits for the request's head (at most a second): an answer that comes before the request
/// looks to a client like a broken connection. After it, what the client sends is read and
/// dropped until it closes its side, because closing with unread bytes resets the connection
/// and the client could lose the answer.
async fn refuse_busy(mut stream: TcpStream) {
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        stream.write_all(BUSY).await?;
        stream.shutdown().await?;
        let mut sink = [0u8; 4096];
        while stream.read(&mut sink).await? > 0 {}
        std::io::Result::Ok(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_busy_answer_declares_its_exact_length() {
        let text = std::str::from_utf8(super::BUSY).expect("ascii");
        let (head, body) = text.split_once("\r\n\r\n").expect("head and body");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let json: serde_json::Value = serde_json::from_str(body).expect("json body");
        assert_eq!(json["error"]["code"], "unavailable");
    }
}
