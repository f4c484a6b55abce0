//! The test harness: every test gets its own database (SQLite file or a fresh PostgreSQL
//! database), its own data folder and a real server on a random port.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use callgrade::config::{Config, QueueConfig};
use callgrade::domain::{CallId, Role};
use callgrade::http::tokens::create_token;
use callgrade::jobs::Registry;
use callgrade::store::Store;
use tempfile::TempDir;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The database engines every storage scenario runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs an async scenario once per backend, as separate tests named `<name>::sqlite` and
/// `<name>::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(()) = $crate::helpers::postgres_available() {
                        super::$name($crate::helpers::Backend::Postgres).await
                    }
                }
            }
        )+
    };
}

/// `Some(())` when PostgreSQL tests should run. Without `TEST_POSTGRES_URL` they are skipped
/// with a note, unless `TEST_REQUIRE_POSTGRES=1` (as `make test` sets), where that is a failure.
pub fn postgres_available() -> Option<()> {
    if std::env::var("TEST_POSTGRES_URL").is_ok() {
        return Some(());
    }
    assert!(
        std::env::var("TEST_REQUIRE_POSTGRES").as_deref() != Ok("1"),
        "TEST_REQUIRE_POSTGRES=1 but TEST_POSTGRES_URL is not set"
    );
    eprintln!("skipping: TEST_POSTGRES_URL not set (make test sets it)");
    None
}

/// A scratch database that lives as long as the value.
pub struct TestDb {
    pub url: String,
    _dir: Option<TempDir>,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = format!("sqlite://{}/test.db", dir.path().display());
                Self {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let admin = std::env::var("TEST_POSTGRES_URL").expect("TEST_POSTGRES_URL");
                let name = format!("cg_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::any::install_default_drivers();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .expect("connect to TEST_POSTGRES_URL");
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                Self {
                    url: format!("{base}/{name}"),
                    _dir: None,
                }
            }
        }
    }
}

/// A running callgrade server.
pub struct TestApp {
    pub base_url: String,
    pub store: Store,
    pub client: reqwest::Client,
    pub admin: String,
    pub config: Config,
    pub data_dir: TempDir,
    pub shutdown: CancellationToken,
    pub handle: Option<JoinHandle<()>>,
    pub _db: TestDb,
}

/// Queue settings that make tests quick.
pub fn fast_queue() -> QueueConfig {
    QueueConfig {
        lease_seconds: 2,
        poll_interval_ms: 50,
        backoff_base_ms: 20,
        backoff_max_ms: 200,
        shutdown_grace_seconds: 2,
        max_attempts: 3,
        ..QueueConfig::default()
    }
}

pub async fn spawn_app(backend: Backend, registry: Registry) -> TestApp {
    spawn_app_with(backend, registry, |_| {}).await
}

pub async fn spawn_app_with(
    backend: Backend,
    registry: Registry,
    tweak: impl FnOnce(&mut Config),
) -> TestApp {
    spawn_app_for(backend, tweak, |_| registry).await
}

/// A server whose job handlers are built from its final configuration (e.g. the real
/// transcription stage, which needs the data folder).
pub async fn spawn_app_for(
    backend: Backend,
    tweak: impl FnOnce(&mut Config),
    registry: impl FnOnce(&Config) -> Registry,
) -> TestApp {
    let db = TestDb::new(backend).await;
    let data_dir = tempfile::tempdir().expect("tempdir");
    let mut config = Config {
        database_url: db.url.clone(),
        data_dir: data_dir.path().to_path_buf(),
        queue: fast_queue(),
        ..Config::default()
    };
    tweak(&mut config);
    let registry = registry(&config);
    let store = Store::open(&config.database_url)
        .await
        .expect("open store")
        .redacting_search(config.redaction.in_index());
    callgrade::app::sync_rubrics(&store, &config)
        .await
        .expect("register scorecards");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn({
        let (config, store, shutdown) = (config.clone(), store.clone(), shutdown.clone());
        async move {
            let decoder = callgrade::audio::DecoderProgram::new(
                env!("CARGO_BIN_EXE_callgrade"),
                ["audio-decode-child"],
            );
            callgrade::app::serve_with_decoder(
                listener, config, store, registry, decoder, shutdown,
            )
            .await
            .expect("server runs");
        }
    });
    let admin = create_token(&store, "test admin", Role::Admin, None)
        .await
        .expect("token")
        .secret;
    TestApp {
        base_url: format!("http://{addr}"),
        store,
        client: reqwest::Client::new(),
        admin,
        config,
        data_dir,
        shutdown,
        handle: Some(handle),
        _db: db,
    }
}

impl TestApp {
    pub async fn token(&self, role: Role, manager: Option<&str>) -> String {
        create_token(&self.store, &format!("{role} test"), role, manager)
            .await
            .expect("token")
            .secret
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Uploads `bytes` as a call of `manager` with `token`.
    pub async fn upload(
        &self,
        token: &str,
        manager: &str,
        bytes: Vec<u8>,
        filename: &str,
    ) -> reqwest::Response {
        self.upload_with(token, bytes, filename, &[("manager_id", manager)])
            .await
    }

    /// Uploads `bytes` as `filename` with these form fields.
    pub async fn upload_with(
        &self,
        token: &str,
        bytes: Vec<u8>,
        filename: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new().part(
            "file",
            reqwest::multipart::Part::bytes(bytes).file_name(filename.to_string()),
        );
        for (k, v) in fields {
            form = form.text(k.to_string(), v.to_string());
        }
        self.client
            .post(self.url("/api/v1/calls"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// Uploads a distinct small file and returns the call id.
    pub async fn upload_call(&self, manager: &str) -> CallId {
        let r = self
            .upload(&self.admin, manager, unique_bytes(), "call.mp3")
            .await;
        assert_eq!(r.status(), 202, "{:?}", r.text().await);
        let body: serde_json::Value = r.json().await.expect("json");
        body["id"].as_str().expect("id").parse().expect("call id")
    }

    /// `GET path` with `token`, the response as it came.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    pub async fn get_json(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let r = self
            .client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn call_status(&self, id: CallId) -> String {
        let call = self
            .store
            .get_call(id)
            .await
            .expect("store")
            .expect("call exists");
        call.status.to_string()
    }

    /// Waits until the call reaches `status` (or fails the test after `timeout`).
    pub async fn wait_for_status(&self, id: CallId, status: &str, timeout: Duration) {
        let started = Instant::now();
        loop {
            let now = self.call_status(id).await;
            if now == status {
                return;
            }
            assert!(
                started.elapsed() < timeout,
                "call {id} is {now}, expected {status} within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            h.await.expect("server task");
        }
    }

    pub fn recordings_dir(&self) -> PathBuf {
        self.config.recordings_dir()
    }
}

/// A small valid WAV (0.25 s of 8 kHz noise) that no other test uploads, so duplicates are
/// only the ones a test makes on purpose.
pub fn unique_bytes() -> Vec<u8> {
    wav_of(2000)
}

/// A valid 8 kHz mono 16-bit WAV of `samples` random samples.
pub fn wav_of(samples: usize) -> Vec<u8> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut cursor = std::io::Cursor::new(Vec::new());
    {
        let mut w = hound::WavWriter::new(&mut cursor, spec).expect("wav writer");
        let mut seed = u64::from_le_bytes(
            uuid::Uuid::new_v4().as_bytes()[..8]
                .try_into()
                .expect("8 bytes"),
        ) | 1;
        for _ in 0..samples {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            w.write_sample((seed % 2000) as i16 - 1000).expect("sample");
        }
        w.finalize().expect("finalize");
    }
    cursor.into_inner()
}

/// Creates the table the test job handlers write their results to; the unique key is what
/// makes "a result is written at most once" true.
pub async fn create_results_table(store: &Store) {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS test_results (job_key TEXT NOT NULL UNIQUE, worker TEXT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .expect("create test_results");
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS test_runs (job_key TEXT NOT NULL, worker TEXT NOT NULL, phase TEXT NOT NULL)",
    )
    .execute(store.pool())
    .await
    .expect("create test_runs");
}

pub async fn count(store: &Store, sql: &str) -> i64 {
    use sqlx::Row;
    let row = sqlx::query(sql)
        .fetch_one(store.pool())
        .await
        .expect("count query");
    row.try_get::<i64, _>(0).expect("count")
}
