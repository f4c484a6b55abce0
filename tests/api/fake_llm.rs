//! A stand-in OpenAI-compatible server on 127.0.0.1: the only thing outside the product that
//! the scoring tests replace. It answers from a script, then with a valid answer built from
//! the request (every criterion, quotes copied from the transcript it was sent).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use futures::StreamExt;
use serde_json::{json, Value};

/// One scripted reply.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A valid answer built from the request, every criterion answered `answer`.
    Valid { answer: u8 },
    /// A valid answer whose quotes were never said.
    InventedQuotes,
    /// A valid answer in shape whose texts are loops a small model writes: every text when
    /// `all`, else the first criterion's rationale, one improvement and the next step.
    Degenerate { all: bool },
    /// This text as the assistant's content (finish_reason `stop`).
    Content(String),
    /// This text, cut off (finish_reason `length`).
    Cut(String),
    /// An HTTP error: status, Retry-After header, body.
    Status(u16, Option<&'static str>, String),
    /// Wait, then reply.
    Slow(Duration, Box<Reply>),
    /// 200 and its headers at once, the start of a body, then nothing for this long.
    StallAfterHeaders(Duration),
    /// A 200 whose body is this many bytes.
    Huge(usize),
}

#[derive(Default)]
struct Inner {
    script: VecDeque<Reply>,
    requests: Vec<(Instant, Value)>,
    fallback: Option<Reply>,
}

/// The running fake server.
#[derive(Clone)]
pub struct FakeLlm {
    /// Base URL for `llm.base_url`.
    pub url: String,
    inner: Arc<Mutex<Inner>>,
}

impl FakeLlm {
    /// Starts a server answering `script` in order, then valid answers.
    pub async fn start(script: Vec<Reply>) -> Self {
        let inner = Arc::new(Mutex::new(Inner {
            script: script.into(),
            ..Inner::default()
        }));
        let app = Router::new()
            .route("/v1/chat/completions", post(chat))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/v1"),
            inner,
        }
    }

    /// Replies with `reply` whenever the script is used up.
    pub fn always(&self, reply: Reply) {
        self.inner.lock().unwrap().fallback = Some(reply);
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.inner
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// When each request arrived.
    pub fn arrivals(&self) -> Vec<Instant> {
        self.inner
            .lock()
            .unwrap()
            .requests
            .iter()
            .map(|(t, _)| *t)
            .collect()
    }
}

async fn chat(
    State(inner): State<Arc<Mutex<Inner>>>,
    _headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push((Instant::now(), request.clone()));
        inner
            .script
            .pop_front()
            .or_else(|| inner.fallback.clone())
            .unwrap_or(Reply::Valid { answer: 2 })
    };
    respond(reply, &request).await
}

fn respond(reply: Reply, request: &Value) -> futures::future::BoxFuture<'static, Response> {
    let request = request.clone();
    Box::pin(async move {
        match reply {
            Reply::Valid { answer } => completion(&valid_answer(&request, answer, false), "stop"),
            Reply::InventedQuotes => completion(&valid_answer(&request, 2, true), "stop"),
            Reply::Degenerate { all } => completion(&degenerate_answer(&request, all), "stop"),
            Reply::Content(text) => completion(&text, "stop"),
            Reply::Cut(text) => completion(&text, "length"),
            Reply::Status(status, retry_after, body) => {
                let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
                if let Some(after) = retry_after {
                    response
                        .headers_mut()
                        .insert("retry-after", after.parse().unwrap());
                }
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                response
            }
            Reply::StallAfterHeaders(stall) => {
                let body = futures::stream::once(async {
                    Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"{\"id\": "))
                })
                .chain(futures::stream::once(async move {
                    tokio::time::sleep(stall).await;
                    Ok(bytes::Bytes::from_static(b"null}"))
                }));
                let mut response = axum::body::Body::from_stream(body).into_response();
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                response
            }
            Reply::Huge(size) => {
                let mut response = vec![b' '; size].into_response();
                response
                    .headers_mut()
                    .insert("content-type", "application/json".parse().unwrap());
                response
            }
            Reply::Slow(delay, then) => {
                tokio::time::sleep(delay).await;
                respond(*then, &request).await
            }
        }
    })
}

fn completion(content: &str, finish: &str) -> Response {
    Json(json!({
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 0,
        "model": "fake",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
    }))
    .into_response()
}

/// The user message of a request.
pub fn user_prompt(request: &Value) -> String {
    request["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The system message of a request.
pub fn system_prompt(request: &Value) -> String {
    request["messages"][0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The transcript lines between the fences of the prompt.
pub fn transcript_lines(prompt: &str) -> Vec<String> {
    let Some(start) = prompt.find("TRANSCRIPT START\n") else {
        return vec![];
    };
    let rest = &prompt[start + "TRANSCRIPT START\n".len()..];
    let end = rest.find("\nTRANSCRIPT END").unwrap_or(rest.len());
    rest[..end].lines().map(str::to_string).collect()
}

/// The criterion ids the prompt lists.
pub fn criterion_ids(prompt: &str) -> Vec<String> {
    prompt
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("- id: "))
        .map(|l| l.split_whitespace().next().unwrap_or_default().to_string())
        .collect()
}

fn valid_answer(request: &Value, answer: u8, invent: bool) -> String {
    let prompt = user_prompt(request);
    let lines = transcript_lines(&prompt);
    let manager: Vec<String> = lines
        .iter()
        .filter_map(|l| l.split_once("] M: ").map(|(_, t)| t.to_string()))
        // A word or two proves nothing and callgrade rightly refuses to verify it: quote
        // lines long enough to be evidence.
        .filter(|t| t.split_whitespace().count() >= 3)
        .collect();
    let quote = |i: usize| -> String {
        if invent {
            return "We offer a free lifetime warranty on every single unit".into();
        }
        let said = manager
            .get(i % manager.len().max(1))
            .cloned()
            .unwrap_or_default();
        said.split_whitespace()
            .take(8)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut criteria = serde_json::Map::new();
    for (i, id) in criterion_ids(&prompt).iter().enumerate() {
        criteria.insert(
            id.clone(),
            json!({"answer": answer, "rationale": format!("Judged {id} from the call."), "quotes": [quote(i)]}),
        );
    }
    json!({
        "criteria": criteria,
        "strengths": [{"text": "Clear introduction", "quote": quote(0)}, {"text": "Kept the call focused", "quote": quote(1)}],
        "improvements": [{"text": "Ask about the budget earlier", "quote": quote(2), "better_phrasing": "What budget have you set aside for this?"}],
        "next_steps": [{"action": "Send the proposal", "owner": "manager", "due_in_days": 2}],
    })
    .to_string()
}

fn degenerate_answer(request: &Value, all: bool) -> String {
    let mut v: Value = serde_json::from_str(&valid_answer(request, 2, false)).unwrap();
    let loops = [
        "1.1.1.1.1.1.1.1.1.1.1.1",
        "the the the the the the",
        "rationale",
    ];
    let criteria = v["criteria"].as_object_mut().unwrap();
    for (i, (_, c)) in criteria.iter_mut().enumerate() {
        if all || i == 0 {
            c["rationale"] = json!(loops[i % loops.len()]);
        }
        if all {
            c["quotes"] = json!(["2.2.2.2.2.2.2.2"]);
        }
    }
    v["improvements"] = json!([
        {"text": "ok ok ok ok ok ok", "quote": "1.1.1.1.1.1", "better_phrasing": "better_phrasing"},
        {"text": "Ask about the budget earlier", "better_phrasing": "What budget have you set aside?"},
    ]);
    v["next_steps"] = json!([{"action": "action", "owner": "manager", "due_in_days": 2}]);
    if all {
        v["strengths"] = json!([{"text": "...", "quote": "..."}]);
        v["improvements"] =
            json!([{"text": "хорошо хорошо хорошо хорошо", "better_phrasing": "string"}]);
    }
    v.to_string()
}
