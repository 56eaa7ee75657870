//! The daemon's shared state: the current config generation (swapped whole on reload; each
//! session keeps the one it started with), counters, pause flag, and the control-socket handler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::accounts::Accounts;
use crate::config::Config;
use crate::control::proto::{
    ListenerInfo, LogLevelResult, MailboxInfo, ReloadInfo, Request, ResponseLine, SendTestResult,
    SessionCounts, Sessions, Status,
};
use crate::control::server::{Handler, Peer, Reply};
use crate::log::LevelSetter;
use crate::mailbox::MaildirStore;
use crate::net::limiter::ConnLimiter;
use crate::net::pop3_conn::Pop3Context;
use crate::net::smtp_conn::SmtpContext;
use crate::net::stats::Stats;
use crate::net::tls::TlsError;

/// Everything built from one config.
pub struct Generation {
    pub config: Arc<Config>,
    /// When this generation was built (a certificate file newer than this has changed).
    pub built_at: SystemTime,
    pub smtp: Arc<SmtpContext>,
    pub pop3: Arc<Pop3Context>,
}

impl Generation {
    /// Builds the contexts; loads (or makes) the TLS certificate when `[tls]` is set.
    pub fn build(config: Config, stats: &Arc<Stats>) -> Result<Generation, TlsError> {
        let tls = match &config.tls {
            Some(t) => Some(crate::net::tls::server_config(t, &config.hostname)?),
            None => None,
        };
        let store = Arc::new(MaildirStore::new(
            config.mailboxes.root.clone(),
            &config.hostname,
        ));
        let accounts = Arc::new(Accounts::new(&config.accounts));
        let smtp = Arc::new(SmtpContext {
            policy: Arc::new(config.smtp_policy(false)),
            submission_policy: Arc::new(config.smtp_policy(true)),
            store: Arc::clone(&store),
            limits: config.limits.clone(),
            stats: Arc::clone(stats),
            accounts: Arc::clone(&accounts),
            tls: tls.clone(),
            auth_failure_delay: Duration::from_millis(config.pop3.auth_failure_delay_ms),
            transcripts: config.transcripts(),
        });
        let pop3 = Arc::new(Pop3Context::new(
            &config,
            store,
            Arc::clone(stats),
            accounts,
            tls,
        ));
        Ok(Generation {
            config: Arc::new(config),
            built_at: SystemTime::now(),
            smtp,
            pop3,
        })
    }
}

/// A reload asked through the control socket; answered when done.
pub type ReloadAsk = oneshot::Sender<ReloadInfo>;

pub struct Shared {
    current: RwLock<Arc<Generation>>,
    pub stats: Arc<Stats>,
    pub limiter: Arc<ConnLimiter>,
    pub smtp_paused: AtomicBool,
    pub started: Instant,
    /// The directory smtpd started in: relative paths of a reloaded config resolve against it.
    pub base_dir: PathBuf,
    pub last_reload: Mutex<Option<ReloadInfo>>,
    pub set_level: LevelSetter,
    pub log_level: Mutex<String>,
    pub listeners: Mutex<Vec<ListenerInfo>>,
    pub reload_tx: mpsc::Sender<ReloadAsk>,
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Shared {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        generation: Generation,
        stats: Arc<Stats>,
        base_dir: PathBuf,
        set_level: LevelSetter,
        reload_tx: mpsc::Sender<ReloadAsk>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) -> Shared {
        let level = generation.config.log.level.clone();
        Shared {
            current: RwLock::new(Arc::new(generation)),
            stats,
            limiter: ConnLimiter::new(),
            smtp_paused: AtomicBool::new(false),
            started: Instant::now(),
            base_dir,
            last_reload: Mutex::new(None),
            set_level,
            log_level: Mutex::new(level),
            listeners: Mutex::new(Vec::new()),
            reload_tx,
            shutdown,
            tracker,
        }
    }

    pub fn current(&self) -> Arc<Generation> {
        Arc::clone(&self.current.read().unwrap_or_else(|e| e.into_inner()))
    }

    pub fn swap(&self, g: Generation) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(g);
    }

    pub fn paused(&self) -> bool {
        self.smtp_paused.load(Ordering::Relaxed)
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

    fn status(&self) -> Status {
        let g = self.current();
        let s = self.stats.snapshot();
        Status {
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            config: g.config.path.display().to_string(),
            listeners: self.listeners.lock().map(|l| l.clone()).unwrap_or_default(),
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
            log_level: self.log_level.lock().map(|l| l.clone()).unwrap_or_default(),
            last_reload: self.last_reload.lock().ok().and_then(|l| l.clone()),
        }
    }

    /// `smtpctl reload --check`: validates and describes, applies nothing.
    async fn reload_check(&self, config: Option<String>) -> ResponseLine {
        let g = self.current();
        let path = config
            .map(PathBuf::from)
            .unwrap_or_else(|| g.config.path.clone());
        let base = self.base_dir.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            crate::config::load(&path).map(|mut c| {
                c.absolutize(&base);
                c
            })
        })
        .await;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let info = match loaded {
            Ok(Ok(new)) => {
                let (mut changes, restart) = super::diff::describe(&g.config, &new, g.built_at);
                changes.extend(
                    restart
                        .iter()
                        .map(|r| format!("{r} changed: needs a restart")),
                );
                let mut errors = Vec::new();
                if let Some(t) = &new.tls
                    && let Err(e) = crate::net::tls::check(t, &new.hostname)
                {
                    errors.push(e.to_string());
                }
                ReloadInfo {
                    at: now,
                    applied: false,
                    errors,
                    changes,
                }
            }
            Ok(Err(e)) => ReloadInfo {
                at: now,
                applied: false,
                errors: e.to_string().lines().map(str::to_string).collect(),
                changes: Vec::new(),
            },
            Err(e) => ReloadInfo {
                at: now,
                applied: false,
                errors: vec![e.to_string()],
                changes: Vec::new(),
            },
        };
        ResponseLine::ok(info)
    }

    /// Prometheus text exposition of the counters (readable without root: OpenSMTPD#1313).
    pub(crate) fn metrics(&self) -> String {
        let s = self.stats.snapshot();
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(&str, u64)]| {
            out.push_str(&format!(
                "# HELP smtpd_{name} {help}\n# TYPE smtpd_{name} {kind}\n"
            ));
            for (labels, v) in samples {
                if labels.is_empty() {
                    out.push_str(&format!("smtpd_{name} {v}\n"));
                } else {
                    out.push_str(&format!("smtpd_{name}{{{labels}}} {v}\n"));
                }
            }
        };
        metric(
            "sessions_total",
            "counter",
            "Sessions since start.",
            &[
                ("protocol=\"smtp\"", s.smtp_total),
                ("protocol=\"pop3\"", s.pop3_total),
            ],
        );
        metric(
            "sessions_active",
            "gauge",
            "Sessions open now.",
            &[
                ("protocol=\"smtp\"", s.smtp_active),
                ("protocol=\"pop3\"", s.pop3_active),
            ],
        );
        metric(
            "messages_accepted_total",
            "counter",
            "Messages acknowledged with 250 after DATA.",
            &[("", s.messages_accepted)],
        );
        metric(
            "messages_rejected_total",
            "counter",
            "Messages refused after DATA.",
            &[("", s.messages_rejected)],
        );
        metric(
            "bytes_accepted_total",
            "counter",
            "Octets of accepted messages.",
            &[("", s.bytes_accepted)],
        );
        metric(
            "deliveries_total",
            "counter",
            "Copies written into new/.",
            &[("", s.deliveries)],
        );
        metric(
            "connections_refused_total",
            "counter",
            "Connections refused by limits or pause.",
            &[("", s.refused)],
        );
        metric(
            "pop3_logins_total",
            "counter",
            "Successful POP3 logins.",
            &[("", s.pop3_logins)],
        );
        metric(
            "pop3_failed_logins_total",
            "counter",
            "Failed POP3 logins.",
            &[("", s.pop3_failed_logins)],
        );
        metric(
            "pop3_retrieved_total",
            "counter",
            "Messages sent by RETR.",
            &[("", s.pop3_retrieved)],
        );
        metric(
            "pop3_deleted_total",
            "counter",
            "Messages deleted at QUIT.",
            &[("", s.pop3_deleted)],
        );
        metric(
            "uptime_seconds",
            "gauge",
            "Seconds since start.",
            &[("", self.started.elapsed().as_secs())],
        );
        metric(
            "smtp_paused",
            "gauge",
            "1 while SMTP intake is paused.",
            &[("", u64::from(self.paused()))],
        );
        out
    }

    /// The first SMTP listener's address, as a client reaches it.
    fn smtp_address(&self) -> Option<SocketAddr> {
        self.listener_address("smtp")
    }

    fn listener_address(&self, protocol: &str) -> Option<SocketAddr> {
        let listeners = self.listeners.lock().ok()?;
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

    async fn transcript(self: Arc<Self>, id: String) -> ResponseLine {
        let g = self.current();
        let dir = g.config.log.dir.join("transcripts");
        let on = g.config.log.transcripts;
        let shown = id.clone();
        match tokio::task::spawn_blocking(move || crate::net::transcript::read(&dir, &id)).await {
            Ok(Ok(text)) => ResponseLine::ok(text),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => ResponseLine::err(if on {
                format!(
                    "no transcript for message {shown} (unknown id, or older than [log] transcript_keep_days)"
                )
            } else {
                format!(
                    "no transcript for message {shown}: transcripts are off; set [log] transcripts = true and reload"
                )
            }),
            Ok(Err(e)) => ResponseLine::err(format!("transcript {shown}: {e}")),
            Err(e) => ResponseLine::err(format!("transcript {shown}: {e}")),
        }
    }

    async fn selftest(self: Arc<Self>) -> ResponseLine {
        let g = self.current();
        let cfg = &g.config;
        let Some(smtp) = self.listener_address("smtp") else {
            return ResponseLine::err("smtpd has no SMTP listener to test");
        };
        let Some(domain) = cfg.mailboxes.domains.first() else {
            return ResponseLine::err("no [mailboxes] domains: nothing can be delivered");
        };
        // The probe mailbox is removed after the run: never use one that holds someone's mail.
        let probe = cfg
            .mailboxes
            .root
            .join(domain)
            .join(super::selftest::PROBE_LOCAL);
        let probe_address = format!("{}@{domain}", super::selftest::PROBE_LOCAL);
        if cfg.accounts.iter().any(|a| a.address == probe_address)
            || tokio::task::spawn_blocking(move || probe.exists())
                .await
                .unwrap_or(true)
        {
            return ResponseLine::err(format!(
                "the selftest's probe mailbox {probe_address} already exists (an account, or mail \
                 in {}/{domain}/{}); selftest delivers there and removes it afterwards, so move \
                 that mail away first",
                cfg.mailboxes.root.display(),
                super::selftest::PROBE_LOCAL
            ));
        }
        let target = super::selftest::Target {
            smtp,
            pop3: self.listener_address("pop3"),
            starttls: cfg.tls.is_some(),
            hostname: cfg.hostname.clone(),
            domain: domain.clone(),
            root: cfg.mailboxes.root.clone(),
            max_message_bytes: cfg.limits.max_message_bytes,
            max_command_line: cfg.limits.max_command_line,
            max_line_length: cfg.limits.max_line_length,
        };
        ResponseLine::ok(super::selftest::run(target).await)
    }

    async fn send_test(self: Arc<Self>, to: Option<String>, from: Option<String>) -> ResponseLine {
        let g = self.current();
        let cfg = &g.config;
        let to = to.unwrap_or_else(|| {
            format!(
                "postmaster@{}",
                cfg.mailboxes
                    .domains
                    .first()
                    .map(String::as_str)
                    .unwrap_or("localhost")
            )
        });
        let from = from.unwrap_or_else(|| format!("smtpctl@{}", cfg.hostname));
        let Some(addr) = self.smtp_address() else {
            return ResponseLine::err(
                "smtpd has no SMTP listener to send the test message through",
            );
        };
        let now = SystemTime::now();
        let nanos = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let message_id = format!(
            "<send-test.{nanos}.{}@{}>",
            std::process::id(),
            cfg.hostname
        );
        let message = format!(
            "From: <{from}>\r\nTo: <{to}>\r\nSubject: smtpd send-test\r\nDate: {}\r\nMessage-ID: {message_id}\r\n\r\nThis test message was sent by `smtpctl send-test` through smtpd's own SMTP listener ({addr}).\r\n",
            crate::mailbox::headers::rfc5322_date(now)
        );
        let t0 = Instant::now();
        let outcome = crate::client::smtp::send(
            addr,
            &cfg.hostname,
            &from,
            std::slice::from_ref(&to),
            message.as_bytes(),
            Duration::from_secs(30),
        )
        .await;
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => return ResponseLine::err(format!("send-test through {addr}: {e}")),
        };
        let mut path = None;
        if outcome.delivered {
            let (local, domain) = to.rsplit_once('@').unwrap_or((to.as_str(), ""));
            let dir = cfg
                .mailboxes
                .root
                .join(domain.to_ascii_lowercase())
                .join(local.to_ascii_lowercase())
                .join("new");
            let needle = message_id.clone();
            path = tokio::task::spawn_blocking(move || find_message(&dir, &needle))
                .await
                .ok()
                .flatten();
        }
        let latency_ms = t0.elapsed().as_millis() as u64;
        ResponseLine::ok(SendTestResult {
            delivered: outcome.delivered && path.is_some(),
            from,
            to,
            message_id,
            reply: outcome.reply.last_line(),
            latency_ms,
            path,
        })
    }
}

/// The file in `dir` whose header holds `needle` (recent files first).
fn find_message(dir: &std::path::Path, needle: &str) -> Option<String> {
    let mut files: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    files.sort_by_key(|f| std::cmp::Reverse(f.0));
    for (_, p) in files.into_iter().take(1000) {
        let mut head = vec![0u8; 8192];
        let n = std::fs::File::open(&p)
            .and_then(|mut f| std::io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        if String::from_utf8_lossy(&head[..n]).contains(needle) {
            return Some(p.display().to_string());
        }
    }
    None
}

impl Handler for Shared {
    fn watch(&self) -> Option<tokio::sync::broadcast::Receiver<crate::net::watch::WatchEvent>> {
        Some(self.stats.watch.subscribe())
    }

    fn handle(self: Arc<Self>, request: Request, peer: Peer) -> Reply {
        Box::pin(async move {
            tracing::debug!(uid = peer.uid, ?request, "control request");
            match request {
                Request::Status => ResponseLine::ok(self.status()),
                Request::Mailboxes => {
                    let root = self.current().config.mailboxes.root.clone();
                    match tokio::task::spawn_blocking(move || {
                        crate::mailbox::summary::summarize(&root)
                    })
                    .await
                    {
                        Ok(Ok(list)) => ResponseLine::ok(
                            list.into_iter()
                                .map(|s| MailboxInfo {
                                    address: s.address,
                                    messages: s.new + s.cur,
                                    new: s.new,
                                    cur: s.cur,
                                    bytes: s.bytes,
                                    newest: s.newest,
                                })
                                .collect::<Vec<_>>(),
                        ),
                        Ok(Err(e)) => ResponseLine::err(format!("cannot list the mailboxes: {e}")),
                        Err(e) => ResponseLine::err(format!("cannot list the mailboxes: {e}")),
                    }
                }
                Request::SendTest { to, from } => self.send_test(to, from).await,
                Request::Reload => {
                    let (tx, rx) = oneshot::channel();
                    if self.reload_tx.send(tx).await.is_err() {
                        return ResponseLine::err("smtpd is shutting down");
                    }
                    match rx.await {
                        Ok(info) => ResponseLine::ok(info),
                        Err(_) => ResponseLine::err("smtpd is shutting down"),
                    }
                }
                Request::ReloadCheck { config } => self.reload_check(config).await,
                Request::Metrics => ResponseLine::ok(self.metrics()),
                Request::Selftest => self.selftest().await,
                Request::Transcript { id } => self.transcript(id).await,
                Request::Watch { .. } => {
                    ResponseLine::err("watch streams; it is not a one-shot request")
                }
                Request::LogLevel { level } => match (self.set_level)(&level) {
                    Ok(()) => {
                        let mut cur = self.log_level.lock().unwrap_or_else(|e| e.into_inner());
                        let previous = std::mem::replace(&mut *cur, level.clone());
                        tracing::info!(%previous, %level, "log level changed by smtpctl");
                        ResponseLine::ok(LogLevelResult { previous, level })
                    }
                    Err(e) => ResponseLine::err(e),
                },
                Request::Pause => {
                    self.smtp_paused.store(true, Ordering::Relaxed);
                    tracing::info!("SMTP intake paused by smtpctl: new sessions get 421");
                    ResponseLine::ok(serde_json::json!({"smtp_paused": true}))
                }
                Request::Resume => {
                    self.smtp_paused.store(false, Ordering::Relaxed);
                    tracing::info!("SMTP intake resumed by smtpctl");
                    ResponseLine::ok(serde_json::json!({"smtp_paused": false}))
                }
            }
        })
    }
}
