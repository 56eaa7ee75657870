//! Our SMTP client: used by `smtpctl send-test` (through the daemon) and, with its own issue, by
//! `smtp-send`. One client, not two.
pub mod bench;
pub mod compose;
pub mod smtp;
