//! Connections to next hops, shared by the attempts: a session that ended a transaction cleanly
//! is kept open for `[relay] connection_cache_secs` and given to the next message for the same
//! peer (checked with RSET first, as Postfix's connection cache does), and each destination has
//! at most `[relay] destination_concurrency` deliveries at once (Postfix's
//! `default_destination_concurrency_limit`).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::client::smtp::Client;

/// How long RSET on a cached session may take before it is given up.
const CHECK: Duration = Duration::from_secs(10);

/// What makes two sessions interchangeable: the peer, and how we spoke to it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    pub addr: SocketAddr,
    /// The name TLS was verified against, and how (see `hop::Peer`).
    pub name: String,
    pub tls: u8,
    pub verify: bool,
    pub auth: bool,
}

struct Idle {
    client: Client,
    since: Instant,
    /// Tells this entry from a later one for the same key (for the expiry task).
    serial: u64,
}

#[derive(Default)]
pub struct Connections {
    idle: Mutex<HashMap<Key, Vec<Idle>>>,
    serial: AtomicU64,
    destinations: Mutex<HashMap<String, (usize, Arc<Semaphore>)>>,
    /// Sessions opened and reused (for metrics and the benchmark notes).
    opened: AtomicU64,
    reused: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Connections {
    pub fn new() -> Arc<Connections> {
        Arc::new(Connections::default())
    }

    /// A delivery slot for `destination` (a next hop's address, or a domain for MX delivery),
    /// waiting while `limit` deliveries to it run.
    pub async fn slot(&self, destination: &str, limit: usize) -> Option<OwnedSemaphorePermit> {
        let limit = limit.max(1);
        let sem = {
            let mut d = lock(&self.destinations);
            let entry = d
                .entry(destination.to_string())
                .or_insert_with(|| (limit, Arc::new(Semaphore::new(limit))));
            if entry.0 != limit {
                // A reload changed the limit: new deliveries use a new semaphore.
                *entry = (limit, Arc::new(Semaphore::new(limit)));
            }
            Arc::clone(&entry.1)
        };
        sem.acquire_owned().await.ok()
    }

    /// A cached session for `key` that still answers RSET, if there is one younger than `ttl`.
    pub async fn take(&self, key: &Key, ttl: Duration) -> Option<Client> {
        loop {
            let idle = {
                let mut map = lock(&self.idle);
                let list = map.get_mut(key)?;
                let idle = list.pop();
                if list.is_empty() {
                    map.remove(key);
                }
                idle?
            };
            if idle.since.elapsed() > ttl {
                // Too old: closed (its expiry task would have done it soon).
                drop(idle);
                continue;
            }
            let mut client = idle.client;
            match tokio::time::timeout(CHECK, client.command("RSET")).await {
                Ok(Ok(r)) if r.code == 250 => {
                    self.reused.fetch_add(1, Relaxed);
                    return Some(client);
                }
                // Closed by the peer meanwhile, or confused: try the next one.
                _ => continue,
            }
        }
    }

    /// A session was opened (counted).
    pub fn opened(&self) {
        self.opened.fetch_add(1, Relaxed);
    }

    /// (opened, reused) so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.opened.load(Relaxed), self.reused.load(Relaxed))
    }

    /// Keeps `client` for the next message to `key` for `ttl`, then closes it with QUIT. A
    /// `ttl` of zero closes it now.
    pub fn put(self: &Arc<Self>, key: Key, mut client: Client, ttl: Duration) {
        if ttl.is_zero() {
            tokio::spawn(async move {
                let _ = tokio::time::timeout(CHECK, client.command("QUIT")).await;
            });
            return;
        }
        let serial = self.serial.fetch_add(1, Relaxed);
        lock(&self.idle).entry(key.clone()).or_default().push(Idle {
            client,
            since: Instant::now(),
            serial,
        });
        let me = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(ttl).await;
            let Some(me) = me.upgrade() else {
                return;
            };
            let expired = {
                let mut map = lock(&me.idle);
                let Some(list) = map.get_mut(&key) else {
                    return;
                };
                let Some(i) = list.iter().position(|e| e.serial == serial) else {
                    return;
                };
                let e = list.remove(i);
                if list.is_empty() {
                    map.remove(&key);
                }
                e
            };
            let mut c = expired.client;
            let _ = tokio::time::timeout(CHECK, c.command("QUIT")).await;
        });
    }
}
