//! The HTTP-01 answers in flight: token → key authorization, set by the ACME client while an
//! order is open and served by the `[http]` listener at `/.well-known/acme-challenge/{token}`.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

#[derive(Debug, Default)]
pub struct Challenges {
    answers: Mutex<HashMap<String, String>>,
}

impl Challenges {
    pub fn insert(&self, token: &str, key_authorization: &str) {
        self.lock()
            .insert(token.to_string(), key_authorization.to_string());
    }

    pub fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    /// The key authorization for `token`, if a challenge with it is in flight.
    pub fn answer(&self, token: &str) -> Option<String> {
        self.lock().get(token).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.answers.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_while_in_flight() {
        let c = Challenges::default();
        assert_eq!(c.answer("t"), None);
        c.insert("t", "t.thumb");
        assert_eq!(c.answer("t").as_deref(), Some("t.thumb"));
        c.remove("t");
        assert_eq!(c.answer("t"), None);
    }
}
