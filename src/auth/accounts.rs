//! Checking a login against the configured accounts (POP3 and SMTP AUTH): the same cost and the
//! same answer for an unknown user as for a wrong password. Blocking (argon2): call it from
//! `spawn_blocking`.

use std::collections::HashMap;

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
        match self.by_address.get(&user.to_ascii_lowercase()) {
            Some(hash) => password::verify(pass, hash).unwrap_or(false),
            None => {
                let _ = password::verify(pass, &self.dummy_hash);
                false
            }
        }
    }

    pub fn exists(&self, user: &str) -> bool {
        self.by_address.contains_key(&user.to_ascii_lowercase())
    }
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
