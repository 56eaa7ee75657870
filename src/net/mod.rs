//! The thin tokio layer: listeners, connection limits, and the SMTP connection driver that feeds
//! socket bytes to the sans-IO engine and carries out its events.
pub mod imap_conn;
pub mod imap_literal;
pub mod imap_store;
pub mod imap_watch;
pub mod limiter;
pub mod listener;
pub mod login;
pub mod pop3_conn;
pub mod protocol;
pub mod proxy;
pub mod session;
pub mod smtp_conn;
pub mod smtp_message;
pub mod stats;
pub mod tls;
pub mod transcript;
pub mod watch;

pub use protocol::Protocol;
