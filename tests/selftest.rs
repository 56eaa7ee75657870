//! `smtpctl selftest` against the real daemon: every check passes on a correct server (with TLS,
//! POP3 and `accept = "accounts"`), nothing is left in any mailbox, and a deliberately broken
//! server (debug-only SMTPD_TEST_BREAK=dot_unstuff: DATA keeps stuffing dots) fails it.
mod common;
use common::*;

const ALICE: &str = "alice@example.test";

fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn passes_on_the_real_daemon_and_leaves_nothing_behind() {
    let srv = Server::start_with(Overrides::new().tls(&[ALICE]).set(
        "mailboxes",
        "accept",
        "\"accounts\"",
    ));
    srv.deliver(ALICE, b"Subject: before\r\n\r\nkept\r\n");
    let before = files_under(&srv.root());
    let out = srv.ctl(&["selftest"]);
    let text = stdout(&out);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("selftest of smtp 127.0.0.1:"),
        "{text}"
    );
    let checks: Vec<&str> = lines[1..lines.len() - 1].to_vec();
    assert!(checks.len() >= 15, "{text}");
    for c in &checks {
        assert!(c.starts_with("PASS  "), "{c}");
    }
    for name in [
        "EHLO keywords",
        "pipelining order",
        "SIZE declared",
        "SIZE actual",
        "oversize command line",
        "oversize text line",
        "dot transparency",
        "SMTP smuggling",
        "STARTTLS injection",
        "relay refusal",
        "postmaster",
        "POP3 LIST size = RETR octets",
        "POP3 UIDL stable",
        "POP3 DELE without QUIT",
    ] {
        assert!(
            checks.iter().any(|c| c.contains(&format!("  {name}  "))),
            "{name} missing:\n{text}"
        );
    }
    assert!(lines.last().unwrap().starts_with("passed: "), "{text}");
    // The probe mailbox is gone; every other file is as it was.
    assert_eq!(files_under(&srv.root()), before);
    assert!(!srv.root().join("example.test/smtpd-selftest").exists());
    // The probe account ended with the run.
    let mut p = srv.pop3();
    assert!(
        p.login("smtpd-selftest@example.test", "x")
            .starts_with("-ERR")
    );
    // --json: the same checks, machine-readable.
    let v = srv.ctl_json(&["selftest"]);
    assert_eq!(v["passed"], true);
    assert_eq!(v["checks"].as_array().unwrap().len(), checks.len());
    assert!(v["checks"][0]["rfc"].as_str().unwrap().starts_with("RFC "));
}

/// A mailbox already at the probe's address (someone's mail) is never used nor removed.
#[test]
fn refuses_when_the_probe_mailbox_holds_mail() {
    let srv = Server::start_with(Overrides::new().pop3(&[ALICE]));
    srv.deliver(
        "smtpd-selftest@example.test",
        b"Subject: mine\r\n\r\nkeep me\r\n",
    );
    let before = files_under(&srv.root());
    let out = srv.ctl(&["selftest"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(files_under(&srv.root()), before);
}

#[test]
fn fails_on_a_broken_server() {
    let srv = Server::start_env(
        Overrides::new().pop3(&[ALICE]),
        &[("SMTPD_TEST_BREAK", "dot_unstuff")],
    );
    let out = srv.ctl(&["selftest"]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    let dots = text
        .lines()
        .find(|l| l.contains("  dot transparency  "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(dots.starts_with("FAIL  "), "{dots}");
    assert!(
        text.lines().last().unwrap().starts_with("FAILED: "),
        "{text}"
    );
    // Without [tls], the STARTTLS check is skipped, not failed.
    assert!(
        text.lines()
            .any(|l| l.starts_with("skip  STARTTLS injection")),
        "{text}"
    );
}
