//! People who sign in to the web app, and their sessions. Only an argon2id hash of each
//! password and a SHA-256 of each session secret are stored (decision 0014).

use super::{Store, StoreError};
use crate::domain::{now_millis, ManagerId, Millis, Role, UserId};

/// A user as stored (without the password hash).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    /// Identifier.
    pub id: UserId,
    /// Sign-in name, lower-case.
    pub username: String,
    /// What they may do.
    pub role: Role,
    /// The manager whose calls they see (role `manager` only).
    pub manager_id: Option<ManagerId>,
    /// The UI language they chose (`ru`/`en`); `None`: the browser's.
    pub language: Option<String>,
    /// Created.
    pub created_at: Millis,
    /// Disabled at; a disabled user cannot sign in and their sessions end.
    pub disabled_at: Option<Millis>,
}

/// A user with the stored password hash, for signing in.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Credentials {
    /// The user.
    #[sqlx(flatten)]
    pub user: UserRecord,
    /// argon2id PHC string.
    pub password_hash: String,
}

/// How long a session lives.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Ends after this long without a request.
    pub idle_ms: i64,
    /// Ends this long after sign-in, however busy.
    pub absolute_ms: i64,
}

const USER_COLUMNS: &str =
    "u.id, u.username, u.role, u.manager_id, u.language, u.created_at, u.disabled_at";

/// A session's `last_seen_at` is written at most this often (a busy page must not turn every
/// read into a write).
const TOUCH_EVERY_MS: i64 = 60_000;

impl Store {
    /// Creates a user; [`StoreError::Conflict`] when the username is taken.
    pub async fn insert_user(
        &self,
        username: &str,
        role: Role,
        manager_id: Option<&ManagerId>,
        password_hash: &str,
    ) -> Result<UserRecord, StoreError> {
        let id = UserId::new();
        let now = now_millis();
        let mut conn = self.write_one().await?;
        let done = sqlx::query(
            "INSERT INTO users (id, username, password_hash, role, manager_id, created_at, \
             password_changed_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
        )
        .bind(id.to_string())
        .bind(username.to_string())
        .bind(password_hash.to_string())
        .bind(role.as_str().to_string())
        .bind(manager_id.map(|m| m.as_str().to_string()))
        .bind(now)
        .execute(&mut *conn)
        .await;
        drop(conn);
        match done {
            Err(e) if StoreError::is_unique_violation(&e) => {
                return Err(StoreError::Conflict(format!(
                    "a user named {username:?} already exists"
                )))
            }
            other => other?,
        };
        self.user_by_name(username)
            .await?
            .ok_or_else(|| StoreError::Corrupt("the new user was not found".into()))
    }

    /// A user by sign-in name.
    pub async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.username = $1");
        Ok(sqlx::query_as::<_, UserRecord>(&sql)
            .bind(username.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// A user and their password hash, for signing in.
    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let sql =
            format!("SELECT {USER_COLUMNS}, u.password_hash FROM users u WHERE u.username = $1");
        Ok(sqlx::query_as::<_, Credentials>(&sql)
            .bind(username.to_string())
            .fetch_optional(&self.pool)
            .await?)
    }

    /// Every user, by name.
    pub async fn list_users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users u ORDER BY u.username");
        Ok(sqlx::query_as::<_, UserRecord>(&sql)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Disables a user and ends their sessions, in one transaction; `false` if there is no
    /// enabled user of that name.
    pub async fn disable_user(&self, username: &str) -> Result<bool, StoreError> {
        self.change_user_ending_sessions(
            "UPDATE users SET disabled_at = $1 WHERE username = $2 AND disabled_at IS NULL",
            username,
            None,
        )
        .await
    }

    /// Replaces a user's password and ends every session they have; `false` if no such user.
    pub async fn set_password(
        &self,
        username: &str,
        password_hash: &str,
    ) -> Result<bool, StoreError> {
        self.change_user_ending_sessions(
            "UPDATE users SET password_changed_at = $1, password_hash = $3 WHERE username = $2",
            username,
            Some(password_hash),
        )
        .await
    }

    /// Runs `update` (`$1` now, `$2` the username, `$3` the optional value) and, when it
    /// changed the user, ends all their sessions, in one transaction.
    async fn change_user_ending_sessions(
        &self,
        update: &str,
        username: &str,
        value: Option<&str>,
    ) -> Result<bool, StoreError> {
        let now = now_millis();
        let mut tx = self.write().await?;
        let mut q = sqlx::query(update).bind(now).bind(username.to_string());
        if let Some(v) = value {
            q = q.bind(v.to_string());
        }
        if q.execute(&mut *tx).await?.rows_affected() == 0 {
            return Ok(false);
        }
        end_sessions_of(&mut tx, username, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Remembers the UI language a user chose.
    pub async fn set_user_language(&self, id: UserId, language: &str) -> Result<(), StoreError> {
        let mut conn = self.write_one().await?;
        sqlx::query("UPDATE users SET language = $1 WHERE id = $2")
            .bind(language.to_string())
            .bind(id.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Starts a session for a user under the hash of its secret.
    pub async fn insert_session(&self, id_hash: &str, user: UserId) -> Result<(), StoreError> {
        let now = now_millis();
        let mut conn = self.write_one().await?;
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(id_hash.to_string())
        .bind(user.to_string())
        .bind(now)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// The user of a live session: not ended, not idle too long, not too old, the user enabled;
    /// records the request.
    pub async fn session_user(
        &self,
        id_hash: &str,
        limits: SessionLimits,
    ) -> Result<Option<UserRecord>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRecord,
            last_seen_at: Millis,
        }
        let now = now_millis();
        let sql = format!(
            "SELECT {USER_COLUMNS}, s.last_seen_at FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.ended_at IS NULL AND u.disabled_at IS NULL \
               AND s.last_seen_at > $2 AND s.created_at > $3"
        );
        let row = sqlx::query_as::<_, Row>(&sql)
            .bind(id_hash.to_string())
            .bind(now - limits.idle_ms)
            .bind(now - limits.absolute_ms)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        if now - row.last_seen_at > TOUCH_EVERY_MS {
            let mut conn = self.write_one().await?;
            sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
                .bind(now)
                .bind(id_hash.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Ok(Some(row.user))
    }

    /// Ends a session (sign-out).
    pub async fn end_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let mut conn = self.write_one().await?;
        sqlx::query("UPDATE sessions SET ended_at = $1 WHERE id_hash = $2 AND ended_at IS NULL")
            .bind(now_millis())
            .bind(id_hash.to_string())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

async fn end_sessions_of(
    tx: &mut super::WriteTx,
    username: &str,
    now: Millis,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sessions SET ended_at = $1 WHERE ended_at IS NULL \
         AND user_id = (SELECT id FROM users WHERE username = $2)",
    )
    .bind(now)
    .bind(username.to_string())
    .execute(&mut **tx)
    .await?;
    Ok(())
}
