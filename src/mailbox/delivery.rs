//! Delivery behind one interface: begin / write / commit / abort (maddy's `Delivery`,
//! OpenSMTPD's `smtp_tx`). The SMTP driver knows only [`Target`] and [`Delivery`]; the Maildir
//! store implements them today ([`super::maildir_delivery`]), the outbound queue next, and a fake
//! that injects failures stands beside them for tests ([`super::fake`]).
//!
//! Every method but [`Target::begin`] may block on the disk: call them off the async threads.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use crate::dsn::{Notify, Ret};

/// Where accepted mail goes.
pub trait Target: Send + Sync + 'static {
    /// Starts a message for these recipients' mailboxes. Chooses its id (for logs and the
    /// `Received:` header) and where it will go; makes no file yet, and fails only later (a
    /// recipient that cannot be delivered makes [`Delivery::write`] or
    /// [`Delivery::commit`] fail).
    fn begin(self: Arc<Self>, origin: &Origin, recipients: &[Recipient]) -> Box<dyn Delivery>;
}

/// The message as a whole: its envelope sender and what it asked of delivery reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Origin {
    /// Reverse-path; empty for `<>`.
    pub sender: String,
    /// RFC 3461 `RET=` and `ENVID=` (xtext, as given).
    pub ret: Option<Ret>,
    pub envid: Option<String>,
    /// The client asked for SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
}

impl Origin {
    /// A sender with no DSN or SMTPUTF8 parameters.
    pub fn sender(address: &str) -> Origin {
        Origin {
            sender: address.to_string(),
            ..Origin::default()
        }
    }
}

/// One message on its way. Dropped without [`Delivery::commit`], it leaves nothing behind.
pub trait Delivery: Send {
    /// The message's short id.
    fn id(&self) -> &str;
    /// Appends message text (LF line ends, dots unstuffed).
    fn write(&mut self, bytes: &[u8]) -> Result<(), DeliveryError>;
    /// Makes the message durable for every recipient; only after `Ok` may the client hear 250.
    /// On `Err` nothing was delivered to anyone.
    fn commit(self: Box<Self>) -> Result<Committed, DeliveryError>;
    /// Gives the message up (too big, refused, the client left): nothing of it stays.
    fn abort(self: Box<Self>);
}

/// One recipient of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// As the client gave it (`local@domain`).
    pub address: String,
    /// Mailbox directory names: ASCII-lower-cased domain and local part.
    pub domain: String,
    pub local: String,
    /// Outside the local domains: it goes through the outbound queue.
    pub remote: bool,
    /// RFC 3461 `NOTIFY=` and `ORCPT=` (as given).
    pub notify: Option<Notify>,
    pub orcpt: Option<String>,
    /// The alias it is a target of (lower-cased), for the forwarding loop check.
    pub alias: Option<String>,
}

impl Recipient {
    /// A recipient without DSN parameters.
    pub fn new(address: &str, domain: &str, local: &str, remote: bool) -> Recipient {
        Recipient {
            address: address.to_string(),
            domain: domain.to_string(),
            local: local.to_string(),
            remote,
            notify: None,
            orcpt: None,
            alias: None,
        }
    }

    /// Delivered by the outbound runner: remote, or asking for a success report (the runner's
    /// work too).
    pub fn through_queue(&self) -> bool {
        self.remote || self.notify.is_some_and(|n| n.success)
    }
}

/// A committed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    pub id: String,
    /// Octets stored (LF line ends).
    pub size: u64,
    /// Copies made (one per distinct mailbox).
    pub copies: usize,
    /// Where the copies are (`<root>/<domain>/<local>/new/<name>`), when the store made them
    /// (Maildir); `None` when it does not say (the queue, whose local copies come later).
    pub files: Option<Vec<PathBuf>>,
}

/// A filesystem step that failed: which, on what, and why.
#[derive(Debug, Error)]
#[error("{op} {path}: {source}")]
pub struct FsError {
    pub op: &'static str,
    pub path: PathBuf,
    #[source]
    pub source: io::Error,
}

/// `.map_err(io_err("create", &path))?`: an I/O error as an [`FsError`].
pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> FsError + 'a {
    move |source| FsError {
        op,
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Io(#[from] FsError),
    #[error("unsafe mailbox name {0:?}")]
    UnsafeName(String),
    #[error("no recipient to deliver to")]
    NoRecipients,
    #[error("<{0}> is not in a local domain and there is no outbound queue")]
    Remote(String),
    /// The blocking task that did the work failed.
    #[error("delivery task failed: {0}")]
    Task(String),
}

impl DeliveryError {
    /// No space or quota left: the client should get 452 4.3.1 rather than 451 4.3.0.
    pub fn is_disk_full(&self) -> bool {
        match self {
            DeliveryError::Io(e) => {
                let code = e.source.raw_os_error();
                code == Some(nix::libc::ENOSPC) || code == Some(nix::libc::EDQUOT)
            }
            _ => false,
        }
    }

    /// The source is `kind` (e.g. a maildir removed behind the store's back: NotFound).
    pub fn is_io_kind(&self, kind: io::ErrorKind) -> bool {
        matches!(self, DeliveryError::Io(e) if e.source.kind() == kind)
    }
}
