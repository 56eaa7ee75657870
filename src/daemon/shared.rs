//! The daemon's shared state: the current config generation (swapped whole on reload), counters,
//! the pause flag, the bound listeners and the selftest's probe slot.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::acme::AcmeRuntime;
use super::generation::Generation;
use crate::auth::accounts::ProbeSlot;
use crate::control::proto::{
    DrainResult, ListenerInfo, QueueCounts, ReloadInfo, SessionCounts, Sessions, Status, TlsInfo,
};
use crate::http::Waiters;
use crate::log::LevelSetter;
use crate::net::Protocol;
use crate::net::limiter::ConnLimiter;
use crate::net::stats::Stats;
use crate::outbound::Outbound;

/// A reload asked through the control socket; answered when done.
pub type ReloadAsk = oneshot::Sender<ReloadInfo>;

pub struct Shared {
    current: RwLock<Arc<Generation>>,
    pub stats: Arc<Stats>,
    pub limiter: Arc<ConnLimiter>,
    pub smtp_paused: AtomicBool,
    /// `smtpctl drain`: `/health` answers 503 (shared with the HTTP listeners).
    pub draining: Arc<AtomicBool>,
    pub started: Instant,
    /// The directory smtpd started in: relative paths of a reloaded config resolve against it.
    pub base_dir: PathBuf,
    pub last_reload: Mutex<Option<ReloadInfo>>,
    pub set_level: LevelSetter,
    pub log_level: Mutex<String>,
    pub listeners: Mutex<Vec<ListenerInfo>>,
    /// Reloads asked by `smtpctl reload`, run by the main loop (the one writer of state).
    pub reload_tx: mpsc::Sender<ReloadAsk>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
    /// The selftest's one-off account, seen by the accounts of every generation.
    pub probe: Arc<ProbeSlot>,
    /// The outbound queue's runner (one for the daemon's life; `[queue] dir` needs a restart).
    pub outbound: Arc<Outbound>,
    /// HTTP waits in progress, across listeners and reloads.
    pub http_waiters: Arc<Waiters>,
    /// `GET /api/v1/events` streams open, across listeners and reloads.
    pub http_streams: Arc<Waiters>,
    /// The ACME loop's state: HTTP-01 answers, progress, renew requests.
    pub acme: Arc<AcmeRuntime>,
}

/// What [`Shared::new`] needs besides the first generation.
pub struct Parts {
    pub stats: Arc<Stats>,
    pub probe: Arc<ProbeSlot>,
    pub outbound: Arc<Outbound>,
    pub base_dir: PathBuf,
    pub set_level: LevelSetter,
    pub reload_tx: mpsc::Sender<ReloadAsk>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    pub fn new(generation: Generation, p: Parts) -> Shared {
        let level = generation.config.log.level.clone();
        Shared {
            current: RwLock::new(Arc::new(generation)),
            stats: p.stats,
            limiter: ConnLimiter::new(),
            smtp_paused: AtomicBool::new(false),
            draining: Arc::default(),
            started: Instant::now(),
            base_dir: p.base_dir,
            last_reload: Mutex::new(None),
            set_level: p.set_level,
            log_level: Mutex::new(level),
            listeners: Mutex::new(Vec::new()),
            reload_tx: p.reload_tx,
            shutdown: p.shutdown,
            tracker: p.tracker,
            probe: p.probe,
            outbound: p.outbound,
            http_waiters: Arc::default(),
            http_streams: Arc::default(),
            acme: Arc::default(),
        }
    }

    pub fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub fn swap(&self, g: Generation) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(g);
    }

    pub fn paused(&self) -> bool {
        self.smtp_paused.load(Ordering::Relaxed)
    }

    pub fn set_paused(&self, paused: bool) {
        self.smtp_paused.store(paused, Ordering::Relaxed);
    }

    /// `smtpctl drain`: `/health` answers 503 from now on; waits at least `settle_secs` (for the
    /// balancer's checks to see it), then until no SMTP, POP3 or IMAP session is open, at most
    /// `timeout_secs` in all.
    pub async fn drain(&self, timeout_secs: u64, settle_secs: u64) -> DrainResult {
        self.draining.store(true, Ordering::Relaxed);
        tracing::info!("draining (smtpctl drain): /health answers 503, sessions are still served");
        let start = Instant::now();
        let deadline = start + std::time::Duration::from_secs(timeout_secs);
        let settle = start + std::time::Duration::from_secs(settle_secs.min(timeout_secs));
        let open = || {
            let s = self.stats.snapshot();
            s.smtp_active + s.pop3_active + s.imap_active
        };
        loop {
            let now = Instant::now();
            let sessions = open();
            if (now >= settle && sessions == 0) || now >= deadline || self.shutdown.is_cancelled() {
                let drained = sessions == 0;
                tracing::info!(
                    drained,
                    sessions,
                    "drain: {}",
                    if drained {
                        "no session left"
                    } else {
                        "timed out with sessions open"
                    }
                );
                return DrainResult {
                    drained,
                    sessions,
                    waited_ms: start.elapsed().as_millis() as u64,
                };
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub fn log_level(&self) -> String {
        lock(&self.log_level).clone()
    }

    /// Records the level in force; returns the one before.
    pub fn record_log_level(&self, level: &str) -> String {
        std::mem::replace(&mut *lock(&self.log_level), level.to_string())
    }

    pub fn record_reload(&self, info: &ReloadInfo) {
        *lock(&self.last_reload) = Some(info.clone());
    }

    pub fn publish_listeners(&self, info: Vec<ListenerInfo>) {
        *lock(&self.listeners) = info;
    }

    /// "3 sessions, 1200 messages delivered" for systemd's STATUS=.
    pub fn status_line(&self) -> String {
        let s = self.stats.snapshot();
        format!(
            "{} sessions, {} messages delivered{}",
            s.smtp_active + s.pop3_active,
            s.messages_accepted,
            if self.paused() { ", SMTP paused" } else { "" }
        )
    }

    pub fn status(&self) -> Status {
        let g = self.current();
        let s = self.stats.snapshot();
        Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            config: g.config.path.display().to_string(),
            listeners: lock(&self.listeners).clone(),
            sessions: Sessions {
                smtp: SessionCounts {
                    active: s.smtp_active,
                    total: s.smtp_total,
                },
                pop3: SessionCounts {
                    active: s.pop3_active,
                    total: s.pop3_total,
                },
            },
            counters: s,
            smtp_paused: self.paused(),
            draining: self.draining.load(Ordering::Relaxed),
            log_level: self.log_level(),
            last_reload: lock(&self.last_reload).clone(),
            queue: {
                let (messages, deferred) = self.outbound.counts();
                QueueCounts { messages, deferred }
            },
            tls: self.tls_info(),
        }
    }

    /// The certificate in use and the ACME renewal, when `[tls]` is set.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        let g = self.current();
        let tls = g.config.tls.as_ref()?;
        Some(self.acme.info(tls))
    }

    /// Every serving listener and the address it is bound to (for the autoconfig document).
    pub fn bound_listeners(&self) -> Vec<(Protocol, SocketAddr)> {
        lock(&self.listeners)
            .iter()
            .filter_map(|l| Some((l.protocol, l.address.parse().ok()?)))
            .collect()
    }

    /// The first listener of `protocol`, as a client on this host reaches it.
    pub fn listener_address(&self, protocol: Protocol) -> Option<SocketAddr> {
        let listeners = lock(&self.listeners);
        let l = listeners.iter().find(|l| l.protocol == protocol)?;
        let mut addr: SocketAddr = l.address.parse().ok()?;
        if addr.ip().is_unspecified() {
            addr.set_ip(if addr.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            });
        }
        Some(addr)
    }
}
