//! The password check every protocol shares (SMTP AUTH, POP3, IMAP, HTTP Basic): the hash is
//! verified off the async threads (argon2 and sha512-crypt take milliseconds), and a failure
//! answers only after a delay that grows with the session's failures, so that guessing slows
//! down and an unknown user costs the same time as a wrong password (`Accounts::verify` hashes
//! against a dummy for those). What to log, count and reply stays with each protocol.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::accounts::Accounts;

/// The longest a failure waits, in steps of the configured delay.
const MAX_STEPS: u32 = 10;

/// Whether `pass` is `user`'s password. `failures_before` is how many logins this session
/// already failed: a failure waits `delay × (failures_before + 1)`, at most 10 × `delay`.
pub async fn check(
    accounts: &Arc<Accounts>,
    user: &str,
    pass: String,
    delay: Duration,
    failures_before: u32,
) -> bool {
    let accounts = Arc::clone(accounts);
    let who = user.to_string();
    let ok = tokio::task::spawn_blocking(move || accounts.verify(&who, &pass))
        .await
        .unwrap_or(false);
    if !ok {
        tokio::time::sleep(delay * failure_steps(failures_before)).await;
    }
    ok
}

fn failure_steps(failures_before: u32) -> u32 {
    failures_before.saturating_add(1).min(MAX_STEPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_grows_with_failures_up_to_ten_steps() {
        let steps: Vec<u32> = [0, 1, 2, 8, 9, 10, 500, u32::MAX]
            .into_iter()
            .map(failure_steps)
            .collect();
        assert_eq!(steps, [1, 2, 3, 9, 10, 10, 10, 10]);
    }

    /// Only lower bounds: a failure never answers before its delay (the time a success takes
    /// is the hash's, which no test should bound).
    #[tokio::test]
    async fn a_failure_waits_its_steps() {
        let hash = crate::auth::password::hash("pw").unwrap();
        let accounts = Arc::new(Accounts::new(
            [("alice@example.test", hash.as_str())],
            Arc::default(),
        ));
        let delay = Duration::from_millis(100);
        assert!(check(&accounts, "Alice@example.test", "pw".into(), delay, 3).await);
        let t = std::time::Instant::now();
        assert!(!check(&accounts, "alice@example.test", "no".into(), delay, 2).await);
        assert!(t.elapsed() >= delay * 3, "{:?}", t.elapsed());
        let t = std::time::Instant::now();
        assert!(!check(&accounts, "nobody@example.test", "pw".into(), delay, 0).await);
        assert!(t.elapsed() >= delay, "{:?}", t.elapsed());
    }
}
