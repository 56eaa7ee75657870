//! The only IMAP socket code: read → feed the engine → carry out its events (check passwords and
//! open the account, STARTTLS, IDLE) → write. The engine works on the Maildir through its store,
//! so it is fed on a blocking-capable thread (`block_in_place`). In IDLE the session also wakes on
//! this daemon's deliveries and its other sessions' changes (watch events), on inotify events in
//! the selected folder (changes by other programs), and every `idle_poll_secs` in any case.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::Protocol;
use super::imap_store::{ImapMaildir, Shared};
use super::imap_watch::FolderWatch;
use super::login;
use super::pop3_conn::is_loopback;
use super::session::{self, SessionEnd, Who};
use super::stats::{self, ActiveGuard, Stats};
use super::tls::Stream;
use super::watch::{self, WatchEvent};
use crate::auth::accounts::Accounts;
use crate::config::Config;
use crate::mailbox::MaildirStore;
use crate::proto::imap::{Event, ImapPolicy, ImapSession, LoginOutcome};

const READ_BUF: usize = 16 * 1024;

/// What every IMAP session of one config generation shares.
pub struct ImapContext {
    pub hostname: String,
    pub accounts: Arc<Accounts>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub store: Arc<MaildirStore>,
    pub allow_insecure_auth: bool,
    pub max_errors: u32,
    pub max_literal: u32,
    pub max_line: u32,
    pub idle_timeout: Duration,
    pub idle_poll: Duration,
    /// How each folder keeps its index.
    pub index: crate::mailbox::imap::Options,
    pub auth_failure_delay: Duration,
    pub stats: Arc<Stats>,
}

impl ImapContext {
    pub fn new(
        config: &Config,
        store: Arc<MaildirStore>,
        stats: Arc<Stats>,
        accounts: Arc<Accounts>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        let c = &config.imap;
        ImapContext {
            hostname: config.hostname.clone(),
            accounts,
            tls,
            store,
            allow_insecure_auth: c.allow_insecure_auth,
            max_errors: config.limits.max_errors,
            max_literal: c.max_literal,
            max_line: c.max_line,
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            idle_poll: Duration::from_secs(c.idle_poll_secs),
            index: crate::mailbox::imap::Options {
                expunges_kept: usize::try_from(c.expunges_kept).unwrap_or(usize::MAX),
                mtime_granularity: (c.mtime_granularity_ms > 0)
                    .then(|| Duration::from_millis(c.mtime_granularity_ms)),
            },
            auth_failure_delay: Duration::from_millis(c.auth_failure_delay_ms),
            stats,
        }
    }
}

/// Runs the engine where it may block on the disk.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The watch event of an IMAP session that changed messages of an account (`to`).
pub const CHANGED: &str = "mailbox changed";

fn is_delivery(e: &WatchEvent) -> bool {
    e.event == "delivered" || e.event == "queue delivered"
}

/// Whether a delivery event may have put a message in the folder `selected` (a session in IDLE
/// wakes only then): its copies' paths (`<folder>/new/<name>`) name the folder, or, when they
/// are not known, it might have.
fn delivered_into(e: &WatchEvent, selected: Option<&std::path::Path>) -> bool {
    match (&e.stored, selected) {
        (Some(paths), Some(folder)) => paths
            .iter()
            .any(|p| p.parent().and_then(|new| new.parent()) == Some(folder)),
        _ => true,
    }
}

pub async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Arc<ImapContext>,
    listener: Protocol,
    shutdown: CancellationToken,
) {
    let who = Who::new(peer);
    let started = Instant::now();
    let _active = ActiveGuard::new(&ctx.stats.imap_active, &ctx.stats.imap_total);
    let policy = Arc::new(ImapPolicy {
        hostname: ctx.hostname.clone(),
        plaintext_allowed: is_loopback(&peer) || ctx.allow_insecure_auth,
        tls_available: ctx.tls.is_some(),
        max_errors: ctx.max_errors,
        max_literal: ctx.max_literal,
        max_line: ctx.max_line,
    });
    let mut session = ImapSession::new(policy);
    let mut stream = Stream::Plain(tcp);
    info!(session = who.sid, peer = %peer, listener = %listener, "imap session start");
    let mut conn = Conn {
        who,
        ctx: Arc::clone(&ctx),
        idle: None,
        account: None,
        folder_watch: None,
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
    // The account (and its selected folder) is let go off the async threads.
    blocking(|| drop(session.shutdown()));
    info!(
        session = who.sid,
        peer = %peer,
        listener = %listener,
        tls = stream.is_tls(),
        user = session.user.as_deref().unwrap_or("-"),
        failed_logins = session.failed_logins,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "imap session end: {end}"
    );
}

struct Conn {
    who: Who,
    ctx: Arc<ImapContext>,
    /// Delivery events, subscribed while the session is in IDLE.
    idle: Option<broadcast::Receiver<WatchEvent>>,
    /// After login: the account's address and what the store shares: its "changed messages"
    /// flag, published after each command as a "mailbox changed" event that wakes the account's
    /// other IDLEs, and the selected folder, watched with inotify during IDLE.
    account: Option<(String, Arc<Shared>)>,
    /// In IDLE: the selected folder's new/ and cur/ (changes by other programs).
    folder_watch: Option<FolderWatch>,
}

enum Wake {
    Bytes(usize),
    Closed,
    Timeout,
    Shutdown,
    Poll,
}

impl Conn {
    async fn dialogue(
        &mut self,
        s: &mut ImapSession,
        stream: &mut Stream,
        shutdown: &CancellationToken,
    ) -> SessionEnd {
        let limit = self.ctx.idle_timeout;
        if let Err(end) = session::write(stream, &s.greeting(), limit).await {
            return end;
        }
        let mut buf = vec![0u8; READ_BUF];
        let mut last_input = tokio::time::Instant::now();
        loop {
            let wake = self.wait(stream, &mut buf, shutdown, last_input).await;
            let events = match wake {
                Ok(Wake::Bytes(n)) => {
                    last_input = tokio::time::Instant::now();
                    blocking(|| s.feed(&buf[..n]))
                }
                Ok(Wake::Closed) => return SessionEnd::ClientClosed,
                Ok(Wake::Timeout) => s.timeout(),
                Ok(Wake::Shutdown) => s.shutdown(),
                Ok(Wake::Poll) => blocking(|| s.idle_poll()),
                Err(end) => return end,
            };
            let result = self.carry_out(s, stream, events).await;
            self.tell_others();
            if !s.is_idle() {
                self.idle = None;
                self.folder_watch = None;
            }
            if let Err(end) = session::carried_out(result, stream).await {
                return end;
            }
        }
    }

    /// Publishes "mailbox changed" when the last command changed messages.
    fn tell_others(&self) {
        let Some((address, changed)) = &self.account else {
            return;
        };
        if changed.changed.swap(false, Ordering::Relaxed) {
            self.ctx.stats.watch.publish(|| WatchEvent {
                time: watch::now(),
                session: self.who.sid,
                peer: self.who.peer.to_string(),
                event: CHANGED.to_string(),
                from: None,
                to: vec![address.clone()],
                size: None,
                result: String::new(),
                stored: None,
            });
        }
    }

    /// Waits for input, the autologout, a shutdown, or (in IDLE) a reason to look again.
    async fn wait(
        &mut self,
        stream: &mut Stream,
        buf: &mut [u8],
        shutdown: &CancellationToken,
        last_input: tokio::time::Instant,
    ) -> Result<Wake, SessionEnd> {
        if shutdown.is_cancelled() {
            return Ok(Wake::Shutdown);
        }
        let deadline = last_input + self.ctx.idle_timeout;
        let poll = self.ctx.idle_poll;
        let idling = self.idle.is_some();
        let idle = self.idle.as_mut();
        let me = self.who.sid;
        let address = self.account.as_ref().map(|a| a.0.as_str());
        let selected = self.account.as_ref().and_then(|a| a.1.selected_dir());
        let delivered = async {
            match idle {
                Some(rx) => loop {
                    match rx.recv().await {
                        Ok(e) if is_delivery(&e) && delivered_into(&e, selected.as_deref()) => {
                            return;
                        }
                        Ok(e)
                            if e.event == CHANGED
                                && e.session != me
                                && address.is_some_and(|a| e.mentions(a)) =>
                        {
                            return;
                        }
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => return,
                        Err(broadcast::error::RecvError::Closed) => {
                            std::future::pending::<()>().await
                        }
                    }
                },
                None => std::future::pending::<()>().await,
            }
        };
        let folder_watch = self.folder_watch.as_mut();
        let touched = async {
            match folder_watch {
                Some(w) => w.changed().await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            r = stream.read(buf) => match r {
                Ok(0) => Ok(Wake::Closed),
                Ok(n) => Ok(Wake::Bytes(n)),
                Err(e) => Err(SessionEnd::ReadFailed(e)),
            },
            _ = tokio::time::sleep_until(deadline) => Ok(Wake::Timeout),
            _ = shutdown.cancelled() => Ok(Wake::Shutdown),
            _ = delivered => Ok(Wake::Poll),
            _ = touched => Ok(Wake::Poll),
            _ = tokio::time::sleep(poll), if idling => Ok(Wake::Poll),
        }
    }

    /// Carries out events in order; Ok(true) when the session is to close.
    async fn carry_out(
        &mut self,
        s: &mut ImapSession,
        stream: &mut Stream,
        events: Vec<Event>,
    ) -> Result<bool, SessionEnd> {
        let limit = self.ctx.idle_timeout;
        let mut queue: std::collections::VecDeque<Event> = events.into();
        let mut out: Vec<u8> = Vec::new();
        let mut closed = false;
        while let Some(ev) = queue.pop_front() {
            match ev {
                Event::Reply(b) => out.extend_from_slice(&b),
                Event::Login { user, password } => {
                    // Written first: the client may wait for a continuation before this.
                    session::write(stream, &out, limit).await?;
                    out.clear();
                    let outcome = self.login(&user, password, s.failed_logins).await;
                    queue.extend(blocking(|| s.login(outcome)));
                }
                Event::StartTls => {
                    session::write(stream, &out, limit).await?;
                    out.clear();
                    session::start_tls(self.who, stream, self.ctx.tls.clone(), limit, "STARTTLS")
                        .await?;
                    s.tls_started();
                }
                Event::Idle => {
                    if self.idle.is_none() {
                        self.idle = Some(self.ctx.stats.watch.subscribe());
                        self.folder_watch = self
                            .account
                            .as_ref()
                            .and_then(|a| a.1.selected_dir())
                            .and_then(|d| FolderWatch::new(&d));
                    }
                }
                Event::Literal { file, binary } => {
                    session::write(stream, &out, limit).await?;
                    out.clear();
                    super::imap_literal::write(self.who, stream, &file, binary, limit).await?;
                }
                Event::Close => closed = true,
                Event::Foreign(kind) => {
                    warn!(session = self.who.sid, peer = %self.who.peer, "connection closed: {kind}")
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
            // The same growing delay as POP3, and the same reply for unknown users.
            stats::add(&self.ctx.stats.imap_failed_logins, 1);
            warn!(session = self.who.sid, peer = %self.who.peer, user = %address, known, "imap login failed");
            return LoginOutcome::BadCredentials;
        }
        let Some((local, domain)) = address.rsplit_once('@') else {
            return LoginOutcome::BadCredentials;
        };
        let store = Arc::clone(&self.ctx.store);
        let (local, domain) = (local.to_string(), domain.to_string());
        let opts = self.ctx.index;
        let opened = tokio::task::spawn_blocking(move || {
            let dir = store.maildir(&domain, &local).map_err(|e| e.to_string())?;
            store.ensure(&dir).map_err(|e| e.to_string())?;
            ImapMaildir::open(&dir, Arc::clone(&store), opts).map_err(|e| e.to_string())
        })
        .await;
        match opened {
            Ok(Ok(account)) => {
                info!(session = self.who.sid, peer = %self.who.peer, user = %address, "imap login");
                self.account = Some((address.clone(), account.shared()));
                stats::add(&self.ctx.stats.imap_logins, 1);
                LoginOutcome::Ok(Box::new(account))
            }
            Ok(Err(e)) => {
                warn!(session = self.who.sid, user = %address, error = %e, "imap account unavailable");
                LoginOutcome::TempFail
            }
            Err(e) => {
                warn!(session = self.who.sid, error = %e, "imap login task failed");
                LoginOutcome::TempFail
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn delivery(stored: Option<Vec<&str>>) -> WatchEvent {
        WatchEvent {
            time: 0,
            session: 1,
            peer: "127.0.0.1:9".into(),
            event: "delivered".into(),
            from: None,
            to: vec!["bob@example.test".into()],
            size: None,
            result: String::new(),
            stored: stored.map(|v| v.into_iter().map(PathBuf::from).collect()),
        }
    }

    /// A session in IDLE wakes for a delivery into its selected folder, not for one into
    /// another account's Maildir (or another folder); when the copies are not known, it wakes.
    #[test]
    fn idle_wakes_only_for_deliveries_into_its_folder() {
        let alice = Path::new("/m/example.test/alice");
        let into_alice = delivery(Some(vec!["/m/example.test/alice/new/1.M1P1.h"]));
        let into_bob = delivery(Some(vec!["/m/example.test/bob/new/1.M2P1.h"]));
        let both = delivery(Some(vec![
            "/m/example.test/bob/new/1.M3P1.h",
            "/m/example.test/alice/new/1.M3P1.h",
        ]));
        assert!(delivered_into(&into_alice, Some(alice)));
        assert!(!delivered_into(&into_bob, Some(alice)));
        assert!(delivered_into(&both, Some(alice)));
        assert!(!delivered_into(
            &into_alice,
            Some(Path::new("/m/example.test/alice/.Sent"))
        ));
        assert!(delivered_into(&delivery(None), Some(alice)));
        assert!(delivered_into(&into_bob, None));
    }
}
