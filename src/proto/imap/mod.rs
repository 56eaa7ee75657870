//! The IMAP server engine (RFC 3501 IMAP4rev1, with IDLE, UIDPLUS, MOVE, LITERAL+, ENABLE,
//! NAMESPACE, ID, SPECIAL-USE, UNSELECT, SASL-IR, CHILDREN, APPENDLIMIT). Command parsing is
//! `imap-codec`'s; responses are written by [`encode`]. Folders and messages are reached through
//! [`crate::mailbox::imap::Store`]: the engine itself does no I/O.
mod auth;
pub mod encode;
mod fetch;
mod folders;
pub mod mime;
mod search;
mod selected;
pub mod seqset;
pub mod session;
mod verbs;

pub use session::{Event, ImapPolicy, ImapSession, LoginOutcome};
