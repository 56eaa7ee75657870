//! Delivering the queue: a runner that tries every due message (local recipients into their
//! Maildirs, remote ones to their next hop with our SMTP client: a route, the smarthost, or the
//! domain's MX hosts), records each recipient's
//! outcome durably before going on, and retries deferred ones with exponential backoff. A
//! recipient recorded as delivered is never sent again; one in flight when smtpd dies is sent
//! again after the restart (at-least-once, as Postfix).
//!
//! The runner lives as long as the daemon; the routes, the resolver and the retry schedule come
//! from the current configuration ([`Outbound::set_config`] on every reload).

mod attempt;
pub mod bounce;
mod hop;
mod mx;
mod pool;
mod report;
mod table;

pub use mx::Dns;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::{Queue, Relay};
use crate::mailbox::MaildirStore;
use crate::net::stats::Stats;
use crate::queue::store::Claim;
use crate::queue::{Envelope, QueueStore, State};

/// A message another instance is trying is looked at again this much later.
const CLAIM_RETRY_SECS: u64 = 5;

/// The envelope to try: the one on disk (`disk`: every change is saved there, by whichever
/// instance made it), except that a recipient this process recorded as done (`mine`) stays done
/// even if a save of it failed.
fn merge(mine: Envelope, mut disk: Envelope) -> Envelope {
    if mine.recipients.len() == disk.recipients.len() {
        for (m, d) in mine.recipients.into_iter().zip(disk.recipients.iter_mut()) {
            if !m.state.is_pending() && d.state.is_pending() && m.address == d.address {
                *d = m;
            }
        }
    }
    disk
}

/// What the runner needs from the configuration in force.
pub struct OutboundConfig {
    /// Our name in EHLO.
    pub hostname: String,
    pub relay: Relay,
    /// The resolver of direct delivery, made from `[dns]`.
    pub dns: Dns,
    pub queue: Queue,
    /// Where local recipients of queued messages go.
    pub local: Arc<MaildirStore>,
    /// The local domains (a bounce to a sender there is delivered to its Maildir).
    pub domains: Vec<String>,
    /// `[mailboxes] recipient_delimiter` (a bounce to alice+tag@ goes to alice's Maildir).
    pub delimiter: Option<char>,
    /// `[dkim]` with the keys read: lower-cased domain → its signer. Mail sent to a next hop is
    /// signed by its From: domain's.
    pub dkim: Arc<BTreeMap<String, crate::dkim::Signer>>,
}

pub struct Outbound {
    store: Arc<QueueStore>,
    config: RwLock<Arc<OutboundConfig>>,
    entries: Mutex<table::Table>,
    wake: Notify,
    stats: Arc<Stats>,
    /// Sessions with next hops kept for the next message, and the per-destination limits.
    conns: Arc<pool::Connections>,
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Outbound {
    /// Loads the queue (what a crash left is cleaned, problems logged) and hooks the store so
    /// every newly queued message wakes the runner.
    pub fn new(
        store: Arc<QueueStore>,
        config: OutboundConfig,
        stats: Arc<Stats>,
    ) -> Result<Arc<Outbound>, crate::mailbox::DeliveryError> {
        let (mut envelopes, problems) = store.load()?;
        for p in problems {
            warn!("queue: {p}");
        }
        // Finished before a crash could remove them (every recipient recorded as done).
        envelopes.retain(|e| {
            if e.is_done() {
                if let Err(err) = store.remove(&e.id) {
                    warn!(id = %e.id, error = %err, "cannot remove a finished message");
                }
                return false;
            }
            true
        });
        let entries = table::Table::new(envelopes);
        let o = Arc::new(Outbound {
            store: Arc::clone(&store),
            config: RwLock::new(Arc::new(config)),
            entries: Mutex::new(entries),
            wake: Notify::new(),
            stats,
            conns: pool::Connections::new(),
        });
        let weak = Arc::downgrade(&o);
        store.on_queued(Arc::new(move |e: &Envelope| {
            if let Some(o) = weak.upgrade() {
                o.queued(e);
            }
        }));
        let n = o.entries().len();
        if n > 0 {
            info!(messages = n, "queue loaded");
        }
        Ok(o)
    }

    fn entries(&self) -> MutexGuard<'_, table::Table> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn store(&self) -> &Arc<QueueStore> {
        &self.store
    }

    pub fn config(&self) -> Arc<OutboundConfig> {
        Arc::clone(&self.config.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The configuration of a reload: used from the next attempt on.
    pub fn set_config(&self, c: OutboundConfig) {
        *self.config.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(c);
        self.wake.notify_one();
    }

    /// A message was just queued (its files are durable). A scan may have brought it first.
    fn queued(&self, e: &Envelope) {
        self.entries().insert_new(e.clone());
        self.wake.notify_one();
    }

    /// Lists `msg/` and brings what another instance sharing the queue left in it into the
    /// table: messages it queued (tried here too once due; the claim keeps two instances from
    /// trying one at once) and, when it died, everything it had. Entries whose file is gone
    /// (delivered by another instance) are dropped. Only entries known before the listing
    /// began are dropped, since anything queued here enters the table after its rename.
    async fn scan(&self) {
        let known: std::collections::HashSet<String> = self.entries().ids().into_iter().collect();
        let store = Arc::clone(&self.store);
        let listed = tokio::task::spawn_blocking(move || {
            let ids = store.scan()?;
            let present: std::collections::HashSet<String> = ids.iter().cloned().collect();
            let new: Vec<Envelope> = ids
                .iter()
                .filter(|id| !known.contains(*id))
                .filter_map(|id| store.read(id))
                .collect();
            let gone: Vec<String> = known
                .into_iter()
                .filter(|id| !present.contains(id))
                .collect();
            Ok::<_, std::io::Error>((new, gone))
        })
        .await;
        let (new, gone) = match listed {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                return warn!(error = %e, "cannot list the queue for other instances' messages");
            }
            Err(e) => return warn!(error = %e, "queue scan failed"),
        };
        let mut entries = self.entries();
        let mut added = 0;
        for env in new {
            if !env.is_done() && entries.insert_new(env) {
                added += 1;
            }
        }
        for id in &gone {
            if entries.get(id).is_some_and(|e| !e.in_flight) {
                entries.remove(id);
            }
        }
        if added > 0 {
            info!(
                messages = added,
                "queue: taken up from the shared queue directory"
            );
        }
    }

    /// Changes `id`'s envelope on disk under its claim: read again, changed by `f`, saved, so
    /// that what another instance sharing the queue saved since is kept. `Ok(false)`: it is
    /// being tried now (here or by another instance) or gone; nothing was written.
    fn change_on_disk(&self, id: &str, f: impl FnOnce(&mut Envelope)) -> Result<bool, String> {
        match self.store.claim(id).map_err(|e| e.to_string())? {
            Claim::Claimed { lock, mut envelope } => {
                f(&mut envelope);
                self.store.save(&envelope).map_err(|e| e.to_string())?;
                drop(lock);
                Ok(true)
            }
            Claim::Busy | Claim::Gone => Ok(false),
        }
    }

    /// Claims `env`'s message for an attempt (see [`QueueStore::claim`]). `Some`: the lock and
    /// the envelope to try, the one on disk (another instance may have tried it since this one
    /// read it), a recipient done here kept done. `None`: not tried now (taken by another instance, gone, or
    /// not due by what is on disk); the table says what next.
    async fn claim(&self, env: Envelope) -> Option<(std::fs::File, Envelope)> {
        let (store, id) = (Arc::clone(&self.store), env.id.clone());
        let claim = tokio::task::spawn_blocking(move || store.claim(&id))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
            .and_then(|r| r);
        let now = unix_now();
        let mut entries = self.entries();
        match claim {
            Ok(Claim::Claimed { lock, envelope }) => {
                let merged = merge(env, envelope);
                if merged.next_try().is_some_and(|t| t <= now) && !merged.held {
                    return Some((lock, merged));
                }
                let id = merged.id.clone();
                entries.update(&id, |e| {
                    e.envelope = merged;
                    e.in_flight = false;
                });
                None
            }
            Ok(Claim::Gone) => {
                entries.remove(&env.id);
                None
            }
            Ok(Claim::Busy) | Err(_) => {
                if let Err(e) = claim {
                    warn!(id = %env.id, error = %e, "cannot claim a queued message; trying later");
                }
                entries.update(&env.id, |e| {
                    e.in_flight = false;
                    e.not_before = now + CLAIM_RETRY_SECS;
                });
                None
            }
        }
    }

    /// Every message in the queue, oldest first.
    pub fn list(&self) -> Vec<Envelope> {
        let mut v: Vec<Envelope> = self
            .entries()
            .values()
            .map(|e| e.envelope.clone())
            .collect();
        v.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        v
    }

    /// Makes the pending recipients of `id` (or of every message) due now; held messages stay
    /// held. Saved, since an attempt goes by the envelope on disk (which another instance
    /// sharing the queue may have changed). Returns how many messages that touched.
    pub fn flush(&self, id: Option<&str>) -> Result<usize, String> {
        let mut n = 0;
        let mut touched_ids = Vec::new();
        {
            let mut entries = self.entries();
            if let Some(id) = id
                && !entries.contains(id)
            {
                return Err(format!("no message {id} in the queue"));
            }
            let ids = match id {
                Some(id) => vec![id.to_string()],
                None => entries.ids(),
            };
            for k in ids {
                let touched = entries.update(&k, |e| {
                    if !e.envelope.is_pending() || e.envelope.held {
                        return false;
                    }
                    for r in &mut e.envelope.recipients {
                        if r.state.is_pending() {
                            r.next_try = 0;
                        }
                    }
                    // One in flight saves its own outcome at the end of its attempt.
                    if !e.in_flight {
                        touched_ids.push(e.envelope.id.clone());
                    }
                    true
                });
                n += usize::from(touched == Some(true));
            }
        }
        for id in touched_ids {
            // Busy: being tried now anyway.
            self.change_on_disk(&id, |env| {
                for r in &mut env.recipients {
                    if r.state.is_pending() {
                        r.next_try = 0;
                    }
                }
            })?;
        }
        self.wake.notify_one();
        Ok(n)
    }

    /// `queue hold ID` / `queue release ID`, recorded durably (by the end of its attempt when it
    /// is being tried).
    pub fn hold(&self, id: &str, held: bool) -> Result<(), String> {
        let in_flight = self
            .entries()
            .update(id, |e| {
                e.envelope.held = held;
                e.in_flight
            })
            .ok_or_else(|| format!("no message {id} in the queue"))?;
        // One being tried here is saved by the end of its attempt, with its new state.
        if !in_flight && !self.change_on_disk(id, |env| env.held = held)? {
            return Err(format!(
                "message {id} is being delivered by another instance now; try again in a moment"
            ));
        }
        self.wake.notify_one();
        Ok(())
    }

    /// `queue remove ID`: gone without a try or a bounce. Refused while it is being tried.
    pub fn remove(&self, id: &str) -> Result<(), String> {
        let mut entries = self.entries();
        match entries.get(id) {
            None => return Err(format!("no message {id} in the queue")),
            Some(e) if e.in_flight => {
                return Err(format!(
                    "message {id} is being delivered now; try again in a moment"
                ));
            }
            Some(_) => {}
        }
        match self.store.claim(id).map_err(|e| e.to_string())? {
            Claim::Claimed { lock, .. } => {
                self.store
                    .remove_claimed(id, lock)
                    .map_err(|e| e.to_string())?;
            }
            Claim::Busy => {
                return Err(format!(
                    "message {id} is being delivered by another instance now; try again in a moment"
                ));
            }
            Claim::Gone => {}
        }
        entries.remove(id);
        info!(id, "removed from the queue by smtpctl");
        Ok(())
    }

    /// (messages, messages with a deferred recipient) in the queue.
    pub fn counts(&self) -> (u64, u64) {
        let entries = self.entries();
        let deferred = entries
            .values()
            .filter(|e| {
                e.envelope
                    .recipients
                    .iter()
                    .any(|r| r.state == State::Deferred)
            })
            .count();
        (entries.len() as u64, deferred as u64)
    }

    /// Sessions with next hops (opened, reused from the cache) since start.
    pub fn sessions(&self) -> (u64, u64) {
        self.conns.counts()
    }

    /// Due messages (marked in flight), at most `room` of them, and when the next one is due.
    /// With no room, or once `room` are taken, the rest is not looked at (and the next time
    /// not known): the end of an attempt wakes the runner anyway.
    fn take_due(&self, now: u64, room: usize) -> (Vec<Envelope>, Option<u64>) {
        self.entries().take_due(now, room)
    }

    /// Records the outcome of an attempt: durably first, then in memory. A message with nothing
    /// left to do (every recipient delivered, or failed and bounced) is removed; one whose bounce
    /// could not be queued yet stays and is tried again.
    async fn finished(&self, mut env: Envelope, mut lock: Option<std::fs::File>) {
        loop {
            // A hold or release made while it was in flight stands, on disk too.
            if let Some(e) = self.entries().get(&env.id) {
                env.held = e.envelope.held;
            }
            let done = env.is_done();
            // The removal or save (unlink, fsyncs) off the async threads. Removals run in
            // parallel: an unlink can wait for the disk (ext4 discards the freed blocks), and
            // their directory fsyncs are shared anyway.
            let (store, e) = (Arc::clone(&self.store), env.clone());
            let claimed = if done { lock.take() } else { None };
            let saved = tokio::task::spawn_blocking(move || match (done, claimed) {
                (true, Some(lock)) => store.remove_claimed(&e.id, lock),
                (true, None) => store.remove(&e.id),
                (false, _) => store.save(&e),
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            let mut entries = self.entries();
            let Some(entry) = entries.get(&env.id) else {
                return;
            };
            if let Err(e) = saved {
                // Kept in memory, so delivered recipients are not sent again by this process;
                // the next save (the next try, or a later attempt) records it on disk.
                warn!(id = %env.id, error = %e, "cannot record the delivery outcome on disk yet");
            } else if done {
                entries.remove(&env.id);
                return;
            } else if entry.envelope.held != env.held {
                // Held or released during the save (which `hold` leaves to this attempt):
                // saved again with it.
                continue;
            }
            let id = env.id.clone();
            entries.update(&id, |e| {
                e.envelope = env;
                e.in_flight = false;
                e.not_before = 0;
            });
            return;
        }
    }

    /// Tries due messages until `shutdown`; attempts run on `tracker`, so a shutdown lets the
    /// ones in flight finish within the grace period.
    pub async fn run(self: Arc<Self>, shutdown: CancellationToken, tracker: TaskTracker) {
        // Messages being tried; at most [relay] concurrency of the config in force.
        let active = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut last_scan = tokio::time::Instant::now();
        loop {
            use std::sync::atomic::Ordering::SeqCst;
            let scan_every = Duration::from_secs(self.config().queue.scan_interval_secs.max(1));
            if last_scan.elapsed() >= scan_every {
                self.scan().await;
                last_scan = tokio::time::Instant::now();
            }
            let now = unix_now();
            let room = self
                .config()
                .relay
                .concurrency
                .saturating_sub(active.load(SeqCst));
            let (due, next) = self.take_due(now, room);
            for env in due {
                active.fetch_add(1, SeqCst);
                let me = Arc::clone(&self);
                let active = Arc::clone(&active);
                tracker.spawn(async move {
                    if let Some((lock, env)) = me.claim(env).await {
                        let cfg = me.config();
                        let env = attempt::run(&cfg, &me.store, &me.stats, &me.conns, env).await;
                        me.finished(env, Some(lock)).await;
                    }
                    active.fetch_sub(1, SeqCst);
                    me.wake.notify_one();
                });
            }
            let wait = next
                .map(|t| Duration::from_secs(t.saturating_sub(now).max(1)))
                .unwrap_or(Duration::from_secs(3600))
                .min(Duration::from_secs(3600))
                .min(scan_every.saturating_sub(last_scan.elapsed()));
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }
}
