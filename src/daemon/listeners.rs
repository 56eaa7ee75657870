//! The daemon's listening sockets: bound before privileges are dropped (and on reload, all or
//! nothing), each with its accept loop and the admission rules (pause, connection limits).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::generation::Generation;
use super::shared::Shared;
use crate::config::Config;
use crate::control::proto::ListenerInfo;
use crate::http::{self, HttpShared};
use crate::net::Protocol;
use crate::net::stats;
use crate::net::{imap_conn, listener, pop3_conn, smtp_conn};
use crate::proto::smtp::Reply;
use crate::proto::smtp::reply::canned;

/// A socket bound for `protocol` at `configured`, not yet serving.
pub struct Unstarted {
    pub protocol: Protocol,
    pub configured: SocketAddr,
    socket: std::net::TcpListener,
}

/// One serving listener and the token that stops its accept loop.
pub struct Bound {
    pub protocol: Protocol,
    pub configured: SocketAddr,
    pub local: SocketAddr,
    stop: CancellationToken,
}

impl Bound {
    /// Stops accepting; the sessions it started go on.
    pub fn stop(self) {
        info!(protocol = %self.protocol, address = %self.local, "listener removed; its sessions continue");
        self.stop.cancel();
    }
}

/// Every (protocol, address) a config listens on.
pub fn wanted(c: &Config) -> Vec<(Protocol, SocketAddr)> {
    let mut w = Vec::new();
    w.extend(c.smtp.listen.iter().map(|a| (Protocol::Smtp, *a)));
    w.extend(c.smtp.submission.iter().map(|a| (Protocol::Submission, *a)));
    w.extend(
        c.smtp
            .submissions
            .iter()
            .map(|a| (Protocol::Submissions, *a)),
    );
    w.extend(c.pop3.listen.iter().map(|a| (Protocol::Pop3, *a)));
    w.extend(c.pop3.pop3s.iter().map(|a| (Protocol::Pop3s, *a)));
    w.extend(c.imap.listen.iter().map(|a| (Protocol::Imap, *a)));
    w.extend(c.imap.imaps.iter().map(|a| (Protocol::Imaps, *a)));
    w.extend(c.http.listen.iter().map(|a| (Protocol::Http, *a)));
    w
}

/// Binds `addr` (non-blocking, for tokio).
pub fn bind(protocol: &str, addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} ({protocol})"))?;
    l.set_nonblocking(true)
        .with_context(|| format!("cannot listen on {addr} ({protocol})"))?;
    Ok(l)
}

/// Binds every address in `want`, or none.
pub fn bind_all(want: &[(Protocol, SocketAddr)]) -> anyhow::Result<Vec<Unstarted>> {
    want.iter()
        .map(|&(protocol, configured)| {
            Ok(Unstarted {
                protocol,
                configured,
                socket: bind(protocol.as_str(), configured)?,
            })
        })
        .collect()
}

/// What `status` shows of the serving set.
pub fn publish(shared: &Shared, set: &[Bound]) {
    shared.publish_listeners(
        set.iter()
            .map(|b| ListenerInfo {
                protocol: b.protocol,
                address: b.local.to_string(),
            })
            .collect(),
    );
}

/// A connection slot under the current limits, or `None` (counted as refused).
fn slot(sh: &Shared, g: &Generation, peer: SocketAddr) -> Option<crate::net::limiter::ConnGuard> {
    let limits = &g.config.limits;
    let guard = sh
        .limiter
        .try_acquire(
            peer.ip(),
            limits.max_connections,
            limits.max_connections_per_ip,
        )
        .ok();
    if guard.is_none() {
        stats::add(&sh.stats.refused, 1);
    }
    guard
}

/// Starts the accept loop of a bound socket. Each session runs under the generation current
/// when it was accepted.
pub fn start(shared: &Arc<Shared>, u: Unstarted) -> anyhow::Result<Bound> {
    let Unstarted {
        protocol,
        configured,
        socket,
    } = u;
    let l = TcpListener::from_std(socket)
        .with_context(|| format!("cannot listen on {configured} ({protocol})"))?;
    let local = l
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {configured}"))?;
    let stop = shared.shutdown.child_token();
    let tracker = shared.tracker.clone();
    let sh = Arc::clone(shared);
    // What HTTP connections take from the daemon: the metrics text, the bound listeners (for
    // autoconfig), the wait count, shutdown.
    let http_shared = Arc::new(HttpShared {
        metrics: Box::new({
            let sh = Arc::clone(shared);
            move || super::metrics::text(&sh)
        }),
        listeners: Box::new({
            let sh = Arc::clone(shared);
            move || sh.bound_listeners()
        }),
        waiters: Arc::clone(&shared.http_waiters),
        streams: Arc::clone(&shared.http_streams),
        shutdown: shared.shutdown.clone(),
        draining: Arc::clone(&shared.draining),
        challenges: Arc::clone(&shared.acme.challenges),
    });
    let admit = move |peer: SocketAddr| {
        let g = sh.current();
        let host = &g.config.hostname;
        if protocol.is_smtp() && sh.paused() {
            stats::add(&sh.stats.refused, 1);
            let why = format!("{host} Service paused, try again later");
            return Err(Reply::new(421, "4.3.2", why).to_bytes());
        }
        let Some(guard) = slot(&sh, &g, peer) else {
            return Err(match protocol {
                Protocol::Http => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\nRetry-After: 1\r\n\r\n".to_vec(),
                p if p.is_smtp() => canned::too_many_connections(host).to_bytes(),
                Protocol::Imap | Protocol::Imaps => b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n".to_vec(),
                _ => b"-ERR [SYS/TEMP] Too many connections, try again later\r\n".to_vec(),
            });
        };
        let stop = sh.shutdown.clone();
        let http_shared = Arc::clone(&http_shared);
        Ok(move |stream| async move {
            match protocol {
                Protocol::Http => {
                    http::serve(stream, peer, Arc::clone(&g.http), http_shared).await;
                }
                p if p.is_smtp() => {
                    let ctx = Arc::clone(&g.smtp);
                    smtp_conn::serve(stream, peer, ctx, protocol, stop).await;
                }
                Protocol::Imap | Protocol::Imaps => {
                    let ctx = Arc::clone(&g.imap);
                    imap_conn::serve(stream, peer, ctx, protocol, stop).await;
                }
                _ => {
                    let ctx = Arc::clone(&g.pop3);
                    pop3_conn::serve(stream, peer, ctx, protocol, stop).await;
                }
            }
            drop(guard);
        })
    };
    let sh = Arc::clone(shared);
    let proxied = move |peer: SocketAddr| {
        let g = sh.current();
        let server = &g.config.server;
        let ip = peer.ip().to_canonical();
        server
            .proxy_from
            .iter()
            .any(|n| n.contains(&ip))
            .then(|| Duration::from_secs(server.proxy_timeout_secs))
    };
    tracker.spawn(listener::run(
        l,
        protocol,
        stop.clone(),
        tracker.clone(),
        admit,
        proxied,
    ));
    info!(protocol = %protocol, address = %local, "listening on {protocol} {local}");
    Ok(Bound {
        protocol,
        configured,
        local,
        stop,
    })
}

/// What a new config does to the serving set: which listeners stay (by index) and which
/// addresses are new. Compared as multisets: two "127.0.0.1:0" listeners are two listeners.
pub fn plan(set: &[Bound], new: &Config) -> (Vec<bool>, Vec<(Protocol, SocketAddr)>) {
    let mut keep = vec![false; set.len()];
    let mut to_bind = Vec::new();
    for (protocol, addr) in wanted(new) {
        match set
            .iter()
            .enumerate()
            .position(|(i, b)| !keep[i] && b.protocol == protocol && b.configured == addr)
        {
            Some(i) => keep[i] = true,
            None => to_bind.push((protocol, addr)),
        }
    }
    (keep, to_bind)
}
