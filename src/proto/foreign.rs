//! Lines that belong to another protocol, sent to a mail port: a PROXY protocol header from a
//! peer outside `[server] proxy_from` (a load balancer not configured as trusted, or a client
//! trying to claim another address), or an HTTP request (a browser, or a cross-protocol attack
//! that smuggles mail commands in a POST body). Each engine answers such a line with its
//! closing reply and ends the session, as Postfix does for its `smtpd_forbidden_commands`
//! (CONNECT GET POST); the driver logs the kind with the peer.

use std::fmt;

/// What a foreign line looked like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Foreign {
    /// `PROXY TCP4 ...` (v1), or the NUL line inside the v2 signature
    /// (`\r\n\r\n\0\r\nQUIT\n`, whose first two lines are empty).
    Proxy,
    /// `GET`, `POST`, `CONNECT`, ... followed by a space.
    Http,
}

impl Foreign {
    pub fn as_str(self) -> &'static str {
        match self {
            Foreign::Proxy => "a PROXY protocol header from a peer outside [server] proxy_from",
            Foreign::Http => "an HTTP request",
        }
    }
}

impl fmt::Display for Foreign {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const HTTP_VERBS: [&[u8]; 7] = [
    b"GET", b"POST", b"CONNECT", b"PUT", b"HEAD", b"OPTIONS", b"DELETE",
];

/// Classifies one command line (without its line end). In IMAP the first word is a tag, so an
/// IMAP session also passes lines whose tag is one of these words: no client tags a command
/// `GET` or `PROXY`.
pub fn classify(line: &[u8]) -> Option<Foreign> {
    if line.trim_ascii_end() == b"\0" {
        return Some(Foreign::Proxy);
    }
    let word_end = line.iter().position(|&b| b == b' ')?;
    let (word, rest) = line.split_at(word_end);
    if word == b"PROXY" {
        return Some(Foreign::Proxy);
    }
    // "GET / HTTP/1.1": the verb in capitals (as HTTP has it) and a request target after it.
    // SMTP and POP3 have no verb of these names, and IMAP's tags never take them.
    let target = rest.get(1).copied();
    (HTTP_VERBS.contains(&word) && matches!(target, Some(b'/' | b'*' | b'h' | b'H') | None)
        || word == b"CONNECT")
        .then_some(Foreign::Http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_and_http_lines_are_foreign_mail_commands_are_not() {
        let cases: [(&[u8], Option<Foreign>); 15] = [
            (
                b"PROXY TCP4 192.0.2.1 198.51.100.1 5000 25",
                Some(Foreign::Proxy),
            ),
            (b"PROXY UNKNOWN", Some(Foreign::Proxy)),
            (b"\0", Some(Foreign::Proxy)),
            (b"\0 ", Some(Foreign::Proxy)),
            (b"GET / HTTP/1.1", Some(Foreign::Http)),
            (b"POST /cgi HTTP/1.0", Some(Foreign::Http)),
            (b"CONNECT mail.example:25 HTTP/1.1", Some(Foreign::Http)),
            (b"OPTIONS * HTTP/1.1", Some(Foreign::Http)),
            (b"GET http://x/ HTTP/1.1", Some(Foreign::Http)),
            (b"EHLO client.example", None),
            (b"MAIL FROM:<a@b>", None),
            (b"a1 LOGIN user pass", None),
            (b"PROXY", None),
            (b"", None),
            (b"get / http/1.1", None),
        ];
        for (line, want) in cases {
            assert_eq!(classify(line), want, "{:?}", String::from_utf8_lossy(line));
        }
    }
}
