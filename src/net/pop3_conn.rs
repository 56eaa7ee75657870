//! The only POP3 socket code: read → feed the engine → carry out its events (check passwords,
//! lock and list the maildrop, stream messages, apply UPDATE) → write.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Protocol;
use super::login;
use super::session::{self, SessionEnd, Who};
use super::stats::{self, ActiveGuard, Stats};
use super::tls::Stream;
use super::watch::{self, WatchEvent};
use crate::auth::accounts::Accounts;
use crate::config::Config;
use crate::mailbox::MaildirStore;
use crate::mailbox::maildrop::{self, Maildrop, MaildropError};
use crate::proto::pop3::retr::Encoder;
use crate::proto::pop3::{Entry, Event, LoginOutcome, Pop3Policy, Pop3Session};

const READ_BUF: usize = 16 * 1024;
const SEND_CHUNK: usize = 64 * 1024;

/// What every POP3 session of one config generation shares.
pub struct Pop3Context {
    pub hostname: String,
    pub accounts: Arc<Accounts>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub store: Arc<MaildirStore>,
    pub allow_insecure_auth: bool,
    pub max_command_line: usize,
    pub max_errors: u32,
    pub idle_timeout: Duration,
    pub auth_failure_delay: Duration,
    pub stats: Arc<Stats>,
}

impl Pop3Context {
    pub fn new(
        config: &Config,
        store: Arc<MaildirStore>,
        stats: Arc<Stats>,
        accounts: Arc<Accounts>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        Pop3Context {
            hostname: config.hostname.clone(),
            accounts,
            tls,
            store,
            allow_insecure_auth: config.pop3.allow_insecure_auth,
            max_command_line: config.pop3.max_command_line,
            max_errors: config.limits.max_errors,
            idle_timeout: Duration::from_secs(config.pop3.idle_timeout_secs),
            auth_failure_delay: Duration::from_millis(config.pop3.auth_failure_delay_ms),
            stats,
        }
    }
}

/// Loopback peers are treated as secure, as Dovecot treats localhost.
pub fn is_loopback(peer: &SocketAddr) -> bool {
    match peer.ip() {
        std::net::IpAddr::V4(a) => a.is_loopback(),
        std::net::IpAddr::V6(a) => {
            a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

struct Conn {
    who: Who,
    ctx: Arc<Pop3Context>,
    maildrop: Option<Maildrop>,
    /// The logged-in address (for the "mailbox changed" event after an update).
    address: String,
    retrieved: u64,
    bytes: u64,
    deleted: u64,
}

pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Pop3Context>,
    listener: Protocol,
    shutdown: CancellationToken,
) {
    let who = Who::new(peer);
    let started = Instant::now();
    let _active = ActiveGuard::new(&ctx.stats.pop3_active, &ctx.stats.pop3_total);
    let policy = Arc::new(Pop3Policy {
        hostname: ctx.hostname.clone(),
        plaintext_allowed: is_loopback(&peer) || ctx.allow_insecure_auth,
        max_command_line: ctx.max_command_line,
        max_errors: ctx.max_errors,
        tls_available: ctx.tls.is_some(),
    });
    let mut session = Pop3Session::new(policy);
    let mut stream = Stream::Plain(tcp);
    info!(session = who.sid, peer = %peer, listener = %listener, "pop3 session start");
    let mut conn = Conn {
        who,
        ctx: Arc::clone(&ctx),
        maildrop: None,
        address: String::new(),
        retrieved: 0,
        bytes: 0,
        deleted: 0,
    };
    let end = if listener.is_implicit_tls() {
        match session::start_tls(
            who,
            &mut stream,
            ctx.tls.clone(),
            ctx.idle_timeout,
            "implicit",
        )
        .await
        {
            Ok(()) => {
                session = session.with_tls();
                conn.dialogue(&mut session, &mut stream, &shutdown).await
            }
            Err(end) => end,
        }
    } else {
        conn.dialogue(&mut session, &mut stream, &shutdown).await
    };
    // Dropping the maildrop releases its lock; nothing is deleted without QUIT.
    if let Some(md) = conn.maildrop.take() {
        let _ = tokio::task::spawn_blocking(move || drop(md)).await;
    }
    info!(
        session = who.sid,
        peer = %peer,
        listener = %listener,
        tls = stream.is_tls(),
        user = session.user.as_deref().unwrap_or("-"),
        retrieved = conn.retrieved,
        bytes = conn.bytes,
        deleted = conn.deleted,
        failed_logins = session.failed_logins,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "pop3 session end: {end}"
    );
}

/// Up to SEND_CHUNK octets; shorter only at the end of the file.
fn read_chunk(file: &mut std::fs::File) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut buf = vec![0u8; SEND_CHUNK];
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(n);
    Ok(buf)
}

impl session::Driver for Conn {
    type Engine = Pop3Session;

    fn next_read(&self, _: &Pop3Session, _: &mut Vec<u8>) -> (Duration, bool) {
        (self.ctx.idle_timeout, true)
    }

    async fn carry_out(
        &mut self,
        session: &mut Pop3Session,
        stream: &mut Stream,
        events: Vec<Event>,
    ) -> Result<bool, SessionEnd> {
        self.carry_out_events(session, stream, events).await
    }
}

impl Conn {
    /// The greeting, then read → feed → carry out until the session ends.
    async fn dialogue(
        &mut self,
        session: &mut Pop3Session,
        stream: &mut Stream,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let timeout = self.ctx.idle_timeout;
        if let Err(end) = session::write(stream, &session.greeting(), timeout).await {
            return end;
        }
        session::drive(self, session, stream, shutdown, vec![0u8; READ_BUF]).await
    }

    /// Carries out events in order; Ok(true) when the session is to close.
    async fn carry_out_events(
        &mut self,
        session: &mut Pop3Session,
        stream: &mut Stream,
        events: Vec<Event>,
    ) -> Result<bool, SessionEnd> {
        let limit = self.ctx.idle_timeout;
        let mut queue: VecDeque<Event> = events.into();
        let mut out: Vec<u8> = Vec::new();
        let mut closed = false;
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Reply(bytes) => out.extend_from_slice(&bytes),
                Event::Login { user, password } => {
                    let outcome = self.login(&user, password, session.failed_logins).await;
                    queue.extend(session.login(outcome, &user.to_ascii_lowercase()));
                }
                Event::Send { index, top, size } => {
                    session::write(stream, &out, limit).await?;
                    out.clear();
                    self.send(stream, index, top, size).await?;
                }
                Event::Update { delete, seen } => {
                    let done = self.update(delete, seen).await;
                    queue.extend(session.updated(done));
                }
                Event::Close => closed = true,
                Event::Foreign(kind) => {
                    warn!(session = self.who.sid, peer = %self.who.peer, "connection closed: {kind}")
                }
                Event::StartTls => {
                    session::write(stream, &out, limit).await?;
                    out.clear();
                    let tls = self.ctx.tls.clone();
                    session::start_tls(self.who, stream, tls, limit, "STLS").await?;
                    session.tls_started();
                }
            }
        }
        if !out.is_empty() {
            session::write(stream, &out, limit).await?;
        }
        Ok(closed)
    }

    async fn login(&mut self, user: &str, pass: String, failures_before: u32) -> LoginOutcome {
        let address = user.to_ascii_lowercase();
        let (accounts, delay) = (&self.ctx.accounts, self.ctx.auth_failure_delay);
        let known = accounts.exists(&address);
        if !login::check(accounts, &address, pass, delay, failures_before).await {
            // The same reply for unknown users and wrong passwords, after the growing delay.
            stats::add(&self.ctx.stats.pop3_failed_logins, 1);
            warn!(session = self.who.sid, peer = %self.who.peer, user = %address, known, "pop3 login failed");
            return LoginOutcome::BadCredentials;
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return LoginOutcome::BadCredentials;
        };
        let store = Arc::clone(&self.ctx.store);
        let (local, domain) = (local.to_string(), domain.to_string());
        let opened = tokio::task::spawn_blocking(move || {
            let dir = store.maildir(&domain, &local)?;
            store.ensure(&dir)?;
            match maildrop::open(&dir) {
                // Removed behind the store's back since it was made: make it again.
                Err(e) if e.is_not_found() => {
                    store.forget(&dir);
                    store.ensure(&dir)?;
                    maildrop::open(&dir)
                }
                other => other,
            }
        })
        .await;
        match opened {
            Ok(Ok(md)) => {
                let entries = md
                    .messages
                    .iter()
                    .map(|m| Entry {
                        uid: m.uid.clone(),
                        size: m.size,
                    })
                    .collect();
                info!(session = self.who.sid, peer = %self.who.peer, user = %address, messages = md.messages.len(), "pop3 login");
                self.maildrop = Some(md);
                self.address = address.clone();
                stats::add(&self.ctx.stats.pop3_logins, 1);
                LoginOutcome::Ok(entries)
            }
            Ok(Err(MaildropError::InUse)) => {
                info!(session = self.who.sid, user = %address, "pop3 maildrop in use");
                LoginOutcome::InUse
            }
            Ok(Err(e)) => {
                warn!(session = self.who.sid, user = %address, error = %e, "pop3 maildrop unavailable");
                LoginOutcome::TempFail
            }
            Err(e) => {
                warn!(session = self.who.sid, error = %e, "pop3 login task failed");
                LoginOutcome::TempFail
            }
        }
    }

    /// Streams one message: "+OK", the content converted chunk by chunk, ".".
    async fn send(
        &mut self,
        stream: &mut Stream,
        index: usize,
        top: Option<u64>,
        size: u64,
    ) -> Result<(), SessionEnd> {
        let limit = self.ctx.idle_timeout;
        let path = self
            .maildrop
            .as_ref()
            .and_then(|m| m.messages.get(index))
            .map(|m| m.path.clone());
        let first = match path {
            Some(p) => tokio::task::spawn_blocking(move || {
                let mut file = std::fs::File::open(&p)?;
                let chunk = read_chunk(&mut file)?;
                Ok::<_, std::io::Error>((file, chunk))
            })
            .await
            .ok()
            .and_then(|r| r.ok()),
            None => None,
        };
        let Some((mut file, mut chunk)) = first else {
            let msg = format!(
                "-ERR [SYS/TEMP] Message {} is no longer available\r\n",
                index + 1
            );
            return session::write(stream, msg.as_bytes(), limit).await;
        };
        let mut out = Vec::with_capacity(SEND_CHUNK + SEND_CHUNK / 16);
        match top {
            None => out.extend_from_slice(format!("+OK {size} octets\r\n").as_bytes()),
            Some(_) => out.extend_from_slice(b"+OK Top of message follows\r\n"),
        }
        let mut encoder = match top {
            None => Encoder::retr(),
            Some(n) => Encoder::top(n),
        };
        // A message that fits one chunk goes out in one write: status line, text, terminator.
        loop {
            encoder.feed(&chunk, &mut out);
            if encoder.is_done() || chunk.len() < SEND_CHUNK {
                break;
            }
            session::write(stream, &out, limit).await?;
            self.bytes += out.len() as u64;
            out.clear();
            let next = tokio::task::spawn_blocking(move || {
                let r = read_chunk(&mut file);
                (file, r)
            })
            .await;
            match next {
                Ok((f, Ok(c))) => {
                    file = f;
                    chunk = c;
                }
                Ok((_, Err(e))) => {
                    // Mid-message: the client cannot be told cleanly; end the response and log.
                    warn!(session = self.who.sid, error = %e, "pop3 read failed mid-message");
                    break;
                }
                Err(e) => {
                    warn!(session = self.who.sid, error = %e, "pop3 read task failed");
                    break;
                }
            }
        }
        encoder.finish(&mut out);
        self.bytes += out.len() as u64;
        session::write(stream, &out, limit).await?;
        if top.is_none() {
            self.retrieved += 1;
            stats::add(&self.ctx.stats.pop3_retrieved, 1);
        }
        Ok(())
    }

    async fn update(&mut self, delete: Vec<usize>, seen: Vec<usize>) -> bool {
        let Some(md) = self.maildrop.take() else {
            return true;
        };
        let n = delete.len() as u64;
        let changed = !delete.is_empty() || !seen.is_empty();
        let result = tokio::task::spawn_blocking(move || {
            let r = md.update(&delete, &seen);
            drop(md);
            r
        })
        .await;
        match result {
            Ok(Ok(())) => {
                self.deleted += n;
                stats::add(&self.ctx.stats.pop3_deleted, n);
                if changed {
                    // IMAP sessions of the account in IDLE look again at once.
                    self.ctx.stats.watch.publish(|| WatchEvent {
                        time: watch::now(),
                        session: self.who.sid,
                        peer: self.who.peer.to_string(),
                        event: super::imap_conn::CHANGED.to_string(),
                        from: None,
                        to: vec![self.address.clone()],
                        size: None,
                        result: String::new(),
                        stored: None,
                    });
                }
                true
            }
            Ok(Err(e)) => {
                warn!(session = self.who.sid, error = %e, "pop3 update failed");
                false
            }
            Err(e) => {
                warn!(session = self.who.sid, error = %e, "pop3 update task failed");
                false
            }
        }
    }
}
