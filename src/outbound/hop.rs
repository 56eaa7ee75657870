//! One SMTP dialogue with a next hop: a route for the domain, or the smarthost. Connects (the
//! system's resolver for names), speaks TLS as `[relay]` asks (opportunistic STARTTLS for
//! routes, verified STARTTLS or implicit TLS for the smarthost), logs in to the smarthost with
//! its credentials file, and runs one transaction with our SMTP client.

use std::net::SocketAddr;
use std::time::Duration;

use super::OutboundConfig;
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
}

impl Hop {
    pub fn for_domain(cfg: &OutboundConfig, domain: &str) -> Option<Hop> {
        if let Some(r) = cfg.relay.routes.get(domain) {
            return Some(Hop::Route(r.clone()));
        }
        (!cfg.relay.smarthost.is_empty()).then(|| Hop::Smarthost(cfg.relay.smarthost.clone()))
    }

    pub fn address(&self) -> &str {
        match self {
            Hop::Route(a) | Hop::Smarthost(a) => a,
        }
    }
}

/// What a next hop answered.
pub struct Sent {
    pub outcome: Outcome,
    /// It offered DSN, so it was given the DSN requests (and reports success itself).
    pub took_dsn: bool,
}

/// One SMTP dialogue with `hop` for `mail`.
pub async fn send(cfg: &OutboundConfig, hop: &Hop, mail: &Mail<'_>) -> Result<Sent, String> {
    dialogue(cfg, hop, mail)
        .await
        .map(|(outcome, took_dsn)| Sent { outcome, took_dsn })
}

async fn dialogue(
    cfg: &OutboundConfig,
    hop: &Hop,
    mail: &Mail<'_>,
) -> Result<(Outcome, bool), String> {
    let addr = resolve(hop.address()).await?;
    let host = hop
        .address()
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or("");
    let name = rustls_pki_types::ServerName::try_from(host.to_string())
        .map_err(|e| format!("{host}: {e}"))?;
    let (tls, verify) = match hop {
        Hop::Route(_) => (Tls::Starttls, cfg.relay.tls == RelayTls::Required),
        Hop::Smarthost(_) => match cfg.relay.smarthost_tls {
            SmarthostTls::Starttls => (Tls::StarttlsRequired, true),
            SmarthostTls::Tls => (Tls::Implicit, true),
            SmarthostTls::None => (Tls::No, false),
        },
    };
    let cafile = (!cfg.relay.cafile.is_empty()).then(|| std::path::Path::new(&cfg.relay.cafile));
    let tls_config = || crate::net::tls::client_config(cafile.filter(|_| verify), !verify);
    let failed = |e: ClientError| format!("{}: {e}", hop.address());
    let (mut c, greeting) = match tls {
        Tls::Implicit => {
            let tc = tls_config()?;
            Client::connect_tls(addr, STEP, None, tc, name.clone())
                .await
                .map_err(failed)?
        }
        _ => Client::connect(addr, STEP).await.map_err(failed)?,
    };
    if greeting.code != 220 {
        return Ok((stopped(greeting), false));
    }
    let hello = c.hello(&cfg.hostname).await.map_err(failed)?;
    if !hello.is_positive() {
        return Ok((stopped(hello), false));
    }
    let wants_starttls = match tls {
        Tls::Starttls => c.has("STARTTLS") || verify,
        Tls::StarttlsRequired => true,
        Tls::Implicit | Tls::No => false,
    };
    if wants_starttls {
        if !c.has("STARTTLS") {
            return Err(format!(
                "{}: STARTTLS is required but not offered",
                hop.address()
            ));
        }
        let r = c.command("STARTTLS").await.map_err(failed)?;
        if r.code != 220 {
            return Ok((stopped(r), false));
        }
        c.start_tls(tls_config()?, name).await.map_err(failed)?;
        let hello = c.hello(&cfg.hostname).await.map_err(failed)?;
        if !hello.is_positive() {
            return Ok((stopped(hello), false));
        }
    }
    if let Hop::Smarthost(_) = hop
        && !cfg.relay.smarthost_auth_file.is_empty()
    {
        let (user, password) = credentials(&cfg.relay.smarthost_auth_file).await?;
        let r = c.auth_plain(&user, &password).await.map_err(failed)?;
        if !r.is_positive() {
            return Ok((stopped(r), false));
        }
    }
    let outcome = crate::client::smtp::transaction_mail(&mut c, mail).await;
    let took_dsn = c.has("DSN");
    let _ = c.command("QUIT").await;
    match outcome {
        Ok(o) => Ok((o, took_dsn)),
        Err(ClientError::TooBig { size, max }) => Ok((
            stopped(Reply {
                code: 552,
                lines: vec![format!(
                    "5.3.4 the message ({size} octets) is over {}'s SIZE limit ({max})",
                    hop.address()
                )],
            }),
            false,
        )),
        Err(e) => Err(failed(e)),
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

/// A refusal before any recipient: the same for all.
fn stopped(reply: Reply) -> Outcome {
    Outcome {
        accepted: Vec::new(),
        rejected: Vec::new(),
        reply,
        delivered: false,
    }
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
