//! The control socket's server side: prepares the socket (refusing a live one, replacing a stale
//! one, mode 0660), checks each peer's credentials, and answers one JSON request per line through
//! a [`Handler`] the daemon implements.

use std::future::Future;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener as StdUnixListener;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use super::proto::{MAX_LINE, PROTOCOL_VERSION, Request, RequestLine, ResponseLine};

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error(
        "smtpd is already running: its control socket {0} answers (stop it first, or set another [control] socket)"
    )]
    AlreadyRunning(String),
    #[error("{0} exists and is not a socket; remove it or set another [control] socket")]
    NotASocket(String),
    #[error("control socket {path}: {error}")]
    Io { path: String, error: io::Error },
}

/// Binds the control socket before the runtime starts (and before privileges are dropped).
pub fn prepare(path: &Path) -> Result<StdUnixListener, ControlError> {
    let shown = path.display().to_string();
    let io_err = |error| ControlError::Io {
        path: shown.clone(),
        error,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err)?;
    }
    match std::fs::symlink_metadata(path) {
        Ok(meta) => {
            use std::os::unix::fs::FileTypeExt;
            if !meta.file_type().is_socket() {
                return Err(ControlError::NotASocket(shown));
            }
            // OpenSMTPD's order: try it first; only a socket nobody answers is stale.
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(ControlError::AlreadyRunning(shown));
            }
            std::fs::remove_file(path).map_err(io_err)?;
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(e)),
    }
    // Create it with no access for others, then open it to the group.
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let bound = StdUnixListener::bind(path);
    nix::sys::stat::umask(old);
    let listener = bound.map_err(io_err)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660)).map_err(io_err)?;
    listener.set_nonblocking(true).map_err(io_err)?;
    Ok(listener)
}

/// Who is asking.
#[derive(Clone, Copy, Debug)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
}

pub type Reply = Pin<Box<dyn Future<Output = ResponseLine> + Send>>;

/// What the daemon answers.
pub trait Handler: Send + Sync + 'static {
    fn handle(self: Arc<Self>, request: Request, peer: Peer) -> Reply;
    /// Live events for `watch`, if the daemon has them.
    fn watch(&self) -> Option<tokio::sync::broadcast::Receiver<crate::net::watch::WatchEvent>> {
        None
    }
}

/// Whether `peer_uid` may make `request`: one check for every request, `watch` included. Anyone
/// who can open the socket (root, smtpd's user, members of its group) may read; changes need root
/// or smtpd's own user.
pub fn permitted(request: &Request, peer_uid: u32, own_uid: u32) -> bool {
    !request.is_privileged() || peer_uid == 0 || peer_uid == own_uid
}

/// What is done with a request.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// The peer may not make it.
    Refused(Request),
    /// `watch`: events stream until the client leaves.
    Stream { address: Option<String> },
    /// One answer from the handler.
    Answer(Request),
}

/// The permission check first, for every request (streaming ones too), then how to serve it.
fn route(request: Request, peer_uid: u32, own_uid: u32) -> Route {
    if !permitted(&request, peer_uid, own_uid) {
        return Route::Refused(request);
    }
    match request {
        Request::Watch { address } => Route::Stream { address },
        other => Route::Answer(other),
    }
}

async fn send_line(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    r: &ResponseLine,
) -> io::Result<()> {
    let mut out = serde_json::to_vec(r).unwrap_or_else(|_| b"{}".to_vec());
    out.push(b'\n');
    write.write_all(&out).await
}

/// Streams events to a `watch` client until it leaves or the daemon stops.
async fn stream_events<H: Handler>(
    handler: &H,
    address: Option<String>,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    stop: &CancellationToken,
) -> io::Result<()> {
    let Some(mut rx) = handler.watch() else {
        return send_line(write, &ResponseLine::err("watch is not available")).await;
    };
    send_line(
        write,
        &ResponseLine::ok(serde_json::json!({"watching": true})),
    )
    .await?;
    loop {
        let ev = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            ev = rx.recv() => ev,
        };
        match ev {
            Ok(e) => {
                if address.as_deref().is_none_or(|a| e.mentions(a)) {
                    send_line(write, &ResponseLine::ok(e)).await?;
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                send_line(write, &ResponseLine::ok(serde_json::json!({"missed": n}))).await?;
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
        }
    }
}

/// Serves the socket until `stop` fires.
pub async fn serve<H: Handler>(
    listener: StdUnixListener,
    handler: Arc<H>,
    stop: CancellationToken,
    tracker: TaskTracker,
) -> io::Result<()> {
    let listener = UnixListener::from_std(listener)?;
    let own_uid = nix::unistd::geteuid().as_raw();
    loop {
        let (stream, _) = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warn!(error = %e, "control accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let handler = Arc::clone(&handler);
        let stop = stop.clone();
        tracker.spawn(async move {
            if let Err(e) = connection(stream, handler, own_uid, stop).await {
                debug!(error = %e, "control connection ended");
            }
        });
    }
}

async fn connection<H: Handler>(
    stream: UnixStream,
    handler: Arc<H>,
    own_uid: u32,
    stop: CancellationToken,
) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let peer = Peer {
        uid: cred.uid(),
        pid: cred.pid(),
    };
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    let mut line = Vec::new();
    loop {
        line.clear();
        let mut limited = (&mut reader).take(MAX_LINE as u64 + 1);
        let n = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            n = limited.read_until(b'\n', &mut line) => n?,
        };
        if n == 0 {
            return Ok(());
        }
        let response = if line.len() > MAX_LINE {
            ResponseLine::err("request too long")
        } else {
            match serde_json::from_slice::<serde_json::Value>(&line) {
                Err(e) => ResponseLine::err(format!("bad request: {e}")),
                Ok(v) if v.get("v").and_then(|v| v.as_u64()) != Some(PROTOCOL_VERSION.into()) => {
                    ResponseLine::err(format!(
                        "incompatible smtpctl and smtpd (control protocol {} expected)",
                        PROTOCOL_VERSION
                    ))
                }
                Ok(v) => match serde_json::from_value::<RequestLine>(v) {
                    Err(e) => ResponseLine::err(format!("bad request: {e}")),
                    Ok(req) => match route(req.request, peer.uid, own_uid) {
                        Route::Refused(request) => {
                            warn!(uid = peer.uid, pid = ?peer.pid, ?request, "control request refused: not root or the smtpd user");
                            ResponseLine::err(
                                "permission denied: this command needs root or smtpd's own user",
                            )
                        }
                        Route::Stream { address } => {
                            return stream_events(handler.as_ref(), address, &mut write, &stop)
                                .await;
                        }
                        Route::Answer(request) => Arc::clone(&handler).handle(request, peer).await,
                    },
                },
            }
        };
        send_line(&mut write, &response).await?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reading (watch included) is for anyone who can open the socket; changing is for root and
    /// smtpd's own user.
    #[test]
    fn one_permission_rule() {
        let (root, own, member) = (0, 110, 1000);
        let reads = [
            Request::Status,
            Request::Mailboxes,
            Request::Metrics,
            Request::Watch { address: None },
        ];
        let changes = [
            Request::Reload,
            Request::Pause,
            Request::Resume,
            Request::Drain {
                timeout_secs: 1,
                settle_secs: 0,
            },
            Request::Undrain,
            Request::Selftest { quick: false },
            Request::LogLevel {
                level: "debug".into(),
            },
        ];
        for r in &reads {
            assert!(permitted(r, member, own), "{r:?}");
        }
        for r in &changes {
            assert!(!permitted(r, member, own), "{r:?}");
            assert!(permitted(r, root, own) && permitted(r, own, own), "{r:?}");
        }
        // The route checks first, whatever the request: a member is refused exactly the
        // privileged ones, and watch streams.
        for r in reads.iter().chain(&changes) {
            let routed = route(r.clone(), member, own);
            assert_eq!(
                matches!(routed, Route::Refused(_)),
                r.is_privileged(),
                "{r:?}"
            );
        }
        assert_eq!(
            route(Request::Watch { address: None }, member, own),
            Route::Stream { address: None }
        );
    }
}
