//! Checking a login against the configured accounts (POP3 and SMTP AUTH): the same cost and the
//! same answer for an unknown user as for a wrong password. Blocking (argon2): call it from
//! `spawn_blocking`. Also the SMTP engine's answer to "does this local mailbox exist?" under
//! `[mailboxes] accept = "accounts"` ([`Mailboxes`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use subtle::ConstantTimeEq;

use super::password;
use crate::proto::smtp::Mailboxes;

pub struct Accounts {
    /// Lower-cased address → password hash.
    by_address: HashMap<String, String>,
    /// Checked for unknown users, so they cost the same time as known ones.
    dummy_hash: String,
    /// The selftest's one-off account, shared by every generation of the daemon.
    probe: Arc<ProbeSlot>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts")
            .field("accounts", &self.by_address.len())
            .finish_non_exhaustive()
    }
}

impl Accounts {
    /// The configured accounts as (lower-cased address, password hash), and the daemon's probe
    /// slot (`ProbeSlot::default()` when none).
    pub fn new<'a>(
        accounts: impl IntoIterator<Item = (&'a str, &'a str)>,
        probe: Arc<ProbeSlot>,
    ) -> Self {
        Accounts {
            by_address: accounts
                .into_iter()
                .map(|(address, hash)| (address.to_string(), hash.to_string()))
                .collect(),
            dummy_hash: password::hash("no such user").unwrap_or_default(),
            probe,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_address.is_empty()
    }

    /// True when `user` (any case) exists and `pass` is its password.
    pub fn verify(&self, user: &str, pass: &str) -> bool {
        if self.probe.matches(user, Some(pass)) {
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
        self.probe.matches(user, None) || self.by_address.contains_key(&user.to_ascii_lowercase())
    }
}

impl Mailboxes for Accounts {
    /// An account's address, or the selftest's probe mailbox while a run lasts.
    fn exists(&self, address: &str) -> bool {
        self.by_address.contains_key(address) || self.probe.is_address(address)
    }
}

/// The one-off account `smtpctl selftest` logs in with: made by the daemon for the length of a
/// run (a random secret, never written anywhere, valid until `expires`), then removed.
struct Probe {
    address: String,
    secret: String,
    expires: Instant,
}

/// Where the daemon keeps the selftest's probe account; one per daemon, handed to the accounts
/// of every configuration generation.
#[derive(Default)]
pub struct ProbeSlot(Mutex<Option<Probe>>);

impl ProbeSlot {
    fn lock(&self) -> MutexGuard<'_, Option<Probe>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Installs the selftest account until `expires` (replacing any other); [`Self::clear`] ends it.
    pub fn set(&self, address: &str, secret: &str, expires: Instant) {
        *self.lock() = Some(Probe {
            address: address.to_ascii_lowercase(),
            secret: secret.to_string(),
            expires,
        });
    }

    pub fn clear(&self) {
        *self.lock() = None;
    }

    /// True while a run lasts (and has not outlived its expiry) and `address` (lower-cased) is
    /// its probe mailbox.
    fn is_address(&self, address: &str) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|p| p.address == address && Instant::now() <= p.expires)
    }

    /// Installs the probe until the returned guard is dropped (or `expires`), so a run that is
    /// cancelled midway leaves no probe behind.
    pub fn install(&self, address: &str, secret: &str, expires: Instant) -> ProbeGuard<'_> {
        self.set(address, secret, expires);
        ProbeGuard(self)
    }

    /// `user` is the unexpired probe and (when given) `pass` its secret, compared in constant time.
    fn matches(&self, user: &str, pass: Option<&str>) -> bool {
        let guard = self.lock();
        let Some(p) = guard.as_ref() else {
            return false;
        };
        if Instant::now() > p.expires || !p.address.eq_ignore_ascii_case(user) {
            return false;
        }
        pass.is_none_or(|pass| bool::from(pass.as_bytes().ct_eq(p.secret.as_bytes())))
    }
}

/// Clears the probe when dropped.
pub struct ProbeGuard<'a>(&'a ProbeSlot);

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        self.0.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn alice(probe: Arc<ProbeSlot>) -> Accounts {
        let hash = password::hash("pw").unwrap();
        Accounts::new([("alice@example.test", hash.as_str())], probe)
    }

    #[test]
    fn verify() {
        let a = alice(Arc::default());
        assert!(a.verify("Alice@Example.TEST", "pw"));
        assert!(!a.verify("alice@example.test", "nope"));
        assert!(!a.verify("bob@example.test", "pw"));
        assert!(a.exists("ALICE@example.test") && !a.exists("bob@example.test"));
        assert!(Mailboxes::exists(&a, "alice@example.test"));
        assert!(!Mailboxes::exists(&a, "bob@example.test"));
    }

    /// The probe is state of the daemon's accounts, not of the process: two daemons' accounts
    /// (two slots) do not see each other's probe, and clearing it ends both login and delivery.
    #[test]
    fn probe_is_per_slot() {
        let slot = Arc::new(ProbeSlot::default());
        let a = alice(Arc::clone(&slot));
        let other = alice(Arc::default());
        let probe = "smtpd-selftest@example.test";
        slot.set(probe, "s3cret", Instant::now() + Duration::from_secs(60));
        assert!(a.verify(probe, "s3cret") && !a.verify(probe, "s3creT"));
        assert!(!a.verify(probe, "s3cret-longer"));
        assert!(Mailboxes::exists(&a, probe) && a.exists(probe));
        assert!(!Mailboxes::exists(&other, probe) && !other.verify(probe, "s3cret"));
        slot.clear();
        assert!(!a.verify(probe, "s3cret") && !Mailboxes::exists(&a, probe));
        slot.set(probe, "s3cret", Instant::now() - Duration::from_secs(1));
        assert!(!a.verify(probe, "s3cret"), "an expired probe cannot log in");
        assert!(!Mailboxes::exists(&a, probe), "nor receive mail");
        {
            let _guard = slot.install(probe, "s3cret", Instant::now() + Duration::from_secs(60));
            assert!(Mailboxes::exists(&a, probe));
        }
        assert!(!Mailboxes::exists(&a, probe), "the guard clears it");
    }
}
