//! Direct delivery's next hops (RFC 5321 5.1): a domain's MX records sorted by preference
//! (shuffled among equal ones), each host's addresses tried in turn; a domain without MX records
//! is its own mail host (the implicit MX); a null MX (RFC 7505) means the domain takes no mail at
//! all. [`destination`] turns a lookup's answer into the hosts to try and is pure (unit-tested
//! without a network); [`Dns`] makes the lookups with hickory-resolver, asking `[dns]
//! nameservers` (empty: those of /etc/resolv.conf).

use std::net::{IpAddr, SocketAddr};

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{
    ConnectionConfig, LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig,
};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RData;
use tokio::sync::OnceCell;

/// One MX record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mx {
    pub preference: u16,
    /// Lower-cased, without the final dot; empty for the root (".", a null MX).
    pub exchange: String,
}

/// What one DNS lookup said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer<T> {
    Found(T),
    /// The name exists but has no record of that type (NOERROR, no data).
    NoRecords,
    /// The name does not exist (NXDOMAIN).
    NoDomain,
    /// No answer for now: SERVFAIL, REFUSED, a timeout, no name server reachable.
    Failed(String),
}

/// Where the mail for a domain goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The mail hosts to try, in order.
    Hosts(Vec<String>),
    /// No mail can go there, ever: the reason, with its status code.
    Refused(String),
    /// No answer for now: the reason, with its status code.
    Later(String),
}

/// The destination of `domain` from its MX answer. `pick(n)` returns an index below `n`: the
/// source of randomness that spreads the load among hosts of equal preference.
pub fn destination(
    domain: &str,
    answer: Answer<Vec<Mx>>,
    pick: &mut impl FnMut(usize) -> usize,
) -> Destination {
    match answer {
        Answer::Found(records) => match order(records, pick) {
            Some(hosts) => Destination::Hosts(hosts),
            None => Destination::Refused(format!(
                "556 5.1.10 {domain} does not accept mail (null MX)"
            )),
        },
        // RFC 5321 5.1: no MX record: the domain itself, as if it had one MX of preference 0.
        Answer::NoRecords => Destination::Hosts(vec![domain.to_string()]),
        Answer::NoDomain => Destination::Refused(format!(
            "550 5.1.2 {domain}: no such domain (bad destination system)"
        )),
        Answer::Failed(e) => Destination::Later(format!(
            "451 4.4.3 {domain}: MX lookup failed: {e} (directory server failure)"
        )),
    }
}

/// The exchanges of `records` by preference, shuffled among equal preferences, each once; `None`
/// for a null MX (RFC 7505: one record, preference 0, exchange "."), and also when no record
/// names a host (every exchange is ".": nothing could take the mail).
fn order(mut records: Vec<Mx>, pick: &mut impl FnMut(usize) -> usize) -> Option<Vec<String>> {
    records.retain(|r| !r.exchange.is_empty());
    records.sort_by_key(|r| r.preference);
    let mut hosts: Vec<String> = Vec::with_capacity(records.len());
    for group in records.chunk_by_mut(|a, b| a.preference == b.preference) {
        // Fisher-Yates over the group.
        for i in (1..group.len()).rev() {
            group.swap(i, pick(i + 1).min(i));
        }
        for r in group.iter() {
            if !hosts.contains(&r.exchange) {
                hosts.push(r.exchange.clone());
            }
        }
    }
    (!hosts.is_empty()).then_some(hosts)
}

/// An index below `n` from the kernel's random source (0 if it fails: the order of the records
/// as they came, which is still a valid order).
pub fn random(n: usize) -> usize {
    let r = getrandom::u32().unwrap_or(0) as usize;
    r % n.max(1)
}

/// The IP address of an address-literal domain (`[192.0.2.1]`, `[IPv6:2001:db8::1]`), which is
/// delivered to without a lookup.
pub fn literal(domain: &str) -> Option<IpAddr> {
    let inner = domain.strip_prefix('[')?.strip_suffix(']')?;
    let ip = match inner.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("ipv6:") => inner[5..].parse().ok()?,
        _ => IpAddr::V4(inner.parse().ok()?),
    };
    Some(ip)
}

/// The resolver of one configuration, built on first use (a reload makes a new one; a broken
/// /etc/resolv.conf defers mail instead of stopping smtpd, and is read again on the next try).
pub struct Dns {
    nameservers: Vec<SocketAddr>,
    resolver: OnceCell<TokioResolver>,
}

impl Dns {
    pub fn new(config: &crate::config::Dns) -> Dns {
        Dns {
            nameservers: config.nameservers.clone(),
            resolver: OnceCell::new(),
        }
    }

    async fn resolver(&self) -> Result<&TokioResolver, String> {
        self.resolver
            .get_or_try_init(|| async { build(&self.nameservers) })
            .await
    }

    /// The MX records of `domain`.
    pub async fn mx(&self, domain: &str) -> Answer<Vec<Mx>> {
        let resolver = match self.resolver().await {
            Ok(r) => r,
            Err(e) => return Answer::Failed(e),
        };
        match resolver.mx_lookup(fqdn(domain)).await {
            Ok(lookup) => {
                let records: Vec<Mx> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(mx) => Some(Mx {
                            preference: mx.preference,
                            exchange: host_name(&mx.exchange.to_ascii()),
                        }),
                        _ => None,
                    })
                    .collect();
                if records.is_empty() {
                    Answer::NoRecords
                } else {
                    Answer::Found(records)
                }
            }
            Err(e) => negative(e),
        }
    }

    /// The A and AAAA addresses of `host`, IPv4 first.
    pub async fn addresses(&self, host: &str) -> Answer<Vec<IpAddr>> {
        let resolver = match self.resolver().await {
            Ok(r) => r,
            Err(e) => return Answer::Failed(e),
        };
        match resolver.lookup_ip(fqdn(host)).await {
            Ok(ips) => {
                let ips: Vec<IpAddr> = ips.iter().collect();
                if ips.is_empty() {
                    Answer::NoRecords
                } else {
                    Answer::Found(ips)
                }
            }
            Err(e) => negative(e),
        }
    }
}

/// A failed lookup as an [`Answer`].
fn negative<T>(e: NetError) -> Answer<T> {
    if e.is_nx_domain() {
        Answer::NoDomain
    } else if e.is_no_records_found() {
        Answer::NoRecords
    } else {
        Answer::Failed(e.to_string())
    }
}

/// `name.`, so no search domain of resolv.conf is tried.
fn fqdn(name: &str) -> String {
    if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    }
}

/// A DNS name as we write host names: lower-case, no final dot ("" for the root).
fn host_name(dns: &str) -> String {
    dns.trim_end_matches('.').to_ascii_lowercase()
}

fn build(nameservers: &[SocketAddr]) -> Result<TokioResolver, String> {
    let mut builder = if nameservers.is_empty() {
        TokioResolver::builder_tokio().map_err(|e| {
            format!(
                "451 4.4.3 cannot use the system's resolver configuration (/etc/resolv.conf): {e}"
            )
        })?
    } else {
        let servers = nameservers
            .iter()
            .map(|a| {
                let mut udp = ConnectionConfig::udp();
                udp.port = a.port();
                let mut tcp = ConnectionConfig::tcp();
                tcp.port = a.port();
                NameServerConfig::new(a.ip(), true, vec![udp, tcp])
            })
            .collect();
        TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(servers),
            TokioRuntimeProvider::default(),
        )
    };
    let options = builder.options_mut();
    // Every address of a host, as RFC 5321 5.1 asks; the DNS only, as Postfix's
    // smtp_host_lookup = dns (not /etc/hosts).
    options.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
    options.use_hosts_file = ResolveHosts::Never;
    builder
        .build()
        .map_err(|e| format!("451 4.4.3 cannot start the DNS resolver: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mx(preference: u16, exchange: &str) -> Mx {
        Mx {
            preference,
            exchange: exchange.into(),
        }
    }

    fn first(_: usize) -> usize {
        0
    }

    /// Sorted by preference; among equal ones every order comes out of the shuffle (and only
    /// those hosts, each once).
    #[test]
    fn ordered_by_preference_shuffled_among_equals() {
        let records = vec![
            mx(20, "c.test"),
            mx(10, "a.test"),
            mx(30, "d.test"),
            mx(10, "b.test"),
            mx(20, "c.test"),
        ];
        let Destination::Hosts(h) =
            destination("x.test", Answer::Found(records.clone()), &mut first)
        else {
            panic!("hosts");
        };
        assert_eq!(h.len(), 4, "{h:?}");
        assert!(h[..2].contains(&"a.test".to_string()), "{h:?}");
        assert!(h[..2].contains(&"b.test".to_string()), "{h:?}");
        assert_eq!(h[2..], ["c.test", "d.test"]);
        // The two ends of the shuffle give the two orders of the preference-10 pair.
        let mut seen = std::collections::BTreeSet::new();
        for mut pick in [(|_| 0) as fn(usize) -> usize, |k| k - 1] {
            if let Destination::Hosts(h) =
                destination("x.test", Answer::Found(records.clone()), &mut pick)
            {
                seen.insert(h[..2].to_vec());
            }
        }
        assert_eq!(seen.len(), 2, "both orders of the two preference-10 hosts");
        // Out-of-range picks do no harm.
        let Destination::Hosts(h) = destination("x.test", Answer::Found(records), &mut |k| k + 5)
        else {
            panic!("hosts");
        };
        assert_eq!(h.len(), 4);
    }

    /// RFC 7505: one MX of preference 0 with the root as exchange: refused at once with 5.1.10.
    /// A "." among real hosts is skipped; only "." hosts: no mail either.
    #[test]
    fn null_mx() {
        let null = destination("n.test", Answer::Found(vec![mx(0, "")]), &mut first);
        assert_eq!(
            null,
            Destination::Refused("556 5.1.10 n.test does not accept mail (null MX)".into())
        );
        let mixed = destination(
            "n.test",
            Answer::Found(vec![mx(0, ""), mx(10, "mx.n.test")]),
            &mut first,
        );
        assert_eq!(mixed, Destination::Hosts(vec!["mx.n.test".into()]));
        let only_dots = destination("n.test", Answer::Found(vec![mx(5, "")]), &mut first);
        assert!(
            matches!(only_dots, Destination::Refused(ref r) if r.contains("5.1.10")),
            "{only_dots:?}"
        );
    }

    /// No MX record: the domain is its own mail host. NXDOMAIN is permanent (5.1.2), a failed
    /// lookup transient (4.4.3).
    #[test]
    fn implicit_mx_and_lookup_failures() {
        assert_eq!(
            destination("a.test", Answer::NoRecords, &mut first),
            Destination::Hosts(vec!["a.test".into()])
        );
        let nx = destination("nx.test", Answer::NoDomain, &mut first);
        assert!(
            matches!(&nx, Destination::Refused(r) if r.starts_with("550 5.1.2 nx.test")),
            "{nx:?}"
        );
        let later = destination(
            "a.test",
            Answer::Failed("request timed out".into()),
            &mut first,
        );
        assert!(
            matches!(&later, Destination::Later(r) if r.starts_with("451 4.4.3 a.test: MX lookup failed: request timed out")),
            "{later:?}"
        );
    }

    #[test]
    fn names_and_literals() {
        assert_eq!(host_name("MX1.Far.TEST."), "mx1.far.test");
        assert_eq!(host_name("."), "");
        assert_eq!(fqdn("far.test"), "far.test.");
        assert_eq!(fqdn("far.test."), "far.test.");
        assert_eq!(literal("[127.0.0.1]"), Some("127.0.0.1".parse().unwrap()));
        assert_eq!(literal("[IPv6:::1]"), Some("::1".parse().unwrap()));
        assert_eq!(literal("[::1]"), None);
        assert_eq!(literal("far.test"), None);
        assert_eq!(literal("[300.0.0.1]"), None);
        for n in 1..5 {
            assert!(random(n) < n);
        }
    }
}
