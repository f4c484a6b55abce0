//! The upload page (`/upload`; admin, qa, manager): several files by drag and drop, the API's
//! metadata fields, a progress bar per file.
//!
//! The page's script sends each file on its own (`POST /upload`, same origin, session) and the
//! server runs the API's own upload handler with the session's principal, so the checks are
//! the API's; only the answer differs: a link into the web app, and a refusal explained in the
//! user's language.

use axum::extract::{DefaultBodyLimit, Multipart, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use minijinja::context;
use serde::Serialize;

use super::session::WebUser;
use super::{render, Nonce, PageCtx};
use crate::domain::Role;
use crate::http::{ApiError, AppState};

/// The upload page's routes; `body_limit` as the API's upload.
pub fn routes(body_limit: usize) -> Router<AppState> {
    Router::new().route(
        "/upload",
        get(page)
            .post(upload)
            .layer(DefaultBodyLimit::max(body_limit)),
    )
}

fn may_upload(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Qa | Role::Manager)
}

async fn page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
) -> Response {
    if !may_upload(web.principal.role) {
        return super::error_page(StatusCode::FORBIDDEN, web.lang, &nonce, Some(&web.user));
    }
    let limit_mb = state.config.max_upload_bytes / (1024 * 1024);
    let ctx = PageCtx {
        lang: web.lang,
        nonce: &nonce,
        user: Some(&web.user),
        here: "/upload",
        page: "upload",
    };
    render(
        "upload.html",
        ctx,
        context! {
            own_manager => web.principal.scope().map(|m| m.to_string()),
            limit_mb => limit_mb,
            limit_text => web.lang.t("upload_limit").replace("{mb}", &limit_mb.to_string()),
            too_large => web.lang.t("upload_too_large").replace("{mb}", &limit_mb.to_string()),
            upload_texts => context! {
                waiting => web.lang.t("upload_waiting"),
                sending => web.lang.t("upload_sending"),
                checking => web.lang.t("upload_checking"),
                open => web.lang.t("upload_open"),
                failed => web.lang.t("upload_failed"),
                network => web.lang.t("upload_network"),
            },
        },
    )
}

/// What the page's script gets back for one file.
#[derive(Serialize)]
struct Answer {
    ok: bool,
    duplicate: bool,
    url: Option<String>,
    message: String,
}

async fn upload(State(state): State<AppState>, web: WebUser, multipart: Multipart) -> Response {
    let lang = web.lang;
    let result = crate::http::calls::upload(State(state.clone()), web.auth(), multipart).await;
    match result {
        Ok((status, Json(done))) => {
            let key = if done.duplicate {
                "upload_duplicate"
            } else {
                "upload_queued"
            };
            (
                status,
                Json(Answer {
                    ok: true,
                    duplicate: done.duplicate,
                    url: Some(format!("/calls/{}", done.id)),
                    message: lang.t(key).to_string(),
                }),
            )
                .into_response()
        }
        Err(e) => {
            let limit_mb = state.config.max_upload_bytes / (1024 * 1024);
            let (status, message) = explain(&e, lang, limit_mb);
            (
                status,
                Json(Answer {
                    ok: false,
                    duplicate: false,
                    url: None,
                    message,
                }),
            )
                .into_response()
        }
    }
}

/// A refusal in the user's words, with the API's detail where it adds something.
fn explain(e: &ApiError, lang: super::i18n::Lang, limit_mb: u64) -> (StatusCode, String) {
    let status = e.status();
    let message = match e {
        ApiError::PayloadTooLarge(_) => lang
            .t("upload_too_large")
            .replace("{mb}", &limit_mb.to_string()),
        ApiError::UnsupportedMediaType(_) => lang.t("upload_not_audio").to_string(),
        ApiError::BadRequest(m) if m.contains("empty") => lang.t("upload_empty").to_string(),
        ApiError::RequestTimeout(_) => lang.t("upload_stalled").to_string(),
        ApiError::Forbidden(_) => lang.t("upload_forbidden").to_string(),
        ApiError::Unprocessable(m) => format!("{} ({m})", lang.t("upload_deal_refused")),
        ApiError::BadRequest(m) => format!("{} ({m})", lang.t("upload_bad_field")),
        ApiError::Internal(_) => lang.t("upload_failed").to_string(),
        other => format!("{} ({other})", lang.t("upload_failed")),
    };
    (status, message)
}
