//! `[dkim]`: one entry per signing domain, `"example.test" = { selector = "s1", key = "..." }`
//! (or a `[dkim."example.test"]` table). Only the entries are read here; the key files are read
//! by `Config::read_dkim_keys`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use toml::de::DeValue;

use super::{Loader, Section};
use crate::config::Dkim;
use crate::dkim::Algorithm;
use crate::proto::smtp::address::is_domain;

/// A DNS name in ASCII (the `d=` and `s=` of a signature, RFC 6376 3.5).
fn is_dns_name(s: &str) -> bool {
    s.is_ascii() && is_domain(s)
}

impl Loader<'_> {
    pub(super) fn dkim(&mut self, top: &Section) -> BTreeMap<String, Dkim> {
        let mut out = BTreeMap::new();
        let Some(v) = self.value(top, "dkim") else {
            return out;
        };
        let DeValue::Table(t) = v.get_ref() else {
            self.type_error(
                top,
                "dkim",
                v,
                "a table of \"domain\" = { selector = \"...\", key = \"...\" }",
            );
            return out;
        };
        for (k, entry) in t.iter() {
            let domain = k.get_ref().to_ascii_lowercase();
            let line = self.line_of(k.span().start);
            if !is_dns_name(&domain) {
                self.problem(
                    k.span(),
                    format!("`dkim`: \"{domain}\" is not a domain name (in ASCII)"),
                );
                continue;
            }
            let DeValue::Table(fields) = entry.get_ref() else {
                self.problem(
                    entry.span(),
                    format!(
                        "`dkim`: \"{domain}\" must be {{ selector = \"s1\", key = \"config/dkim/{domain}.key\" }}, not {}",
                        entry.get_ref().type_str()
                    ),
                );
                continue;
            };
            let s = Section {
                table: Some(fields),
                name: "dkim",
            };
            let selector = self.string(&s, "selector", "");
            let key = self.string(&s, "key", "");
            let algorithm = self.choice(
                &s,
                "algorithm",
                None,
                &[
                    ("rsa", Some(Algorithm::Rsa)),
                    ("ed25519", Some(Algorithm::Ed25519)),
                ],
            );
            if selector.get_ref().is_empty() && selector.span() == (0..0) {
                self.problem(
                    entry.span(),
                    format!("`dkim`: \"{domain}\" needs `selector`, the name of its DNS record (selector._domainkey.{domain})"),
                );
            } else if !is_dns_name(selector.get_ref()) {
                self.problem(
                    selector.span(),
                    format!(
                        "`dkim.selector`: \"{}\" is not a DNS name (letters, digits, '-' and '.')",
                        selector.get_ref()
                    ),
                );
            }
            if key.get_ref().is_empty() {
                let at = if key.span() == (0..0) {
                    entry.span()
                } else {
                    key.span()
                };
                self.problem(
                    at,
                    format!("`dkim`: \"{domain}\" needs `key`, its private key file (made by `smtpctl dkim-keygen {domain}`)"),
                );
            }
            self.finish(s);
            if out.contains_key(&domain) {
                self.problem(k.span(), format!("`dkim`: \"{domain}\" is listed twice"));
                continue;
            }
            out.insert(
                domain,
                Dkim {
                    selector: selector.into_inner(),
                    key: PathBuf::from(key.into_inner()),
                    algorithm,
                    signing_key: None,
                    line,
                },
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::{Config, ConfigError};

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        crate::config::parse(
            &format!("hostname = \"mx.test\"\n{extra}"),
            Path::new("t.toml"),
        )
    }

    #[test]
    fn entries_are_read_with_their_line() {
        let c = parse("[dkim]\n\"Example.TEST\" = { selector = \"s1\", key = \"k/e.key\" }\n\n[dkim.\"other.test\"]\nselector = \"2026.a\"\nkey = \"/etc/o.key\"\nalgorithm = \"ed25519\"\n").unwrap();
        let e = &c.dkim["example.test"];
        assert_eq!(
            (e.selector.as_str(), e.key.as_path()),
            ("s1", Path::new("k/e.key"))
        );
        assert_eq!((e.algorithm, e.line), (None, 3));
        let o = &c.dkim["other.test"];
        assert_eq!(o.algorithm, Some(crate::dkim::Algorithm::Ed25519));
        assert_eq!(o.line, 5);
        assert!(o.signing_key.is_none());
        assert!(parse("").unwrap().dkim.is_empty());
    }

    #[test]
    fn bad_entries_are_reported_where_they_stand() {
        let e = parse("[dkim]\n\"bad domain\" = { selector = \"s1\", key = \"k\" }\n\"a.test\" = \"k\"\n\"b.test\" = { key = \"k\" }\n\"c.test\" = { selector = \"s 1\", key = \"\" }\n\"d.test\" = { selector = \"s\", key = \"k\", algorithm = \"dsa\", bits = 1 }\n").unwrap_err();
        let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 6, 7, 7], "{e}");
        let text = e.to_string();
        for want in [
            "\"bad domain\" is not a domain name",
            "\"a.test\" must be { selector = \"s1\", key = \"config/dkim/a.test.key\" }, not string",
            "\"b.test\" needs `selector`",
            "\"s 1\" is not a DNS name",
            "\"c.test\" needs `key`",
            "`dkim.algorithm` must be one of \"rsa\", \"ed25519\", not \"dsa\"",
            "unknown key `bits` in [dkim] (known keys: selector, key, algorithm)",
        ] {
            assert!(text.contains(want), "{want} in {text}");
        }
    }
}
