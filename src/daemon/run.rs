//! Runs smtpd in the foreground: logging, listeners, signals, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook_tokio::Signals;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::Config;
use crate::mailbox::MaildirStore;
use crate::net::limiter::ConnLimiter;
use crate::net::listener;
use crate::net::pop3_conn::{self, Pop3Context};
use crate::net::smtp_conn::{self, SmtpContext, Stats};
use crate::proto::smtp::reply::canned;

/// Starts the runtime and serves until SIGTERM/SIGINT.
pub fn run_foreground(config: Config) -> anyhow::Result<()> {
    let _log = crate::log::init(&config.log, true)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("smtpd")
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(serve(config));
    if let Err(e) = &result {
        tracing::error!("{e:#}");
    }
    // Sessions past the grace period are dropped with the runtime.
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

async fn bind(addr: SocketAddr, protocol: &str) -> anyhow::Result<TcpListener> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} ({protocol})"))?;
    let local = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {addr}"))?;
    info!(protocol, address = %local, "listening on {protocol} {local}");
    Ok(listener)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    info!(
        config = %config.path.display(),
        version = env!("CARGO_PKG_VERSION"),
        "smtpd starting"
    );
    std::fs::create_dir_all(&config.mailboxes.root).with_context(|| {
        format!(
            "cannot create the mailbox root {}",
            config.mailboxes.root.display()
        )
    })?;
    let mut smtp_listeners = Vec::new();
    for addr in &config.smtp.listen {
        smtp_listeners.push(bind(*addr, "smtp").await?);
    }
    if !config.smtp.submission.is_empty() || !config.smtp.submissions.is_empty() {
        warn!(
            "[smtp] submission/submissions need TLS and AUTH, which this version does not have yet; they are not served"
        );
    }
    let mut pop3_listeners = Vec::new();
    for addr in &config.pop3.listen {
        pop3_listeners.push(bind(*addr, "pop3").await?);
    }
    if !config.pop3.pop3s.is_empty() {
        warn!("[pop3] pop3s needs TLS, which this version does not have yet; it is not served");
    }

    let ctx = Arc::new(SmtpContext {
        policy: Arc::new(config.smtp_policy()),
        store: Arc::new(MaildirStore::new(
            config.mailboxes.root.clone(),
            &config.hostname,
        )),
        limits: config.limits.clone(),
        stats: Arc::new(Stats::default()),
    });
    let pop3_ctx = Arc::new(Pop3Context::new(&config, Arc::clone(&ctx.store)));
    let limiter = ConnLimiter::new();
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    let handle = signals.handle();

    let accept_tasks = TaskTracker::new();
    let accept = |protocol, refusal: Vec<u8>| listener::Accept {
        protocol,
        limiter: Arc::clone(&limiter),
        max_connections: config.limits.max_connections,
        max_connections_per_ip: config.limits.max_connections_per_ip,
        refusal,
        shutdown: shutdown.clone(),
        tracker: tracker.clone(),
    };
    for l in smtp_listeners {
        let ctx = Arc::clone(&ctx);
        let stop = shutdown.clone();
        let refusal = canned::too_many_connections(&config.hostname).to_bytes();
        accept_tasks.spawn(listener::run(
            l,
            accept("smtp", refusal),
            move |stream, peer| smtp_conn::serve(stream, peer, Arc::clone(&ctx), stop.clone()),
        ));
    }
    for l in pop3_listeners {
        let ctx = Arc::clone(&pop3_ctx);
        let stop = shutdown.clone();
        let refusal = b"-ERR [SYS/TEMP] Too many connections, try again later\r\n".to_vec();
        accept_tasks.spawn(listener::run(
            l,
            accept("pop3", refusal),
            move |stream, peer| pop3_conn::serve(stream, peer, Arc::clone(&ctx), stop.clone()),
        ));
    }
    accept_tasks.close();
    info!("ready");

    while let Some(sig) = signals.next().await {
        match sig {
            SIGHUP => warn!(
                "SIGHUP received: live reload is not in this version yet; restart smtpd to apply a new configuration"
            ),
            _ => {
                info!(
                    signal = sig,
                    "stopping: no new sessions; idle sessions get 421"
                );
                break;
            }
        }
    }
    shutdown.cancel();
    accept_tasks.wait().await;
    tracker.close();
    let grace = Duration::from_secs(config.server.shutdown_grace_secs);
    tokio::select! {
        _ = tracker.wait() => {}
        _ = tokio::time::sleep(grace) => {
            warn!(sessions = limiter.active(), "grace period over; closing the remaining sessions");
        }
        _ = signals.next() => {
            warn!("second signal: exiting at once");
        }
    }
    handle.close();
    let stats = &ctx.stats;
    info!(
        sessions = stats.sessions.load(std::sync::atomic::Ordering::Relaxed),
        messages = stats.messages.load(std::sync::atomic::Ordering::Relaxed),
        "stopped"
    );
    Ok(())
}
