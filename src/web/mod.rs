//! The web app: server-rendered pages on the API's port (decision 0014).
//!
//! Pages are minijinja templates embedded in the binary (`templates/`), with every text in two
//! languages (`i18n/`). Sign-in makes a session (`session.rs`); the API stays bearer-only.
//! Every page answer carries a strict Content-Security-Policy with a fresh nonce, and every
//! state-changing request from another site is refused ([`guard`]).

pub mod admin;
pub mod assets;
pub mod call;
pub mod dashboard;
pub mod i18n;
pub mod import;
pub mod limiter;
pub mod search;
pub mod session;
pub mod upload;

use std::net::SocketAddr;
use std::sync::OnceLock;

use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use minijinja::{context, Environment, Value};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use self::i18n::Lang;
use self::session::{safe_next, urlencode, WebUser};
use crate::auth::hash_secret;
use crate::domain::{to_datetime, CallStatus, Language, ManagerId, Role};
use crate::http::AppState;
use crate::store::{CallFilter, CallRow, RowFilter, UserRecord};

/// Calls per page of the calls list.
const PAGE_SIZE: i64 = 50;

/// The pages and their assets; merged into the application's router. `upload_body_limit` is
/// the API's upload limit (the upload page takes the same files).
pub fn routes(upload_body_limit: usize) -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/calls") }))
        .merge(search::routes())
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/language", post(set_language))
        .route("/calls", get(calls_page))
        .route("/assets/{name}", get(assets::serve))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent(&assets::url("favicon.svg")) }),
        )
        .merge(call::routes())
        .merge(upload::routes(upload_body_limit))
        .merge(admin::routes())
        .merge(dashboard::routes())
        .merge(import::routes(upload_body_limit))
}

/// A request's CSP nonce: scripts run only with it (or from our own origin).
#[derive(Clone)]
pub struct Nonce(pub String);

/// Guards every page request: refuses a state-changing request sent by another site (403), and
/// gives each answer its security headers: a Content-Security-Policy whose scripts need this
/// request's nonce or our own origin (no `'unsafe-inline'`), no framing, no MIME sniffing.
/// The API (`/api/`) is left as it is: it takes only bearer tokens, which a browser never adds
/// on its own.
pub async fn guard(mut req: Request, next: Next) -> Response {
    if req.uri().path().starts_with("/api/") {
        return next.run(req).await;
    }
    let method = req.method();
    let changes_state =
        method != Method::GET && method != Method::HEAD && method != Method::OPTIONS;
    let nonce = new_nonce();
    if changes_state && !same_origin(req.headers()) {
        tracing::warn!(path = %req.uri().path(), "cross-site request refused");
        let lang = session::language(req.headers(), None);
        let mut response = error_page(StatusCode::FORBIDDEN, lang, &nonce, None);
        add_security_headers(&mut response, &nonce);
        return response;
    }
    req.extensions_mut().insert(Nonce(nonce.clone()));
    let mut response = next.run(req).await;
    add_security_headers(&mut response, &nonce);
    response
}

/// Whether a request comes from our own pages: the browser's `Sec-Fetch-Site` says so, or
/// (older browsers) its `Origin` is this host. A request with neither header is not from a
/// browser page (curl, scripts) and carries no ambient credentials it did not mean to send.
fn same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    let Some(origin) = headers.get("origin").and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn add_security_headers(response: &mut Response, nonce: &str) {
    let csp = format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; \
         img-src 'self' data:; media-src 'self' blob:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&csp) {
        headers.insert(CONTENT_SECURITY_POLICY, v);
    }
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    headers.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    // Pages show personal data: no shared or back-button caches. Assets set their own.
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

fn templates() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        // Names end in .html, so every value is HTML-escaped unless marked safe.
        for (name, source) in [
            ("search.html", include_str!("templates/search.html")),
            ("base.html", include_str!("templates/base.html")),
            ("login.html", include_str!("templates/login.html")),
            ("calls.html", include_str!("templates/calls.html")),
            ("error.html", include_str!("templates/error.html")),
            ("call.html", include_str!("templates/call.html")),
            ("upload.html", include_str!("templates/upload.html")),
            ("queue.html", include_str!("templates/queue.html")),
            ("users.html", include_str!("templates/users.html")),
            ("_dash.html", include_str!("templates/_dash.html")),
            ("dashboard.html", include_str!("templates/dashboard.html")),
            ("manager.html", include_str!("templates/manager.html")),
            ("import.html", include_str!("templates/import.html")),
        ] {
            if let Err(e) = env.add_template(name, source) {
                // Embedded and rendered by the tests: a broken template cannot reach a release.
                tracing::error!(error = %e, template = name, "template does not parse");
            }
        }
        env.add_function("asset", |name: String| {
            Value::from_safe_string(assets::url(&name))
        });
        env
    })
}

/// What every page needs besides its own context.
pub(crate) struct PageCtx<'a> {
    pub(crate) lang: Lang,
    pub(crate) nonce: &'a str,
    pub(crate) user: Option<&'a UserRecord>,
    pub(crate) here: &'a str,
    pub(crate) page: &'a str,
}

#[derive(Serialize)]
struct UserView<'a> {
    username: &'a str,
    role: &'static str,
    role_label: &'static str,
    manager_id: Option<&'a str>,
}

pub(crate) fn render(template: &str, ctx: PageCtx<'_>, extra: Value) -> Response {
    let t = ctx.lang.texts();
    let langs: Vec<Value> = Lang::ALL
        .iter()
        .map(|l| context! { code => l.code(), label => l.code().to_uppercase() })
        .collect();
    let user = ctx.user.map(|u| UserView {
        username: &u.username,
        role: u.role.as_str(),
        role_label: ctx.lang.t(&format!("role_{}", u.role.as_str())),
        manager_id: u.manager_id.as_ref().map(|m| m.as_str()),
    });
    let full = context! {
        lang => ctx.lang.code(),
        t => t,
        nonce => ctx.nonce,
        user => user,
        here => ctx.here,
        page => ctx.page,
        langs => langs,
        ..extra
    };
    match templates()
        .get_template(template)
        .and_then(|tpl| tpl.render(full))
    {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, template, "page did not render");
            (StatusCode::INTERNAL_SERVER_ERROR, "page did not render").into_response()
        }
    }
}

/// The error page for a status (404 also for what the user may not see, as the API does).
pub fn error_page(
    status: StatusCode,
    lang: Lang,
    nonce: &str,
    user: Option<&UserRecord>,
) -> Response {
    let (title, text) = match status {
        StatusCode::FORBIDDEN => (lang.t("forbidden_title"), lang.t("forbidden_text")),
        _ => (lang.t("not_found_title"), lang.t("not_found_text")),
    };
    let ctx = PageCtx {
        lang,
        nonce,
        user,
        here: "/calls",
        page: "error",
    };
    let mut response = render(
        "error.html",
        ctx,
        context! { code => status.as_u16(), title => title, text => text },
    );
    *response.status_mut() = status;
    response
}

/// The HTML 404 page for a path that is no page (the API's own paths answer JSON).
pub async fn not_found(headers: HeaderMap, nonce: Option<Extension<Nonce>>) -> Response {
    let nonce = nonce.map(|n| n.0 .0).unwrap_or_else(new_nonce);
    error_page(
        StatusCode::NOT_FOUND,
        session::language(&headers, None),
        &nonce,
        None,
    )
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    next: Option<String>,
    /// Set after signing out.
    out: Option<String>,
}

async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Query(q): Query<LoginQuery>,
) -> Response {
    let lang = session::language(&headers, None);
    let next = safe_next(q.next.as_deref());
    // Already signed in: straight on.
    if let Ok(Some(_)) = session::current_user(&state, &headers).await {
        return Redirect::to(&next).into_response();
    }
    let notice = if q.out.is_some() {
        Some(lang.t("login_signed_out"))
    } else if session::session_secret(&state, &headers).is_some() {
        Some(lang.t("login_expired"))
    } else {
        None
    };
    login_form(lang, &nonce, &next, "", notice, None)
}

fn login_form(
    lang: Lang,
    nonce: &str,
    next: &str,
    username: &str,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let here = format!("/login?next={}", urlencode(next));
    let ctx = PageCtx {
        lang,
        nonce,
        user: None,
        here: &here,
        page: "login",
    };
    render(
        "login.html",
        ctx,
        context! { next => next, username => username, notice => notice, error => error },
    )
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    peer: Option<Extension<ConnectInfo<SocketAddr>>>,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Form(form): Form<LoginForm>,
) -> Response {
    let lang = session::language(&headers, None);
    let next = safe_next(form.next.as_deref());
    let username = form.username.trim().to_lowercase();
    let address = peer.map(|Extension(ConnectInfo(a))| a.ip().to_string());
    let refuse = |status: StatusCode, key: &str| {
        let mut r = login_form(lang, &nonce, &next, &username, None, Some(lang.t(key)));
        *r.status_mut() = status;
        r
    };
    if !state.logins.allowed(&username, address.as_deref()) {
        tracing::warn!(username, address, "sign-in refused: too many failures");
        let mut r = refuse(StatusCode::TOO_MANY_REQUESTS, "login_rate_limited");
        r.headers_mut()
            .insert("retry-after", HeaderValue::from_static("900"));
        return r;
    }
    let found = match state.store.credentials(&username).await {
        Ok(found) => found,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    let (stored, user) = match found {
        Some(c) if c.user.disabled_at.is_none() => (Some(c.password_hash), Some(c.user)),
        // Unknown or disabled: checked against a decoy anyway, so timing tells nothing.
        _ => (None, None),
    };
    let password = form.password;
    // Off the async threads, the decoy too (its first use hashes it).
    let matches = tokio::task::spawn_blocking(move || match stored {
        Some(hash) => crate::accounts::verify_password(&hash, &password),
        None => crate::accounts::verify_password(crate::accounts::decoy_hash(), &password),
    })
    .await
    .unwrap_or(false);
    let Some(user) = user.filter(|_| matches) else {
        state.logins.failed(&username, address.as_deref());
        tracing::info!(username, address, "sign-in failed");
        return refuse(StatusCode::UNAUTHORIZED, "login_failed");
    };
    state.logins.succeeded(&username);
    let cookie = match session::start(&state, &headers, &user).await {
        Ok(c) => c,
        Err(e) => return crate::http::ApiError::from(e).into_response(),
    };
    tracing::info!(username, role = %user.role, "signed in");
    let mut response = Redirect::to(&next).into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(secret) = session::session_secret(&state, &headers) {
        if let Err(e) = state.store.end_session(&hash_secret(&secret)).await {
            return crate::http::ApiError::from(e).into_response();
        }
    }
    let mut response = Redirect::to("/login?out=1").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, session::clear(&state, &headers));
    response
}

#[derive(Debug, Deserialize)]
struct LanguageForm {
    lang: String,
    back: Option<String>,
}

async fn set_language(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LanguageForm>,
) -> Response {
    let lang = Lang::from_code(&form.lang).unwrap_or(Lang::En);
    if let Ok(Some(user)) = session::current_user(&state, &headers).await {
        if let Err(e) = state.store.set_user_language(user.id, lang.code()).await {
            tracing::warn!(error = %e, "could not remember the language");
        }
    }
    let mut response = Redirect::to(&safe_next(form.back.as_deref())).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, session::language_cookie(&state, &headers, lang));
    response
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct CallsQuery {
    #[serde(default)]
    status: String,
    #[serde(default)]
    manager: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    team: String,
    #[serde(default)]
    language: String,
    /// Overall score range, 0-100.
    #[serde(default)]
    min: String,
    #[serde(default)]
    max: String,
    /// `yes`, `no` or empty.
    #[serde(default)]
    critical: String,
    /// A criterion id and the level it got.
    #[serde(default)]
    criterion: String,
    #[serde(default)]
    level: String,
    #[serde(default)]
    cursor: String,
}

/// One row of the calls list, ready to show.
#[derive(Serialize)]
struct CallLine {
    id: String,
    when_iso: String,
    when_text: String,
    has_start: bool,
    filename: Option<String>,
    manager: String,
    duration: Option<String>,
    status: &'static str,
    status_label: &'static str,
    failure: Option<String>,
    score: Option<String>,
    band: &'static str,
    critical: bool,
    language: &'static str,
}

fn call_line(row: CallRow, lang: Lang) -> CallLine {
    let call = &row.record.call;
    let when = call.started_at.unwrap_or(row.record.created_at);
    let when = to_datetime(when);
    let status = row.record.status.as_str();
    CallLine {
        id: call.id.to_string(),
        when_iso: when.to_rfc3339(),
        when_text: when.format("%Y-%m-%d %H:%M UTC").to_string(),
        has_start: call.started_at.is_some(),
        filename: call.original_filename.clone(),
        manager: call.manager_id.to_string(),
        duration: row.duration_ms.map(i18n::duration),
        status,
        status_label: lang.t(&format!("status_{status}")),
        failure: row.record.failure_reason.clone(),
        score: row.overall.map(|s| lang.number(s, 0)),
        band: match row.overall {
            Some(s) if s >= 80.0 => "good",
            Some(s) if s >= 60.0 => "mid",
            _ => "low",
        },
        critical: row.critical_failures.unwrap_or(0) > 0,
        language: lang.t(match call.language {
            Language::Ru => "lang_ru",
            Language::En => "lang_en",
            Language::Auto => "lang_auto",
        }),
    }
}

async fn calls_page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Query(q): Query<CallsQuery>,
) -> Response {
    let lang = web.lang;
    let scoped = web.principal.role == Role::Manager;
    let (filter, error) = calls_filter(&q, &web);
    let rows = match filter {
        Some((ref f, ref rows)) => match state.store.list_call_rows(f, rows).await {
            Ok(rows) => rows,
            Err(e) => return crate::http::ApiError::from(e).into_response(),
        },
        None => Vec::new(),
    };
    let next_link = (rows.len() as i64 == PAGE_SIZE)
        .then(|| rows.last().map(|r| r.record.call.id.to_string()))
        .flatten()
        .map(|cursor| {
            let next = CallsQuery {
                cursor,
                ..q.clone()
            };
            format!("/calls?{}", query_string(&next))
        });
    let first_page_link = (!q.cursor.is_empty()).then(|| {
        format!(
            "/calls?{}",
            query_string(&CallsQuery {
                cursor: String::new(),
                ..q.clone()
            })
        )
    });
    let statuses: Vec<Value> = [
        CallStatus::Queued,
        CallStatus::Transcribing,
        CallStatus::Scoring,
        CallStatus::Done,
        CallStatus::Failed,
    ]
    .iter()
    .map(|s| context! { code => s.as_str(), label => lang.t(&format!("status_{}", s.as_str())) })
    .collect();
    let live = rows
        .iter()
        .any(|r| !matches!(r.record.status, CallStatus::Done | CallStatus::Failed));
    let calls: Vec<CallLine> = rows.into_iter().map(|r| call_line(r, lang)).collect();
    let criteria = criterion_choices(&state, lang).await;
    let levels: Vec<Value> = ["strong", "weak", "absent", "na"]
        .iter()
        .map(|l| context! { code => l, label => lang.t(&format!("level_{l}")) })
        .collect();
    let more_filters = [
        &q.team,
        &q.language,
        &q.min,
        &q.max,
        &q.critical,
        &q.criterion,
    ]
    .iter()
    .any(|v| !v.is_empty());
    let here = format!("/calls?{}", query_string(&q));
    let ctx = PageCtx {
        lang,
        nonce: &nonce,
        user: Some(&web.user),
        here: &here,
        page: "calls",
    };
    let mut response = render(
        "calls.html",
        ctx,
        context! {
            calls => calls,
            criteria => criteria,
            levels => levels,
            more_filters => more_filters,
            live => live,
            scoped => scoped,
            filter => &q,
            statuses => statuses,
            next_link => next_link,
            first_page_link => first_page_link,
            error => error,
        },
    );
    if error.is_some() {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    response
}

/// The criteria of the current scorecards, in the UI language where a variant exists.
async fn criterion_choices(state: &AppState, lang: Lang) -> Vec<Value> {
    criterion_titles(state, lang)
        .await
        .into_iter()
        .map(|(id, title)| context! { id => id, title => title })
        .collect()
}

/// Each criterion id of the scorecards with its title, in the UI language where a variant
/// exists, in the scorecards' order.
pub(crate) async fn criterion_titles(state: &AppState, lang: Lang) -> Vec<(String, String)> {
    let rubrics = state.store.list_rubrics().await.unwrap_or_default();
    let mut seen: Vec<(String, String)> = Vec::new();
    let preferred = rubrics.iter().filter(|r| r.rubric.language == lang.code());
    let others = rubrics.iter().filter(|r| r.rubric.language != lang.code());
    for stored in preferred.chain(others) {
        for (_, c) in stored.rubric.criteria() {
            if !seen.iter().any(|(id, _)| id == &c.id) {
                seen.push((c.id.clone(), c.title.clone()));
            }
        }
    }
    seen
}

fn query_string(q: &CallsQuery) -> String {
    [
        ("status", &q.status),
        ("manager", &q.manager),
        ("from", &q.from),
        ("to", &q.to),
        ("team", &q.team),
        ("language", &q.language),
        ("min", &q.min),
        ("max", &q.max),
        ("critical", &q.critical),
        ("criterion", &q.criterion),
        ("level", &q.level),
        ("cursor", &q.cursor),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={}", urlencode(v)))
    .collect::<Vec<_>>()
    .join("&")
}

/// The store filter for the calls page, with the API's role rule: a manager sees only their
/// own calls, whatever the query asks. An input that does not parse is shown as an error.
fn calls_filter(
    q: &CallsQuery,
    web: &WebUser,
) -> (Option<(CallFilter, RowFilter)>, Option<String>) {
    let result = (|| -> Result<(CallFilter, RowFilter), String> {
        let status = (!q.status.is_empty())
            .then(|| q.status.parse::<CallStatus>())
            .transpose()
            .map_err(|e| e.to_string())?;
        let requested = (!q.manager.trim().is_empty())
            .then(|| ManagerId::parse(&q.manager))
            .transpose()
            .map_err(|e| e.to_string())?;
        let manager_id = match web.principal.scope() {
            Some(own) => Some(own.clone()),
            None => requested,
        };
        let day = |s: &str, label: &str| {
            crate::domain::parse_day(s)
                .map(crate::domain::day_start)
                .map_err(|e| format!("{}: {e}", web.lang.t(label)))
        };
        let from = (!q.from.is_empty())
            .then(|| day(&q.from, "filter_from"))
            .transpose()?;
        // The end date is inclusive in the UI: calls of that whole day are shown.
        let to = (!q.to.is_empty())
            .then(|| day(&q.to, "filter_to").map(|t| t + 86_400_000))
            .transpose()?;
        let before = (!q.cursor.is_empty())
            .then(|| q.cursor.parse())
            .transpose()
            .map_err(|_| "cursor".to_string())?;
        let score = |s: &str, label: &str| -> Result<Option<f64>, String> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            s.trim()
                .replace(',', ".")
                .parse::<f64>()
                .ok()
                .filter(|v| (0.0..=100.0).contains(v))
                .map(Some)
                .ok_or_else(|| {
                    format!(
                        "{}: {}",
                        web.lang.t(label),
                        web.lang.t("filter_score_range")
                    )
                })
        };
        let level = (!q.level.is_empty())
            .then(|| q.level.parse::<crate::rubric::Level>())
            .transpose()
            .map_err(|e| e.to_string())?;
        let rows = RowFilter {
            team: Some(q.team.trim().to_string()).filter(|t| !t.is_empty()),
            min_score: score(&q.min, "filter_min")?,
            max_score: score(&q.max, "filter_max")?,
            critical: match q.critical.as_str() {
                "yes" => Some(true),
                "no" => Some(false),
                _ => None,
            },
            language: (!q.language.is_empty())
                .then(|| q.language.parse::<Language>())
                .transpose()
                .map_err(|e| e.to_string())?,
            criterion_level: match (q.criterion.trim(), level) {
                ("", _) | (_, None) => None,
                (id, Some(level)) => Some((id.to_string(), level)),
            },
        };
        Ok((
            CallFilter {
                manager_id,
                status,
                from,
                to,
                before,
                limit: PAGE_SIZE,
            },
            rows,
        ))
    })();
    match result {
        Ok(f) => (Some(f), None),
        Err(e) => (None, Some(e)),
    }
}

#[cfg(test)]
mod snapshots {
    //! The rendered pages that do not need the database, as a reader would diff them: a
    //! template change shows up here as a reviewed snapshot change.
    use super::*;
    use crate::domain::UserId;

    fn user(role: Role) -> UserRecord {
        UserRecord {
            id: UserId::new(),
            username: "anna".into(),
            role,
            manager_id: None,
            language: None,
            created_at: 0,
            disabled_at: None,
        }
    }

    fn page(
        template: &str,
        lang: Lang,
        user: Option<&UserRecord>,
        here: &str,
        extra: Value,
    ) -> String {
        let ctx = PageCtx {
            lang,
            nonce: "NONCE",
            user,
            here,
            page: here.trim_start_matches('/'),
        };
        let response = render(template, ctx, extra);
        assert_eq!(response.status(), StatusCode::OK);
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .expect("body");
        without_hashes(std::str::from_utf8(&body).expect("utf-8"))
    }

    /// Asset names carry their content's hash; a style change is not a page change.
    fn without_hashes(html: &str) -> String {
        let re = regex::Regex::new(r"/assets/([A-Za-z0-9_.-]+?)\.[0-9a-f]{10}\.").expect("regex");
        re.replace_all(html, "/assets/$1.HASH.").into_owned()
    }

    #[test]
    fn sign_in_page() {
        for lang in Lang::ALL {
            let html = page(
                "login.html",
                lang,
                None,
                "/login",
                context! { next => "/calls", username => "", notice => None::<&str>, error => None::<&str> },
            );
            insta::assert_snapshot!(format!("login_{}", lang.code()), html);
        }
    }

    #[test]
    fn upload_page() {
        let qa = user(Role::Qa);
        for lang in Lang::ALL {
            let html = page(
                "upload.html",
                lang,
                Some(&qa),
                "/upload",
                context! {
                    own_manager => None::<&str>,
                    limit_mb => 500,
                    limit_text => "up to 500 MB",
                    too_large => "too large",
                    upload_texts => context! { waiting => "w" },
                },
            );
            insta::assert_snapshot!(format!("upload_{}", lang.code()), html);
        }
    }

    #[test]
    fn not_found_page() {
        let response = error_page(
            StatusCode::NOT_FOUND,
            Lang::Ru,
            "NONCE",
            Some(&user(Role::Manager)),
        );
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        let body = futures::executor::block_on(axum::body::to_bytes(response.into_body(), 1 << 20))
            .expect("body");
        insta::assert_snapshot!(
            "not_found_ru",
            without_hashes(std::str::from_utf8(&body).expect("utf-8"))
        );
    }
}
