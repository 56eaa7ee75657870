//! A delivery [`Target`] for tests (maddy's `testutils.Target`): keeps committed messages in
//! memory and fails where it is told to, with the error a real disk would give.

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::delivery::{Committed, Delivery, DeliveryError, FsError, Origin, Recipient, Target};

/// Where the fake fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fail {
    Never,
    /// Every write fails with this errno (e.g. `ENOSPC`).
    Write(i32),
    /// Commit fails with this errno.
    Commit(i32),
}

#[derive(Debug)]
pub struct FakeTarget {
    fail: Fail,
    /// (recipients, text) of each committed message.
    pub committed: Mutex<Vec<(Vec<Recipient>, Vec<u8>)>>,
    pub aborted: AtomicUsize,
    next_id: AtomicUsize,
}

impl FakeTarget {
    pub fn new(fail: Fail) -> Arc<Self> {
        Arc::new(FakeTarget {
            fail,
            committed: Mutex::new(Vec::new()),
            aborted: AtomicUsize::new(0),
            next_id: AtomicUsize::new(1),
        })
    }

    pub fn messages(&self) -> Vec<(Vec<Recipient>, Vec<u8>)> {
        self.committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn os_error(op: &'static str, errno: i32) -> DeliveryError {
    DeliveryError::Io(FsError {
        op,
        path: PathBuf::from("fake"),
        source: io::Error::from_raw_os_error(errno),
    })
}

impl Target for FakeTarget {
    fn begin(self: Arc<Self>, _origin: &Origin, recipients: &[Recipient]) -> Box<dyn Delivery> {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        Box::new(FakeDelivery {
            id: format!("FAKE{n}"),
            recipients: recipients.to_vec(),
            text: Vec::new(),
            target: self,
        })
    }
}

struct FakeDelivery {
    target: Arc<FakeTarget>,
    id: String,
    recipients: Vec<Recipient>,
    text: Vec<u8>,
}

impl Delivery for FakeDelivery {
    fn id(&self) -> &str {
        &self.id
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), DeliveryError> {
        if let Fail::Write(errno) = self.target.fail {
            return Err(os_error("write", errno));
        }
        self.text.extend_from_slice(bytes);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<Committed, DeliveryError> {
        if let Fail::Commit(errno) = self.target.fail {
            return Err(os_error("fsync", errno));
        }
        let c = Committed {
            id: self.id.clone(),
            size: self.text.len() as u64,
            copies: self.recipients.len(),
            files: None,
        };
        self.target
            .committed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((self.recipients, self.text));
        Ok(c)
    }

    fn abort(self: Box<Self>) {
        self.target.aborted.fetch_add(1, Ordering::Relaxed);
    }
}
