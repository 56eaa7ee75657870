//! Removing finished messages from the queue in batches: the attempts that finish while one
//! batch is being removed wait for the next, which is one blocking task and one directory
//! fsync for all of them ([`QueueStore::remove_many`]), where one removal each cost a blocking
//! thread's wake-up and a share of an fsync. Each caller still waits for its own removal, so a
//! message is never both out of the queue in memory and still on disk for longer than its
//! attempt (kill -9 resends at most the attempts in flight, as before).

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use crate::queue::QueueStore;

type Done = oneshot::Sender<Result<(), String>>;

#[derive(Default)]
struct Waiting {
    ids: Vec<(String, Done)>,
    /// A blocking task is removing a batch (it takes the next one before it stops).
    running: bool,
}

pub struct Removals {
    store: Arc<QueueStore>,
    waiting: Mutex<Waiting>,
}

impl Removals {
    pub fn new(store: Arc<QueueStore>) -> Arc<Removals> {
        Arc::new(Removals {
            store,
            waiting: Mutex::new(Waiting::default()),
        })
    }

    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes message `id` (and its envelope) durably, with whatever other removals are
    /// waiting at the time.
    pub async fn remove(self: &Arc<Self>, id: &str) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut w = self.waiting();
            w.ids.push((id.to_string(), tx));
            !std::mem::replace(&mut w.running, true)
        };
        if lead {
            let me = Arc::clone(self);
            tokio::task::spawn_blocking(move || me.drain());
        }
        rx.await
            .unwrap_or_else(|_| Err("the queue's removal task stopped".to_string()))
    }

    /// Removes batches until none is waiting.
    fn drain(&self) {
        /// Lets the next caller start a task again even if this one unwinds.
        struct Running<'a>(&'a Removals);
        impl Drop for Running<'_> {
            fn drop(&mut self) {
                self.0.waiting().running = false;
            }
        }
        let _running = Running(self);
        loop {
            let batch = {
                let mut w = self.waiting();
                if w.ids.is_empty() {
                    // Cleared here, under the lock, so no caller is left waiting unserved.
                    w.running = false;
                    return;
                }
                std::mem::take(&mut w.ids)
            };
            let (ids, done): (Vec<String>, Vec<Done>) = batch.into_iter().unzip();
            let results = self.store.remove_many(&ids);
            for (tx, r) in done.into_iter().zip(results) {
                let _ = tx.send(r.map_err(|e| e.to_string()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mailbox::delivery::{Origin, Recipient, Target};

    /// Many removals at once: every one answered and done, and the task ends after the last.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_removals_are_batched_and_all_done() {
        let dir = tempfile::tempdir().unwrap();
        let store = QueueStore::open(dir.path()).unwrap();
        let mut ids = Vec::new();
        for _ in 0..64 {
            let mut d = Arc::clone(&store).begin(
                &Origin::sender("a@b.test"),
                &[Recipient::new("x@far.test", "far.test", "x", true)],
            );
            d.write(b"m\n").unwrap();
            ids.push(d.commit().unwrap().id);
        }
        let removals = Removals::new(Arc::clone(&store));
        let tasks: Vec<_> = ids
            .iter()
            .map(|id| {
                let (r, id) = (Arc::clone(&removals), id.clone());
                tokio::spawn(async move { r.remove(&id).await })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("msg")).unwrap().count(),
            0
        );
        assert!(store.load().unwrap().0.is_empty());
        assert!(!removals.waiting().running);
        // A later one still gets a task of its own.
        removals.remove("not-there").await.unwrap();
    }
}
