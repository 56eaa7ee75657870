//! Accept loops: one per bound address. Refuses connections past the limits with the protocol's
//! "too busy" line and keeps serving; stops accepting when the shutdown token fires.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::limiter::{ConnLimiter, LimitHit};

/// What an accept loop needs besides the listener and the session function.
pub struct Accept {
    pub protocol: &'static str,
    pub limiter: Arc<ConnLimiter>,
    pub max_connections: usize,
    pub max_connections_per_ip: usize,
    /// Sent to a refused connection before closing it.
    pub refusal: Vec<u8>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

/// Runs until `shutdown` fires; each admitted connection runs `serve` on the tracker.
pub async fn run<F, Fut>(listener: TcpListener, a: Accept, serve: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = a.shutdown.cancelled() => break,
            r = listener.accept() => r,
        };
        let (mut stream, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(10);
                x
            }
            Err(e) => {
                // EMFILE and friends: wait and retry rather than die.
                warn!(error = %e, "accept failed; retrying in {} ms", backoff.as_millis());
                tokio::select! {
                    _ = a.shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match a
            .limiter
            .try_acquire(peer.ip(), a.max_connections, a.max_connections_per_ip)
        {
            Ok(guard) => {
                let session = serve(stream, peer);
                a.tracker.spawn(async move {
                    session.await;
                    drop(guard);
                });
            }
            Err(hit) => {
                let which = match hit {
                    LimitHit::Total => "max_connections",
                    LimitHit::PerIp => "max_connections_per_ip",
                };
                info!(protocol = a.protocol, peer = %peer, limit = which, "connection refused: limit reached");
                let reply = a.refusal.clone();
                a.tracker.spawn(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(5), async {
                        let _ = stream.write_all(&reply).await;
                        let _ = stream.shutdown().await;
                    })
                    .await;
                });
            }
        }
    }
}
