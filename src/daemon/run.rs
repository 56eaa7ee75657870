//! The composition root: start-up (pid file, control socket, listeners, privilege drop, logging,
//! runtime), the main loop (signals and reload requests, one writer of state), and shutdown.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use super::acme;
use super::daemonize::{self, PidFile, Readiness};
use super::generation::{self, Generation};
use super::listeners;
use super::notify;
use super::privileges;
use super::reload::{self, Mode};
use super::shared::{Parts, ReloadAsk, Shared};
use crate::auth::accounts::ProbeSlot;
use crate::config::Config;
use crate::net::stats::Stats;
use crate::outbound::Outbound;
use crate::queue::QueueStore;

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

fn start(
    config: Config,
    foreground: bool,
    base_dir: std::path::PathBuf,
    ready: &mut Readiness,
) -> anyhow::Result<()> {
    let pid_file = PidFile::acquire(&config.control.pid_file)?;
    let control = crate::control::server::prepare(&config.control.socket)?;
    let bound = listeners::bind_all(&listeners::wanted(&config))?;
    for dir in [&config.mailboxes.root, &config.log.dir, &config.queue.dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut handed = vec![
        config.mailboxes.root.as_path(),
        config.log.dir.as_path(),
        config.queue.dir.as_path(),
        config.control.socket.as_path(),
        config.control.pid_file.as_path(),
    ];
    // ACME writes its files as smtpd's user: the certificate's directory and what is in it.
    let acme_files = match &config.tls {
        Some(t) if t.acme => {
            let dir = t.cert.parent().map(std::path::Path::to_path_buf);
            if let Some(d) = &dir {
                std::fs::create_dir_all(d).with_context(|| {
                    format!(
                        "cannot create {} ([tls] cert's directory, where ACME keeps its files)",
                        d.display()
                    )
                })?;
            }
            dir.into_iter()
                .chain([t.cert.clone(), t.key.clone(), t.acme_account()])
                .collect()
        }
        _ => Vec::new(),
    };
    handed.extend(acme_files.iter().map(std::path::PathBuf::as_path));
    let user = privileges::drop_to(&config.server.user, &config.server.group, &handed)?;
    let (_log, set_level) = crate::log::init(&config.log, foreground)?;
    for d in config.deprecations() {
        warn!("{d}");
    }
    if let Some(u) = user {
        info!(user = %u, "dropped root privileges");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("smtpd")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config, bound, control, set_level, base_dir, ready));
    if let Err(e) = &result {
        error!("{e:#}");
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    drop(pid_file);
    result
}

async fn serve(
    config: Config,
    bound: Vec<listeners::Unstarted>,
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
    let (swap_tx, mut swap_rx) = mpsc::channel::<acme::SwapAsk>(1);
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let probe = Arc::new(ProbeSlot::default());
    let transcripts = generation::transcripts(&config);
    let queue = QueueStore::open(&config.queue.dir, &config.server.instance_name())
        .with_context(|| format!("cannot open the queue in {}", config.queue.dir.display()))?;
    let first = Generation::build(config, &stats, &probe, &queue)?;
    let outbound = Outbound::new(queue, first.outbound(), Arc::clone(&stats))
        .context("cannot load the queue")?;
    let shared = Arc::new(Shared::new(
        first,
        Parts {
            stats: Arc::clone(&stats),
            probe,
            outbound: Arc::clone(&outbound),
            base_dir,
            set_level,
            reload_tx,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        },
    ));
    let mut set = Vec::new();
    for u in bound {
        set.push(listeners::start(&shared, u)?);
    }
    listeners::publish(&shared, &set);
    tracker.spawn(outbound.run(shutdown.clone(), tracker.clone()));
    tracker.spawn(acme::run(Arc::clone(&shared), swap_tx));
    tracker.spawn(crate::control::server::serve(
        control,
        Arc::clone(&shared),
        shutdown.clone(),
        tracker.clone(),
    ));
    let socket_path = shared.current().config.control.socket.clone();
    // What a crash left in tmp/ (the Maildir rule: older than 36 hours), off the start path.
    let root = shared.current().config.mailboxes.root.clone();
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
                    reload::run(&shared, None, Mode::Apply { set: &mut set, source: "SIGHUP" }).await;
                }
                Some(sig) => {
                    info!(signal = sig, "stopping: no new sessions; idle sessions get 421");
                    break;
                }
                None => break,
            },
            Some(ask) = reload_rx.recv() => {
                let info = reload::run(&shared, None, Mode::Apply { set: &mut set, source: "smtpctl" }).await;
                let _ = ask.send(info);
            }
            Some(ask) = swap_rx.recv() => {
                let _ = ask.send(reload::certificate(&shared).await);
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
    if config.tls.as_ref().is_some_and(|t| t.acme)
        && !config.http.listen.iter().any(|a| a.port() == 80)
    {
        warn!(
            "[tls] acme: the CA checks HTTP-01 on port 80, and no [http] listen address is on port 80; fine if port 80 is forwarded to it"
        );
    }
}
