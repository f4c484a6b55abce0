//! CRM import over HTTP and from the command line: bad rows are listed and never poison good
//! ones, re-imports change nothing, strict mode refuses a whole file.

use std::process::Command;

use callgrade::domain::Role;
use callgrade::jobs::Registry;
use serde_json::Value;

use crate::helpers::{count, spawn_app, spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crm");

/// POSTs `csv` as the body of an import of `entity`.
pub async fn import_csv(
    app: &TestApp,
    token: &str,
    entity: &str,
    query: &str,
    csv: &str,
) -> (u16, Value) {
    let r = app
        .client
        .post(app.url(&format!("/api/v1/import/{entity}{query}")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!("{FIXTURES}/{name}")).expect("fixture")
}

const MALFORMED_DEALS: &str = "\
deal_id,manager_id,created_at,status,amount,notes
d1,m1,2026-03-02T10:00:00Z,won,1000,first good row
d2,m9,2026-03-02T10:00:00Z,open,,unknown manager
d3,m1,2026-03-02 10:00,open,,bad timestamp
d4,m1,2026-03-02T10:00:00Z,pending,,unknown status
,m1,2026-03-02T10:00:00Z,open,,missing key
d5,m2,2026-03-03T10:00:00+02:00,lost,abc,bad amount
d6,m2,2026-03-03T10:00:00+02:00,lost,,second good row
";

/// Every index of `table` with its definition, sorted: a first import into an empty table drops
/// the secondary ones and must build them again.
async fn indexes(app: &TestApp, table: &str) -> Vec<(String, String)> {
    use sqlx::Row;
    let sql = match app.store.backend() {
        callgrade::store::Backend::Sqlite => {
            "SELECT name, COALESCE(sql, '') FROM sqlite_master \
             WHERE type = 'index' AND tbl_name = ? ORDER BY name"
        }
        callgrade::store::Backend::Postgres => {
            "SELECT CAST(indexname AS TEXT), indexdef FROM pg_indexes WHERE tablename = $1 \
             ORDER BY indexname"
        }
    };
    let rows = sqlx::query(sql)
        .bind(table)
        .fetch_all(app.store.pool())
        .await
        .expect("index list");
    rows.iter()
        .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
        .collect()
}

fn errors(report: &Value) -> Vec<(u64, String)> {
    report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["line"].as_u64().expect("line"),
                e["column"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect()
}

async fn a_malformed_file_keeps_its_good_rows_and_lists_each_bad_one(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let (status, managers) =
        import_csv(&app, &app.admin, "managers", "", &fixture("managers.csv")).await;
    assert_eq!(status, 200, "{managers}");
    assert_eq!(managers["inserted"], 3);

    let (status, report) = import_csv(&app, &app.admin, "deals", "", MALFORMED_DEALS).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rows"], 7);
    assert_eq!(report["inserted"], 2);
    assert_eq!(report["updated"], 0);
    assert_eq!(report["rejected"], 5);
    assert_eq!(report["committed"], true);
    assert_eq!(
        errors(&report),
        vec![
            (3, "manager_id".to_string()),
            (4, "created_at".to_string()),
            (5, "status".to_string()),
            (6, "deal_id".to_string()),
            (7, "amount".to_string()),
        ]
    );
    let reasons: Vec<&str> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["reason"].as_str().expect("reason"))
        .collect();
    assert!(reasons[0].contains("unknown manager \"m9\""), "{reasons:?}");
    assert!(reasons[1].contains("RFC 3339"), "{reasons:?}");
    assert!(reasons[2].contains("pending"), "{reasons:?}");
    assert!(reasons[3].contains("required"), "{reasons:?}");
    assert!(reasons[4].contains("not a number"), "{reasons:?}");
    // Each refusal also carries a stable code and the refused value, for the web app to word
    // in the reader's language.
    let coded: Vec<(&str, &str)> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| {
            (
                e["code"].as_str().expect("code"),
                e["value"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        coded,
        [
            ("unknown_manager", "m9"),
            ("bad_time", "2026-03-02 10:00"),
            ("bad_choice", "pending"),
            ("empty", ""),
            ("not_a_number", "abc"),
        ]
    );
    assert_eq!(report["errors"][2]["expected"], "open, won, lost");
    // The offset is normalised: 10:00+02:00 is stored as 08:00 UTC.
    assert_eq!(
        count(
            &app.store,
            "SELECT created_at FROM crm_deals WHERE deal_id = 'd6'"
        )
        .await,
        chrono::DateTime::parse_from_rfc3339("2026-03-03T08:00:00Z")
            .expect("time")
            .timestamp_millis()
    );

    // The same file again: nothing changes, and the bad rows are reported again.
    let (_, again) = import_csv(&app, &app.admin, "deals", "", MALFORMED_DEALS).await;
    assert_eq!(
        (
            again["inserted"].clone(),
            again["updated"].clone(),
            again["unchanged"].clone(),
            again["rejected"].clone()
        ),
        (0.into(), 0.into(), 2.into(), 5.into()),
        "{again}"
    );

    // One changed value is one update.
    let changed = MALFORMED_DEALS.replace("lost,,second good row", "lost,750,second good row");
    let (_, changed) = import_csv(&app, &app.admin, "deals", "", &changed).await;
    assert_eq!(
        (
            changed["inserted"].clone(),
            changed["updated"].clone(),
            changed["unchanged"].clone()
        ),
        (0.into(), 1.into(), 1.into()),
        "{changed}"
    );
    assert_eq!(count(&app.store, "SELECT COUNT(*) FROM crm_deals").await, 2);
    app.stop().await;
}

async fn strict_mode_refuses_the_whole_file_on_one_bad_row(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    import_csv(&app, &app.admin, "managers", "", &fixture("managers.csv")).await;
    let before = indexes(&app, "crm_deals").await;
    let (status, report) =
        import_csv(&app, &app.admin, "deals", "?strict=true", MALFORMED_DEALS).await;
    assert_eq!(status, 422, "{report}");
    assert_eq!(report["committed"], false);
    assert_eq!(report["inserted"], 0);
    assert_eq!(report["rejected"], 5, "the bad rows are counted: {report}");
    assert_eq!(
        report["not_written"], 2,
        "the good rows are not written, and not called rejected: {report}"
    );
    assert_eq!(
        errors(&report).len(),
        5,
        "the bad rows are listed: {report}"
    );
    assert_eq!(count(&app.store, "SELECT COUNT(*) FROM crm_deals").await, 0);
    assert_eq!(
        indexes(&app, "crm_deals").await,
        before,
        "a refused first load keeps the table's indexes"
    );
    app.stop().await;
}

async fn every_fixture_file_imports_cleanly_and_reimports_unchanged(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    for entity in [
        "managers",
        "customers",
        "leads",
        "deals",
        "deal_stages",
        "activities",
        "plans",
    ] {
        let csv = fixture(&format!("{entity}.csv"));
        let rows = csv.lines().count() as u64 - 1;
        let table = format!("crm_{entity}");
        let before = indexes(&app, &table).await;
        if entity == "activities" {
            assert_eq!(
                before.len(),
                4,
                "{table}: a key and three indexes: {before:?}"
            );
        }
        // A first load rewrites its daily rollups whole, their indexes dropped and built after.
        let rollup = match entity {
            "activities" => Some("crm_activity_daily"),
            "deals" | "deal_stages" => Some("crm_deal_daily"),
            _ => None,
        };
        let rollup_before = match rollup {
            Some(t) => indexes(&app, t).await,
            None => Vec::new(),
        };
        if let Some(t) = rollup {
            assert!(
                rollup_before
                    .iter()
                    .any(|(name, _)| name.ends_with("_manager")),
                "{t}: a secondary index by manager: {rollup_before:?}"
            );
        }
        let (status, first) = import_csv(&app, &app.admin, entity, "", &csv).await;
        assert_eq!(status, 200, "{first}");
        assert_eq!(
            indexes(&app, &table).await,
            before,
            "{entity}: the first load builds the indexes it dropped"
        );
        if let Some(t) = rollup {
            assert_eq!(
                indexes(&app, t).await,
                rollup_before,
                "{entity}: the first load builds {t}'s indexes again"
            );
        }
        assert_eq!(
            (first["inserted"].as_u64(), first["rejected"].as_u64()),
            (Some(rows), Some(0)),
            "{entity}: {first}"
        );
        let (_, second) = import_csv(&app, &app.admin, entity, "", &csv).await;
        assert_eq!(
            (
                second["inserted"].as_u64(),
                second["updated"].as_u64(),
                second["unchanged"].as_u64()
            ),
            (Some(0), Some(0), Some(rows)),
            "{entity}: {second}"
        );
    }
    app.stop().await;
}

async fn line_breaks_and_tabs_inside_quoted_cells_are_kept_as_text(backend: Backend) {
    let app = spawn_app(backend, Registry::new()).await;
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/crm-multiline");
    for (entity, rows) in [
        ("managers", 2),
        ("customers", 2),
        ("leads", 1),
        ("deals", 4),
        ("deal_stages", 2),
    ] {
        let csv = std::fs::read_to_string(format!("{dir}/{entity}.csv")).expect("fixture");
        let (status, report) = import_csv(&app, &app.admin, entity, "", &csv).await;
        assert_eq!(status, 200, "{entity}: {report}");
        assert_eq!(
            (report["inserted"].as_u64(), report["rejected"].as_u64()),
            (Some(rows), Some(0)),
            "{entity}: every row is valid: {report}"
        );
    }
    let pool = app.store.pool().clone();
    let text = |sql: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, String>(sql)
                .fetch_one(&pool)
                .await
                .expect(sql)
        }
    };
    assert_eq!(
        text("SELECT name FROM crm_managers WHERE manager_id = 'm1'").await,
        "Anna\nIvanova"
    );
    assert_eq!(
        text("SELECT name FROM crm_managers WHERE manager_id = 'm2'").await,
        "Boris\r\nPetrov"
    );
    assert_eq!(
        text("SELECT team FROM crm_managers WHERE manager_id = 'm1'").await,
        "east\tside"
    );
    assert_eq!(
        text("SELECT name FROM crm_customers WHERE customer_id = 'c1'").await,
        "ООО \"Ромашка\"\nфилиал"
    );
    assert_eq!(
        text("SELECT segment FROM crm_customers WHERE customer_id = 'c2'").await,
        "enter\nprise"
    );
    assert_eq!(
        text("SELECT source FROM crm_leads WHERE lead_id = 'l1'").await,
        "web\nform"
    );
    assert_eq!(
        text("SELECT lost_reason FROM crm_deals WHERE deal_id = 'd2'").await,
        "Цена выше,\nчем у конкурента"
    );
    assert_eq!(
        text("SELECT lost_reason FROM crm_deals WHERE deal_id = 'd3'").await,
        "Budget frozen\r\nuntil Q3"
    );
    assert_eq!(
        text("SELECT lost_reason FROM crm_deals WHERE deal_id = 'd4'").await,
        "chose\ta competitor"
    );
    // No deal is lost to the import, so the win rate counts all four closed deals.
    let (status, k) = app
        .get_json(&app.admin, "/api/v1/kpis?from=2026-03-01&to=2026-04-01")
        .await;
    assert_eq!(status, 200, "{k}");
    assert_eq!(
        (
            k["kpis"]["win_rate"]["numerator"].as_i64(),
            k["kpis"]["win_rate"]["denominator"].as_i64()
        ),
        (Some(1), Some(4)),
        "{k}"
    );
    // NUL and the other non-printing controls are still refused, naming the character.
    for (bad, code) in [
        ("\u{0}", "U+0000"),
        ("\u{1}", "U+0001"),
        ("\u{7f}", "U+007F"),
        ("\u{85}", "U+0085"),
    ] {
        let csv = format!("deal_id,manager_id,created_at,status,lost_reason\nd9,m1,2026-03-02T10:00:00Z,lost,\"a{bad}b\"\n");
        let (status, report) = import_csv(&app, &app.admin, "deals", "", &csv).await;
        assert_eq!(status, 200, "{report}");
        assert_eq!(report["rejected"], 1, "{code}: {report}");
        assert!(report.to_string().contains(code), "{code}: {report}");
    }
    app.stop().await;
}

on_both_backends!(
    line_breaks_and_tabs_inside_quoted_cells_are_kept_as_text,
    a_malformed_file_keeps_its_good_rows_and_lists_each_bad_one,
    strict_mode_refuses_the_whole_file_on_one_bad_row,
    every_fixture_file_imports_cleanly_and_reimports_unchanged,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csv_body_over_the_limit_gets_413_and_an_oversized_cell_its_row_refused() {
    let app = spawn_app_with(Backend::Sqlite, Registry::new(), |c| {
        c.max_upload_bytes = 100_000
    })
    .await;
    let managers = fixture("managers.csv");
    assert_eq!(
        import_csv(&app, &app.admin, "managers", "", &managers)
            .await
            .0,
        200
    );
    let mut big = String::from("customer_id,name,segment\n");
    let mut i = 0;
    while big.len() <= 100_000 {
        big += &format!("c{i},Customer {i},smb\n");
        i += 1;
    }
    let (status, body) = import_csv(&app, &app.admin, "customers", "", &big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("100000 bytes"),
        "{body}"
    );
    let (status, _) = app.get_json(&app.admin, "/api/v1/calls").await;
    assert_eq!(status, 200, "the server is still fine");

    let long = "x".repeat(callgrade::analytics::entity::MAX_CELL_BYTES + 1);
    let csv = format!("customer_id,name,segment\nc1,Acme,smb\nc2,{long},smb\n");
    let (status, report) = import_csv(&app, &app.admin, "customers", "", &csv).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["inserted"].as_u64(), report["rejected"].as_u64()),
        (Some(1), Some(1)),
        "{report}"
    );
    assert!(
        report.to_string().contains("a cell may hold at most"),
        "{report}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_without_a_required_column_rejects_every_row() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    import_csv(&app, &app.admin, "managers", "", &fixture("managers.csv")).await;
    let (status, report) = import_csv(
        &app,
        &app.admin,
        "activities",
        "",
        "activity_id,manager_id,at\na1,m1,2026-03-01T00:00:00Z\na2,m1,2026-03-01T00:00:00Z\n",
    )
    .await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (report["rows"].as_u64(), report["rejected"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(report["errors"][0]["column"], "type");
    assert_eq!(report["errors"][1]["line"], 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_take_multipart_and_need_an_admin_qa_or_head_token() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::text(fixture("managers.csv")).file_name("managers.csv"),
    );
    let r = app
        .client
        .post(app.url("/api/v1/import/managers"))
        .bearer_auth(&app.admin)
        .multipart(form)
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.expect("json");
    assert_eq!(
        (body["file"].as_str(), body["inserted"].as_u64()),
        (Some("managers.csv"), Some(3))
    );

    let head = app.token(Role::Head, None).await;
    let (status, _) = import_csv(&app, &head, "customers", "", &fixture("customers.csv")).await;
    assert_eq!(status, 200);
    let manager = app.token(Role::Manager, Some("m1")).await;
    let (status, body) =
        import_csv(&app, &manager, "customers", "", &fixture("customers.csv")).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = import_csv(&app, &app.admin, "invoices", "", "x\n1\n").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_command_loads_a_folder_managers_first() {
    let app = spawn_app(Backend::Sqlite, Registry::new()).await;
    let url = app.config.database_url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_callgrade"))
            .args(["import", "--quiet", FIXTURES])
            .env("CALLGRADE_DATABASE_URL", url)
            .output()
            .expect("run callgrade import")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("managers.csv: 3 rows: 3 inserted, 0 updated, 0 unchanged, 0 rejected"),
        "{stdout}"
    );
    assert!(
        stdout.contains("activities.csv: 11 rows: 11 inserted"),
        "{stdout}"
    );
    assert_eq!(
        count(&app.store, "SELECT COUNT(*) FROM crm_deal_stages").await,
        22
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_command_says_not_found_for_a_missing_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/cli.db", dir.path().display());
    for missing in ["/no/such/folder", "/no/such/deals.csv"] {
        let out = Command::new(env!("CARGO_BIN_EXE_callgrade"))
            .args(["import", "--quiet", missing])
            .env("CALLGRADE_DATABASE_URL", &url)
            .output()
            .expect("run callgrade import");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains(&format!("{missing}: not found")),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reports_benchmark_runs_at_a_tiny_size() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_callgrade"))
            .args([
                "bench",
                "reports",
                "--calls",
                "300",
                "--managers",
                "20",
                "--deals",
                "200",
            ])
            .args([
                "--activities",
                "1000",
                "--requests",
                "3",
                "--load-threads",
                "0",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("run callgrade bench reports")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("| SQLite | import 1000 activities (fresh) |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| SQLite | import 1000 activities again (all unchanged) |"),
        "{stdout}"
    );
    assert!(
        stdout.contains("| SQLite | manager report (3 requests"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_benchmark_runs_at_a_tiny_size() {
    let out = tokio::task::spawn_blocking(|| {
        Command::new(env!("CARGO_BIN_EXE_callgrade"))
            .args([
                "bench",
                "web",
                "--calls",
                "400",
                "--managers",
                "20",
                "--activities",
                "2000",
            ])
            .args(["--segments", "2000", "--segments-per-call", "20"])
            .args([
                "--requests",
                "2",
                "--load-threads",
                "0",
                "--audio-minutes",
                "1",
            ])
            .env("RUST_LOG", "warn")
            .output()
            .expect("run callgrade bench web")
    })
    .await
    .expect("join");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for line in [
        "| SQLite | index 100 stored transcripts (2000 segments), as at an upgrade |",
        "| SQLite | call page (2 requests",
        "| SQLite | search, a rare word (2 requests",
        "| SQLite | calls list, critical failures (2 requests",
        "| SQLite | dashboard, whole company, one month (2 requests",
        "| SQLite | dashboard, one team, one month (2 requests",
        "| SQLite | a manager's page, one month (2 requests",
        "| - | first load of the call page without the audio",
        "| - | 1-minute recording",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
}
