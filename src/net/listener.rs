//! Accept loops: one per bound address. Each connection is first offered to `admit` (limits,
//! pause), which either gives the session to run or the line to refuse it with; the loop keeps
//! serving either way and stops when its token fires (shutdown, or the address was removed by a
//! reload; sessions already running are not touched).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use super::Protocol;

/// Runs until `stop` fires; admitted sessions run on `tracker`.
pub async fn run<F, S, Fut>(
    listener: TcpListener,
    protocol: Protocol,
    stop: CancellationToken,
    tracker: TaskTracker,
    admit: F,
) where
    F: Fn(SocketAddr) -> Result<S, Vec<u8>>,
    S: FnOnce(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
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
        match admit(peer) {
            Ok(session) => {
                tracker.spawn(session(stream));
            }
            Err(reply) => {
                info!(%protocol, peer = %peer, "connection refused: {}", String::from_utf8_lossy(&reply).trim_end());
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
