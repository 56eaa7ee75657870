//! The composition root: start-up (pid file, control socket, listeners, privilege drop, logging,
//! runtime), the main loop (signals and reload requests, one writer of state), and shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::daemonize::{self, PidFile, Readiness};
use super::notify;
use super::privileges;
use super::state::{Generation, ReloadAsk, Shared};
use crate::config::{self, Config};
use crate::control::proto::{ListenerInfo, ReloadInfo};
use crate::net::stats::{self, Stats};
use crate::net::{listener, pop3_conn, smtp_conn};
use crate::proto::smtp::Reply;
use crate::proto::smtp::reply::canned;

/// Runs smtpd: detached unless `foreground`. Returns when it has stopped.
pub fn run(mut config: Config, foreground: bool) -> anyhow::Result<()> {
    let base_dir = std::env::current_dir().context("cannot read the working directory")?;
    config.absolutize(&base_dir);
    let mut ready = if foreground {
        Readiness::foreground()
    } else {
        daemonize::detach()?
    };
    let result = start(config, foreground, base_dir, &mut ready);
    if let Err(e) = &result {
        ready.fail(&format!("{e:#}"));
    }
    result
}

/// The listening addresses a config asks for.
fn wanted(config: &Config) -> Vec<(&'static str, SocketAddr)> {
    super::diff::listeners(config)
}

fn bind_std(protocol: &str, addr: SocketAddr) -> anyhow::Result<std::net::TcpListener> {
    let l = std::net::TcpListener::bind(addr)
        .with_context(|| format!("cannot listen on {addr} ({protocol})"))?;
    l.set_nonblocking(true)
        .with_context(|| format!("cannot listen on {addr} ({protocol})"))?;
    Ok(l)
}

fn start(
    config: Config,
    foreground: bool,
    base_dir: std::path::PathBuf,
    ready: &mut Readiness,
) -> anyhow::Result<()> {
    let pid_file = PidFile::acquire(&config.control.pid_file)?;
    let control = crate::control::server::prepare(&config.control.socket)?;
    let mut bound = Vec::new();
    for (protocol, addr) in wanted(&config) {
        bound.push((protocol, addr, bind_std(protocol, addr)?));
    }
    // `[metrics] listen` (feature metrics-http; the config refuses the key without it). Bound
    // with the others, before privileges are dropped; a change needs a restart.
    let metrics = match config.metrics.listen {
        Some(a) => Some(bind_std("metrics", a)?),
        None => None,
    };
    for dir in [&config.mailboxes.root, &config.log.dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let handed = [
        config.mailboxes.root.as_path(),
        config.log.dir.as_path(),
        config.control.socket.as_path(),
        config.control.pid_file.as_path(),
    ];
    let user = privileges::drop_to(&config.server.user, &config.server.group, &handed)?;
    let (_log, set_level) = crate::log::init(&config.log, foreground)?;
    if let Some(u) = user {
        info!(user = %u, "dropped root privileges");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("smtpd")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(
        config, bound, metrics, control, set_level, base_dir, ready,
    ));
    if let Err(e) = &result {
        error!("{e:#}");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(pid_file);
    result
}

/// One bound listener and the token that stops its accept loop.
struct Bound {
    protocol: &'static str,
    configured: SocketAddr,
    local: SocketAddr,
    stop: CancellationToken,
}

fn publish(shared: &Shared, set: &[Bound]) {
    let info = set
        .iter()
        .map(|b| ListenerInfo {
            protocol: b.protocol.to_string(),
            address: b.local.to_string(),
        })
        .collect();
    if let Ok(mut l) = shared.listeners.lock() {
        *l = info;
    }
}

/// A connection slot under the current limits, or `None` (counted as refused).
fn slot(sh: &Shared, g: &Generation, peer: SocketAddr) -> Option<crate::net::limiter::ConnGuard> {
    let limits = &g.config.limits;
    let guard = sh
        .limiter
        .try_acquire(
            peer.ip(),
            limits.max_connections,
            limits.max_connections_per_ip,
        )
        .ok();
    if guard.is_none() {
        stats::add(&sh.stats.refused, 1);
    }
    guard
}

/// Starts the accept loop of a bound listener.
fn spawn_listener(
    shared: &Arc<Shared>,
    protocol: &'static str,
    configured: SocketAddr,
    std_listener: std::net::TcpListener,
) -> anyhow::Result<Bound> {
    let l = TcpListener::from_std(std_listener)
        .with_context(|| format!("cannot listen on {configured} ({protocol})"))?;
    let local = l
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {configured}"))?;
    let stop = shared.shutdown.child_token();
    let tracker = shared.tracker.clone();
    let sh = Arc::clone(shared);
    let smtp_mode = match protocol {
        "submission" => Some(smtp_conn::Listener::Submission),
        "submissions" => Some(smtp_conn::Listener::Submissions),
        "smtp" => Some(smtp_conn::Listener::Smtp),
        _ => None,
    };
    match smtp_mode {
        Some(mode) => {
            let admit = move |peer: SocketAddr| {
                let g = sh.current();
                let host = &g.config.hostname;
                if sh.paused() {
                    stats::add(&sh.stats.refused, 1);
                    let why = format!("{host} Service paused, try again later");
                    return Err(Reply::new(421, "4.3.2", why).to_bytes());
                }
                let guard = slot(&sh, &g, peer)
                    .ok_or_else(|| canned::too_many_connections(host).to_bytes())?;
                let (stop, ctx) = (sh.shutdown.clone(), Arc::clone(&g.smtp));
                Ok(move |stream| async move {
                    smtp_conn::serve(stream, peer, ctx, mode, stop).await;
                    drop(guard);
                })
            };
            tracker.spawn(listener::run(
                l,
                protocol,
                stop.clone(),
                tracker.clone(),
                admit,
            ));
        }
        None => {
            let implicit = protocol == "pop3s";
            let admit = move |peer: SocketAddr| {
                let g = sh.current();
                let guard = slot(&sh, &g, peer).ok_or_else(|| {
                    b"-ERR [SYS/TEMP] Too many connections, try again later\r\n".to_vec()
                })?;
                let (stop, ctx) = (sh.shutdown.clone(), Arc::clone(&g.pop3));
                Ok(move |stream| async move {
                    pop3_conn::serve(stream, peer, ctx, implicit, stop).await;
                    drop(guard);
                })
            };
            tracker.spawn(listener::run(
                l,
                protocol,
                stop.clone(),
                tracker.clone(),
                admit,
            ));
        }
    }
    info!(protocol, address = %local, "listening on {protocol} {local}");
    Ok(Bound {
        protocol,
        configured,
        local,
        stop,
    })
}

async fn serve(
    config: Config,
    bound: Vec<(&'static str, SocketAddr, std::net::TcpListener)>,
    metrics: Option<std::net::TcpListener>,
    control: std::os::unix::net::UnixListener,
    set_level: crate::log::LevelSetter,
    base_dir: std::path::PathBuf,
    ready: &mut Readiness,
) -> anyhow::Result<()> {
    info!(
        config = %config.path.display(),
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        "smtpd starting"
    );
    warn_unserved(&config);
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    let handle = signals.handle();
    let stats = Arc::new(Stats::default());
    let (reload_tx, mut reload_rx) = mpsc::channel::<ReloadAsk>(4);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let shared = Arc::new(Shared::new(
        Generation::build(config, &stats)?,
        Arc::clone(&stats),
        base_dir,
        set_level,
        reload_tx,
        shutdown.clone(),
        tracker.clone(),
    ));
    let mut set = Vec::new();
    for (protocol, configured, l) in bound {
        set.push(spawn_listener(&shared, protocol, configured, l)?);
    }
    publish(&shared, &set);
    #[cfg(feature = "metrics-http")]
    if let Some(l) = metrics {
        l.set_nonblocking(true)?;
        let l = tokio::net::TcpListener::from_std(l)?;
        tracker.spawn(super::metrics_http::serve(
            l,
            Arc::clone(&shared),
            shutdown.clone(),
        ));
    }
    #[cfg(not(feature = "metrics-http"))]
    drop(metrics);
    tracker.spawn(crate::control::server::serve(
        control,
        Arc::clone(&shared),
        shutdown.clone(),
        tracker.clone(),
    ));
    let socket_path = shared.current().config.control.socket.clone();
    // What a crash left in tmp/ (the Maildir rule: older than 36 hours), off the start path.
    let root = shared.current().config.mailboxes.root.clone();
    let transcripts = shared.current().config.transcripts();
    tracker.spawn(async move {
        if let Some(t) = transcripts {
            let _ = tokio::task::spawn_blocking(move || crate::net::transcript::prune(&t)).await;
        }
        let stale = Duration::from_secs(36 * 3600);
        let removed = tokio::task::spawn_blocking(move || {
            crate::mailbox::maildir::clean_stale_tmp(&root, stale)
        })
        .await
        .unwrap_or(0);
        if removed > 0 {
            info!(
                removed,
                "removed stale files from tmp/ (older than 36 hours)"
            );
        }
    });
    info!("ready");
    notify::ready(&shared.status_line());
    ready.ready();

    let mut tick = tokio::time::interval(Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            sig = signals.next() => match sig {
                Some(SIGHUP) => {
                    reload(&shared, &mut set, "SIGHUP").await;
                }
                Some(sig) => {
                    info!(signal = sig, "stopping: no new sessions; idle sessions get 421");
                    break;
                }
                None => break,
            },
            Some(ask) = reload_rx.recv() => {
                let info = reload(&shared, &mut set, "smtpctl").await;
                let _ = ask.send(info);
            }
            _ = tick.tick() => notify::status(&shared.status_line()),
        }
    }
    notify::stopping();
    shutdown.cancel();
    tracker.close();
    let grace = Duration::from_secs(shared.current().config.server.shutdown_grace_secs);
    tokio::select! {
        _ = tracker.wait() => {}
        _ = tokio::time::sleep(grace) => {
            warn!(sessions = shared.limiter.active(), "grace period over; closing the remaining sessions");
        }
        _ = signals.next() => warn!("second signal: exiting at once"),
    }
    handle.close();
    let _ = std::fs::remove_file(&socket_path);
    let s = stats.snapshot();
    info!(
        sessions = s.smtp_total + s.pop3_total,
        messages = s.messages_accepted,
        "stopped"
    );
    Ok(())
}

fn warn_unserved(config: &Config) {
    if !config.smtp.submission.is_empty() && config.tls.is_none() {
        warn!("[smtp] submission without [tls]: AUTH (required there) works only from loopback");
    }
    if config.accounts.is_empty()
        && (!config.smtp.submission.is_empty() || !config.smtp.submissions.is_empty())
    {
        warn!("submission listeners need [[accounts]] to log in; none are configured");
    }
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// SIGHUP / `smtpctl reload`: validate the whole new config, bind new listeners (all or
/// nothing), then swap the generation; live sessions keep theirs.
async fn reload(shared: &Arc<Shared>, set: &mut Vec<Bound>, source: &str) -> ReloadInfo {
    notify::reloading();
    let old = shared.current();
    let path = old.config.path.clone();
    let base = shared.base_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        config::load(&path).map(|mut c| {
            c.absolutize(&base);
            c
        })
    })
    .await;
    let info = match loaded {
        Err(e) => refused(vec![format!("cannot read the configuration: {e}")]),
        Ok(Err(e)) => refused(e.to_string().lines().map(str::to_string).collect()),
        Ok(Ok(new)) => apply(shared, set, &old.config, new).await,
    };
    if info.applied {
        info!(source, changes = %info.changes.join("; "), "configuration reloaded");
    } else {
        for e in &info.errors {
            error!(source, "reload refused: {e}");
        }
        warn!(
            source,
            "reload refused; the running configuration stays in force"
        );
    }
    if let Ok(mut l) = shared.last_reload.lock() {
        *l = Some(info.clone());
    }
    notify::ready(&shared.status_line());
    info
}

fn refused(errors: Vec<String>) -> ReloadInfo {
    ReloadInfo {
        at: now_unix(),
        applied: false,
        errors,
        changes: Vec::new(),
    }
}

async fn apply(
    shared: &Arc<Shared>,
    set: &mut Vec<Bound>,
    old: &Config,
    new: Config,
) -> ReloadInfo {
    let (mut changes, restart) = super::diff::describe(old, &new, shared.current().built_at);
    if let Err(e) = std::fs::create_dir_all(&new.mailboxes.root) {
        return refused(vec![format!(
            "cannot create the mailbox root {}: {e}",
            new.mailboxes.root.display()
        )]);
    }
    // Which listeners stay, which go, which are new.
    let mut keep = vec![false; set.len()];
    let mut to_bind = Vec::new();
    for (protocol, addr) in wanted(&new) {
        match set
            .iter()
            .enumerate()
            .position(|(i, b)| !keep[i] && b.protocol == protocol && b.configured == addr)
        {
            Some(i) => keep[i] = true,
            None => to_bind.push((protocol, addr)),
        }
    }
    let mut fresh = Vec::new();
    for (protocol, addr) in &to_bind {
        match bind_std(protocol, *addr) {
            Ok(l) => fresh.push((*protocol, *addr, l)),
            Err(e) => return refused(vec![format!("{e:#}")]),
        }
    }
    let level = new.log.level.clone();
    if level != old.log.level {
        if let Err(e) = (shared.set_level)(&level) {
            return refused(vec![e]);
        }
        if let Ok(mut l) = shared.log_level.lock() {
            *l = level;
        }
    }
    // Certificates are read (or made) and a dummy argon2 hash computed: not on the async threads.
    let stats = Arc::clone(&shared.stats);
    let built = tokio::task::spawn_blocking(move || Generation::build(new, &stats))
        .await
        .map_err(|e| crate::net::tls::TlsError::Config(e.to_string()))
        .and_then(|r| r);
    let generation = match built {
        Ok(g) => g,
        Err(e) => {
            drop(fresh); // closes the listeners bound for it
            return refused(vec![e.to_string()]);
        }
    };
    shared.swap(generation);
    let mut next = Vec::new();
    for (b, k) in set.drain(..).zip(keep) {
        if k {
            next.push(b);
        } else {
            info!(protocol = b.protocol, address = %b.local, "listener removed; its sessions continue");
            b.stop.cancel();
        }
    }
    for (protocol, addr, l) in fresh {
        match spawn_listener(shared, protocol, addr, l) {
            Ok(b) => {
                if b.configured.port() == 0 {
                    changes.push(format!("{} bound to {}", b.protocol, b.local));
                }
                next.push(b);
            }
            Err(e) => warn!("{e:#}"),
        }
    }
    *set = next;
    publish(shared, set);
    for r in &restart {
        warn!("{r} changed: restart smtpd to apply it");
        changes.push(format!("{r} changed: needs a restart"));
    }
    ReloadInfo {
        at: now_unix(),
        applied: true,
        errors: Vec::new(),
        changes,
    }
}
