//! Where and how `smtp-send` connects: the address, the EHLO name, TLS and AUTH as the flags ask,
//! and [`deliver`], one connection that greets, secures, authenticates and runs one transaction.
//! Shared by the scripted sender ([`super::script`]) and the menu ([`super::menu`]).

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use super::smtp::{self, Client, ClientError, LineHook, Outcome};
use crate::cli::smtp_send::MessageArgs;

/// The port when none is given: the bundled config's first SMTP listener, else the default one's.
pub fn default_port() -> u16 {
    let first = |listen: &[SocketAddr]| listen.first().map(|a| a.port()).filter(|&p| p != 0);
    crate::config::load(std::path::Path::new("config/smtpd.toml"))
        .ok()
        .and_then(|c| first(&c.smtp.listen))
        .or_else(|| first(&crate::config::Smtp::default().listen))
        .unwrap_or(25)
}

pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))
}

/// This host's name, for EHLO and the test message's sender ("localhost" when it has none).
pub fn local_name() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// The single-threaded runtime one send (or the menu's sends) run on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Where and how to connect.
pub struct Target<'a> {
    addr: SocketAddr,
    ehlo: &'a str,
    force_helo: bool,
    timeout: Duration,
    /// STARTTLS or implicit TLS, with the name the certificate must carry.
    tls: Option<TlsSetup>,
    auth: Option<(String, String)>,
}

/// TLS setup and credentials, from the flags.
type Security = (Option<TlsSetup>, Option<(String, String)>);

struct TlsSetup {
    implicit: bool,
    config: Arc<rustls::ClientConfig>,
    name: rustls_pki_types::ServerName<'static>,
}

/// TLS and AUTH settings from the flags (asks for the password when needed).
fn security(m: &MessageArgs, host: &str) -> Result<Security, String> {
    let tls = if m.starttls || m.tls {
        let config = crate::net::tls::client_config(m.cafile.as_deref(), m.insecure)?;
        let name = rustls_pki_types::ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host} is not a name TLS can check: {e}"))?;
        Some(TlsSetup {
            implicit: m.tls,
            config,
            name,
        })
    } else {
        None
    };
    let auth = match &m.auth {
        None => None,
        Some(user) => {
            let password = match std::env::var("SMTP_PASSWORD") {
                Ok(p) => p,
                Err(_) => rpassword::prompt_password(format!("Password for {user}: "))
                    .map_err(|e| format!("cannot read the password: {e}"))?,
            };
            Some((user.clone(), password))
        }
    };
    Ok((tls, auth))
}

/// The connection settings from the flags (asks for the AUTH password when needed).
pub fn target<'a>(
    m: &MessageArgs,
    addr: SocketAddr,
    ehlo: &'a str,
    host: &str,
) -> Result<Target<'a>, String> {
    let (tls, auth) = security(m, host)?;
    Ok(Target {
        addr,
        ehlo,
        force_helo: m.helo,
        timeout: Duration::from_secs(m.timeout),
        tls,
        auth,
    })
}

/// Connects, greets (EHLO, or HELO when asked or when EHLO is unknown), runs one transaction.
pub async fn deliver(
    t: &Target<'_>,
    from: &str,
    to: &[String],
    message: &[u8],
    hook: Option<LineHook>,
) -> Result<Outcome, ClientError> {
    let (ehlo, force_helo) = (t.ehlo, t.force_helo);
    let (mut c, greeting) = match &t.tls {
        Some(s) if s.implicit => {
            Client::connect_tls(t.addr, t.timeout, hook, s.config.clone(), s.name.clone()).await?
        }
        _ => Client::connect_with(t.addr, t.timeout, hook).await?,
    };
    let refused = Outcome::refused;
    if greeting.code != 220 {
        return Ok(refused(greeting));
    }
    let mut hello = if force_helo {
        c.command(&format!("HELO {ehlo}")).await?
    } else {
        c.hello(ehlo).await?
    };
    if !hello.is_positive() {
        let _ = c.command("QUIT").await;
        return Ok(refused(hello));
    }
    if let Some(s) = t.tls.as_ref().filter(|s| !s.implicit) {
        if !c.has("STARTTLS") {
            return Err(ClientError::Malformed(
                "the server does not offer STARTTLS".into(),
            ));
        }
        let r = c.command("STARTTLS").await?;
        if r.code != 220 {
            return Ok(refused(r));
        }
        c.start_tls(s.config.clone(), s.name.clone()).await?;
        hello = c.hello(ehlo).await?;
        if !hello.is_positive() {
            return Ok(refused(hello));
        }
    }
    if let Some((user, password)) = &t.auth {
        let r = c.authenticate(user, password).await?;
        if r.code != 235 {
            let _ = c.command("QUIT").await;
            return Ok(refused(r));
        }
    }
    let outcome = smtp::transaction(&mut c, from, to, message).await?;
    let _ = c.command("QUIT").await;
    Ok(outcome)
}
