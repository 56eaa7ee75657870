//! One IMAP folder: a Maildir directory (INBOX or a `.Name` subfolder), its messages in UID
//! order with their flags, kept in step with the files and with `dovecot-uidlist`. A session
//! holds one [`Folder`] while a folder is selected; [`Folder::sync`] brings it up to date and says
//! what changed (for EXISTS / EXPUNGE / FETCH), rescanning only when `new/` or `cur/` changed.
//! Mod-sequences (RFC 7162) and sizes come from the folder's [`Index`]. What changes the files
//! and the index (STORE, EXPUNGE, the index brought in line) is in `folder_write.rs`.
//!
//! "Changed" is decided from each directory's exact (mtime in nanoseconds, ctime, size, link
//! count, inode): unchanged, nothing is listed. A directory changed less than the timestamp
//! granularity ago may change again without its mtime moving (Linux stamps files from a clock
//! that ticks every few milliseconds), so it is listed again at each sync until that time has
//! passed: 50 ms where the file system keeps nanoseconds, 2 s where its timestamps are whole
//! seconds (seen as a zero nanosecond part on both directories), or `[imap]
//! mtime_granularity_ms` when set.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::flags::{Flags, base_of};
use super::index::{Index, Seen};
use super::keywords;
use super::uidlist::{self, Lock, UidList};
use super::{StoreError, io_at};
use crate::wire::WireSize;

/// How long to wait for another holder of the uidlist lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// How a folder keeps its index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// Expunges remembered for QRESYNC's VANISHED (EARLIER): `[imap] expunges_kept`.
    pub expunges_kept: usize,
    /// The directories' timestamp granularity (`[imap] mtime_granularity_ms`); `None`: found
    /// from the timestamps.
    pub mtime_granularity: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            expunges_kept: 10_000,
            mtime_granularity: None,
        }
    }
}

/// What a directory's metadata says about its entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DirStamp {
    mtime: (i64, i64),
    ctime: (i64, i64),
    size: u64,
    nlink: u64,
    ino: u64,
}

impl DirStamp {
    fn of(p: &Path) -> Option<DirStamp> {
        let m = fs::metadata(p).ok()?;
        Some(DirStamp {
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
            size: m.size(),
            nlink: m.nlink(),
            ino: m.ino(),
        })
    }

    /// Changed less than `window` before now (or in the future: another clock).
    fn is_fresh(&self, now: SystemTime, window: Duration) -> bool {
        let t = SystemTime::UNIX_EPOCH
            + Duration::new(
                self.mtime.0.max(0) as u64,
                self.mtime.1.clamp(0, 999_999_999) as u32,
            );
        now.duration_since(t).map_or(true, |d| d < window)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub uid: u32,
    /// The file name before `:2,`.
    pub base: String,
    pub path: PathBuf,
    pub flags: Flags,
    /// Moved out of `new/` by this session.
    pub recent: bool,
    /// Octets as IMAP sends them (CRLF line ends).
    pub size: u64,
    /// INTERNALDATE: the file's modification time, Unix seconds.
    pub internal: i64,
    /// The mod-sequence of its last change (RFC 7162).
    pub modseq: u64,
}

/// What a sync found since the last one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sequence numbers to report as EXPUNGE, in the order to send them.
    pub expunged: Vec<u32>,
    /// The UIDs of those, ascending (for VANISHED).
    pub vanished: Vec<u32>,
    /// The new message count when messages arrived.
    pub exists: Option<u32>,
    /// Sequence numbers (after the expunges) whose flags changed.
    pub flags: Vec<u32>,
}

#[derive(Debug)]
pub struct Folder {
    pub dir: PathBuf,
    pub uidvalidity: u32,
    pub next_uid: u32,
    pub msgs: Vec<Msg>,
    /// Keyword names by index (`dovecot-keywords`).
    pub keywords: Vec<String>,
    pub read_only: bool,
    stamp: Option<(DirStamp, DirStamp)>,
    /// The index as of the last sync (`smtpd-cache`).
    index: Index,
    opts: Options,
    /// Asleep (its session in IDLE): `msgs` and `index` are empty meanwhile.
    asleep: Option<sleep::Asleep>,
}

impl Folder {
    /// Opens the Maildir at `dir`; unless `read_only`, messages in `new/` move to `cur/`.
    pub fn open(dir: &Path, read_only: bool) -> Result<Folder, StoreError> {
        Folder::open_with(dir, read_only, Options::default())
    }

    pub fn open_with(dir: &Path, read_only: bool, opts: Options) -> Result<Folder, StoreError> {
        let mut f = Folder {
            dir: dir.to_path_buf(),
            uidvalidity: 0,
            next_uid: 1,
            msgs: Vec::new(),
            keywords: Vec::new(),
            read_only,
            stamp: None,
            index: Index::default(),
            opts,
            asleep: None,
        };
        f.rescan()?;
        Ok(f)
    }

    /// HIGHESTMODSEQ (RFC 7162).
    pub fn highest_modseq(&self) -> u64 {
        self.asleep_highest().unwrap_or(self.index.highest)
    }

    /// The UIDs expunged after mod-sequence `since` that this view no longer holds, ascending;
    /// `None` when the index no longer knows them all.
    pub fn expunged_since(&self, since: u64) -> Option<Vec<u32>> {
        let mut uids = self.index.expunged_since(since)?;
        uids.retain(|&u| self.seq_of(u).is_none());
        Some(uids)
    }

    /// The 1-based sequence number of `uid`.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Brings the view up to date with the files (an asleep folder wakes when they changed).
    pub fn sync(&mut self) -> Result<Changes, StoreError> {
        if !self.changed_on_disk() {
            return Ok(Changes::default());
        }
        if self.is_asleep() {
            return self.wake();
        }
        let old = std::mem::take(&mut self.msgs);
        self.rescan()?;
        let new: HashMap<u32, usize> = self
            .msgs
            .iter()
            .enumerate()
            .map(|(i, m)| (m.uid, i))
            .collect();
        let mut changes = Changes::default();
        let mut kept = 0u32;
        let mut old_max = 0;
        for m in &old {
            old_max = m.uid;
            match new.get(&m.uid) {
                None => {
                    changes.expunged.push(kept + 1);
                    changes.vanished.push(m.uid);
                }
                Some(&i) => {
                    kept += 1;
                    let now = &mut self.msgs[i];
                    now.recent |= m.recent;
                    if now.flags != m.flags || now.modseq != m.modseq {
                        changes.flags.push(kept);
                    }
                }
            }
        }
        if self.msgs.iter().any(|m| m.uid > old_max) || self.msgs.len() as u32 != kept {
            changes.exists = Some(self.msgs.len() as u32);
        }
        Ok(changes)
    }

    fn changed_on_disk(&self) -> bool {
        let Some((new, cur)) = self.stamp else {
            return true;
        };
        let (Some(n), Some(c)) = (
            DirStamp::of(&self.dir.join("new")),
            DirStamp::of(&self.dir.join("cur")),
        ) else {
            return true;
        };
        if n != new || c != cur {
            return true;
        }
        // A directory changed within the timestamps' granularity may change again unseen.
        self.too_fresh(&n, &c)
    }

    /// The message files of `new/` and `cur/`: (name, path, in new/).
    fn list_files(&self) -> Result<Vec<(String, PathBuf, bool)>, StoreError> {
        let mut files = Vec::new();
        for (sub, in_new) in [("new", true), ("cur", false)] {
            let d = self.dir.join(sub);
            let entries = fs::read_dir(&d).map_err(io_at("list", &d))?;
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with('.') {
                    continue;
                }
                files.push((name, e.path(), in_new));
            }
        }
        Ok(files)
    }

    /// The messages of `list` that `files` holds (by base name, [`by_base`]), with sizes and
    /// dates from `idx` (or this view's index, or the file), and how many of the files the list
    /// covers. One hash lookup a message into the files and one into the index: at 100,000
    /// messages these maps no longer fit in the caches and each lookup is a cache miss.
    fn found(
        &self,
        list: &UidList,
        files: &Files<'_>,
        idx: &Index,
    ) -> Result<(Vec<Found>, usize), StoreError> {
        let mut covered = vec![false; files.names.len()];
        let mut count = 0;
        let mut found = Vec::with_capacity(files.names.len());
        for r in &list.records {
            let Some(&k) = files.by_base.get(r.base.as_str()) else {
                continue;
            };
            if !std::mem::replace(&mut covered[k], true) {
                count += 1;
            }
            let (name, path, _) = &files.names[k];
            let indexed = idx.entries.get(r.base.as_str());
            let entry = indexed.or_else(|| self.index.entries.get(r.base.as_str()));
            let (size, internal) = match entry {
                Some(e) => (e.size, e.internal),
                None => match entry_of(path, &r.base)? {
                    Some(e) => e,
                    None => continue,
                },
            };
            let known = indexed
                .filter(|e| e.uid == r.uid && e.letters == letters_of(name))
                .map(|e| e.modseq);
            found.push(Found {
                uid: r.uid,
                base: r.base.clone(),
                name: name.clone(),
                path: path.clone(),
                size,
                internal,
                known,
            });
        }
        Ok((found, count))
    }

    fn rescan(&mut self) -> Result<(), StoreError> {
        let stamp = (
            DirStamp::of(&self.dir.join("new")),
            DirStamp::of(&self.dir.join("cur")),
        );
        let before = self.stamps_with(stamp);
        let mut idx = std::mem::take(&mut self.index).refreshed(&self.dir);
        if let Some((next_uid, msgs)) = before.as_ref().and_then(|b| self.listed_by_index(&idx, b))
        {
            self.keywords = keywords::load(&self.dir);
            self.uidvalidity = idx.uidvalidity;
            self.next_uid = next_uid;
            self.msgs = msgs;
            self.index = idx;
            self.stamp = match stamp {
                (Some(n), Some(c)) => Some((n, c)),
                _ => None,
            };
            return Ok(());
        }
        let mut files = self.list_files()?;
        let mut recent = std::collections::HashSet::new();
        if !self.read_only {
            for (name, path, in_new) in files.iter_mut().filter(|f| f.2) {
                let to = self.dir.join("cur").join(format!(
                    "{}{}",
                    base_of(name),
                    Flags::from_name(name).info()
                ));
                // Gone (another reader moved it), or cannot be moved (disk full, read-only
                // Maildir): left where it is, as Dovecot leaves it.
                if fs::rename(&*path, &to).is_ok() {
                    *name = to
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    *path = to;
                    *in_new = false;
                    recent.insert(base_of(name).to_string());
                }
            }
        }
        let names = files;
        let files = by_base(&names);
        self.keywords = keywords::load(&self.dir);
        // The uidlist as it is when it covers every file, else extended under its lock.
        let mut listed = None;
        if let Some(list) = uidlist::read(&self.dir)? {
            let (found, covered) = self.found(&list, &files, &idx)?;
            if covered == files.names.len() {
                listed = Some((list, found));
            }
        }
        let (list, mut found) = match listed {
            Some(l) => l,
            None => {
                let list = self.extend_uidlist(&files)?;
                let (found, _) = self.found(&list, &files, &idx)?;
                (list, found)
            }
        };
        self.uidvalidity = list.uidvalidity;
        self.next_uid = list.next_uid;
        if idx.uidvalidity != list.uidvalidity
            || idx.entries.len() != found.len()
            || found.iter().any(|f| f.known.is_none())
        {
            (idx, found) = self.reconciled(&list, found, idx)?;
            for f in &mut found {
                f.known = idx.entries.get(&f.base).map(|e| e.modseq);
            }
        }
        if idx.uidvalidity == list.uidvalidity {
            self.save_stamps(&mut idx, before.as_ref(), &names, &found, list.next_uid);
        }
        self.msgs = found
            .into_iter()
            .map(|f| Msg {
                modseq: f.known.unwrap_or(idx.highest),
                recent: recent.contains(&f.base),
                flags: Flags::from_name(&f.name),
                uid: f.uid,
                base: f.base,
                path: f.path,
                size: f.size,
                internal: f.internal,
            })
            .collect();
        self.index = idx;
        self.stamp = match stamp {
            (Some(n), Some(c)) => Some((n, c)),
            _ => None,
        };
        Ok(())
    }

    /// The uidlist re-read under its lock, with a UID for every file in `files` (oldest name
    /// first), and replaced.
    fn extend_uidlist(&self, files: &Files<'_>) -> Result<UidList, StoreError> {
        let lock = Lock::take(&self.dir, LOCK_WAIT)?;
        let mut list =
            uidlist::read(&self.dir)?.unwrap_or_else(|| UidList::fresh(SystemTime::now()));
        list.records
            .retain(|r| files.by_base.contains_key(r.base.as_str()));
        let known: std::collections::HashSet<String> =
            list.records.iter().map(|r| r.base.clone()).collect();
        let mut unknown: Vec<&str> = files
            .by_base
            .keys()
            .copied()
            .filter(|b| !known.contains(*b))
            .collect();
        unknown.sort_unstable_by(|a, b| natural_key(a).cmp(&natural_key(b)).then(a.cmp(b)));
        for b in unknown {
            list.assign(b);
        }
        lock.replace(&list)?;
        Ok(list)
    }

    /// The index of keyword `name`, added to `dovecot-keywords` when new (`None`: 26 already).
    pub fn define_keyword(&mut self, name: &str) -> Result<Option<usize>, StoreError> {
        let i =
            keywords::define(&self.dir, name).map_err(io_at("define a keyword in", &self.dir))?;
        self.keywords = keywords::load(&self.dir);
        Ok(i)
    }

    /// The stored bytes of message `i` (LF line ends), found again if renamed meanwhile.
    pub fn read(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        let Some(m) = self.msgs.get(i) else {
            return Err(StoreError::Gone);
        };
        match fs::read(&m.path) {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == io::ErrorKind::NotFound => match find(&self.dir, &m.base) {
                Some(p) => fs::read(&p).map_err(io_at("read", &p)),
                None => Err(StoreError::Gone),
            },
            Err(e) => Err(io_at("read", &m.path)(e)),
        }
    }
}

/// Opens a message file at `path`, or where its base name `base` is now in `folder` when it
/// was renamed meanwhile; `None` when it is gone.
pub fn open_message(path: &Path, folder: &Path, base: &str) -> io::Result<Option<fs::File>> {
    match fs::File::open(path) {
        Ok(f) => Ok(Some(f)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => match find(folder, base) {
            Some(p) => match fs::File::open(p) {
                Ok(f) => Ok(Some(f)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(e),
            },
            None => Ok(None),
        },
        Err(e) => Err(e),
    }
}

/// Where the message with this base name is now (`cur/` or `new/`).
fn find(dir: &Path, base: &str) -> Option<PathBuf> {
    for sub in ["cur", "new"] {
        let d = dir.join(sub);
        for e in fs::read_dir(&d).ok()?.flatten() {
            if base_of(&e.file_name().to_string_lossy()) == base {
                return Some(e.path());
            }
        }
    }
    None
}

/// One message as a listing found it.
struct Found {
    uid: u32,
    base: String,
    name: String,
    path: PathBuf,
    size: u64,
    internal: i64,
    /// Its mod-sequence when the index holds it with this UID and these letters.
    known: Option<u64>,
}

/// A folder's files (name, path, in `new/`) and where each base name is among them.
struct Files<'a> {
    names: &'a [(String, PathBuf, bool)],
    by_base: HashMap<&'a str, usize>,
}

fn by_base(names: &[(String, PathBuf, bool)]) -> Files<'_> {
    Files {
        names,
        by_base: names
            .iter()
            .enumerate()
            .map(|(i, (n, _, _))| (base_of(n), i))
            .collect(),
    }
}

fn seen_of(found: &[Found]) -> Vec<Seen<'_>> {
    found
        .iter()
        .map(|f| Seen {
            uid: f.uid,
            base: &f.base,
            letters: letters_of(&f.name),
            size: f.size,
            internal: f.internal,
        })
        .collect()
}

/// The flag letters of a file name (after `:2,`).
fn letters_of(name: &str) -> &str {
    let rest = &name[base_of(name).len()..];
    rest.strip_prefix(":2,").unwrap_or("")
}

pub(super) fn sync_dir(d: &Path) {
    if let Ok(f) = fs::File::open(d) {
        let _ = f.sync_all();
    }
}

/// The `,W=` hint (size with CRLF line ends) in a base name.
fn size_hint(base: &str) -> Option<u64> {
    base.split(',')
        .skip(1)
        .find_map(|p| p.strip_prefix("W="))
        .and_then(|w| w.parse().ok())
}

/// Size and INTERNALDATE of the message file at `path` (`None` when it is gone).
fn entry_of(path: &Path, base: &str) -> Result<Option<(u64, i64)>, StoreError> {
    let meta = match fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_at("stat", path)(e)),
    };
    let size = match size_hint(base) {
        Some(s) => s,
        None => match wire_size_of(path) {
            Ok(s) => s,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_at("read", path)(e)),
        },
    };
    let internal = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    Ok(Some((size, internal)))
}

/// Counted in chunks: a large message is not read into memory for its size.
fn wire_size_of(path: &Path) -> io::Result<u64> {
    use std::io::Read;
    let mut f = fs::File::open(path)?;
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

/// Delivery order of standard names: `<secs>.M<usec>...` compare by their numbers.
fn natural_key(base: &str) -> (u64, u64) {
    let mut it = base.split('.');
    let secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(u64::MAX);
    let usec = it
        .next()
        .and_then(|s| s.strip_prefix('M'))
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (secs, usec)
}

#[path = "folder_write.rs"]
mod write;

#[path = "folder_sleep.rs"]
mod sleep;

#[path = "folder_listed.rs"]
mod listed;

#[cfg(test)]
#[path = "folder_tests.rs"]
mod tests;
