//! The POP3 server engine (RFC 1939, RFC 2449 CAPA, RFC 5034 SASL, RFC 3206 response codes).
pub mod command;
pub mod retr;
pub mod session;

pub use session::{Entry, Event, LoginOutcome, Pop3Policy, Pop3Session};
