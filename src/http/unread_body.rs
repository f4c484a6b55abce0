//! Answers sent before the request body was read end the connection honestly.
//!
//! A handler may answer before it has read the whole body: 413 on an upload over the limit,
//! 401/403 before the form is touched, 400 on a broken form, 415. hyper then cannot reuse the
//! connection (unread body bytes are still on the wire), yet without a `Connection: close`
//! header the client's pool keeps the socket and its next request dies with "incomplete
//! message" (issue 18). So such an answer says `Connection: close`, and what is left of the
//! body is read and thrown away for a bounded time and size ("lingering close", as nginx and
//! Apache do), so the client reads the answer instead of a connection reset. Decision 0011.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{Request, State};
use axum::http::header::CONNECTION;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use http_body_util::BodyExt;
use tower_http::timeout::{TimeoutBody, TimeoutError};

/// Most bytes of an unread body thrown away after the answer.
const LINGER_BYTES: usize = 16 << 20;
/// Longest time spent throwing an unread body away.
const LINGER_TIME: Duration = Duration::from_secs(5);

/// Middleware: marks answers given before the body ended with `Connection: close` and lingers.
pub async fn close_if_body_unread(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    if body.is_end_stream() {
        return next.run(Request::from_parts(parts, body)).await;
    }
    let shared = Arc::new(Mutex::new(body));
    let watched = Body::new(Watched(shared.clone()));
    let mut response = next.run(Request::from_parts(parts, watched)).await;
    let rest = std::mem::take(&mut *lock(&shared));
    if !rest.is_end_stream() {
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        // Not work that matters: bounded in time and bytes, and dropping it only closes sooner.
        tokio::spawn(linger(rest));
    }
    response
}

/// Middleware: a request body that stalls for longer than `limit` between chunks ends with an
/// error (the handler answers, the connection closes) instead of holding the server.
pub async fn body_timeout(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    // A request without a body passes as it is: `TimeoutBody` does not forward
    // `is_end_stream`, so wrapping an empty body made `close_if_body_unread` see an unread
    // body and close every connection after one answer (no keep-alive at all).
    if req.body().is_end_stream() {
        return next.run(req).await;
    }
    next.run(req.map(|body| Body::new(TimeoutBody::new(limit, body))))
        .await
}

/// Whether `error` (or what caused it) is the body timeout of [`body_timeout`].
pub fn timed_out(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Reads and drops what is left of a body, within [`LINGER_BYTES`] and [`LINGER_TIME`].
async fn linger(mut body: Body) {
    let drain = async {
        let mut read = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                read += data.len();
                if read > LINGER_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

fn lock(body: &Mutex<Body>) -> MutexGuard<'_, Body> {
    // A handler that panicked mid-read leaves a body we may still drop or drain.
    body.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The request body as the handler sees it; the middleware keeps a way back to what is unread.
struct Watched(Arc<Mutex<Body>>);

impl HttpBody for Watched {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut *lock(&self.0)).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        lock(&self.0).is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        lock(&self.0).size_hint()
    }
}
