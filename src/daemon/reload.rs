//! The one reload path. SIGHUP, `smtpctl reload` and `smtpctl reload --check` all run [`run`]:
//! load → validate → diff → (check stops here) → bind → build → commit. Nothing is changed
//! before commit, so a refused reload leaves everything as it was (listeners, log level,
//! generation); live sessions keep the generation they started with.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::{error, info, warn};

use super::generation::Generation;
use super::listeners::{self, Bound};
use super::notify;
use super::shared::Shared;
use crate::config::{self, Config};
use crate::control::proto::ReloadInfo;
use crate::testing::Break;

/// How far a reload goes.
pub enum Mode<'a> {
    /// `smtpctl reload --check`: load, validate and describe; stops before bind.
    Check,
    /// SIGHUP or `smtpctl reload` (`source` says which, for the log): every step, on the
    /// serving listeners. Only the main loop holds them, so only it applies a reload.
    Apply {
        set: &'a mut Vec<Bound>,
        source: &'static str,
    },
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn refused(errors: Vec<String>) -> ReloadInfo {
    ReloadInfo {
        at: now_unix(),
        applied: false,
        errors,
        changes: Vec::new(),
    }
}

/// Reloads the configuration at `path` (default: the running one's file).
pub async fn run(shared: &Arc<Shared>, path: Option<PathBuf>, mode: Mode<'_>) -> ReloadInfo {
    match mode {
        Mode::Check => check(shared, path).await,
        Mode::Apply { set, source } => {
            notify::reloading();
            let info = apply(shared, path, set).await;
            if info.applied {
                info!(source, changes = %info.changes.join("; "), "configuration reloaded");
                for d in shared.current().config.deprecations() {
                    warn!(source, "{d}");
                }
            } else {
                for e in &info.errors {
                    error!(source, "reload refused: {e}");
                }
                warn!(
                    source,
                    "reload refused; the running configuration stays in force"
                );
            }
            shared.record_reload(&info);
            // The ACME loop looks at the (new) [tls] keys again.
            shared.acme.poke();
            notify::ready(&shared.status_line());
            info
        }
    }
}

/// The certificate swap of ACME: the running configuration built again (its certificate files
/// read anew) and swapped in, as a reload's commit does, so every listener's next handshake uses
/// the new certificate; the config file is not read again. Live sessions keep their generation.
pub async fn certificate(shared: &Arc<Shared>) -> Result<(), String> {
    let config = (*shared.current().config).clone();
    let (stats, probe) = (Arc::clone(&shared.stats), Arc::clone(&shared.probe));
    let queue = Arc::clone(shared.outbound.store());
    let built =
        tokio::task::spawn_blocking(move || Generation::build(config, &stats, &probe, &queue))
            .await;
    match built {
        Ok(Ok(g)) => {
            shared.swap(g);
            Ok(())
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("internal error ({e}); please report it")),
    }
}

/// What the first three steps give: the new config, and what it would change.
struct Validated {
    new: Config,
    /// TLS problems found without making anything.
    errors: Vec<String>,
    changes: Vec<String>,
    restart: Vec<String>,
}

/// load → validate → diff. Blocking file reads run off the async threads.
async fn validate(shared: &Shared, path: Option<PathBuf>) -> Result<Validated, ReloadInfo> {
    let old = shared.current();
    let path = path.unwrap_or_else(|| old.config.path.clone());
    let base = shared.base_dir.clone();
    let loaded = tokio::task::spawn_blocking(move || {
        let mut c = config::load(&path)?;
        c.absolutize(&base);
        c.read_dkim_keys()?;
        let tls = c.tls.as_ref().and_then(|t| {
            crate::net::tls::check(t, &c.hostname)
                .err()
                .map(|e| e.to_string())
        });
        Ok::<_, config::ConfigError>((c, tls))
    })
    .await;
    let (new, tls) = match loaded {
        Err(e) => return Err(refused(vec![format!("cannot read the configuration: {e}")])),
        Ok(Err(e)) => return Err(refused(e.to_string().lines().map(str::to_string).collect())),
        Ok(Ok(x)) => x,
    };
    let (changes, restart) = super::diff::describe(&old.config, &new, old.built_at);
    Ok(Validated {
        new,
        errors: tls.into_iter().collect(),
        changes,
        restart,
    })
}

async fn check(shared: &Shared, path: Option<PathBuf>) -> ReloadInfo {
    match validate(shared, path).await {
        Err(info) => info,
        Ok(v) => {
            let mut changes = v.changes;
            changes.extend(
                v.restart
                    .iter()
                    .map(|r| format!("{r} changed: needs a restart")),
            );
            ReloadInfo {
                at: now_unix(),
                applied: false,
                errors: v.errors,
                changes,
            }
        }
    }
}

async fn apply(shared: &Arc<Shared>, path: Option<PathBuf>, set: &mut Vec<Bound>) -> ReloadInfo {
    let v = match validate(shared, path).await {
        Ok(v) if v.errors.is_empty() => v,
        Ok(v) => return refused(v.errors),
        Err(info) => return info,
    };
    let Validated {
        new,
        mut changes,
        restart,
        ..
    } = v;
    let old_level = shared.current().config.log.level.clone();
    // Bind: every new address, or none.
    if let Err(e) = std::fs::create_dir_all(&new.mailboxes.root) {
        return refused(vec![format!(
            "cannot create the mailbox root {}: {e}",
            new.mailboxes.root.display()
        )]);
    }
    let (keep, to_bind) = listeners::plan(set, &new);
    let fresh = match listeners::bind_all(&to_bind) {
        Ok(f) => f,
        Err(e) => return refused(vec![format!("{e:#}")]),
    };
    // Build: certificates are read (or made) and a dummy argon2 hash computed, off the async
    // threads. A failure here drops `fresh`, which closes the sockets bound for it.
    let level = new.log.level.clone();
    let (stats, probe) = (Arc::clone(&shared.stats), Arc::clone(&shared.probe));
    let queue = Arc::clone(shared.outbound.store());
    let built = tokio::task::spawn_blocking(move || {
        if Break::ReloadPanic.is_on() {
            panic!("SMTPD_TEST_BREAK=reload_panic");
        }
        Generation::build(new, &stats, &probe, &queue)
    })
    .await;
    let generation = match built {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => return refused(vec![e.to_string()]),
        Err(e) => {
            return refused(vec![format!(
                "internal error while building the new configuration ({e}); please report it"
            )]);
        }
    };
    // Commit. The log level first: it is the one step that can still fail.
    if level != old_level {
        if let Err(e) = (shared.set_level)(&level) {
            return refused(vec![e]);
        }
        shared.record_log_level(&level);
    }
    shared.outbound.set_config(generation.outbound());
    shared.swap(generation);
    let mut next = Vec::new();
    for (b, k) in set.drain(..).zip(keep) {
        if k {
            next.push(b);
        } else {
            b.stop();
        }
    }
    for u in fresh {
        match listeners::start(shared, u) {
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
    listeners::publish(shared, set);
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
