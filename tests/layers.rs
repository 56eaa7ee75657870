//! The dependency rules of `src/lib.rs` ("Layers"), checked on the source: a `use` (or any path)
//! that breaks one fails here with the file and line. Comments are skipped.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// (file:line, code) for every non-comment line under `src/<dir>`.
fn code_lines(dir: &str) -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let base = root.join(dir);
    if base.is_dir() {
        rust_files(&base, &mut files);
    } else {
        files.push(base.with_extension("rs"));
    }
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("").trim();
            if !code.is_empty() {
                let at = format!("{}:{}", f.strip_prefix(&root).unwrap().display(), i + 1);
                out.push((at, code.to_string()));
            }
        }
    }
    out
}

/// The crate modules a line names through `crate::`.
fn crate_modules(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .map(|(i, _)| {
            code[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect()
        })
        .collect()
}

/// Every violation of: no line under `src/<dir>` contains one of `banned`, or names a crate
/// module outside `allowed_modules`.
fn violations(dir: &str, banned: &[&str], allowed_modules: &[&str]) -> Vec<String> {
    check(&code_lines(dir), banned, allowed_modules)
}

fn check(lines: &[(String, String)], banned: &[&str], allowed_modules: &[&str]) -> Vec<String> {
    let mut bad = Vec::new();
    for (at, code) in lines {
        for b in banned {
            if code.contains(b) {
                bad.push(format!("{at}: `{b}` in `{code}`"));
            }
        }
        for m in crate_modules(code) {
            if !allowed_modules.contains(&m.as_str()) {
                bad.push(format!("{at}: crate::{m} in `{code}`"));
            }
        }
    }
    bad
}

const ALL: &[&str] = &[
    "auth", "cli", "client", "config", "control", "daemon", "log", "mailbox", "net", "proto",
    "testing", "wire",
];

fn except(these: &[&str]) -> Vec<&'static str> {
    ALL.iter().copied().filter(|m| !these.contains(m)).collect()
}

/// `proto` is sans-IO: no tokio, no files, no sockets, no clock, and of the crate only itself and
/// the leaf helpers. (Address types come from `core::net`, which has no sockets.)
#[test]
fn proto_imports_nothing_but_wire() {
    let bad = violations(
        "proto",
        &[
            "tokio",
            "std::fs",
            "std::net",
            "SystemTime::now",
            "Instant::now",
            "std::env",
            "std::thread",
        ],
        &["proto", "wire", "testing"],
    );
    assert!(
        bad.is_empty(),
        "proto breaks its layer:\n{}",
        bad.join("\n")
    );
}

/// `mailbox` knows no sockets or protocols.
#[test]
fn mailbox_knows_no_sockets_or_protocols() {
    let allowed = except(&["net", "proto", "daemon", "control", "client", "cli"]);
    let bad = violations("mailbox", &["tokio", "std::net"], &allowed);
    assert!(
        bad.is_empty(),
        "mailbox breaks its layer:\n{}",
        bad.join("\n")
    );
}

/// `config` is data: it knows no daemon, net, control or client.
#[test]
fn config_knows_no_daemon_or_net() {
    let allowed = except(&["daemon", "net", "control", "client"]);
    let bad = violations("config", &["tokio"], &allowed);
    assert!(
        bad.is_empty(),
        "config breaks its layer:\n{}",
        bad.join("\n")
    );
}

/// The leaf helpers import nothing of the crate.
#[test]
fn leaves_import_nothing() {
    for leaf in ["wire", "testing"] {
        let bad = violations(leaf, &["tokio"], &[]);
        assert!(
            bad.is_empty(),
            "{leaf} breaks its layer:\n{}",
            bad.join("\n")
        );
    }
}

/// Only the composition root and `bin/smtpd.rs` name `daemon`.
#[test]
fn only_smtpd_imports_daemon() {
    let mut bad = Vec::new();
    for dir in except(&["daemon"])
        .into_iter()
        .chain(["bin/smtpctl", "bin/smtp-send"])
    {
        for (at, code) in code_lines(dir) {
            if code.contains("crate::daemon") || code.contains("smtpd::daemon") {
                bad.push(format!("{at}: {code}"));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "daemon imported outside the root:\n{}",
        bad.join("\n")
    );
}

/// The checker itself: the engine reading the accounts' global state (as it once did) and a
/// socket type are both caught; a line of its own layer is not.
#[test]
fn the_checker_sees_a_violation() {
    let line = |code: &str| ("x.rs:1".to_string(), code.to_string());
    let lines = [
        line("&& !crate::auth::accounts::is_probe_address(&a)"),
        line("use tokio::net::TcpStream;"),
        line("use crate::proto::line::{Line, LineBuffer};"),
    ];
    let bad = check(&lines, &["tokio"], &["proto", "wire"]);
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert!(bad[0].contains("crate::auth") && bad[1].contains("tokio"));
}
