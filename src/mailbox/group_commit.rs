//! Group commit of directory fsyncs: when many deliveries rename into the same `new/` at once,
//! one fsync of that directory covers every rename that finished before it started, so each
//! delivery waits for *a* directory fsync that began after its own rename, instead of issuing
//! its own. The first waiter becomes the leader and syncs; the others wait for it; whoever
//! arrives while a sync is running waits for the next one. A failed sync advances nothing: each
//! waiter then runs its own, so every caller gets the outcome of a sync that covers its rename.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

type SyncFn = dyn Fn(&Path) -> io::Result<()> + Send + Sync;

/// One per message store; shared by every delivery thread.
pub struct DirSync {
    dirs: Mutex<HashMap<PathBuf, Arc<DirState>>>,
    sync: Box<SyncFn>,
}

#[derive(Default)]
struct DirState {
    inner: Mutex<Inner>,
    done: Condvar,
}

#[derive(Default)]
struct Inner {
    /// Tickets handed out: one per caller, taken after its rename returned.
    issued: u64,
    /// Every ticket up to this one is covered by a completed fsync.
    synced: u64,
    /// A leader is syncing now.
    running: bool,
    /// fsync calls made (for tests and the benchmark notes).
    syncs: u64,
}

/// Entries kept before idle directories are forgotten.
const MAX_DIRS: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DirSync {
    pub fn new() -> Self {
        Self::with(|dir: &Path| {
            crate::testing::stall_point("in_dir_fsync");
            std::fs::File::open(dir).and_then(|d| d.sync_all())
        })
    }

    /// With another sync function (tests).
    pub fn with(sync: impl Fn(&Path) -> io::Result<()> + Send + Sync + 'static) -> Self {
        DirSync {
            dirs: Mutex::new(HashMap::new()),
            sync: Box::new(sync),
        }
    }

    fn state(&self, dir: &Path) -> Arc<DirState> {
        let mut dirs = lock(&self.dirs);
        if let Some(s) = dirs.get(dir) {
            return Arc::clone(s);
        }
        if dirs.len() >= MAX_DIRS {
            dirs.retain(|_, s| Arc::strong_count(s) > 1);
        }
        let s = Arc::new(DirState::default());
        dirs.insert(dir.to_path_buf(), Arc::clone(&s));
        s
    }

    /// Returns once an fsync of `dir` that started after this call has completed (blocking: call
    /// it from a blocking thread, after the rename it must cover).
    pub fn sync(&self, dir: &Path) -> io::Result<()> {
        let st = self.state(dir);
        let mut g = lock(&st.inner);
        g.issued += 1;
        let ticket = g.issued;
        loop {
            if g.synced >= ticket {
                return Ok(());
            }
            if g.running {
                g = st.done.wait(g).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead: this fsync covers every ticket issued so far (their renames have returned).
            g.running = true;
            let covers = g.issued;
            drop(g);
            let result = (self.sync)(dir);
            g = lock(&st.inner);
            g.running = false;
            g.syncs += 1;
            if result.is_ok() {
                g.synced = g.synced.max(covers);
            }
            st.done.notify_all();
            // On failure the others retry with their own fsync; this caller reports it.
            result?;
        }
    }

    /// fsync calls made on `dir` so far.
    pub fn syncs(&self, dir: &Path) -> u64 {
        lock(&self.dirs)
            .get(dir)
            .map(|s| lock(&s.inner).syncs)
            .unwrap_or(0)
    }
}

impl Default for DirSync {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for DirSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirSync").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A fake directory: `renamed` counts renames made, `durable` what the last completed sync
    /// saw when it started. A caller is safe when, on return, durable ≥ its own rename number.
    struct Fake {
        renamed: AtomicU64,
        durable: AtomicU64,
    }

    fn fake(delay: Duration, fail_first: u64) -> (Arc<Fake>, DirSync) {
        let f = Arc::new(Fake {
            renamed: AtomicU64::new(0),
            durable: AtomicU64::new(0),
        });
        let f2 = Arc::clone(&f);
        let calls = AtomicU64::new(0);
        let ds = DirSync::with(move |_| {
            let seen = f2.renamed.load(Ordering::SeqCst);
            std::thread::sleep(delay);
            if calls.fetch_add(1, Ordering::SeqCst) < fail_first {
                return Err(io::Error::other("injected"));
            }
            f2.durable.fetch_max(seen, Ordering::SeqCst);
            Ok(())
        });
        (f, ds)
    }

    #[test]
    fn every_caller_returns_after_a_sync_that_covers_it_and_syncs_are_shared() {
        let (f, ds) = fake(Duration::from_millis(2), 0);
        let ds = Arc::new(ds);
        let dir = Path::new("/x/new");
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (f, ds) = (Arc::clone(&f), Arc::clone(&ds));
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let mine = f.renamed.fetch_add(1, Ordering::SeqCst) + 1;
                        ds.sync(dir).unwrap();
                        assert!(f.durable.load(Ordering::SeqCst) >= mine);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let syncs = ds.syncs(dir);
        assert!(syncs < 800, "16 threads × 50 renames took {syncs} fsyncs");
        assert!(syncs >= 1);
    }

    #[test]
    fn a_failed_sync_is_reported_and_others_retry() {
        let (f, ds) = fake(Duration::from_millis(1), 1);
        let ds = Arc::new(ds);
        let dir = Path::new("/y/new");
        let results: Vec<_> = (0..4)
            .map(|_| {
                let (f, ds) = (Arc::clone(&f), Arc::clone(&ds));
                std::thread::spawn(move || {
                    let mine = f.renamed.fetch_add(1, Ordering::SeqCst) + 1;
                    let r = ds.sync(dir);
                    if r.is_ok() {
                        assert!(f.durable.load(Ordering::SeqCst) >= mine);
                    }
                    r.is_ok()
                })
            })
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(results.iter().filter(|ok| !**ok).count(), 1, "{results:?}");
    }

    #[test]
    fn single_caller_syncs_each_time() {
        let (_, ds) = fake(Duration::ZERO, 0);
        let dir = Path::new("/z/new");
        for _ in 0..3 {
            ds.sync(dir).unwrap();
        }
        assert_eq!(ds.syncs(dir), 3);
    }
}
