//! Real clients against the real smtpd: Python's smtplib and swaks (also with --pipeline).
//! They are skipped with a printed reason when missing, except under CI=true.
mod common;
use common::*;
use std::process::Command;

/// Stored copies: LF line ends where the client sent CRLF.
fn lf(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

/// Byte equality, reporting the first difference readably.
fn same(got: &[u8], want: &[u8]) {
    if got != want {
        let at = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let ctx = |s: &[u8]| {
            String::from_utf8_lossy(&s[at.saturating_sub(60)..(at + 60).min(s.len())]).into_owned()
        };
        panic!(
            "stored copy differs at byte {at} (lengths {} vs {}):\n got: {:?}\nwant: {:?}",
            got.len(),
            want.len(),
            ctx(got),
            ctx(want)
        );
    }
}

/// Python smtplib: send_message with an attachment to two recipients, an SMTPUTF8 message, and a
/// partly refused one; each stored copy is byte-for-byte what smtplib sent (CRLF → LF).
#[test]
fn python_smtplib() {
    if !have("python3") {
        return;
    }
    // Loopback is no relay peer here: the remote recipient is refused.
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let out = tempfile::tempdir().unwrap();
    let run = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/smtplib_send.py"
        ))
        .arg(srv.smtp.ip().to_string())
        .arg(srv.smtp.port().to_string())
        .arg(out.path())
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "smtplib failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let sent1 = std::fs::read(out.path().join("1.eml")).unwrap();
    let a = srv.new_mail("example.test", "alice");
    let b = srv.new_mail("localhost", "bob");
    assert_eq!((a.len(), b.len()), (1, 1));
    same(&stored_body(&a[0]), &lf(&sent1));
    same(&stored_body(&b[0]), &lf(&sent1));
    let sent2 = std::fs::read(out.path().join("2.eml")).unwrap();
    let j = srv.new_mail("example.test", "jörg");
    assert_eq!(j.len(), 1);
    same(&stored_body(&j[0]), &lf(&sent2));
    let stored = std::fs::read_to_string(&j[0]).unwrap();
    assert!(
        stored.starts_with("Return-Path: <jörg@b.test>\n"),
        "{stored}"
    );
    assert!(stored.contains("with UTF8SMTP id"));
    assert_eq!(srv.new_mail("example.test", "carol").len(), 1);
}

fn swaks(srv: &Server, extra: &[&str]) -> std::process::Output {
    Command::new("swaks")
        .args(["--server", &srv.smtp.ip().to_string()])
        .args(["--port", &srv.smtp.port().to_string()])
        .args(["--helo", "swaks.test", "--timeout", "20"])
        .args(extra)
        .output()
        .unwrap()
}

/// swaks, plain and with --pipeline, delivers intact messages; a relay attempt from a peer
/// outside `[relay] networks` fails.
#[test]
fn swaks_plain_and_pipelined() {
    if !have("swaks") {
        return;
    }
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let body = "line one\n.line with a dot\n\nlast line";
    for (i, mode) in [&[][..], &["--pipeline"][..]].iter().enumerate() {
        let to = format!("swaks{i}@example.test");
        let mut args = vec![
            "--from",
            "tester@b.test",
            "--to",
            &to,
            "--header",
            "Subject: swaks test",
            "--body",
            body,
        ];
        args.extend_from_slice(mode);
        let out = swaks(&srv, &args);
        let transcript = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "swaks {mode:?} failed:\n{transcript}");
        if !mode.is_empty() {
            assert!(transcript.contains("PIPELINING"), "{transcript}");
        }
        let mail = srv.new_mail("example.test", &format!("swaks{i}"));
        assert_eq!(mail.len(), 1, "{mode:?}");
        let stored = String::from_utf8(stored_body(&mail[0])).unwrap();
        assert!(stored.contains("Subject: swaks test\n"), "{stored}");
        // swaks ends the body with one more CRLF of its own.
        assert!(
            stored.contains("\n\nline one\n.line with a dot\n\nlast line\n"),
            "{stored:?}"
        );
        assert!(!stored.contains('\r'));
    }
    let out = swaks(
        &srv,
        &[
            "--from",
            "a@b.test",
            "--to",
            "victim@elsewhere.test",
            "--pipeline",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("550 5.7.1"));
}
