//! Layered configuration: built-in defaults <- `callgrade.toml` <- `CALLGRADE_*` environment.
//!
//! Nested settings use a double underscore in the environment, e.g.
//! `CALLGRADE_QUEUE__LEASE_SECONDS=60`. `config.default.toml` at the repository root documents
//! every setting with its default; a test keeps it in step with [`Config::default`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

use crate::analytics::AnalyticsConfig;
use crate::audio::DecodeLimits;
use crate::domain::Language;
use crate::llm::LlmConfig;
use crate::models::ModelDir;
use crate::pipeline::Stage;
use crate::redact::RedactionConfig;
use crate::scoring::ScoringConfig;
use crate::transcribe::guards::Thresholds;
use crate::transcript::metrics::MetricsConfig;

/// Everything callgrade can be told, with defaults for a single machine.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://path` (created if missing) or `postgres://...`.
    pub database_url: String,
    /// Address the HTTP API listens on.
    pub listen: SocketAddr,
    /// Where recordings and other files live.
    pub data_dir: PathBuf,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// Log format: `pretty` or `json`.
    pub log_format: LogFormat,
    /// Connection limits of the HTTP server.
    pub http: HttpConfig,
    /// Job queue and worker settings.
    pub queue: QueueConfig,
    /// Decoding and speech recognition.
    pub transcribe: TranscribeConfig,
    /// Conversation metrics computed from transcripts.
    pub metrics: MetricsConfig,
    /// The OpenAI-compatible LLM server that scores calls.
    pub llm: LlmConfig,
    /// Scorecards and when a call is scored.
    pub scoring: ScoringConfig,
    /// Sales analytics: the funnel and the response SLA.
    pub analytics: AnalyticsConfig,
    /// The web app: sessions and cookies.
    pub web: WebConfig,
    /// Personal data taken out of transcripts: which kinds, and for whom.
    pub redaction: RedactionConfig,
}

/// The web app's sessions and cookies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebConfig {
    /// A session ends after this many minutes without a request.
    pub session_idle_minutes: u64,
    /// A session ends this many hours after sign-in, however busy.
    pub session_max_hours: u64,
    /// Session cookies with `Secure` and the `__Host-` prefix: `true` behind HTTPS, `false` for
    /// plain-HTTP access (localhost); unset, they follow the request (`X-Forwarded-Proto:
    /// https` from the TLS proxy).
    pub secure_cookies: Option<bool>,
    /// Failed sign-ins allowed per username, and per client address four times as many, in
    /// 15 minutes; then sign-in is refused (429) until the window passes.
    pub max_failed_logins: u32,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 8 * 60,
            session_max_hours: 7 * 24,
            secure_cookies: None,
            max_failed_logins: 5,
        }
    }
}

/// Decoding and speech-recognition settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TranscribeConfig {
    /// Installed model name (`base`, `tiny.en`, ...) or a path to a whisper.cpp ggml file.
    pub model: String,
    /// Folder of installed models; empty means the user's cache (`~/.cache/callgrade/models`).
    pub models_dir: PathBuf,
    /// Language of calls uploaded without one: `auto`, `ru` or `en`.
    pub language: Language,
    /// CPU threads per transcription; 0 means every core.
    pub threads: usize,
    /// Skip silence with Silero VAD before recognition.
    pub vad: bool,
    /// A Silero VAD model in ggml form; empty means the copy callgrade ships.
    pub vad_model: PathBuf,
    /// Words the recogniser should expect: product, company and people names.
    pub initial_prompt: String,
    /// Longest recording accepted, in seconds.
    pub max_duration_seconds: u64,
    /// Memory the decoder child may use, in MiB.
    pub decode_memory_mb: u64,
    /// Time the decoder child may take, in seconds.
    pub decode_timeout_seconds: u64,
    /// Segments whisper thinks hold no speech above this probability (and are unsure of) are dropped.
    pub no_speech_threshold: f32,
    /// Segments below this mean token log-probability count as unsure.
    pub logprob_threshold: f32,
    /// Segments below this mean token log-probability are always dropped.
    pub min_logprob: f32,
    /// Separate the voices of mono recordings (and of stereo files whose two channels are the
    /// same) when the models are installed (`callgrade models install diarization`).
    pub diarization: bool,
    /// Voices a separated recording has: 2 (the manager and the client) up to 4.
    pub speakers: usize,
}

impl Default for TranscribeConfig {
    fn default() -> Self {
        let t = Thresholds::default();
        Self {
            model: "base".into(),
            models_dir: PathBuf::new(),
            language: Language::Auto,
            threads: 0,
            vad: true,
            vad_model: PathBuf::new(),
            initial_prompt: String::new(),
            max_duration_seconds: 3 * 3600,
            decode_memory_mb: 2048,
            decode_timeout_seconds: 300,
            no_speech_threshold: t.no_speech,
            logprob_threshold: t.logprob,
            min_logprob: t.min_logprob,
            diarization: true,
            speakers: 2,
        }
    }
}

impl TranscribeConfig {
    /// Threads to give whisper.
    pub fn threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, usize::from)
        }
    }

    /// The hallucination guards' thresholds.
    pub fn thresholds(&self) -> Thresholds {
        Thresholds {
            no_speech: self.no_speech_threshold,
            logprob: self.logprob_threshold,
            min_logprob: self.min_logprob,
        }
    }

    /// Limits for the decoder child.
    pub fn decode_limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_duration: Duration::from_secs(self.max_duration_seconds.max(1)),
            memory_bytes: self.decode_memory_mb.max(64) * 1024 * 1024,
            timeout: Duration::from_secs(self.decode_timeout_seconds.max(1)),
            fault: None,
        }
    }

    /// The models folder.
    pub fn model_dir(&self) -> ModelDir {
        ModelDir::from_config(&self.models_dir)
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line, for log collectors.
    Json,
}

impl std::fmt::Debug for Config {
    // By hand so the database password never reaches a log line or a panic message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("data_dir", &self.data_dir)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("log_format", &self.log_format)
            .field("http", &self.http)
            .field("queue", &self.queue)
            .field("transcribe", &self.transcribe)
            .field("metrics", &self.metrics)
            .field("llm", &self.llm)
            .field("scoring", &self.scoring)
            .field("analytics", &self.analytics)
            .field("web", &self.web)
            .finish()
    }
}

/// A secret (an API key, a token): used as given, never shown by `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether none was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Self {
        Self(s.to_string())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

/// How long the HTTP server waits for slow clients, and how many it holds at once.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Time a client has to send a request's headers; also how long a kept-alive connection
    /// may sit idle between requests.
    pub header_timeout_seconds: u64,
    /// Longest pause while a client sends a request body (an upload may take long in total, but
    /// never stall for longer than this).
    pub body_timeout_seconds: u64,
    /// Open connections served at once; beyond it a new connection gets 503 and is closed.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_timeout_seconds: 10,
            body_timeout_seconds: 30,
            max_connections: 4096,
        }
    }
}

impl HttpConfig {
    /// [`Self::header_timeout_seconds`] as a duration (at least 1 s).
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_seconds.max(1))
    }

    /// [`Self::body_timeout_seconds`] as a duration (at least 1 s).
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_seconds.max(1))
    }
}

/// Queue and worker settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueueConfig {
    /// How long a claimed job is leased before another worker may take it over.
    pub lease_seconds: u64,
    /// How often an idle worker looks for work.
    pub poll_interval_ms: u64,
    /// Attempts before a job is marked dead.
    pub max_attempts: u32,
    /// First retry delay; doubled per attempt, with jitter.
    pub backoff_base_ms: u64,
    /// Longest retry delay.
    pub backoff_max_ms: u64,
    /// How long shutdown waits for running jobs before releasing them to other workers.
    pub shutdown_grace_seconds: u64,
    /// Jobs of one kind that may run at once in this process, by kind.
    pub concurrency: BTreeMap<String, usize>,
    /// Concurrency for kinds not listed above.
    pub default_concurrency: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: "sqlite://./data/callgrade.db".into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            max_upload_bytes: 500 * 1024 * 1024,
            log_format: LogFormat::Pretty,
            http: HttpConfig::default(),
            queue: QueueConfig::default(),
            transcribe: TranscribeConfig::default(),
            metrics: MetricsConfig::default(),
            llm: LlmConfig::default(),
            scoring: ScoringConfig::default(),
            analytics: AnalyticsConfig::default(),
            web: WebConfig::default(),
            redaction: RedactionConfig::default(),
        }
    }
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            lease_seconds: 30,
            poll_interval_ms: 500,
            max_attempts: 5,
            backoff_base_ms: 2_000,
            backoff_max_ms: 600_000,
            shutdown_grace_seconds: 20,
            // Transcription saturates both cores of a small machine on its own.
            concurrency: BTreeMap::from([
                (Stage::Transcribe.kind().to_string(), 1),
                (Stage::Score.kind().to_string(), 2),
            ]),
            default_concurrency: 2,
        }
    }
}

impl QueueConfig {
    /// The lease as a duration.
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.lease_seconds.max(1))
    }

    /// Concurrency for one job kind.
    pub fn concurrency_for(&self, kind: &str) -> usize {
        self.concurrency
            .get(kind)
            .copied()
            .unwrap_or(self.default_concurrency)
            .max(1)
    }
}

/// `CALLGRADE_*` variables that belong to the command-line client, not the service config.
const CLIENT_ENV_KEYS: &[&str] = &["token", "server", "config", "bench_postgres_url"];

/// `CALLGRADE_LLM_*` shorthands (single underscore) read as `llm.*`.
const LLM_ENV_SHORTHANDS: &[&str] = &["llm_base_url", "llm_api_key", "llm_model"];

/// A configuration that could not be loaded; the message names the bad setting.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file` (or `./callgrade.toml` if present), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                if !path.exists() {
                    return Err(ConfigError(format!(
                        "config file {} does not exist",
                        path.display()
                    )));
                }
                figment = figment.merge(Toml::file(path));
            }
            None => figment = figment.merge(Toml::file("callgrade.toml")),
        }
        figment = figment.merge(Env::prefixed("CALLGRADE_").split("__").filter(|key| {
            !CLIENT_ENV_KEYS
                .iter()
                .chain(LLM_ENV_SHORTHANDS)
                .any(|k| key.as_str().eq_ignore_ascii_case(k))
        }));
        // The short names every OpenAI-style tool documents: CALLGRADE_LLM_BASE_URL, ...
        figment = figment.merge(
            Env::prefixed("CALLGRADE_LLM_")
                .filter(|key| {
                    ["base_url", "api_key", "model"]
                        .iter()
                        .any(|k| key.as_str().eq_ignore_ascii_case(k))
                })
                .map(|key| format!("llm.{}", key.as_str().to_ascii_lowercase()).into()),
        );
        let config: Config = figment.extract().map_err(|e| ConfigError(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if !(self.database_url.starts_with("sqlite:") || self.database_url.starts_with("postgres"))
        {
            return Err(ConfigError(format!(
                "database_url must start with sqlite:// or postgres://, got {:?}",
                redact_url(&self.database_url)
            )));
        }
        if self.analytics.funnel_stages.len() < 2 {
            return Err(ConfigError(
                "analytics.funnel_stages needs at least two stages".into(),
            ));
        }
        if self.max_upload_bytes == 0 {
            return Err(ConfigError("max_upload_bytes must be positive".into()));
        }
        Ok(())
    }

    /// Where recordings are stored.
    pub fn recordings_dir(&self) -> PathBuf {
        self.data_dir.join("recordings")
    }
}

/// Hides a password in a database URL before it is logged or shown.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error by design.
mod tests {
    #[test]
    fn debug_output_shows_no_secrets() {
        let config = super::Config {
            database_url: "postgres://cg:hunter2@db/callgrade".into(),
            llm: crate::llm::LlmConfig {
                api_key: "sk-live-secret".into(),
                ..Default::default()
            },
            ..Default::default()
        };
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("sk-live-secret"),
            "{shown}"
        );
        assert!(shown.contains("postgres://cg:***@db/callgrade"), "{shown}");
    }

    use super::*;

    #[test]
    fn checked_in_default_file_matches_built_in_defaults() {
        let text = include_str!("../config.default.toml");
        let from_file: Config = Figment::from(Toml::string(text))
            .extract()
            .expect("config.default.toml parses");
        assert_eq!(from_file, Config::default());
    }

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact_url("sqlite://./x.db"), "sqlite://./x.db");
    }

    #[test]
    fn environment_overrides_nested_settings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CALLGRADE_LISTEN", "127.0.0.1:9999");
            jail.set_env("CALLGRADE_QUEUE__LEASE_SECONDS", "7");
            jail.set_env("CALLGRADE_QUEUE__CONCURRENCY__TRANSCRIBE", "3");
            // The client's variables may be set in the same shell as the server's.
            jail.set_env("CALLGRADE_TOKEN", "cgt_x");
            jail.set_env("CALLGRADE_SERVER", "http://127.0.0.1:1");
            let c = Config::load(None).expect("loads");
            assert_eq!(c.listen.port(), 9999);
            assert_eq!(c.queue.lease_seconds, 7);
            assert_eq!(c.queue.concurrency_for("transcribe"), 3);
            Ok(())
        });
    }

    #[test]
    fn llm_settings_take_the_usual_short_variable_names() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CALLGRADE_LLM_BASE_URL", "http://127.0.0.1:11434/v1");
            jail.set_env("CALLGRADE_LLM_API_KEY", "sk-test");
            jail.set_env("CALLGRADE_LLM_MODEL", "qwen2.5:7b-instruct");
            jail.set_env("CALLGRADE_LLM__MAX_TOKENS", "512");
            let c = Config::load(None).expect("loads");
            assert_eq!(c.llm.base_url, "http://127.0.0.1:11434/v1");
            assert_eq!(c.llm.api_key.expose(), "sk-test");
            assert_eq!(c.llm.model, "qwen2.5:7b-instruct");
            assert_eq!(c.llm.max_tokens, 512);
            Ok(())
        });
    }

    #[test]
    fn debug_output_never_shows_a_secret() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("CALLGRADE_LLM_API_KEY", "sk-very-secret");
            jail.set_env(
                "CALLGRADE_DATABASE_URL",
                "postgres://cg:db-very-secret@127.0.0.1:5432/cg",
            );
            let c = Config::load(None).expect("loads");
            for shown in [format!("{c:?}"), format!("{c:#?}"), format!("{:?}", c.llm)] {
                assert!(!shown.contains("very-secret"), "{shown}");
            }
            assert!(format!("{c:?}").contains("postgres://cg:***@127.0.0.1:5432/cg"));
            Ok(())
        });
    }

    #[test]
    fn unknown_settings_are_rejected_with_their_name() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("callgrade.toml", "listn = \"127.0.0.1:1\"")?;
            let err = Config::load(None).expect_err("typo must fail");
            assert!(err.to_string().contains("listn"), "{err}");
            Ok(())
        });
    }
}
