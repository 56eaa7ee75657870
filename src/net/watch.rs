//! Live events for `smtpctl watch`: session starts and ends, deliveries and refusals, published
//! to whoever is watching (nothing is kept when nobody is).

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchEvent {
    /// Unix time.
    pub time: u64,
    pub session: u64,
    pub peer: String,
    /// "session start", "delivered", "refused", "delivery failed", "session end"; "mailbox
    /// changed" when an IMAP or POP3 session changed messages of the account in `to` (it wakes
    /// that account's IMAP sessions in IDLE).
    pub event: String,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub size: Option<u64>,
    /// Reply or reason.
    #[serde(default)]
    pub result: String,
    /// A delivery's copies in new/, when known (so a wait reads just those); in-process only:
    /// never sent to smtpctl or HTTP clients (paths are not theirs to see).
    #[serde(skip)]
    pub stored: Option<Vec<std::path::PathBuf>>,
}

impl WatchEvent {
    /// Whether this event concerns `address` (sender or a recipient, any case).
    pub fn mentions(&self, address: &str) -> bool {
        let a = address.to_ascii_lowercase();
        self.from
            .as_deref()
            .is_some_and(|f| f.to_ascii_lowercase() == a)
            || self.to.iter().any(|t| t.to_ascii_lowercase() == a)
    }
}

#[derive(Debug)]
pub struct Watch {
    tx: broadcast::Sender<WatchEvent>,
}

impl Default for Watch {
    fn default() -> Self {
        Watch {
            tx: broadcast::channel(1024).0,
        }
    }
}

impl Watch {
    /// Builds and sends the event only while someone watches (no cost per message otherwise).
    pub fn publish(&self, event: impl FnOnce() -> WatchEvent) {
        if self.tx.receiver_count() > 0 {
            let _ = self.tx.send(event());
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.tx.subscribe()
    }
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
