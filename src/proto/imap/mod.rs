//! The IMAP server engine (RFC 3501 IMAP4rev1, with IDLE, UIDPLUS, MOVE, LITERAL+, ENABLE,
//! NAMESPACE, ID, SPECIAL-USE, UNSELECT, SASL-IR, CHILDREN, APPENDLIMIT, ESEARCH, LIST-EXTENDED,
//! LIST-STATUS, BINARY, STATUS=SIZE, CONDSTORE and QRESYNC ([`condstore`]), and `ENABLE
//! IMAP4rev2` as far as `auth` says). Command
//! parsing is `imap-codec`'s, with a small pre-parser ([`extended`]) for what it does not
//! parse; responses are written by [`encode`]. Folders and messages are reached through
//! [`store::Store`]: the engine itself does no I/O.
mod auth;
mod binary;
mod condstore;
pub mod encode;
mod extended;
/// The in-memory store of the engine's tests, also for the fuzz target (feature `fuzzing`).
#[cfg(any(test, feature = "fuzzing"))]
pub mod fake;
mod fetch;
mod folders;
mod list;
pub mod mime;
pub mod mutf7;
mod search;
mod searchres;
mod selected;
pub mod seqset;
pub mod session;
pub mod store;
mod verbs;

pub use session::{Event, ImapPolicy, ImapSession, LoginOutcome};
