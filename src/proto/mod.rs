//! Sans-IO protocol engines: pure state machines fed bytes, returning replies and actions.
//! Nothing under `proto` may use tokio, `std::fs`, `std::net` or the clock.
pub mod foreign;
pub mod imap;
pub mod line;
pub mod pop3;
pub mod sasl;
pub mod smtp;
