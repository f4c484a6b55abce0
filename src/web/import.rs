//! The CRM import page (`/import`; admin, qa, head): several CSV files of the CRM export at once,
//! a progress bar per file, the per-row error report as a table, and when each file was last
//! imported with its row counts.
//!
//! The page's script sends each file on its own (`POST /import/{entity}`, same origin, session,
//! in the contract's order: managers first) and the server runs the API's own import handler
//! (`POST /api/v1/import/{entity}`) with the session's principal, so the checks and the report
//! are the API's.

use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use minijinja::context;
use serde::Serialize;

use super::session::WebUser;
use super::{render, Nonce, PageCtx};
use crate::analytics::entity::{Entity, Problem};
use crate::domain::{to_datetime, Role};
use crate::http::analytics::ImportQuery;
use crate::http::AppState;

/// The import page's routes; `body_limit` as the API's import.
pub fn routes(body_limit: usize) -> Router<AppState> {
    Router::new().route("/import", get(page)).route(
        "/import/{entity}",
        post(import).layer(DefaultBodyLimit::max(body_limit)),
    )
}

fn may_import(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Qa | Role::Head)
}

/// One file's latest import, ready to show.
#[derive(Serialize)]
struct LastImport {
    entity: &'static str,
    file: String,
    when_iso: String,
    when_text: String,
    rows: i64,
    inserted: i64,
    updated: i64,
    unchanged: i64,
    rejected: i64,
    committed: bool,
}

async fn page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
) -> Response {
    let lang = web.lang;
    if !may_import(web.principal.role) {
        return super::error_page(StatusCode::FORBIDDEN, lang, &nonce, Some(&web.user));
    }
    let last = match state.store.last_crm_imports().await {
        Ok(rows) => rows,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    // Every file of the contract, in its order, with its latest import if there was one.
    let files: Vec<serde_json::Value> = Entity::ALL
        .iter()
        .map(|e| {
            let row = last.iter().find(|r| r.entity == *e).map(|r| {
                let when = to_datetime(r.imported_at);
                LastImport {
                    entity: e.as_str(),
                    file: r.file.clone(),
                    when_iso: when.to_rfc3339(),
                    when_text: when.format("%Y-%m-%d %H:%M UTC").to_string(),
                    rows: r.rows_read,
                    inserted: r.inserted,
                    updated: r.updated,
                    unchanged: r.unchanged,
                    rejected: r.rejected,
                    committed: r.committed != 0,
                }
            });
            serde_json::json!({ "entity": e.as_str(), "name": format!("{}.csv", e.as_str()), "last": row })
        })
        .collect();
    let limit_mb = state.config.max_upload_bytes / (1024 * 1024);
    let ctx = PageCtx {
        lang,
        nonce: &nonce,
        user: Some(&web.user),
        here: "/import",
        page: "import",
    };
    render(
        "import.html",
        ctx,
        context! {
            files => files,
            limit_mb => limit_mb,
            order => Entity::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            import_texts => context! {
                waiting => lang.t("import_waiting"),
                sending => lang.t("import_sending"),
                reading => lang.t("import_reading"),
                unknown => lang.t("import_unknown_file"),
                too_large => lang.t("upload_too_large").replace("{mb}", &limit_mb.to_string()),
                done => lang.t("import_done"),
                refused => lang.t("import_refused_strict"),
                failed => lang.t("import_failed"),
                counts => lang.t("import_counts"),
                line => lang.t("import_col_line"),
                column => lang.t("import_col_column"),
                reason => lang.t("import_col_reason"),
                more => lang.t("import_more_errors"),
                problems => Problem::ALL
                    .iter()
                    .map(|p| (p.as_str(), lang.t(&format!("import_problem_{p}"))))
                    .collect::<std::collections::BTreeMap<_, _>>(),
            },
        },
    )
}

/// One file from the page: the API's import, answered as the API answers (JSON report).
async fn import(
    State(state): State<AppState>,
    web: WebUser,
    Path(entity): Path<String>,
    Query(q): Query<ImportQuery>,
    request: Request,
) -> Response {
    match crate::http::analytics::import(State(state), web.auth(), Path(entity), Query(q), request)
        .await
    {
        Ok(answer) => answer.into_response(),
        Err(e) => e.into_response(),
    }
}
