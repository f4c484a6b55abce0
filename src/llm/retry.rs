//! The one retry layer between callgrade and the LLM server.
//!
//! async-openai sends every request through this tower service. It retries what can pass on
//! its own: 429 (waiting as long as `Retry-After` says, else exponential backoff with jitter),
//! 5xx, timeouts and connection failures, up to `max_retries` times. It never retries a 429
//! whose body says `insufficient_quota`, nor any other 4xx: waiting does not fix a missing
//! payment or a wrong key. Nothing above it retries HTTP again (the job fails with the reason).

use std::time::Duration;

use async_openai::error::OpenAIError;
use async_openai::middleware::HttpRequestFactory;
use reqwest013 as reqwest;

/// How often and how long to retry.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First backoff delay.
    pub base: Duration,
    /// Longest single delay (also caps `Retry-After`).
    pub max: Duration,
    /// Limit on one attempt, from sending to the last byte of the answer.
    pub timeout: Duration,
}

/// An attempt ran past the timeout.
#[derive(Debug, thiserror::Error)]
#[error("the LLM server did not answer within {0:?}")]
pub struct TimedOut(pub Duration);

/// The tower service: reqwest with [`RetryPolicy`].
pub fn service(
    http: reqwest::Client,
    policy: RetryPolicy,
) -> impl tower::Service<
    HttpRequestFactory,
    Response = reqwest::Response,
    Error = OpenAIError,
    Future = impl Send + 'static,
> + Clone
       + Send
       + Sync
       + 'static {
    tower::service_fn(move |factory: HttpRequestFactory| {
        let http = http.clone();
        let policy = policy.clone();
        async move { send(&http, &policy, &factory).await }
    })
}

async fn send(
    http: &reqwest::Client,
    policy: &RetryPolicy,
    factory: &HttpRequestFactory,
) -> Result<reqwest::Response, OpenAIError> {
    let mut attempt = 0u32;
    loop {
        let request = factory.build().await?;
        let last = attempt >= policy.max_retries;
        // The limit covers the whole exchange: a server that sends its headers and then stalls
        // must not hold a scoring slot for ever.
        let outcome = tokio::time::timeout(policy.timeout, exchange(http, request)).await;
        let delay = match outcome {
            Err(_) if last => return Err(OpenAIError::Boxed(Box::new(TimedOut(policy.timeout)))),
            Err(_) => backoff(policy, attempt),
            Ok(Err(Failed::TooLarge)) => {
                return Err(OpenAIError::Boxed(Box::new(AnswerTooLarge(
                    MAX_ANSWER_BYTES,
                ))))
            }
            Ok(Err(Failed::Http(e))) if last || !(e.is_connect() || e.is_timeout()) => {
                return Err(OpenAIError::Reqwest(e))
            }
            Ok(Err(Failed::Http(_))) => backoff(policy, attempt),
            Ok(Ok((response, body))) => {
                let status = response.status();
                if status.as_u16() != 429 && !status.is_server_error() {
                    return Ok(response);
                }
                // The body tells a quota error (final) from a rate limit (passing).
                let quota = status.as_u16() == 429 && body.contains("insufficient_quota");
                if last || quota {
                    return Ok(response);
                }
                tracing::warn!(%status, attempt = attempt + 1, "LLM server busy or failing; retrying");
                match retry_after(response.headers()) {
                    Some(d) => d.min(policy.max),
                    None => backoff(policy, attempt),
                }
            }
        };
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Most bytes of one answer read from the LLM server. A scorecard answer is a few kB; a server
/// that sends more is broken, and its answer would only be held in memory to be refused.
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// An answer was larger than [`MAX_ANSWER_BYTES`].
#[derive(Debug, thiserror::Error)]
#[error("the LLM server's answer is larger than {0} bytes")]
pub struct AnswerTooLarge(pub usize);

enum Failed {
    Http(reqwest::Error),
    TooLarge,
}

/// Sends `request` and reads the whole answer (at most [`MAX_ANSWER_BYTES`]); the response is
/// rebuilt from the bytes so async-openai reads it as usual.
async fn exchange(
    http: &reqwest::Client,
    request: reqwest::Request,
) -> Result<(reqwest::Response, String), Failed> {
    let mut response = http.execute(request).await.map_err(Failed::Http)?;
    let status = response.status();
    let headers = response.headers().clone();
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(Failed::Http)? {
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(Failed::TooLarge);
        }
        bytes.extend_from_slice(&chunk);
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let mut rebuilt = axum::http::Response::new(bytes);
    *rebuilt.status_mut() = status;
    *rebuilt.headers_mut() = headers;
    Ok((reqwest::Response::from(rebuilt), text))
}

/// The delay before retry `attempt + 1` (`attempt` counts from 0): the queue's formula
/// ([`crate::jobs::backoff::backoff_delay`]), one for the whole program.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    crate::jobs::backoff::backoff_delay(attempt.saturating_add(1), policy.base, policy.max)
}

/// `Retry-After` in seconds (the HTTP-date form is rare from LLM servers and is ignored).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let seconds: f64 = value.trim().parse().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_are_read_and_dates_ignored() {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(reqwest::header::RETRY_AFTER, "2".parse().expect("header"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2026 07:28:00 GMT".parse().expect("header"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn backoff_grows_and_stays_under_the_cap() {
        let p = RetryPolicy {
            max_retries: 5,
            base: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            timeout: Duration::from_secs(1),
        };
        for attempt in 0..10 {
            let d = backoff(&p, attempt);
            assert!(d <= Duration::from_millis(1000), "{d:?}");
            assert!(d >= Duration::from_millis(75), "{d:?}");
        }
        for _ in 0..100 {
            let first = backoff(&p, 0);
            assert!(
                (Duration::from_millis(75)..=Duration::from_millis(125)).contains(&first),
                "{first:?}"
            );
            let third = backoff(&p, 2);
            assert!(
                (Duration::from_millis(300)..=Duration::from_millis(500)).contains(&third),
                "{third:?}"
            );
        }
    }
}
