//! The Maildir store as a delivery [`Target`]: the id is chosen at `begin`, the spool file in the
//! first recipient's `tmp/` is made at the first write (so a small message takes one blocking
//! trip: write + commit), and commit is [`Spool::commit`]: fsync, link or rename into every
//! `new/`, fsync each `new/`.

use std::path::PathBuf;
use std::sync::Arc;

use super::delivery::{Committed, Delivery, DeliveryError, Origin, Recipient, Target};
use super::maildir::{MaildirStore, Reservation, Spool};

impl Target for MaildirStore {
    fn begin(self: Arc<Self>, _origin: &Origin, recipients: &[Recipient]) -> Box<dyn Delivery> {
        let reservation = self.reserve();
        let mut maildirs: Vec<PathBuf> = Vec::new();
        let mut failed = None;
        for r in recipients {
            if r.remote {
                // Never a Maildir for a remote domain: such mail goes through the queue.
                failed = Some(Unusable::Remote(r.address.clone()));
                continue;
            }
            match self.maildir(&r.domain, &r.local) {
                Ok(md) if !maildirs.contains(&md) => maildirs.push(md),
                Ok(_) => {}
                Err(_) => failed = Some(Unusable::Name(format!("{}@{}", r.local, r.domain))),
            }
        }
        Box::new(MaildirDelivery {
            store: self,
            reservation,
            maildirs,
            spool: None,
            failed,
        })
    }
}

struct MaildirDelivery {
    store: Arc<MaildirStore>,
    reservation: Reservation,
    /// Distinct recipient maildirs; the first holds the spool.
    maildirs: Vec<PathBuf>,
    /// Made at the first write. Dropped uncommitted, it removes its file.
    spool: Option<Spool>,
    /// A recipient that cannot have a Maildir copy, found at `begin`: every write and the
    /// commit fail, so no other recipient gets the message either.
    failed: Option<Unusable>,
}

/// Why a recipient cannot have a Maildir copy.
enum Unusable {
    /// A name that would leave the root.
    Name(String),
    /// Not in a local domain (such mail goes through the queue).
    Remote(String),
}

impl Unusable {
    fn error(&self) -> DeliveryError {
        match self {
            Unusable::Name(n) => DeliveryError::UnsafeName(n.clone()),
            Unusable::Remote(a) => DeliveryError::Remote(a.clone()),
        }
    }
}

impl MaildirDelivery {
    fn spool(&mut self) -> Result<&mut Spool, DeliveryError> {
        if let Some(u) = &self.failed {
            return Err(u.error());
        }
        let spool = match self.spool.take() {
            Some(s) => s,
            None => self.store.open(&self.maildirs, self.reservation.clone())?,
        };
        Ok(self.spool.insert(spool))
    }
}

impl Delivery for MaildirDelivery {
    fn id(&self) -> &str {
        &self.reservation.id
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), DeliveryError> {
        self.spool()?.write(bytes)
    }

    fn commit(mut self: Box<Self>) -> Result<Committed, DeliveryError> {
        self.spool()?;
        let Some(spool) = self.spool.take() else {
            return Err(DeliveryError::NoRecipients);
        };
        let (id, size) = (spool.id.clone(), spool.size);
        let result = spool.commit(&self.maildirs);
        if result.is_err() {
            // A maildir removed behind our back is made again next time.
            for md in &self.maildirs {
                self.store.forget(md);
            }
        }
        result.map(|paths| Committed {
            id,
            size,
            copies: paths.len(),
            files: Some(paths),
        })
    }

    fn abort(self: Box<Self>) {
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailbox(local: &str) -> Recipient {
        Recipient::new(
            &format!("{local}@example.test"),
            "example.test",
            local,
            false,
        )
    }

    /// One message for two recipients (one named twice): two copies, the same bytes.
    #[test]
    fn begin_write_commit() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MaildirStore::new(dir.path(), "mx.test"));
        let mut d = Arc::clone(&store).begin(
            &Origin::default(),
            &[mailbox("a"), mailbox("b"), mailbox("a")],
        );
        let id = d.id().to_string();
        d.write(b"Subject: x\n\n").unwrap();
        d.write(b"body\n").unwrap();
        let c = d.commit().unwrap();
        assert_eq!((c.id, c.size, c.copies), (id, 17, 2));
        for local in ["a", "b"] {
            let new = dir.path().join("example.test").join(local).join("new");
            let files: Vec<_> = std::fs::read_dir(new).unwrap().flatten().collect();
            assert_eq!(files.len(), 1);
            assert_eq!(
                std::fs::read(files[0].path()).unwrap(),
                b"Subject: x\n\nbody\n"
            );
        }
    }

    /// Aborted after a write, nothing stays in tmp/ or new/; a bad name fails at write.
    #[test]
    fn abort_and_bad_names() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MaildirStore::new(dir.path(), "mx.test"));
        let mut d = Arc::clone(&store).begin(&Origin::default(), &[mailbox("a")]);
        d.write(b"x\n").unwrap();
        d.abort();
        let md = dir.path().join("example.test").join("a");
        for sub in ["tmp", "new"] {
            assert_eq!(std::fs::read_dir(md.join(sub)).unwrap().count(), 0, "{sub}");
        }
        // One bad name: nobody gets the message, not even the good recipient, however often
        // the caller tries.
        let mut bad =
            Arc::clone(&store).begin(&Origin::default(), &[mailbox("b"), mailbox("../escape")]);
        assert!(matches!(bad.write(b"x"), Err(DeliveryError::UnsafeName(_))));
        assert!(matches!(bad.write(b"x"), Err(DeliveryError::UnsafeName(_))));
        assert!(matches!(bad.commit(), Err(DeliveryError::UnsafeName(_))));
        let b_new = dir.path().join("example.test").join("b").join("new");
        assert!(!b_new.exists() || std::fs::read_dir(&b_new).unwrap().count() == 0);
        let remote = Recipient {
            remote: true,
            ..mailbox("c")
        };
        let mut r = store.begin(&Origin::default(), &[remote]);
        assert!(matches!(r.write(b"x"), Err(DeliveryError::Remote(_))));
    }
}
