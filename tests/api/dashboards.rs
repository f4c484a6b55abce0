//! The sales dashboards over a real socket, on both backends: every figure the dashboard and a
//! manager's page show (`data-kpi` / `data-value`) equals the `/api/v1/kpis` answer for the same
//! period and team; each table downloads as the CSV of exactly what it shows; the funnel has one
//! bar per stage with the API's counts; the period picker changes the figures; the role rules.

use callgrade::analytics::import::{import_path, ImportOptions};
use callgrade::domain::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::analytics_import::FIXTURES;
use crate::fake_llm::{FakeLlm, Reply};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::scoring::app_with_llm;
use crate::web::{create_user, get, sign_in};
use crate::web_pages::scored_sample;

/// One figure of a page.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub kpi: String,
    pub manager: Option<String>,
    pub team: Option<String>,
    pub value: Option<f64>,
}

fn unescape(s: &str) -> String {
    s.replace("&gt;", ">")
        .replace("&lt;", "<")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2f;", "/")
        .replace("&amp;", "&")
}

/// Every `data-kpi` figure of a page, in page order.
pub(crate) fn figures(html: &str) -> Vec<Figure> {
    let re = regex::Regex::new(
        r#"data-kpi="([^"]+)" data-value="([^"]*)"(?: data-manager="([^"]*)")?(?: data-team="([^"]*)")?"#,
    )
    .unwrap();
    re.captures_iter(html)
        .map(|c| Figure {
            kpi: unescape(&c[1]),
            value: (!c[2].is_empty()).then(|| c[2].parse::<f64>().expect("a number")),
            manager: c.get(3).map(|m| unescape(m.as_str())),
            team: c.get(4).map(|m| unescape(m.as_str())),
        })
        .collect()
}

/// The API's figure by the page's name for it (docs/crm-data.md), read from its JSON: written
/// here independently of the page's code.
pub(crate) fn api_value(k: &Value, name: &str) -> Option<f64> {
    let find = |list: &str, field: &str, want: &str| -> Option<Value> {
        k[list]
            .as_array()?
            .iter()
            .find(|e| e[field].as_str().unwrap_or("") == want)
            .cloned()
    };
    if let Some(t) = name.strip_prefix("activities_by_type.") {
        return find("activities_by_type", "activity_type", t)?["count"].as_f64();
    }
    if let Some(m) = name.strip_prefix("plan_by_metric.") {
        return find("plan_by_metric", "metric", m)?["value"].as_f64();
    }
    if let Some(r) = name.strip_prefix("lost_reasons.") {
        return find("lost_reasons", "reason", r)?["value"].as_f64();
    }
    if let Some(step) = name.strip_prefix("stage_conversion.") {
        let (from, to) = step.split_once('>')?;
        let s = k["stage_conversion"]
            .as_array()?
            .iter()
            .find(|s| s["from_stage"] == from && s["to_stage"] == to)?;
        return s["value"].as_f64();
    }
    if let Some(stage) = name.strip_prefix("funnel.") {
        let steps = k["stage_conversion"].as_array()?;
        if steps.first()?["from_stage"] == stage {
            return steps[0]["denominator"].as_f64();
        }
        return steps.iter().find(|s| s["to_stage"] == stage)?["numerator"].as_f64();
    }
    if name == "plan_attainment" {
        let v: Vec<f64> = k["plan_attainment"]
            .as_array()?
            .iter()
            .filter_map(|p| p["value"].as_f64())
            .collect();
        return (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    }
    let mut v = k;
    for part in name.split('.') {
        v = &v[part];
    }
    if v.is_object() {
        v = &v["value"];
    }
    v.as_f64()
}

#[track_caller]
pub(crate) fn same(page: Option<f64>, api: Option<f64>, what: &str) {
    match (page, api) {
        (None, None) => {}
        (Some(p), Some(a)) => assert!(
            (p - a).abs() <= 1e-9 * a.abs().max(1.0),
            "{what}: the page shows {p}, the API says {a}"
        ),
        _ => panic!("{what}: the page shows {page:?}, the API says {api:?}"),
    }
}

pub(crate) async fn api(app: &TestApp, query: &str) -> Value {
    let r = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/kpis?{query}")))
        .bearer_auth(&app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{query}");
    r.json().await.unwrap()
}

/// Checks every figure of `html` against the API: the scope's own against `kpis`, each
/// manager's against the `by=manager` rows. Returns how many were checked.
pub(crate) async fn check_against_api(app: &TestApp, html: &str, query: &str) -> usize {
    let total = api(app, query).await;
    let rows = api(app, &format!("{query}&by=manager")).await;
    let figures = figures(html);
    for f in &figures {
        let k = match &f.manager {
            None => &total["kpis"],
            Some(m) => {
                let row = rows["rows"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|r| r["manager_id"] == m.as_str())
                    .unwrap_or_else(|| panic!("no API row for manager {m}"));
                &row["kpis"]
            }
        };
        same(
            f.value,
            api_value(k, &f.kpi),
            &format!("{} of {:?}", f.kpi, f.manager),
        );
    }
    figures.len()
}

/// The cells of a table as the page shows them (tags stripped), body and foot rows.
fn table_texts(html: &str, id: &str) -> Vec<Vec<String>> {
    let start = html
        .find(&format!(r#"id="table-{id}""#))
        .unwrap_or_else(|| panic!("table {id}"));
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    let body = &table[table.find("<tbody>").unwrap()..];
    let row = regex::Regex::new(r"(?s)<tr>(.*?)</tr>").unwrap();
    let cell = regex::Regex::new(r"(?s)<td[^>]*>(.*?)</td>").unwrap();
    let tag = regex::Regex::new(r"<[^>]+>").unwrap();
    row.captures_iter(body)
        .map(|r| {
            cell.captures_iter(&r[1])
                .map(|c| unescape(tag.replace_all(&c[1], "").trim()))
                .collect()
        })
        .collect()
}

async fn dashboard_app(backend: Backend) -> (TestApp, FakeLlm) {
    let llm = FakeLlm::start(vec![]).await;
    llm.always(Reply::Valid { answer: 1 });
    let app = app_with_llm(backend, &llm, |_| {}).await;
    crate::analytics_kpis::import_fixture(&app).await;
    (app, llm)
}

async fn the_dashboard_shows_exactly_the_api_figures(backend: Backend) {
    let (app, _llm) = dashboard_app(backend).await;
    // A scored call of m1 today, so the call figures of the current month are not all zero.
    scored_sample(&app, "m1").await;
    create_user(&app, "head", Role::Head, None).await;
    let head = sign_in(&app, "head").await;

    // March as the page says it (1-31, inclusive), the company and one team.
    for (page, query) in [
        (
            "from=2026-03-01&to=2026-03-31",
            "from=2026-03-01&to=2026-04-01",
        ),
        (
            "from=2026-03-01&to=2026-03-31&team=east",
            "from=2026-03-01&to=2026-04-01&team=east",
        ),
    ] {
        let r = get(&app, &format!("/dashboard?{page}"), &head).await;
        assert_eq!(r.status(), StatusCode::OK, "{page}");
        let html = r.text().await.unwrap();
        let checked = check_against_api(&app, &html, query).await;
        assert!(checked > 40, "{page}: only {checked} figures on the page");
        // One funnel bar per stage, with the API's counts (checked above as funnel.<stage>).
        let stages = figures(&html)
            .into_iter()
            .filter(|f| f.kpi.starts_with("funnel."))
            .count();
        assert_eq!(stages, 6, "{page}: the six stages of the default funnel");
        assert!(html.contains(r#"data-stages="6""#));

        // The managers table downloads as exactly what it shows, with a BOM for Excel.
        let r = get(
            &app,
            &format!("/dashboard?{page}&format=csv&table=managers"),
            &head,
        )
        .await;
        assert_eq!(r.status(), StatusCode::OK);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv"));
        let bytes = r.bytes().await.unwrap();
        assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "a BOM first");
        let mut reader = csv::Reader::from_reader(&bytes[3..]);
        let csv_rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_string).collect())
            .collect();
        let shown = table_texts(&html, "managers");
        assert!(shown.len() >= 3, "managers and the average: {shown:?}");
        assert_eq!(csv_rows, shown, "{page}: the CSV holds exactly the table");
    }
    // The team's managers only.
    let html = get(
        &app,
        "/dashboard?from=2026-03-01&to=2026-03-31&team=east",
        &head,
    )
    .await
    .text()
    .await
    .unwrap();
    let managers: std::collections::BTreeSet<String> = figures(&html)
        .into_iter()
        .filter_map(|f| f.manager)
        .collect();
    assert_eq!(
        managers.into_iter().collect::<Vec<_>>(),
        ["m1", "m2"],
        "east is m1 and m2"
    );

    // Another period, other figures: April has 2 call activities, March 4.
    let call_activities = |html: &str| {
        figures(html)
            .into_iter()
            .find(|f| f.kpi == "activities_by_type.call" && f.manager.is_none())
            .and_then(|f| f.value)
    };
    let march = get(&app, "/dashboard?from=2026-03-01&to=2026-03-31", &head)
        .await
        .text()
        .await
        .unwrap();
    let april = get(&app, "/dashboard?from=2026-04-01&to=2026-04-30", &head)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(call_activities(&march), Some(4.0));
    assert_eq!(call_activities(&april), Some(2.0));
    check_against_api(&app, &april, "from=2026-04-01&to=2026-05-01").await;

    // The current month (the preset) holds today's scored call.
    let html = get(&app, "/dashboard", &head).await.text().await.unwrap();
    let today = chrono::Utc::now().date_naive();
    let first = today.with_day0(0).unwrap();
    let next = first.checked_add_months(chrono::Months::new(1)).unwrap();
    check_against_api(&app, &html, &format!("from={first}&to={next}")).await;
    let analysed = figures(&html)
        .into_iter()
        .find(|f| f.kpi == "calls.analysed" && f.manager.is_none())
        .and_then(|f| f.value);
    assert_eq!(analysed, Some(1.0), "this month's scored call");

    // A period that ends before it starts is refused with a message, not a 500.
    let r = get(&app, "/dashboard?from=2026-03-31&to=2026-03-01", &head).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An unknown team is the API's 404.
    let r = get(&app, "/dashboard?period=this_month&team=nowhere", &head).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

use chrono::Datelike;

async fn a_managers_page_shows_their_figures_and_only_to_them(backend: Backend) {
    let (app, _llm) = dashboard_app(backend).await;
    create_user(&app, "head", Role::Head, None).await;
    create_user(&app, "anna", Role::Manager, Some("m1")).await;
    let head = sign_in(&app, "head").await;
    let anna = sign_in(&app, "anna").await;

    // A manager never opens the dashboard.
    let r = get(&app, "/dashboard", &anna).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Their own page: their figures, equal to the API's for them.
    for who in [&anna, &head] {
        let r = get(&app, "/managers/m1?from=2026-03-01&to=2026-03-31", who).await;
        assert_eq!(r.status(), StatusCode::OK);
        let html = r.text().await.unwrap();
        assert!(html.contains("Anna Ivanova"), "the CRM's name");
        let total = api(&app, "from=2026-03-01&to=2026-04-01&manager_id=m1").await;
        let mut checked = 0;
        for f in figures(&html) {
            if f.kpi.starts_with("criterion.") {
                continue;
            }
            assert_eq!(f.manager.as_deref().unwrap_or("m1"), "m1");
            same(f.value, api_value(&total["kpis"], &f.kpi), &f.kpi);
            checked += 1;
        }
        assert!(checked > 10, "{checked} figures");
        assert!(
            html.contains(r#"data-kpi="plan_by_metric.calls""#),
            "m1's plans are on the page"
        );
    }
    // Another manager's page is a 404 to a manager, as their calls are.
    let r = get(&app, "/managers/m2", &anna).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // A manager nobody knows is a 404 to a head too.
    let r = get(&app, "/managers/nobody", &head).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

on_both_backends!(
    the_dashboard_shows_exactly_the_api_figures,
    a_managers_page_shows_their_figures_and_only_to_them,
);

/// Posts one CSV file as the import page's script does.
async fn page_import(app: &TestApp, cookie: &str, entity: &str, csv: &str) -> reqwest::Response {
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(csv.as_bytes().to_vec()).file_name(format!("{entity}.csv")),
    );
    crate::web::browser()
        .post(app.url(&format!("/import/{entity}")))
        .header(reqwest::header::COOKIE, cookie)
        .header("sec-fetch-site", "same-origin")
        .multipart(form)
        .send()
        .await
        .unwrap()
}

async fn the_import_page_imports_reports_refused_rows_and_shows_the_last_import(backend: Backend) {
    let app = crate::helpers::spawn_app(backend, callgrade::jobs::Registry::new()).await;
    create_user(&app, "head", Role::Head, None).await;
    create_user(&app, "anna", Role::Manager, Some("m1")).await;
    let head = sign_in(&app, "head").await;
    let anna = sign_in(&app, "anna").await;

    let html = get(&app, "/import", &head).await.text().await.unwrap();
    assert_eq!(
        html.matches("never imported").count(),
        7,
        "seven files, none yet"
    );

    let managers = std::fs::read_to_string(format!("{FIXTURES}/managers.csv")).unwrap();
    let r = page_import(&app, &head, "managers", &managers).await;
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(
        (report["rows"].as_i64(), report["inserted"].as_i64()),
        (Some(3), Some(3))
    );

    // A bad row is listed with its line and column; the good row is kept.
    let deals = "deal_id,manager_id,created_at,status\n\
                 d1,m1,2026-03-01T10:00:00Z,won\n\
                 d2,m1,yesterday,open\n";
    let r = page_import(&app, &head, "deals", deals).await;
    assert_eq!(r.status(), StatusCode::OK);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["rejected"], 1);
    assert_eq!(report["errors"][0]["line"], 3);
    assert_eq!(report["errors"][0]["column"], "created_at");
    // Strict: refused whole, 422, nothing written.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(deals.as_bytes().to_vec()).file_name("deals.csv"),
    );
    let r = crate::web::browser()
        .post(app.url("/import/deals?strict=true"))
        .header(reqwest::header::COOKIE, &head)
        .header("sec-fetch-site", "same-origin")
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // A file the contract does not have is the API's 404 with its message.
    let r = page_import(&app, &head, "invoices", "a,b\n1,2\n").await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // The page shows each file's latest import: managers 3 new; deals refused whole (strict).
    let html = get(&app, "/import", &head).await.text().await.unwrap();
    assert_eq!(html.matches("never imported").count(), 5);
    let row = |entity: &str| {
        let start = html.find(&format!(r#"data-entity="{entity}""#)).unwrap();
        html[start..start + html[start..].find("</tr>").unwrap()].to_string()
    };
    assert!(
        row("managers").contains(r#"<td class="num">3</td>"#),
        "{}",
        row("managers")
    );
    assert!(
        row("deals").contains("refused, nothing written"),
        "{}",
        row("deals")
    );
    // The command line's imports are logged too.
    import_path(
        &app.store,
        std::path::Path::new(FIXTURES),
        ImportOptions::default(),
        |_, _| None,
    )
    .await
    .unwrap();
    let html = get(&app, "/import", &head).await.text().await.unwrap();
    assert_eq!(html.matches("never imported").count(), 0);

    // Managers neither see the page nor import.
    let r = get(&app, "/import", &anna).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = page_import(&app, &anna, "managers", &managers).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

on_both_backends!(the_import_page_imports_reports_refused_rows_and_shows_the_last_import);

/// Weekly trends over the fixture, by hand: deals closed per Monday-to-Monday week.
async fn weekly_trends_count_each_week_and_group(backend: Backend) {
    let app = crate::analytics_kpis::app_with_fixture(backend).await;
    let (status, t) = app
        .get_json(&app.admin, "/api/v1/trends?to=2026-04-01&weeks=5")
        .await;
    assert_eq!(status, 200, "{t}");
    let weeks: Vec<&str> = t["weeks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(
        weeks,
        [
            "2026-03-02T00:00:00Z",
            "2026-03-09T00:00:00Z",
            "2026-03-16T00:00:00Z",
            "2026-03-23T00:00:00Z",
            "2026-03-30T00:00:00Z"
        ]
    );
    let win = |group: Value| -> Vec<(i64, i64)> {
        let s = t["series"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["group"] == group)
            .unwrap_or_else(|| panic!("{group}"));
        s["win_rate"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["numerator"].as_i64().unwrap(),
                    r["denominator"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    // d4 (3 Mar); d1 won and d9 lost (12, 13 Mar); d2 (20 Mar); d3 lost (25 Mar); d7 won at
    // 01:00 UTC on 1 April, inside the week of 30 March.
    assert_eq!(win(Value::Null), [(1, 1), (1, 2), (1, 1), (0, 1), (1, 1)]);
    assert_eq!(win("east".into()), [(1, 1), (1, 1), (1, 1), (0, 1), (0, 0)]);
    assert_eq!(win("west".into()), [(0, 0), (0, 1), (0, 0), (0, 0), (1, 1)]);
    // One team: a line per manager.
    let (_, t) = app
        .get_json(&app.admin, "/api/v1/trends?to=2026-04-01&weeks=5&team=east")
        .await;
    let groups: Vec<Value> = t["series"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["group"].clone())
        .collect();
    assert_eq!(groups, [Value::Null, "m1".into(), "m2".into()]);
    // Managers do not get the company's trends; an unknown team is a 404.
    let manager = app.token(Role::Manager, Some("m1")).await;
    let (status, _) = app.get_json(&manager, "/api/v1/trends").await;
    assert_eq!(status, 403);
    let (status, _) = app
        .get_json(&app.admin, "/api/v1/trends?team=nowhere")
        .await;
    assert_eq!(status, 404);
    app.stop().await;
}

on_both_backends!(weekly_trends_count_each_week_and_group);
