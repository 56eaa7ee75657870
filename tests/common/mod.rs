//! Shared harness for the black-box tests: starts the real `smtpd` on port 0 in its own temporary
//! directory, waits for readiness by reading its log lines (never by sleeping), and kills it on
//! drop. Also a tiny line-oriented SMTP client for transcript-style tests.
//!
//! One file per job: `config` (overrides and the config text), `server` (the running smtpd, the
//! binaries' paths, `/proc` figures), `logwatch` (its log lines), `smtp` and `pop3` (line-oriented
//! clients), `netns` (network namespaces), `clients` (external tools), `sink` (Postfix's
//! smtp-sink as a peer), `dnsmasq` (a test name server) and `files` (the mail store).
//! Every test binary includes this module and uses part of it, hence `allow(dead_code)` (and
//! `allow(unused_imports)` on the re-exports).
#![allow(dead_code)]

mod clients;
mod config;
mod dnsmasq;
mod files;
mod logwatch;
mod netns;
mod pop3;
mod server;
mod sink;
mod smtp;

#[allow(unused_imports)]
pub use clients::{client_script, fetchmail, have};
#[allow(unused_imports)]
pub use config::{Overrides, PASSWORD, config_text};
#[allow(unused_imports)]
pub use dnsmasq::{Dnsmasq, dnsmasq_bin, free_udp_port};
#[allow(unused_imports)]
pub use files::{list, stored_body, walk};
#[allow(unused_imports)]
pub use logwatch::LogWatch;
#[allow(unused_imports)]
pub use netns::NetNs;
#[allow(unused_imports)]
pub use pop3::Pop3;
#[allow(unused_imports)]
pub use server::{
    Server, proc_status_kib, smtpctl_bin, smtpd_bin, start_until_ready, stderr, stdout,
};
#[allow(unused_imports)]
pub use sink::Sink;
#[allow(unused_imports)]
pub use smtp::{Client, Reply};

use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);

/// Waits until `f` is true (polling every 20 ms; at most WAIT), else fails naming `what`.
pub fn until(what: &str, f: impl FnMut() -> bool) {
    until_within(WAIT, what, f)
}

/// [`until`] with another deadline.
pub fn until_within(wait: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + wait;
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// smtpd with an IMAP listener and the account `user` (password [`PASSWORD`]) holding three
/// messages, Subjects one, two and three (the imaplib scripts' starting point).
pub fn imap_server_with_three(user: &str) -> Server {
    let srv = Server::start_with(
        Overrides::new()
            .account(user, PASSWORD)
            .set("imap", "listen", "[\"127.0.0.1:0\"]")
            .set("imap", "auth_failure_delay_ms", "100"),
    );
    for s in ["one", "two", "three"] {
        srv.deliver(user, format!("Subject: {s}\r\n\r\n{s} body\r\n").as_bytes());
    }
    srv
}
