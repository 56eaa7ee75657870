//! The bounce of recipients that failed for good: an RFC 3464 delivery status notification
//! (`multipart/report; report-type=delivery-status`) from `<>` to the envelope sender, with a
//! text part, one `message/delivery-status` block per recipient (Final-Recipient, Action,
//! Status, Remote-MTA, Diagnostic-Code) and the original header section.
//!
//! The format is fixed and small, so it is written from a template here rather than through a
//! MIME builder; every value from the message or a peer goes through [`clean`] first, so none
//! can break the structure.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::mailbox::headers::{header_end, rfc5322_date};

/// One recipient that failed.
pub struct Failure<'a> {
    pub address: &'a str,
    /// What the next hop said (a reply), or why we gave up.
    pub error: &'a str,
    /// The next hop that answered, if one did.
    pub remote_mta: Option<&'a str>,
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

/// The RFC 3463 code in `error` (the first `d.d.d` whose class is 4 or 5), else 5.0.0.
fn status(error: &str) -> String {
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
        .unwrap_or_else(|| "5.0.0".into())
}

/// The report for `failures` of the message `id` (queued at `created`, from `sender`), whose
/// text is `original` (LF line ends, as queued). LF line ends.
pub fn report(
    hostname: &str,
    id: &str,
    sender: &str,
    created: u64,
    failures: &[Failure],
    original: &[u8],
) -> Vec<u8> {
    let host = clean(hostname);
    let now = SystemTime::now();
    let boundary = format!("{}/{host}", clean(id));
    let arrival = rfc5322_date(UNIX_EPOCH + Duration::from_secs(created));
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{host}>\n"
    ));
    out.push_str(&format!("To: <{}>\n", clean(sender)));
    out.push_str("Subject: Undelivered Mail Returned to Sender\n");
    out.push_str(&format!("Date: {}\n", rfc5322_date(now)));
    out.push_str(&format!("Message-ID: <{}.bounce@{host}>\n", clean(id)));
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
        "This is the mail system at host {host}.\n\nYour message could not be delivered to one or more recipients.\nIt is attached below (its header section).\n\n"
    ));
    for f in failures {
        out.push_str(&format!("<{}>: {}\n", clean(f.address), clean(f.error)));
    }
    out.push_str(&format!(
        "\n--{boundary}\nContent-Description: Delivery report\n"
    ));
    out.push_str("Content-Type: message/delivery-status\n\n");
    out.push_str(&format!(
        "Reporting-MTA: dns; {host}\nX-Queue-ID: {}\n",
        clean(id)
    ));
    out.push_str(&format!("Arrival-Date: {arrival}\n"));
    for f in failures {
        out.push_str(&format!(
            "\nFinal-Recipient: rfc822; {}\nAction: failed\nStatus: {}\n",
            clean(f.address),
            status(f.error)
        ));
        if let Some(mta) = f.remote_mta {
            let name = mta.rsplit_once(':').map(|(h, _)| h).unwrap_or(mta);
            out.push_str(&format!(
                "Remote-MTA: dns; {}\n",
                clean(name.trim_matches(['[', ']']))
            ));
        }
        let kind = if f.remote_mta.is_some() {
            "smtp"
        } else {
            "X-smtpd"
        };
        out.push_str(&format!("Diagnostic-Code: {kind}; {}\n", clean(f.error)));
        out.push_str(&format!("Last-Attempt-Date: {}\n", rfc5322_date(now)));
    }
    out.push_str(&format!(
        "\n--{boundary}\nContent-Description: Undelivered Message Headers\n"
    ));
    out.push_str("Content-Type: text/rfc822-headers\n\n");
    let mut bytes = out.into_bytes();
    let end = header_end(original).unwrap_or(original.len());
    bytes.extend_from_slice(&original[..end]);
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
        assert_eq!(status("550 5.1.1 <x@y>: user unknown"), "5.1.1");
        assert_eq!(
            status("queue lifetime expired; last error: 451 4.3.0 later"),
            "4.3.0"
        );
        assert_eq!(status("no route to far.test"), "5.0.0");
        assert_eq!(status("version 1.2.3 and 5.7.26"), "5.7.26");
    }

    /// A valid multipart/report that mail-parser reads back: three parts, the per-recipient
    /// fields, the original headers without the body, and nothing from a hostile reply that
    /// could break the structure.
    #[test]
    fn a_valid_delivery_status_notification() {
        let original = b"Received: from x\nSubject: hello\nFrom: <a@example.test>\n\nsecret body\n";
        let failures = [
            Failure {
                address: "bob@far.test",
                error: "550 5.1.1 <bob@far.test>: user unknown\r\nInjected: yes",
                remote_mta: Some("127.0.0.1:2626"),
            },
            Failure {
                address: "x@nowhere.test",
                error: "no route to nowhere.test",
                remote_mta: None,
            },
        ];
        let r = report(
            "mx.example.test",
            "ABC1",
            "a@example.test",
            1_700_000_000,
            &failures,
            original,
        );
        let text = String::from_utf8(r.clone()).unwrap();
        assert!(!text.contains("secret body"), "{text}");
        assert!(!text.contains("\nInjected: yes"), "{text}");
        let m = mail_parser::MessageParser::default().parse(&r).unwrap();
        let ct = m.content_type().unwrap();
        assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("report")));
        assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
        assert_eq!(m.parts.len(), 4, "the root and three parts");
        assert!(text.contains("Final-Recipient: rfc822; bob@far.test\nAction: failed\nStatus: 5.1.1\nRemote-MTA: dns; 127.0.0.1\nDiagnostic-Code: smtp; 550 5.1.1"), "{text}");
        assert!(text.contains("Final-Recipient: rfc822; x@nowhere.test\nAction: failed\nStatus: 5.0.0\nDiagnostic-Code: X-smtpd; no route"), "{text}");
        assert!(
            text.contains(
                "Content-Type: text/rfc822-headers\n\nReceived: from x\nSubject: hello\n"
            ),
            "{text}"
        );
        assert!(text.starts_with(
            "From: Mail Delivery System <MAILER-DAEMON@mx.example.test>\nTo: <a@example.test>\n"
        ));
    }
}
