//! `[tls] acme*`: the CA's URL, the contact address, the names, and the checks that tie them to
//! `hostname` and `[http]` (HTTP-01 is answered there).

use super::{Loader, Section};
use crate::config::{AcmeChallenge, Http, Problem, Tls};
use crate::proto::smtp::address::{is_address_literal, is_domain};

impl Loader<'_> {
    pub(super) fn acme_directory(&mut self, s: &Section, default: &str) -> String {
        let url = self.string(s, "acme_directory", default);
        let text = url.get_ref();
        let rest = text.strip_prefix("https://").unwrap_or("");
        let host = rest.split(['/', '?', '#']).next().unwrap_or("");
        if host.is_empty() || text.chars().any(char::is_whitespace) {
            self.problem(
                url.span(),
                format!(
                    "`tls.acme_directory`: \"{text}\" is not an https:// URL (ACME runs over HTTPS only, RFC 8555 section 6.1); Let's Encrypt's is \"{}\"",
                    crate::config::LETS_ENCRYPT
                ),
            );
            return default.to_string();
        }
        url.into_inner()
    }

    pub(super) fn acme_email(&mut self, s: &Section) -> String {
        let email = self.string(s, "acme_email", "");
        let text = email.get_ref();
        if text.is_empty() {
            return String::new();
        }
        let ok = match text.rsplit_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !local.contains(|c: char| c.is_whitespace() || c.is_control() || c == ',')
                    && is_domain(domain)
            }
            None => false,
        };
        if !ok {
            self.problem(
                email.span(),
                format!("`tls.acme_email`: \"{text}\" is not an address (local@domain)"),
            );
            return String::new();
        }
        email.into_inner()
    }

    /// As given, lower-cased; empty when not set (filled with `hostname` by [`Self::acme_check`]).
    pub(super) fn acme_names(&mut self, s: &Section) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for n in self.strings(s, "acme_names", &[]) {
            let lower = n.get_ref().trim_end_matches('.').to_ascii_lowercase();
            let why = if lower.starts_with("*.") {
                Some(
                    "wildcard names need the DNS-01 challenge, which smtpd does not answer (HTTP-01 and TLS-ALPN-01 only)",
                )
            } else if is_address_literal(&lower) || lower.parse::<std::net::IpAddr>().is_ok() {
                Some("an address, not a name (ACME certificates here are for DNS names)")
            } else if !is_domain(&lower) || !lower.contains('.') {
                Some("not a fully qualified DNS name")
            } else if names.contains(&lower) {
                Some("listed twice")
            } else {
                None
            };
            match why {
                Some(why) => self.problem(
                    n.span(),
                    format!("`tls.acme_names`: \"{}\": {why}", n.get_ref()),
                ),
                None => names.push(lower),
            }
        }
        names
    }

    /// The checks across sections, once `[tls]`, `hostname` and the listeners are read:
    /// `acme_names` defaults to the hostname, which must then be a name; `acme_challenge =
    /// "auto"` becomes HTTP-01 with a plain `[http]` listener, else TLS-ALPN-01; HTTP-01 needs
    /// that listener, TLS-ALPN-01 an implicit-TLS one (`implicit_tls`); `self_signed` and
    /// `acme` exclude each other.
    pub(super) fn acme_check(
        &mut self,
        mut tls: Tls,
        hostname: &str,
        http: &Http,
        implicit_tls: bool,
    ) -> Tls {
        if !tls.acme {
            return tls;
        }
        let line = self.key_line("acme");
        let push = |l: &mut Self, message: String| l.problems.push(Problem { line, message });
        if tls.self_signed {
            push(
                self,
                "`tls.acme = true` and `tls.self_signed = true` exclude each other: ACME makes its own temporary self-signed certificate until the real one arrives; remove self_signed".into(),
            );
        }
        let plain_http = !http.listen.is_empty() && !http.tls;
        if tls.acme_challenge == AcmeChallenge::Auto {
            tls.acme_challenge = match (plain_http, implicit_tls) {
                (false, true) => AcmeChallenge::TlsAlpn01,
                _ => AcmeChallenge::Http01,
            };
        }
        if tls.acme_challenge == AcmeChallenge::TlsAlpn01 && !implicit_tls {
            push(
                self,
                "`tls.acme = true` with acme_challenge = \"tls-alpn-01\" answers the CA on an implicit-TLS listener, and there is none: set [smtp] submissions, [pop3] pop3s, [imap] imaps or [http] tls = true on port 443 as the CA sees it".into(),
            );
        }
        if tls.acme_challenge == AcmeChallenge::Http01 && http.listen.is_empty() {
            push(
                self,
                "`tls.acme = true` answers the CA's HTTP-01 challenge on the [http] listener: set [http] listen (port 80 as the CA sees it, e.g. listen = [\"0.0.0.0:80\"]), or answer TLS-ALPN-01 on port 443 with an implicit-TLS listener".into(),
            );
        }
        if tls.acme_challenge == AcmeChallenge::Http01 && http.tls {
            push(
                self,
                "`tls.acme = true` needs plain HTTP on [http] listen for HTTP-01 (the CA fetches http://NAME/.well-known/acme-challenge/...): set [http] tls = false, or acme_challenge = \"tls-alpn-01\"".into(),
            );
        }
        if tls.acme_names.is_empty() {
            let h = hostname.to_ascii_lowercase();
            if hostname.is_empty() {
                // `hostname` has its own problem already.
            } else if is_address_literal(&h) || !h.contains('.') {
                push(
                    self,
                    format!(
                        "`tls.acme = true`: hostname \"{hostname}\" is not a fully qualified DNS name a CA can issue for; set tls.acme_names"
                    ),
                );
            } else {
                tls.acme_names.push(h);
            }
        }
        tls
    }
}
