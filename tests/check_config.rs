//! `smtpd --check-config` (CONTRACT: problems on stderr as PATH:LINE: message, exit 1).
mod common;
use common::*;
use std::process::Command;

fn check(text: &str) -> (bool, String, String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("smtpd.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(smtpd_bin())
        .arg("--check-config")
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        path,
        dir,
    )
}

/// The bundled config is valid as shipped.
#[test]
fn bundled_config_ok() {
    let out = Command::new(smtpd_bin())
        .args(["--check-config", "--config"])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/config/smtpd.toml"))
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "configuration OK"
    );
}

/// Every problem is reported, one per line, as PATH:LINE: message; exit status 1.
#[test]
fn every_problem_with_file_and_line() {
    let (ok, _, err, path, _dir) = check(
        "hostname = \"mx.test\"\n[smtp]\nlisten = [\"nowhere\"]\nlisen = []\n[limits]\nmax_errors = 0\n",
    );
    assert!(!ok);
    let lines: Vec<&str> = err.lines().collect();
    let p = path.display().to_string();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with(&format!("{p}:3: ")), "{err}");
    assert!(
        lines[1].starts_with(&format!("{p}:4: unknown key `lisen`")),
        "{err}"
    );
    assert!(lines[2].starts_with(&format!("{p}:6: ")), "{err}");
}

/// A missing hostname and a TOML syntax error are reported too.
#[test]
fn missing_hostname_and_syntax_error() {
    let (ok, _, err, path, _dir) = check("[smtp]\n");
    assert!(!ok);
    assert!(
        err.starts_with(&format!("{}:1: `hostname` is required", path.display())),
        "{err}"
    );
    let (ok, _, err, path, _dir) = check("hostname = \"mx.test\"\n[smtp\n");
    assert!(!ok);
    assert!(err.starts_with(&format!("{}:2: ", path.display())), "{err}");
}

/// A missing file is an error that names the file.
#[test]
fn missing_file() {
    let out = Command::new(smtpd_bin())
        .args(["--check-config", "--config", "/nonexistent/smtpd.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/smtpd.toml"));
}
