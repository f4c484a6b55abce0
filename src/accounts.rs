//! People who sign in to the web app: usernames, argon2id passwords, and the rules they follow.
//! The API keeps its bearer tokens (`auth.rs`); see `docs/decisions/0014-web-accounts.md`.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::domain::{ManagerId, Role};
use crate::store::{Store, StoreError, UserRecord};

/// Shortest accepted password.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest accepted password (hashing a megabyte is a denial of service, not a password).
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Why an account operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The input breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A sign-in name as stored: trimmed, lower-case, 1-64 of `a-z 0-9 . _ @ -`.
pub fn normalize_username(raw: &str) -> Result<String, AccountError> {
    let name = raw.trim().to_lowercase();
    if name.is_empty() || name.chars().count() > 64 {
        return Err(AccountError::Invalid(
            "a username has 1 to 64 characters".into(),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-')))
    {
        return Err(AccountError::Invalid(format!(
            "a username may hold letters a-z, digits and . _ @ - (not {c:?})"
        )));
    }
    Ok(name)
}

/// Checks a new password's length.
pub fn check_password(password: &str) -> Result<(), AccountError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "a password needs at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(AccountError::Invalid(format!(
            "a password has at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

/// The argon2id hash of a password (PHC string, with a random salt; OWASP's parameters:
/// 19 MiB, 2 passes). Takes tens of milliseconds: call it off the async threads.
pub fn hash_password(password: &str) -> Result<String, AccountError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AccountError::Invalid(format!("could not hash the password: {e}")))
}

/// Whether `password` matches a stored hash (false for a hash that does not parse).
pub fn verify_password(stored: &str, password: &str) -> bool {
    PasswordHash::new(stored)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash that matches no password, verified when the username is unknown so that a wrong
/// name takes as long as a wrong password (no username probing by timing).
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("no password matches this decoy, ever").unwrap_or_else(|_| String::new())
    })
}

/// Creates a user after checking every rule.
pub async fn create_user(
    store: &Store,
    username: &str,
    role: Role,
    manager: Option<&str>,
    password: &str,
) -> Result<UserRecord, AccountError> {
    let username = normalize_username(username)?;
    let manager = manager_for(role, manager)?;
    check_password(password)?;
    let hash = hash_off_thread(password).await?;
    store
        .insert_user(&username, role, manager.as_ref(), &hash)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(m) => AccountError::Invalid(m),
            other => AccountError::Store(other),
        })
}

/// Sets a new password; every session of the user ends.
pub async fn reset_password(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<(), AccountError> {
    let username = normalize_username(username)?;
    check_password(password)?;
    let hash = hash_off_thread(password).await?;
    if store.set_password(&username, &hash).await? {
        Ok(())
    } else {
        Err(AccountError::Invalid(format!("no user named {username:?}")))
    }
}

/// The manager a user of `role` is bound to: required for `manager`, refused for the others.
fn manager_for(role: Role, manager: Option<&str>) -> Result<Option<ManagerId>, AccountError> {
    match (role, manager.map(str::trim).filter(|m| !m.is_empty())) {
        (Role::Manager, Some(m)) => ManagerId::parse(m)
            .map(Some)
            .map_err(|e| AccountError::Invalid(e.to_string())),
        (Role::Manager, None) => Err(AccountError::Invalid(
            "a manager account needs --manager <CRM manager id>: it sees only that manager's calls"
                .into(),
        )),
        (_, Some(_)) => Err(AccountError::Invalid(format!(
            "only a manager account is bound to a manager id (this one has role {role})"
        ))),
        (_, None) => Ok(None),
    }
}

async fn hash_off_thread(password: &str) -> Result<String, AccountError> {
    let password = password.to_string();
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AccountError::Invalid(format!("hashing stopped: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_lowercased_and_restricted() {
        assert_eq!(normalize_username("  Anna.QA ").unwrap(), "anna.qa");
        assert!(normalize_username("").is_err());
        assert!(normalize_username("a b").is_err());
        assert!(normalize_username("анна").is_err());
        assert!(normalize_username(&"x".repeat(65)).is_err());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert!(!verify_password(decoy_hash(), ""));
        // Salted: the same password hashes differently each time.
        assert_ne!(hash, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn password_length_is_checked() {
        assert!(check_password("short").is_err());
        assert!(check_password("long enough!").is_ok());
        assert!(check_password(&"x".repeat(MAX_PASSWORD_CHARS + 1)).is_err());
    }

    #[test]
    fn only_managers_are_bound_to_a_manager() {
        assert!(manager_for(Role::Manager, None).is_err());
        assert!(manager_for(Role::Manager, Some("m-1")).unwrap().is_some());
        assert!(manager_for(Role::Qa, Some("m-1")).is_err());
        assert!(manager_for(Role::Head, None).unwrap().is_none());
    }
}
