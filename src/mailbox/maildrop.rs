//! The POP3 view of a Maildir: the messages in `new/` and `cur/`, each with a stable unique id and
//! its size as POP3 sends it; an exclusive lock held for the session; the UPDATE step (deletions,
//! and served messages moved to `cur/` as seen), made durable with directory fsyncs.

use std::fs::{self, File, TryLockError};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::delivery::{DeliveryError, FsError, io_err};
use crate::wire::WireSize;

/// The lock file kept in each maildir while a POP3 session holds it.
pub const LOCK_FILE: &str = "smtpd-pop3.lock";

#[derive(Debug, Error)]
pub enum MaildropError {
    #[error("the maildrop is locked by another session")]
    InUse,
    #[error(transparent)]
    Io(#[from] FsError),
    /// The maildir could not be found or made.
    #[error(transparent)]
    Mailbox(#[from] DeliveryError),
}

impl MaildropError {
    /// Removed behind the store's back (the maildir is to be made again).
    pub fn is_not_found(&self) -> bool {
        match self {
            MaildropError::Io(e) => e.source.kind() == io::ErrorKind::NotFound,
            MaildropError::Mailbox(e) => e.is_io_kind(io::ErrorKind::NotFound),
            MaildropError::InUse => false,
        }
    }
}

/// One message file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub path: PathBuf,
    /// Stable across sessions and across the new/ → cur/ move.
    pub uid: String,
    /// Octets POP3 sends (CRLF line ends, before byte-stuffing).
    pub size: u64,
}

/// A locked maildrop and its listing at lock time.
#[derive(Debug)]
pub struct Maildrop {
    pub dir: PathBuf,
    pub messages: Vec<Message>,
    _lock: File,
}

/// Locks `dir` (which must be a Maildir) and lists it.
pub fn open(dir: &Path) -> Result<Maildrop, MaildropError> {
    let lock_path = dir.join(LOCK_FILE);
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err("open lock file", &lock_path))?;
    match lock.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(MaildropError::InUse),
        Err(TryLockError::Error(e)) => return Err(io_err("lock", &lock_path)(e).into()),
    }
    let messages = scan(dir)?;
    Ok(Maildrop {
        dir: dir.to_path_buf(),
        messages,
        _lock: lock,
    })
}

/// The message files of a Maildir, oldest first.
pub fn scan(dir: &Path) -> Result<Vec<Message>, MaildropError> {
    let mut found: Vec<Found> = Vec::new();
    for sub in ["new", "cur"] {
        let d = dir.join(sub);
        let entries = match fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io_err("list", &d)(e).into()),
        };
        for entry in entries {
            let entry = entry.map_err(io_err("list", &d))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.file_type().map(|t| t.is_file()).unwrap_or(false) {
                continue;
            }
            found.push(Found {
                key: std_key(&name),
                path: entry.path(),
                name,
            });
        }
    }
    found.sort_unstable_by(delivery_order);
    let mut messages = Vec::with_capacity(found.len());
    for Found { name, path, .. } in found {
        let base = base_name(&name);
        let size = match size_hint(base) {
            Some(w) => w,
            None => match wire_size_of(&path) {
                Ok(w) => w,
                // Gone since the listing (another reader): skip it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_err("read", &path)(e).into()),
            },
        };
        messages.push(Message {
            uid: uid_of(base),
            size,
            path,
        });
    }
    Ok(messages)
}

struct Found {
    /// The numbers of a standard name, compared first (the natural order agrees with them).
    key: Option<(u64, u64, u64, u64)>,
    name: String,
    path: PathBuf,
}

/// Natural order of the base names (see [`natural_cmp`]), then the whole name; the numbers of
/// standard names settle most comparisons without walking the text.
fn delivery_order(a: &Found, b: &Found) -> std::cmp::Ordering {
    let order = match (a.key, b.key) {
        (Some(x), Some(y)) => x.cmp(&y),
        _ => std::cmp::Ordering::Equal,
    };
    order
        .then_with(|| natural_cmp(base_name(&a.name), base_name(&b.name)))
        .then_with(|| a.name.cmp(&b.name))
}

fn base_name(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

/// `<secs>.M<usec>P<pid>Q<seq>` at the start of a name (what smtpd, Dovecot and Postfix write):
/// the numbers, in the order the natural comparison would meet them.
fn std_key(name: &str) -> Option<(u64, u64, u64, u64)> {
    fn num(s: &str) -> Option<(u64, &str)> {
        let end = s
            .bytes()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(s.len());
        if end == 0 {
            return None;
        }
        Some((s[..end].parse().ok()?, &s[end..]))
    }
    let (secs, rest) = num(name)?;
    let (usec, rest) = num(rest.strip_prefix(".M")?)?;
    let (pid, rest) = num(rest.strip_prefix('P')?)?;
    let (seq, _) = num(rest.strip_prefix('Q')?)?;
    Some((secs, usec, pid, seq))
}

/// Natural order: runs of digits compare as numbers, other runs as text, a number before text.
/// `1795684189.M99P7Q3.host` sorts before `1795684189.M100P7Q4.host`: delivery order, as far as
/// the Maildir name records it (seconds, microseconds, pid, sequence). No allocation.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    fn run(s: &[u8]) -> (&[u8], &[u8]) {
        let digit = s[0].is_ascii_digit();
        let end = s
            .iter()
            .position(|b| b.is_ascii_digit() != digit)
            .unwrap_or(s.len());
        s.split_at(end)
    }
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let ((ra, rest_a), (rb, rest_b)) = (run(a), run(b));
        let order = match (ra[0].is_ascii_digit(), rb[0].is_ascii_digit()) {
            (true, true) => {
                let ta = &ra[ra.iter().position(|&c| c != b'0').unwrap_or(ra.len())..];
                let tb = &rb[rb.iter().position(|&c| c != b'0').unwrap_or(rb.len())..];
                ta.len().cmp(&tb.len()).then_with(|| ta.cmp(tb))
            }
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => ra.cmp(rb),
        };
        if order != Ordering::Equal {
            return order;
        }
        (a, b) = (rest_a, rest_b);
    }
}

/// Dovecot's `,W=<octets>` hint in a file name.
fn size_hint(base: &str) -> Option<u64> {
    base.split(',')
        .skip(1)
        .find_map(|field| field.strip_prefix("W="))
        .and_then(|w| w.parse().ok())
}

fn wire_size_of(path: &Path) -> io::Result<u64> {
    let mut f = File::open(path)?;
    let mut w = WireSize::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(w.total());
        }
        w.feed(&buf[..n]);
    }
}

/// The unique part of a Maildir name (before `,` size hints and `:` info) when it is a valid
/// UIDL (1–70 printable ASCII characters, RFC 1939 §7); otherwise a hash of the base name.
fn uid_of(base: &str) -> String {
    let unique = base.split(',').next().unwrap_or(base);
    let valid =
        (1..=70).contains(&unique.len()) && unique.bytes().all(|b| (0x21..=0x7e).contains(&b));
    if valid {
        unique.to_string()
    } else {
        // FNV-1a, 64 bits: stable across runs and versions (unlike std's hasher).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in base.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        format!("h{h:016x}")
    }
}

impl Maildrop {
    /// The UPDATE state: removes `delete`, marks `seen` read (into `cur/` with the `S` flag), then
    /// fsyncs `new/` and `cur/`. A file already gone counts as done.
    pub fn update(&self, delete: &[usize], seen: &[usize]) -> Result<(), MaildropError> {
        if delete.is_empty() && seen.is_empty() {
            return Ok(());
        }
        let mut first_err = None;
        for &i in delete {
            let Some(m) = self.messages.get(i) else {
                continue;
            };
            match fs::remove_file(&m.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_err.get_or_insert(io_err("delete", &m.path)(e));
                }
            }
        }
        for &i in seen {
            let Some(m) = self.messages.get(i) else {
                continue;
            };
            let Some(target) = seen_path(&self.dir, &m.path) else {
                continue;
            };
            match fs::rename(&m.path, &target) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    first_err.get_or_insert(io_err("mark seen", &m.path)(e));
                }
            }
        }
        for sub in ["new", "cur"] {
            let d = self.dir.join(sub);
            if let Err(e) = File::open(&d).and_then(|f| f.sync_all()) {
                first_err.get_or_insert(io_err("fsync directory", &d)(e));
            }
        }
        match first_err {
            None => Ok(()),
            Some(e) => Err(e.into()),
        }
    }
}

/// `cur/<base>:2,<flags with S>`, or `None` when the message is already marked seen.
fn seen_path(dir: &Path, path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_string_lossy().into_owned();
    let (base, flags) = match name.split_once(":2,") {
        Some((b, f)) => (b.to_string(), f.to_string()),
        None => (
            name.split(':').next().unwrap_or(&name).to_string(),
            String::new(),
        ),
    };
    let in_cur = path.parent().and_then(|p| p.file_name()) == Some("cur".as_ref());
    if in_cur && flags.contains('S') {
        return None;
    }
    let mut f: Vec<char> = flags.chars().chain(['S']).collect();
    f.sort_unstable();
    f.dedup();
    let flags: String = f.into_iter().collect();
    Some(dir.join("cur").join(format!("{base}:2,{flags}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The natural order as first written (allocating keys): the reference for `natural_cmp`.
    fn reference_key(name: &str) -> Vec<(u8, u128, String)> {
        let mut parts = Vec::new();
        let mut rest = base_name(name);
        while let Some(c) = rest.chars().next() {
            let digit = c.is_ascii_digit();
            let end = rest
                .find(|ch: char| ch.is_ascii_digit() != digit)
                .unwrap_or(rest.len());
            let run = &rest[..end];
            parts.push(if digit {
                (0, run.parse().unwrap(), String::new())
            } else {
                (1, 0, run.to_string())
            });
            rest = &rest[end..];
        }
        parts
    }

    proptest::proptest! {
        #[test]
        fn sort_order_matches_the_reference(names in proptest::collection::vec(
            "[0-9]{1,4}(\\.M[0-9]{1,3}P[0-9]{1,2}Q[0-9]{1,2})?[a-z.,=0-9]{0,6}(:2,[a-zS]{0,2})?", 0..40)) {
            let mut found: Vec<Found> = names
                .iter()
                .map(|n| Found { key: std_key(n), name: n.clone(), path: PathBuf::new() })
                .collect();
            found.sort_unstable_by(delivery_order);
            let got: Vec<&str> = found.iter().map(|f| f.name.as_str()).collect();
            let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
            want.sort_by(|a, b| reference_key(a).cmp(&reference_key(b)).then_with(|| a.cmp(b)));
            proptest::prop_assert_eq!(got, want);
        }
    }

    fn maildir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for sub in ["tmp", "new", "cur"] {
            fs::create_dir(d.path().join(sub)).unwrap();
        }
        d
    }

    #[test]
    fn listing_sizes_uids_and_order() {
        let d = maildir();
        fs::write(d.path().join("new/200.M1P1Q1.host,S=4,W=6"), b"a\nb\n").unwrap();
        fs::write(d.path().join("cur/100.M1P1Q0.host,S=2,W=3:2,S"), b"x\n").unwrap();
        // No size hint: computed from the content (CRLF kept as one line end, final CRLF added).
        fs::write(d.path().join("new/300.foreign"), b"l1\r\nl2").unwrap();
        fs::write(d.path().join("new/.hidden"), b"skip").unwrap();
        let list = scan(d.path()).unwrap();
        let uids: Vec<&str> = list.iter().map(|m| m.uid.as_str()).collect();
        assert_eq!(uids, ["100.M1P1Q0.host", "200.M1P1Q1.host", "300.foreign"]);
        let sizes: Vec<u64> = list.iter().map(|m| m.size).collect();
        assert_eq!(sizes, [3, 6, 8]);
    }

    #[test]
    fn delivery_order_is_numeric() {
        let d = maildir();
        for name in [
            "100.M99P7Q3.h,S=2,W=3",
            "100.M100P7Q4.h,S=2,W=3",
            "99.M5P7Q1.h,S=2,W=3",
        ] {
            fs::write(d.path().join("new").join(name), b"x\n").unwrap();
        }
        fs::write(d.path().join("cur/100.M100P7Q2.h,S=2,W=3:2,S"), b"x\n").unwrap();
        let uids: Vec<String> = scan(d.path()).unwrap().into_iter().map(|m| m.uid).collect();
        assert_eq!(
            uids,
            [
                "99.M5P7Q1.h",
                "100.M99P7Q3.h",
                "100.M100P7Q2.h",
                "100.M100P7Q4.h"
            ]
        );
    }

    #[test]
    fn uid_is_stable_across_the_move_to_cur() {
        assert_eq!(uid_of("1.M2P3Q4.h,S=1,W=2"), "1.M2P3Q4.h");
        let long = "x".repeat(80);
        let u = uid_of(&long);
        assert!(u.len() <= 70 && u.starts_with('h'));
        assert_eq!(u, uid_of(&long));
        assert!(uid_of("caf\u{e9}").starts_with('h'));
    }

    #[test]
    fn lock_is_exclusive() {
        let d = maildir();
        let first = open(d.path()).unwrap();
        assert!(matches!(open(d.path()), Err(MaildropError::InUse)));
        drop(first);
        assert!(open(d.path()).is_ok());
    }

    #[test]
    fn update_deletes_and_marks_seen() {
        let d = maildir();
        fs::write(d.path().join("new/1.a.h,S=2,W=3"), b"a\n").unwrap();
        fs::write(d.path().join("new/2.b.h,S=2,W=3"), b"b\n").unwrap();
        fs::write(d.path().join("cur/3.c.h,S=2,W=3:2,F"), b"c\n").unwrap();
        fs::write(d.path().join("new/4.d.h,S=2,W=3"), b"d\n").unwrap();
        let md = open(d.path()).unwrap();
        md.update(&[0], &[1, 2]).unwrap();
        let mut cur: Vec<String> = fs::read_dir(d.path().join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        cur.sort();
        assert_eq!(cur, ["2.b.h,S=2,W=3:2,S", "3.c.h,S=2,W=3:2,FS"]);
        let new: Vec<_> = fs::read_dir(d.path().join("new")).unwrap().collect();
        assert_eq!(new.len(), 1, "untouched message stays in new/");
        drop(md);
        let again = scan(d.path()).unwrap();
        let uids: Vec<&str> = again.iter().map(|m| m.uid.as_str()).collect();
        assert_eq!(uids, ["2.b.h", "3.c.h", "4.d.h"]);
    }
}
