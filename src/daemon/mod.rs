//! The composition root: builds everything from a config and owns the main loop.
//! Nothing imports `daemon` except `bin/smtpd.rs`.
//!
//! - [`run`]: start-up (bind, drop privileges, logging, runtime), the main loop, shutdown.
//! - [`generation`]: everything built from one config (engine policies, stores, accounts, TLS).
//! - [`shared`]: the state every task sees (current generation, counters, listeners, probe).
//! - [`listeners`]: binding and accept loops; [`reload`]: the one reload path; [`diff`]: what a
//!   new config changes, in words.
//! - [`acme`]: the certificate's ACME loop (obtain, renew, retry, swap).
//! - [`dispatch`]: the control socket's requests; [`metrics`], [`send_test`], [`selftest`]: the
//!   requests that are more than a line.
pub mod acme;
pub mod daemonize;
pub mod diff;
pub mod dispatch;
pub mod generation;
pub mod listeners;
pub mod metrics;
pub mod notify;
pub mod privileges;
pub mod queue;
pub mod reload;
pub mod run;
pub mod selftest;
pub mod send_test;
pub mod shared;

pub use run::run;
