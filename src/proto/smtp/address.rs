//! Paths and mailboxes (RFC 5321 §4.1.2, RFC 6531 for UTF-8), their length limits (§4.5.3.1),
//! and whether a local part is safe to use as a directory name.

use thiserror::Error;

/// RFC 5321 §4.5.3.1.1: local part, 64 octets.
pub const MAX_LOCAL: usize = 64;
/// RFC 5321 §4.5.3.1.2: domain, 255 octets.
pub const MAX_DOMAIN: usize = 255;
/// RFC 5321 §4.5.3.1.3: path including the angle brackets, 256 octets.
pub const MAX_PATH: usize = 256;

/// `local@domain`, with the local part unquoted (its quoted-string escapes removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    pub local: String,
    pub domain: String,
}

impl Mailbox {
    /// Canonical text: the local part re-quoted when it needs quoting.
    pub fn to_address(&self) -> String {
        if is_dot_string(&self.local) {
            format!("{}@{}", self.local, self.domain)
        } else {
            let mut q = String::from("\"");
            for c in self.local.chars() {
                if c == '"' || c == '\\' {
                    q.push('\\');
                }
                q.push(c);
            }
            q.push('"');
            format!("{q}@{}", self.domain)
        }
    }

    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }
}

/// A reverse-path or forward-path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Path {
    /// `<>`: the null reverse-path (bounces).
    Null,
    /// `<Postmaster>` without a domain (RCPT only; RFC 5321 §4.5.1).
    Postmaster,
    Mailbox(Mailbox),
}

#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum AddressError {
    #[error("bad address syntax")]
    Syntax,
    #[error("local part longer than 64 octets")]
    LocalTooLong,
    #[error("domain longer than 255 octets")]
    DomainTooLong,
    #[error("path longer than 256 octets")]
    PathTooLong,
}

/// Parses the path at the start of `s` (after `FROM:` or `TO:`), returning it and the rest of the
/// line (the parameters). Accepts the common leniencies: a space before `<`, a source route
/// (ignored), and a bare address without angle brackets.
pub fn parse_path(s: &str) -> Result<(Path, &str), AddressError> {
    let s = s.trim_start_matches(' ');
    let (inner, rest, path_len) = if let Some(body) = s.strip_prefix('<') {
        let end = find_close(body).ok_or(AddressError::Syntax)?;
        (&body[..end], &body[end + 1..], end + 2)
    } else {
        let end = s.find(' ').unwrap_or(s.len());
        (&s[..end], &s[end..], end + 2)
    };
    if !rest.is_empty() && !rest.starts_with(' ') {
        return Err(AddressError::Syntax);
    }
    if path_len > MAX_PATH {
        return Err(AddressError::PathTooLong);
    }
    let inner = strip_source_route(inner)?;
    if inner.is_empty() {
        return Ok((Path::Null, rest));
    }
    if inner.eq_ignore_ascii_case("postmaster") {
        return Ok((Path::Postmaster, rest));
    }
    Ok((Path::Mailbox(parse_mailbox(inner)?), rest))
}

/// Index of the `>` closing the path, skipping quoted strings.
fn find_close(s: &str) -> Option<usize> {
    let mut in_quote = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
        } else if in_quote && c == '\\' {
            escaped = true;
        } else if c == '"' {
            in_quote = !in_quote;
        } else if c == '>' && !in_quote {
            return Some(i);
        }
    }
    None
}

/// `@a.example,@b.example:user@c.example` → `user@c.example` (RFC 5321 §4.1.2 A-d-l, obsolete).
fn strip_source_route(s: &str) -> Result<&str, AddressError> {
    if !s.starts_with('@') {
        return Ok(s);
    }
    let colon = s.find(':').ok_or(AddressError::Syntax)?;
    for hop in s[..colon].split(',') {
        let d = hop.strip_prefix('@').ok_or(AddressError::Syntax)?;
        if !is_domain(d) {
            return Err(AddressError::Syntax);
        }
    }
    Ok(&s[colon + 1..])
}

/// Parses `local@domain`.
pub fn parse_mailbox(s: &str) -> Result<Mailbox, AddressError> {
    let (local, domain) = if let Some(q) = s.strip_prefix('"') {
        let mut local = String::new();
        let mut chars = q.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, e)) if (' '..='~').contains(&e) => local.push(e),
                    _ => return Err(AddressError::Syntax),
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                c if (c as u32) < 0x20 || c == '\x7f' => return Err(AddressError::Syntax),
                c => local.push(c),
            }
        }
        let end = end.ok_or(AddressError::Syntax)?;
        let after = &q[end + 1..];
        let domain = after.strip_prefix('@').ok_or(AddressError::Syntax)?;
        (local, domain)
    } else {
        let at = s.rfind('@').ok_or(AddressError::Syntax)?;
        let local = &s[..at];
        if !is_dot_string(local) {
            return Err(AddressError::Syntax);
        }
        (local.to_string(), &s[at + 1..])
    };
    if local.len() > MAX_LOCAL {
        return Err(AddressError::LocalTooLong);
    }
    if domain.len() > MAX_DOMAIN {
        return Err(AddressError::DomainTooLong);
    }
    if !is_domain(domain) && !is_address_literal(domain) {
        return Err(AddressError::Syntax);
    }
    Ok(Mailbox {
        local,
        domain: domain.to_string(),
    })
}

/// RFC 5321 atext (plus UTF-8 per RFC 6531).
fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

/// Dot-string: atoms of atext separated by single dots.
pub fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// A domain name: labels of letters, digits and hyphens (or UTF-8 U-labels), no empty label.
pub fn is_domain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_DOMAIN
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || !c.is_ascii())
        })
}

/// `[192.0.2.1]`, `[IPv6:...]` or a general literal of printable ASCII without brackets/backslash.
pub fn is_address_literal(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) else {
        return false;
    };
    if let Some(v6) = inner
        .strip_prefix("IPv6:")
        .or_else(|| inner.strip_prefix("IPV6:"))
        .or_else(|| inner.strip_prefix("ipv6:"))
    {
        return v6.parse::<core::net::Ipv6Addr>().is_ok();
    }
    if inner.parse::<core::net::Ipv4Addr>().is_ok() {
        return true;
    }
    // General-address-literal: Standardized-tag ":" 1*dcontent.
    match inner.split_once(':') {
        Some((tag, content)) => {
            is_domain(tag)
                && !content.is_empty()
                && content
                    .chars()
                    .all(|c| ('!'..='~').contains(&c) && c != '[' && c != ']' && c != '\\')
        }
        None => false,
    }
}

/// Whether a local part may name a directory under the mailbox root: no `/`, `\`, NUL or other
/// control character, no leading dot, no `..`, not empty.
pub fn is_safe_local(local: &str) -> bool {
    !local.is_empty()
        && !local.starts_with('.')
        && !local.contains("..")
        && !local
            .chars()
            .any(|c| c == '/' || c == '\\' || (c as u32) < 0x20 || c == '\x7f')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mbox(local: &str, domain: &str) -> Path {
        Path::Mailbox(Mailbox {
            local: local.into(),
            domain: domain.into(),
        })
    }

    #[test]
    fn paths() {
        type Row = (&'static str, Result<(Path, &'static str), AddressError>);
        let table: &[Row] = &[
            ("<a@b.test>", Ok((mbox("a", "b.test"), ""))),
            (" <a@b.test>", Ok((mbox("a", "b.test"), ""))),
            ("<a@b.test> SIZE=10", Ok((mbox("a", "b.test"), " SIZE=10"))),
            ("a@b.test SIZE=10", Ok((mbox("a", "b.test"), " SIZE=10"))),
            ("<>", Ok((Path::Null, ""))),
            ("<Postmaster>", Ok((Path::Postmaster, ""))),
            ("<@x.test,@y.test:a@b.test>", Ok((mbox("a", "b.test"), ""))),
            ("<\"a b\"@b.test>", Ok((mbox("a b", "b.test"), ""))),
            ("<\"a\\\"b>\"@b.test>", Ok((mbox("a\"b>", "b.test"), ""))),
            ("<a@[127.0.0.1]>", Ok((mbox("a", "[127.0.0.1]"), ""))),
            ("<a@[IPv6:::1]>", Ok((mbox("a", "[IPv6:::1]"), ""))),
            ("<jörg@bücher.test>", Ok((mbox("jörg", "bücher.test"), ""))),
            ("<a@b.test", Err(AddressError::Syntax)),
            ("<a@b.test>x", Err(AddressError::Syntax)),
            ("<ab.test>", Err(AddressError::Syntax)),
            ("<a@>", Err(AddressError::Syntax)),
            ("<@b.test>", Err(AddressError::Syntax)),
            ("<a..b@b.test>", Err(AddressError::Syntax)),
            ("<.a@b.test>", Err(AddressError::Syntax)),
            ("<a@b..test>", Err(AddressError::Syntax)),
            ("<a@-b.test>", Err(AddressError::Syntax)),
            ("<a b@b.test>", Err(AddressError::Syntax)),
            ("<a@[300.1.1.1]>", Err(AddressError::Syntax)),
        ];
        for (input, want) in table {
            assert_eq!(&parse_path(input), want, "input {input:?}");
        }
    }

    #[test]
    fn length_limits() {
        let local65 = "a".repeat(65);
        assert_eq!(
            parse_path(&format!("<{local65}@b.test>")),
            Err(AddressError::LocalTooLong)
        );
        let local64 = "a".repeat(64);
        assert!(parse_path(&format!("<{local64}@b.test>")).is_ok());
        let long_domain = format!("{}.test", vec!["a".repeat(60); 4].join("."));
        assert!(long_domain.len() < 256);
        assert!(parse_path(&format!("<x@{long_domain}>")).is_ok());
        let too_long = format!("{}.test", vec!["a".repeat(60); 5].join("."));
        assert!(matches!(
            parse_path(&format!("<x@{too_long}>")),
            Err(AddressError::PathTooLong | AddressError::DomainTooLong)
        ));
    }

    #[test]
    fn safe_local_parts() {
        for ok in ["alice", "a.b", "a+tag", "jörg", "a b"] {
            assert!(is_safe_local(ok), "{ok}");
        }
        for bad in [
            "", ".", "..", ".hidden", "a/b", "a\\b", "a\0b", "a\tb", "a..b", "../x",
        ] {
            assert!(!is_safe_local(bad), "{bad:?}");
        }
    }

    #[test]
    fn requoting() {
        let m = parse_mailbox("\"a b\"@x.test").unwrap();
        assert_eq!(m.to_address(), "\"a b\"@x.test");
        let m = parse_mailbox("a.b@x.test").unwrap();
        assert_eq!(m.to_address(), "a.b@x.test");
    }
}
