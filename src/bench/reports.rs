//! `callgrade bench reports`: import time of a large CRM export, and p50/p99 latency of the
//! per-manager report and the KPIs over a deployment-sized database, on SQLite and PostgreSQL,
//! while CPU-burning threads stand in for a transcription keeping every core busy.
//!
//! Sizes are flags so a tiny run works in tests. Data is synthetic but shaped like the real
//! thing: calls, activities and deals spread over 24 months, managers in teams of ten.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::analytics::entity::Value;
use crate::analytics::import::{import_path, ImportOptions};
use crate::analytics::kpis::{compute, Period};
use crate::analytics::reports::{manager_report, quality};
use crate::analytics::AnalyticsConfig;
use crate::store::{insert_batch, KpiScope, Store};

/// Options of the reports benchmark.
#[derive(Debug, Args)]
pub struct ReportsBenchArgs {
    /// Scored calls to generate.
    #[arg(long, default_value_t = 1_000_000)]
    pub calls: usize,
    /// Managers (in teams of ten).
    #[arg(long, default_value_t = 200)]
    pub managers: usize,
    /// Deals.
    #[arg(long, default_value_t = 100_000)]
    pub deals: usize,
    /// Activities (imported from CSV: this is the timed import).
    #[arg(long, default_value_t = 2_000_000)]
    pub activities: usize,
    /// Requests per measured endpoint (after 20 uncounted warm-up rounds); p99 is then the
    /// 11th-worst, where with 200 it was the 3rd-worst and moved by tens of ms between runs.
    #[arg(long, default_value_t = 1000)]
    pub requests: usize,
    /// CPU-burning threads during the measurements (0 = none; default: one per core).
    #[arg(long)]
    pub load_threads: Option<usize>,
    /// SQLite file to build (default: a temporary one).
    #[arg(long)]
    pub sqlite: Option<std::path::PathBuf>,
    /// PostgreSQL URL to measure as well (a scratch database: its CRM and call tables are emptied).
    #[arg(long, env = "CALLGRADE_BENCH_POSTGRES_URL")]
    pub postgres: Option<String>,
    /// Skip SQLite.
    #[arg(long)]
    pub no_sqlite: bool,
    /// Measure the databases as a previous run left them (`--sqlite PATH`, `--postgres URL`)
    /// instead of importing and generating again.
    #[arg(long)]
    pub reuse: bool,
}

impl ReportsBenchArgs {
    /// A history of this size, for the benchmarks that only seed it (no requests of their own).
    pub(crate) fn sized(calls: usize, managers: usize, deals: usize, activities: usize) -> Self {
        Self {
            calls,
            managers,
            deals,
            activities,
            requests: 0,
            load_threads: None,
            sqlite: None,
            postgres: None,
            no_sqlite: false,
            reuse: false,
        }
    }
}

/// 2024-12-01T00:00Z: the generated history covers the 24 months before 2026-12-01.
const START_MS: i64 = 1_733_011_200_000;
const SPAN_MS: i64 = 730 * 86_400_000;
pub(crate) const CRITERIA: [&str; 5] = [
    "greeting",
    "needs_discovery",
    "presentation",
    "objection_handling",
    "closing",
];

fn rfc3339(ms: i64) -> String {
    crate::domain::to_datetime(ms).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn manager(i: usize) -> String {
    format!("m{i:04}")
}

/// Writes the CRM export (managers, deals, deal_stages, activities, leads, plans) to `dir`.
fn write_csv(dir: &Path, args: &ReportsBenchArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let mut rng = StdRng::seed_from_u64(7);
    let open = |name: &str| -> anyhow::Result<std::io::BufWriter<std::fs::File>> {
        Ok(std::io::BufWriter::new(std::fs::File::create(
            dir.join(name),
        )?))
    };
    let mut f = open("managers.csv")?;
    writeln!(f, "manager_id,name,team,email")?;
    for m in 0..args.managers {
        writeln!(f, "{},Manager {m},team{:02},", manager(m), m / 10)?;
    }
    f.flush()?;
    let (mut d, mut s) = (open("deals.csv")?, open("deal_stages.csv")?);
    writeln!(
        d,
        "deal_id,manager_id,created_at,status,customer_id,lead_id,closed_at,amount"
    )?;
    writeln!(s, "deal_id,stage,entered_at")?;
    // The default funnel, which the benchmark's reports are computed with.
    let stages = crate::analytics::AnalyticsConfig::default().funnel_stages;
    for i in 0..args.deals {
        let created = START_MS + rng.gen_range(0..SPAN_MS);
        let status = ["open", "won", "lost", "lost"][rng.gen_range(0..4)];
        let closed =
            (status != "open").then(|| created + rng.gen_range(86_400_000..60 * 86_400_000));
        let reached = if status == "won" {
            5
        } else {
            rng.gen_range(0..5)
        };
        writeln!(
            d,
            "D{i},{},{},{status},C{},L{i},{},{}",
            manager(i % args.managers),
            rfc3339(created),
            rng.gen_range(0..args.deals / 2 + 1),
            closed.map(rfc3339).unwrap_or_default(),
            if status == "won" {
                format!("{}", rng.gen_range(500..50_000))
            } else {
                String::new()
            }
        )?;
        for (k, stage) in stages.iter().enumerate().take(reached + 1) {
            writeln!(
                s,
                "D{i},{stage},{}",
                rfc3339(created + k as i64 * 86_400_000)
            )?;
        }
    }
    d.flush()?;
    s.flush()?;
    let mut l = open("leads.csv")?;
    writeln!(
        l,
        "lead_id,created_at,source,manager_id,first_response_at,mql_at,sql_at"
    )?;
    for i in 0..args.deals {
        let created = START_MS + rng.gen_range(0..SPAN_MS);
        let answered = rng
            .gen_bool(0.9)
            .then(|| created + rng.gen_range(0..3_600_000));
        let mql = rng.gen_bool(0.5).then(|| created + 3_600_000);
        let sql = (mql.is_some() && rng.gen_bool(0.4)).then(|| created + 86_400_000);
        writeln!(
            l,
            "L{i},{},web,{},{},{},{}",
            rfc3339(created),
            manager(i % args.managers),
            answered.map(rfc3339).unwrap_or_default(),
            mql.map(rfc3339).unwrap_or_default(),
            sql.map(rfc3339).unwrap_or_default()
        )?;
    }
    l.flush()?;
    let mut a = open("activities.csv")?;
    writeln!(
        a,
        "activity_id,manager_id,type,at,deal_id,outcome,duration_s"
    )?;
    let types = ["call", "email", "meeting", "demo", "proposal", "message"];
    for i in 0..args.activities {
        writeln!(
            a,
            "A{i},{},{},{},D{},{},{}",
            manager(i % args.managers),
            types[rng.gen_range(0..types.len())],
            rfc3339(START_MS + rng.gen_range(0..SPAN_MS)),
            rng.gen_range(0..args.deals.max(1)),
            ["productive", "unproductive", ""][rng.gen_range(0..3)],
            rng.gen_range(10..3600)
        )?;
    }
    a.flush()?;
    let mut p = open("plans.csv")?;
    writeln!(p, "manager_id,period_start,period_end,metric,target")?;
    for m in 0..args.managers {
        for month in 0..24 {
            let start = chrono::NaiveDate::from_ymd_opt(2024, 12, 1)
                .and_then(|d| d.checked_add_months(chrono::Months::new(month)))
                .ok_or_else(|| anyhow::anyhow!("date"))?;
            let end = start
                .checked_add_months(chrono::Months::new(1))
                .and_then(|d| d.pred_opt())
                .ok_or_else(|| anyhow::anyhow!("date"))?;
            writeln!(p, "{},{start},{end},calls,300", manager(m))?;
            writeln!(p, "{},{start},{end},deals_won,5", manager(m))?;
        }
    }
    p.flush()?;
    Ok(())
}

/// Inserts `rows` into `table` with the store's bulk-insert builder, in the CRM import's batch
/// size, inside one transaction per 50 000 rows.
async fn insert(
    store: &Store,
    table: &str,
    cols: &[&str],
    rows: &[Vec<Value>],
) -> anyhow::Result<()> {
    let batch = crate::store::dialect::import_batch_rows(store.backend());
    for chunk in rows.chunks(50_000) {
        let mut tx = store.write().await?;
        for rows in chunk.chunks(batch) {
            insert_batch(&mut tx, table, cols, rows.to_vec(), "").await?;
        }
        tx.commit().await?;
    }
    Ok(())
}

/// Generates the scored calls straight into the database (the pipeline's tables).
async fn generate_calls(store: &Store, args: &ReportsBenchArgs) -> anyhow::Result<()> {
    let mut rng = StdRng::seed_from_u64(11);
    let t = |s: &str| Value::Text(Some(s.to_string()));
    let doc = r#"{"coaching":{"strengths":[{"text":"Clear agenda"}],"improvements":[{"text":"Ask about budget","better_phrasing":"What budget do you have in mind?"}]},"next_steps":[{"action":"Send the proposal","owner":"manager","due_date":null}]}"#;
    let chunk = 50_000;
    let mut done = 0;
    while done < args.calls {
        let n = chunk.min(args.calls - done);
        let (mut calls, mut scores, mut criteria, mut conv) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for i in done..done + n {
            let id = uuid::Uuid::now_v7().to_string();
            let at = START_MS + rng.gen_range(0..SPAN_MS);
            let m = manager(rng.gen_range(0..args.managers));
            calls.push(vec![
                t(&id),
                t(&m),
                Value::Text(Some(format!("D{}", i % args.deals.max(1)))),
                Value::Int(Some(at)),
                Value::Int(Some(1)),
                t(&format!("sha{i}")),
                t("bench"),
                t("done"),
                Value::Int(Some(at)),
                Value::Int(Some(at)),
            ]);
            let overall: f64 = rng.gen_range(20.0..100.0);
            scores.push(vec![
                t(&id),
                t("scored"),
                t("default"),
                t("en"),
                Value::Int(Some(1)),
                Value::Real(Some(overall)),
                // One call in fifty has a critical failure.
                Value::Int(Some(i64::from(i % 50 == 0))),
                t("en"),
                t(doc),
                Value::Int(Some(at)),
                Value::Int(Some(at)),
            ]);
            for c in CRITERIA {
                let v: f64 = [0.0, 0.5, 1.0][rng.gen_range(0..3)];
                let level = if v == 1.0 {
                    "strong"
                } else if v == 0.5 {
                    "weak"
                } else {
                    "absent"
                };
                criteria.push(vec![
                    t(&id),
                    t(c),
                    t("main"),
                    Value::Real(Some(1.0)),
                    Value::Int(Some(0)),
                    Value::Int(Some(2)),
                    t(level),
                    Value::Real(Some(v)),
                    t(level),
                    Value::Int(Some(i64::from(v == 1.0))),
                ]);
            }
            conv.push(vec![
                t(&id),
                Value::Real(Some(rng.gen_range(0.3..0.8))),
                Value::Real(Some(f64::from(rng.gen_range(0..15)))),
                Value::Real(Some(rng.gen_range(10.0..180.0))),
                Value::Real(Some(600.0)),
            ]);
        }
        insert(
            store,
            "calls",
            &[
                "id",
                "manager_id",
                "deal_id",
                "started_at",
                "size_bytes",
                "sha256",
                "storage_key",
                "status",
                "created_at",
                "updated_at",
            ],
            &calls,
        )
        .await?;
        insert(
            store,
            "scores",
            &[
                "call_id",
                "status",
                "rubric_id",
                "rubric_language",
                "rubric_version",
                "overall",
                "critical_failures",
                "language",
                "document",
                "scored_at",
                "updated_at",
            ],
            &scores,
        )
        .await?;
        insert(
            store,
            "score_criteria",
            &[
                "call_id",
                "criterion_id",
                "section_id",
                "weight",
                "critical",
                "scale_max",
                "model_level",
                "value",
                "level",
                "met",
            ],
            &criteria,
        )
        .await?;
        insert(
            store,
            "call_conversation",
            &[
                "call_id",
                "manager_talk_share",
                "manager_questions",
                "manager_longest_monologue_s",
                "duration_s",
            ],
            &conv,
        )
        .await?;
        done += n;
        eprintln!("  {done} calls generated");
    }
    Ok(())
}

/// Fills `store` with a synthetic history of `args`' size (the CRM export written to `dir` and
/// imported, then scored calls): the data other benchmarks run their requests against.
/// The CRM export imported and the scored calls generated, with their daily rollups: the
/// generated rows bypass the write paths that keep them, and without them every call-quality
/// figure reads an empty table and looks faster than it is.
pub(crate) async fn seed(store: &Store, dir: &Path, args: &ReportsBenchArgs) -> anyhow::Result<()> {
    write_csv(dir, args)?;
    import_path(store, dir, ImportOptions::default(), |_, _| None).await?;
    generate_calls(store, args).await?;
    store.rebuild_rollups().await?;
    Ok(())
}

pub(crate) fn percentile_ms(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    crate::analytics::stats::percentile(&v, p).unwrap_or(f64::NAN)
}

/// Burns `n` threads of CPU until the returned flag is cleared.
pub(crate) fn cpu_load(n: usize) -> Arc<AtomicBool> {
    let running = Arc::new(AtomicBool::new(true));
    for _ in 0..n {
        let r = running.clone();
        std::thread::spawn(move || {
            let mut x = 1u64;
            while r.load(Ordering::Relaxed) {
                for _ in 0..100_000 {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                }
                std::hint::black_box(x);
            }
        });
    }
    running
}

/// Imports the CRM export and generates the scored calls (with their rollups).
async fn load(
    store: &Store,
    name: &str,
    args: &ReportsBenchArgs,
    dir: &Path,
) -> anyhow::Result<()> {
    for table in [
        "crm_activities",
        "crm_deal_stages",
        "crm_deals",
        "crm_leads",
        "crm_plans",
        "crm_customers",
        "crm_managers",
        "calls",
    ] {
        sqlx::query(&format!("DELETE FROM {table}"))
            .execute(&mut *store.write_one().await?)
            .await?;
    }
    let started = Instant::now();
    let reports = import_path(store, dir, ImportOptions::default(), |_, _| None).await?;
    let total = started.elapsed().as_secs_f64();
    let rows: u64 = reports.iter().map(|r| r.rows).sum();
    // Seconds to import the activities file alone.
    let import_activities = || async {
        let t = Instant::now();
        import_path(
            store,
            &dir.join("activities.csv"),
            ImportOptions::default(),
            |_, _| None,
        )
        .await?;
        anyhow::Ok(t.elapsed().as_secs_f64())
    };
    // The activities again, alone, into an emptied table: the figure the target is about.
    // (TRUNCATE on PostgreSQL: after a DELETE the indexes still hold the dead rows.)
    let empty = crate::store::dialect::empty_table(store.backend(), "crm_activities");
    sqlx::query(&empty)
        .execute(&mut *store.write_one().await?)
        .await?;
    let activities_s = import_activities().await?;
    // And once more, as a daily full export arrives: every row known and unchanged.
    let again_s = import_activities().await?;
    println!("| {name} | import whole export ({rows} rows) | {total:.1} s |");
    println!(
        "| {name} | import {} activities (fresh) | {activities_s:.1} s |",
        args.activities
    );
    println!(
        "| {name} | import {} activities again (all unchanged) | {again_s:.1} s |",
        args.activities
    );
    let t = Instant::now();
    generate_calls(store, args).await?;
    eprintln!(
        "  {name}: {} scored calls generated in {:.0} s",
        args.calls,
        t.elapsed().as_secs_f64()
    );
    // The generated rows bypassed the store's write paths, which keep the rollups: build them
    // the way the migration does for an existing database.
    let t = Instant::now();
    let rollups = store.rebuild_rollups().await?;
    println!(
        "| {name} | rebuild the daily rollups of {} calls ({rollups} rows) | {:.1} s |",
        args.calls,
        t.elapsed().as_secs_f64()
    );
    // Fresh statistics, as autovacuum (PostgreSQL) or `PRAGMA optimize` would have by then.
    for table in [
        "crm_activities",
        "crm_deal_stages",
        "crm_deals",
        "crm_leads",
        "crm_plans",
        "crm_managers",
        "calls",
        "scores",
        "score_criteria",
        "call_conversation",
        "quality_daily",
        "conversation_daily",
    ] {
        let analyze = crate::store::dialect::vacuum_analyze(store.backend(), table);
        sqlx::query(&analyze)
            .execute(&mut *store.write_one().await?)
            .await?;
    }
    Ok(())
}

async fn bench_backend(
    name: &str,
    url: &str,
    args: &ReportsBenchArgs,
    dir: &Path,
) -> anyhow::Result<()> {
    let store = Store::open(url).await?;
    if !args.reuse {
        load(&store, name, args, dir).await?;
    }
    let config = AnalyticsConfig::default();
    let threads = args
        .load_threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, usize::from));
    let busy = cpu_load(threads);
    let mut rng = StdRng::seed_from_u64(3);
    // One month late in the history, as a head of sales would ask for.
    let period = Period::parse("2026-10-01", "2026-11-01").map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut report_ms = Vec::new();
    let mut kpi_ms = Vec::new();
    let mut team_kpi_ms = Vec::new();
    // The report's parts on their own, to say where its time goes.
    let (mut quality_ms, mut team_quality_ms) = (Vec::new(), Vec::new());
    // The first rounds open the pool's connections and prepare each statement on them (on
    // PostgreSQL, a backend process and its catalogue caches per connection): a running service
    // has done that long before, so they are not counted.
    let warmup = WARMUP_ROUNDS.min(args.requests);
    for round in 0..warmup + args.requests {
        if round == warmup {
            for v in [
                &mut report_ms,
                &mut kpi_ms,
                &mut team_kpi_ms,
                &mut quality_ms,
                &mut team_quality_ms,
            ] {
                v.clear();
            }
        }
        let m = manager(rng.gen_range(0..args.managers));
        let team = store.crm_manager_team(&m).await?.flatten();
        let t = Instant::now();
        let r = manager_report(&store, &config, &m, team.clone(), period).await?;
        report_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(serde_json::to_vec(&r)?);
        let t = Instant::now();
        let k = compute(&store, &config, &KpiScope::Manager(m.clone()), period).await?;
        kpi_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(serde_json::to_vec(&k)?);
        let t = Instant::now();
        quality(&store, &KpiScope::Manager(m.clone()), period).await?;
        quality_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        if let Some(team) = team {
            let t = Instant::now();
            quality(&store, &KpiScope::Team(team.clone()), period).await?;
            team_quality_ms.push(t.elapsed().as_secs_f64() * 1000.0);
            let t = Instant::now();
            compute(&store, &config, &KpiScope::Team(team), period).await?;
            team_kpi_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let t = Instant::now();
    compute(&store, &config, &KpiScope::All, period).await?;
    let all_ms = t.elapsed().as_secs_f64() * 1000.0;
    busy.store(false, Ordering::Relaxed);
    for (what, v) in [
        ("manager report", report_ms),
        ("KPIs, one manager", kpi_ms),
        ("KPIs, one team", team_kpi_ms),
        (
            "part of the report: quality figures, one manager",
            quality_ms,
        ),
        (
            "part of the report: quality figures, the manager's team",
            team_quality_ms,
        ),
    ] {
        println!(
            "| {name} | {what} ({} requests, {threads} busy threads) | p50 {:.1} ms, p99 {:.1} ms |",
            v.len(),
            percentile_ms(v.clone(), 0.5),
            percentile_ms(v, 0.99)
        );
    }
    println!("| {name} | KPIs, whole company (1 request) | {all_ms:.0} ms |");
    store.close().await;
    Ok(())
}

/// Uncounted rounds before the measured ones (see `bench_backend`).
const WARMUP_ROUNDS: usize = 20;

/// Runs the benchmark and prints a Markdown table.
pub async fn run(args: ReportsBenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let t = Instant::now();
    write_csv(dir.path(), &args)?;
    eprintln!("CSV export written in {:.0} s", t.elapsed().as_secs_f64());
    println!("| backend | measurement | result |");
    println!("| --- | --- | --- |");
    if !args.no_sqlite {
        let db_dir = tempfile::tempdir()?;
        let path = args
            .sqlite
            .clone()
            .unwrap_or_else(|| db_dir.path().join("bench.db"));
        if !args.reuse {
            let _ = std::fs::remove_file(&path);
        }
        bench_backend(
            "SQLite",
            &format!("sqlite://{}", path.display()),
            &args,
            dir.path(),
        )
        .await?;
    }
    match &args.postgres {
        Some(url) => bench_backend("PostgreSQL", url, &args, dir.path()).await?,
        None => eprintln!("(no --postgres URL given: PostgreSQL skipped)"),
    }
    Ok(())
}
