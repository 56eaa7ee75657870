//! smtpd library
pub mod config;
pub mod mailbox;
pub mod proto;
