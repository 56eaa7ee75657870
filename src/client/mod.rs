//! Our SMTP client, the one every sender uses: `smtp-send`, `smtpctl send-test` and
//! `smtpctl selftest` (through the daemon), and next the outbound queue. [`conn`] is the
//! transport (timeouts, TLS, lines, replies parsed by `proto::smtp::response`), [`smtp`] the
//! SMTP dialogue on it.
pub mod bench;
pub mod compose;
pub mod conn;
pub mod smtp;
