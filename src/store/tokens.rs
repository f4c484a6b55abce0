//! API tokens: only a SHA-256 of each secret is stored.

use super::{Store, StoreError};
use crate::domain::{now_millis, ManagerId, Millis, Role, TokenId};

/// A token as stored (without its secret).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRecord {
    /// Identifier.
    pub id: TokenId,
    /// Who or what it is for.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The manager it is bound to (role `manager` only).
    pub manager_id: Option<ManagerId>,
    /// Created.
    pub created_at: Millis,
    /// Last seen on a request.
    pub last_used_at: Option<Millis>,
    /// Revoked at, if revoked.
    pub revoked_at: Option<Millis>,
}

const TOKEN_COLUMNS: &str = "id, name, role, manager_id, created_at, last_used_at, revoked_at";

impl Store {
    /// Stores a new token by the hash of its secret.
    pub async fn insert_token(
        &self,
        name: &str,
        role: Role,
        manager_id: Option<&ManagerId>,
        secret_hash: &str,
    ) -> Result<TokenRecord, StoreError> {
        let id = TokenId::new();
        let mut conn = self.write_one().await?;
        sqlx::query(
            "INSERT INTO api_tokens (id, name, role, manager_id, token_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id.to_string())
        .bind(name.to_string())
        .bind(role.as_str().to_string())
        .bind(manager_id.map(|m| m.as_str().to_string()))
        .bind(secret_hash.to_string())
        .bind(now_millis())
        .execute(&mut *conn)
        .await?;
        drop(conn);
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let row = sqlx::query_as::<_, TokenRecord>(&sql)
            .bind(id.to_string())
            .fetch_one(&self.pool)
            .await?;
        Ok(row)
    }

    /// The live (not revoked) token with this secret hash; records its use.
    pub async fn authenticate(&self, secret_hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL"
        );
        let row = sqlx::query_as::<_, TokenRecord>(&sql)
            .bind(secret_hash.to_string())
            .fetch_optional(&self.pool)
            .await?;
        let Some(token) = row else {
            return Ok(None);
        };
        // Only write when the stored value is a minute old: a busy client must not turn every
        // read into a database write.
        let now = now_millis();
        if token.last_used_at.is_none_or(|t| now - t > 60_000) {
            let mut conn = self.write_one().await?;
            sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
                .bind(now)
                .bind(token.id.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Ok(Some(token))
    }

    /// Every token, newest first.
    pub async fn list_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens ORDER BY id DESC");
        let rows = sqlx::query_as::<_, TokenRecord>(&sql)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows)
    }

    /// Revokes a token; `false` if there was no live token with this id.
    pub async fn revoke_token(&self, id: TokenId) -> Result<bool, StoreError> {
        let mut conn = self.write_one().await?;
        let done = sqlx::query(
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL",
        )
        .bind(now_millis())
        .bind(id.to_string())
        .execute(&mut *conn)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
