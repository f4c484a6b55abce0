//! `callgrade bench load` (`make bench-load`): N concurrent clients mix uploads, call lists,
//! call pages, manager and team reports and KPIs against a real `callgrade serve` (its queue
//! workers running) on a seeded database, for minutes, on SQLite and PostgreSQL. It reports,
//! per route, the requests, errors (anything but a 2xx; the target is 0) and p50/p99 latency,
//! and the server's resident memory over the run (the target: flat after the first minute).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;

use super::reports::{seed, ReportsBenchArgs};
use super::upload::{memory_kib, BenchServer};
use crate::store::Store;

/// Options of the load benchmark.
#[derive(Debug, Args)]
pub struct LoadBenchArgs {
    /// Measured seconds per backend (after the warm-up).
    #[arg(long, default_value_t = 300)]
    pub seconds: u64,
    /// Warm-up seconds before measuring (opens connections, prepares statements).
    #[arg(long, default_value_t = 10)]
    pub warmup: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Scored calls in the seeded history.
    #[arg(long, default_value_t = 20_000)]
    pub calls: usize,
    /// PostgreSQL database to run against as well (emptied and seeded).
    #[arg(long, env = "CALLGRADE_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// Skip SQLite.
    #[arg(long)]
    pub no_sqlite: bool,
}

/// The mix: route name and weight (out of 100).
const MIX: [(&str, u32); 6] = [
    ("POST /api/v1/calls", 10),
    ("GET /api/v1/calls", 25),
    ("GET /api/v1/calls/{id}", 35),
    ("GET /api/v1/managers/{id}/report", 15),
    ("GET /api/v1/teams/{team}/report", 5),
    ("GET /api/v1/kpis", 10),
];
const MANAGERS: usize = 40;
/// One month late in the seeded history, as a head of sales would ask for.
const PERIOD: &str = "from=2026-10-01T00:00:00Z&to=2026-11-01T00:00:00Z";

/// What one client saw: latencies (ms) per route and error messages.
#[derive(Default)]
struct Tally {
    ms: BTreeMap<&'static str, Vec<f64>>,
    errors: BTreeMap<&'static str, Vec<String>>,
}

/// A distinct 64 KiB WAV (4 s of 8 kHz noise): `n` makes its bytes unique.
fn wav(n: u64) -> Vec<u8> {
    let data_len: u32 = 64 * 1024 - 44;
    let mut b = super::wav_header(1, 8000, data_len);
    let mut x = 0x9e37_79b9_7f4a_7c15_u64 ^ n.wrapping_mul(0x2545_f491_4f6c_dd1d);
    while b.len() < 64 * 1024 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Quiet noise: small samples.
        b.extend_from_slice(&((x as i16) >> 6).to_le_bytes());
    }
    b
}

struct Shared {
    base: String,
    token: String,
    client: reqwest::Client,
    call_ids: Mutex<Vec<String>>,
    uploads: std::sync::atomic::AtomicU64,
}

/// One request of `route`; its latency in ms, or what went wrong.
async fn request(shared: &Shared, route: &'static str, rng: &mut StdRng) -> Result<f64, String> {
    let base = &shared.base;
    let manager = format!("m{:04}", rng.gen_range(0..MANAGERS));
    let started = Instant::now();
    let builder = match route {
        "POST /api/v1/calls" => {
            let n = shared
                .uploads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let form = reqwest::multipart::Form::new()
                .part(
                    "file",
                    reqwest::multipart::Part::bytes(wav(n)).file_name("load.wav"),
                )
                .text("manager_id", manager);
            shared
                .client
                .post(format!("{base}/api/v1/calls"))
                .multipart(form)
        }
        "GET /api/v1/calls" => shared
            .client
            .get(format!("{base}/api/v1/calls?manager_id={manager}&limit=50")),
        "GET /api/v1/calls/{id}" => {
            let id = {
                let ids = shared.call_ids.lock().await;
                ids[rng.gen_range(0..ids.len())].clone()
            };
            shared.client.get(format!("{base}/api/v1/calls/{id}"))
        }
        "GET /api/v1/managers/{id}/report" => shared
            .client
            .get(format!("{base}/api/v1/managers/{manager}/report?{PERIOD}")),
        "GET /api/v1/teams/{team}/report" => shared.client.get(format!(
            "{base}/api/v1/teams/team{:02}/report?{PERIOD}",
            rng.gen_range(0..MANAGERS / 10)
        )),
        _ => shared
            .client
            .get(format!("{base}/api/v1/kpis?{PERIOD}&by=manager")),
    };
    let answer = builder
        .bearer_auth(&shared.token)
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let status = answer.status();
    let body = answer.bytes().await.map_err(|e| format!("{e:?}"))?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if !status.is_success() {
        return Err(format!(
            "{status}: {}",
            String::from_utf8_lossy(&body[..body.len().min(200)])
        ));
    }
    if route == "POST /api/v1/calls" {
        if let Some(id) = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_string))
        {
            shared.call_ids.lock().await.push(id);
        }
    }
    Ok(ms)
}

/// One client: requests from the mix until `until`; counted only after `measure_from`.
async fn client(shared: Arc<Shared>, seed: u64, measure_from: Instant, until: Instant) -> Tally {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut tally = Tally::default();
    let total: u32 = MIX.iter().map(|(_, w)| w).sum();
    while Instant::now() < until {
        let mut pick = rng.gen_range(0..total);
        let route = MIX
            .iter()
            .find(|(_, w)| {
                if pick < *w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .map_or(MIX[0].0, |(r, _)| r);
        let result = request(&shared, route, &mut rng).await;
        if Instant::now() < measure_from {
            continue;
        }
        match result {
            Ok(ms) => tally.ms.entry(route).or_default().push(ms),
            Err(e) => tally.errors.entry(route).or_default().push(e),
        }
    }
    tally
}

fn at(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Runs the load against one backend and prints its tables; whether its targets held.
async fn bench_backend(
    name: &str,
    database_url: Option<&str>,
    args: &LoadBenchArgs,
) -> anyhow::Result<bool> {
    let server = BenchServer::start_on("load", database_url, &[]).await?;
    // The history the reports and call pages read.
    let store = Store::open(&server.database_url).await?;
    let crm = server.dir.join("crm");
    std::fs::create_dir_all(&crm)?;
    let sizes = ReportsBenchArgs::sized(args.calls, MANAGERS, args.calls / 4, args.calls * 2);
    let t = Instant::now();
    seed(&store, &crm, &sizes).await.context("seeding")?;
    store.close().await;
    eprintln!(
        "{name}: seeded {} calls in {:.0} s",
        args.calls,
        t.elapsed().as_secs_f64()
    );
    let page: serde_json::Value = server
        .client
        .get(format!("{}/api/v1/calls?limit=200", server.base))
        .bearer_auth(&server.token)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let call_ids: Vec<String> = page["items"]
        .as_array()
        .context("call list")?
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_string))
        .collect();
    anyhow::ensure!(!call_ids.is_empty(), "the seeded database lists no calls");
    let shared = Arc::new(Shared {
        base: server.base.clone(),
        token: server.token.clone(),
        client: server.client.clone(),
        call_ids: Mutex::new(call_ids),
        uploads: 0.into(),
    });

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let until = measure_from + Duration::from_secs(args.seconds);
    let clients: Vec<_> = (0..args.clients)
        .map(|i| tokio::spawn(client(shared.clone(), i as u64 + 1, measure_from, until)))
        .collect();
    // The server's memory every 5 s of the measured part.
    let pid = server.pid;
    let mut rss = Vec::new();
    tokio::time::sleep_until(measure_from.into()).await;
    while Instant::now() < until {
        let (_, now) = memory_kib(pid)?;
        rss.push((measure_from.elapsed().as_secs_f64(), now as f64 / 1024.0));
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    let mut all = Tally::default();
    for c in clients {
        let t = c.await?;
        for (route, ms) in t.ms {
            all.ms.entry(route).or_default().extend(ms);
        }
        for (route, e) in t.errors {
            all.errors.entry(route).or_default().extend(e);
        }
    }
    let (peak, end_rss) = memory_kib(pid)?;
    server.stop().await;

    println!(
        "\n### {name}: {} clients, {} s measured\n",
        args.clients, args.seconds
    );
    println!("| route | requests | errors | req/s | p50 (ms) | p99 (ms) | max (ms) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut errors = 0;
    for (route, _) in MIX {
        let mut ms = all.ms.remove(route).unwrap_or_default();
        ms.sort_by(f64::total_cmp);
        let failed = all.errors.get(route).map_or(0, Vec::len);
        errors += failed;
        println!(
            "| `{route}` | {} | {failed} | {:.1} | {:.1} | {:.1} | {:.1} |",
            ms.len() + failed,
            (ms.len() + failed) as f64 / args.seconds as f64,
            at(&ms, 0.5),
            at(&ms, 0.99),
            ms.last().copied().unwrap_or(f64::NAN),
        );
    }
    // Flat: what it holds at the end against what it held one minute in.
    let first_minute = rss
        .iter()
        .find(|(t, _)| *t >= 60.0)
        .or(rss.last())
        .map_or(f64::NAN, |(_, m)| *m);
    let end = end_rss as f64 / 1024.0;
    let growth = end - first_minute;
    println!();
    println!("| server RSS at start of measuring (MiB) | at 1 min | at end | growth after 1 min | peak (VmHWM) |");
    println!("| ---: | ---: | ---: | ---: | ---: |");
    println!(
        "| {:.1} | {first_minute:.1} | {end:.1} | {growth:+.1} | {:.1} |",
        rss.first().map_or(f64::NAN, |(_, m)| *m),
        peak as f64 / 1024.0
    );
    for (route, e) in &all.errors {
        let mut distinct: Vec<&String> = e.iter().collect();
        distinct.dedup();
        for msg in distinct.iter().take(3) {
            eprintln!("{name}: {route}: {msg}");
        }
    }
    // Flat within 10% (allocator noise) once warm.
    let held = errors == 0 && growth <= (first_minute * 0.10).max(8.0);
    if !held {
        eprintln!("TARGET MISSED on {name}: {errors} errors, RSS growth {growth:+.1} MiB after the first minute");
    }
    Ok(held)
}

/// Runs the benchmark on each backend asked for.
pub async fn run(args: LoadBenchArgs) -> anyhow::Result<()> {
    let mut held = true;
    if !args.no_sqlite {
        held &= bench_backend("SQLite", None, &args).await?;
    }
    if let Some(url) = args.postgres.clone() {
        held &= bench_backend("PostgreSQL", Some(&url), &args).await?;
    }
    if !held {
        anyhow::bail!("the load benchmark missed its targets");
    }
    Ok(())
}
