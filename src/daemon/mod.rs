//! The composition root: builds everything from a config and owns the main loop.
//! Nothing imports `daemon` except `bin/smtpd.rs`.
pub mod daemonize;
pub mod diff;
#[cfg(feature = "metrics-http")]
pub mod metrics_http;
pub mod notify;
pub mod privileges;
pub mod run;
pub mod selftest;
pub mod state;

pub use run::run;
