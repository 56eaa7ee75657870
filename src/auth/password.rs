//! Password hashes: argon2id PHC strings (what `smtpctl encrypt` makes), and `$6$` SHA512-crypt so
//! a Dovecot passwd-file can be brought along. Dovecot-style scheme prefixes (`{ARGON2ID}`,
//! `{SHA512-CRYPT}`, `{CRYPT}`) are accepted.

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("unsupported password hash scheme (expected $argon2id$... or $6$...)")]
    UnsupportedScheme,
    #[error("malformed password hash")]
    Malformed,
    #[error("cannot hash the password: {0}")]
    Hash(String),
}

/// A new argon2id PHC string for `password` (random salt, the crate's recommended parameters).
pub fn hash(password: &str) -> Result<String, PasswordError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

fn strip_scheme(stored: &str) -> &str {
    let stored = stored.trim();
    if let Some(rest) = stored.strip_prefix('{')
        && let Some(end) = rest.find('}')
    {
        return &rest[end + 1..];
    }
    stored
}

/// Whether `stored` is a hash this module can check (for config validation).
pub fn is_supported(stored: &str) -> bool {
    let h = strip_scheme(stored);
    h.starts_with("$argon2") || h.starts_with("$6$")
}

/// Checks `password` against `stored`. `Ok(false)` for a wrong password.
pub fn verify(password: &str, stored: &str) -> Result<bool, PasswordError> {
    let h = strip_scheme(stored);
    let result = if h.starts_with("$argon2") {
        Argon2::default().verify_password(password.as_bytes(), h)
    } else if h.starts_with("$6$") {
        sha_crypt::ShaCrypt::SHA512.verify_password(password.as_bytes(), h)
    } else {
        return Err(PasswordError::UnsupportedScheme);
    };
    match result {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(_) => Err(PasswordError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argon2_round_trip() {
        let h = hash("s3cret pass").unwrap();
        assert!(h.starts_with("$argon2id$v=19$"), "{h}");
        assert_eq!(verify("s3cret pass", &h), Ok(true));
        assert_eq!(verify("wrong", &h), Ok(false));
        assert_eq!(verify("s3cret pass", &format!("{{ARGON2ID}}{h}")), Ok(true));
        assert_ne!(hash("s3cret pass").unwrap(), h, "salted");
    }

    /// The glibc SHA512-crypt test vector (also what `mkpasswd -m sha-512` / doveadm pw make).
    #[test]
    fn sha512_crypt_vector() {
        let h = "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1";
        assert_eq!(verify("Hello world!", h), Ok(true));
        assert_eq!(verify("Hello world", h), Ok(false));
        assert_eq!(
            verify("Hello world!", &format!("{{SHA512-CRYPT}}{h}")),
            Ok(true)
        );
    }

    #[test]
    fn unsupported_and_malformed() {
        assert_eq!(
            verify("x", "plaintext"),
            Err(PasswordError::UnsupportedScheme)
        );
        assert_eq!(
            verify("x", "{PLAIN}x"),
            Err(PasswordError::UnsupportedScheme)
        );
        assert_eq!(
            verify("x", "$argon2id$garbage"),
            Err(PasswordError::Malformed)
        );
        assert!(is_supported("$6$abc$def"));
        assert!(!is_supported("$1$abc$def"));
    }
}
