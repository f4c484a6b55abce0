//! Who is asking, and what they may see.
//!
//! Tokens are 256 random bits, shown once and stored as SHA-256: a fast hash is enough for a
//! secret with that much entropy (no password to brute-force), and it keeps every request to
//! one indexed lookup. See `docs/decisions/0003-tokens-and-roles.md`.

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::domain::{ManagerId, Role};

/// Prefix that makes callgrade tokens easy to spot in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "cgt_";

/// A new random token secret.
pub fn generate_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("{TOKEN_PREFIX}{}", hex::encode(bytes))
}

/// The stored form of a secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    /// What they may do.
    pub role: Role,
    /// For role `manager`: whose calls they may see.
    pub manager_id: Option<ManagerId>,
    /// The token's name, for logs.
    pub name: String,
}

impl Principal {
    /// Whether this caller may see data that belongs to `manager`. Managers see only their own;
    /// everyone else sees all.
    pub fn can_see_manager(&self, manager: &ManagerId) -> bool {
        match self.role {
            Role::Manager => self.manager_id.as_ref() == Some(manager),
            Role::Admin | Role::Qa | Role::Head => true,
        }
    }

    /// The manager this caller is restricted to, if any.
    pub fn scope(&self) -> Option<&ManagerId> {
        match self.role {
            Role::Manager => self.manager_id.as_ref(),
            _ => None,
        }
    }

    /// Whether the role is one of `roles`.
    pub fn has_role(&self, roles: &[Role]) -> bool {
        roles.contains(&self.role)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_and_hash_is_stable() {
        let a = generate_secret();
        let b = generate_secret();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_secret(&a), hash_secret(&a));
        assert_ne!(hash_secret(&a), hash_secret(&b));
    }

    #[test]
    fn managers_see_only_their_own() {
        let me = ManagerId::parse("m-1").expect("valid");
        let other = ManagerId::parse("m-2").expect("valid");
        let p = Principal {
            role: Role::Manager,
            manager_id: Some(me.clone()),
            name: "x".into(),
        };
        assert!(p.can_see_manager(&me));
        assert!(!p.can_see_manager(&other));
        let head = Principal {
            role: Role::Head,
            manager_id: None,
            name: "h".into(),
        };
        assert!(head.can_see_manager(&other));
    }
}
