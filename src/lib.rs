//! smtpd library
pub mod config;
pub mod proto;
