//! Accept loops: one per bound address. Each connection is first offered to `admit` (limits,
//! pause), which either gives the session to run or the line to refuse it with; the loop keeps
//! serving either way and stops when its token fires (shutdown, or the address was removed by a
//! reload; sessions already running are not touched). A peer in `[server] proxy_from` is first
//! asked for its PROXY header, and the client it names is the one admitted.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::{Protocol, proxy};

/// Runs until `stop` fires; admitted sessions run on `tracker`. `proxied` says whether a peer
/// is a load balancer that must start with a PROXY header (and how long it has to send it): the
/// client that header names is the one offered to `admit`.
pub async fn run<F, P, S, Fut>(
    listener: TcpListener,
    protocol: Protocol,
    stop: CancellationToken,
    tracker: TaskTracker,
    admit: F,
    proxied: P,
) where
    F: Fn(SocketAddr) -> Result<S, Vec<u8>> + Send + Sync + 'static,
    P: Fn(SocketAddr) -> Option<Duration>,
    S: FnOnce(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let admit = Arc::new(admit);
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            r = listener.accept() => r,
        };
        let (mut stream, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                // EMFILE and friends: wait and retry rather than die.
                warn!(%protocol, error = %e, "accept failed; retrying in {} ms", backoff.as_millis());
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let Some(timeout) = proxied(peer) else {
            match admit(peer) {
                Ok(session) => tracker.spawn(session(stream)),
                Err(reply) => tracker.spawn(refuse(stream, reply, protocol, peer)),
            };
            continue;
        };
        // A load balancer: its header first, off the accept loop (it may be slow).
        let admit = Arc::clone(&admit);
        tracker.spawn(async move {
            let client = match proxy::read_header(&mut stream, timeout).await {
                // The proxy's own connection (a health check): served as the proxy.
                Ok(client) => client.unwrap_or(peer),
                Err(why) => {
                    warn!(%protocol, peer = %peer, "connection closed: {why} (the peer is in [server] proxy_from)");
                    return;
                }
            };
            match admit(client) {
                Ok(session) => session(stream).await,
                Err(reply) => refuse(stream, reply, protocol, client).await,
            }
        });
    }
}

/// Writes the refusal line (within 5 s) and closes.
async fn refuse(mut stream: TcpStream, reply: Vec<u8>, protocol: Protocol, peer: SocketAddr) {
    info!(%protocol, peer = %peer, "connection refused: {}", String::from_utf8_lossy(&reply).trim_end());
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = stream.write_all(&reply).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
