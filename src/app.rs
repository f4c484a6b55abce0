//! Start-up: what `callgrade serve` and `callgrade worker` run, and what the tests start.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::audio::DecoderProgram;
use crate::config::{redact_url, Config};
use crate::http::{self, AppState};
use crate::jobs::{Registry, Worker};
use crate::llm::LlmClient;
use crate::recordings::Recordings;
use crate::rubric::{RubricError, RubricSet};
use crate::scoring::job::ScoreJob;
use crate::store::{Store, StoreError};
use crate::transcribe::job::{TranscribeJob, TranscribeSettings};

/// A failure to start or run the service.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A scorecard file is broken.
    #[error(transparent)]
    Rubric(#[from] RubricError),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Io(#[from] std::io::Error),
}

/// The job kinds this process runs: every pipeline stage whose prerequisites (a speech model,
/// ...) are in place. A stage that cannot run here is left out with a warning: its jobs stay
/// queued, nothing is lost, and another worker (or this one, once fixed) picks them up.
pub fn default_registry(config: &Config) -> Registry {
    let mut registry = Registry::new();
    let decoder = match DecoderProgram::current_exe([AUDIO_DECODE_CHILD]) {
        Ok(d) => d,
        Err(e) => {
            warn!(error = %e, "transcription disabled: cannot find this program to run the decoder");
            return registry;
        }
    };
    match TranscribeSettings::from_config(
        &config.transcribe,
        &config.metrics,
        Recordings::new(config.recordings_dir()),
        decoder,
    ) {
        Ok(settings) => {
            info!(model = %settings.model_path.display(), vad = settings.vad_model.is_some(), threads = settings.threads, "transcription enabled");
            let mut job = TranscribeJob::new(settings);
            if !config.redaction.keep_original {
                job = job.storing_redacted(config.redaction.kinds.clone());
            }
            registry = registry.register(job);
        }
        Err(e) => warn!("transcription disabled, calls will wait in the queue: {e}"),
    }
    match LlmClient::new(&config.llm) {
        Ok(llm) => {
            info!(model = llm.model(), server = llm.host(), "scoring enabled");
            registry = registry.register(
                ScoreJob::new(llm, config.scoring.clone())
                    .redacting(config.redaction.kinds.clone()),
            );
        }
        Err(e) => warn!("scoring disabled, transcribed calls will wait in `scoring`: {e}"),
    }
    registry
}

/// Registers the configured scorecards (built-in and folder) as versions in the database: a
/// file whose content is new becomes the next version of its scorecard.
pub async fn sync_rubrics(store: &Store, config: &Config) -> Result<(), AppError> {
    let set = RubricSet::load(config.scoring.rubrics_dir())?;
    for loaded in set.iter() {
        let (stored, created) = store
            .register_rubric(&loaded.rubric, &loaded.text, &loaded.source.as_origin())
            .await?;
        if created {
            info!(id = %stored.rubric.id, language = %stored.rubric.language, version = stored.version, origin = %stored.origin, "scorecard registered");
        }
    }
    Ok(())
}

/// The hidden subcommand that runs the audio decoder in a child process.
pub const AUDIO_DECODE_CHILD: &str = "audio-decode-child";

/// Opens the database and applies migrations, logging where it is.
pub async fn open_store(config: &Config) -> Result<Store, AppError> {
    info!(database = %redact_url(&config.database_url), "opening database");
    let store = Store::open(&config.database_url)
        .await?
        .redacting_search(config.redaction.in_index());
    sync_rubrics(&store, config).await?;
    Ok(store)
}

/// Serves the HTTP API on `listener` with in-process workers for `registry`, until `shutdown`
/// fires; then stops accepting requests, drains the workers and returns.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let store = open_store(&config).await?;
    serve_with_store(listener, config, store, registry, shutdown).await
}

/// [`serve`] over an already opened store (tests share one between the app and assertions);
/// the store is expected to be migrated and to have the scorecards registered
/// ([`sync_rubrics`]), as [`open_store`] leaves it.
pub async fn serve_with_store(
    listener: TcpListener,
    config: Config,
    store: Store,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let decoder = DecoderProgram::current_exe([AUDIO_DECODE_CHILD])
        .map_err(|e| AppError::Io(std::io::Error::other(e.to_string())))?;
    serve_with_decoder(listener, config, store, registry, decoder, shutdown).await
}

/// [`serve_with_store`] with the program that decodes recordings for playback (tests pass the
/// `callgrade` binary: their own executable has no decoder subcommand).
pub async fn serve_with_decoder(
    listener: TcpListener,
    config: Config,
    store: Store,
    registry: Registry,
    decoder: DecoderProgram,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let config = Arc::new(config);
    let recordings_dir = config.recordings_dir();
    let worker = Worker::new(store.clone(), registry, config.queue.clone());
    let state = AppState {
        store: store.clone(),
        config: config.clone(),
        recordings: Recordings::new(config.recordings_dir()),
        worker: worker.handle(),
        metrics: http::metrics_handle(),
        playback: crate::playback::Playback::new(
            &recordings_dir,
            decoder,
            config.transcribe.decode_limits(),
        ),
        logins: Arc::new(crate::web::limiter::LoginLimiter::new(
            config.web.max_failed_logins,
        )),
        deals: Default::default(),
    };
    let mut tasks = JoinSet::new();
    tasks.spawn(worker.run(shutdown.clone()));
    tasks.spawn(sweep_leftovers(
        store.clone(),
        state.recordings.clone(),
        shutdown.clone(),
    ));
    tasks.spawn(keep_statistics(store.clone(), shutdown.clone()));
    // Transcripts saved before the search index existed (or stemmed by an older version) are
    // indexed in the background: the server answers meanwhile, and they appear in searches
    // as they are done.
    tasks.spawn(crate::search::index_backlog(
        store.clone(),
        shutdown.clone(),
    ));
    let addr = listener.local_addr()?;
    info!(%addr, "listening");
    let served = http::server::serve(
        listener,
        http::router(state),
        &config.http,
        shutdown.clone(),
    )
    .await;
    // The server returns on shutdown; make sure the workers hear it too if it failed early.
    shutdown.cancel();
    while tasks.join_next().await.is_some() {}
    info!("stopped");
    served.map_err(AppError::from)
}

/// How old a leftover upload file must be before a sweep removes it.
pub const SWEEP_GRACE: Duration = Duration::from_secs(15 * 60);
/// How often the server sweeps leftover upload files.
const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// Sweeps unfinished uploads and recordings without a call (left by a crash) at start and
/// then every [`SWEEP_EVERY`], until `shutdown`.
async fn sweep_leftovers(store: Store, recordings: Recordings, shutdown: CancellationToken) {
    loop {
        if let Err(e) = recordings.sweep(&store, SWEEP_GRACE).await {
            warn!(error = %e, "sweeping leftover upload files failed; trying again later");
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}

/// How often the planner's statistics are refreshed (SQLite; see
/// [`Store::refresh_statistics`]).
const STATISTICS_EVERY: Duration = Duration::from_secs(3600);

/// Refreshes the query planner's statistics at start and then every [`STATISTICS_EVERY`], until
/// `shutdown`: without them SQLite guesses how selective each index is, and the calls list and
/// search over a million calls depend on its choices.
async fn keep_statistics(store: Store, shutdown: CancellationToken) {
    let mut at_start = true;
    loop {
        if let Err(e) = store.refresh_statistics(at_start).await {
            warn!(error = %e, "refreshing the database statistics failed; trying again later");
        }
        at_start = false;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(STATISTICS_EVERY) => {}
        }
    }
}

/// Runs workers only (extra machines sharing a PostgreSQL queue), until `shutdown` fires.
pub async fn run_worker(
    config: Config,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<(), AppError> {
    let store = open_store(&config).await?;
    Worker::new(store.clone(), registry, config.queue.clone())
        .run(shutdown)
        .await;
    store.close().await;
    Ok(())
}

/// A token that fires on SIGTERM or SIGINT (Ctrl-C).
pub fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let fire = token.clone();
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = ctrl_c => info!("SIGINT received: shutting down"),
                        _ = term.recv() => info!("SIGTERM received: shutting down"),
                    }
                }
                Err(_) => {
                    let _ = ctrl_c.await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = ctrl_c.await;
        }
        fire.cancel();
    });
    token
}
