//! What the API says about a message in a list or a wait: the summary read from its header
//! section (then completed from the body by [`super::detail::complete`]), and the filters.
//! Parsing is mail-parser's; nothing here touches files.

use mail_parser::{Address, Message, MessageParser, PartType};
use serde::Serialize;

use super::id::MessageId;
use super::query::Filter;
use crate::mailbox::browse::Stored;

/// The header section is read up to this many octets (the rest of a huge header is not listed).
pub const HEAD_BYTES: usize = 64 * 1024;

/// One message in a list or a wait's answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub id: String,
    /// `local@domain` of the Maildir.
    pub mailbox: String,
    /// The IMAP name of the folder: the Maildir's own new/ and cur/ are INBOX.
    pub folder: &'static str,
    /// The first From address (or, without one, the Return-Path).
    pub from: Option<String>,
    /// The To and Cc addresses.
    pub to: Vec<String>,
    pub subject: Option<String>,
    /// The Date header, as RFC 3339.
    pub date: Option<String>,
    /// When it was delivered (the Maildir name, else the file's time), as RFC 3339 UTC.
    pub delivered: String,
    /// Stored octets (what `/raw` sends).
    pub size: u64,
    /// Maildir flags by name (`seen`, `answered`, `flagged`, `deleted`, `draft`, `forwarded`).
    pub flags: Vec<&'static str>,
    /// Lower-cased From names, for the `from` filter (not serialised).
    #[serde(skip)]
    pub from_names: Vec<String>,
    #[serde(skip)]
    pub delivered_us: u64,
    /// Parts that are attachments (see [`super::detail`]).
    pub attachments: usize,
    /// The start of the text (or of the HTML as text), whitespace collapsed.
    pub snippet: String,
}

fn flag_names(letters: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    for (letter, name) in [
        ('D', "draft"),
        ('F', "flagged"),
        ('P', "forwarded"),
        ('R', "answered"),
        ('S', "seen"),
        ('T', "deleted"),
    ] {
        if letters.contains(letter) {
            out.push(name);
        }
    }
    out
}

/// RFC 3339 UTC with microseconds.
pub fn rfc3339_us(us: u64) -> String {
    let secs = (us / 1_000_000) as i64;
    let d = mail_parser::DateTime::from_timestamp(secs);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        d.year,
        d.month,
        d.day,
        d.hour,
        d.minute,
        d.second,
        us % 1_000_000
    )
}

fn addresses<'a, 'x>(
    a: Option<&'a Address<'x>>,
) -> impl Iterator<Item = &'a mail_parser::Addr<'x>> + 'a {
    a.into_iter().flat_map(|a| a.iter())
}

pub fn summary_of(id: &MessageId, s: &Stored, m: Option<&Message>) -> Summary {
    let from_addr = m.and_then(|m| addresses(m.from()).find_map(|a| a.address()));
    let return_path = m.and_then(|m| {
        m.return_path()
            .as_text()
            .map(|t| t.trim_matches(['<', '>', ' ']).to_string())
            .filter(|t| !t.is_empty())
    });
    Summary {
        id: id.encode(),
        mailbox: id.mailbox(),
        folder: "INBOX",
        from: from_addr.map(str::to_string).or(return_path),
        to: m
            .map(|m| {
                addresses(m.to())
                    .chain(addresses(m.cc()))
                    .filter_map(|a| a.address())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        subject: m.and_then(|m| m.subject()).map(str::to_string),
        date: m
            .and_then(|m| m.date())
            .filter(|d| d.is_valid())
            .map(|d| d.to_rfc3339()),
        delivered: rfc3339_us(s.delivered_us),
        size: s.size,
        flags: flag_names(&s.flags),
        from_names: m
            .map(|m| {
                addresses(m.from())
                    .filter_map(|a| a.name())
                    .map(str::to_lowercase)
                    .collect()
            })
            .unwrap_or_default(),
        delivered_us: s.delivered_us,
        attachments: 0,
        snippet: String::new(),
    }
}

/// The summary of a stored message from its header section; `None` when the message's names
/// cannot make an id (it is not listed).
pub fn summarize(s: &Stored, head: &[u8]) -> Option<Summary> {
    let id = MessageId::new(&s.domain, &s.local, &s.unique)?;
    let parsed = MessageParser::default().parse_headers(head);
    Some(summary_of(&id, s, parsed.as_ref()))
}

/// Whether the header conditions of `f` hold (the Maildir and `since` are the scan's part; the
/// `contains` condition is [`contains`]).
pub fn matches(f: &Filter, s: &Summary) -> bool {
    let has = |hay: &str, needle: &str| hay.to_lowercase().contains(needle);
    let to_ok =
        f.to.as_deref()
            .is_none_or(|t| has(&s.mailbox, t) || s.to.iter().any(|a| has(a, t)));
    let from_ok = f.from.as_deref().is_none_or(|w| {
        s.from.as_deref().is_some_and(|a| has(a, w)) || s.from_names.iter().any(|n| n.contains(w))
    });
    let subject_ok = f
        .subject
        .as_deref()
        .is_none_or(|w| s.subject.as_deref().is_some_and(|x| has(x, w)));
    to_ok && from_ok && subject_ok
}

/// Whether `needle` (lower-cased) is in the subject or in a text or HTML part of `m`.
pub fn contains(m: &Message, needle: &str) -> bool {
    if m.subject()
        .is_some_and(|s| s.to_lowercase().contains(needle))
    {
        return true;
    }
    m.parts.iter().any(|p| match &p.body {
        PartType::Text(t) | PartType::Html(t) => t.to_lowercase().contains(needle),
        _ => false,
    })
}

#[cfg(test)]
pub mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::mailbox::browse::Folder;

    pub fn stored(flags: &str) -> Stored {
        Stored {
            domain: "example.test".into(),
            local: "bob".into(),
            folder: Folder::Cur,
            unique: "1795696293.M5P1Q1.h,S=10".into(),
            flags: flags.into(),
            path: PathBuf::from("/nonexistent"),
            delivered_us: 1_795_696_293_000_005,
            size: 10,
        }
    }

    pub const MSG: &[u8] = b"Return-Path: <env@b.test>\nFrom: \"Alice Doe\" <alice@b.test>\nTo: Bob <bob@example.test>, carol@example.test\nCc: dave@example.test\nSubject: =?utf-8?q?Caf=C3=A9?= code\nDate: Thu, 26 Nov 2026 12:31:33 +0100\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: multipart/alternative; boundary=c\n\n--c\nContent-Type: text/plain\n\nYour code is 123456\n--c\nContent-Type: text/html\n\n<p>Your code is <b>123456</b></p>\n--c--\n--b\nContent-Type: application/pdf; name=r.pdf\nContent-Disposition: attachment; filename=r.pdf\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--b--\n";

    #[test]
    fn summary_from_headers() {
        let head = &MSG[..MSG.windows(2).position(|w| w == b"\n\n").unwrap() + 2];
        let s = summarize(&stored("RS"), head).unwrap();
        assert_eq!(s.id, "bob@example.test~1795696293.M5P1Q1.h,S=10");
        assert_eq!(s.mailbox, "bob@example.test");
        assert_eq!(s.from.as_deref(), Some("alice@b.test"));
        assert_eq!(
            s.to,
            [
                "bob@example.test",
                "carol@example.test",
                "dave@example.test"
            ]
        );
        assert_eq!(s.subject.as_deref(), Some("Café code"));
        assert_eq!(s.date.as_deref(), Some("2026-11-26T12:31:33+01:00"));
        assert_eq!(s.delivered, "2026-11-26T12:31:33.000005Z");
        assert_eq!(s.flags, ["answered", "seen"]);
        let json = serde_json::to_value(&s).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "attachments",
                "date",
                "delivered",
                "flags",
                "folder",
                "from",
                "id",
                "mailbox",
                "size",
                "snippet",
                "subject",
                "to"
            ]
        );
        // No From: the Return-Path; nothing parseable: the file's own facts.
        let s = summarize(&stored(""), b"Return-Path: <env@b.test>\n\n").unwrap();
        assert_eq!(s.from.as_deref(), Some("env@b.test"));
        let s = summarize(&stored(""), b"\x00\xff garbage").unwrap();
        assert_eq!((s.subject, s.to.len(), s.size), (None, 0, 10));
        let mut bad = stored("");
        bad.local = "..".into();
        assert!(summarize(&bad, b"").is_none());
    }

    #[test]
    fn filters() {
        let s = summarize(&stored(""), MSG).unwrap();
        let f = |to: Option<&str>, from: Option<&str>, subject: Option<&str>| Filter {
            to: to.map(Into::into),
            from: from.map(Into::into),
            subject: subject.map(Into::into),
            ..Filter::default()
        };
        for (filter, want) in [
            (f(None, None, None), true),
            (f(Some("bob@example.test"), None, None), true),
            (f(Some("carol"), None, None), true),
            (f(Some("dave@"), None, None), true),
            (f(Some("erin"), None, None), false),
            (f(None, Some("alice@b.test"), None), true),
            (f(None, Some("alice doe"), None), true),
            (f(None, Some("mallory"), None), false),
            (f(None, None, Some("café")), true),
            (f(None, None, Some("invoice")), false),
            (f(Some("bob"), Some("alice"), Some("code")), true),
            (f(Some("bob"), Some("alice"), Some("nope")), false),
        ] {
            assert_eq!(matches(&filter, &s), want, "{filter:?}");
        }
        let m = MessageParser::default().parse(MSG).unwrap();
        assert!(contains(&m, "123456"));
        assert!(contains(&m, "café"));
        assert!(!contains(&m, "654321"));
    }
}
