//! A folder's message cache, `smtpd-cache` beside `dovecot-uidlist`: for each message (by base
//! name) its IMAP size and INTERNALDATE, which never change for a Maildir file. With it a folder
//! is listed by reading its directories and the uidlist, without a `stat` or a read per message,
//! also after a restart. It is only a cache: missing, unreadable or stale entries are worked out
//! again from the files (and the file rewritten), entries for files that are gone are dropped.
//! Written to a unique temporary name and renamed, so concurrent sessions never see half a file.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

pub const FILE: &str = "smtpd-cache";
const HEADER: &str = "smtpd-cache 1";

/// What the cache keeps of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Octets with CRLF line ends.
    pub size: u64,
    /// The file's modification time, Unix seconds.
    pub internal: i64,
}

/// The cache of the folder at `dir` (empty when missing or not ours).
pub fn load(dir: &Path) -> HashMap<String, Entry> {
    let Ok(text) = fs::read_to_string(dir.join(FILE)) else {
        return HashMap::new();
    };
    let mut lines = text.lines();
    if lines.next() != Some(HEADER) {
        return HashMap::new();
    }
    let mut out = HashMap::new();
    for l in lines {
        let mut it = l.splitn(3, ' ');
        let (Some(size), Some(internal), Some(base)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        let (Ok(size), Ok(internal)) = (size.parse(), internal.parse()) else {
            continue;
        };
        if !base.is_empty() && !base.contains(['\n', '/']) {
            out.insert(base.to_string(), Entry { size, internal });
        }
    }
    out
}

/// Replaces the cache of `dir`; best effort (a failure only costs the next open some stats).
pub fn save(dir: &Path, entries: &HashMap<String, Entry>) {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut text = String::with_capacity(entries.len() * 64 + 16);
    text.push_str(HEADER);
    text.push('\n');
    let mut sorted: Vec<(&String, &Entry)> = entries.iter().collect();
    sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (base, e) in sorted {
        text.push_str(&format!("{} {} {base}\n", e.size, e.internal));
    }
    let tmp = dir.join(format!(
        ".{FILE}.{}.{}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let written = fs::File::create(&tmp).and_then(|mut f| f.write_all(text.as_bytes()));
    if written.is_err() || fs::rename(&tmp, dir.join(FILE)).is_err() {
        let _ = fs::remove_file(&tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_files_are_empty() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).is_empty());
        let mut m = HashMap::new();
        m.insert(
            "1700000001.M1P1Q1.h,S=5".to_string(),
            Entry {
                size: 7,
                internal: 1_700_000_001,
            },
        );
        m.insert(
            "odd name with spaces".to_string(),
            Entry {
                size: 1,
                internal: -1,
            },
        );
        save(d.path(), &m);
        assert_eq!(load(d.path()), m);
        // No temporary files are left.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        fs::write(d.path().join(FILE), "something else\n1 2 x\n").unwrap();
        assert!(load(d.path()).is_empty());
        fs::write(d.path().join(FILE), format!("{HEADER}\nx 2 a\n3 4 b\n5\n")).unwrap();
        assert_eq!(load(d.path()).len(), 1);
    }
}
