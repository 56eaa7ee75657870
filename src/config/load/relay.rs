//! `[relay]`, `[dns]` and `[queue]`: who may send out, the next hops, the resolver of direct
//! delivery, and the retry schedule.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use toml::Spanned;
use toml::de::DeValue;

use super::{Loader, Section, qualified};
use crate::config::*;
use crate::proto::smtp::address::{is_address_literal, is_domain, parse_mailbox};

/// `host:port` with a host name or an IP address (IPv6 in brackets) and a port above 0.
fn is_next_hop(text: &str) -> bool {
    let Some((host, port)) = text.rsplit_once(':') else {
        return false;
    };
    let host_ok = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(v6) => v6.parse::<std::net::Ipv6Addr>().is_ok(),
        None => host.parse::<std::net::Ipv4Addr>().is_ok() || is_domain(host),
    };
    host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
}

impl Loader<'_> {
    /// A list of networks (CIDR, or a bare address for one host) at `table.key`.
    pub(super) fn networks(
        &mut self,
        s: &Section,
        table: &str,
        key: &'static str,
        defaults: &[ipnet::IpNet],
    ) -> Vec<ipnet::IpNet> {
        let defaults: Vec<String> = defaults.iter().map(ToString::to_string).collect();
        let mut networks = Vec::new();
        for n in self.strings(s, key, &defaults) {
            let text = n.get_ref();
            let parsed = text.parse::<ipnet::IpNet>().ok().or_else(|| {
                text.parse::<std::net::IpAddr>()
                    .ok()
                    .map(ipnet::IpNet::from)
            });
            match parsed {
                // Peers are compared in their canonical form (an IPv4-mapped address is
                // IPv4), so a mapped network is written as the IPv4 one it means.
                Some(ipnet::IpNet::V6(v6))
                    if v6.addr().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 =>
                {
                    let v4 = v6
                        .addr()
                        .to_ipv4_mapped()
                        .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED);
                    match ipnet::Ipv4Net::new(v4, v6.prefix_len() - 96) {
                        Ok(n) => networks.push(ipnet::IpNet::V4(n.trunc())),
                        Err(_) => networks.push(ipnet::IpNet::V6(v6.trunc())),
                    }
                }
                Some(net) => networks.push(net.trunc()),
                None => self.problem(
                    n.span(),
                    format!(
                        "`{table}.{key}`: \"{text}\" is not a network (e.g. \"192.168.1.0/24\" or \"::1/128\")"
                    ),
                ),
            }
        }
        networks
    }

    pub(super) fn relay(&mut self, top: &Section) -> Relay {
        self.read(top, "relay", |l, s| {
            let d = Relay::default();
            let networks = l.networks(s, "relay", "networks", &d.networks);
            let smarthost = l.string(s, "smarthost", &d.smarthost);
            if !smarthost.get_ref().is_empty() && !is_next_hop(smarthost.get_ref()) {
                let msg = format!(
                    "`relay.smarthost`: \"{}\" is not host:port (e.g. \"smtp.example.net:587\")",
                    smarthost.get_ref()
                );
                l.problem(smarthost.span(), msg);
            }
            let smarthost_tls = l.choice(
                s,
                "smarthost_tls",
                d.smarthost_tls,
                &[
                    ("starttls", SmarthostTls::Starttls),
                    ("tls", SmarthostTls::Tls),
                    ("none", SmarthostTls::None),
                ],
            );
            let smarthost_auth_file = l.string(s, "smarthost_auth_file", &d.smarthost_auth_file);
            if let Some(why) = secret_file_problem(smarthost_auth_file.get_ref()) {
                l.problem(
                    smarthost_auth_file.span(),
                    format!("`relay.smarthost_auth_file`: {why}"),
                );
            }
            let smarthost_auth_file = smarthost_auth_file.into_inner();
            let routes = l.routes(s);
            let tls = l.choice(
                s,
                "tls",
                d.tls,
                &[
                    ("opportunistic", RelayTls::Opportunistic),
                    ("required", RelayTls::Required),
                ],
            );
            let cafile = l.string(s, "cafile", &d.cafile).into_inner();
            let mx_port = l.port(s, "mx_port", d.mx_port);
            let concurrency = l.uint(s, "concurrency", d.concurrency as u64, 1).min(1024) as usize;
            let destination_concurrency = l
                .uint(
                    s,
                    "destination_concurrency",
                    d.destination_concurrency as u64,
                    1,
                )
                .min(1024) as usize;
            let connection_cache_secs = l
                .uint(s, "connection_cache_secs", d.connection_cache_secs, 0)
                .min(300);
            Relay {
                networks,
                smarthost: smarthost.into_inner(),
                smarthost_tls,
                smarthost_auth_file,
                routes,
                tls,
                cafile,
                mx_port,
                concurrency,
                destination_concurrency,
                connection_cache_secs,
            }
        })
    }

    /// A TCP port, 1 to 65535.
    fn port(&mut self, s: &Section, key: &'static str, default: u16) -> u16 {
        let n = self.uint(s, key, u64::from(default), 1);
        match u16::try_from(n) {
            Ok(p) => p,
            Err(_) => {
                if let Some(v) = self.value(s, key) {
                    let name = qualified(s, key);
                    self.problem(
                        v.span(),
                        format!("`{name}` must be a TCP port (1 to 65535), not {n}"),
                    );
                }
                default
            }
        }
    }

    /// `[dns] nameservers`: `IP:PORT`, or an IP alone for port 53; names are not resolved (the
    /// resolver cannot ask a name server for its own address).
    pub(super) fn dns(&mut self, top: &Section) -> Dns {
        self.read(top, "dns", |l, s| {
            let mut nameservers = Vec::new();
            for item in l.strings(s, "nameservers", &[]) {
                let text = item.get_ref();
                let parsed = text.parse::<SocketAddr>().ok().or_else(|| {
                    text.parse::<std::net::IpAddr>()
                        .ok()
                        .map(|ip| SocketAddr::new(ip, 53))
                });
                match parsed {
                    Some(a) if a.port() != 0 => nameservers.push(a),
                    _ => l.problem(
                        item.span(),
                        format!(
                            "`dns.nameservers`: \"{text}\" is not a name server address (IP or IP:PORT, e.g. \"127.0.0.1:5353\" or \"[::1]:53\"; names are not resolved)"
                        ),
                    ),
                }
            }
            Dns { nameservers }
        })
    }

    /// `routes = { "domain" = "host:port", ... }`, domains lower-cased.
    fn routes(&mut self, s: &Section) -> BTreeMap<String, String> {
        let mut routes = BTreeMap::new();
        let Some(v) = self.value(s, "routes") else {
            return routes;
        };
        let DeValue::Table(t) = v.get_ref() else {
            self.type_error(s, "routes", v, "a table of \"domain\" = \"host:port\"");
            return routes;
        };
        let name = qualified(s, "routes");
        for (k, hop) in t.iter() {
            let domain = k.get_ref().to_ascii_lowercase();
            if !is_domain(&domain) && !is_address_literal(&domain) {
                self.problem(
                    k.span(),
                    format!("`{name}`: \"{domain}\" is not a domain name"),
                );
                continue;
            }
            match hop.get_ref() {
                DeValue::String(h) if is_next_hop(h) => {
                    routes.insert(domain, h.to_string());
                }
                DeValue::String(h) => self.problem(
                    hop.span(),
                    format!("`{name}`: \"{h}\" is not host:port (e.g. \"127.0.0.1:2626\")"),
                ),
                other => self.problem(
                    hop.span(),
                    format!(
                        "`{name}` must map domains to strings, not {}",
                        other.type_str()
                    ),
                ),
            }
        }
        routes
    }

    /// `[aliases]`: keys in the local domains (`local@domain` or `@domain`), values one address
    /// or a list; lower-cased.
    pub(super) fn aliases(
        &mut self,
        top: &Section,
        domains: &[String],
    ) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        let Some(v) = self.value(top, "aliases") else {
            return out;
        };
        let DeValue::Table(t) = v.get_ref() else {
            self.type_error(
                top,
                "aliases",
                v,
                "a table of \"address\" = \"address\" or [list]",
            );
            return out;
        };
        for (k, value) in t.iter() {
            let key = k.get_ref().to_ascii_lowercase();
            let (local, domain) = key.rsplit_once('@').unwrap_or(("", ""));
            if !domains.iter().any(|d| d == domain) {
                self.problem(
                    k.span(),
                    format!("`aliases`: \"{key}\" is not an address in mailboxes.domains (e.g. \"postmaster@{}\" or \"@{}\" for a catch-all)", domains.first().map(String::as_str).unwrap_or("example.test"), domains.first().map(String::as_str).unwrap_or("example.test")),
                );
                continue;
            }
            if !local.is_empty() && parse_mailbox(&key).is_err() {
                self.problem(k.span(), format!("`aliases`: \"{key}\" is not an address"));
                continue;
            }
            let items: Vec<(std::ops::Range<usize>, String)> = match value.get_ref() {
                DeValue::String(a) => vec![(value.span(), a.to_string())],
                DeValue::Array(list) => list
                    .iter()
                    .filter_map(|i| match i.get_ref() {
                        DeValue::String(a) => Some((i.span(), a.to_string())),
                        _ => None,
                    })
                    .collect(),
                other => {
                    self.problem(
                        value.span(),
                        format!(
                            "`aliases` values must be an address or a list of addresses, not {}",
                            other.type_str()
                        ),
                    );
                    continue;
                }
            };
            let mut targets = Vec::new();
            for (span, a) in items {
                let lower = a.to_ascii_lowercase();
                match parse_mailbox(&lower) {
                    Ok(_) if lower.contains('@') => targets.push(lower),
                    _ => self.problem(
                        span,
                        format!("`aliases`: \"{a}\" (for \"{key}\") is not an address"),
                    ),
                }
            }
            if targets.is_empty() {
                self.problem(
                    value.span(),
                    format!("`aliases`: \"{key}\" has no address to deliver to"),
                );
                continue;
            }
            out.insert(key, targets);
        }
        out
    }

    pub(super) fn queue(&mut self, top: &Section) -> Queue {
        self.read(top, "queue", |l, s| {
            let d = Queue::default();
            let dir = l.string(s, "dir", &d.dir.to_string_lossy());
            if dir.get_ref().is_empty() {
                l.problem(dir.span(), "`queue.dir` must not be empty");
            }
            let minimal = l.uint(s, "minimal_backoff_secs", d.minimal_backoff_secs, 1);
            let maximal: Spanned<u64> = match l.value(s, "maximal_backoff_secs") {
                Some(v) => Spanned::new(v.span(), 0),
                None => Spanned::new(0..0, 0),
            };
            let maximal_value = l.uint(s, "maximal_backoff_secs", d.maximal_backoff_secs, 1);
            if maximal_value < minimal {
                let span = maximal.span();
                l.problem(
                    span,
                    format!(
                        "`queue.maximal_backoff_secs` ({maximal_value}) must be at least `minimal_backoff_secs` ({minimal})"
                    ),
                );
            }
            Queue {
                dir: PathBuf::from(dir.into_inner()),
                minimal_backoff_secs: minimal,
                maximal_backoff_secs: maximal_value.max(minimal),
                max_lifetime_secs: l.uint(s, "max_lifetime_secs", d.max_lifetime_secs, 1),
                delay_warning_secs: l.uint(s, "delay_warning_secs", d.delay_warning_secs, 0),
                scan_interval_secs: l.uint(s, "scan_interval_secs", d.scan_interval_secs, 1),
            }
        })
    }
}

/// What is wrong with a file of secrets (none for an empty path): missing, not a file, or
/// readable or writable by others than its owner (as ssh refuses a private key). Only its
/// metadata is read, so a caller who may not read it (sendmail, as any user) can still load
/// the configuration.
fn secret_file_problem(path: &str) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    if path.is_empty() {
        return None;
    }
    match std::fs::metadata(path) {
        Err(e) => Some(format!("cannot use {path}: {e}")),
        Ok(m) if !m.is_file() => Some(format!("{path} is not a file")),
        Ok(m) if m.permissions().mode() & 0o077 != 0 => Some(format!(
            "{path} holds a password but is open to others (mode {:o}): run chmod 600 {path}",
            m.permissions().mode() & 0o777
        )),
        Ok(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(extra: &str) -> Result<Config, ConfigError> {
        crate::config::parse(
            &format!("hostname = \"mx.test\"\n{extra}"),
            Path::new("t.toml"),
        )
    }

    #[test]
    fn defaults_and_values() {
        let c = parse("").unwrap();
        assert_eq!(c.relay, Relay::default());
        assert_eq!(c.queue, Queue::default());
        let c = parse(
            "[relay]\nnetworks = [\"10.1.2.3/8\", \"192.0.2.7\", \"::ffff:198.51.100.0/120\"]\nsmarthost = \"smtp.example.net:587\"\nsmarthost_tls = \"tls\"\nroutes = { \"Example.NET\" = \"127.0.0.1:2626\", \"v6.test\" = \"[::1]:25\" }\ntls = \"required\"\n[queue]\ndir = \"q\"\nminimal_backoff_secs = 1\nmaximal_backoff_secs = 4\n",
        )
        .unwrap();
        let nets: Vec<String> = c.relay.networks.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["10.0.0.0/8", "192.0.2.7/32", "198.51.100.0/24"]);
        assert_eq!(c.relay.smarthost_tls, SmarthostTls::Tls);
        assert_eq!(c.relay.routes["example.net"], "127.0.0.1:2626");
        assert_eq!(c.relay.routes["v6.test"], "[::1]:25");
        assert_eq!(c.relay.tls, RelayTls::Required);
        assert_eq!(
            (c.queue.minimal_backoff_secs, c.queue.maximal_backoff_secs),
            (1, 4)
        );
        assert_eq!(c.relay.mx_port, 25);
        assert_eq!(c.dns, Dns::default());
        let c = parse(
            "[relay]\nmx_port = 2526\n[dns]\nnameservers = [\"127.0.0.1:5353\", \"::1\", \"[::1]:54\"]\n",
        )
        .unwrap();
        assert_eq!(c.relay.mx_port, 2526);
        let ns: Vec<String> = c.dns.nameservers.iter().map(ToString::to_string).collect();
        assert_eq!(ns, ["127.0.0.1:5353", "[::1]:53", "[::1]:54"]);
    }

    #[test]
    fn aliases_are_checked() {
        let c = parse(
            "[relay]\nroutes = { \"far.test\" = \"127.0.0.1:2626\" }\n[mailboxes]\ndomains = [\"example.test\"]\nrecipient_delimiter = \"+\"\n[aliases]\n\"Postmaster@example.test\" = \"Alice@example.test\"\n\"team@example.test\" = [\"a@example.test\", \"b@far.test\"]\n\"@example.test\" = \"catch@example.test\"\n",
        )
        .unwrap();
        assert_eq!(c.aliases["postmaster@example.test"], ["alice@example.test"]);
        assert_eq!(
            c.aliases["team@example.test"],
            ["a@example.test", "b@far.test"]
        );
        assert_eq!(c.aliases["@example.test"], ["catch@example.test"]);
        assert_eq!(c.mailboxes.recipient_delimiter, "+");
        // A remote address needs no route: direct delivery (MX) is its next hop.
        let c = parse(
            "[mailboxes]\ndomains = [\"example.test\"]\n[aliases]\n\"team@example.test\" = [\"a@example.test\", \"b@far.test\"]\n",
        )
        .unwrap();
        assert_eq!(c.aliases["team@example.test"][1], "b@far.test");
        let e = parse(
            "[mailboxes]\ndomains = [\"example.test\"]\nrecipient_delimiter = \"ab\"\n[aliases]\n\"x@elsewhere.test\" = \"a@example.test\"\n\"y@example.test\" = \"not an address\"\n\"z@example.test\" = 3\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [4, 6, 7, 7, 8], "{e}");
        let text = e.to_string();
        assert!(
            text.contains("\"x@elsewhere.test\" is not an address in mailboxes.domains"),
            "{text}"
        );
        assert!(text.contains("must be one character"), "{text}");
    }

    #[test]
    fn bad_values_are_reported_where_they_stand() {
        let e = parse(
            "[relay]\nnetworks = [\"10.0.0.0/33\"]\nsmarthost = \"nohost\"\nroutes = { \"a..b\" = \"x:1\", \"ok.test\" = \"127.0.0.1\" }\n[queue]\nminimal_backoff_secs = 10\nmaximal_backoff_secs = 5\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5, 5, 8], "{e}");
        let text = e.to_string();
        assert!(text.contains("\"10.0.0.0/33\" is not a network"), "{text}");
        assert!(text.contains("\"nohost\" is not host:port"), "{text}");
        assert!(text.contains("\"a..b\" is not a domain name"), "{text}");
        assert!(
            text.contains("must be at least `minimal_backoff_secs`"),
            "{text}"
        );
    }

    /// The smarthost's password file must exist and be its owner's only (checked by metadata).
    #[test]
    fn the_smarthost_password_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth");
        let cfg = |p: &Path| format!("[relay]\nsmarthost_auth_file = \"{}\"\n", p.display());
        let e = parse(&cfg(&f)).unwrap_err();
        assert!(
            e.problems[0].line == 3 && e.to_string().contains("cannot use"),
            "{e}"
        );
        std::fs::write(&f, "u:p\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = parse(&cfg(&f)).unwrap_err().to_string();
        assert!(e.contains("(mode 640): run chmod 600"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(parse(&cfg(&f)).is_ok());
        let e = parse(&cfg(dir.path())).unwrap_err().to_string();
        assert!(e.contains("is not a file"), "{e}");
    }

    #[test]
    fn bad_mx_port_and_nameservers() {
        let e = parse(
            "[relay]\nmx_port = 70000\n[dns]\nnameservers = [\"ns.example.test:53\", \"127.0.0.1:0\", 5]\n",
        )
        .unwrap_err();
        let lines: Vec<usize> = e.problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 5, 5, 5], "{e}");
        let text = e.to_string();
        assert!(
            text.contains("`relay.mx_port` must be a TCP port (1 to 65535), not 70000"),
            "{text}"
        );
        assert!(
            text.contains("`dns.nameservers`: \"ns.example.test:53\" is not a name server address"),
            "{text}"
        );
        assert!(
            text.contains("\"127.0.0.1:0\" is not a name server"),
            "{text}"
        );
        assert!(
            text.contains("`dns.nameservers` must hold strings"),
            "{text}"
        );
    }
}
