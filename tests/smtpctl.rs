//! `smtpctl encrypt` (CONTRACT: prints the PHC string alone on the last line of stdout; works
//! without a daemon; reads stdin when no argument).
mod common;
use common::*;
use std::io::Write;
use std::process::{Command, Stdio};

fn smtpctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_smtpctl"))
}

fn last_line(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes)
        .lines()
        .last()
        .unwrap_or("")
        .to_string()
}

#[test]
fn encrypt_argument_warns_and_hashes() {
    let out = smtpctl()
        .args(["encrypt", "correct horse"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let hash = last_line(&out.stdout);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert_eq!(
        smtpd::auth::password::verify("correct horse", &hash),
        Ok(true)
    );
    assert_eq!(smtpd::auth::password::verify("wrong", &hash), Ok(false));
    assert!(String::from_utf8_lossy(&out.stderr).contains("visible to other users"));
}

#[test]
fn encrypt_reads_stdin() {
    let mut child = smtpctl()
        .arg("encrypt")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let hash = last_line(&out.stdout);
    assert_eq!(smtpd::auth::password::verify("from stdin", &hash), Ok(true));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = smtpctl()
        .arg("encrypt")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "empty input is refused");
}

/// A hash made by `smtpctl encrypt` passes --check-config and logs in to POP3.
#[test]
fn encrypted_password_logs_in() {
    let out = smtpctl().args(["encrypt", "via smtpctl"]).output().unwrap();
    let hash = last_line(&out.stdout);
    let srv = Server::start_with(
        Overrides::new()
            .pop3(&[])
            .account_hash("carol@example.test", &hash),
    );
    let check = Command::new(smtpd_bin())
        .args(["--check-config", "--config"])
        .arg(&srv.config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let mut p = srv.pop3();
    assert!(
        p.login("carol@example.test", "via smtpctl")
            .starts_with("+OK")
    );
}
