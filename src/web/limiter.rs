//! Sign-in attempts, limited per username and per client address: a password cannot be guessed
//! by trying many, and one address cannot lock out everyone by trying many names.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a failure counts.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Keys kept at most (an attacker inventing names must not grow memory without bound); the
/// oldest go first.
const MAX_KEYS: usize = 100_000;

/// Failed sign-ins in the last [`WINDOW`], by username and by address.
#[derive(Debug)]
pub struct LoginLimiter {
    per_user: u32,
    per_address: u32,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl LoginLimiter {
    /// At most `per_user` failures per username, and four times as many per address.
    pub fn new(per_user: u32) -> Self {
        Self {
            per_user: per_user.max(1),
            per_address: per_user.max(1).saturating_mul(4),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Whether a sign-in may be tried now.
    pub fn allowed(&self, username: &str, address: Option<&str>) -> bool {
        let now = Instant::now();
        let mut map = self.lock();
        let recent = |map: &mut HashMap<String, Vec<Instant>>, key: String| {
            map.get_mut(&key).map_or(0, |times| {
                times.retain(|t| now.duration_since(*t) < WINDOW);
                times.len()
            })
        };
        let user_ok = recent(&mut map, user_key(username)) < self.per_user as usize;
        let address_ok =
            address.is_none_or(|a| recent(&mut map, address_key(a)) < self.per_address as usize);
        user_ok && address_ok
    }

    /// Counts a failed sign-in.
    pub fn failed(&self, username: &str, address: Option<&str>) {
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_KEYS {
            map.retain(|_, times| times.iter().any(|t| now.duration_since(*t) < WINDOW));
            if map.len() >= MAX_KEYS {
                map.clear();
            }
        }
        map.entry(user_key(username)).or_default().push(now);
        if let Some(a) = address {
            map.entry(address_key(a)).or_default().push(now);
        }
    }

    /// A successful sign-in clears the username's failures (not the address's).
    pub fn succeeded(&self, username: &str) {
        self.lock().remove(&user_key(username));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Instant>>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn user_key(username: &str) -> String {
    format!("u:{username}")
}

fn address_key(address: &str) -> String {
    format!("a:{address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_lock_a_name_then_an_address() {
        let limiter = LoginLimiter::new(2);
        assert!(limiter.allowed("anna", Some("10.0.0.1")));
        limiter.failed("anna", Some("10.0.0.1"));
        limiter.failed("anna", Some("10.0.0.1"));
        assert!(
            !limiter.allowed("anna", Some("10.0.0.2")),
            "the name is locked"
        );
        assert!(limiter.allowed("boris", Some("10.0.0.1")));
        for name in ["c", "d", "e", "f", "g", "h"] {
            limiter.failed(name, Some("10.0.0.1"));
        }
        assert!(
            !limiter.allowed("zoe", Some("10.0.0.1")),
            "the address is locked"
        );
        assert!(limiter.allowed("zoe", Some("10.0.0.9")));
        limiter.succeeded("anna");
        assert!(limiter.allowed("anna", Some("10.0.0.2")));
    }
}
