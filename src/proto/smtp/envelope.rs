//! The transaction the engine hands to the driver when DATA starts.

use super::command::{BodyType, RcptParams};
use crate::dsn::{Notify, Ret};

/// One accepted recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address as the client gave it (canonical quoting), for `Received: ... for <...>`.
    pub address: String,
    /// Mailbox directory names: ASCII-lower-cased domain and local part.
    pub domain: String,
    pub local: String,
    /// Outside the local domains, accepted for relaying (it goes through the outbound queue).
    pub remote: bool,
    /// RFC 3461 `NOTIFY=` (none: the default, failures and delays).
    pub notify: Option<Notify>,
    /// RFC 3461 `ORCPT=` as given, or (for an alias's target) the alias itself.
    pub orcpt: Option<String>,
    /// The alias (lower-cased `local@domain`) this address is a target of: a copy forwarded
    /// to it carries `Delivered-To:` the alias, which shows a forwarding loop.
    pub alias: Option<String>,
}

impl Recipient {
    /// A recipient without DSN parameters.
    pub fn new(address: String, domain: String, local: String, remote: bool) -> Recipient {
        Recipient {
            address,
            domain,
            local,
            remote,
            notify: None,
            orcpt: None,
            alias: None,
        }
    }

    /// With the DSN parameters of its RCPT.
    pub fn with(mut self, params: &RcptParams) -> Recipient {
        self.notify = params.notify;
        self.orcpt = params.orcpt.clone();
        self
    }
}

/// The transaction handed to the driver when DATA starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// HELO/EHLO argument, if any was given.
    pub helo: Option<String>,
    /// The client used EHLO.
    pub esmtp: bool,
    /// Reverse-path; empty for `<>`.
    pub from: String,
    pub recipients: Vec<Recipient>,
    pub smtputf8: bool,
    pub body: Option<BodyType>,
    pub declared_size: Option<u64>,
    /// The session is under TLS.
    pub tls: bool,
    /// The account the client authenticated as.
    pub authenticated: Option<String>,
    /// Received on a submission listener (Date and Message-ID are added when missing).
    pub submission: bool,
    /// RFC 3461 `RET=` and `ENVID=`.
    pub ret: Option<Ret>,
    pub envid: Option<String>,
}

impl Envelope {
    /// The `with` keyword of the Received: header (RFC 3848, RFC 6531).
    pub fn protocol(&self) -> String {
        let base = match (self.esmtp, self.smtputf8) {
            (false, _) => return "SMTP".into(),
            (true, false) => "ESMTP",
            (true, true) => "UTF8SMTP",
        };
        let s = if self.tls { "S" } else { "" };
        let a = if self.authenticated.is_some() {
            "A"
        } else {
            ""
        };
        format!("{base}{s}{a}")
    }
}
