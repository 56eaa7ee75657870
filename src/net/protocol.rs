//! The kinds of listener smtpd runs: one enum for the daemon, the connection drivers, the control
//! socket (`"smtp"`, `"pop3s"`, `"http"`, ... on the wire) and the logs.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Port 25 role: STARTTLS offered, AUTH optional.
    Smtp,
    /// Port 587 role: STARTTLS offered, AUTH required (RFC 6409).
    Submission,
    /// Port 465 role: implicit TLS, AUTH required (RFC 8314).
    Submissions,
    /// Port 110 role: STLS offered.
    Pop3,
    /// Port 995 role: implicit TLS.
    Pop3s,
    /// Port 143 role: STARTTLS offered.
    Imap,
    /// Port 993 role: implicit TLS.
    Imaps,
    /// The HTTP API (`[http] listen`), plain HTTP/1.1.
    Http,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Submissions => "submissions",
            Protocol::Pop3 => "pop3",
            Protocol::Pop3s => "pop3s",
            Protocol::Imap => "imap",
            Protocol::Imaps => "imaps",
            Protocol::Http => "http",
        }
    }

    /// Served by the SMTP driver.
    pub fn is_smtp(self) -> bool {
        matches!(
            self,
            Protocol::Smtp | Protocol::Submission | Protocol::Submissions
        )
    }

    /// TLS from the first byte (no STARTTLS/STLS step).
    pub fn is_implicit_tls(self) -> bool {
        matches!(
            self,
            Protocol::Submissions | Protocol::Pop3s | Protocol::Imaps
        )
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names() {
        for p in [
            Protocol::Smtp,
            Protocol::Submission,
            Protocol::Submissions,
            Protocol::Pop3,
            Protocol::Pop3s,
            Protocol::Imap,
            Protocol::Imaps,
            Protocol::Http,
        ] {
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{p}\""));
            assert_eq!(serde_json::from_str::<Protocol>(&json).unwrap(), p);
        }
    }
}
