//! The only SMTP socket code: read → feed the engine → carry out its events → write the replies.
//! The message itself goes through [`super::smtp_message`] to the delivery target; this file
//! keeps the read loop and the event executor, and ends with a typed [`SessionEnd`].

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Protocol;
use super::login;
use super::pop3_conn::is_loopback;
use super::session::{self, SessionEnd, Who};
use super::smtp_message::Message;
use super::stats::{self, ActiveGuard, Stats};
use super::tls::Stream;
use super::transcript::{Snapshot, Transcript, TranscriptConfig};
use super::watch::{self, WatchEvent};
use crate::auth::accounts::Accounts;
use crate::config::Limits;
use crate::mailbox::{DeliveryError, Target};
use crate::proto::smtp::command::printable;
use crate::proto::smtp::reply::canned;
use crate::proto::smtp::session::Delivery;
use crate::proto::smtp::{Envelope, Event, Policy, Refusal, Reply, SmtpSession, Stage};

/// Read buffer while commands flow (idle sessions stay small), and once DATA starts.
const COMMAND_READ_BUF: usize = 4 * 1024;
const READ_BUF: usize = 64 * 1024;

/// What every SMTP session of one config generation shares.
pub struct SmtpContext {
    pub policy: Arc<Policy>,
    pub submission_policy: Arc<Policy>,
    /// Where accepted messages go.
    pub target: Arc<dyn Target>,
    /// `[relay] networks`: peers on the plain SMTP listeners that may relay without AUTH.
    pub relay_networks: Vec<ipnet::IpNet>,
    pub limits: Limits,
    pub stats: Arc<Stats>,
    pub accounts: Arc<Accounts>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Wait before answering a failed AUTH; grows with each failure in the session.
    pub auth_failure_delay: Duration,
    /// `[log] transcripts`: where each session's dialogue goes.
    pub transcripts: Option<TranscriptConfig>,
}

/// The reply for a storage failure; the cause goes to the log only.
fn failure_reply(e: &DeliveryError) -> Reply {
    if e.is_disk_full() {
        canned::disk_full()
    } else {
        canned::storage_failed()
    }
}

pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Arc<SmtpContext>,
    listener: Protocol,
    shutdown: CancellationToken,
) {
    let who = Who::new(peer);
    let started = Instant::now();
    let _active = ActiveGuard::new(&ctx.stats.smtp_active, &ctx.stats.smtp_total);
    let policy = match listener {
        Protocol::Smtp => Arc::clone(&ctx.policy),
        _ => Arc::clone(&ctx.submission_policy),
    };
    let ip = peer.ip().to_canonical();
    let relay_peer =
        listener == Protocol::Smtp && ctx.relay_networks.iter().any(|n| n.contains(&ip));
    let mut session = SmtpSession::new(policy)
        .with_secure_peer(is_loopback(&peer))
        .with_relay_peer(relay_peer);
    let mut stream = Stream::Plain(tcp);
    info!(session = who.sid, peer = %peer, listener = %listener, "smtp session start");
    let mut conn = Conn {
        who,
        ctx: &ctx,
        message: None,
        messages: 0,
        auth_failures: 0,
        transcript: ctx
            .transcripts
            .as_ref()
            .map(|t| Transcript::new(t, who.sid, &peer.to_string(), listener.as_str())),
    };
    conn.publish_event("session start", listener.to_string());
    let end = match conn.implicit_tls(&mut stream, listener).await {
        Err(end) => end,
        Ok(tls) => {
            if tls {
                session = session.with_tls();
            }
            conn.dialogue(&mut session, &mut stream, &shutdown).await
        }
    };
    if let Some(msg) = conn.message.take() {
        msg.discard().await;
    }
    if let Some(t) = conn.transcript.as_mut() {
        t.note(&format!("session end: {end}"));
        save(t.snapshot(true)).await;
    }
    conn.publish_event("session end", format!("{end}, {} messages", conn.messages));
    info!(
        session = who.sid,
        peer = %peer,
        listener = %listener,
        messages = conn.messages,
        tls = stream.is_tls(),
        user = session.authenticated().unwrap_or("-"),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "smtp session end: {end}"
    );
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

struct Conn<'a> {
    who: Who,
    ctx: &'a SmtpContext,
    message: Option<Message>,
    messages: u64,
    auth_failures: u32,
    transcript: Option<Transcript>,
}

impl session::Driver for Conn<'_> {
    type Engine = SmtpSession;

    fn next_read(&self, session: &SmtpSession, buf: &mut Vec<u8>) -> (Duration, bool) {
        let in_data = session.in_data();
        if in_data && buf.len() < READ_BUF {
            buf.resize(READ_BUF, 0);
        }
        let limits = &self.ctx.limits;
        let secs = if in_data {
            limits.data_timeout_secs
        } else {
            limits.command_timeout_secs
        };
        (Duration::from_secs(secs), !in_data)
    }

    fn seen(&mut self, bytes: Option<&[u8]>, stoppable: bool) {
        let in_data = !stoppable;
        match (bytes, self.transcript.as_mut()) {
            (Some(b), Some(t)) => t.client(b, in_data),
            (Some(_), None) => {}
            (None, _) => info!(session = self.who.sid, peer = %self.who.peer, in_data, "timeout"),
        }
    }

    async fn carry_out(
        &mut self,
        session: &mut SmtpSession,
        stream: &mut Stream,
        events: Vec<Event>,
    ) -> Result<bool, SessionEnd> {
        self.carry_out_events(session, stream, events).await
    }
}

impl Conn<'_> {
    /// On an implicit-TLS listener, the handshake before anything else; Ok(true) when done.
    async fn implicit_tls(
        &mut self,
        stream: &mut Stream,
        listener: Protocol,
    ) -> Result<bool, SessionEnd> {
        if !listener.is_implicit_tls() {
            return Ok(false);
        }
        let limit = Duration::from_secs(self.ctx.limits.command_timeout_secs);
        session::start_tls(self.who, stream, self.ctx.tls.clone(), limit, "implicit").await?;
        if let Some(t) = self.transcript.as_mut() {
            t.note("TLS established (implicit)");
        }
        Ok(true)
    }

    /// The greeting, then read → feed → carry out until the session ends.
    async fn dialogue(
        &mut self,
        session: &mut SmtpSession,
        stream: &mut Stream,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let command_timeout = Duration::from_secs(self.ctx.limits.command_timeout_secs);
        let greeting = session.greeting().to_bytes();
        if let Some(t) = self.transcript.as_mut() {
            t.server(&greeting);
        }
        if let Err(end) = session::write(stream, &greeting, command_timeout).await {
            return end;
        }
        session::drive(self, session, stream, shutdown, vec![0u8; COMMAND_READ_BUF]).await
    }

    /// Sends `out` (recording it in the transcript, saved first when a delivery needs linking).
    async fn send_out(
        &mut self,
        stream: &mut Stream,
        out: &mut Vec<u8>,
        limit: Duration,
    ) -> Result<(), SessionEnd> {
        if out.is_empty() {
            return Ok(());
        }
        // Saved before the reply is sent: a client that reads a 250 finds its transcript.
        if let Some(t) = self.transcript.as_mut() {
            t.server(out);
            save(t.snapshot(false)).await;
        }
        session::write(stream, out, limit).await?;
        out.clear();
        Ok(())
    }

    /// Carries out events in order (outcomes may bring more); Ok(true) on Close.
    async fn carry_out_events(
        &mut self,
        session: &mut SmtpSession,
        stream: &mut Stream,
        events: Vec<Event>,
    ) -> Result<bool, SessionEnd> {
        let limit = Duration::from_secs(self.ctx.limits.command_timeout_secs);
        let mut queue: VecDeque<Event> = events.into();
        let mut out: Vec<u8> = Vec::new();
        let mut closed = false;
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Reply(r) => out.extend_from_slice(&r.to_bytes()),
                Event::MessageStart(envelope) => {
                    let hostname = &self.ctx.policy.hostname;
                    let ip = self.who.peer.ip();
                    self.message = Some(Message::begin(&self.ctx.target, envelope, ip, hostname));
                }
                Event::MessageData(data) => {
                    if let Some(msg) = self.message.as_mut() {
                        msg.take(data).await;
                    }
                }
                Event::MessageAbort => {
                    stats::add(&self.ctx.stats.messages_rejected, 1);
                    if let Some(msg) = self.message.take() {
                        self.publish(
                            &msg.envelope,
                            None,
                            "refused",
                            "too big or a line too long",
                            None,
                        );
                        msg.discard().await;
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
                    let tls = self.ctx.tls.clone();
                    session::start_tls(self.who, stream, tls, limit, "STARTTLS").await?;
                    session.tls_started();
                    if let Some(t) = self.transcript.as_mut() {
                        t.note("TLS established (STARTTLS)");
                    }
                }
                Event::Authenticate { user, password } => {
                    let ok = self.authenticate(&user, password).await;
                    queue.extend(session.auth_result(ok, &user));
                }
                Event::Refused(r) => self.refused(&r, session.authenticated()),
                Event::Foreign(kind) => {
                    warn!(session = self.who.sid, peer = %self.who.peer, "connection closed: {kind}")
                }
            }
        }
        self.send_out(stream, &mut out, limit).await?;
        Ok(closed)
    }

    /// Checks AUTH credentials off the async threads; a failure waits longer each time.
    async fn authenticate(&mut self, user: &str, password: String) -> bool {
        let (accounts, delay) = (&self.ctx.accounts, self.ctx.auth_failure_delay);
        let ok = login::check(accounts, user, password, delay, self.auth_failures).await;
        let (sid, peer) = (self.who.sid, self.who.peer);
        if ok {
            info!(session = sid, peer = %peer, user = %user, "smtp auth");
        } else {
            self.auth_failures += 1;
            warn!(session = sid, peer = %peer, user = %user, "smtp auth failed");
        }
        ok
    }

    /// A refused MAIL, RCPT or DATA: logged with who and what, counted, shown to `watch`.
    fn refused(&self, r: &Refusal, user: Option<&str>) {
        self.ctx.stats.refused(r.stage, r.reason);
        let address = r.address.as_deref().map(printable);
        info!(
            session = self.who.sid,
            peer = %self.who.peer,
            user = user.unwrap_or("-"),
            stage = %r.stage,
            reason = %r.reason,
            address = address.as_deref().unwrap_or("-"),
            reply = %r.reply,
            "refused"
        );
        self.ctx.stats.watch.publish(|| WatchEvent {
            time: watch::now(),
            session: self.who.sid,
            peer: self.who.peer.to_string(),
            event: format!("{} refused", r.stage),
            from: r.address.clone().filter(|_| r.stage == Stage::Mail),
            to: r
                .address
                .iter()
                .filter(|_| r.stage != Stage::Mail)
                .cloned()
                .collect(),
            size: None,
            result: r.reply.to_string(),
            stored: None,
        });
    }

    fn publish_event(&self, name: &str, result: String) {
        self.ctx.stats.watch.publish(|| WatchEvent {
            time: watch::now(),
            session: self.who.sid,
            peer: self.who.peer.to_string(),
            event: name.to_string(),
            from: None,
            to: Vec::new(),
            size: None,
            result,
            stored: None,
        });
    }

    /// An event about a message; `stored`: its copies, once delivered.
    fn publish(
        &self,
        env: &Envelope,
        size: Option<u64>,
        event: &str,
        result: &str,
        stored: Option<Vec<std::path::PathBuf>>,
    ) {
        self.ctx.stats.watch.publish(|| WatchEvent {
            time: watch::now(),
            session: self.who.sid,
            peer: self.who.peer.to_string(),
            event: event.to_string(),
            from: Some(env.from.clone()),
            to: env.recipients.iter().map(|r| r.address.clone()).collect(),
            size,
            result: result.trim_end().to_string(),
            stored,
        });
    }

    /// The final dot: commit, count, log, and the engine's report.
    async fn finish(&mut self) -> Delivery {
        let Some(msg) = self.message.take() else {
            return Delivery::Failed(canned::storage_failed());
        };
        let envelope = msg.envelope.clone();
        let elapsed = msg.started;
        let to: Vec<String> = envelope
            .recipients
            .iter()
            .map(|r| r.address.clone())
            .collect();
        match msg.finish().await {
            Ok(c) => {
                self.messages += 1;
                let s = &self.ctx.stats;
                stats::add(&s.messages_accepted, 1);
                stats::add(&s.bytes_accepted, c.size);
                stats::add(&s.deliveries, c.copies as u64);
                info!(
                    session = self.who.sid,
                    id = %c.id,
                    from = %envelope.from,
                    to = %to.join(","),
                    size = c.size,
                    elapsed_ms = elapsed.elapsed().as_millis() as u64,
                    "delivered"
                );
                self.publish(
                    &envelope,
                    Some(c.size),
                    "delivered",
                    &format!("id {}", c.id),
                    c.files,
                );
                if let Some(t) = self.transcript.as_mut() {
                    t.delivered(&c.id);
                }
                Delivery::Done { id: c.id }
            }
            Err(e) => {
                stats::add(&self.ctx.stats.messages_rejected, 1);
                warn!(
                    session = self.who.sid,
                    peer = %self.who.peer,
                    from = %envelope.from,
                    to = %to.join(","),
                    error = %e,
                    "delivery failed"
                );
                let reply = failure_reply(&e);
                self.publish(&envelope, None, "delivery failed", &reply.to_string(), None);
                Delivery::Failed(reply)
            }
        }
    }
}

#[cfg(test)]
mod tests;
