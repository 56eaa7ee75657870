//! The `sendmail` entry point: the message from standard input as sendmail reads it (a lone "."
//! ends it unless `-i`), recipients from the arguments and with `-t` from To:/Cc:/Bcc: (Bcc:
//! then removed), From:, Date: and Message-ID: added when missing (as Postfix's cleanup does),
//! then one SMTP transaction with the local smtpd. The result maps to sysexits.h codes.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mailbox::headers::{has_field, header_end, rfc5322_date};

/// sysexits.h.
pub mod sysexits {
    pub const OK: u8 = 0;
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const NOUSER: u8 = 67;
    pub const UNAVAILABLE: u8 = 69;
    pub const TEMPFAIL: u8 = 75;
}

/// Reads the message: LF or CRLF line ends become LF; without `ignore_dots` a line holding a
/// single "." ends it (what is after is not read).
pub fn read_message(input: &[u8], ignore_dots: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    for line in input.split_inclusive(|&b| b == b'\n') {
        let content = line
            .strip_suffix(b"\n")
            .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
            .unwrap_or(line);
        if !ignore_dots && content == b"." {
            break;
        }
        out.extend_from_slice(content);
        out.push(b'\n');
    }
    out
}

/// With `-t`: the To:, Cc: and Bcc: recipients, and the message without its Bcc: fields.
pub fn header_recipients(message: &[u8]) -> (Vec<String>, Vec<u8>) {
    let end = header_end(message).unwrap_or(message.len());
    let (head, body) = message.split_at(end);
    let mut rcpts: Vec<String> = Vec::new();
    let mut section = head.to_vec();
    section.extend_from_slice(b"\n");
    if let Some(parsed) = mail_parser::MessageParser::default().parse_headers(&section) {
        for list in [parsed.to(), parsed.cc(), parsed.bcc()]
            .into_iter()
            .flatten()
        {
            for a in list.iter() {
                // A bare name ("To: root") is read as a display name with no address.
                let bare = a.name().filter(|n| !n.trim().contains(' '));
                let Some(addr) = a.address().or(bare) else {
                    continue;
                };
                let addr = addr.trim();
                if !addr.is_empty() && !rcpts.iter().any(|r| r.eq_ignore_ascii_case(addr)) {
                    rcpts.push(addr.to_string());
                }
            }
        }
    }
    // Drop every Bcc: field with its continuation lines.
    let mut kept = Vec::with_capacity(message.len());
    let mut in_bcc = false;
    for line in head.split_inclusive(|&b| b == b'\n') {
        let folded = line.starts_with(b" ") || line.starts_with(b"\t");
        if !folded {
            in_bcc = line.len() > 4 && line[..4].eq_ignore_ascii_case(b"bcc:");
        }
        if !in_bcc {
            kept.extend_from_slice(line);
        }
    }
    kept.extend_from_slice(body);
    (rcpts, kept)
}

/// Adds From:, Date: and Message-ID: when the header section lacks them.
pub fn complete_headers(
    message: &[u8],
    sender: &str,
    full_name: Option<&str>,
    hostname: &str,
) -> Vec<u8> {
    let end = header_end(message).unwrap_or(message.len());
    let head = &message[..end];
    let mut added = String::new();
    if !has_field(head, "From") {
        match full_name {
            Some(n) if !n.is_empty() => {
                let n: String = n.chars().filter(|c| !c.is_control() && *c != '"').collect();
                added.push_str(&format!("From: \"{n}\" <{sender}>\n"));
            }
            _ => added.push_str(&format!("From: <{sender}>\n")),
        }
    }
    let now = SystemTime::now();
    if !has_field(head, "Date") {
        added.push_str(&format!("Date: {}\n", rfc5322_date(now)));
    }
    if !has_field(head, "Message-ID") {
        let n = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_nanos();
        added.push_str(&format!(
            "Message-ID: <{n}.{}.sendmail@{hostname}>\n",
            std::process::id()
        ));
    }
    let mut out = added.into_bytes();
    if !looks_like_headers(message) {
        // No header section at all: the input is the body.
        out.push(b'\n');
    }
    out.extend_from_slice(message);
    out
}

/// Whether the text starts with a header field (`Name: ...`).
fn looks_like_headers(message: &[u8]) -> bool {
    let first = message.split(|&b| b == b'\n').next().unwrap_or(b"");
    first
        .iter()
        .position(|&b| b == b':')
        .is_some_and(|i| i > 0 && first[..i].iter().all(|b| b.is_ascii_graphic()))
}

/// A bare name (`root`, as cron and unattended-upgrades give it) in `origin`, the first local
/// domain (Postfix's append_at_myorigin); an address is kept as it is.
pub fn qualify(address: &str, origin: &str) -> String {
    let a = address.trim().trim_start_matches('<').trim_end_matches('>');
    if a.contains('@') || a.is_empty() {
        a.to_string()
    } else {
        format!("{a}@{origin}")
    }
}

/// Where to submit when smtpd's configuration cannot be read (it is for root and smtpd's group
/// only): the standard port on loopback, in the packaged config's domain.
pub fn fallback() -> (std::net::SocketAddr, String, String) {
    (
        std::net::SocketAddr::from(([127, 0, 0, 1], 25)),
        "localhost".into(),
        "localhost".into(),
    )
}

/// The address to submit to, and smtpd's hostname: the running daemon's first SMTP listener as
/// its control socket reports it (so a listener on port 0 is found too), else — the socket is
/// for smtpd's group only, and most callers are not in it — `config`'s first one. On loopback
/// when it listens on every address.
pub fn local_smtpd(config: &crate::config::Config) -> Option<(std::net::SocketAddr, String)> {
    let reported = crate::control::client::call(
        &config.control.socket,
        crate::control::proto::Request::Status,
        Duration::from_secs(5),
    )
    .ok()
    .and_then(|v| serde_json::from_value::<crate::control::proto::Status>(v).ok())
    .and_then(|s| {
        s.listeners
            .iter()
            .find(|l| l.protocol == crate::net::Protocol::Smtp)
            .and_then(|l| l.address.parse::<std::net::SocketAddr>().ok())
    });
    let mut addr = match reported {
        Some(a) => a,
        None => *config.smtp.listen.first()?,
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Some((addr, config.hostname.clone()))
}

/// The exit status for a finished transaction, and what to say on stderr.
pub fn status_of(outcome: &super::smtp::Outcome) -> (u8, Vec<String>) {
    let mut said: Vec<String> = outcome
        .rejected
        .iter()
        .map(|(a, r)| format!("<{a}>: {}", r.last_line()))
        .collect();
    if outcome.delivered {
        return (sysexits::OK, said);
    }
    said.push(format!("not sent: {}", outcome.reply.last_line()));
    let code = if outcome.reply.is_transient() {
        sysexits::TEMPFAIL
    } else if outcome.accepted.is_empty() && !outcome.rejected.is_empty() {
        if outcome.rejected.iter().all(|(_, r)| r.is_transient()) {
            sysexits::TEMPFAIL
        } else {
            sysexits::NOUSER
        }
    } else {
        sysexits::UNAVAILABLE
    };
    (code, said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_dot_ends_input_unless_i() {
        let input = b"Subject: x\r\n\r\nline\r\n.\r\nafter\r\n";
        assert_eq!(read_message(input, false), b"Subject: x\n\nline\n");
        assert_eq!(read_message(input, true), b"Subject: x\n\nline\n.\nafter\n");
        assert_eq!(read_message(b"no newline", true), b"no newline\n");
    }

    #[test]
    fn dash_t_reads_to_cc_bcc_and_drops_bcc() {
        let m = b"To: Alice <alice@example.test>, bob@example.test\nCc: \"C\" <carol@example.test>\nBcc: secret@example.test,\n  other@example.test\nSubject: s\n\nTo: not@header.test\n";
        let (rcpts, kept) = header_recipients(m);
        assert_eq!(
            rcpts,
            [
                "alice@example.test",
                "bob@example.test",
                "carol@example.test",
                "secret@example.test",
                "other@example.test"
            ]
        );
        let kept = String::from_utf8(kept).unwrap();
        assert!(
            !kept.contains("Bcc") && !kept.contains("secret") && !kept.contains("other@"),
            "{kept}"
        );
        assert!(
            kept.ends_with("Subject: s\n\nTo: not@header.test\n"),
            "{kept}"
        );
    }

    #[test]
    fn bare_names_are_qualified() {
        assert_eq!(qualify("root", "example.test"), "root@example.test");
        assert_eq!(qualify("<root>", "example.test"), "root@example.test");
        assert_eq!(qualify("a@b.test", "example.test"), "a@b.test");
        assert_eq!(qualify("", "example.test"), "");
        let (rcpts, _) = header_recipients(b"To: root\nCc: Ops <ops>\n\nx\n");
        assert_eq!(
            rcpts,
            ["root", "ops"],
            "bare names are found, then qualified"
        );
    }

    #[test]
    fn missing_headers_are_added() {
        let m = complete_headers(
            b"Subject: s\n\nbody\n",
            "root@mx.test",
            Some("Cron Daemon"),
            "mx.test",
        );
        let t = String::from_utf8(m).unwrap();
        assert!(
            t.starts_with("From: \"Cron Daemon\" <root@mx.test>\nDate: "),
            "{t}"
        );
        assert!(
            t.contains("\nMessage-ID: <") && t.ends_with("Subject: s\n\nbody\n"),
            "{t}"
        );
        let kept = complete_headers(
            b"From: a@b\nDate: x\nMessage-ID: <m@b>\n\nbody\n",
            "root@mx.test",
            None,
            "mx.test",
        );
        assert_eq!(kept, b"From: a@b\nDate: x\nMessage-ID: <m@b>\n\nbody\n");
        // A bare body gets a header section of its own.
        let bare = String::from_utf8(complete_headers(b"just text\n", "r@m", None, "m")).unwrap();
        assert!(bare.contains("\n\njust text\n"), "{bare}");
    }
}
