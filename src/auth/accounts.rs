//! Checking a login against the configured accounts (POP3 and SMTP AUTH): the same cost and the
//! same answer for an unknown user as for a wrong password. Blocking (argon2): call it from
//! `spawn_blocking`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use super::password;
use crate::config::Account;

pub struct Accounts {
    /// Lower-cased address → password hash.
    by_address: HashMap<String, String>,
    /// Checked for unknown users, so they cost the same time as known ones.
    dummy_hash: String,
}

impl Accounts {
    pub fn new(accounts: &[Account]) -> Self {
        Accounts {
            by_address: accounts
                .iter()
                .map(|a| (a.address.clone(), a.password.clone()))
                .collect(),
            dummy_hash: password::hash("no such user").unwrap_or_default(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// True when `user` (any case) exists and `pass` is its password.
    pub fn verify(&self, user: &str, pass: &str) -> bool {
        if probe_matches(user, Some(pass)) {
            return true;
        }
        match self.by_address.get(&user.to_ascii_lowercase()) {
            Some(hash) => password::verify(pass, hash).unwrap_or(false),
            None => {
                let _ = password::verify(pass, &self.dummy_hash);
                false
            }
        }
    }

    pub fn exists(&self, user: &str) -> bool {
        probe_matches(user, None) || self.by_address.contains_key(&user.to_ascii_lowercase())
    }
}

/// The one-off account `smtpctl selftest` logs in with: made by the daemon for the length of a
/// run (a random secret, never written anywhere, valid until `expires`), then removed.
struct Probe {
    address: String,
    secret: String,
    expires: Instant,
}

static PROBE: Mutex<Option<Probe>> = Mutex::new(None);

fn probe_matches(user: &str, pass: Option<&str>) -> bool {
    let guard = PROBE.lock().unwrap_or_else(|e| e.into_inner());
    let Some(p) = guard.as_ref() else {
        return false;
    };
    if Instant::now() > p.expires || !p.address.eq_ignore_ascii_case(user) {
        return false;
    }
    match pass {
        None => true,
        // Constant time over the secret's length.
        Some(pass) => {
            pass.len() == p.secret.len()
                && pass
                    .bytes()
                    .zip(p.secret.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        }
    }
}

/// Installs the selftest account until `expires` (replacing any other); [`clear_probe`] ends it.
pub fn set_probe(address: &str, secret: &str, expires: Instant) {
    *PROBE.lock().unwrap_or_else(|e| e.into_inner()) = Some(Probe {
        address: address.to_ascii_lowercase(),
        secret: secret.to_string(),
        expires,
    });
}

/// True while a selftest runs and `address` (lower-cased) is its probe mailbox: the SMTP engine
/// then accepts it under `accept = "accounts"` too. No clock: the run always clears the probe.
pub fn is_probe_address(address: &str) -> bool {
    PROBE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|p| p.address == address)
}

pub fn clear_probe() {
    *PROBE.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify() {
        let a = Accounts::new(&[Account {
            address: "alice@example.test".into(),
            password: password::hash("pw").unwrap(),
        }]);
        assert!(a.verify("Alice@Example.TEST", "pw"));
        assert!(!a.verify("alice@example.test", "nope"));
        assert!(!a.verify("bob@example.test", "pw"));
        assert!(a.exists("ALICE@example.test") && !a.exists("bob@example.test"));
    }
}
