//! `dovecot-uidlist`, version 3, as Dovecot reads and writes it: a header line
//! `3 V<uidvalidity> N<next uid> G<guid>` and one line per message, `<uid> [<ext> ...] :<base>`,
//! where `<base>` is the file name before the `:2,` info. Extension fields we do not use are kept
//! as read. Written under the `dovecot-uidlist.lock` dotlock: the new text goes into the lock
//! file, which is then renamed over the list (Dovecot's `file_dotlock_replace`), so a reader sees
//! the old list or the new one, never half of one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const FILE: &str = "dovecot-uidlist";
pub const LOCK: &str = "dovecot-uidlist.lock";
/// A lock older than this is taken to be left by a dead process (Dovecot's default for this
/// lock is two minutes).
pub const STALE: Duration = Duration::from_secs(120);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub uid: u32,
    /// Extension fields as read (`W1234` the virtual size, `G` and a GUID...), written back
    /// unchanged.
    pub ext: Vec<String>,
    pub base: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UidList {
    pub uidvalidity: u32,
    pub next_uid: u32,
    /// 32 hex digits, or empty when the file had none.
    pub guid: String,
    /// In UID order.
    pub records: Vec<Record>,
}

#[derive(Debug, thiserror::Error)]
pub enum UidListError {
    #[error("{path}: line {line}: {what} (move the file aside and smtpd rebuilds it)")]
    Syntax {
        path: PathBuf,
        line: usize,
        what: &'static str,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: locked by another process for over {secs} s; remove the lock if no Dovecot or smtpd runs", secs = STALE.as_secs())]
    Locked { path: PathBuf },
}

fn io_at(path: &Path) -> impl FnOnce(io::Error) -> UidListError + '_ {
    move |source| UidListError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl UidList {
    /// A fresh list: UIDVALIDITY from the clock (as Dovecot does), UIDs from 1.
    pub fn fresh(now: SystemTime) -> UidList {
        let secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1);
        UidList {
            uidvalidity: (secs as u32).max(1),
            next_uid: 1,
            guid: random_guid(),
            records: Vec::new(),
        }
    }

    /// Parses the text of a list; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<UidList, UidListError> {
        let bad = |line, what| UidListError::Syntax {
            path: path.to_path_buf(),
            line,
            what,
        };
        let mut lines = text.lines();
        let header = lines.next().ok_or_else(|| bad(1, "empty file"))?;
        let mut fields = header.split(' ');
        match fields.next() {
            Some("3") => {}
            Some("1") | Some("2") => return Err(bad(1, "old uidlist version (only 3 is read)")),
            _ => return Err(bad(1, "not a dovecot-uidlist header")),
        }
        let (mut uidvalidity, mut next_uid, mut guid) = (0u32, 1u32, String::new());
        for f in fields {
            let (k, v) = f.split_at(f.len().min(1));
            match k {
                "V" => uidvalidity = v.parse().map_err(|_| bad(1, "bad V (UIDVALIDITY)"))?,
                "N" => next_uid = v.parse().map_err(|_| bad(1, "bad N (next UID)"))?,
                "G" => guid = v.to_string(),
                _ => {}
            }
        }
        if uidvalidity == 0 {
            return Err(bad(1, "no UIDVALIDITY"));
        }
        let mut records: Vec<Record> = Vec::new();
        for (i, line) in lines.enumerate() {
            let n = i + 2;
            if line.is_empty() {
                continue;
            }
            let (head, base) = line
                .split_once(" :")
                .ok_or_else(|| bad(n, "no \" :\" before the file name"))?;
            let mut parts = head.split(' ');
            let uid: u32 = parts
                .next()
                .and_then(|u| u.parse().ok())
                .filter(|&u| u > 0)
                .ok_or_else(|| bad(n, "bad UID"))?;
            if records.last().is_some_and(|r| r.uid >= uid) {
                return Err(bad(n, "UIDs out of order"));
            }
            records.push(Record {
                uid,
                ext: parts
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
                base: base.to_string(),
            });
        }
        let max = records.last().map_or(0, |r| r.uid);
        Ok(UidList {
            uidvalidity,
            next_uid: next_uid.max(max.saturating_add(1)),
            guid,
            records,
        })
    }

    pub fn render(&self) -> String {
        let mut out = format!("3 V{} N{}", self.uidvalidity, self.next_uid);
        if !self.guid.is_empty() {
            out.push_str(" G");
            out.push_str(&self.guid);
        }
        out.push('\n');
        for r in &self.records {
            out.push_str(&r.uid.to_string());
            for e in &r.ext {
                out.push(' ');
                out.push_str(e);
            }
            out.push_str(" :");
            out.push_str(&r.base);
            out.push('\n');
        }
        out
    }

    /// Gives `base` the next UID.
    pub fn assign(&mut self, base: &str) -> u32 {
        let uid = self.next_uid;
        self.next_uid = self.next_uid.saturating_add(1);
        self.records.push(Record {
            uid,
            ext: Vec::new(),
            base: base.to_string(),
        });
        uid
    }
}

/// Reads `<dir>/dovecot-uidlist`; `None` when there is none.
pub fn read(dir: &Path) -> Result<Option<UidList>, UidListError> {
    let path = dir.join(FILE);
    match fs::read(&path) {
        Ok(bytes) => UidList::parse(&String::from_utf8_lossy(&bytes), &path).map(Some),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_at(&path)(e)),
    }
}

/// The dotlock, held while the list is read, changed and replaced.
pub struct Lock {
    path: PathBuf,
    file: Option<File>,
}

impl Lock {
    /// Takes `<dir>/dovecot-uidlist.lock`, waiting up to `wait` for another holder, and
    /// replacing a lock older than [`STALE`].
    pub fn take(dir: &Path, wait: Duration) -> Result<Lock, UidListError> {
        let path = dir.join(LOCK);
        let start = std::time::Instant::now();
        loop {
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    return Ok(Lock {
                        path,
                        file: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let age = fs::metadata(&path)
                        .and_then(|m| m.modified())
                        .ok()
                        .and_then(|m| SystemTime::now().duration_since(m).ok());
                    if age.is_some_and(|a| a > STALE) {
                        let _ = fs::remove_file(&path);
                        continue;
                    }
                    if start.elapsed() >= wait {
                        return Err(UidListError::Locked { path });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => return Err(io_at(&path)(e)),
            }
        }
    }

    /// Writes `list` into the lock file, fsyncs it and renames it over the list (which also
    /// releases the lock).
    pub fn replace(mut self, list: &UidList) -> Result<(), UidListError> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| io_at(&self.path)(io::Error::other("lock already used")))?;
        file.write_all(list.render().as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(io_at(&self.path))?;
        drop(file);
        let target = self.path.with_file_name(FILE);
        fs::rename(&self.path, &target).map_err(io_at(&target))?;
        // Renamed away: nothing left for Drop to remove.
        self.path = PathBuf::new();
        Ok(())
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn random_guid() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        return String::new();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOVECOT: &str = "3 V1700000000 N5 G5c8b9e1ad2e0f465c21f0000a8f3c4b2\n\
        1 :1700000001.M1P1Q1.host,S=10,W=11\n\
        3 W120 :1700000003.M1P1Q3.host\n\
        4 GABCD W99 :1700000004.M1P1Q4.host\n";

    #[test]
    fn reads_and_writes_dovecot_lists_unchanged() {
        let l = UidList::parse(DOVECOT, Path::new("x")).unwrap();
        assert_eq!(l.uidvalidity, 1_700_000_000);
        assert_eq!(l.next_uid, 5);
        assert_eq!(l.records.len(), 3);
        assert_eq!(l.records[1].uid, 3);
        assert_eq!(l.records[1].base, "1700000003.M1P1Q3.host");
        assert_eq!(l.records[2].ext, ["GABCD", "W99"]);
        assert_eq!(l.render(), DOVECOT);
    }

    #[test]
    fn next_uid_is_never_below_a_listed_uid() {
        let l = UidList::parse("3 V7 N2\n9 :a\n", Path::new("x")).unwrap();
        assert_eq!(l.next_uid, 10);
    }

    #[test]
    fn bad_lists_are_refused_with_their_line() {
        for (text, line) in [
            ("", 1),
            ("2 V1 N1\n", 1),
            ("3 N1\n", 1),
            ("3 V1 N1\nx :a\n", 2),
            ("3 V1 N9\n1 :a\n2 b\n", 3),
            ("3 V1 N9\n2 :a\n1 :b\n", 3),
        ] {
            match UidList::parse(text, Path::new("f")) {
                Err(UidListError::Syntax { line: l, .. }) => assert_eq!(l, line, "{text:?}"),
                other => panic!("{text:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn replace_is_atomic_and_releases_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = UidList::fresh(SystemTime::now());
        assert_eq!(l.assign("a"), 1);
        assert_eq!(l.assign("b"), 2);
        let lock = Lock::take(dir.path(), Duration::ZERO).unwrap();
        assert!(matches!(
            Lock::take(dir.path(), Duration::from_millis(30)),
            Err(UidListError::Locked { .. })
        ));
        lock.replace(&l).unwrap();
        assert!(!dir.path().join(LOCK).exists());
        assert_eq!(read(dir.path()).unwrap().unwrap(), l);
        // A lock dropped without replace leaves the list as it was.
        drop(Lock::take(dir.path(), Duration::ZERO).unwrap());
        assert!(!dir.path().join(LOCK).exists());
        assert_eq!(read(dir.path()).unwrap().unwrap().next_uid, 3);
    }

    #[test]
    fn a_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let f = File::create(dir.path().join(LOCK)).unwrap();
        let old = SystemTime::now() - STALE - Duration::from_secs(5);
        f.set_modified(old).unwrap();
        assert!(Lock::take(dir.path(), Duration::ZERO).is_ok());
    }
}
