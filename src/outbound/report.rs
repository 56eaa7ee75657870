//! The reports an attempt owes the sender (RFC 3461/3464), queued like any message from `<>`:
//! a bounce for recipients that failed (unless their RCPT said NOTIFY without FAILURE), one
//! delay warning for those still deferred after `[queue] delay_warning_secs` (NOTIFY with
//! DELAY, or none), and a success report for those delivered with NOTIFY=SUCCESS where the
//! next hop did not take the request on. A bounce is never bounced: a report to `<>` is dropped.
//! A report that cannot be queued stays owed, and the message stays in the queue until it is.

use std::sync::Arc;

use tracing::{info, warn};

use super::OutboundConfig;
use super::bounce::{Action, Entry, Subject, report};
use crate::mailbox::delivery::{Origin, Recipient};
use crate::mailbox::{Committed, DeliveryError, Target};
use crate::queue::{Envelope, QueueStore, RecipientState, State};

/// Queues every report `env` owes at `now`, marking the recipients it covered.
pub async fn send(
    cfg: &OutboundConfig,
    store: &Arc<QueueStore>,
    env: &mut Envelope,
    message: &[u8],
    now: u64,
) {
    // Failures the sender did not ask to hear about, or that no one can hear about.
    for r in env
        .recipients
        .iter_mut()
        .filter(|r| r.state == State::Failed && !r.bounced)
    {
        if env.sender.is_empty() {
            // Postfix sends such a bounce to postmaster once more, then drops it; dropping it
            // at once keeps the queue from filling with them.
            warn!(id = %env.id, to = %r.address, error = r.last_error.as_deref().unwrap_or("-"), "undeliverable bounce dropped");
            r.bounced = true;
        } else if !r.notify().failure {
            info!(id = %env.id, to = %r.address, "no bounce: NOTIFY=NEVER");
            r.bounced = true;
        }
    }
    if env.sender.is_empty() {
        for r in &mut env.recipients {
            r.success_report = false;
        }
    }
    let warn_after = cfg.queue.delay_warning_secs;
    let late = warn_after > 0 && now >= env.created.saturating_add(warn_after);
    for action in [Action::Failed, Action::Delayed, Action::Relayed] {
        let todo: Vec<usize> = (0..env.recipients.len())
            .filter(|&i| owed(action, &env.recipients[i], late) && !env.sender.is_empty())
            .collect();
        if todo.is_empty() {
            continue;
        }
        // Successes: delivered here, or relayed to a next hop that took no DSN request.
        let groups: Vec<(Action, Vec<usize>)> = if action == Action::Relayed {
            let (local, remote): (Vec<usize>, Vec<usize>) = todo
                .into_iter()
                .partition(|&i| env.recipients[i].local_delivery);
            [(Action::Delivered, local), (Action::Relayed, remote)]
                .into_iter()
                .filter(|(_, v)| !v.is_empty())
                .collect()
        } else {
            vec![(action, todo)]
        };
        for (action, idx) in groups {
            match queue_report(cfg, store, env, message, action, &idx).await {
                Ok(c) => {
                    info!(id = %env.id, report = %c.id, to = %env.sender, recipients = idx.len(), action = ?action, "report queued");
                    for i in idx {
                        let r = &mut env.recipients[i];
                        match action {
                            Action::Failed => r.bounced = true,
                            Action::Delayed => r.warned = true,
                            Action::Delivered | Action::Relayed => r.success_report = false,
                        }
                    }
                }
                Err(e) => {
                    warn!(id = %env.id, error = %e, action = ?action, "cannot queue a report; the message stays in the queue")
                }
            }
        }
    }
}

/// `r` is owed a report of this kind (`Relayed` standing for both successes); `late`: the
/// message is older than the delay warning time.
fn owed(action: Action, r: &RecipientState, late: bool) -> bool {
    match action {
        Action::Failed => r.state == State::Failed && !r.bounced,
        Action::Delayed => late && r.state == State::Deferred && !r.warned && r.notify().delay,
        Action::Delivered | Action::Relayed => r.success_report,
    }
}

/// Writes the report about recipients `idx` and queues it to the sender.
async fn queue_report(
    cfg: &OutboundConfig,
    store: &Arc<QueueStore>,
    env: &Envelope,
    message: &[u8],
    action: Action,
    idx: &[usize],
) -> Result<Committed, String> {
    let entries: Vec<Entry> = idx
        .iter()
        .map(|&i| {
            let r = &env.recipients[i];
            Entry {
                address: &r.address,
                orcpt: r.orcpt.as_deref(),
                error: match action {
                    Action::Failed | Action::Delayed => {
                        Some(r.last_error.as_deref().unwrap_or("failed"))
                    }
                    Action::Delivered | Action::Relayed => None,
                },
                remote_mta: r.remote_mta.as_deref(),
            }
        })
        .collect();
    let text = report(
        &Subject {
            hostname: &cfg.hostname,
            id: &env.id,
            sender: &env.sender,
            created: env.created,
            envid: env.envid.as_deref(),
            ret: env.ret,
            retry_until: Some(env.created.saturating_add(cfg.queue.max_lifetime_secs)),
            original: message,
        },
        action,
        &entries,
    );
    let to = sender_as_recipient(cfg, &env.sender);
    let store = Arc::clone(store);
    let queued = tokio::task::spawn_blocking(move || -> Result<Committed, DeliveryError> {
        let mut d = store.begin(&Origin::default(), std::slice::from_ref(&to));
        d.write(&text)?;
        d.commit()
    })
    .await;
    match queued {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(e) => Err(format!("report task failed: {e}")),
    }
}

/// The envelope sender as a recipient of its report: in a local domain, its Maildir as RCPT
/// would find it (alice+tag is alice's; a name no Maildir may have goes to the postmaster).
fn sender_as_recipient(cfg: &OutboundConfig, sender: &str) -> Recipient {
    let (local, domain) = sender.rsplit_once('@').unwrap_or((sender, ""));
    let mut domain = domain.to_ascii_lowercase();
    let remote = !cfg.domains.contains(&domain);
    let mut local = local.to_ascii_lowercase();
    if !remote {
        if let Some((base, _)) = cfg.delimiter.and_then(|d| local.split_once(d))
            && !base.is_empty()
        {
            local = base.to_string();
        }
        if !crate::proto::smtp::address::is_safe_local(&local) {
            local = "postmaster".into();
            domain = cfg.domains.first().cloned().unwrap_or(domain);
        }
    }
    Recipient::new(sender, &domain, &local, remote)
}
