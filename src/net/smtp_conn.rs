//! The only SMTP socket code: read → feed the engine → carry out its events → write the replies.
//! DATA is streamed into the spool file as it arrives (at most `WRITE_CHUNK` bytes buffered per
//! session), so memory does not grow with message size.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::stats::{self, ActiveGuard, Stats};
use crate::config::Limits;
use crate::mailbox::headers::Trace;
use crate::mailbox::{DeliveryError, MaildirStore, Spool};
use crate::proto::smtp::reply::canned;
use crate::proto::smtp::session::Delivery;
use crate::proto::smtp::{Envelope, Event, Policy, Reply, SmtpSession};

const READ_BUF: usize = 64 * 1024;
const WRITE_CHUNK: usize = 256 * 1024;

/// What every SMTP session of one config generation shares.
#[derive(Debug)]
pub struct SmtpContext {
    pub policy: Arc<Policy>,
    pub store: Arc<MaildirStore>,
    pub limits: Limits,
    pub stats: Arc<Stats>,
}

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

/// A message being received.
struct Message {
    envelope: Envelope,
    spool: Option<Spool>,
    maildirs: Vec<PathBuf>,
    buf: Vec<u8>,
    failed: Option<DeliveryError>,
    started: Instant,
}

/// The reply for a storage failure; the cause goes to the log only.
fn failure_reply(e: &DeliveryError) -> Reply {
    if e.is_disk_full() {
        canned::disk_full()
    } else {
        canned::storage_failed()
    }
}

fn join_error(e: tokio::task::JoinError) -> DeliveryError {
    DeliveryError::Io {
        op: "background task",
        path: PathBuf::new(),
        source: std::io::Error::other(e.to_string()),
    }
}

pub async fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<SmtpContext>,
    shutdown: CancellationToken,
) {
    let sid = SESSION_IDS.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let _active = ActiveGuard::new(&ctx.stats.smtp_active, &ctx.stats.smtp_total);
    info!(session = sid, peer = %peer, "session start");
    let mut session = SmtpSession::new(Arc::clone(&ctx.policy));
    let mut conn = Conn {
        sid,
        peer,
        ctx: &ctx,
        message: None,
        messages: 0,
    };
    let command_timeout = Duration::from_secs(ctx.limits.command_timeout_secs);
    let data_timeout = Duration::from_secs(ctx.limits.data_timeout_secs);
    let write_timeout = command_timeout;
    let end_reason;

    let greeting = session.greeting().to_bytes();
    if write_all(&mut stream, &greeting, write_timeout)
        .await
        .is_err()
    {
        info!(session = sid, peer = %peer, "session end: client gone before greeting");
        return;
    }
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let in_data = session.in_data();
        let events = if !in_data && shutdown.is_cancelled() {
            session.shutdown()
        } else {
            let limit = if in_data {
                data_timeout
            } else {
                command_timeout
            };
            let read = tokio::select! {
                r = tokio::time::timeout(limit, stream.read(&mut buf)) => Some(r),
                _ = shutdown.cancelled(), if !in_data => None,
            };
            match read {
                None => session.shutdown(),
                Some(Err(_elapsed)) => {
                    info!(session = sid, peer = %peer, in_data, "timeout");
                    session.timeout()
                }
                Some(Ok(Ok(0))) => {
                    end_reason = "client closed the connection";
                    break;
                }
                Some(Ok(Err(e))) => {
                    info!(session = sid, peer = %peer, error = %e, "read failed");
                    end_reason = "read error";
                    break;
                }
                Some(Ok(Ok(n))) => session.feed(&buf[..n]),
            }
        };
        let mut out = Vec::new();
        let closed = conn.run(&mut session, events, &mut out).await;
        if !out.is_empty() && write_all(&mut stream, &out, write_timeout).await.is_err() {
            end_reason = "write failed";
            break;
        }
        if closed {
            end_reason = "closed";
            let _ = stream.shutdown().await;
            break;
        }
    }
    if let Some(msg) = conn.message.take() {
        discard(msg).await;
    }
    info!(
        session = sid,
        peer = %peer,
        messages = conn.messages,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "session end: {end_reason}"
    );
}

async fn write_all(stream: &mut TcpStream, bytes: &[u8], limit: Duration) -> Result<(), ()> {
    match tokio::time::timeout(limit, stream.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Removes a spool file off the async threads.
async fn discard(msg: Message) {
    if let Some(spool) = msg.spool {
        let _ = tokio::task::spawn_blocking(move || drop(spool)).await;
    }
}

struct Conn<'a> {
    sid: u64,
    peer: SocketAddr,
    ctx: &'a SmtpContext,
    message: Option<Message>,
    messages: u64,
}

impl Conn<'_> {
    /// Carries out events in order (delivery outcomes may bring more); returns true on Close.
    async fn run(
        &mut self,
        session: &mut SmtpSession,
        events: Vec<Event>,
        out: &mut Vec<u8>,
    ) -> bool {
        let mut queue: VecDeque<Event> = events.into();
        let mut closed = false;
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Reply(r) => out.extend_from_slice(&r.to_bytes()),
                Event::MessageStart(envelope) => self.start(envelope).await,
                Event::MessageData(data) => {
                    if let Some(msg) = self.message.as_mut()
                        && msg.failed.is_none()
                    {
                        msg.buf.extend_from_slice(&data);
                        if msg.buf.len() >= WRITE_CHUNK {
                            flush(msg).await;
                        }
                    }
                }
                Event::MessageAbort => {
                    stats::add(&self.ctx.stats.messages_rejected, 1);
                    if let Some(msg) = self.message.take() {
                        discard(msg).await;
                    }
                }
                Event::MessageEnd => {
                    let outcome = self.finish().await;
                    queue.extend(session.delivered(outcome));
                }
                Event::Close => closed = true,
            }
        }
        closed
    }

    async fn start(&mut self, envelope: Envelope) {
        let store = Arc::clone(&self.ctx.store);
        let hostname = self.ctx.policy.hostname.clone();
        let peer = self.peer.ip();
        let env = envelope.clone();
        let prepared = tokio::task::spawn_blocking(move || -> Result<_, DeliveryError> {
            let mut maildirs: Vec<PathBuf> = Vec::new();
            for r in &env.recipients {
                let md = store.maildir(&r.domain, &r.local)?;
                if !maildirs.contains(&md) {
                    store.ensure(&md)?;
                    maildirs.push(md);
                }
            }
            let first = maildirs.first().cloned().unwrap_or_default();
            let mut spool = store.begin(&first)?;
            let rcpts: Vec<String> = env.recipients.iter().map(|r| r.address.clone()).collect();
            let trace = Trace {
                helo: env.helo.as_deref(),
                peer,
                hostname: &hostname,
                protocol: env.protocol(),
                id: &spool.id.clone(),
                recipients: &rcpts,
                from: &env.from,
                time: SystemTime::now(),
            };
            spool.write(trace.render().as_bytes())?;
            Ok((spool, maildirs))
        })
        .await
        .map_err(join_error)
        .and_then(|r| r);
        let (spool, maildirs, failed) = match prepared {
            Ok((s, m)) => (Some(s), m, None),
            Err(e) => (None, Vec::new(), Some(e)),
        };
        self.message = Some(Message {
            envelope,
            spool,
            maildirs,
            buf: Vec::new(),
            failed,
            started: Instant::now(),
        });
    }

    async fn finish(&mut self) -> Delivery {
        let Some(mut msg) = self.message.take() else {
            return Delivery::Failed(canned::storage_failed());
        };
        flush(&mut msg).await;
        let to: Vec<String> = msg
            .envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        let result = match (msg.failed.take(), msg.spool.take()) {
            (Some(e), spool) => {
                if let Some(s) = spool {
                    let _ = tokio::task::spawn_blocking(move || drop(s)).await;
                }
                Err(e)
            }
            (None, None) => Err(join_error_msg("no spool")),
            (None, Some(spool)) => {
                let id = spool.id.clone();
                let size = spool.size;
                let maildirs = std::mem::take(&mut msg.maildirs);
                tokio::task::spawn_blocking(move || spool.commit(&maildirs))
                    .await
                    .map_err(join_error)
                    .and_then(|r| r)
                    .map(|paths| (id, size, paths.len()))
            }
        };
        match result {
            Ok((id, size, copies)) => {
                self.messages += 1;
                stats::add(&self.ctx.stats.messages_accepted, 1);
                stats::add(&self.ctx.stats.bytes_accepted, size);
                stats::add(&self.ctx.stats.deliveries, copies as u64);
                info!(
                    session = self.sid,
                    id = %id,
                    from = %msg.envelope.from,
                    to = %to.join(","),
                    size,
                    elapsed_ms = msg.started.elapsed().as_millis() as u64,
                    "delivered"
                );
                Delivery::Done { id }
            }
            Err(e) => {
                stats::add(&self.ctx.stats.messages_rejected, 1);
                warn!(
                    session = self.sid,
                    peer = %self.peer,
                    from = %msg.envelope.from,
                    to = %to.join(","),
                    error = %e,
                    "delivery failed"
                );
                Delivery::Failed(failure_reply(&e))
            }
        }
    }
}

fn join_error_msg(msg: &str) -> DeliveryError {
    DeliveryError::Io {
        op: "deliver",
        path: PathBuf::new(),
        source: std::io::Error::other(msg.to_string()),
    }
}

/// Writes the buffered content into the spool, off the async threads.
async fn flush(msg: &mut Message) {
    if msg.buf.is_empty() {
        return;
    }
    if msg.failed.is_some() {
        msg.buf.clear();
        return;
    }
    let Some(mut spool) = msg.spool.take() else {
        msg.buf.clear();
        return;
    };
    let mut buf = std::mem::take(&mut msg.buf);
    match tokio::task::spawn_blocking(move || {
        let r = spool.write(&buf);
        buf.clear();
        (spool, buf, r)
    })
    .await
    {
        Ok((spool, buf, r)) => {
            msg.spool = Some(spool);
            msg.buf = buf;
            if let Err(e) = r {
                msg.failed = Some(e);
            }
        }
        Err(e) => msg.failed = Some(join_error(e)),
    }
}
