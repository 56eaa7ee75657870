//! Debug-only test switches, read here and nowhere else. Release builds ignore them all.
//!
//! - `SMTPD_TEST_STALL=<point>`: delivery stops at that point for a minute (after saying so on
//!   stderr), so the crash tests can kill smtpd exactly there ([`stall_point`]).
//! - `SMTPD_TEST_BREAK=<defect>`: a deliberately broken build for the tests of the checks that
//!   must catch it ([`Break`]).
//! - `SMTPD_TEST_ACME_RETRY_SECS=<n>`: the first ACME retry after a failure waits n seconds
//!   ([`acme_retry_secs`]).
//!
//! Imports nothing of the crate: every layer may call it.

/// A defect a debug build can be told to have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// DATA keeps the dot-stuffing (the selftest's dot-transparency check must fail).
    DotUnstuff,
    /// Building a reloaded configuration panics (a reload must report it as an internal error).
    ReloadPanic,
}

impl Break {
    fn name(self) -> &'static str {
        match self {
            Break::DotUnstuff => "dot_unstuff",
            Break::ReloadPanic => "reload_panic",
        }
    }

    /// True when a debug build runs with `SMTPD_TEST_BREAK` naming this defect.
    pub fn is_on(self) -> bool {
        cfg!(debug_assertions) && std::env::var("SMTPD_TEST_BREAK").is_ok_and(|v| v == self.name())
    }
}

/// Debug builds only: `SMTPD_TEST_ACME_RETRY_SECS=N` makes the first retry after a failed ACME
/// attempt wait N seconds instead of a minute (doubling from there as usual).
pub fn acme_retry_secs() -> Option<u64> {
    if !cfg!(debug_assertions) {
        return None;
    }
    std::env::var("SMTPD_TEST_ACME_RETRY_SECS")
        .ok()?
        .parse()
        .ok()
}

/// Debug builds only: stops the calling thread for a minute at the point `SMTPD_TEST_STALL`
/// names, after printing `fault point NAME reached` on stderr.
#[cfg(debug_assertions)]
pub fn stall_point(name: &str) {
    if std::env::var("SMTPD_TEST_STALL").is_ok_and(|v| v == name) {
        eprintln!("fault point {name} reached");
        std::thread::sleep(std::time::Duration::from_secs(60));
    }
}

#[cfg(not(debug_assertions))]
pub fn stall_point(_name: &str) {}
