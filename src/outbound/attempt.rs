//! One attempt at one queued message: its local recipients into their Maildirs, its remote ones
//! grouped by next hop (a route for their domain, else the smarthost, else the domain's MX
//! hosts) and sent with our SMTP client. Each recipient ends the attempt delivered, deferred
//! (with its next try) or failed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use tracing::{info, warn};

use super::hop::{Hop, Sent, send};
use super::pool::Connections;
use super::{OutboundConfig, unix_now};
use crate::client::smtp::{Mail, Reply};
use crate::mailbox::Target;
use crate::mailbox::delivery::{Origin, Recipient};
use crate::net::stats::{self, Stats};
use crate::net::watch::{self, WatchEvent};
use crate::queue::envelope::backoff;
use crate::queue::{Envelope, QueueStore, State};

/// More `Received:` headers than this: a mail loop (RFC 5321 6.3; Postfix's hopcount_limit).
const MAX_RECEIVED: usize = 50;

/// The `Received:` fields of the message's header section.
fn received_count(message: &[u8]) -> usize {
    let end = crate::mailbox::headers::header_end(message).unwrap_or(message.len());
    message[..end]
        .split(|&b| b == b'\n')
        .filter(|l| l.len() > 9 && l[..9].eq_ignore_ascii_case(b"received:"))
        .count()
}

/// What happened to one recipient in this attempt.
enum Result1 {
    /// Into its Maildir, or accepted by its next hop (which took the DSN requests or not),
    /// with what it said.
    Delivered {
        took_dsn: bool,
        reply: String,
    },
    /// Try again later.
    Deferred(String),
    Failed(String),
}

/// Queued messages up to this size are read on the async thread that tries them.
const READ_INLINE: u64 = 64 * 1024;

/// Tries `env` once; returns it with every recipient's new state.
pub async fn run(
    cfg: &OutboundConfig,
    store: &Arc<QueueStore>,
    stats: &Stats,
    conns: &Arc<Connections>,
    mut env: Envelope,
) -> Envelope {
    let started = Instant::now();
    let now = unix_now();
    let mut outcomes: BTreeMap<usize, Result1> = BTreeMap::new();
    let message = if env.size <= READ_INLINE {
        // Just written, so in the page cache: reading it here costs less than the two thread
        // wake-ups of a blocking task.
        Ok(store.read_message(&env))
    } else {
        let (store, env) = (Arc::clone(store), env.clone());
        tokio::task::spawn_blocking(move || store.read_message(&env)).await
    };
    let message = match message {
        // One copy in memory, shared by the local delivery and every next hop.
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            return defer_all(
                cfg,
                env,
                now,
                &format!("cannot read the queued message: {e}"),
            );
        }
        Err(e) => return defer_all(cfg, env, now, &format!("read task failed: {e}")),
    };
    let pending: Vec<usize> = (0..env.recipients.len())
        .filter(|&i| env.recipients[i].state.is_pending())
        .collect();
    let hops = received_count(&message);
    if hops > MAX_RECEIVED {
        // RFC 5321 6.3: a message that went round too many times is a loop; it fails (and is
        // bounced) instead of circling forever.
        let why = format!(
            "554 5.4.6 routing loop detected: {hops} Received: headers (at most {MAX_RECEIVED})"
        );
        for &i in &pending {
            outcomes.insert(i, Result1::Failed(why.clone()));
        }
    }
    // A forwarded alias whose copy came back: our Delivered-To: from the first pass and the
    // one added on this one (Postfix's local(8) says "mail forwarding loop" for the same).
    let head = &message[..crate::mailbox::headers::header_end(&message).unwrap_or(message.len())];
    for &i in &pending {
        let r = &env.recipients[i];
        if let Some(alias) = r.alias.as_deref().filter(|_| !r.local_delivery)
            && crate::mailbox::headers::delivered_to_count(head, alias) > 1
            && !outcomes.contains_key(&i)
        {
            let why = format!("554 5.4.6 mail forwarding loop for {alias}");
            outcomes.insert(i, Result1::Failed(why));
        }
    }
    let pending: Vec<usize> = pending
        .into_iter()
        .filter(|i| !outcomes.contains_key(i))
        .collect();
    // Local recipients: one Maildir delivery for all of them.
    let local: Vec<usize> = pending
        .iter()
        .copied()
        .filter(|&i| env.recipients[i].local_delivery)
        .collect();
    let step = Step {
        cfg,
        stats,
        store,
        now,
        started,
    };
    // What is known so far (a loop) is recorded before anything is sent.
    record(
        cfg,
        stats,
        &mut env,
        std::mem::take(&mut outcomes),
        now,
        started,
    );
    // Remote recipients, by next hop.
    let mut hops: BTreeMap<Hop, Vec<usize>> = BTreeMap::new();
    for &i in pending
        .iter()
        .filter(|&&i| !env.recipients[i].local_delivery)
    {
        let hop = Hop::for_domain(cfg, &env.recipients[i].domain);
        hops.entry(hop).or_default().push(i);
    }
    if !local.is_empty() {
        let r = deliver_local(cfg, &env, &local, Arc::clone(&message)).await;
        for &i in &local {
            outcomes.insert(
                i,
                match &r {
                    Ok(()) => Result1::Delivered {
                        took_dsn: false,
                        reply: "delivered to its Maildir".into(),
                    },
                    Err(e) => Result1::Deferred(e.clone()),
                },
            );
        }
        // Recorded before the next step: after a crash these are not delivered again. With no
        // next step the end of the attempt records it (one save, or the removal, fewer fsyncs).
        if hops.is_empty() {
            step.record(&mut env, &mut outcomes);
        } else {
            step.done(&mut env, &mut outcomes).await;
        }
    }
    // Signed once for every next hop (the local copies above are not: they never leave).
    let outgoing = if hops.is_empty() {
        Arc::clone(&message)
    } else {
        signed(cfg, &env.id, &message).await
    };
    let last = hops.len();
    for (n, (hop, idx)) in hops.into_iter().enumerate() {
        let to: Vec<String> = idx
            .iter()
            .map(|&i| env.recipients[i].address.clone())
            .collect();
        let rcpt_dsn: Vec<_> = idx
            .iter()
            .map(|&i| (env.recipients[i].notify, env.recipients[i].orcpt.clone()))
            .collect();
        let mail = Mail {
            from: &env.sender,
            to: &to,
            message: &outgoing,
            ret: env.ret,
            envid: env.envid.as_deref(),
            rcpt_dsn: &rcpt_dsn,
            smtputf8: env.smtputf8,
        };
        // At most [relay] destination_concurrency deliveries to one destination at once.
        let slot = conns
            .slot(hop.destination(), cfg.relay.destination_concurrency)
            .await;
        let sent = send(cfg, conns, &hop, &mail).await;
        drop(slot);
        let by = match &sent {
            Sent::Answered { by, .. } => Some(by.clone()),
            _ => None,
        };
        for (&i, r) in idx.iter().zip(per_recipient(&to, sent)) {
            if by.is_some() {
                env.recipients[i].remote_mta = by.clone();
            }
            outcomes.insert(i, r);
        }
        if n + 1 == last {
            step.record(&mut env, &mut outcomes);
        } else {
            step.done(&mut env, &mut outcomes).await;
            crate::testing::stall_point("between_hops");
        }
    }
    record(cfg, stats, &mut env, outcomes, now, started);
    super::report::send(cfg, store, &mut env, &message, now).await;
    env
}

/// `message` as the next hops get it: in its wire form with a DKIM-Signature on top, when its
/// From: domain has a `[dkim]` signer; else as it is. Signing hashes the whole message, so it runs
/// off the async threads. A failure is logged and the message goes out unsigned rather than
/// deferred: a receiver may weigh a missing signature, and a retry would fail the same way.
async fn signed(cfg: &OutboundConfig, id: &str, message: &Arc<[u8]>) -> Arc<[u8]> {
    if cfg.dkim.is_empty() {
        return Arc::clone(message);
    }
    let signers = Arc::clone(&cfg.dkim);
    let m = Arc::clone(message);
    let result = tokio::task::spawn_blocking(move || {
        let domain = crate::dkim::author_domain(&m)?;
        let signer = signers.get(&domain)?;
        let wire = crate::wire::to_crlf(&m);
        Some((
            signer.clone(),
            signer.sign(&wire).map(|h| [h.as_bytes(), &wire].concat()),
        ))
    })
    .await;
    match result {
        Ok(None) => Arc::clone(message),
        Ok(Some((s, Ok(signed)))) => {
            info!(id, d = %s.domain, s = %s.selector, a = s.key.algorithm().signature_name(), "DKIM-signed");
            Arc::from(signed)
        }
        Ok(Some((s, Err(e)))) => {
            warn!(id, d = %s.domain, error = %e, "not DKIM-signed: sent unsigned");
            Arc::clone(message)
        }
        Err(e) => {
            warn!(id, error = %e, "DKIM signing task failed: sent unsigned");
            Arc::clone(message)
        }
    }
}

/// Applies this attempt's `outcomes` to `env` (state, attempts, next try, last error),
/// counts and logs each.
fn record(
    cfg: &OutboundConfig,
    stats: &Stats,
    env: &mut Envelope,
    outcomes: BTreeMap<usize, Result1>,
    now: u64,
    started: Instant,
) {
    let expired = now >= env.created.saturating_add(cfg.queue.max_lifetime_secs);
    for (i, outcome) in outcomes {
        let r = &mut env.recipients[i];
        r.attempts += 1;
        let (kind, detail) = match outcome {
            Result1::Delivered { took_dsn, reply } => {
                r.state = State::Delivered;
                r.last_error = None;
                // The next hop reports success itself when it took the request on.
                r.success_report = r.notify().success && !took_dsn;
                stats::add(&stats.remote_delivered, u64::from(!r.local_delivery));
                ("delivered", reply)
            }
            Result1::Deferred(e) if expired => {
                r.state = State::Failed;
                r.last_error = Some(format!("queue lifetime expired; last error: {e}"));
                stats::add(&stats.remote_failed, 1);
                ("failed", e)
            }
            Result1::Deferred(e) => {
                r.state = State::Deferred;
                let wait = backoff(
                    r.attempts,
                    cfg.queue.minimal_backoff_secs,
                    cfg.queue.maximal_backoff_secs,
                );
                r.next_try = now.saturating_add(wait);
                r.last_error = Some(e.clone());
                stats::add(&stats.remote_deferred, 1);
                ("deferred", e)
            }
            Result1::Failed(e) => {
                r.state = State::Failed;
                r.last_error = Some(e.clone());
                stats::add(&stats.remote_failed, 1);
                ("failed", e)
            }
        };
        // Postfix's relay= and delay=: where it went, and how long since it was queued.
        let relay = match (&r.remote_mta, r.local_delivery) {
            (_, true) => "maildir".to_string(),
            (Some(m), false) => m.clone(),
            (None, false) => "none".to_string(),
        };
        let delay = now.saturating_sub(env.created);
        let line = format!(
            "{} <{}>: {kind}, relay={relay}, delay={delay}s{}",
            env.id,
            r.address,
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            }
        );
        if kind == "delivered" {
            info!(
                id = %env.id,
                to = %r.address,
                local = r.local_delivery,
                attempt = r.attempts,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "{line}"
            );
        } else {
            warn!(id = %env.id, to = %r.address, attempt = r.attempts, next_try = r.next_try, "{line}");
        }
        stats.watch.publish(|| WatchEvent {
            time: watch::now(),
            session: 0,
            peer: relay.clone(),
            event: format!("queue {kind}"),
            from: Some(env.sender.clone()),
            to: vec![r.address.clone()],
            size: Some(env.size),
            result: format!("{} (try {}): {detail}", env.id, r.attempts),
            stored: None,
        });
    }
}

/// One attempt's context, to record outcomes as they come.
struct Step<'a> {
    cfg: &'a OutboundConfig,
    stats: &'a Stats,
    store: &'a Arc<QueueStore>,
    now: u64,
    started: Instant,
}

impl Step<'_> {
    /// Records `outcomes` (emptied) in `env` and writes it to disk.
    async fn done(&self, env: &mut Envelope, outcomes: &mut BTreeMap<usize, Result1>) {
        self.record(env, outcomes);
        save(self.store, env).await;
    }

    /// Records `outcomes` (emptied) in `env` only: the last step, which the end of the attempt
    /// writes (or removes, when nothing is left).
    fn record(&self, env: &mut Envelope, outcomes: &mut BTreeMap<usize, Result1>) {
        let taken = std::mem::take(outcomes);
        record(self.cfg, self.stats, env, taken, self.now, self.started);
    }
}

/// Writes `env` as it stands, off the async threads; a failure is logged (the final save of
/// the attempt tries again).
async fn save(store: &Arc<QueueStore>, env: &Envelope) {
    let (store, env) = (Arc::clone(store), env.clone());
    let id = env.id.clone();
    match tokio::task::spawn_blocking(move || store.save(&env)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => warn!(id = %id, error = %e, "cannot record a delivery outcome yet"),
        Err(e) => warn!(id = %id, error = %e, "outcome task failed"),
    }
}

/// Every pending recipient deferred with `why` (the message could not even be read).
fn defer_all(cfg: &OutboundConfig, mut env: Envelope, now: u64, why: &str) -> Envelope {
    warn!(id = %env.id, "{why}");
    for r in env.recipients.iter_mut().filter(|r| r.state.is_pending()) {
        r.attempts += 1;
        r.state = State::Deferred;
        r.last_error = Some(why.to_string());
        r.next_try = now.saturating_add(backoff(
            r.attempts,
            cfg.queue.minimal_backoff_secs,
            cfg.queue.maximal_backoff_secs,
        ));
    }
    env
}

/// The local recipients `idx` of `env` into their Maildirs (one commit), off the async threads.
async fn deliver_local(
    cfg: &OutboundConfig,
    env: &Envelope,
    idx: &[usize],
    message: Arc<[u8]>,
) -> Result<(), String> {
    let recipients: Vec<Recipient> = idx
        .iter()
        .map(|&i| {
            let r = &env.recipients[i];
            Recipient::new(&r.address, &r.domain, &r.local, false)
        })
        .collect();
    let target = Arc::clone(&cfg.local);
    let sender = env.sender.clone();
    tokio::task::spawn_blocking(move || {
        let mut d = target.begin(&Origin::sender(&sender), &recipients);
        // The final delivery: Return-Path here, as for mail that never left the host.
        d.write(crate::mailbox::headers::return_path(&sender).as_bytes())?;
        d.write(&message)?;
        d.commit().map(|_| ())
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
}

/// Each recipient's fate from the dialogue: refused at RCPT (5xx failed, 4xx deferred), or
/// after the final dot as the reply to it says; no answer defers all, a destination that takes
/// no mail (null MX, no such domain) fails all.
fn per_recipient(to: &[String], sent: Sent) -> Vec<Result1> {
    let (o, took_dsn) = match sent {
        Sent::Answered {
            outcome, took_dsn, ..
        } => (outcome, took_dsn),
        Sent::Deferred(e) => return to.iter().map(|_| Result1::Deferred(e.clone())).collect(),
        Sent::Failed(e) => return to.iter().map(|_| Result1::Failed(e.clone())).collect(),
    };
    // A refusal: 5xx fails; anything else (4xx, or a reply that should not end a dialogue,
    // such as a 250 instead of 354) is tried again.
    let of = |r: &Reply| {
        let text = r.to_string().replace('\n', " ");
        if (500..600).contains(&r.code) {
            Result1::Failed(text)
        } else {
            Result1::Deferred(text)
        }
    };
    to.iter()
        .map(|t| {
            if let Some((_, r)) = o.rejected.iter().find(|(a, _)| a == t) {
                of(r)
            } else if o.accepted.contains(t) && o.delivered {
                Result1::Delivered {
                    took_dsn,
                    reply: o
                        .reply
                        .to_string()
                        .replace('\n', " ")
                        .trim_end()
                        .to_string(),
                }
            } else {
                of(&o.reply)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::smtp::Outcome;

    fn config(dir: &std::path::Path, dkim: &[(&str, &str)]) -> OutboundConfig {
        let pem = include_str!("../dkim/testdata/ed25519-openssl.pem");
        let signers = dkim
            .iter()
            .map(|&(domain, selector)| {
                let key = crate::dkim::Key::from_pem(pem.as_bytes()).unwrap();
                let (domain, selector) = (domain.to_string(), selector.to_string());
                (
                    domain.clone(),
                    crate::dkim::Signer {
                        domain,
                        selector,
                        key,
                    },
                )
            })
            .collect();
        OutboundConfig {
            hostname: "mx.test".into(),
            relay: Default::default(),
            dns: super::super::Dns::new(&Default::default()),
            queue: Default::default(),
            local: Arc::new(crate::mailbox::MaildirStore::new(
                dir.to_path_buf(),
                "mx.test",
            )),
            domains: vec!["example.test".into()],
            delimiter: None,
            dkim: Arc::new(signers),
        }
    }

    /// Mail whose From: domain has a signer goes out in its wire form under a DKIM-Signature;
    /// any other mail (or any mail without signers) goes out as stored.
    #[tokio::test]
    async fn signed_by_the_from_domain_only() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &[("example.test", "s1")]);
        let ours: Arc<[u8]> = Arc::from(&b"From: a@Example.test\nSubject: x\n\nbody\n"[..]);
        let out = signed(&cfg, "ID", &ours).await;
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(
            text.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; s=s1; d=example.test;"),
            "{text}"
        );
        assert!(
            text.ends_with(";\r\nFrom: a@Example.test\r\nSubject: x\r\n\r\nbody\r\n"),
            "{text}"
        );
        let theirs: Arc<[u8]> = Arc::from(&b"From: a@far.test\n\nbody\n"[..]);
        assert!(Arc::ptr_eq(&signed(&cfg, "ID", &theirs).await, &theirs));
        let none = config(dir.path(), &[]);
        assert!(Arc::ptr_eq(&signed(&none, "ID", &ours).await, &ours));
    }

    #[test]
    fn received_headers_of_the_header_section_only() {
        let m = b"Received: a\nreceived: b\nSubject: x\nX-Received: no\n\nReceived: in the body\n";
        assert_eq!(received_count(m), 2);
        let looped = "Received: x\n".repeat(MAX_RECEIVED + 1) + "\nbody\n";
        assert!(received_count(looped.as_bytes()) > MAX_RECEIVED);
    }

    /// Per recipient: refused at RCPT (5xx fails, 4xx defers), accepted and delivered, or the
    /// reply that ended the dialogue; one that should not end it (250 instead of 354) defers, so
    /// nothing counts as delivered that was not. No answer defers all; a null MX fails all.
    #[test]
    fn each_recipients_fate() {
        let reply = |code: u16, text: &str| Reply {
            code,
            lines: vec![text.to_string()],
        };
        let to: Vec<String> = ["a@x.test", "b@x.test", "c@x.test"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let kinds = |v: Vec<Result1>| -> Vec<&'static str> {
            v.iter()
                .map(|r| match r {
                    Result1::Delivered { .. } => "delivered",
                    Result1::Deferred(_) => "deferred",
                    Result1::Failed(_) => "failed",
                })
                .collect()
        };
        let sent = |accepted: &[&str], delivered: bool, end: Reply| Sent::Answered {
            outcome: Outcome {
                accepted: accepted.iter().map(|s| s.to_string()).collect(),
                rejected: vec![
                    ("b@x.test".into(), reply(550, "5.1.1 no")),
                    ("c@x.test".into(), reply(452, "4.5.3 later")),
                ],
                reply: end,
                delivered,
            },
            by: "mx.x.test".into(),
            took_dsn: false,
        };
        let ok = sent(&["a@x.test"], true, reply(250, "2.0.0 ok"));
        assert_eq!(
            kinds(per_recipient(&to, ok)),
            ["delivered", "failed", "deferred"]
        );
        let odd = sent(&["a@x.test"], false, reply(250, "2.0.0 but no 354"));
        assert_eq!(
            kinds(per_recipient(&to, odd)),
            ["deferred", "failed", "deferred"]
        );
        let refused = sent(&["a@x.test"], false, reply(554, "5.3.0 no data"));
        assert_eq!(
            kinds(per_recipient(&to, refused)),
            ["failed", "failed", "deferred"]
        );
        let down = Sent::Deferred("4.4.1 connection refused".into());
        assert_eq!(kinds(per_recipient(&to, down)), ["deferred"; 3]);
        let null = Sent::Failed("556 5.1.10 x.test does not accept mail (null MX)".into());
        assert_eq!(kinds(per_recipient(&to, null)), ["failed"; 3]);
    }
}
