//! Counters shared by every session of the daemon (all config generations): read by
//! `smtpctl status` and the systemd STATUS= line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

use crate::proto::smtp::{Reason, Stage};

#[derive(Debug, Default)]
pub struct Stats {
    pub smtp_active: AtomicU64,
    pub smtp_total: AtomicU64,
    pub pop3_active: AtomicU64,
    pub pop3_total: AtomicU64,
    pub imap_active: AtomicU64,
    pub imap_total: AtomicU64,
    pub imap_logins: AtomicU64,
    pub imap_failed_logins: AtomicU64,
    /// Messages acknowledged with 250 after DATA.
    pub messages_accepted: AtomicU64,
    /// Messages refused after DATA (size, line length, storage failure).
    pub messages_rejected: AtomicU64,
    /// Octets of accepted messages (as stored).
    pub bytes_accepted: AtomicU64,
    /// Copies in `new/` (one per recipient mailbox).
    pub deliveries: AtomicU64,
    /// Connections refused by max_connections / max_connections_per_ip / pause.
    pub refused: AtomicU64,
    pub pop3_logins: AtomicU64,
    pub pop3_failed_logins: AtomicU64,
    pub pop3_retrieved: AtomicU64,
    pub pop3_deleted: AtomicU64,
    /// Outbound: recipients accepted by their next hop, deferred tries, recipients failed.
    pub remote_delivered: AtomicU64,
    pub remote_deferred: AtomicU64,
    pub remote_failed: AtomicU64,
    /// Refused MAIL, RCPT and DATA commands, by stage and reason.
    refusals: Mutex<BTreeMap<(Stage, Reason), u64>>,
    /// Live events for `smtpctl watch`.
    pub watch: super::watch::Watch,
}

/// A point-in-time copy, for the control socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub smtp_active: u64,
    pub smtp_total: u64,
    pub pop3_active: u64,
    pub pop3_total: u64,
    #[serde(default)]
    pub imap_active: u64,
    #[serde(default)]
    pub imap_total: u64,
    #[serde(default)]
    pub imap_logins: u64,
    #[serde(default)]
    pub imap_failed_logins: u64,
    pub messages_accepted: u64,
    pub messages_rejected: u64,
    pub bytes_accepted: u64,
    pub deliveries: u64,
    pub refused: u64,
    pub pop3_logins: u64,
    pub pop3_failed_logins: u64,
    pub pop3_retrieved: u64,
    pub pop3_deleted: u64,
    #[serde(default)]
    pub remote_delivered: u64,
    #[serde(default)]
    pub remote_deferred: u64,
    #[serde(default)]
    pub remote_failed: u64,
    /// Refused MAIL, RCPT and DATA commands.
    #[serde(default)]
    pub refused_commands: u64,
    /// The same by `stage/reason` (`rcpt/relay`, `mail/sender_not_owned`, ...).
    #[serde(default)]
    pub refusals: BTreeMap<String, u64>,
}

pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

pub fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Ordering::Relaxed);
}

impl Stats {
    /// Counts one refused MAIL, RCPT or DATA.
    pub fn refused(&self, stage: Stage, reason: Reason) {
        let mut map = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        *map.entry((stage, reason)).or_default() += 1;
    }

    /// (stage, reason, count) of every refusal so far.
    pub fn refusals(&self) -> Vec<(Stage, Reason, u64)> {
        let map = self.refusals.lock().unwrap_or_else(PoisonError::into_inner);
        map.iter().map(|(&(s, r), &n)| (s, r, n)).collect()
    }

    pub fn snapshot(&self) -> Snapshot {
        let refusals = self.refusals();
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Snapshot {
            smtp_active: g(&self.smtp_active),
            smtp_total: g(&self.smtp_total),
            pop3_active: g(&self.pop3_active),
            pop3_total: g(&self.pop3_total),
            imap_active: g(&self.imap_active),
            imap_total: g(&self.imap_total),
            imap_logins: g(&self.imap_logins),
            imap_failed_logins: g(&self.imap_failed_logins),
            messages_accepted: g(&self.messages_accepted),
            messages_rejected: g(&self.messages_rejected),
            bytes_accepted: g(&self.bytes_accepted),
            deliveries: g(&self.deliveries),
            refused: g(&self.refused),
            pop3_logins: g(&self.pop3_logins),
            pop3_failed_logins: g(&self.pop3_failed_logins),
            pop3_retrieved: g(&self.pop3_retrieved),
            pop3_deleted: g(&self.pop3_deleted),
            remote_delivered: g(&self.remote_delivered),
            remote_deferred: g(&self.remote_deferred),
            remote_failed: g(&self.remote_failed),
            refused_commands: refusals.iter().map(|r| r.2).sum(),
            refusals: refusals
                .into_iter()
                .map(|(s, r, n)| (format!("{s}/{r}"), n))
                .collect(),
        }
    }
}

/// Counts a session as active while alive.
pub struct ActiveGuard<'a>(&'a AtomicU64);

impl<'a> ActiveGuard<'a> {
    pub fn new(active: &'a AtomicU64, total: &AtomicU64) -> Self {
        add(active, 1);
        add(total, 1);
        ActiveGuard(active)
    }
}

impl Drop for ActiveGuard<'_> {
    fn drop(&mut self) {
        sub(self.0, 1);
    }
}
