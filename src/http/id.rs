//! Message ids and list cursors: opaque to clients, safe in a URL path and query, and checked on
//! the way in so that no id names a file outside the mailbox root.
//!
//! An id is `<local>@<domain>~<unique>`: the Maildir's local part and domain, and the file's
//! unique name (before any `:2,` info, so it does not change when POP3 moves the file to cur/).
//! Each part keeps letters, digits and `-._,=`; any other octet is written `$XX` (hex), so
//! `a+b@example.test~1.M2P3Q4.host,S=5` is `a$2Bb@example.test~1.M2P3Q4.host,S=5`.

use std::fmt::Write as _;

use crate::mailbox::browse::is_safe_name;
use crate::proto::smtp::address::{is_domain, is_safe_local};

/// Longer ids are refused before they are decoded (a Maildir name is at most 255 octets).
pub const MAX_ID: usize = 1024;

/// A message named by its Maildir and unique name, each part checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageId {
    pub domain: String,
    pub local: String,
    pub unique: String,
}

fn literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b',' | b'=')
}

fn escape(part: &str, out: &mut String) {
    for &b in part.as_bytes() {
        if literal(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "${b:02X}");
        }
    }
}

fn unescape(part: &str) -> Option<String> {
    let b = part.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' {
            let hex = part.get(i + 1..i + 3)?;
            let v = u8::from_str_radix(hex, 16).ok()?;
            // One spelling per id: an octet that may stand as itself is never escaped.
            if literal(v)
                || !hex
                    .bytes()
                    .all(|h| h.is_ascii_digit() || h.is_ascii_uppercase())
            {
                return None;
            }
            out.push(v);
            i += 3;
        } else if literal(b[i]) {
            out.push(b[i]);
            i += 1;
        } else {
            return None;
        }
    }
    String::from_utf8(out).ok()
}

impl MessageId {
    /// The parts of a stored message, if each is one an id may name.
    pub fn new(domain: &str, local: &str, unique: &str) -> Option<MessageId> {
        let ok = is_domain(domain)
            && is_safe_name(domain)
            && is_safe_local(local)
            && is_safe_name(local)
            && is_safe_name(unique)
            && unique.len() <= 255
            && !unique.contains(':');
        ok.then(|| MessageId {
            domain: domain.to_string(),
            local: local.to_string(),
            unique: unique.to_string(),
        })
    }

    /// Reads an id; `None` for anything that is not exactly what [`MessageId::encode`] writes
    /// for a safe message.
    pub fn parse(id: &str) -> Option<MessageId> {
        if id.len() > MAX_ID {
            return None;
        }
        let (mailbox, unique) = id.split_once('~')?;
        let (local, domain) = mailbox.split_once('@')?;
        MessageId::new(&unescape(domain)?, &unescape(local)?, &unescape(unique)?)
    }

    pub fn encode(&self) -> String {
        let mut out =
            String::with_capacity(self.local.len() + self.domain.len() + self.unique.len() + 2);
        escape(&self.local, &mut out);
        out.push('@');
        escape(&self.domain, &mut out);
        out.push('~');
        escape(&self.unique, &mut out);
        out
    }

    /// `local@domain`.
    pub fn mailbox(&self) -> String {
        format!("{}@{}", self.local, self.domain)
    }
}

/// Where a page of the list ends: the last message's delivery time and id (the list is ordered
/// by both). Written `<microseconds>.<id>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub delivered_us: u64,
    pub id: String,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.delivered_us, self.id)
    }

    pub fn parse(s: &str) -> Option<Cursor> {
        let (us, id) = s.split_once('.')?;
        if us.is_empty() || !us.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        MessageId::parse(id)?;
        Some(Cursor {
            delivered_us: us.parse().ok()?,
            id: id.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let unique = "1795696292.M686837P24171Q8.mail.example.test,S=508,W=519";
        let id = MessageId::new("example.test", "alice", unique).unwrap();
        let text = id.encode();
        assert_eq!(text, format!("alice@example.test~{unique}"));
        assert_eq!(MessageId::parse(&text), Some(id.clone()));
        assert_eq!(id.mailbox(), "alice@example.test");
        // Octets outside the literal set, non-ASCII too, are escaped and come back.
        let odd = MessageId::new("exämple.test", "a+b~c@d$e", "1.x y").unwrap();
        let text = odd.encode();
        assert_eq!(text, "a$2Bb$7Ec$40d$24e@ex$C3$A4mple.test~1.x$20y");
        assert!(
            text.bytes()
                .all(|b| b.is_ascii_graphic() && !b"/?#%&+:\\".contains(&b))
        );
        assert_eq!(MessageId::parse(&text), Some(odd));
    }

    /// No id names a path outside the root, or a second spelling of a message.
    #[test]
    fn bad_ids() {
        let long = format!("a@example.test~{}", "x".repeat(MAX_ID));
        for bad in [
            "",
            "x~y",
            "x",
            "a@example.test",
            "a@example.test~",
            "..@example.test~1.x",
            "a@..~1.x",
            "a@example.test~..",
            "a@example.test~.hidden",
            "a@example.test~../../etc/passwd",
            "..%2F..%2Fetc%2Fpasswd",
            "../../etc/passwd",
            "a@example.test~x$2Fy",
            "a@example.test~x$2fy",
            "$2E$2E@example.test~1.x",
            "a@example.test~1.x:2,S",
            "a@example.test~1.x$3A2,S",
            "a@example.test~x$00y",
            "a@b@example.test~1.x",
            "a@example.test~1.x~y",
            "a@example.test~$6",
            "a@example.test~$41",
            "a@ex_ample.test~1.x",
            "a/b@example.test~1.x",
            &long,
        ] {
            assert_eq!(MessageId::parse(bad), None, "{bad:?}");
        }
        assert!(MessageId::new("example.test", "a", &"x".repeat(256)).is_none());
        assert!(MessageId::new("example.test", "..", "1.x").is_none());
    }

    #[test]
    fn cursors() {
        let c = Cursor {
            delivered_us: 1_795_696_292_686_837,
            id: "alice@example.test~1.M2P3Q4.h".into(),
        };
        assert_eq!(c.encode(), "1795696292686837.alice@example.test~1.M2P3Q4.h");
        assert_eq!(Cursor::parse(&c.encode()), Some(c));
        for bad in [
            "",
            ".",
            "12",
            "x.alice@example.test~1",
            "12.x~y",
            "-1.a@example.test~1.x",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
