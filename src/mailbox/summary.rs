//! Per-mailbox counts for `smtpctl mailboxes`: messages in new/ and cur/, bytes, newest.

use std::fs;
use std::path::Path;
use std::time::UNIX_EPOCH;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    /// `local@domain` as the directory names spell it.
    pub address: String,
    pub new: u64,
    pub cur: u64,
    pub bytes: u64,
    /// Unix time of the newest message file.
    pub newest: Option<u64>,
}

/// Every `<root>/<domain>/<local>` that is a Maildir, sorted by address.
pub fn summarize(root: &Path) -> std::io::Result<Vec<Summary>> {
    let mut out = Vec::new();
    let domains = match fs::read_dir(root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e),
    };
    for domain in domains.flatten() {
        if !domain.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            continue;
        }
        let Ok(locals) = fs::read_dir(domain.path()) else {
            continue;
        };
        for local in locals.flatten() {
            let md = local.path();
            if !md.join("new").is_dir() || !md.join("cur").is_dir() {
                continue;
            }
            let mut s = Summary {
                address: format!(
                    "{}@{}",
                    local.file_name().to_string_lossy(),
                    domain.file_name().to_string_lossy()
                ),
                new: 0,
                cur: 0,
                bytes: 0,
                newest: None,
            };
            for (sub, count) in [("new", &mut s.new), ("cur", &mut s.cur)] {
                let Ok(files) = fs::read_dir(md.join(sub)) else {
                    continue;
                };
                for f in files.flatten() {
                    if f.file_name().to_string_lossy().starts_with('.') {
                        continue;
                    }
                    let Ok(meta) = f.metadata() else { continue };
                    if !meta.is_file() {
                        continue;
                    }
                    *count += 1;
                    s.bytes += meta.len();
                    let mtime = meta
                        .modified()
                        .ok()
                        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                        .map(|d| d.as_secs());
                    s.newest = s.newest.max(mtime);
                }
            }
            out.push(s);
        }
    }
    out.sort_by(|a, b| a.address.cmp(&b.address));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts() {
        let root = tempfile::tempdir().unwrap();
        for (d, l) in [
            ("example.test", "bob"),
            ("example.test", "alice"),
            ("localhost", "x"),
        ] {
            for sub in ["tmp", "new", "cur"] {
                fs::create_dir_all(root.path().join(d).join(l).join(sub)).unwrap();
            }
        }
        fs::write(root.path().join("example.test/alice/new/1.a"), b"12345").unwrap();
        fs::write(root.path().join("example.test/alice/cur/2.b:2,S"), b"123").unwrap();
        fs::write(root.path().join("example.test/alice/tmp/3.c"), b"ignored").unwrap();
        fs::create_dir_all(root.path().join("example.test/notamaildir")).unwrap();
        let s = summarize(root.path()).unwrap();
        let addrs: Vec<&str> = s.iter().map(|m| m.address.as_str()).collect();
        assert_eq!(
            addrs,
            ["alice@example.test", "bob@example.test", "x@localhost"]
        );
        assert_eq!((s[0].new, s[0].cur, s[0].bytes), (1, 1, 8));
        assert!(s[0].newest.is_some() && s[1].newest.is_none());
        assert!(summarize(&root.path().join("missing")).unwrap().is_empty());
    }
}
