//! `/api/v1/tokens`: token management (admin only).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::ErrorBody;
use super::{ApiError, AppState};
use crate::auth::{generate_secret, hash_secret};
use crate::domain::{to_datetime, ManagerId, Role, TokenId};
use crate::store::{Store, TokenRecord};

/// A token without its secret.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenView {
    /// Identifier (used to revoke).
    pub id: TokenId,
    /// Who it is for.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Bound manager (role manager).
    pub manager_id: Option<ManagerId>,
    /// Created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Last used.
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            name: t.name,
            role: t.role,
            manager_id: t.manager_id,
            created_at: to_datetime(t.created_at),
            last_used_at: t.last_used_at.map(to_datetime),
            revoked_at: t.revoked_at.map(to_datetime),
        }
    }
}

/// A token to create.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreateToken {
    /// Who it is for.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Required for role `manager`, not allowed otherwise.
    pub manager_id: Option<String>,
}

/// A created token: the secret is shown this once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token.
    #[serde(flatten)]
    pub token: TokenView,
    /// The secret for `Authorization: Bearer`; it cannot be shown again.
    pub secret: String,
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The request was inconsistent.
    #[error("{0}")]
    Invalid(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Creates a token; used by the API and by `callgrade token create`.
pub async fn create_token(
    store: &Store,
    name: &str,
    role: Role,
    manager_id: Option<&str>,
) -> Result<CreatedToken, TokenError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 200 {
        return Err(TokenError::Invalid("name must be 1-200 characters".into()));
    }
    let manager_id = match (role, manager_id) {
        (Role::Manager, Some(m)) => {
            Some(ManagerId::parse(m).map_err(|e| TokenError::Invalid(e.to_string()))?)
        }
        (Role::Manager, None) => {
            return Err(TokenError::Invalid(
                "a manager token needs a manager id".into(),
            ))
        }
        (_, Some(_)) => {
            return Err(TokenError::Invalid(
                "only manager tokens are bound to a manager id".into(),
            ))
        }
        (_, None) => None,
    };
    let secret = generate_secret();
    let record = store
        .insert_token(name, role, manager_id.as_ref(), &hash_secret(&secret))
        .await?;
    Ok(CreatedToken {
        token: record.into(),
        secret,
    })
}

/// List tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<TokenView>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
) -> Result<Json<Vec<TokenView>>, ApiError> {
    auth.require(&[Role::Admin])?;
    let tokens = state.store.list_tokens().await?;
    Ok(Json(tokens.into_iter().map(TokenView::from).collect()))
}

/// Create a token; the secret is in the answer and nowhere else.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    Json(req): Json<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    auth.require(&[Role::Admin])?;
    let created = create_token(&state.store, &req.name, req.role, req.manager_id.as_deref())
        .await
        .map_err(|e| match e {
            TokenError::Invalid(m) => ApiError::BadRequest(m),
            TokenError::Store(s) => s.into(),
        })?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Revoke a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path, description = "Token id")),
    responses((status = 204, description = "Revoked"), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    auth: Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require(&[Role::Admin])?;
    let id: TokenId = id.parse().map_err(|_| ApiError::not_found("token"))?;
    if state.store.revoke_token(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found("token"))
    }
}

/// This module's routes (merged with the others in `http::api_router`).
pub(super) fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}
