//! The IMAP view of an account's Maildir, as Dovecot lays it out (Maildir++): INBOX is the
//! Maildir itself, a folder `Name` is the subdirectory `.Name` (hierarchy separator `.`), each with
//! its `dovecot-uidlist`, flags in the `:2,` info of the names in `cur/`, subscriptions in the
//! `subscriptions` file. Blocking `std::fs` code, called off the async threads.
//!
//! - [`uidlist`]: `dovecot-uidlist` v3 and its dotlock.
//! - [`flags`]: the info letters.
//! - [`folder`]: one selected folder kept in step with its files.
//! - [`index`]: UIDs, sizes, dates and mod-sequences per message, kept across restarts.
//! - [`keywords`]: `dovecot-keywords`, the names of the keyword letters.
//! - [`account`]: the folder tree (names, LIST, CREATE/DELETE/RENAME, subscriptions, APPEND, COPY).
//! - [`store`]: one session's view (the account and its selected folder), over the three above.
pub mod account;
pub mod flags;
pub mod folder;
pub mod index;
pub mod keywords;
pub mod store;
pub mod uidlist;

use std::io;
use std::path::{Path, PathBuf};

pub use account::{Account, FolderInfo};
pub use flags::{Flag, Flags};
pub use folder::{Changes, Folder, Msg, Options};
pub use store::{MaildirAccount, Status};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error(transparent)]
    UidList(#[from] uidlist::UidListError),
    /// A folder name that cannot be a directory name; the text says why, for the client.
    #[error("{0}")]
    BadName(&'static str),
    #[error("no such folder")]
    NoSuchFolder,
    #[error("the folder already exists")]
    Exists,
    /// INBOX and the folders that have children cannot be deleted, nor renamed onto.
    #[error("{0}")]
    Refused(&'static str),
    /// The message was removed by another session or program.
    #[error("the message is gone")]
    Gone,
}

impl StoreError {
    /// Out of disk space or quota: `[OVERQUOTA]` rather than a server failure.
    pub fn is_disk_full(&self) -> bool {
        matches!(self, StoreError::Io { source, .. } if matches!(source.raw_os_error(), Some(28) | Some(122)))
    }
}

pub(crate) fn io_at<'a>(
    what: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}
