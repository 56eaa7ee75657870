//! The HTTP listener (`[http] listen`): a JSON API over the Maildirs for tests and tools (list,
//! read, raw, delete, and a wait woken by the delivery itself), `/health`, `/metrics` and the
//! OpenAPI document, and mail client autoconfiguration. axum routes the requests; hyper's HTTP/1 server drives each connection the
//! daemon's accept loop hands over, with our limits (header timeout, head size, keep-alive).
//!
//! A layer: it uses `config`, `mailbox`, `net` (stats and watch events) and `proto` (address
//! rules), never `daemon`, `control` or `outbound`; what it needs of the daemon (the metrics text)
//! comes in as a closure.
//!
//! - [`id`]: message ids and cursors (what may name a file); [`query`]: the parameters.
//! - [`message`]: summaries and filters; [`detail`]: the parsed message, its parts, links and
//!   codes ([`extract`] finds those in text); [`select`]: the scans behind them.
//! - `autoconfig`: the mail client configuration document.
//! - [`access`]: who is asking (loopback, token, account) and which mailboxes they see.
//! - `routes`: the router and the small routes; `messages`: the message routes;
//!   `wait`: the server-side wait; `events`: the server-sent events; [`web`]: the HTML pages of the web view.

pub mod access;
mod autoconfig;
pub mod detail;
mod events;
pub mod extract;
pub mod id;
pub mod message;
mod messages;
pub mod query;
mod routes;
pub mod select;
pub mod wait;
pub mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

use crate::auth::accounts::Accounts;
use crate::config::Config;
use crate::net::stats::Stats;

pub use routes::ROUTES;

/// What every HTTP connection of one config generation shares.
pub struct HttpContext {
    /// `[mailboxes] root`.
    pub root: PathBuf,
    /// Bearer token for non-loopback peers; empty: loopback peers only.
    pub token: String,
    pub max_wait: Duration,
    pub max_waiters: usize,
    pub header_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_event_streams: usize,
    pub event_keepalive: Duration,
    /// The daemon's counters; `watch` carries the delivery events a wait wakes on.
    pub stats: Arc<Stats>,
    /// `hostname`: a name loopback peers may use in `Host:` (besides localhost and addresses).
    pub hostname: String,
    /// `[mailboxes] domains`, for autoconfig.
    pub domains: Vec<String>,
    /// Whether `[tls]` is configured (STARTTLS offered), for autoconfig.
    pub tls: bool,
    /// A message is read (to be parsed) up to this many octets: `[limits] max_message_bytes`
    /// and room for the headers smtpd adds.
    pub read_max: usize,
    /// `[http] tls = true`: each connection starts with a TLS handshake under this.
    pub https: Option<Arc<rustls::ServerConfig>>,
    /// The accounts Basic credentials are checked against (over HTTPS only).
    pub accounts: Arc<Accounts>,
    /// `[http] admins`, lower-cased.
    pub admins: Vec<String>,
    /// Wrong Basic credentials are answered after this (`[pop3] auth_failure_delay_ms`, as
    /// for SMTP AUTH and POP3), so guessing passwords is slow.
    pub auth_failure_delay: Duration,
}

impl HttpContext {
    /// `tls`: the `[tls]` certificate's server config, when there is one (used when
    /// `[http] tls = true`).
    pub fn new(
        config: &Config,
        stats: Arc<Stats>,
        accounts: Arc<Accounts>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> HttpContext {
        let h = &config.http;
        HttpContext {
            root: config.mailboxes.root.clone(),
            token: h.token.clone(),
            max_wait: Duration::from_secs(h.max_wait_secs),
            max_waiters: h.max_waiters,
            header_timeout: Duration::from_secs(h.header_timeout_secs),
            max_header_bytes: h.max_header_bytes,
            max_event_streams: h.max_event_streams,
            event_keepalive: Duration::from_secs(h.event_keepalive_secs),
            stats,
            hostname: config.hostname.to_ascii_lowercase(),
            domains: config.mailboxes.domains.clone(),
            tls: config.tls.is_some(),
            read_max: usize::try_from(config.limits.max_message_bytes)
                .unwrap_or(usize::MAX)
                .saturating_add(message::HEAD_BYTES),
            https: tls.filter(|_| h.tls),
            accounts,
            admins: h.admins.clone(),
            auth_failure_delay: Duration::from_millis(config.pop3.auth_failure_delay_ms),
        }
    }
}

/// What outlives a config generation, given by the daemon.
pub struct HttpShared {
    /// The Prometheus text of `smtpctl metrics`.
    pub metrics: Box<dyn Fn() -> String + Send + Sync>,
    /// The serving listeners and their bound addresses.
    pub listeners: Box<dyn Fn() -> Vec<(crate::net::Protocol, SocketAddr)> + Send + Sync>,
    /// Waits in progress, across listeners and reloads.
    pub waiters: Arc<Waiters>,
    /// Event streams open, likewise.
    pub streams: Arc<Waiters>,
    /// Fires at shutdown: waits answer 503, connections close after their response.
    pub shutdown: CancellationToken,
    /// `smtpctl drain`: `/health` answers 503 `draining` (everything else is served as usual).
    pub draining: Arc<std::sync::atomic::AtomicBool>,
    /// The ACME HTTP-01 answers in flight (`/.well-known/acme-challenge/{token}`).
    pub challenges: Arc<crate::acme::Challenges>,
}

/// A count of waits (or event streams) in progress, bounded by the limit of the generation each
/// starts under (an atomic count, so a reload's new limit applies at once).
#[derive(Debug, Default)]
pub struct Waiters {
    active: AtomicUsize,
}

/// One wait's place; given back when dropped.
pub struct WaitSlot(Arc<Waiters>);

impl Waiters {
    /// A place if fewer than `max` waits are in progress.
    pub fn try_acquire(self: &Arc<Self>, max: usize) -> Option<WaitSlot> {
        self.active
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| WaitSlot(Arc::clone(self)))
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Acquire)
    }
}

impl Drop for WaitSlot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Loopback peers are served without a token (IPv4-mapped loopback too).
/// Whether a loopback peer's `Host:` names this machine: `localhost` (or a name under
/// `.localhost`), an address literal, or our hostname. A browser on this host that a web page
/// points at 127.0.0.1 through a name of the page's own (DNS rebinding) sends that name, and is
/// refused; a missing Host (HTTP/1.0 tools) is allowed.
pub fn host_is_local(host: Option<&str>, hostname: &str) -> bool {
    let Some(host) = host else {
        return true;
    };
    let host = host.trim().to_ascii_lowercase();
    // Without the port: "[::1]:8025", "127.0.0.1:8025", "localhost:8025".
    let name = match host.strip_prefix('[') {
        Some(rest) => match rest.split_once(']') {
            Some((v6, _)) => return v6.parse::<std::net::Ipv6Addr>().is_ok(),
            None => return false,
        },
        None => host.rsplit_once(':').map(|(h, _)| h).unwrap_or(&host),
    };
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::Ipv4Addr>().is_ok()
        || (!hostname.is_empty() && name == hostname)
}

pub fn is_loopback(peer: &SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Serves one connection until the client closes it, a head times out or is too large, or
/// shutdown (after the response in progress). Under `[http] tls = true` the TLS handshake comes
/// first, within the header timeout.
pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Arc<HttpContext>,
    shared: Arc<HttpShared>,
) {
    match ctx.https.clone() {
        None => serve_io(tcp, peer, false, ctx, shared).await,
        Some(config) => {
            let handshake = crate::net::tls::accept(tcp, config);
            match tokio::time::timeout(ctx.header_timeout, handshake).await {
                Ok(Ok(tls)) => serve_io(tls, peer, true, ctx, shared).await,
                Ok(Err(e)) => match crate::acme::alpn::Handled::of(&e) {
                    Some(acme) => info!(peer = %peer, "https: {acme}"),
                    None => debug!(peer = %peer, error = %e, "https handshake failed"),
                },
                Err(_) => debug!(peer = %peer, "https handshake timed out"),
            }
        }
    }
}

async fn serve_io<I>(
    io: I,
    peer: SocketAddr,
    tls: bool,
    ctx: Arc<HttpContext>,
    shared: Arc<HttpShared>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(ctx.header_timeout)
        .max_header_size(ctx.max_header_bytes)
        // hyper's floor for its read buffer is 8 KiB; heads are bounded by max_header_size.
        .max_buf_size(ctx.max_header_bytes.max(8192));
    let shutdown = shared.shutdown.clone();
    let app = Arc::new(routes::App {
        ctx,
        shared,
        peer,
        tls,
    });
    let service = TowerToHyperService::new(routes::router(app));
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = shutdown.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        debug!(peer = %peer, error = %e, "http connection ended");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiters_are_bounded_and_given_back() {
        let w = Arc::new(Waiters::default());
        let a = w.try_acquire(2).unwrap();
        let b = w.try_acquire(2).unwrap();
        assert!(w.try_acquire(2).is_none());
        assert_eq!(w.active(), 2);
        drop(a);
        let c = w.try_acquire(2).unwrap();
        assert!(w.try_acquire(3).is_some(), "a larger limit applies at once");
        drop((b, c));
        assert_eq!(w.active(), 0);
    }

    #[test]
    fn loopback_peers() {
        for (addr, want) in [
            ("127.0.0.1:1", true),
            ("127.8.9.1:1", true),
            ("[::1]:1", true),
            ("[::ffff:127.0.0.1]:1", true),
            ("10.254.77.1:1", false),
            ("[::ffff:10.0.0.1]:1", false),
            ("[2001:db8::1]:1", false),
        ] {
            assert_eq!(is_loopback(&addr.parse().unwrap()), want, "{addr}");
        }
    }

    /// DNS rebinding: a loopback peer's Host must name this machine.
    #[test]
    fn host_names_this_machine() {
        let ok = [
            None,
            Some("127.0.0.1:8025"),
            Some("localhost"),
            Some("LOCALHOST:8025"),
            Some("app.localhost:8025"),
            Some("[::1]:8025"),
            Some("10.0.0.5:8025"),
            Some("mx.example.test:8025"),
        ];
        for h in ok {
            assert!(host_is_local(h, "mx.example.test"), "{h:?}");
        }
        let refused = [
            Some("attacker.example:8025"),
            Some("localhost.attacker.example"),
            Some("[not-an-address]:1"),
            Some("[::1"),
            Some("mx.example.test.evil:8025"),
            Some("\u{0}"),
        ];
        for h in refused {
            assert!(!host_is_local(h, "mx.example.test"), "{h:?}");
        }
    }
}
