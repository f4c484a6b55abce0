//! The LLM client: any OpenAI-compatible server (OpenAI, vLLM, llama.cpp's server, Ollama)
//! through async-openai.
//!
//! Structured output is asked for in the strongest form the server accepts: `response_format`
//! `json_schema`, then `json_object`, then plain text from which the JSON is extracted. A
//! server that refuses a form is remembered for the life of the client, so the probing costs
//! one request. Retries live in one place, [`retry`]; errors say whether a job should give up
//! at once (auth, quota, a refused request) and why.

pub mod json;
pub mod retry;

use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

use async_openai::config::OpenAIConfig;
use async_openai::error::OpenAIError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Where and how to reach the LLM.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LlmConfig {
    /// Base URL of the OpenAI-compatible API, e.g. `https://api.openai.com/v1` or
    /// `http://127.0.0.1:8080/v1`. Empty: scoring is off and calls wait in `scoring`.
    pub base_url: String,
    /// API key (sent as a bearer token; local servers usually ignore it).
    pub api_key: crate::config::Secret,
    /// Model name, e.g. `gpt-4o-mini`, `qwen2.5:7b-instruct`.
    pub model: String,
    /// Sampling temperature; 0 makes repeated scoring of a call as stable as the server allows.
    pub temperature: f32,
    /// Limit on one request, seconds.
    pub timeout_seconds: u64,
    /// Most tokens in one answer.
    pub max_tokens: u32,
    /// Retries of 429, 5xx, timeouts and connection failures.
    pub max_retries: u32,
    /// First retry delay, milliseconds (doubled per retry, with jitter).
    pub retry_base_ms: u64,
    /// Longest retry delay (also caps `Retry-After`), milliseconds.
    pub retry_max_ms: u64,
    /// The model's context window in tokens: prompts are fitted into it, splitting long calls.
    pub context_tokens: u32,
    /// `auto` (json_schema, falling back to json_object, then text), or one of them.
    pub response_format: String,
    /// Ask a llama.cpp server to emit JSON without free whitespace (its `x-guidance`
    /// extension to the schema). Small models otherwise pad with newlines until the token
    /// limit cuts them off. Other servers may refuse the extension: leave it off for them.
    pub compact_json: bool,
}

impl Default for LlmConfig {
    fn default() -> Self {
        Self {
            base_url: String::new(),
            api_key: crate::config::Secret::default(),
            model: String::new(),
            temperature: 0.0,
            timeout_seconds: 180,
            max_tokens: 2048,
            max_retries: 4,
            retry_base_ms: 1000,
            retry_max_ms: 60_000,
            context_tokens: 8192,
            response_format: "auto".into(),
            compact_json: false,
        }
    }
}

/// How the answer's structure is requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseMode {
    /// `response_format: {type: json_schema}`: the server constrains the answer to the schema.
    JsonSchema,
    /// `response_format: {type: json_object}`: valid JSON of any shape.
    JsonObject,
    /// No `response_format`; the JSON is found in the text.
    Text,
}

impl ResponseMode {
    /// The name used in config and provenance.
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::JsonSchema => "json_schema",
            ResponseMode::JsonObject => "json_object",
            ResponseMode::Text => "text",
        }
    }

    fn from_u8(v: u8) -> Self {
        match v {
            0 => ResponseMode::JsonSchema,
            1 => ResponseMode::JsonObject,
            _ => ResponseMode::Text,
        }
    }

    fn weaker(self) -> Option<Self> {
        match self {
            ResponseMode::JsonSchema => Some(ResponseMode::JsonObject),
            ResponseMode::JsonObject => Some(ResponseMode::Text),
            ResponseMode::Text => None,
        }
    }
}

/// Why a request to the LLM failed.
#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// No server is configured.
    #[error("no LLM is configured: set llm.base_url and llm.model (CALLGRADE_LLM_BASE_URL, CALLGRADE_LLM_MODEL)")]
    NotConfigured,
    /// The key was refused.
    #[error("the LLM server refused the API key ({0}): check llm.api_key")]
    Auth(String),
    /// The account has no quota left.
    #[error("the LLM account has no quota left ({0}): top it up or use another key")]
    Quota(String),
    /// The server refused the request (unknown model, bad parameter).
    #[error("the LLM server refused the request: {0}")]
    Rejected(String),
    /// The server stayed busy, failing or silent through every retry.
    #[error("the LLM server is unavailable after {retries} retries: {message}")]
    Unavailable {
        /// Retries made.
        retries: u32,
        /// The last failure.
        message: String,
    },
    /// The answer was not a chat completion.
    #[error("the LLM server sent an answer callgrade cannot read: {0}")]
    Protocol(String),
}

/// One chat answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The assistant's text.
    pub content: String,
    /// `stop`, `length`, ... as the server said.
    pub finish_reason: Option<String>,
    /// Tokens in the prompt (server's count, or an estimate when it gave none).
    pub prompt_tokens: u64,
    /// Tokens in the answer.
    pub completion_tokens: u64,
    /// The structured-output mode used.
    pub mode: ResponseMode,
    /// Time waiting for the server, including retries.
    pub elapsed: Duration,
}

impl Reply {
    /// Whether the answer was cut off at the token limit.
    pub fn truncated(&self) -> bool {
        self.finish_reason.as_deref() == Some("length")
    }
}

/// A client for one configured server and model.
pub struct LlmClient {
    client: async_openai::Client<OpenAIConfig>,
    config: LlmConfig,
    mode: AtomicU8,
    host: String,
}

impl LlmClient {
    /// A client for `config`; fails when no server or model is configured.
    pub fn new(config: &LlmConfig) -> Result<Self, LlmError> {
        if config.base_url.trim().is_empty() || config.model.trim().is_empty() {
            return Err(LlmError::NotConfigured);
        }
        let mode = match config.response_format.as_str() {
            "auto" | "json_schema" => ResponseMode::JsonSchema,
            "json_object" => ResponseMode::JsonObject,
            "text" => ResponseMode::Text,
            other => {
                return Err(LlmError::Rejected(format!(
                    "llm.response_format {other:?} must be auto, json_schema, json_object or text"
                )))
            }
        };
        // reqwest 0.13 is built without a bundled crypto provider; use the ring one the rest
        // of the binary already carries. A second install (tests) is a no-op.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest013::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| LlmError::Rejected(format!("cannot build the HTTP client: {e}")))?;
        let policy = retry::RetryPolicy {
            max_retries: config.max_retries,
            base: Duration::from_millis(config.retry_base_ms.max(1)),
            max: Duration::from_millis(config.retry_max_ms.max(1)),
            timeout: Duration::from_secs(config.timeout_seconds.max(1)),
        };
        let openai = OpenAIConfig::new()
            .with_api_base(config.base_url.trim_end_matches('/'))
            .with_api_key(if config.api_key.is_empty() {
                "none"
            } else {
                config.api_key.expose()
            });
        let client = async_openai::Client::with_config(openai)
            .with_http_service(retry::service(http, policy));
        let host = reqwest013::Url::parse(&config.base_url)
            .ok()
            .and_then(|u| {
                u.host_str().map(|h| match u.port() {
                    Some(p) => format!("{h}:{p}"),
                    None => h.to_string(),
                })
            })
            .unwrap_or_else(|| config.base_url.clone());
        Ok(Self {
            client,
            config: config.clone(),
            mode: AtomicU8::new(mode as u8),
            host,
        })
    }

    /// The configured model name.
    pub fn model(&self) -> &str {
        &self.config.model
    }

    /// The server's host (and port), for provenance.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The settings.
    pub fn config(&self) -> &LlmConfig {
        &self.config
    }

    /// Asks for an answer shaped by `schema` (a JSON Schema object named `name`).
    pub async fn complete_json(
        &self,
        system: &str,
        user: &str,
        name: &str,
        schema: &Value,
    ) -> Result<Reply, LlmError> {
        let started = Instant::now();
        let mut mode = ResponseMode::from_u8(self.mode.load(Ordering::Relaxed));
        loop {
            let mut body = json!({
                "model": self.config.model,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
                "temperature": self.config.temperature,
                "max_tokens": self.config.max_tokens,
                "stream": false,
            });
            match mode {
                ResponseMode::JsonSchema => {
                    let mut schema = schema.clone();
                    if self.config.compact_json {
                        schema["x-guidance"] = json!({"whitespace_flexible": false});
                    }
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": {"name": name, "strict": false, "schema": schema},
                    })
                }
                ResponseMode::JsonObject => {
                    body["response_format"] = json!({"type": "json_object"})
                }
                ResponseMode::Text => {}
            }
            let result: Result<Value, OpenAIError> = self.client.chat().create_byot(body).await;
            match result {
                Ok(value) => {
                    return read_reply(value, mode, started.elapsed(), system.len() + user.len())
                }
                Err(e) => {
                    let refusable = refuses_format(&e);
                    let err = self.classify(e);
                    match mode.weaker() {
                        Some(weaker) if refusable && self.config.response_format == "auto" => {
                            tracing::warn!(from = mode.as_str(), to = weaker.as_str(), error = %err, "LLM server refused this form of structured output; falling back");
                            mode = weaker;
                            self.mode.store(mode as u8, Ordering::Relaxed);
                        }
                        _ => return Err(err),
                    }
                }
            }
        }
    }

    fn classify(&self, e: OpenAIError) -> LlmError {
        let retries = self.config.max_retries;
        match e {
            OpenAIError::ApiError(api) => {
                let status = api.status_code.as_u16();
                let code = api.api_error.code.clone().unwrap_or_default();
                let kind = api.api_error.r#type.clone().unwrap_or_default();
                let message = format!("HTTP {status}: {}", truncate(&api.api_error.message, 300));
                if code == "insufficient_quota" || kind == "insufficient_quota" {
                    LlmError::Quota(message)
                } else if status == 401 || status == 403 {
                    LlmError::Auth(message)
                } else if status == 429 || status >= 500 {
                    LlmError::Unavailable { retries, message }
                } else {
                    LlmError::Rejected(message)
                }
            }
            OpenAIError::Reqwest(e) => LlmError::Unavailable {
                retries,
                message: e.to_string(),
            },
            OpenAIError::Boxed(e) if e.is::<retry::AnswerTooLarge>() => {
                LlmError::Protocol(e.to_string())
            }
            OpenAIError::Boxed(e) => LlmError::Unavailable {
                retries,
                message: e.to_string(),
            },
            OpenAIError::JSONDeserialize(e, body) => {
                LlmError::Protocol(format!("{e}: {}", truncate(&body, 200)))
            }
            other => LlmError::Protocol(other.to_string()),
        }
    }
}

/// Whether the server turned down the request's form of structured output: a 400/404/415/
/// 422/501, or a 500 whose message is about the schema or format (llama-cpp-python answers a
/// json_schema request with 500). Busy servers, timeouts and other 500s are not refusals.
fn refuses_format(e: &OpenAIError) -> bool {
    let OpenAIError::ApiError(api) = e else {
        return false;
    };
    match api.status_code.as_u16() {
        400 | 404 | 415 | 422 | 501 => true,
        500 => {
            let m = api.api_error.message.to_lowercase();
            ["schema", "response_format", "grammar", "json"]
                .iter()
                .any(|w| m.contains(w))
        }
        _ => false,
    }
}

fn read_reply(
    value: Value,
    mode: ResponseMode,
    elapsed: Duration,
    prompt_chars: usize,
) -> Result<Reply, LlmError> {
    #[derive(Deserialize)]
    struct Completion {
        choices: Vec<Choice>,
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct Choice {
        message: Message,
        finish_reason: Option<String>,
    }
    #[derive(Deserialize)]
    struct Message {
        content: Option<String>,
    }
    #[derive(Deserialize)]
    struct Usage {
        prompt_tokens: Option<u64>,
        completion_tokens: Option<u64>,
    }
    let c: Completion = serde_json::from_value(value)
        .map_err(|e| LlmError::Protocol(format!("not a chat completion: {e}")))?;
    let choice = c
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| LlmError::Protocol("the answer has no choices".into()))?;
    let content = choice.message.content.unwrap_or_default();
    let usage = c.usage;
    Ok(Reply {
        prompt_tokens: usage
            .as_ref()
            .and_then(|u| u.prompt_tokens)
            .unwrap_or_else(|| estimate_tokens_len(prompt_chars)),
        completion_tokens: usage
            .as_ref()
            .and_then(|u| u.completion_tokens)
            .unwrap_or_else(|| estimate_tokens_len(content.len())),
        content,
        finish_reason: choice.finish_reason,
        mode,
        elapsed,
    })
}

/// A rough token count for budgeting that errs high: about 4 bytes a token for ASCII text and
/// 2.2 bytes for the rest (Cyrillic takes 2 bytes a letter, and small-vocabulary tokenizers
/// split Russian words finely: SmolLM2's gives 2.3 bytes a token on our Russian prompts).
pub fn estimate_tokens(text: &str) -> u64 {
    let ascii = text.bytes().filter(u8::is_ascii).count() as u64;
    let other = text.len() as u64 - ascii;
    ascii.div_ceil(4) + (other * 5).div_ceil(11)
}

fn estimate_tokens_len(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(3)
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(max).collect::<String>())
    }
}
