//! What the queue keeps with each message: the sender, each recipient's state, attempts and
//! next try. The first version is the first line of the message file itself (one file, one
//! fsync to queue a message); a later one (after an attempt that leaves something to do, a
//! hold) is JSON in `env/<id>.json`, replaced whole (write, fsync, rename, fsync the directory),
//! and wins over the first line, so a restart resumes exactly where the last write left it.

use serde::{Deserialize, Serialize};

use crate::dsn::{Notify, Ret};

/// A recipient's state in the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Not tried yet.
    Queued,
    /// Tried; failed for now (4xx, no connection); tried again at `next_try`.
    Deferred,
    /// Accepted by the next hop (or written to its Maildir).
    Delivered,
    /// Refused for good (5xx), or still deferred at the end of the queue lifetime.
    Failed,
}

impl State {
    /// Still to be delivered.
    pub fn is_pending(self) -> bool {
        matches!(self, State::Queued | State::Deferred)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecipientState {
    /// As the client gave it.
    pub address: String,
    /// Lower-cased domain (the route key) and local part (the Maildir of a local recipient).
    pub domain: String,
    pub local: String,
    /// A local recipient of a message that also had remote ones: delivered to its Maildir.
    #[serde(default)]
    pub local_delivery: bool,
    pub state: State,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default)]
    pub last_error: Option<String>,
    /// Unix time of the next try.
    #[serde(default)]
    pub next_try: u64,
    /// The next hop that last answered for it (`host:port`).
    #[serde(default)]
    pub remote_mta: Option<String>,
    /// Failed, and the sender was sent a bounce for it.
    #[serde(default)]
    pub bounced: bool,
    /// RFC 3461 `NOTIFY=` (none: failures and delays) and `ORCPT=` (as given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notify: Option<Notify>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orcpt: Option<String>,
    /// The alias it is a target of (lower-cased), for the forwarding loop check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The sender was sent a delay warning for it.
    #[serde(default)]
    pub warned: bool,
    /// Delivered, and a success report (NOTIFY=SUCCESS, to a next hop that does not take DSN
    /// requests) is still owed to the sender.
    #[serde(default)]
    pub success_report: bool,
}

impl RecipientState {
    /// What the sender asked to hear about it.
    pub fn notify(&self) -> Notify {
        self.notify.unwrap_or(Notify::DEFAULT)
    }

    /// A report about it is still to be sent (a bounce or a success report).
    pub fn report_owed(&self) -> bool {
        (self.state == State::Failed && !self.bounced) || self.success_report
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    pub id: String,
    /// Reverse-path; empty for `<>`.
    pub sender: String,
    /// Unix time it was queued.
    pub created: u64,
    /// Octets of the stored message (LF line ends).
    pub size: u64,
    /// Where the message starts in its file (after the envelope line it was queued with).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub body_offset: u64,
    /// `smtpctl queue hold`: not tried until released.
    #[serde(default)]
    pub held: bool,
    /// RFC 3461 `RET=` and `ENVID=` of the MAIL command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ret: Option<Ret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envid: Option<String>,
    /// The client asked for SMTPUTF8: a next hop without it may not get the message if it
    /// needs it (RFC 6531 §3.2).
    #[serde(default)]
    pub smtputf8: bool,
    pub recipients: Vec<RecipientState>,
}

impl Envelope {
    /// Some recipient is still to be delivered.
    pub fn is_pending(&self) -> bool {
        self.recipients.iter().any(|r| r.state.is_pending())
    }

    /// The earliest next try of a recipient with something left to do: pending, or with a
    /// report not sent yet (it could not be queued).
    pub fn next_try(&self) -> Option<u64> {
        self.recipients
            .iter()
            .filter(|r| r.state.is_pending() || r.report_owed())
            .map(|r| r.next_try)
            .min()
    }

    /// Nothing is left to do: no recipient pending, and every report sent (or, for a bounce
    /// that failed, dropped).
    pub fn is_done(&self) -> bool {
        !self.is_pending() && !self.recipients.iter().any(RecipientState::report_owed)
    }

    /// Pending recipients due at `now`.
    pub fn due(&self, now: u64) -> bool {
        !self.held && self.next_try().is_some_and(|t| t <= now)
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The wait before try `attempts + 1`: `minimal` doubled after each failed try, at most
/// `maximal` (Postfix's exponential backoff).
pub fn backoff(attempts: u32, minimal: u64, maximal: u64) -> u64 {
    let doublings = attempts.saturating_sub(1).min(32);
    minimal.saturating_mul(1u64 << doublings).min(maximal)
}

#[cfg(test)]
impl RecipientState {
    /// A remote recipient, queued, due at `next_try`.
    pub fn for_tests(address: &str, next_try: u64) -> RecipientState {
        let (local, domain) = address.rsplit_once('@').unwrap_or((address, ""));
        RecipientState {
            address: address.into(),
            domain: domain.into(),
            local: local.into(),
            local_delivery: false,
            state: State::Queued,
            attempts: 0,
            last_error: None,
            next_try,
            remote_mta: None,
            bounced: false,
            notify: None,
            orcpt: None,
            alias: None,
            warned: false,
            success_report: false,
        }
    }
}

#[cfg(test)]
impl Envelope {
    /// A message `id` from nobody, without recipients.
    pub fn for_tests(id: &str) -> Envelope {
        Envelope {
            id: id.into(),
            sender: String::new(),
            created: 0,
            size: 1,
            body_offset: 0,
            held: false,
            ret: None,
            envid: None,
            smtputf8: false,
            recipients: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let waits: Vec<u64> = (1..=7).map(|a| backoff(a, 300, 4000)).collect();
        assert_eq!(waits, [300, 600, 1200, 2400, 4000, 4000, 4000]);
        assert_eq!(backoff(u32::MAX, 300, 4000), 4000);
    }

    #[test]
    fn due_and_pending() {
        let r = |state, next_try| RecipientState {
            state,
            ..RecipientState::for_tests("a@x.test", next_try)
        };
        let mut e = Envelope::for_tests("1");
        e.recipients = vec![
            r(State::Delivered, 0),
            r(State::Deferred, 50),
            r(State::Queued, 80),
        ];
        assert!(e.is_pending() && !e.due(49) && e.due(50));
        assert_eq!(e.next_try(), Some(50));
        e.held = true;
        assert!(!e.due(100));
        e.held = false;
        for r in &mut e.recipients {
            r.state = State::Failed;
        }
        assert!(
            !e.is_pending() && e.due(100),
            "failed, not bounced yet: due for its bounce"
        );
        assert!(!e.is_done(), "failed and not bounced: kept");
        for r in &mut e.recipients {
            r.bounced = true;
        }
        assert!(e.is_done() && !e.due(100));
    }
}
