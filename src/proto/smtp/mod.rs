//! The SMTP server engine (RFC 5321 + PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8).
pub mod address;
pub mod command;
pub mod data;
pub mod reply;
pub mod session;

pub use reply::Reply;
pub use session::{Envelope, Event, Policy, Recipient, SmtpSession};
