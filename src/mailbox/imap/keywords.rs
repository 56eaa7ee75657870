//! IMAP keywords as Dovecot keeps them in a Maildir: `dovecot-keywords` in each folder lists
//! `<index> <name>` lines, and a message carries keyword `index` as the info letter `'a' + index`
//! (so at most 26 per folder). Changed as Dovecot does: under `dovecot-keywords.lock` (made with
//! O_EXCL), written there and renamed over the list.

use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime};

pub const FILE: &str = "dovecot-keywords";
/// Letters `a`..`z`.
pub const MAX: usize = 26;
const STALE: Duration = Duration::from_secs(30);

/// The folder's keywords by index (an empty name where the list has a gap).
pub fn load(dir: &Path) -> Vec<String> {
    let Ok(text) = fs::read_to_string(dir.join(FILE)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    for l in text.lines() {
        let Some((i, name)) = l.split_once(' ') else {
            continue;
        };
        let Ok(i) = i.parse::<usize>() else { continue };
        if i >= MAX || name.is_empty() {
            continue;
        }
        if out.len() <= i {
            out.resize(i + 1, String::new());
        }
        out[i] = name.to_string();
    }
    out
}

/// The index of keyword `name` in the folder at `dir` (ASCII case-insensitive, as IMAP compares
/// flags), added to the list when new; `None` when the folder has all 26 already.
pub fn define(dir: &Path, name: &str) -> io::Result<Option<usize>> {
    if let Some(i) = find(&load(dir), name) {
        return Ok(Some(i));
    }
    let lock = dir.join(format!("{FILE}.lock"));
    let mut file = take(&lock)?;
    let result = (|| {
        let mut list = load(dir);
        if let Some(i) = find(&list, name) {
            return Ok(Some(i));
        }
        let i = match list.iter().position(String::is_empty) {
            Some(i) => i,
            None if list.len() < MAX => {
                list.push(String::new());
                list.len() - 1
            }
            None => return Ok(None),
        };
        list[i] = name.to_string();
        let mut text = String::new();
        for (n, k) in list.iter().enumerate().filter(|(_, k)| !k.is_empty()) {
            text.push_str(&format!("{n} {k}\n"));
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&lock, dir.join(FILE))?;
        Ok(Some(i))
    })();
    // Renamed on success; otherwise the lock is ours to remove.
    let _ = fs::remove_file(&lock);
    result
}

fn find(list: &[String], name: &str) -> Option<usize> {
    list.iter().position(|k| k.eq_ignore_ascii_case(name))
}

/// Creates the lock file, waiting up to 2 s for another holder and taking over a stale one.
fn take(lock: &Path) -> io::Result<fs::File> {
    for _ in 0..200 {
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(lock)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let old = fs::metadata(lock)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok())
                    .is_some_and(|age| age > STALE);
                if old {
                    let _ = fs::remove_file(lock);
                    continue;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::WouldBlock,
        format!("{} is held by another process", lock.display()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dovecot_lists_are_read_and_extended() {
        let d = tempfile::tempdir().unwrap();
        assert!(load(d.path()).is_empty());
        fs::write(
            d.path().join(FILE),
            "0 $Forwarded\n2 Junk\nbad line\n30 x\n",
        )
        .unwrap();
        assert_eq!(load(d.path()), ["$Forwarded", "", "Junk"]);
        assert_eq!(define(d.path(), "junk").unwrap(), Some(2));
        assert_eq!(define(d.path(), "$label1").unwrap(), Some(1));
        assert_eq!(define(d.path(), "NonJunk").unwrap(), Some(3));
        assert_eq!(
            fs::read_to_string(d.path().join(FILE)).unwrap(),
            "0 $Forwarded\n1 $label1\n2 Junk\n3 NonJunk\n"
        );
        for i in 4..MAX {
            assert_eq!(define(d.path(), &format!("k{i}")).unwrap(), Some(i));
        }
        assert_eq!(define(d.path(), "one too many").unwrap(), None);
        assert!(!d.path().join(format!("{FILE}.lock")).exists());
    }
}
