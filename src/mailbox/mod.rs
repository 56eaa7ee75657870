//! Mail storage. Blocking `std::fs` code, called from the network drivers through
//! `spawn_blocking`; it knows no sockets or protocols (no tokio, no `proto`).
//!
//! - [`delivery`]: the interface every delivery goes through (begin / write / commit / abort).
//! - [`maildir`]: the Maildir store (fsync + rename), [`maildir_delivery`] its delivery, and
//!   [`group_commit`] the shared directory fsyncs.
//! - [`maildrop`]: the POP3 view of a Maildir (listing, lock, UPDATE).
//! - [`imap`]: the IMAP view (Maildir++ folders, `dovecot-uidlist`, flags in names).
//! - [`headers`], [`summary`]: header helpers and `smtpctl mailboxes`.
//! - [`browse`]: the whole tree for the HTTP API (list, find, header section, remove).
pub mod browse;
pub mod delivery;
#[cfg(test)]
pub mod fake;
pub mod group_commit;
pub mod headers;
pub mod imap;
pub mod maildir;
pub mod maildir_delivery;
pub mod maildrop;
pub mod summary;

pub use delivery::{Committed, Delivery, DeliveryError, Origin, Recipient, Target};
pub use maildir::{MaildirStore, Reservation, Spool};
