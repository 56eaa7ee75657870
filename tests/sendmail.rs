//! The `sendmail` entry point as Debian programs call it (issue 15): cron's `sendmail -i -FCronDaemon
//! -B8BITMIME -oem root`-like calls, `-t` with Bcc, `-f`, and the sysexits.h codes.
mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn sendmail(srv: &Server, args: &[&str], input: &[u8]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sendmail"))
        .arg("-C")
        .arg(&srv.config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// What cron does: recipients as arguments, the message on stdin with no From:/Date:, options it
/// passes that mean nothing here. Delivered, with the headers a sendmail adds.
#[test]
fn as_cron_calls_it() {
    let srv = Server::start();
    let out = sendmail(
        &srv,
        &["-FCron Daemon", "-i", "-B8BITMIME", "-oem", "-odi", "root"],
        b"Subject: Cron <root@host> run-parts /etc/cron.daily\nContent-Type: text/plain\n\nall done\n.\nstill the body\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A bare name is in the first local domain (as Postfix's append_at_myorigin).
    let files = srv.new_mail("example.test", "root");
    assert_eq!(files.len(), 1);
    let text = std::fs::read_to_string(&files[0]).unwrap();
    assert!(text.contains("\nFrom: \"Cron Daemon\" <"), "{text}");
    assert!(
        text.contains("\nDate: ") && text.contains("\nMessage-ID: <"),
        "{text}"
    );
    assert!(
        text.ends_with("all done\n.\nstill the body\n"),
        "-i keeps a lone dot: {text}"
    );
}

/// `-t`: To:, Cc: and Bcc: are the recipients, Bcc: is removed from what is delivered; `-f` is
/// the envelope sender; without -i a lone "." ends the message.
#[test]
fn dash_t_with_bcc_and_dash_f() {
    let srv = Server::start();
    let out = sendmail(
        &srv,
        &["-t", "-f", "alerts@example.test"],
        b"From: Alerts <alerts@example.test>\nTo: alice@example.test\nCc: <bob@example.test>\nBcc: carol@example.test\nSubject: disk\n\n90% full\n.\nnot sent\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    for who in ["alice", "bob", "carol"] {
        let files = srv.new_mail("example.test", who);
        assert_eq!(files.len(), 1, "{who}");
        let text = std::fs::read_to_string(&files[0]).unwrap();
        assert!(
            text.starts_with("Return-Path: <alerts@example.test>\n"),
            "{text}"
        );
        assert!(!text.contains("Bcc:") && !text.contains("carol@"), "{text}");
        assert!(text.ends_with("90% full\n"), "{text}");
    }
}

/// Exit codes: no recipient is a usage error (64); a refused recipient is 67; smtpd not running
/// is "try again later" (75), which cron and mailx understand.
#[test]
fn sysexits_codes() {
    let mut srv = Server::start_with(Overrides::new().pop3(&["alice@example.test"]).set(
        "mailboxes",
        "accept",
        "\"accounts\"",
    ));
    let none = sendmail(&srv, &[], b"Subject: x\n\nx\n");
    assert_eq!(none.status.code(), Some(64), "{}", stderr(&none));
    let refused = sendmail(&srv, &["nobody@example.test"], b"Subject: x\n\nx\n");
    assert_eq!(refused.status.code(), Some(67), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("550 5.1.1"),
        "{}",
        stderr(&refused)
    );
    srv.signal(15);
    assert!(srv.wait_exit().success());
    let down = sendmail(&srv, &["alice@example.test"], b"Subject: x\n\nx\n");
    assert_eq!(down.status.code(), Some(75), "{}", stderr(&down));
    assert!(
        stderr(&down).contains("cannot submit to smtpd"),
        "{}",
        stderr(&down)
    );
}

/// Bcc: never reaches a copy even without -t (as Postfix's cleanup), and `-r` is `-f`.
#[test]
fn bcc_removed_without_dash_t_and_dash_r() {
    let srv = Server::start();
    let out = sendmail(
        &srv,
        &["-r", "mailx@example.test", "alice@example.test"],
        b"To: alice@example.test\nBcc: hidden@example.test\nSubject: s\n\nbody\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap();
    assert!(
        text.starts_with("Return-Path: <mailx@example.test>\n"),
        "{text}"
    );
    assert!(
        !text.contains("Bcc:") && !text.contains("hidden@"),
        "{text}"
    );
    assert!(
        srv.new_mail("example.test", "hidden").is_empty(),
        "not a recipient without -t"
    );
}

/// `-N`, `-R` and `-V` (RFC 3461, as mutt and Postfix's sendmail take them): a success report
/// asked with -N comes back to the local sender quoting the -V envelope id; a bad -N value is
/// a usage error (64) and nothing is sent.
#[test]
fn dsn_options() {
    let srv = Server::start();
    let out = sendmail(
        &srv,
        &[
            "-f",
            "alice@example.test",
            "-N",
            "success,failure",
            "-R",
            "hdrs",
            "-V",
            "job 42",
            "carol@example.test",
        ],
        b"Subject: nightly\n\ndone\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let deadline = std::time::Instant::now() + WAIT;
    while srv.new_mail("example.test", "alice").is_empty() {
        assert!(std::time::Instant::now() < deadline, "no success report");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let report = std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap();
    assert!(
        report.contains("Original-Envelope-Id: job 42\n")
            && report.contains("Final-Recipient: rfc822; carol@example.test\nAction: delivered\n"),
        "{report}"
    );
    assert_eq!(srv.new_mail("example.test", "carol").len(), 1);
    let bad = sendmail(&srv, &["-N", "sometimes", "carol@example.test"], b"x\n");
    assert_eq!(bad.status.code(), Some(64), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("-N takes never"), "{}", stderr(&bad));
    assert_eq!(srv.new_mail("example.test", "carol").len(), 1);
}
