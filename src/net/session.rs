//! What every connection driver shares: one sequence of session ids, the typed reason a session
//! ended, and the TLS step with its log lines, so every protocol logs the same shape: `… session
//! start`, `TLS established` (or `TLS handshake failed`), the login, `… session end: REASON`
//! with `tls=`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tracing::info;

use super::tls::Stream;

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

/// The next session id (SMTP, POP3 and IMAP share one sequence, so an id names one session).
pub fn next_id() -> u64 {
    SESSION_IDS.fetch_add(1, Ordering::Relaxed)
}

/// Why a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// The client closed the connection.
    ClientClosed,
    /// The protocol closed it: QUIT, or a 421 (timeout, too many errors, shutdown).
    Closed,
    /// Reading from the client failed.
    ReadFailed(io::Error),
    /// A reply could not be written within the limit (client gone or too slow).
    WriteFailed(io::Error),
    /// The TLS handshake failed (STARTTLS, STLS or an implicit-TLS port).
    TlsFailed(io::Error),
    /// TLS was asked for on a listener without a certificate (the engines never offer it then).
    TlsUnavailable,
}

impl fmt::Display for SessionEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionEnd::ClientClosed => f.write_str("client closed the connection"),
            SessionEnd::Closed => f.write_str("closed"),
            SessionEnd::ReadFailed(e) => write!(f, "read error: {e}"),
            SessionEnd::WriteFailed(e) => write!(f, "write failed: {e}"),
            SessionEnd::TlsFailed(e) => write!(f, "TLS handshake failed: {e}"),
            SessionEnd::TlsUnavailable => f.write_str("TLS not configured"),
        }
    }
}

/// Who a session is, for its log lines.
#[derive(Clone, Copy, Debug)]
pub struct Who {
    pub sid: u64,
    pub peer: SocketAddr,
}

impl Who {
    /// A new session from `peer`, with the next id.
    pub fn new(peer: SocketAddr) -> Self {
        Who {
            sid: next_id(),
            peer,
        }
    }
}

/// The server side of TLS on `stream` (`how`: "implicit", "STARTTLS" or "STLS"), logged either
/// way.
pub async fn start_tls(
    who: Who,
    stream: &mut Stream,
    config: Option<Arc<rustls::ServerConfig>>,
    limit: Duration,
    how: &'static str,
) -> Result<(), SessionEnd> {
    let Some(config) = config else {
        info!(session = who.sid, peer = %who.peer, how, "TLS handshake failed: TLS not configured");
        return Err(SessionEnd::TlsUnavailable);
    };
    match stream.upgrade(config, limit).await {
        Ok(()) => {
            info!(session = who.sid, peer = %who.peer, how, "TLS established");
            Ok(())
        }
        Err(e) => {
            if let Some(acme) = crate::acme::alpn::Handled::of(&e) {
                info!(session = who.sid, peer = %who.peer, how, "{acme}");
                return Err(SessionEnd::Closed);
            }
            info!(session = who.sid, peer = %who.peer, how, error = %e, "TLS handshake failed");
            Err(SessionEnd::TlsFailed(e))
        }
    }
}

/// Writes `bytes` within `limit`.
pub async fn write(stream: &mut Stream, bytes: &[u8], limit: Duration) -> Result<(), SessionEnd> {
    stream
        .write_timed(bytes, limit)
        .await
        .map_err(SessionEnd::WriteFailed)
}

/// A protocol engine as the read step drives it.
pub trait Engine {
    type Event;
    fn feed(&mut self, input: &[u8]) -> Vec<Self::Event>;
    /// The client went quiet too long.
    fn timeout(&mut self) -> Vec<Self::Event>;
    /// The server is stopping.
    fn shutdown(&mut self) -> Vec<Self::Event>;
}

/// Both engines have these three as inherent methods of the same shape.
macro_rules! engine {
    ($session:ty, $event:ty) => {
        impl Engine for $session {
            type Event = $event;
            fn feed(&mut self, input: &[u8]) -> Vec<Self::Event> {
                self.feed(input)
            }
            fn timeout(&mut self) -> Vec<Self::Event> {
                self.timeout()
            }
            fn shutdown(&mut self) -> Vec<Self::Event> {
                self.shutdown()
            }
        }
    };
}

engine!(crate::proto::smtp::SmtpSession, crate::proto::smtp::Event);
engine!(crate::proto::pop3::Pop3Session, crate::proto::pop3::Event);

/// One read within `limit` fed to `engine`: its events for what arrived (`seen` is shown the
/// bytes first), for a timeout, or for a shutdown (which cuts the read short only when
/// `stoppable`, i.e. not inside DATA). `Err` when the client is gone.
pub async fn next_events<E: Engine>(
    engine: &mut E,
    stream: &mut Stream,
    buf: &mut [u8],
    limit: Duration,
    shutdown: &CancellationToken,
    stoppable: bool,
    seen: impl FnOnce(Option<&[u8]>),
) -> Result<Vec<E::Event>, SessionEnd> {
    if stoppable && shutdown.is_cancelled() {
        return Ok(engine.shutdown());
    }
    let read = tokio::select! {
        r = tokio::time::timeout(limit, stream.read(buf)) => r,
        _ = shutdown.cancelled(), if stoppable => return Ok(engine.shutdown()),
    };
    match read {
        Err(_elapsed) => {
            seen(None);
            Ok(engine.timeout())
        }
        Ok(Ok(0)) => Err(SessionEnd::ClientClosed),
        Ok(Ok(n)) => {
            seen(Some(&buf[..n]));
            Ok(engine.feed(&buf[..n]))
        }
        Ok(Err(e)) => Err(SessionEnd::ReadFailed(e)),
    }
}

/// A connection driver as the read loop ([`drive`]) sees it.
pub trait Driver: Send {
    type Engine: Engine + Send;
    /// Before each read: its time limit, whether a shutdown may cut it short (not inside
    /// DATA), and room in `buf` for it.
    fn next_read(&self, engine: &Self::Engine, buf: &mut Vec<u8>) -> (Duration, bool);
    /// What arrived (`None`: the limit passed), before the engine is fed.
    fn seen(&mut self, _bytes: Option<&[u8]>, _stoppable: bool) {}
    /// Carries out the engine's events in order; `Ok(true)` when it closed the session.
    fn carry_out(
        &mut self,
        engine: &mut Self::Engine,
        stream: &mut Stream,
        events: Vec<<Self::Engine as Engine>::Event>,
    ) -> impl std::future::Future<Output = Result<bool, SessionEnd>> + Send;
}

/// The read loop of every protocol: read → feed → carry out, until the session ends.
pub async fn drive<D: Driver>(
    driver: &mut D,
    engine: &mut D::Engine,
    stream: &mut Stream,
    shutdown: &CancellationToken,
    mut buf: Vec<u8>,
) -> SessionEnd {
    loop {
        let (limit, stoppable) = driver.next_read(engine, &mut buf);
        let seen = |bytes: Option<&[u8]>| driver.seen(bytes, stoppable);
        let read = next_events(engine, stream, &mut buf, limit, shutdown, stoppable, seen).await;
        let result = match read {
            Ok(events) => driver.carry_out(engine, stream, events).await,
            Err(end) => Err(end),
        };
        if let Err(end) = carried_out(result, stream).await {
            return end;
        }
    }
}

/// After the events of one read were carried out: `Ok(true)` (the engine closed) shuts the
/// stream down and ends the session, an error ends it, `Ok(false)` goes on.
pub async fn carried_out(
    result: Result<bool, SessionEnd>,
    stream: &mut Stream,
) -> Result<(), SessionEnd> {
    match result {
        Ok(false) => Ok(()),
        Ok(true) => {
            let _ = stream.shutdown().await;
            Err(SessionEnd::Closed)
        }
        Err(end) => Err(end),
    }
}
