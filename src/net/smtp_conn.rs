//! The only SMTP socket code: read → feed the engine → carry out its events → write the replies.
//! DATA is streamed into the spool file as it arrives (at most `WRITE_CHUNK` bytes buffered per
//! session), so memory does not grow with message size. Also the TLS handshake (STARTTLS or an
//! implicit-TLS port), AUTH checks, and the submission fix-ups (Date, Message-ID).

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

use super::Protocol;
use super::pop3_conn::is_loopback;
use super::stats::{self, ActiveGuard, Stats};
use super::tls::Stream;
use super::transcript::{Snapshot, Transcript, TranscriptConfig};
use super::watch::{self, WatchEvent};
use crate::auth::accounts::Accounts;
use crate::config::Limits;
use crate::mailbox::headers::{self, Trace};
use crate::mailbox::{DeliveryError, MaildirStore, Reservation, Spool};
use crate::proto::smtp::reply::canned;
use crate::proto::smtp::session::Delivery;
use crate::proto::smtp::{Envelope, Event, Policy, Reply, SmtpSession};

/// Read buffer while commands flow (idle sessions stay small), and once DATA starts.
const COMMAND_READ_BUF: usize = 4 * 1024;
const READ_BUF: usize = 64 * 1024;
const WRITE_CHUNK: usize = 256 * 1024;
/// Submission: how much of the header section is held to look for Date/Message-ID.
const HEADER_SCAN_LIMIT: usize = 64 * 1024;

/// What every SMTP session of one config generation shares.
pub struct SmtpContext {
    pub policy: Arc<Policy>,
    pub submission_policy: Arc<Policy>,
    pub store: Arc<MaildirStore>,
    pub limits: Limits,
    pub stats: Arc<Stats>,
    pub accounts: Arc<Accounts>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Wait before answering a failed AUTH; grows with each failure in the session.
    pub auth_failure_delay: Duration,
    /// `[log] transcripts`: where each session's dialogue goes.
    pub transcripts: Option<TranscriptConfig>,
}

static SESSION_IDS: AtomicU64 = AtomicU64::new(1);

/// A message being received.
struct Message {
    envelope: Envelope,
    /// Name and id chosen at DATA; the file is created at the first flush, which for a message
    /// under WRITE_CHUNK is the commit itself (one trip to a blocking thread per message).
    reservation: Reservation,
    spool: Option<Spool>,
    maildirs: Vec<PathBuf>,
    buf: Vec<u8>,
    failed: Option<DeliveryError>,
    started: Instant,
    /// Submission: the start of the message, held until its header section is complete.
    head: Option<Vec<u8>>,
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
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Arc<SmtpContext>,
    listener: Protocol,
    shutdown: CancellationToken,
) {
    let sid = SESSION_IDS.fetch_add(1, Ordering::Relaxed);
    let started = Instant::now();
    let _active = ActiveGuard::new(&ctx.stats.smtp_active, &ctx.stats.smtp_total);
    let command_timeout = Duration::from_secs(ctx.limits.command_timeout_secs);
    let data_timeout = Duration::from_secs(ctx.limits.data_timeout_secs);
    let write_timeout = command_timeout;
    let policy = match listener {
        Protocol::Smtp => Arc::clone(&ctx.policy),
        _ => Arc::clone(&ctx.submission_policy),
    };
    let mut session = SmtpSession::new(policy).with_secure_peer(is_loopback(&peer));
    let mut stream = Stream::Plain(tcp);
    if listener == Protocol::Submissions {
        let Some(cfg) = ctx.tls.clone() else {
            return;
        };
        if let Err(e) = stream.upgrade(cfg, command_timeout).await {
            info!(session = sid, peer = %peer, error = %e, "TLS handshake failed");
            return;
        }
        session = session.with_tls();
    }
    info!(session = sid, peer = %peer, listener = %listener, "session start");
    let event = |name: &str, result: String| WatchEvent {
        time: watch::now(),
        session: sid,
        peer: peer.to_string(),
        event: name.to_string(),
        from: None,
        to: Vec::new(),
        size: None,
        result,
    };
    ctx.stats
        .watch
        .publish(|| event("session start", listener.to_string()));
    let mut conn = Conn {
        sid,
        peer,
        ctx: &ctx,
        message: None,
        messages: 0,
        auth_failures: 0,
        transcript: ctx
            .transcripts
            .as_ref()
            .map(|t| Transcript::new(t, sid, &peer.to_string(), listener.as_str())),
    };
    if listener == Protocol::Submissions
        && let Some(t) = conn.transcript.as_mut()
    {
        t.note("TLS established (implicit)");
    }
    let end_reason;

    let greeting = session.greeting().to_bytes();
    if let Some(t) = conn.transcript.as_mut() {
        t.server(&greeting);
    }
    if write_all(&mut stream, &greeting, write_timeout)
        .await
        .is_err()
    {
        info!(session = sid, peer = %peer, "session end: client gone before greeting");
        return;
    }
    let mut buf = vec![0u8; COMMAND_READ_BUF];
    loop {
        let in_data = session.in_data();
        if in_data && buf.len() < READ_BUF {
            buf.resize(READ_BUF, 0);
        }
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
                Some(Ok(Ok(n))) => {
                    if let Some(t) = conn.transcript.as_mut() {
                        t.client(&buf[..n], in_data);
                    }
                    session.feed(&buf[..n])
                }
            }
        };
        match conn.run(&mut session, &mut stream, events).await {
            Ok(false) => {}
            Ok(true) => {
                end_reason = "closed";
                let _ = stream.shutdown().await;
                break;
            }
            Err(reason) => {
                end_reason = reason;
                break;
            }
        }
    }
    if let Some(msg) = conn.message.take() {
        discard(msg).await;
    }
    if let Some(t) = conn.transcript.as_mut() {
        t.note(&format!("session end: {end_reason}"));
        save(t.snapshot(true)).await;
    }
    ctx.stats.watch.publish(|| {
        event(
            "session end",
            format!("{end_reason}, {} messages", conn.messages),
        )
    });
    info!(
        session = sid,
        peer = %peer,
        messages = conn.messages,
        tls = stream.is_tls(),
        user = session.authenticated().unwrap_or("-"),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "session end: {end_reason}"
    );
}

async fn write_all(stream: &mut Stream, bytes: &[u8], limit: Duration) -> Result<(), ()> {
    stream.write_timed(bytes, limit).await
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
    auth_failures: u32,
    transcript: Option<Transcript>,
}

/// Writes a transcript snapshot off the async threads; a failure is logged, never fatal.
async fn save(snapshot: Option<Snapshot>) {
    if let Some(s) = snapshot {
        match tokio::task::spawn_blocking(move || s.write()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => warn!(error = %e, "cannot write the session transcript"),
            Err(e) => warn!(error = %e, "transcript task failed"),
        }
    }
}

impl Conn<'_> {
    /// Sends `out` (recording it in the transcript, saved when a delivery needs linking).
    async fn send_out(
        &mut self,
        stream: &mut Stream,
        out: &mut Vec<u8>,
        limit: Duration,
    ) -> Result<(), &'static str> {
        if out.is_empty() {
            return Ok(());
        }
        if let Some(t) = self.transcript.as_mut() {
            t.server(out);
        }
        write_all(stream, out, limit)
            .await
            .map_err(|_| "write failed")?;
        out.clear();
        if let Some(t) = self.transcript.as_mut() {
            save(t.snapshot(false)).await;
        }
        Ok(())
    }

    /// Carries out events in order (outcomes may bring more); Ok(true) on Close.
    async fn run(
        &mut self,
        session: &mut SmtpSession,
        stream: &mut Stream,
        events: Vec<Event>,
    ) -> Result<bool, &'static str> {
        let limit = Duration::from_secs(self.ctx.limits.command_timeout_secs);
        let mut queue: VecDeque<Event> = events.into();
        let mut out: Vec<u8> = Vec::new();
        let mut closed = false;
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Reply(r) => out.extend_from_slice(&r.to_bytes()),
                Event::MessageStart(envelope) => self.start(envelope).await,
                Event::MessageData(data) => {
                    if let Some(msg) = self.message.as_mut()
                        && msg.failed.is_none()
                    {
                        self.take_data(data).await;
                    }
                }
                Event::MessageAbort => {
                    stats::add(&self.ctx.stats.messages_rejected, 1);
                    if let Some(msg) = self.message.as_ref() {
                        self.publish(&msg.envelope, None, "refused", "too big or a line too long");
                    }
                    if let Some(msg) = self.message.take() {
                        discard(msg).await;
                    }
                }
                Event::MessageEnd => {
                    let outcome = self.finish().await;
                    queue.extend(session.delivered(outcome));
                }
                Event::Close => closed = true,
                Event::Pause(d) => {
                    self.send_out(stream, &mut out, limit).await?;
                    tokio::time::sleep(d).await;
                }
                Event::StartTls => {
                    self.send_out(stream, &mut out, limit).await?;
                    let Some(cfg) = self.ctx.tls.clone() else {
                        return Err("TLS not configured");
                    };
                    if let Err(e) = stream.upgrade(cfg, limit).await {
                        info!(session = self.sid, peer = %self.peer, error = %e, "STARTTLS handshake failed");
                        return Err("TLS handshake failed");
                    }
                    session.tls_started();
                    if let Some(t) = self.transcript.as_mut() {
                        t.note("TLS established (STARTTLS)");
                    }
                }
                Event::Authenticate { user, password } => {
                    let accounts = Arc::clone(&self.ctx.accounts);
                    let u = user.clone();
                    let ok = tokio::task::spawn_blocking(move || accounts.verify(&u, &password))
                        .await
                        .unwrap_or(false);
                    if !ok {
                        self.auth_failures += 1;
                        let n = self.auth_failures.min(10);
                        tokio::time::sleep(self.ctx.auth_failure_delay * n).await;
                        warn!(session = self.sid, peer = %self.peer, user = %user, "smtp auth failed");
                    } else {
                        info!(session = self.sid, peer = %self.peer, user = %user, "smtp auth");
                    }
                    queue.extend(session.auth_result(ok, &user));
                }
            }
        }
        self.send_out(stream, &mut out, limit).await?;
        Ok(closed)
    }

    fn publish(&self, env: &Envelope, size: Option<u64>, event: &str, result: &str) {
        self.ctx.stats.watch.publish(|| WatchEvent {
            time: watch::now(),
            session: self.sid,
            peer: self.peer.to_string(),
            event: event.to_string(),
            from: Some(env.from.clone()),
            to: env.recipients.iter().map(|r| r.address.clone()).collect(),
            size,
            result: result.trim_end().to_string(),
        });
    }

    /// Message content: held while a submission's header is scanned, then buffered and flushed.
    async fn take_data(&mut self, data: Vec<u8>) {
        let hostname = self.ctx.policy.hostname.clone();
        let Some(msg) = self.message.as_mut() else {
            return;
        };
        if let Some(head) = msg.head.as_mut() {
            head.extend_from_slice(&data);
            if headers::header_end(head).is_some() || head.len() >= HEADER_SCAN_LIMIT {
                release_head(msg, &hostname);
            }
        } else {
            msg.buf.extend_from_slice(&data);
        }
        if msg.buf.len() >= WRITE_CHUNK {
            flush(msg, &self.ctx.store).await;
        }
    }

    async fn start(&mut self, envelope: Envelope) {
        let store = &self.ctx.store;
        let reservation = store.reserve();
        let mut maildirs: Vec<PathBuf> = Vec::new();
        let mut failed = None;
        for r in &envelope.recipients {
            match store.maildir(&r.domain, &r.local) {
                Ok(md) if !maildirs.contains(&md) => maildirs.push(md),
                Ok(_) => {}
                Err(e) => failed = Some(e),
            }
        }
        let rcpts: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        let protocol = envelope.protocol();
        let trace = Trace {
            helo: envelope.helo.as_deref(),
            peer: self.peer.ip(),
            hostname: &self.ctx.policy.hostname,
            protocol: &protocol,
            id: &reservation.id,
            recipients: &rcpts,
            from: &envelope.from,
            time: SystemTime::now(),
        };
        let buf = trace.render().into_bytes();
        let head = envelope.submission.then(Vec::new);
        self.message = Some(Message {
            envelope,
            reservation,
            spool: None,
            maildirs,
            buf,
            failed,
            started: Instant::now(),
            head,
        });
    }

    async fn finish(&mut self) -> Delivery {
        let Some(mut msg) = self.message.take() else {
            return Delivery::Failed(canned::storage_failed());
        };
        if msg.head.is_some() {
            release_head(&mut msg, &self.ctx.policy.hostname);
        }
        let to: Vec<String> = msg
            .envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        let result = match msg.failed.take() {
            Some(e) => {
                if let Some(s) = msg.spool.take() {
                    let _ = tokio::task::spawn_blocking(move || drop(s)).await;
                }
                Err(e)
            }
            None => {
                // The rest of the text, the file (if not made yet) and the commit: one trip.
                let store = Arc::clone(&self.ctx.store);
                let spool = msg.spool.take();
                let reservation = msg.reservation.clone();
                let maildirs = std::mem::take(&mut msg.maildirs);
                let buf = std::mem::take(&mut msg.buf);
                tokio::task::spawn_blocking(move || {
                    let mut spool = match spool {
                        Some(s) => s,
                        None => store.open(&maildirs, reservation)?,
                    };
                    spool.write(&buf)?;
                    let (id, size) = (spool.id.clone(), spool.size);
                    let result = spool.commit(&maildirs);
                    if result.is_err() {
                        // A maildir removed behind our back is made again next time.
                        for md in &maildirs {
                            store.forget(md);
                        }
                    }
                    result.map(|paths| (id, size, paths.len()))
                })
                .await
                .map_err(join_error)
                .and_then(|r| r)
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
                self.publish(&msg.envelope, Some(size), "delivered", &format!("id {id}"));
                if let Some(t) = self.transcript.as_mut() {
                    t.delivered(&id);
                }
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
                let reply = failure_reply(&e);
                self.publish(&msg.envelope, None, "delivery failed", &reply.to_string());
                Delivery::Failed(reply)
            }
        }
    }
}

/// Submission (RFC 6409 §8): adds Date and Message-ID when the header section lacks them, then
/// passes the held bytes on.
fn release_head(msg: &mut Message, hostname: &str) {
    let Some(head) = msg.head.take() else {
        return;
    };
    let end = headers::header_end(&head).unwrap_or(head.len());
    let section = &head[..end];
    if !headers::has_field(section, "Date") {
        msg.buf.extend_from_slice(
            format!("Date: {}\n", headers::rfc5322_date(SystemTime::now())).as_bytes(),
        );
    }
    if !headers::has_field(section, "Message-ID") {
        let id = &msg.reservation.id;
        msg.buf
            .extend_from_slice(format!("Message-ID: <{id}.submission@{hostname}>\n").as_bytes());
    }
    msg.buf.extend_from_slice(&head);
}

/// Writes the buffered content into the spool (made on the first flush), off the async threads.
async fn flush(msg: &mut Message, store: &Arc<MaildirStore>) {
    if msg.buf.is_empty() {
        return;
    }
    if msg.failed.is_some() {
        msg.buf.clear();
        return;
    }
    // The spool, or what is needed to make it (only at the first flush).
    let target = match msg.spool.take() {
        Some(s) => Ok(s),
        None => Err((
            Arc::clone(store),
            msg.maildirs.clone(),
            msg.reservation.clone(),
        )),
    };
    let mut buf = std::mem::take(&mut msg.buf);
    match tokio::task::spawn_blocking(move || {
        let r = match target {
            Ok(s) => Ok(s),
            Err((store, maildirs, reservation)) => store.open(&maildirs, reservation),
        }
        .and_then(|mut s| s.write(&buf).map(|()| s));
        buf.clear();
        (buf, r)
    })
    .await
    {
        Ok((buf, r)) => {
            msg.buf = buf;
            match r {
                Ok(s) => msg.spool = Some(s),
                Err(e) => msg.failed = Some(e),
            }
        }
        Err(e) => msg.failed = Some(join_error(e)),
    }
}
