//! Accept loops: one per bound address. Refuses connections past the limits with a 421 and keeps
//! serving; stops accepting when the shutdown token fires.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::limiter::{ConnLimiter, LimitHit};
use super::smtp_conn::{self, SmtpContext};
use crate::proto::smtp::reply::canned;

/// Runs until `shutdown` fires; each session is spawned on `tracker`.
pub async fn serve_smtp(
    listener: TcpListener,
    ctx: Arc<SmtpContext>,
    limiter: Arc<ConnLimiter>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let mut backoff = Duration::from_millis(10);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
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
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let limits = &ctx.limits;
        match limiter.try_acquire(
            peer.ip(),
            limits.max_connections,
            limits.max_connections_per_ip,
        ) {
            Ok(guard) => {
                let ctx = Arc::clone(&ctx);
                let shutdown = shutdown.clone();
                tracker.spawn(async move {
                    smtp_conn::serve(stream, peer, ctx, shutdown).await;
                    drop(guard);
                });
            }
            Err(hit) => {
                let which = match hit {
                    LimitHit::Total => "max_connections",
                    LimitHit::PerIp => "max_connections_per_ip",
                };
                info!(peer = %peer, limit = which, "connection refused: limit reached");
                let reply = canned::too_many_connections(&ctx.policy.hostname).to_bytes();
                tracker.spawn(async move {
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
