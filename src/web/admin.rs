//! The operators' pages: the queue (`/queue`; admin and qa act, head reads) and users and API
//! tokens (`/users`; admin). Actions run the API's handlers (queue) or the same account
//! functions as the CLI (users), so the rules are written once.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use minijinja::{context, Value};
use serde::Deserialize;

use super::session::WebUser;
use super::{render, Nonce, PageCtx};
use crate::domain::{to_datetime, JobState, Role};
use crate::http::{ApiError, AppState};

/// The operators' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/queue", get(queue_page))
        .route("/queue/{id}/retry", post(job_retry))
        .route("/queue/{id}/cancel", post(job_cancel))
        .route("/users", get(users_page).post(user_create))
        .route("/users/{name}/disable", post(user_disable))
        .route("/users/{name}/password", post(user_password))
        .route("/tokens/{id}/revoke", post(token_revoke))
}

fn when(ms: i64) -> Value {
    let t = to_datetime(ms);
    context! { iso => t.to_rfc3339(), text => t.format("%Y-%m-%d %H:%M UTC").to_string() }
}

fn forbidden(web: &WebUser, nonce: &str) -> Response {
    super::error_page(StatusCode::FORBIDDEN, web.lang, nonce, Some(&web.user))
}

#[derive(Debug, Default, Deserialize)]
struct QueueQuery {
    #[serde(default)]
    state: String,
    #[serde(default)]
    cursor: String,
    /// A notice or error key after an action.
    #[serde(default)]
    done: String,
    #[serde(default)]
    error: String,
}

const JOB_STATES: [JobState; 5] = [
    JobState::Queued,
    JobState::Running,
    JobState::Dead,
    JobState::Cancelled,
    JobState::Succeeded,
];

async fn queue_page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Query(q): Query<QueueQuery>,
) -> Response {
    if !matches!(web.principal.role, Role::Admin | Role::Qa | Role::Head) {
        return forbidden(&web, &nonce);
    }
    let lang = web.lang;
    let can_act = matches!(web.principal.role, Role::Admin | Role::Qa);
    let filter = q.state.parse::<JobState>().ok();
    let before = q.cursor.parse().ok();
    let loaded = async {
        let counts = state.store.job_counts().await?;
        let jobs = state.store.list_jobs(filter, before, 50).await?;
        Ok::<_, crate::store::StoreError>((counts, jobs))
    }
    .await;
    let (counts, jobs) = match loaded {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let tiles: Vec<Value> = JOB_STATES
        .iter()
        .map(|s| {
            let n: i64 = counts
                .iter()
                .filter(|c| c.state == *s)
                .map(|c| c.count)
                .sum();
            context! {
                code => s.as_str(),
                label => lang.t(&format!("job_{}", s.as_str())),
                count => n,
                active => filter == Some(*s),
            }
        })
        .collect();
    let next = (jobs.len() == 50)
        .then(|| jobs.last().map(|j| j.id.to_string()))
        .flatten()
        .map(|c| format!("/queue?state={}&cursor={c}", q.state));
    let rows: Vec<Value> = jobs
        .into_iter()
        .map(|j| {
            context! {
                id => j.id.to_string(),
                kind => lang.t_or(&format!("kind_{}", j.kind), &j.kind).to_string(),
                call => j.call_id.map(|c| c.to_string()),
                state => j.state.as_str(),
                state_label => lang.t(&format!("job_{}", j.state.as_str())),
                attempts => format!("{}/{}", j.attempts, j.max_attempts),
                error => j.last_error,
                worker => j.worker_id,
                created => when(j.created_at),
                run_at => when(j.run_at),
                can_retry => can_act && matches!(j.state, JobState::Dead | JobState::Cancelled),
                can_cancel => can_act && matches!(j.state, JobState::Queued | JobState::Running),
            }
        })
        .collect();
    let notice = (!q.done.is_empty()).then(|| lang.t(&format!("queue_done_{}", q.done)));
    let error = (!q.error.is_empty()).then(|| {
        lang.t_or(
            &format!("queue_error_{}", q.error),
            lang.t("queue_error_other"),
        )
    });
    let here = format!("/queue?state={}", q.state);
    let ctx = PageCtx {
        lang,
        nonce: &nonce,
        user: Some(&web.user),
        here: &here,
        page: "queue",
    };
    render(
        "queue.html",
        ctx,
        context! {
            tiles => tiles,
            jobs => rows,
            filter => q.state,
            can_act => can_act,
            next => next,
            notice => notice,
            error => error,
            live => counts.iter().any(|c| matches!(c.state, JobState::Queued | JobState::Running) && c.count > 0),
        },
    )
}

fn back_to_queue(result: Result<(), ApiError>, done: &str) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("/queue?done={done}")).into_response(),
        Err(e) => {
            tracing::info!(error = %e, "queue action refused");
            let key = match e {
                ApiError::Conflict(_) => "conflict",
                ApiError::NotFound(_) => "missing",
                _ => "other",
            };
            Redirect::to(&format!("/queue?error={key}")).into_response()
        }
    }
}

async fn job_retry(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
) -> Response {
    match crate::http::jobs::retry(State(state), web.auth(), Path(id)).await {
        Err(ApiError::Forbidden(_)) => forbidden(&web, &nonce),
        r => back_to_queue(r.map(|_| ()), "retried"),
    }
}

async fn job_cancel(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
) -> Response {
    match crate::http::jobs::cancel(State(state), web.auth(), Path(id)).await {
        Err(ApiError::Forbidden(_)) => forbidden(&web, &nonce),
        r => back_to_queue(r.map(|_| ()), "cancelled"),
    }
}

#[derive(Debug, Default, Deserialize)]
struct UsersQuery {
    #[serde(default)]
    done: String,
}

async fn users_page(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Query(q): Query<UsersQuery>,
) -> Response {
    let notice =
        (!q.done.is_empty()).then(|| web.lang.t(&format!("users_done_{}", q.done)).to_string());
    users(&state, &web, &nonce, notice, None, StatusCode::OK).await
}

async fn users(
    state: &AppState,
    web: &WebUser,
    nonce: &str,
    notice: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Response {
    if web.principal.role != Role::Admin {
        return forbidden(web, nonce);
    }
    let lang = web.lang;
    let loaded = async {
        Ok::<_, crate::store::StoreError>((
            state.store.list_users().await?,
            state.store.list_tokens().await?,
        ))
    }
    .await;
    let (users, tokens) = match loaded {
        Ok(v) => v,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let roles: Vec<Value> = [Role::Admin, Role::Qa, Role::Head, Role::Manager]
        .iter()
        .map(|r| context! { code => r.as_str(), label => lang.t(&format!("role_{}", r.as_str())) })
        .collect();
    let users: Vec<Value> = users
        .into_iter()
        .map(|u| {
            context! {
                username => u.username.clone(),
                role => lang.t(&format!("role_{}", u.role.as_str())),
                manager => u.manager_id.map(|m| m.to_string()),
                created => when(u.created_at),
                disabled => u.disabled_at.map(when),
                me => u.id == web.user.id,
            }
        })
        .collect();
    let tokens: Vec<Value> = tokens
        .into_iter()
        .map(|t| {
            context! {
                id => t.id.to_string(),
                name => t.name,
                role => lang.t(&format!("role_{}", t.role.as_str())),
                manager => t.manager_id.map(|m| m.to_string()),
                created => when(t.created_at),
                last_used => t.last_used_at.map(when),
                revoked => t.revoked_at.map(when),
            }
        })
        .collect();
    let ctx = PageCtx {
        lang,
        nonce,
        user: Some(&web.user),
        here: "/users",
        page: "users",
    };
    let mut response = render(
        "users.html",
        ctx,
        context! { users => users, tokens => tokens, roles => roles, notice => notice, error => error },
    );
    *response.status_mut() = status;
    response
}

#[derive(Debug, Deserialize)]
struct NewUserForm {
    username: String,
    role: String,
    #[serde(default)]
    manager: String,
    password: String,
}

/// An account refusal in the user's words where we know the rule, else the rule's own text.
fn account_error(e: crate::accounts::AccountError) -> Result<String, ApiError> {
    match e {
        crate::accounts::AccountError::Invalid(m) => Ok(m),
        crate::accounts::AccountError::Store(s) => Err(ApiError::from(s)),
    }
}

async fn user_create(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Form(form): Form<NewUserForm>,
) -> Response {
    if web.principal.role != Role::Admin {
        return forbidden(&web, &nonce);
    }
    let role = match form.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => {
            return users(
                &state,
                &web,
                &nonce,
                None,
                Some(e.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    };
    let manager = Some(form.manager.as_str()).filter(|m| !m.trim().is_empty());
    match crate::accounts::create_user(&state.store, &form.username, role, manager, &form.password)
        .await
    {
        Ok(u) => {
            tracing::info!(username = %u.username, role = %u.role, by = %web.user.username, "user created");
            Redirect::to("/users?done=created").into_response()
        }
        Err(e) => match account_error(e) {
            Ok(m) => {
                users(
                    &state,
                    &web,
                    &nonce,
                    None,
                    Some(m),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            Err(e) => e.into_response(),
        },
    }
}

async fn user_disable(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(name): Path<String>,
) -> Response {
    if web.principal.role != Role::Admin {
        return forbidden(&web, &nonce);
    }
    if name == web.user.username {
        let m = web.lang.t("users_not_yourself").to_string();
        return users(
            &state,
            &web,
            &nonce,
            None,
            Some(m),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    match state.store.disable_user(&name).await {
        Ok(true) => {
            tracing::info!(username = %name, by = %web.user.username, "user disabled");
            Redirect::to("/users?done=disabled").into_response()
        }
        Ok(false) => super::error_page(StatusCode::NOT_FOUND, web.lang, &nonce, Some(&web.user)),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct PasswordForm {
    password: String,
}

async fn user_password(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(name): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Response {
    if web.principal.role != Role::Admin {
        return forbidden(&web, &nonce);
    }
    match crate::accounts::reset_password(&state.store, &name, &form.password).await {
        Ok(()) => {
            tracing::info!(username = %name, by = %web.user.username, "password reset");
            Redirect::to("/users?done=password").into_response()
        }
        Err(e) => match account_error(e) {
            Ok(m) => {
                users(
                    &state,
                    &web,
                    &nonce,
                    None,
                    Some(m),
                    StatusCode::UNPROCESSABLE_ENTITY,
                )
                .await
            }
            Err(e) => e.into_response(),
        },
    }
}

async fn token_revoke(
    State(state): State<AppState>,
    web: WebUser,
    Extension(Nonce(nonce)): Extension<Nonce>,
    Path(id): Path<String>,
) -> Response {
    if web.principal.role != Role::Admin {
        return forbidden(&web, &nonce);
    }
    let Ok(id) = id.parse() else {
        return super::error_page(StatusCode::NOT_FOUND, web.lang, &nonce, Some(&web.user));
    };
    match state.store.revoke_token(id).await {
        Ok(_) => Redirect::to("/users?done=revoked").into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}
