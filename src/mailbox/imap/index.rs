//! A folder's index, `smtpd-cache` beside `dovecot-uidlist`: for each message (by base name) its
//! UID, its IMAP size and INTERNALDATE (which never change for a Maildir file), its flag letters
//! as last seen and the mod-sequence (RFC 7162) of its last change; the folder's HIGHESTMODSEQ;
//! and the last expunges as (mod-sequence, UID), for QRESYNC's VANISHED (EARLIER).
//!
//! With it a folder is listed by reading its directories, the uidlist and this file, without a
//! `stat` or a read per message, also after a restart. A message whose letters in `cur/` differ
//! from the index (changed by any program: another session, Dovecot, mutt, POP3), a new message
//! and an expunge get a new mod-sequence, one above HIGHESTMODSEQ, and only under the uidlist's
//! dotlock, which Dovecot takes too: so mod-sequences only grow, across sessions, processes and
//! restarts. A missing, unreadable or stale index (version 1, or another UIDVALIDITY) is rebuilt
//! from the files, never an error: it then starts at the larger of the old HIGHESTMODSEQ + 1 and
//! the clock in microseconds (so it stays above what a lost index may have handed out), and the
//! expunges before it count as forgotten. Written to a unique temporary name and renamed, so
//! concurrent readers never see half a file.
//!
//! ```text
//! smtpd-cache 2 V<uidvalidity> H<highest modseq> F<expunges at or below it are forgotten>
//! S <the directories' and the uidlist's stamps when a listing matched this index exactly>
//! <uid> <modseq> <size> <internaldate> <letters or -> <base>
//! X <modseq> <uid>
//! ```
//! Hand-written: a line format this small needs no serde, and it keeps version 1's shape.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

pub const FILE: &str = "smtpd-cache";
const V1: &str = "smtpd-cache 1";
const V2: &str = "smtpd-cache 2";

/// What the index keeps of one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub uid: u32,
    pub modseq: u64,
    /// Octets with CRLF line ends.
    pub size: u64,
    /// The file's modification time, Unix seconds.
    pub internal: i64,
    /// The letters after `:2,` when the modseq was given.
    pub letters: String,
}

/// One message as the folder's files show it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen<'a> {
    pub uid: u32,
    pub base: &'a str,
    pub letters: &'a str,
    pub size: u64,
    pub internal: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Index {
    /// 0: not an index of this folder yet (missing, version 1).
    pub uidvalidity: u32,
    pub highest: u64,
    /// Expunges with a mod-sequence at or below this are not listed (trimmed, or older than the
    /// index).
    pub forgotten: u64,
    pub entries: HashMap<String, Entry>,
    /// Ascending by mod-sequence.
    pub expunged: Vec<(u64, u32)>,
    /// The folder's directories and uidlist as they were when a listing matched this index
    /// exactly (`S` line; [`crate::mailbox::imap::folder`] makes and compares it): while they
    /// are still so, the folder is listed from the index alone. Cleared by every change.
    pub listed: Option<String>,
    /// This is what the file holds (read from it or written to it, not changed since). Every
    /// change that is saved raises `highest`, so the file's header then tells whether it still
    /// is: see [`Index::refreshed`].
    pub on_disk: bool,
}

/// Where a new index starts: the clock in microseconds (about 2^51 today, far below the
/// 2^63 of RFC 7162), above the old index's values unless that one counted more than a
/// change per microsecond.
fn clock_floor() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(1, |d| d.as_micros() as u64)
}

/// A base name that can be a last field of a line.
fn plain(base: &str) -> bool {
    !base.is_empty() && !base.contains(['\n', '\r', '/'])
}

impl Index {
    /// The index of the folder at `dir` (empty when missing or unreadable; a version 1 file
    /// gives its sizes and dates, with no UIDVALIDITY, so it is rebuilt).
    pub fn load(dir: &Path) -> Index {
        match fs::read_to_string(dir.join(FILE)) {
            Ok(text) => Index::parse(&text),
            Err(_) => Index::default(),
        }
    }

    /// (UIDVALIDITY, HIGHESTMODSEQ, forgotten) of a version 2 header line.
    fn parse_header(line: &str) -> Option<(u32, u64, u64)> {
        let rest = line.strip_prefix(V2)?;
        let (mut v, mut h, mut f) = (0u32, 0u64, 0u64);
        for field in rest.split_whitespace() {
            let (k, val) = field.split_at(1);
            match (k, val.parse::<u64>()) {
                ("V", Ok(x)) => v = x.min(u64::from(u32::MAX)) as u32,
                ("H", Ok(x)) => h = x,
                ("F", Ok(x)) => f = x,
                _ => {}
            }
        }
        Some((v, h, f))
    }

    /// This index when the file of `dir` still holds it (its header is this one's: any saved
    /// change raises HIGHESTMODSEQ), else the file read again. Saves reading 10,000 lines
    /// per command on a big folder.
    pub fn refreshed(self, dir: &Path) -> Index {
        if self.is_the_file(dir) {
            return self;
        }
        Index::load(dir)
    }

    /// The file of `dir` still holds this index (its header is this one's).
    pub fn is_the_file(&self, dir: &Path) -> bool {
        if !self.on_disk || self.uidvalidity == 0 {
            return false;
        }
        let mut head = [0u8; 160];
        let n = fs::File::open(dir.join(FILE))
            .and_then(|mut f| io::Read::read(&mut f, &mut head))
            .unwrap_or(0);
        let line = String::from_utf8_lossy(&head[..n]);
        let first = line.split('\n').next().unwrap_or_default();
        line.contains('\n')
            && Index::parse_header(first) == Some((self.uidvalidity, self.highest, self.forgotten))
    }

    pub fn parse(text: &str) -> Index {
        let mut lines = text.lines();
        let mut idx = Index::default();
        match lines.next() {
            Some(V1) => {
                for l in lines {
                    let mut it = l.splitn(3, ' ');
                    let (Some(size), Some(internal), Some(base)) =
                        (it.next(), it.next(), it.next())
                    else {
                        continue;
                    };
                    if let (Ok(size), Ok(internal)) = (size.parse(), internal.parse())
                        && plain(base)
                    {
                        idx.entries.insert(
                            base.to_string(),
                            Entry {
                                uid: 0,
                                modseq: 0,
                                size,
                                internal,
                                letters: String::new(),
                            },
                        );
                    }
                }
                return idx;
            }
            Some(h) if h.starts_with(V2) => {
                if let Some((v, high, f)) = Index::parse_header(h) {
                    (idx.uidvalidity, idx.highest, idx.forgotten) = (v, high, f);
                }
            }
            _ => return idx,
        }
        for l in lines {
            if let Some(x) = l.strip_prefix("S ") {
                idx.listed = Some(x.to_string());
                continue;
            }
            if let Some(x) = l.strip_prefix("X ") {
                let mut it = x.split(' ');
                if let (Some(Ok(m)), Some(Ok(u))) = (
                    it.next().map(str::parse::<u64>),
                    it.next().map(str::parse::<u32>),
                ) {
                    idx.expunged.push((m, u));
                }
                continue;
            }
            let mut it = l.splitn(6, ' ');
            let (Some(uid), Some(modseq), Some(size), Some(internal), Some(letters), Some(base)) = (
                it.next(),
                it.next(),
                it.next(),
                it.next(),
                it.next(),
                it.next(),
            ) else {
                continue;
            };
            let (Ok(uid), Ok(modseq), Ok(size), Ok(internal)) =
                (uid.parse(), modseq.parse(), size.parse(), internal.parse())
            else {
                continue;
            };
            if !plain(base) {
                continue;
            }
            let letters = if letters == "-" { "" } else { letters };
            idx.highest = idx.highest.max(modseq);
            idx.entries.insert(
                base.to_string(),
                Entry {
                    uid,
                    modseq,
                    size,
                    internal,
                    letters: letters.to_string(),
                },
            );
        }
        idx.expunged.sort_unstable();
        let header = idx.highest;
        if let Some(&(m, _)) = idx.expunged.last() {
            idx.highest = idx.highest.max(m);
        }
        // A body above its header (a hand-edited file) is not trusted by `refreshed`.
        idx.on_disk = idx.highest == header;
        idx
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(self.entries.len() * 80 + 64);
        out.push_str(&format!(
            "{V2} V{} H{} F{}\n",
            self.uidvalidity, self.highest, self.forgotten
        ));
        if let Some(l) = &self.listed {
            out.push_str(&format!("S {l}\n"));
        }
        let mut sorted: Vec<(&String, &Entry)> = self.entries.iter().collect();
        sorted.sort_unstable_by_key(|(b, e)| (e.uid, b.as_str()));
        for (base, e) in sorted {
            let letters = if e.letters.is_empty() {
                "-"
            } else {
                &e.letters
            };
            out.push_str(&format!(
                "{} {} {} {} {letters} {base}\n",
                e.uid, e.modseq, e.size, e.internal
            ));
        }
        for (m, u) in &self.expunged {
            out.push_str(&format!("X {m} {u}\n"));
        }
        out
    }

    /// Replaces the index file of `dir`.
    pub fn save(&mut self, dir: &Path) -> io::Result<()> {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let tmp = dir.join(format!(
            ".{FILE}.{}.{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let written = fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(self.render().as_bytes()))
            .and_then(|()| fs::rename(&tmp, dir.join(FILE)));
        match written {
            Ok(()) => self.on_disk = true,
            Err(_) => {
                let _ = fs::remove_file(&tmp);
            }
        }
        written
    }

    /// Whether message `s` is in the index as it is now.
    pub fn knows(&self, s: &Seen<'_>) -> bool {
        self.entries
            .get(s.base)
            .is_some_and(|e| e.uid == s.uid && e.letters == s.letters)
    }

    /// Whether [`Index::reconcile`] would change anything.
    pub fn is_behind(&self, uidvalidity: u32, now: &[Seen<'_>]) -> bool {
        self.uidvalidity != uidvalidity
            || self.entries.len() != now.len()
            || !now.iter().all(|s| self.knows(s))
    }

    /// Brings the index in line with the folder's messages `now` (its complete list): new or
    /// changed messages and the expunge of those missing get one new mod-sequence; at most
    /// `keep` expunges are remembered. Returns whether anything changed.
    pub fn reconcile(&mut self, uidvalidity: u32, now: &[Seen<'_>], keep: usize) -> bool {
        if self.uidvalidity != uidvalidity {
            let start = (self.highest + 1).max(clock_floor());
            let old = std::mem::take(&mut self.entries);
            *self = Index {
                uidvalidity,
                highest: start,
                forgotten: start,
                entries: HashMap::with_capacity(now.len()),
                expunged: Vec::new(),
                listed: None,
                on_disk: false,
            };
            for s in now {
                let (size, internal) = old
                    .get(s.base)
                    .map_or((s.size, s.internal), |e| (e.size, e.internal));
                self.entries.insert(
                    s.base.to_string(),
                    Entry {
                        uid: s.uid,
                        modseq: start,
                        size,
                        internal,
                        letters: s.letters.to_string(),
                    },
                );
            }
            return true;
        }
        let changed: Vec<&Seen<'_>> = now.iter().filter(|s| !self.knows(s)).collect();
        let present: HashSet<&str> = now.iter().map(|s| s.base).collect();
        let gone: Vec<String> = self
            .entries
            .keys()
            .filter(|b| !present.contains(b.as_str()))
            .cloned()
            .collect();
        if changed.is_empty() && gone.is_empty() {
            return false;
        }
        let m = self.highest + 1;
        self.highest = m;
        self.on_disk = false;
        self.listed = None;
        for s in changed {
            self.entries.insert(
                s.base.to_string(),
                Entry {
                    uid: s.uid,
                    modseq: m,
                    size: s.size,
                    internal: s.internal,
                    letters: s.letters.to_string(),
                },
            );
        }
        let mut uids: Vec<u32> = gone
            .iter()
            .filter_map(|b| self.entries.remove(b))
            .map(|e| e.uid)
            .collect();
        uids.sort_unstable();
        self.expunged.extend(uids.into_iter().map(|u| (m, u)));
        self.trim(keep);
        true
    }

    /// Gives the messages `changed` (by base name: their new letters) one new mod-sequence, which
    /// it returns; bases the index does not hold are left out.
    pub fn bump(&mut self, changed: &[(&str, &str)]) -> Option<u64> {
        if !changed.iter().any(|(b, _)| self.entries.contains_key(*b)) {
            return None;
        }
        let m = self.highest + 1;
        self.highest = m;
        self.on_disk = false;
        self.listed = None;
        for (b, letters) in changed {
            if let Some(e) = self.entries.get_mut(*b) {
                e.modseq = m;
                e.letters = letters.to_string();
            }
        }
        Some(m)
    }

    /// Records the expunge of these base names under one new mod-sequence.
    pub fn forget(&mut self, gone: &[&str], keep: usize) -> Option<u64> {
        let mut uids: Vec<u32> = gone
            .iter()
            .filter_map(|b| self.entries.remove(*b))
            .map(|e| e.uid)
            .collect();
        if uids.is_empty() {
            return None;
        }
        uids.sort_unstable();
        let m = self.highest + 1;
        self.highest = m;
        self.on_disk = false;
        self.listed = None;
        self.expunged.extend(uids.into_iter().map(|u| (m, u)));
        self.trim(keep);
        Some(m)
    }

    fn trim(&mut self, keep: usize) {
        if self.expunged.len() > keep {
            let cut = self.expunged.len() - keep;
            if let Some(&(m, _)) = self.expunged.get(cut - 1) {
                self.forgotten = self.forgotten.max(m);
            }
            self.expunged.drain(..cut);
            // One mod-sequence is forgotten whole or not at all.
            let f = self.forgotten;
            self.expunged.retain(|&(m, _)| m > f);
        }
    }

    /// The UIDs expunged after mod-sequence `since`, ascending; `None` when some of those may
    /// have been forgotten (the caller then answers conservatively, RFC 7162 section 3.2.5.1).
    pub fn expunged_since(&self, since: u64) -> Option<Vec<u32>> {
        if since < self.forgotten {
            return None;
        }
        let mut uids: Vec<u32> = self
            .expunged
            .iter()
            .filter(|&&(m, _)| m > since)
            .map(|&(_, u)| u)
            .collect();
        uids.sort_unstable();
        uids.dedup();
        Some(uids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen<'a>(uid: u32, base: &'a str, letters: &'a str) -> Seen<'a> {
        Seen {
            uid,
            base,
            letters,
            size: 10 + u64::from(uid),
            internal: 1_700_000_000,
        }
    }

    #[test]
    fn round_trip_and_bad_files_are_empty() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(Index::load(d.path()), Index::default());
        let mut i = Index::default();
        let now = [
            seen(1, "a b c", ""),
            seen(2, "1700000001.M1P1Q1.h,S=5", "FS"),
        ];
        assert!(i.reconcile(7, &now, 10));
        assert!(i.forget(&["a b c"], 10).is_some());
        i.save(d.path()).unwrap();
        assert_eq!(Index::load(d.path()), i);
        // The listing stamp round-trips, and any change clears it.
        i.listed = Some("n1.2,3.4,5,6,7 x9".into());
        i.save(d.path()).unwrap();
        assert_eq!(Index::load(d.path()), i);
        let mut j = i.clone();
        assert!(j.bump(&[("1700000001.M1P1Q1.h,S=5", "S")]).is_some());
        assert_eq!(j.listed, None);
        // No temporary files are left.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
        fs::write(d.path().join(FILE), "something else\n1 2 x\n").unwrap();
        assert_eq!(Index::load(d.path()), Index::default());
        // Version 1 keeps its sizes but is stale.
        fs::write(d.path().join(FILE), format!("{V1}\nx 2 a\n3 4 b\n5\n")).unwrap();
        let v1 = Index::load(d.path());
        assert_eq!(v1.entries.len(), 1);
        assert_eq!(v1.entries["b"].size, 3);
        assert!(v1.is_behind(7, &[seen(1, "b", "")]));
    }

    #[test]
    fn a_saved_index_is_trusted_until_the_file_moves_on() {
        let d = tempfile::tempdir().unwrap();
        let mut i = Index::default();
        i.reconcile(7, &[seen(1, "a", "")], 10);
        assert!(!i.on_disk);
        i.save(d.path()).unwrap();
        assert!(i.on_disk);
        // Another writer's change: a new header, so the file is read again.
        let mut other = Index::load(d.path());
        other.bump(&[("a", "S")]);
        other.save(d.path()).unwrap();
        let mut mine = i.clone();
        mine.entries.clear();
        let got = mine.refreshed(d.path());
        assert_eq!(got.entries["a"].letters, "S");
        // Unchanged file: this copy is kept (the cleared entries show it was not re-read).
        let mut kept = got.clone();
        kept.entries.clear();
        assert!(kept.clone().refreshed(d.path()).entries.is_empty());
        // Changed in memory only: never trusted.
        let mut unsaved = got.clone();
        unsaved.bump(&[("a", "F")]);
        unsaved.highest -= 1;
        assert_eq!(unsaved.refreshed(d.path()).entries["a"].letters, "S");
    }

    #[test]
    fn each_change_gets_a_larger_modseq_and_expunges_are_listed() {
        let mut i = Index::default();
        let a = [seen(1, "a", ""), seen(2, "b", ""), seen(3, "c", "")];
        assert!(i.reconcile(7, &a, 2));
        let start = i.highest;
        assert!(
            start >= 1_700_000_000_000,
            "a new index starts at the clock"
        );
        assert!(i.entries.values().all(|e| e.modseq == start));
        assert!(!i.is_behind(7, &a));
        assert!(!i.reconcile(7, &a, 2));
        // b flagged elsewhere, c expunged, d delivered: one new modseq.
        let b = [seen(1, "a", ""), seen(2, "b", "F"), seen(4, "d", "")];
        assert!(i.is_behind(7, &b));
        assert!(i.reconcile(7, &b, 2));
        assert_eq!(i.highest, start + 1);
        assert_eq!(i.entries["b"].modseq, start + 1);
        assert_eq!(i.entries["a"].modseq, start);
        assert_eq!(i.expunged_since(start), Some(vec![3]));
        assert_eq!(i.expunged_since(start + 1), Some(vec![]));
        assert_eq!(i.expunged_since(start - 1), None, "older than the index");
        assert_eq!(i.bump(&[("a", "S")]), Some(start + 2));
        assert_eq!(i.bump(&[("zz", "S")]), None);
        assert_eq!(i.forget(&["a"], 2), Some(start + 3));
        assert_eq!(i.forget(&["d"], 2), Some(start + 4));
        // Only two expunges kept: the first is forgotten, and said so.
        assert_eq!(i.expunged, [(start + 3, 1), (start + 4, 4)]);
        assert_eq!(i.forgotten, start + 1);
        assert_eq!(i.expunged_since(start), None);
        assert_eq!(i.expunged_since(start + 1), Some(vec![1, 4]));
        // Another UIDVALIDITY: rebuilt above the old HIGHESTMODSEQ.
        let old = i.highest;
        assert!(i.reconcile(8, &[seen(1, "b", "F")], 2));
        assert!(i.highest > old);
        assert!(i.expunged.is_empty());
        assert_eq!(i.expunged_since(old), None);
    }
}
