//! `smtpctl selftest`: the daemon dials its own listeners over loopback and checks the RFC MUSTs a
//! mail client or relay relies on. Everything goes to a probe mailbox (`smtpd-selftest@<first
//! domain>`, removed afterwards) and POP3 logs in with a one-off secret (the daemon's
//! [`ProbeSlot`]); nothing reaches a real user's mailbox. The SMTP checks are in [`smtp`], the
//! POP3 ones in [`pop3`].

mod peer;
mod pop3;
mod smtp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use peer::Peer;

use super::shared::Shared;
use crate::auth::accounts::ProbeSlot;
use crate::control::proto::{Check, Outcome, Report, ResponseLine};
use crate::net::Protocol;

/// The probe mailbox's local part.
pub const PROBE_LOCAL: &str = "smtpd-selftest";
/// The SIZE check sends a message one octet over the limit only when the limit is at most this.
const ACTUAL_SIZE_CAP: u64 = 64 << 20;

/// What the run needs from the running configuration.
pub struct Target {
    pub smtp: SocketAddr,
    pub pop3: Option<SocketAddr>,
    pub starttls: bool,
    pub hostname: String,
    pub domain: String,
    pub root: PathBuf,
    pub max_message_bytes: u64,
    pub max_command_line: usize,
    pub max_line_length: usize,
    /// `--quick`: skip the checks that push a lot of data ("SIZE actual").
    pub quick: bool,
    /// The selftest's own address (that of the listener it dials) is in `[relay] networks`: it
    /// may relay, so the relay refusal cannot be seen from here.
    pub relay_peer: bool,
}

/// `smtpctl selftest [--quick]`: checks that the run can go ahead (an SMTP listener, a domain, a
/// probe mailbox nobody uses), then runs it.
pub async fn start(shared: Arc<Shared>, quick: bool) -> ResponseLine {
    let g = shared.current();
    let cfg = &g.config;
    let Some(smtp) = shared.listener_address(Protocol::Smtp) else {
        return ResponseLine::err("smtpd has no SMTP listener to test");
    };
    let Some(domain) = cfg.mailboxes.domains.first() else {
        return ResponseLine::err("no [mailboxes] domains: nothing can be delivered");
    };
    // The probe mailbox is removed after the run: never use one that holds someone's mail.
    let probe = cfg.mailboxes.root.join(domain).join(PROBE_LOCAL);
    let probe_address = format!("{}@{domain}", PROBE_LOCAL);
    if cfg.accounts.iter().any(|a| a.address == probe_address)
        || tokio::task::spawn_blocking(move || probe.exists())
            .await
            .unwrap_or(true)
    {
        return ResponseLine::err(format!(
            "the selftest's probe mailbox {probe_address} already exists (an account, or mail \
             in {}/{domain}/{}); selftest delivers there and removes it afterwards, so move \
             that mail away first",
            cfg.mailboxes.root.display(),
            PROBE_LOCAL
        ));
    }
    let target = Target {
        smtp,
        pop3: shared.listener_address(Protocol::Pop3),
        starttls: cfg.tls.is_some(),
        hostname: cfg.hostname.clone(),
        domain: domain.clone(),
        root: cfg.mailboxes.root.clone(),
        max_message_bytes: cfg.limits.max_message_bytes,
        max_command_line: cfg.limits.max_command_line,
        max_line_length: cfg.limits.max_line_length,
        quick,
        relay_peer: cfg.relay.networks.iter().any(|n| n.contains(&smtp.ip())),
    };
    ResponseLine::ok(run(target, &shared.probe).await)
}

struct Run<'a> {
    t: &'a Target,
    probe: String,
    token: String,
    checks: Vec<Check>,
}

impl Run<'_> {
    fn record(&mut self, name: &str, rfc: &str, outcome: Outcome, seen: impl Into<String>) {
        self.checks.push(Check {
            name: name.into(),
            rfc: rfc.into(),
            outcome,
            seen: seen.into(),
        });
    }

    fn check(&mut self, name: &str, rfc: &str, pass: bool, seen: impl Into<String>) {
        let o = if pass { Outcome::Pass } else { Outcome::Fail };
        self.record(name, rfc, o, seen);
    }

    fn broken(&mut self, name: &str, rfc: &str, e: String) {
        self.record(name, rfc, Outcome::Fail, e);
    }

    async fn session(&mut self) -> Result<Peer, String> {
        let mut p = Peer::connect(self.t.smtp).await?;
        let (code, _) = p.reply().await?;
        if code != 220 {
            return Err(format!("greeting {code}"));
        }
        let (code, _) = p.cmd("EHLO selftest.invalid").await?;
        if code != 250 {
            return Err(format!("EHLO {code}"));
        }
        Ok(p)
    }

    /// The stored copies (in the probe's new/) whose text contains `needle`.
    async fn stored(&self, needle: &str) -> Vec<String> {
        let dir = self
            .t
            .root
            .join(&self.t.domain)
            .join(PROBE_LOCAL)
            .join("new");
        let needle = needle.to_string();
        tokio::task::spawn_blocking(move || {
            let mut found = Vec::new();
            for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                if let Ok(text) = std::fs::read(e.path()) {
                    let text = String::from_utf8_lossy(&text).into_owned();
                    if text.contains(&needle) {
                        found.push(text);
                    }
                }
            }
            found
        })
        .await
        .unwrap_or_default()
    }
}

/// Runs every check against `t`; one run at a time per process.
async fn run(t: Target, slot: &ProbeSlot) -> Report {
    static ONE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one = ONE.lock().await;
    let probe = format!("{PROBE_LOCAL}@{}", t.domain);
    let Ok(secret) = random_hex(24) else {
        return failed(&t, "the kernel gave no random bytes for the probe's secret");
    };
    let started = Instant::now();
    let guard = slot.install(&probe, &secret, started + Duration::from_secs(300));
    let mut r = Run {
        t: &t,
        probe,
        token: format!("st{}", random_hex(6).unwrap_or_default()),
        checks: Vec::new(),
    };
    r.greeting_and_ehlo().await;
    r.pipelining_relay_dots().await;
    r.postmaster().await;
    r.size().await;
    r.long_lines().await;
    r.smuggling().await;
    r.starttls_injection().await;
    r.pop3(&secret).await;
    drop(guard);
    let checks = std::mem::take(&mut r.checks);
    let dir = t.root.join(&t.domain).join(PROBE_LOCAL);
    let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(dir)).await;
    Report {
        smtp: t.smtp.to_string(),
        pop3: t.pop3.map(|a| a.to_string()),
        passed: checks.iter().all(|c| c.outcome != Outcome::Fail),
        checks,
    }
}

/// Random hex from the kernel (getrandom); never from the clock, which would make the probe's
/// password guessable.
fn random_hex(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

/// A report with one failed check, for a run that could not start.
fn failed(t: &Target, why: &str) -> Report {
    Report {
        smtp: t.smtp.to_string(),
        pop3: t.pop3.map(|a| a.to_string()),
        checks: vec![Check {
            name: "set-up".into(),
            rfc: "-".into(),
            outcome: Outcome::Fail,
            seen: why.into(),
        }],
        passed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_random_hex() {
        let (a, b) = (random_hex(24).unwrap(), random_hex(24).unwrap());
        assert_eq!(a.len(), 48);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
