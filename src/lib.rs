//! smtpd library
pub mod config;
pub mod daemon;
pub mod log;
pub mod mailbox;
pub mod net;
pub mod proto;
