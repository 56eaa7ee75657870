//! Delivery status notifications (RFC 3464): `multipart/report; report-type=delivery-status`
//! from `<>` to the envelope sender, with a text part, one `message/delivery-status` block per
//! recipient (Final-Recipient, Original-Recipient, Action, Status, Remote-MTA, Diagnostic-Code)
//! and the original header section, or the whole message for a failure with `RET=FULL`. One
//! report is about one kind of outcome: failed (a bounce), delayed (a warning) or delivered /
//! relayed (a success report, RFC 3461).
//!
//! The format is fixed and small, so it is written from a template here rather than through a
//! MIME builder; every value from the message or a peer goes through [`clean`] first, so none
//! can break the structure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::dsn::{Ret, orcpt_display, xtext_decode};
use crate::mailbox::headers::{header_end, rfc5322_date};

/// A message larger than this is returned by its header section only, even with `RET=FULL`
/// (Postfix's `bounce_size_limit` does the same at 50 kB).
pub const FULL_RETURN_LIMIT: usize = 1024 * 1024;

/// The RFC 3464 `Action:` of a report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    /// Delivered into a mailbox here.
    Delivered,
    /// Handed to a next hop that does not take DSN requests.
    Relayed,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

/// One recipient a report is about.
pub struct Entry<'a> {
    pub address: &'a str,
    /// `ORCPT=` as the client gave it.
    pub orcpt: Option<&'a str>,
    /// What the next hop said (a reply), or why we gave up; none for a success.
    pub error: Option<&'a str>,
    /// The next hop that answered, if one did.
    pub remote_mta: Option<&'a str>,
}

/// The message a report is about.
pub struct Subject<'a> {
    pub hostname: &'a str,
    pub id: &'a str,
    pub sender: &'a str,
    /// Unix time it was queued.
    pub created: u64,
    /// `ENVID=` (xtext, as given).
    pub envid: Option<&'a str>,
    pub ret: Option<Ret>,
    /// Delayed: when the queue gives up (Unix time).
    pub retry_until: Option<u64>,
    /// Its text (LF line ends, as queued).
    pub original: &'a [u8],
}

/// Printable ASCII on one line.
fn clean(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The RFC 3463 code in `error` (the first `d.d.d` whose class is 4 or 5), else `fallback`.
fn status(error: &str, fallback: &str) -> String {
    error
        .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
        .find(|w| {
            let p: Vec<&str> = w.split('.').collect();
            p.len() == 3
                && matches!(p[0], "4" | "5")
                && p[1..]
                    .iter()
                    .all(|n| !n.is_empty() && n.len() <= 3 && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
        .unwrap_or_else(|| fallback.into())
}

/// The report about `entries` (all with one `action`) of the message `m`. LF line ends.
pub fn report(m: &Subject, action: Action, entries: &[Entry]) -> Vec<u8> {
    let host = clean(m.hostname);
    let now = SystemTime::now();
    let boundary = format!("{}/{host}", clean(m.id));
    let at = |secs: u64| rfc5322_date(UNIX_EPOCH + Duration::from_secs(secs));
    let full = action == Action::Failed
        && m.ret == Some(Ret::Full)
        && m.original.len() <= FULL_RETURN_LIMIT;
    let (subject, what) = match action {
        Action::Failed => (
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients.",
        ),
        Action::Delayed => (
            "Delayed Mail (still being retried)",
            "Your message could not be delivered yet to one or more recipients.\nIt will be tried again; you need not send it again.",
        ),
        Action::Delivered | Action::Relayed => (
            "Successful Mail Delivery Report",
            "Your message was delivered to the recipients below (as you asked, with NOTIFY=SUCCESS).",
        ),
    };
    let attached = if full {
        "It is attached below."
    } else {
        "It is attached below (its header section)."
    };
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\n"
    ));
    out.push_str(&format!("To: <{}>\n", clean(m.sender)));
    out.push_str(&format!("Subject: {subject}\n"));
    out.push_str(&format!("Date: {}\n", rfc5322_date(now)));
    out.push_str(&format!(
        "Message-ID: <{}.{}@{host}>\n",
        clean(m.id),
        action.name()
    ));
    out.push_str("Auto-Submitted: auto-replied\nMIME-Version: 1.0\n");
    out.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\n\tboundary=\"{boundary}\"\n\n"
    ));
    out.push_str("This is a MIME-encapsulated message.\n\n");
    out.push_str(&format!(
        "--{boundary}\nContent-Description: Notification\n"
    ));
    out.push_str("Content-Type: text/plain; charset=us-ascii\n\n");
    out.push_str(&format!(
        "This is the mail system at host {host}.\n\n{what}\n{attached}\n\n"
    ));
    for e in entries {
        match e.error {
            Some(err) => out.push_str(&format!("<{}>: {}\n", clean(e.address), clean(err))),
            None => out.push_str(&format!("<{}>: {}\n", clean(e.address), action.name())),
        }
    }
    out.push_str(&format!(
        "\n--{boundary}\nContent-Description: Delivery report\n"
    ));
    out.push_str("Content-Type: message/delivery-status\n\n");
    if let Some(envid) = m.envid {
        let shown = xtext_decode(envid).unwrap_or_else(|| envid.to_string());
        out.push_str(&format!("Original-Envelope-Id: {}\n", clean(&shown)));
    }
    out.push_str(&format!(
        "Reporting-MTA: dns; {host}\nX-Queue-ID: {}\n",
        clean(m.id)
    ));
    out.push_str(&format!("Arrival-Date: {}\n", at(m.created)));
    let fallback = match action {
        Action::Failed => "5.0.0",
        Action::Delayed => "4.0.0",
        Action::Delivered | Action::Relayed => "2.0.0",
    };
    for e in entries {
        out.push_str(&format!(
            "\nFinal-Recipient: rfc822; {}\n",
            clean(e.address)
        ));
        if let Some(o) = e.orcpt {
            out.push_str(&format!(
                "Original-Recipient: {}\n",
                clean(&orcpt_display(o))
            ));
        }
        let code = match e.error {
            Some(err) if matches!(action, Action::Failed | Action::Delayed) => {
                status(err, fallback)
            }
            _ => fallback.to_string(),
        };
        out.push_str(&format!("Action: {}\nStatus: {code}\n", action.name()));
        if let Some(mta) = e.remote_mta {
            let name = mta.rsplit_once(':').map(|(h, _)| h).unwrap_or(mta);
            out.push_str(&format!(
                "Remote-MTA: dns; {}\n",
                clean(name.trim_matches(['[', ']']))
            ));
        }
        if let Some(err) = e.error {
            let kind = if e.remote_mta.is_some() {
                "smtp"
            } else {
                "X-smtpd"
            };
            out.push_str(&format!("Diagnostic-Code: {kind}; {}\n", clean(err)));
        }
        out.push_str(&format!("Last-Attempt-Date: {}\n", rfc5322_date(now)));
        if let (Action::Delayed, Some(until)) = (action, m.retry_until) {
            out.push_str(&format!("Will-Retry-Until: {}\n", at(until)));
        }
    }
    let mut bytes = out.into_bytes();
    if full {
        bytes.extend_from_slice(
            format!("\n--{boundary}\nContent-Description: Undelivered Message\nContent-Type: message/rfc822\n\n").as_bytes(),
        );
        bytes.extend_from_slice(m.original);
    } else {
        let desc = match action {
            Action::Failed => "Undelivered Message Headers",
            Action::Delayed => "Delayed Message Headers",
            Action::Delivered | Action::Relayed => "Message Headers",
        };
        bytes.extend_from_slice(
            format!(
                "\n--{boundary}\nContent-Description: {desc}\nContent-Type: text/rfc822-headers\n\n"
            )
            .as_bytes(),
        );
        let end = header_end(m.original).unwrap_or(m.original.len());
        bytes.extend_from_slice(&m.original[..end]);
    }
    if !bytes.ends_with(b"\n") {
        bytes.push(b'\n');
    }
    bytes.extend_from_slice(format!("\n--{boundary}--\n").as_bytes());
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::MimeHeaders;

    #[test]
    fn status_codes() {
        assert_eq!(status("550 5.1.1 <x@y>: user unknown", "5.0.0"), "5.1.1");
        assert_eq!(
            status(
                "queue lifetime expired; last error: 451 4.3.0 later",
                "5.0.0"
            ),
            "4.3.0"
        );
        assert_eq!(status("no route to far.test", "5.0.0"), "5.0.0");
        assert_eq!(status("version 1.2.3 and 5.7.26", "5.0.0"), "5.7.26");
    }

    const ORIGINAL: &[u8] =
        b"Received: from x\nSubject: hello\nFrom: <a@example.test>\n\nsecret body\n";

    fn subject(ret: Option<Ret>) -> Subject<'static> {
        Subject {
            hostname: "mx.example.test",
            id: "ABC1",
            sender: "a@example.test",
            created: 1_700_000_000,
            envid: Some("QQ+2B1"),
            ret,
            retry_until: Some(1_700_432_000),
            original: ORIGINAL,
        }
    }

    fn parse(r: &[u8]) -> mail_parser::Message<'_> {
        let m = mail_parser::MessageParser::default().parse(r).unwrap();
        let ct = m.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        assert_eq!(m.parts.len(), 4, "the root and three parts");
        m
    }

    /// A valid multipart/report that mail-parser reads back: three parts, the per-recipient
    /// fields, the original headers without the body, and nothing from a hostile reply that
    /// could break the structure.
    #[test]
    fn a_valid_delivery_status_notification() {
        let failures = [
            Entry {
                address: "bob@far.test",
                orcpt: Some("rfc822;bob+2Btag@far.test"),
                error: Some("550 5.1.1 <bob@far.test>: user unknown\r\nInjected: yes"),
                remote_mta: Some("127.0.0.1:2626"),
            },
            Entry {
                address: "x@nowhere.test",
                orcpt: None,
                error: Some("no route to nowhere.test"),
                remote_mta: None,
            },
        ];
        let r = report(&subject(None), Action::Failed, &failures);
        let text = String::from_utf8(r.clone()).unwrap();
        assert!(!text.contains("secret body"), "{text}");
        assert!(!text.contains("\nInjected: yes"), "{text}");
        parse(&r);
        assert!(
            text.contains("Original-Envelope-Id: QQ+1\nReporting-MTA: dns; mx.example.test\n"),
            "{text}"
        );
        assert!(text.contains("Final-Recipient: rfc822; bob@far.test\nOriginal-Recipient: rfc822;bob+tag@far.test\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; 127.0.0.1\nDiagnostic-Code: smtp; 550 5.1.1"), "{text}");
        assert!(text.contains("Final-Recipient: rfc822; x@nowhere.test\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: X-smtpd; no route"), "{text}");
        assert!(
            text.contains(
                "Content-Type: text/rfc822-headers\n\nReceived: from x\nSubject: hello\n"
            ),
            "{text}"
        );
        assert!(text.starts_with(
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\nTo: <a@example.test>\nSubject: Undelivered Mail"
        ));
        assert!(!text.contains("Will-Retry-Until"), "{text}");
    }

    /// RET=FULL returns the whole message as a message/rfc822 part (failures only); delay
    /// warnings and success reports carry the headers, their own Action and Status.
    #[test]
    fn ret_full_delays_and_successes() {
        let e = |error| Entry {
            address: "bob@far.test",
            orcpt: None,
            error,
            remote_mta: None,
        };
        let full = report(
            &subject(Some(Ret::Full)),
            Action::Failed,
            &[e(Some("550 5.1.1 no"))],
        );
        let text = String::from_utf8(full.clone()).unwrap();
        assert!(
            text.contains("Content-Type: message/rfc822\n\nReceived: from x\n")
                && text.contains("secret body"),
            "{text}"
        );
        let m = parse(&full);
        assert_eq!(
            m.parts[3].message().map(|m| m.subject()),
            Some(Some("hello"))
        );

        let delayed = report(
            &subject(Some(Ret::Full)),
            Action::Delayed,
            &[e(Some("451 4.4.1 no answer"))],
        );
        let text = String::from_utf8(delayed.clone()).unwrap();
        parse(&delayed);
        assert!(!text.contains("secret body"), "{text}");
        assert!(
            text.contains("Subject: Delayed Mail (still being retried)\n"),
            "{text}"
        );
        assert!(text.contains("Action: delayed\nStatus: 4.4.1\n"), "{text}");
        assert!(text.contains("Will-Retry-Until: "), "{text}");

        for (action, name) in [
            (Action::Relayed, "relayed"),
            (Action::Delivered, "delivered"),
        ] {
            let ok = report(&subject(None), action, &[e(None)]);
            let text = String::from_utf8(ok.clone()).unwrap();
            parse(&ok);
            assert!(
                text.contains("Subject: Successful Mail Delivery Report\n"),
                "{text}"
            );
            assert!(
                text.contains(&format!("Action: {name}\nStatus: 2.0.0\n")),
                "{text}"
            );
            assert!(!text.contains("Diagnostic-Code"), "{text}");
        }
    }
}
