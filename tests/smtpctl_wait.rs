//! `smtpctl wait` (issue 17) from outside: the HTTP API's wait over the control socket, woken
//! by an SMTP delivery; exit 0 found (the message printed, or its JSON), 1 at the timeout, 2 on
//! an error (a bad condition, smtpd not running). No HTTP listener is needed.
mod common;
use common::*;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn message(to: &str, subject: &str) -> Vec<u8> {
    format!("From: Alice <alice@b.test>\r\nTo: {to}\r\nSubject: {subject}\r\n\r\nYour code is 314159.\r\n").into_bytes()
}

/// Until `n` waits are in progress, as `smtpctl metrics` says.
fn until_waits(srv: &Server, n: u32) {
    let want = format!("smtpd_http_waits {n}");
    until(&format!("{n} waits in progress"), || {
        stdout(&srv.ctl(&["metrics"])).lines().any(|l| l == want)
    });
}

/// A wait started before the delivery returns it (exit 0, printed for people, then as JSON
/// with `--since`); one with no match exits 1 at its timeout, saying what it waited for.
#[test]
fn wait_is_woken_by_a_delivery_and_times_out() {
    let srv = Server::start();
    let waiting = Command::new(smtpctl_bin())
        .arg("--socket")
        .arg(srv.socket())
        .args([
            "wait",
            "--to",
            "dave@example.test",
            "--subject",
            "WAKE",
            "--timeout",
            "20s",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run smtpctl");
    until_waits(&srv, 1);
    let sent = Instant::now();
    srv.deliver(
        "dave@example.test",
        &message("dave@example.test", "please wake up"),
    );
    let out = waiting.wait_with_output().unwrap();
    assert!(
        sent.elapsed() < Duration::from_secs(20),
        "before its timeout"
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("dave@example.test~"), "{text}");
    for line in [
        "  mailbox:   dave@example.test",
        "  from:      alice@b.test",
        "  subject:   please wake up",
        "  snippet:   Your code is 314159.",
    ] {
        assert!(text.lines().any(|l| l == line), "{line:?} not in\n{text}");
    }
    until_waits(&srv, 0);

    // Already delivered: found at once with --since before it (JSON as the API's), not without.
    let out = srv.ctl(&[
        "--json",
        "wait",
        "--mailbox",
        "dave@example.test",
        "--since",
        "0",
        "--timeout",
        "5",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let m: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(
        (
            m["subject"].as_str(),
            m["mailbox"].as_str(),
            m["attachments"].as_u64()
        ),
        (Some("please wake up"), Some("dave@example.test"), Some(0))
    );
    let started = Instant::now();
    let out = srv.ctl(&["wait", "--to", "dave@example.test", "--timeout", "1s"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(started.elapsed() >= Duration::from_millis(900));
    assert!(
        stderr(&out).contains("no message matching to=dave@example.test within 1 s"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
}

/// Errors are exit 2 with a message for people: a condition the API refuses, and no daemon.
#[test]
fn wait_errors_exit_2() {
    let srv = Server::start();
    for (args, needle) in [
        (vec!["wait", "--timeout", "soon"], "`timeout`"),
        (vec!["wait", "--mailbox", "not an address"], "`mailbox`"),
        (vec!["wait", "--since", "yesterday"], "`since`"),
    ] {
        let out = srv.ctl(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(needle), "{args:?}: {}", stderr(&out));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(smtpctl_bin())
        .arg("--socket")
        .arg(dir.path().join("nothing.sock"))
        .args(["wait", "--to", "x@example.test"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("smtpd is not running"),
        "{}",
        stderr(&out)
    );
}
