//! Files in the mail store: listings and a stored message's body.

use std::path::{Path, PathBuf};

pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in list(dir) {
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// A stored message without the `Return-Path:` and `Received:` headers smtpd prepends
/// (the Received: continuation lines start with a tab).
pub fn stored_body(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let mut rest: &[u8] = &bytes;
    let next_line = |rest: &mut &[u8]| -> Vec<u8> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(rest.len());
        let line = rest[..end].to_vec();
        *rest = &rest[end..];
        line
    };
    assert!(next_line(&mut rest).starts_with(b"Return-Path: <"));
    assert!(next_line(&mut rest).starts_with(b"Received: from "));
    while rest.starts_with(b"\t") {
        next_line(&mut rest);
    }
    rest.to_vec()
}
