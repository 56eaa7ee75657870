//! The client side of replies: parsing what an SMTP server sends (RFC 5321 §4.2), one line at a
//! time, for every client of ours (smtp-send, send-test, selftest, the tests, outbound delivery).
//! Sans-IO: the caller reads lines; [`ResponseParser`] says when a reply is whole.

use std::fmt;

/// One whole reply: its code and the text of each line (after the code and separator).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Response {
    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// `250 2.0.0 Ok` (the last line, with its code).
    pub fn last_line(&self) -> String {
        format!(
            "{} {}",
            self.code,
            self.lines.last().map(String::as_str).unwrap_or("")
        )
    }

    /// Every line's text joined by newlines.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// EHLO: the upper-cased keyword of each line after the first.
    pub fn keywords(&self) -> Vec<String> {
        self.lines
            .iter()
            .skip(1)
            .filter_map(|l| l.split_whitespace().next())
            .map(|k| k.to_ascii_uppercase())
            .collect()
    }

    /// EHLO: the SASL mechanisms after `AUTH` (RFC 4954), upper-cased; also the `AUTH=` form
    /// that old servers send for old clients. Empty when the server offers no AUTH.
    pub fn auth_mechanisms(&self) -> Vec<String> {
        let mut mechs: Vec<String> = Vec::new();
        for l in self.lines.iter().skip(1) {
            let mut w = l.split_whitespace();
            let Some(first) = w.next() else { continue };
            let first = first.to_ascii_uppercase();
            let rest: Vec<&str> = match first.strip_prefix("AUTH=") {
                Some(m) => std::iter::once(m).chain(w).collect(),
                None if first == "AUTH" => w.collect(),
                None => continue,
            };
            for m in rest.iter().filter(|m| !m.is_empty()) {
                let m = m.to_ascii_uppercase();
                if !mechs.contains(&m) {
                    mechs.push(m);
                }
            }
        }
        mechs
    }

    /// EHLO: the number after `SIZE`, when positive (RFC 1870; 0 means no limit).
    pub fn size_limit(&self) -> Option<u64> {
        self.lines
            .iter()
            .skip(1)
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next()?.eq_ignore_ascii_case("SIZE"))
                    .then(|| w.next().and_then(|n| n.parse().ok()))
                    .flatten()
            })
            .filter(|&n| n > 0)
    }
}

/// A line that is not a reply line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("malformed reply line {0:?}")]
    Line(String),
    #[error("reply code changed inside a multi-line reply: {0:?}")]
    CodeChanged(String),
}

/// Gathers the lines of one reply.
#[derive(Debug, Default)]
pub struct ResponseParser {
    code: Option<u16>,
    lines: Vec<String>,
}

impl ResponseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one line (its CRLF or LF may be left on). Returns the reply when this line was its
    /// last (`NNN text` or a bare `NNN`); `NNN-text` asks for more. The code must be 200-599 and
    /// the same on every line.
    pub fn line(&mut self, line: &str) -> Result<Option<Response>, Malformed> {
        let line = line.trim_end_matches(['\r', '\n']);
        let bad = || Malformed::Line(line.to_string());
        let code = line
            .get(..3)
            .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|c| c.parse::<u16>().ok())
            .filter(|c| (200..600).contains(c))
            .ok_or_else(bad)?;
        if self.code.is_some_and(|c| c != code) {
            return Err(Malformed::CodeChanged(line.to_string()));
        }
        self.code = Some(code);
        let text = line.get(4..).unwrap_or("").to_string();
        match line.as_bytes().get(3) {
            Some(b'-') => {
                self.lines.push(text);
                Ok(None)
            }
            None | Some(b' ') => {
                self.lines.push(text);
                self.code = None;
                Ok(Some(Response {
                    code,
                    lines: std::mem::take(&mut self.lines),
                }))
            }
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, l) in self.lines.iter().enumerate() {
            let sep = if i + 1 == self.lines.len() { ' ' } else { '-' };
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}{sep}{l}", self.code)?;
        }
        Ok(())
    }
}

/// Parses a whole reply from its lines (tests, examples).
pub fn parse(text: &str) -> Result<Response, Malformed> {
    let mut p = ResponseParser::new();
    for line in text.split_inclusive('\n') {
        if let Some(r) = p.line(line)? {
            return Ok(r);
        }
    }
    Err(Malformed::Line(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::smtp::Reply;

    #[test]
    fn auth_mechanisms() {
        let r = parse("250-mx.test\r\n250-AUTH login PLAIN\r\n250-AUTH=LOGIN CRAM-MD5\r\n250-AUTHX Y\r\n250 SIZE 10\r\n").unwrap();
        assert_eq!(r.auth_mechanisms(), ["LOGIN", "PLAIN", "CRAM-MD5"]);
        let r = parse("250-mx.test\r\n250 PIPELINING\r\n").unwrap();
        assert!(r.auth_mechanisms().is_empty());
        // The greeting line is not an extension.
        let r = parse("250-AUTH PLAIN\r\n250 OK\r\n").unwrap();
        assert!(r.auth_mechanisms().is_empty());
    }

    #[test]
    fn table() {
        let ok: &[(&str, u16, &[&str])] = &[
            ("250 2.0.0 Ok\r\n", 250, &["2.0.0 Ok"]),
            ("250\r\n", 250, &[""]),
            ("354 go\n", 354, &["go"]),
            (
                "250-mx.test\r\n250-PIPELINING\r\n250 SIZE 1000\r\n",
                250,
                &["mx.test", "PIPELINING", "SIZE 1000"],
            ),
        ];
        for (text, code, lines) in ok {
            let r = parse(text).unwrap();
            assert_eq!(r.code, *code, "{text:?}");
            assert_eq!(r.lines, *lines, "{text:?}");
        }
        for bad in [
            "",
            "25\r\n",
            "abc x\r\n",
            "199 low\r\n",
            "600 high\r\n",
            "250x\r\n",
            "250-a\r\n251 b\r\n",
            "250-open\r\n",
            "2 50 x\r\n",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    /// What the server engine writes, the client parser reads back.
    #[test]
    fn round_trip_with_the_server_side() {
        let ehlo = Reply::plain(
            250,
            vec![
                "mx.test".into(),
                "PIPELINING".into(),
                "SIZE 26214400".into(),
            ],
        );
        let r = parse(&String::from_utf8(ehlo.to_bytes()).unwrap()).unwrap();
        assert_eq!(r.keywords(), ["PIPELINING", "SIZE"]);
        assert_eq!(r.size_limit(), Some(26_214_400));
        assert_eq!(
            r.to_string(),
            "250-mx.test\n250-PIPELINING\n250 SIZE 26214400"
        );
        let one = Reply::new(550, "5.7.1", "Relay access denied");
        let r = parse(&String::from_utf8(one.to_bytes()).unwrap()).unwrap();
        assert_eq!(r.last_line(), "550 5.7.1 Relay access denied");
        assert!(!r.is_positive() && !r.is_transient());
    }

    #[test]
    fn parser_is_reusable() {
        let mut p = ResponseParser::new();
        assert_eq!(p.line("220-a").unwrap(), None);
        assert_eq!(p.line("220 b").unwrap().unwrap().lines, ["a", "b"]);
        assert_eq!(p.line("250 c").unwrap().unwrap().code, 250);
    }
}
