//! Mail client autoconfiguration: Thunderbird's `clientConfig` 1.1 document
//! (`/mail/config-v1.1.xml`, `/.well-known/autoconfig/mail/config-v1.1.xml`), built from the
//! listeners smtpd has bound, its hostname and its local domains. Open to every peer (a client
//! asks before it has credentials; the document holds nothing a port scan would not show).
//!
//! Offered, best first: IMAP (implicit TLS, then STARTTLS) when IMAP listeners exist, POP3
//! likewise, and submission (implicit TLS, then STARTTLS); without a submission listener, the
//! plain SMTP listener. A STARTTLS-role listener is `plain` when smtpd has no `[tls]`.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::query;
use super::routes::{ApiError, AppState, Params, pairs};
use crate::net::Protocol;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// `[imap] listen` (STARTTLS) and `imaps` (SSL).
    Imap,
    Pop3,
    /// Submission (RFC 6409/8314), or plain SMTP when there is no submission listener.
    Smtp,
}

/// `socketType`: how the client secures the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Socket {
    Ssl,
    Starttls,
    Plain,
}

/// One server a client may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Offer {
    pub kind: Kind,
    pub socket: Socket,
    pub port: u16,
    /// A submission-role listener (preferred over plain SMTP).
    pub submission: bool,
}

/// What a listener offers to a mail client (`tls`: `[tls]` is configured). Every protocol is
/// named here, so a new listener kind (IMAP) must say what it offers.
pub fn offer(protocol: Protocol, addr: SocketAddr, tls: bool) -> Option<Offer> {
    let starttls = if tls { Socket::Starttls } else { Socket::Plain };
    let (kind, socket, submission) = match protocol {
        Protocol::Smtp => (Kind::Smtp, starttls, false),
        Protocol::Submission => (Kind::Smtp, starttls, true),
        Protocol::Submissions => (Kind::Smtp, Socket::Ssl, true),
        Protocol::Pop3 => (Kind::Pop3, starttls, false),
        Protocol::Pop3s => (Kind::Pop3, Socket::Ssl, false),
        Protocol::Imap => (Kind::Imap, starttls, false),
        Protocol::Imaps => (Kind::Imap, Socket::Ssl, false),
        Protocol::Http => return None,
    };
    Some(Offer {
        kind,
        socket,
        port: addr.port(),
        submission,
    })
}

/// What the document is built from.
pub struct Site<'a> {
    pub hostname: &'a str,
    /// Local domains, as configured; the first is the provider id without `?emailaddress=`.
    pub domains: &'a [String],
    pub offers: Vec<Offer>,
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// The clientConfig document for `domain` (one of the site's).
pub fn document(site: &Site, domain: &str) -> String {
    let mut offers = site.offers.clone();
    // Plain SMTP only when no submission listener exists.
    if offers.iter().any(|o| o.submission) {
        offers.retain(|o| o.kind != Kind::Smtp || o.submission);
    }
    offers.sort_by_key(|o| (o.kind, o.socket));
    offers.dedup();
    let host = escape(site.hostname);
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    x.push_str("<clientConfig version=\"1.1\">\n");
    let _ = writeln!(x, "  <emailProvider id=\"{}\">", escape(domain));
    for d in site.domains {
        let _ = writeln!(x, "    <domain>{}</domain>", escape(d));
    }
    let _ = writeln!(x, "    <displayName>{host}</displayName>");
    let _ = writeln!(
        x,
        "    <displayShortName>{}</displayShortName>",
        escape(domain)
    );
    for o in &offers {
        let (tag, kind) = match o.kind {
            Kind::Imap => ("incomingServer", "imap"),
            Kind::Pop3 => ("incomingServer", "pop3"),
            Kind::Smtp => ("outgoingServer", "smtp"),
        };
        let socket = match o.socket {
            Socket::Ssl => "SSL",
            Socket::Starttls => "STARTTLS",
            Socket::Plain => "plain",
        };
        let _ = write!(
            x,
            "    <{tag} type=\"{kind}\">\n      <hostname>{host}</hostname>\n      <port>{}</port>\n      <socketType>{socket}</socketType>\n      <username>%EMAILADDRESS%</username>\n      <authentication>password-cleartext</authentication>\n    </{tag}>\n",
            o.port
        );
    }
    x.push_str("  </emailProvider>\n</clientConfig>\n");
    x
}

/// The domain the document is for: that of `?emailaddress=` (which must be local: else 404), or
/// the first local domain.
pub fn domain_for(pairs: &[(String, String)], domains: &[String]) -> Result<String, ApiError> {
    if let Some((name, _)) = pairs.iter().find(|(n, _)| n != "emailaddress") {
        let why = format!("unknown parameter `{name}` (known: emailaddress)");
        return Err(ApiError::bad_request(why));
    }
    let Some((_, address)) = pairs.first() else {
        return domains
            .first()
            .cloned()
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "no local domains"));
    };
    let (domain, _) = query::parse_mailbox(address).map_err(|_| {
        ApiError::bad_request(format!(
            "`emailaddress`: \"{address}\" is not an address like alice@example.test"
        ))
    })?;
    domains
        .iter()
        .find(|d| d.eq_ignore_ascii_case(&domain))
        .cloned()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not a domain of this server"))
}

pub async fn autoconfig(State(app): AppState, q: Params) -> Result<Response, ApiError> {
    let pairs = pairs(q)?;
    let ctx = &app.ctx;
    let domain = domain_for(&pairs, &ctx.domains)?;
    let offers = (app.shared.listeners)()
        .into_iter()
        .filter_map(|(p, a)| offer(p, a, ctx.tls))
        .collect();
    let site = Site {
        hostname: &ctx.hostname,
        domains: &ctx.domains,
        offers,
    };
    let kind = [(header::CONTENT_TYPE, "application/xml; charset=utf-8")];
    Ok((kind, document(&site, &domain)).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn offers_by_listener() {
        assert_eq!(offer(Protocol::Http, a(8025), true), None);
        let o = offer(Protocol::Pop3, a(110), false).unwrap();
        assert_eq!((o.kind, o.socket, o.port), (Kind::Pop3, Socket::Plain, 110));
        let o = offer(Protocol::Submission, a(587), true).unwrap();
        assert_eq!(
            (o.kind, o.socket, o.submission),
            (Kind::Smtp, Socket::Starttls, true)
        );
        let o = offer(Protocol::Submissions, a(465), true).unwrap();
        assert_eq!(o.socket, Socket::Ssl);
    }

    #[test]
    fn document_lists_servers_best_first() {
        let domains = vec!["example.test".to_string(), "b&<x>.test".to_string()];
        let o = |kind, socket, port, submission| Offer {
            kind,
            socket,
            port,
            submission,
        };
        let site = Site {
            hostname: "mx.example.test",
            domains: &domains,
            offers: vec![
                o(Kind::Smtp, Socket::Starttls, 25, false),
                o(Kind::Smtp, Socket::Starttls, 587, true),
                o(Kind::Pop3, Socket::Starttls, 110, false),
                o(Kind::Smtp, Socket::Ssl, 465, true),
                o(Kind::Pop3, Socket::Ssl, 995, false),
                o(Kind::Imap, Socket::Starttls, 143, false),
                o(Kind::Imap, Socket::Ssl, 993, false),
            ],
        };
        let x = document(&site, "example.test");
        let order: Vec<&str> = x
            .lines()
            .filter_map(|l| l.trim().strip_prefix("<port>")?.strip_suffix("</port>"))
            .collect();
        assert_eq!(order, ["993", "143", "995", "110", "465", "587"], "{x}");
        assert!(x.contains("<emailProvider id=\"example.test\">"));
        assert!(x.contains("<domain>b&amp;&lt;x&gt;.test</domain>"), "{x}");
        assert!(x.contains("<incomingServer type=\"imap\">"));
        // Without submission listeners, the plain SMTP one is the outgoing server.
        let site = Site {
            offers: vec![o(Kind::Smtp, Socket::Plain, 2525, false)],
            ..site
        };
        let x = document(&site, "example.test");
        assert!(
            x.contains("<port>2525</port>\n      <socketType>plain</socketType>"),
            "{x}"
        );
        assert_eq!(escape("a\"'\u{1}b"), "a&quot;&apos;b");
    }

    #[test]
    fn the_address_names_a_local_domain() {
        let domains = vec!["example.test".to_string(), "localhost".to_string()];
        let q = |v: &str| vec![("emailaddress".to_string(), v.to_string())];
        assert_eq!(domain_for(&[], &domains).unwrap(), "example.test");
        assert_eq!(
            domain_for(&q("Bob@LOCALHOST"), &domains).unwrap(),
            "localhost"
        );
        let e = domain_for(&q("bob@elsewhere.test"), &domains).unwrap_err();
        assert_eq!(e.status, StatusCode::NOT_FOUND);
        let e = domain_for(&q("not an address"), &domains).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        let e = domain_for(&[("x".into(), "1".into())], &domains).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(domain_for(&[], &[]).is_err());
    }
}
