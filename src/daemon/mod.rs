//! The composition root: builds everything from a config and owns the main loop.
//! Nothing imports `daemon` except `bin/smtpd.rs`.
pub mod run;

pub use run::run_foreground;
