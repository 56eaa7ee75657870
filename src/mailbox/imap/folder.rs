//! One IMAP folder: a Maildir directory (INBOX or a `.Name` subfolder), its messages in UID
//! order with their flags, kept in step with the files and with `dovecot-uidlist`. A session
//! holds one [`Folder`] while a folder is selected; [`Folder::sync`] brings it up to date and says
//! what changed (for EXISTS / EXPUNGE / FETCH), rescanning only when `new/` or `cur/` changed.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::flags::{Flags, base_of};
use super::uidlist::{self, Lock, UidList};
use super::{StoreError, io_at};
use super::{cache, keywords};
use crate::wire::WireSize;

/// How long to wait for another holder of the uidlist lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

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
}

/// What a sync found since the last one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sequence numbers to report as EXPUNGE, in the order to send them.
    pub expunged: Vec<u32>,
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
    stamp: Option<(SystemTime, SystemTime)>,
    /// Size and INTERNALDATE by base name, from `smtpd-cache` and kept up to date with it.
    cache: HashMap<String, cache::Entry>,
}

impl Folder {
    /// Opens the Maildir at `dir`; unless `read_only`, messages in `new/` move to `cur/`.
    pub fn open(dir: &Path, read_only: bool) -> Result<Folder, StoreError> {
        let mut f = Folder {
            dir: dir.to_path_buf(),
            uidvalidity: 0,
            next_uid: 1,
            msgs: Vec::new(),
            keywords: Vec::new(),
            read_only,
            stamp: None,
            cache: cache::load(dir),
        };
        f.rescan()?;
        Ok(f)
    }

    /// The 1-based sequence number of `uid`.
    pub fn seq_of(&self, uid: u32) -> Option<u32> {
        self.msgs
            .binary_search_by_key(&uid, |m| m.uid)
            .ok()
            .map(|i| i as u32 + 1)
    }

    /// Brings the view up to date with the files.
    pub fn sync(&mut self) -> Result<Changes, StoreError> {
        if !self.changed_on_disk() {
            return Ok(Changes::default());
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
                None => changes.expunged.push(kept + 1),
                Some(&i) => {
                    kept += 1;
                    let now = &mut self.msgs[i];
                    now.recent |= m.recent;
                    if now.flags != m.flags {
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
        let now = SystemTime::now();
        let fresh = |t: SystemTime| {
            now.duration_since(t)
                .map_or(true, |d| d < Duration::from_secs(2))
        };
        match (mtime(&self.dir.join("new")), mtime(&self.dir.join("cur"))) {
            // A directory changed within the clock's granularity may change again unseen.
            (Some(n), Some(c)) => n != new || c != cur || fresh(n) || fresh(c),
            _ => true,
        }
    }

    fn rescan(&mut self) -> Result<(), StoreError> {
        let stamp = (mtime(&self.dir.join("new")), mtime(&self.dir.join("cur")));
        let mut files: Vec<(String, PathBuf, bool)> = Vec::new();
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
        let by_base: HashMap<&str, (&str, &PathBuf)> = files
            .iter()
            .map(|(n, p, _)| (base_of(n), (n.as_str(), p)))
            .collect();
        let list = self.uidlist_for(&by_base)?;
        self.keywords = keywords::load(&self.dir);
        self.uidvalidity = list.uidvalidity;
        self.next_uid = list.next_uid;
        let mut msgs = Vec::with_capacity(by_base.len());
        let mut dirty = false;
        for r in &list.records {
            let Some(&(name, path)) = by_base.get(r.base.as_str()) else {
                continue;
            };
            let entry = match self.cache.get(r.base.as_str()) {
                Some(&e) => e,
                None => {
                    let Some(e) = entry_of(path, &r.base)? else {
                        continue;
                    };
                    self.cache.insert(r.base.clone(), e);
                    dirty = true;
                    e
                }
            };
            let (size, internal) = (entry.size, entry.internal);
            msgs.push(Msg {
                uid: r.uid,
                base: r.base.clone(),
                path: path.clone(),
                flags: Flags::from_name(name),
                recent: recent.contains(r.base.as_str()),
                size,
                internal,
            });
        }
        self.msgs = msgs;
        let before = self.cache.len();
        self.cache.retain(|b, _| by_base.contains_key(b.as_str()));
        if dirty || self.cache.len() != before {
            cache::save(&self.dir, &self.cache);
        }
        self.stamp = match stamp {
            (Some(n), Some(c)) => Some((n, c)),
            _ => None,
        };
        Ok(())
    }

    /// The uidlist with a UID for every file in `files`: read as is when it covers them all,
    /// else re-read under the lock, extended (oldest name first) and replaced.
    fn uidlist_for(&self, files: &HashMap<&str, (&str, &PathBuf)>) -> Result<UidList, StoreError> {
        if let Some(list) = uidlist::read(&self.dir)? {
            let known: std::collections::HashSet<&str> =
                list.records.iter().map(|r| r.base.as_str()).collect();
            if files.keys().all(|b| known.contains(b)) {
                return Ok(list);
            }
        }
        let lock = Lock::take(&self.dir, LOCK_WAIT)?;
        let mut list =
            uidlist::read(&self.dir)?.unwrap_or_else(|| UidList::fresh(SystemTime::now()));
        list.records.retain(|r| files.contains_key(r.base.as_str()));
        let known: std::collections::HashSet<String> =
            list.records.iter().map(|r| r.base.clone()).collect();
        let mut unknown: Vec<&str> = files
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

    /// Renames message `i` to carry `flags` (within `cur/`).
    pub fn set_flags(&mut self, i: usize, flags: Flags) -> Result<(), StoreError> {
        let Some(m) = self.msgs.get_mut(i) else {
            return Ok(());
        };
        if m.flags == flags {
            return Ok(());
        }
        let to = self
            .dir
            .join("cur")
            .join(format!("{}{}", m.base, flags.info()));
        match fs::rename(&m.path, &to) {
            Ok(()) => {}
            // Renamed by another process since the last sync: find it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let Some(now) = find(&self.dir, &m.base) else {
                    return Ok(());
                };
                fs::rename(&now, &to).map_err(io_at("rename", &now))?;
            }
            Err(e) => return Err(io_at("rename", &m.path)(e)),
        }
        m.path = to;
        m.flags = flags;
        Ok(())
    }

    /// Removes the messages whose index `pick` accepts; returns the EXPUNGE sequence numbers
    /// in the order to send them.
    pub fn expunge(&mut self, pick: impl Fn(usize, &Msg) -> bool) -> Result<Vec<u32>, StoreError> {
        let mut gone = Vec::new();
        let mut kept = Vec::with_capacity(self.msgs.len());
        let mut first_err = None;
        for (i, m) in std::mem::take(&mut self.msgs).into_iter().enumerate() {
            if !pick(i, &m) {
                kept.push(m);
                continue;
            }
            match fs::remove_file(&m.path) {
                Ok(()) => gone.push(kept.len() as u32 + 1),
                Err(e) if e.kind() == io::ErrorKind::NotFound => gone.push(kept.len() as u32 + 1),
                Err(e) => {
                    first_err.get_or_insert(io_at("delete", &m.path)(e));
                    kept.push(m);
                }
            }
        }
        self.msgs = kept;
        sync_dir(&self.dir.join("cur"));
        match first_err {
            Some(e) if gone.is_empty() => Err(e),
            _ => Ok(gone),
        }
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

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
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
fn entry_of(path: &Path, base: &str) -> Result<Option<cache::Entry>, StoreError> {
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
    Ok(Some(cache::Entry { size, internal }))
}

fn wire_size_of(path: &Path) -> io::Result<u64> {
    let bytes = fs::read(path)?;
    let mut w = WireSize::default();
    w.feed(&bytes);
    Ok(w.total())
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

#[cfg(test)]
#[path = "folder_tests.rs"]
mod tests;
