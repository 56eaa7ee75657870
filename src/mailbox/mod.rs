//! Mail storage. Blocking `std::fs` code, called from the network drivers through
//! `spawn_blocking`; it must not import `proto` or tokio.
pub mod group_commit;
pub mod headers;
pub mod maildir;
pub mod maildrop;
pub mod summary;

pub use maildir::{DeliveryError, MaildirStore, Reservation, Spool};
