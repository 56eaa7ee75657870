//! What an SMTP session is allowed to do: the [`Policy`] snapshot the composition root builds from
//! the config when a session starts, and the mailbox lookup it carries.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

/// The answer to "does this mailbox exist?" for `[mailboxes] accept = "accounts"`, implemented
/// outside `proto` (by the daemon's accounts, which also know the selftest's probe).
pub trait Mailboxes: Send + Sync + fmt::Debug {
    /// `address` is lower-cased `local@domain` in a local domain.
    fn exists(&self, address: &str) -> bool;
}

/// A fixed set of addresses (tests, examples).
impl Mailboxes for BTreeSet<String> {
    fn exists(&self, address: &str) -> bool {
        self.contains(address)
    }
}

/// Which local parts are accepted in the local domains.
#[derive(Clone, Debug)]
pub enum Accept {
    /// Any safe local part; its Maildir is made on first delivery.
    Any,
    /// Only the addresses this lookup knows, plus postmaster.
    Known(Arc<dyn Mailboxes>),
}

/// Whether relayed mail can be sent on (a session must also be allowed to relay: a peer in
/// `[relay] networks`, or an authenticated submission session).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum RelayTo {
    /// No outbound delivery: every non-local recipient is refused (the engine's examples).
    #[default]
    Nowhere,
    /// Every domain (a route, the smarthost, or direct delivery to its MX hosts).
    Anywhere,
}

/// The settings a session needs, taken from the config when the session starts.
#[derive(Clone, Debug)]
pub struct Policy {
    pub hostname: String,
    pub max_message_bytes: u64,
    pub max_recipients: usize,
    pub max_errors: u32,
    /// Longest command line, CRLF included (RFC 5321: 512).
    pub max_command_line: usize,
    /// Longest text line in DATA, CRLF included (RFC 5321: 1000).
    pub max_line_length: usize,
    /// Local domains, lower-cased. The first one receives `<postmaster>` without a domain.
    pub domains: Vec<String>,
    pub accept: Accept,
    /// STARTTLS can be offered (a TLS certificate is configured).
    pub tls_available: bool,
    /// AUTH can be offered (there are accounts).
    pub auth_available: bool,
    /// AUTH without TLS from non-loopback peers.
    pub allow_insecure_auth: bool,
    /// A submission listener: AUTH before MAIL, sender must match the login (RFC 6409).
    pub submission: bool,
    /// Submission: MAIL FROM must be the authenticated address.
    pub sender_login_match: bool,
    /// Where relayed mail can go.
    pub relay_to: RelayTo,
    /// `[aliases]`: lower-cased `local@domain` or `@domain` (catch-all) → addresses.
    pub aliases: Arc<BTreeMap<String, Vec<String>>>,
    /// `[mailboxes] recipient_delimiter`: `alice+tag` is alice's mailbox.
    pub recipient_delimiter: Option<char>,
    /// `[testing] fault_addresses`: `fail-NNN@` and `slow-Ns@` local parts inject faults.
    pub fault_addresses: bool,
    /// A deliberately broken build for the selftest's own test: DATA keeps stuffing dots. Set
    /// only by debug builds ([`crate::testing::Break::DotUnstuff`], read by the daemon).
    pub test_keep_dot_stuffing: bool,
}

impl Policy {
    /// The mailbox part of a local part: before the delimiter, if there is one and something
    /// stands before it.
    pub fn base_local<'a>(&self, local: &'a str) -> &'a str {
        match self.recipient_delimiter.and_then(|d| local.split_once(d)) {
            Some((base, _)) if !base.is_empty() => base,
            _ => local,
        }
    }

    /// The addresses `address` (lower-cased `local@domain`) is an alias for: its own entry, else
    /// its domain's catch-all when `address` is not a known mailbox.
    pub fn alias(&self, address: &str, known: bool) -> Option<Vec<String>> {
        if let Some(t) = self.aliases.get(address) {
            return Some(t.clone());
        }
        let domain = address.rsplit_once('@').map(|(_, d)| d)?;
        if known {
            return None;
        }
        self.aliases.get(&format!("@{domain}")).cloned()
    }

    /// A policy with RFC minimum limits, for tests and examples.
    pub fn example(hostname: &str, domains: &[&str]) -> Self {
        Policy {
            hostname: hostname.to_string(),
            max_message_bytes: 10 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            max_command_line: 512,
            max_line_length: 1000,
            domains: domains.iter().map(|d| d.to_ascii_lowercase()).collect(),
            accept: Accept::Any,
            tls_available: false,
            auth_available: false,
            allow_insecure_auth: false,
            submission: false,
            sender_login_match: true,
            relay_to: RelayTo::Nowhere,
            aliases: Arc::default(),
            recipient_delimiter: None,
            fault_addresses: false,
            test_keep_dot_stuffing: false,
        }
    }
}
