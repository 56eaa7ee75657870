//! One delivery to a next hop: a route for the domain, the smarthost, or (neither) the domain's
//! MX hosts, tried in order until one answers. Connects (the system's resolver for the names of
//! routes and the smarthost, [`super::mx::Dns`] for MX hosts), speaks TLS as `[relay]` asks
//! (opportunistic STARTTLS for routes and MX hosts, verified STARTTLS or implicit TLS for the
//! smarthost), logs in to the smarthost with its credentials file, and runs one transaction with
//! our SMTP client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::OutboundConfig;
use super::mx::{self, Answer, Destination};
use super::pool::{Connections, Key};
use crate::client::smtp::{Client, ClientError, Mail, Outcome, Reply};
use crate::config::{RelayTls, SmarthostTls};

/// How long one step of a remote dialogue may take.
const STEP: Duration = Duration::from_secs(60);

/// Where a group of recipients is sent.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Hop {
    /// `[relay] routes`: `host:port`.
    Route(String),
    /// `[relay] smarthost`.
    Smarthost(String),
    /// Direct delivery to the MX hosts of this domain (lower-cased).
    Mx(String),
}

impl Hop {
    /// A route for `domain`, else the smarthost, else direct delivery.
    pub fn for_domain(cfg: &OutboundConfig, domain: &str) -> Hop {
        if let Some(r) = cfg.relay.routes.get(domain) {
            return Hop::Route(r.clone());
        }
        if !cfg.relay.smarthost.is_empty() {
            return Hop::Smarthost(cfg.relay.smarthost.clone());
        }
        Hop::Mx(domain.to_ascii_lowercase())
    }
}

/// How a delivery to a next hop ended.
#[derive(Debug)]
pub enum Sent {
    /// A mail host answered: `by` is its name (Remote-MTA in a bounce); `took_dsn`: it offered
    /// DSN, so it was given the DSN requests (and reports success itself).
    Answered {
        outcome: Outcome,
        by: String,
        took_dsn: bool,
    },
    /// Nothing answered: every recipient is tried again later.
    Deferred(String),
    /// The destination takes no mail (null MX, no such domain): every recipient fails.
    Failed(String),
}

impl Hop {
    /// The destination its concurrency limit counts: the next hop's address, or the domain.
    pub fn destination(&self) -> &str {
        match self {
            Hop::Route(a) | Hop::Smarthost(a) | Hop::Mx(a) => a,
        }
    }
}

/// Delivers `mail` through `hop`, on a cached session with the peer when there is one.
pub async fn send(
    cfg: &OutboundConfig,
    conns: &Arc<Connections>,
    hop: &Hop,
    mail: &Mail<'_>,
) -> Sent {
    let (address, smarthost) = match hop {
        Hop::Mx(domain) => return send_mx(cfg, conns, domain, mail).await,
        Hop::Route(a) => (a, false),
        Hop::Smarthost(a) => (a, true),
    };
    let addr = match resolve(address).await {
        Ok(a) => a,
        Err(e) => return Sent::Deferred(e),
    };
    let host = address
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or("");
    let (tls, verify) = if smarthost {
        match cfg.relay.smarthost_tls {
            SmarthostTls::Starttls => (Tls::StarttlsRequired, true),
            SmarthostTls::Tls => (Tls::Implicit, true),
            SmarthostTls::None => (Tls::No, false),
        }
    } else {
        (Tls::Starttls, cfg.relay.tls == RelayTls::Required)
    };
    let peer = Peer {
        addr,
        name: host,
        label: address.clone(),
        tls,
        verify,
        auth: smarthost && !cfg.relay.smarthost_auth_file.is_empty(),
    };
    let by = address.clone();
    match session(cfg, conns, &peer).await {
        Ok(c) => match transact(cfg, conns, c, &peer, mail).await {
            Ok((outcome, took_dsn)) => Sent::Answered {
                outcome,
                by,
                took_dsn,
            },
            Err(e) => Sent::Deferred(e),
        },
        Err(Early::Refused(r)) => Sent::Answered {
            outcome: Outcome::refused(r),
            by,
            took_dsn: false,
        },
        Err(Early::Failed(e)) => Sent::Deferred(e),
    }
}

/// Direct delivery (RFC 5321 5.1): the MX hosts of `domain` in order (or the domain itself, or
/// the address of an address literal), each host's addresses in turn, on `[relay] mx_port`. A
/// host that cannot be reached, or answers 4xx before the transaction, passes the turn to the
/// next; the first one that takes the transaction (or refuses it with a 5xx) decides.
async fn send_mx(
    cfg: &OutboundConfig,
    conns: &Arc<Connections>,
    domain: &str,
    mail: &Mail<'_>,
) -> Sent {
    let literal = mx::literal(domain);
    let mut implicit = false;
    let hosts = match literal {
        Some(ip) => vec![ip.to_string()],
        None => {
            let answer = cfg.dns.mx(domain).await;
            implicit = answer == Answer::NoRecords;
            match mx::destination(domain, answer, &mut mx::random) {
                Destination::Hosts(names) => names,
                Destination::Refused(why) => {
                    warn!(domain, "direct delivery: {why}");
                    return Sent::Failed(why);
                }
                Destination::Later(why) => {
                    warn!(domain, "direct delivery: {why}");
                    return Sent::Deferred(why);
                }
            }
        }
    };
    // Remote-MTA: the MX host's name, or the address an address literal named.
    let remote_mta = |host: &str, addr: SocketAddr| match literal {
        Some(_) => addr.to_string(),
        None => host.to_string(),
    };
    let tls = Tls::Starttls;
    let verify = cfg.relay.tls == RelayTls::Required;
    let mut last: Option<String> = None;
    let mut transient = false;
    for host in &hosts {
        // Each host's addresses when its turn comes.
        let addresses = match literal {
            Some(ip) => Answer::Found(vec![ip]),
            None => cfg.dns.addresses(host).await,
        };
        let ips = match addresses {
            Answer::Found(ips) => ips,
            // The implicit MX of a name without an address: the domain takes no mail.
            Answer::NoRecords | Answer::NoDomain if implicit => {
                let why = format!(
                    "550 5.1.2 {domain}: no MX and no address record (bad destination system)"
                );
                warn!(domain, "direct delivery: {why}");
                return Sent::Failed(why);
            }
            Answer::NoRecords | Answer::NoDomain => {
                let why = format!("{host}: no address record");
                warn!(domain, mx = %host, "direct delivery: {why}; trying the next MX host");
                last = Some(why);
                continue;
            }
            Answer::Failed(e) => {
                let why = format!("451 4.4.3 {host}: address lookup failed: {e}");
                warn!(domain, mx = %host, "direct delivery: {why}; trying the next MX host");
                last = Some(why);
                transient = true;
                continue;
            }
        };
        for ip in ips {
            let addr = SocketAddr::new(ip, cfg.relay.mx_port);
            let peer = Peer {
                addr,
                name: host,
                label: format!("{host} [{addr}]"),
                tls,
                verify,
                auth: false,
            };
            match session(cfg, conns, &peer).await {
                Ok(c) => {
                    info!(domain, mx = %host, address = %addr, "direct delivery: connected to MX {host} ({addr})");
                    return match transact(cfg, conns, c, &peer, mail).await {
                        Ok((outcome, took_dsn)) => Sent::Answered {
                            outcome,
                            by: remote_mta(host, addr),
                            took_dsn,
                        },
                        Err(e) => Sent::Deferred(e),
                    };
                }
                Err(Early::Refused(r)) if (500..600).contains(&r.code) => {
                    let said = r.to_string().replace('\n', " ");
                    warn!(domain, mx = %host, address = %addr, "direct delivery: MX {host} ({addr}) refused: {said}");
                    return Sent::Answered {
                        outcome: Outcome::refused(r),
                        by: remote_mta(host, addr),
                        took_dsn: false,
                    };
                }
                Err(early) => {
                    let why = match early {
                        Early::Refused(r) => {
                            format!("{}: {}", peer.label, r.to_string().replace('\n', " "))
                        }
                        Early::Failed(e) => format!("4.4.1 {e}"),
                    };
                    warn!(domain, mx = %host, address = %addr, "direct delivery: MX {host} ({addr}) failed: {why}; trying the next");
                    last = Some(why);
                    transient = true;
                }
            }
        }
    }
    let last = last.unwrap_or_else(|| format!("{domain}: no mail host"));
    if transient {
        Sent::Deferred(last)
    } else {
        // Every mail host named has no address.
        Sent::Failed(format!(
            "550 5.4.4 {domain}: no MX host has an address (last: {last})"
        ))
    }
}

/// One mail host, as connected to.
struct Peer<'a> {
    addr: SocketAddr,
    /// Its name (for TLS).
    name: &'a str,
    /// How errors name it.
    label: String,
    tls: Tls,
    verify: bool,
    /// Log in with `[relay] smarthost_auth_file`.
    auth: bool,
}

impl Peer<'_> {
    fn key(&self) -> Key {
        Key {
            addr: self.addr,
            name: self.name.to_string(),
            tls: self.tls as u8,
            verify: self.verify,
            auth: self.auth,
        }
    }
}

/// Why a dialogue ended before the transaction.
enum Early {
    /// The peer refused (greeting, EHLO, STARTTLS, AUTH).
    Refused(Reply),
    /// No dialogue: connection, TLS or I/O failure, or STARTTLS required and not offered.
    Failed(String),
}

/// Connects to `p` and goes as far as MAIL: greeting, EHLO, STARTTLS and AUTH as asked.
async fn open(cfg: &OutboundConfig, p: &Peer<'_>) -> Result<Client, Early> {
    let name = rustls_pki_types::ServerName::try_from(p.name.to_string())
        .map_err(|e| Early::Failed(format!("{}: {e}", p.name)))?;
    let cafile = (!cfg.relay.cafile.is_empty()).then(|| std::path::Path::new(&cfg.relay.cafile));
    let tls_config = || {
        crate::net::tls::client_config(cafile.filter(|_| p.verify), !p.verify)
            .map_err(Early::Failed)
    };
    let failed = |e: ClientError| Early::Failed(format!("{}: {e}", p.label));
    let (mut c, greeting) = match p.tls {
        Tls::Implicit => {
            let tc = tls_config()?;
            Client::connect_tls(p.addr, STEP, None, tc, name.clone())
                .await
                .map_err(failed)?
        }
        _ => Client::connect(p.addr, STEP).await.map_err(failed)?,
    };
    if greeting.code != 220 {
        return Err(Early::Refused(greeting));
    }
    let hello = c.hello(&cfg.hostname).await.map_err(failed)?;
    if !hello.is_positive() {
        return Err(Early::Refused(hello));
    }
    let wants_starttls = match p.tls {
        Tls::Starttls => c.has("STARTTLS") || p.verify,
        Tls::StarttlsRequired => true,
        Tls::Implicit | Tls::No => false,
    };
    if wants_starttls {
        if !c.has("STARTTLS") {
            return Err(Early::Failed(format!(
                "{}: STARTTLS is required but not offered",
                p.label
            )));
        }
        let r = c.command("STARTTLS").await.map_err(failed)?;
        if r.code != 220 {
            return Err(Early::Refused(r));
        }
        c.start_tls(tls_config()?, name).await.map_err(failed)?;
        let hello = c.hello(&cfg.hostname).await.map_err(failed)?;
        if !hello.is_positive() {
            return Err(Early::Refused(hello));
        }
    }
    if p.auth {
        let (user, password) = credentials(&cfg.relay.smarthost_auth_file)
            .await
            .map_err(Early::Failed)?;
        let r = c.authenticate(&user, &password).await.map_err(failed)?;
        if !r.is_positive() {
            return Err(Early::Refused(r));
        }
    }
    Ok(c)
}

/// A cached session with `p` that still answers, else a new one.
async fn session(
    cfg: &OutboundConfig,
    conns: &Arc<Connections>,
    p: &Peer<'_>,
) -> Result<Client, Early> {
    let ttl = Duration::from_secs(cfg.relay.connection_cache_secs);
    if !ttl.is_zero()
        && let Some(c) = conns.take(&p.key(), ttl).await
    {
        return Ok(c);
    }
    let c = open(cfg, p).await?;
    conns.opened();
    Ok(c)
}

/// One transaction on an open dialogue, and whether the peer took DSN requests. A session
/// that ended it cleanly is kept for the next message to the same peer (or closed with QUIT);
/// one that failed is dropped.
async fn transact(
    cfg: &OutboundConfig,
    conns: &Arc<Connections>,
    mut c: Client,
    p: &Peer<'_>,
    mail: &Mail<'_>,
) -> Result<(Outcome, bool), String> {
    let label = &p.label;
    let outcome = crate::client::smtp::transaction_mail(&mut c, mail).await;
    let took_dsn = c.has("DSN");
    if matches!(outcome, Ok(_) | Err(ClientError::TooBig { .. })) {
        let ttl = Duration::from_secs(cfg.relay.connection_cache_secs);
        conns.put(p.key(), c, ttl);
    }
    match outcome {
        Ok(o) => Ok((o, took_dsn)),
        Err(ClientError::TooBig { size, max }) => Ok((
            Outcome::refused(Reply {
                code: 552,
                lines: vec![format!(
                    "5.3.4 the message ({size} octets) is over {label}'s SIZE limit ({max})"
                )],
            }),
            false,
        )),
        Err(e) => Err(format!("{label}: {e}")),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tls {
    /// STARTTLS when offered (required when the certificate is to be verified).
    Starttls,
    StarttlsRequired,
    Implicit,
    No,
}

/// `host:port` to the first address it resolves to (the system's resolver for names).
async fn resolve(hop: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = hop.parse::<SocketAddr>() {
        return Ok(a);
    }
    tokio::net::lookup_host(hop)
        .await
        .map_err(|e| format!("{hop}: cannot resolve: {e}"))?
        .next()
        .ok_or_else(|| format!("{hop}: no address"))
}

/// `user:password` from the smarthost's credentials file (read at each connection, so a change
/// needs no reload).
async fn credentials(path: &str) -> Result<(String, String), String> {
    let p = path.to_string();
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(p))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("[relay] smarthost_auth_file {path}: {e}"))?;
    let line = text.lines().next().unwrap_or("").trim_end();
    line.split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .ok_or_else(|| format!("[relay] smarthost_auth_file {path}: expected user:password"))
}
