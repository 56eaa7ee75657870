//! The SMTP server engine (RFC 5321 + PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8).
pub mod address;
pub mod command;
pub mod data;
pub mod envelope;
pub mod policy;
pub mod refusal;
pub mod reply;
pub mod response;
pub mod session;

pub use envelope::{Envelope, Recipient};
pub use policy::{Accept, Mailboxes, Policy, RelayTo};
pub use refusal::{Reason, Refusal, Stage};
pub use reply::Reply;
pub use session::{Delivery, Event, SmtpSession};
