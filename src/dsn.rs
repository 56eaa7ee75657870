//! Delivery status notification requests (RFC 3461): what a client asks with `MAIL FROM ...
//! RET= ENVID=` and `RCPT TO ... NOTIFY= ORCPT=`, kept with each queued message and passed on
//! to a next hop that offers DSN. Pure data and the xtext encoding; a leaf like [`crate::wire`].

use serde::{Deserialize, Serialize};

/// `RET=`: what a report returns of the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Ret {
    /// The whole message.
    Full,
    /// Its header section only.
    Hdrs,
}

impl Ret {
    pub fn parse(v: &str) -> Option<Ret> {
        match v.to_ascii_uppercase().as_str() {
            "FULL" => Some(Ret::Full),
            "HDRS" => Some(Ret::Hdrs),
            _ => None,
        }
    }

    pub fn keyword(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

/// `NOTIFY=`: which outcomes are reported to the sender. `NEVER` is all three false.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notify {
    pub success: bool,
    pub failure: bool,
    pub delay: bool,
}

impl Notify {
    /// What applies when the client said nothing (RFC 3461 §4.1: failures, and delays at the
    /// server's discretion, as Postfix does).
    pub const DEFAULT: Notify = Notify {
        success: false,
        failure: true,
        delay: true,
    };

    /// `NEVER`, or a comma list of `SUCCESS`, `FAILURE`, `DELAY` (each at most once).
    pub fn parse(v: &str) -> Option<Notify> {
        if v.eq_ignore_ascii_case("NEVER") {
            return Some(Notify {
                success: false,
                failure: false,
                delay: false,
            });
        }
        let mut n = Notify {
            success: false,
            failure: false,
            delay: false,
        };
        for word in v.split(',') {
            let slot = match word.to_ascii_uppercase().as_str() {
                "SUCCESS" => &mut n.success,
                "FAILURE" => &mut n.failure,
                "DELAY" => &mut n.delay,
                _ => return None,
            };
            if *slot {
                return None;
            }
            *slot = true;
        }
        Some(n)
    }

    /// The parameter's value as sent on.
    pub fn keyword(self) -> String {
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect();
        if words.is_empty() {
            "NEVER".into()
        } else {
            words.join(",")
        }
    }
}

/// The longest `ENVID=` (RFC 3461 §4.4: 100 characters).
pub const MAX_ENVID: usize = 100;
/// The longest `ORCPT=` accepted (an address of 256 octets, xtext-encoded at most thrice that).
pub const MAX_ORCPT: usize = 500;

/// RFC 3461 §4 xtext: printable ASCII but `+` and `=`, and `+XX` (upper-case hex) for others.
pub fn is_xtext(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                let hex = |c: u8| c.is_ascii_digit() || (b'A'..=b'F').contains(&c);
                match (b.get(i + 1), b.get(i + 2)) {
                    (Some(&h), Some(&l)) if hex(h) && hex(l) => i += 3,
                    _ => return false,
                }
            }
            b'!'..=b'~' if b[i] != b'=' => i += 1,
            _ => return false,
        }
    }
    true
}

/// Decodes xtext (`+XX` escapes); `None` when it is not valid xtext or not UTF-8.
pub fn xtext_decode(s: &str) -> Option<String> {
    if !is_xtext(s) {
        return None;
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'+' {
            let v = u8::from_str_radix(s.get(i + 1..i + 3)?, 16).ok()?;
            out.push(v);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Encodes `s` as xtext (non-ASCII octets escaped too).
pub fn xtext_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

/// `ORCPT=addr-type;xtext` (RFC 3461 §4.2; `utf-8` type of RFC 6533 allowed with UTF-8 text):
/// validated and kept as given, to be passed on. `None` when malformed.
pub fn parse_orcpt(v: &str) -> Option<String> {
    if v.len() > MAX_ORCPT {
        return None;
    }
    let (kind, addr) = v.split_once(';')?;
    let atom = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    if !atom(kind) || addr.is_empty() {
        return None;
    }
    let ok = if kind.eq_ignore_ascii_case("utf-8") {
        addr.chars()
            .all(|c| !c.is_control() && c != ' ' && c != '=')
    } else {
        is_xtext(addr)
    };
    ok.then(|| v.to_string())
}

/// The `Original-Recipient:` value of a report for an `ORCPT=` kept as given: the address
/// decoded, the type kept.
pub fn orcpt_display(v: &str) -> String {
    match v.split_once(';') {
        Some((kind, addr)) if !kind.eq_ignore_ascii_case("utf-8") => {
            format!(
                "{kind};{}",
                xtext_decode(addr).unwrap_or_else(|| addr.into())
            )
        }
        _ => v.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_values() {
        let n = Notify::parse("success,Delay").unwrap();
        assert!(n.success && n.delay && !n.failure);
        assert_eq!(n.keyword(), "SUCCESS,DELAY");
        assert_eq!(Notify::parse("NEVER").unwrap().keyword(), "NEVER");
        for bad in [
            "",
            "NEVER,SUCCESS",
            "SUCCESS,SUCCESS",
            "sometimes",
            "SUCCESS,",
        ] {
            assert_eq!(Notify::parse(bad), None, "{bad}");
        }
        assert_eq!(Notify::DEFAULT.keyword(), "FAILURE,DELAY");
    }

    #[test]
    fn xtext_round_trip() {
        assert!(is_xtext("bob@far.test"));
        assert!(is_xtext("a+2Bb+3Dc"));
        for bad in ["a=b", "a+2", "a+", "a+zz", "a+2b", "a b", "é"] {
            assert!(!is_xtext(bad), "{bad}");
        }
        assert_eq!(xtext_decode("a+2Bb+3Dc").as_deref(), Some("a+b=c"));
        assert_eq!(xtext_encode("a+b=c d"), "a+2Bb+3Dc+20d");
        assert_eq!(
            xtext_decode(&xtext_encode("jörg+x@x.test")).as_deref(),
            Some("jörg+x@x.test")
        );
    }

    #[test]
    fn orcpt() {
        assert_eq!(
            parse_orcpt("rfc822;bob+2Btag@far.test").as_deref(),
            Some("rfc822;bob+2Btag@far.test")
        );
        assert_eq!(
            orcpt_display("rfc822;bob+2Btag@far.test"),
            "rfc822;bob+tag@far.test"
        );
        assert!(parse_orcpt("utf-8;jörg@x.test").is_some());
        for bad in ["bob@far.test", ";bob", "rfc822;", "rfc 822;b", "rfc822;a=b"] {
            assert_eq!(parse_orcpt(bad), None, "{bad}");
        }
        assert_eq!(parse_orcpt(&format!("rfc822;{}", "a".repeat(600))), None);
    }
}
