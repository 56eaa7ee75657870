//! smtpd library
pub mod proto;
