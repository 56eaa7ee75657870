//! SMTP replies: a code, an optional enhanced status code (RFC 3463) and one or more text lines.
//! Canned replies are named by meaning, not by number.

use std::fmt;

/// One SMTP reply, possibly multi-line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code.
    pub code: u16,
    /// Enhanced status code ("2.1.0"); `None` for the greeting and EHLO/HELO (RFC 2034 §3).
    pub enhanced: Option<&'static str>,
    /// Text lines; never empty.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply with an enhanced status code.
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A reply without enhanced status code (greeting, HELO/EHLO).
    pub fn plain(code: u16, lines: Vec<String>) -> Self {
        debug_assert!(!lines.is_empty());
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        self.code < 400
    }

    /// Wire form: `250-first\r\n250 last\r\n`.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_string().into_bytes()
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.lines.len().saturating_sub(1);
        for (i, line) in self.lines.iter().enumerate() {
            let sep = if i == last { ' ' } else { '-' };
            // Reply text comes from us, but never let a stray CR/LF break the framing.
            let clean: String = line
                .chars()
                .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
                .collect();
            match self.enhanced {
                Some(enh) => write!(f, "{}{}{} {}\r\n", self.code, sep, enh, clean)?,
                None => write!(f, "{}{}{}\r\n", self.code, sep, clean)?,
            }
        }
        Ok(())
    }
}

/// Canned replies shared by the session and the driver.
pub mod canned {
    use super::Reply;

    pub fn ok() -> Reply {
        Reply::new(250, "2.0.0", "Ok")
    }
    pub fn bye() -> Reply {
        Reply::new(221, "2.0.0", "Bye")
    }
    pub fn start_data() -> Reply {
        Reply::new(354, "2.0.0", "End data with <CR><LF>.<CR><LF>")
    }
    pub fn unknown_command() -> Reply {
        Reply::new(502, "5.5.2", "Error: command not recognized")
    }
    pub fn not_implemented(verb: &str) -> Reply {
        Reply::new(502, "5.5.1", format!("Error: {verb} not implemented"))
    }
    pub fn line_too_long() -> Reply {
        Reply::new(500, "5.5.6", "Error: line too long")
    }
    pub fn need_mail() -> Reply {
        Reply::new(503, "5.5.1", "Error: need MAIL command")
    }
    pub fn need_rcpt() -> Reply {
        Reply::new(503, "5.5.1", "Error: need RCPT command")
    }
    pub fn no_valid_recipients() -> Reply {
        Reply::new(554, "5.5.1", "Error: no valid recipients")
    }
    pub fn nested_mail() -> Reply {
        Reply::new(503, "5.5.1", "Error: nested MAIL command")
    }
    pub fn too_many_errors(host: &str) -> Reply {
        Reply::new(421, "4.7.0", format!("{host} Error: too many errors"))
    }
    /// A line of another protocol: the session ends (Postfix's `smtpd_forbidden_commands`).
    pub fn foreign(host: &str, kind: crate::proto::foreign::Foreign) -> Reply {
        Reply::new(
            421,
            "4.7.0",
            format!("{host} Error: {kind} is not SMTP; closing"),
        )
    }
    pub fn too_many_connections(host: &str) -> Reply {
        Reply::new(421, "4.7.0", format!("{host} Error: too many connections"))
    }
    pub fn timeout(host: &str) -> Reply {
        Reply::new(421, "4.4.2", format!("{host} Error: timeout exceeded"))
    }
    pub fn shutting_down(host: &str) -> Reply {
        Reply::new(
            421,
            "4.3.0",
            format!("{host} Service shutting down, closing connection"),
        )
    }
    pub fn message_too_big() -> Reply {
        Reply::new(552, "5.3.4", "Error: message size exceeds fixed limit")
    }
    pub fn too_many_recipients() -> Reply {
        Reply::new(452, "4.5.3", "Error: too many recipients")
    }
    pub fn storage_failed() -> Reply {
        Reply::new(
            451,
            "4.3.0",
            "Error: local storage failure, try again later",
        )
    }
    pub fn disk_full() -> Reply {
        Reply::new(
            452,
            "4.3.1",
            "Error: insufficient system storage, try again later",
        )
    }
    pub fn vrfy() -> Reply {
        Reply::new(
            252,
            "2.0.0",
            "Cannot VRFY user, but will accept message and attempt delivery",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line_with_enhanced_code() {
        assert_eq!(canned::ok().to_string(), "250 2.0.0 Ok\r\n");
    }

    #[test]
    fn multi_line_plain() {
        let r = Reply::plain(
            250,
            vec!["host".into(), "PIPELINING".into(), "SIZE 10".into()],
        );
        assert_eq!(
            r.to_string(),
            "250-host\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
    }

    #[test]
    fn crlf_in_text_cannot_break_framing() {
        let r = Reply::new(250, "2.0.0", "a\r\n250 b");
        assert_eq!(r.to_string(), "250 2.0.0 a  250 b\r\n");
    }
}
