//! Maildir delivery (cr.yp.to/proto/maildir.html, with Dovecot's `,S=` and `,W=` size hints):
//! write into `tmp/`, fsync the file, link or rename it into each recipient's `new/`, fsync each
//! `new/`. Only then is the message acknowledged. A failure leaves nothing in any `new/`.
//! Concurrent deliveries into one `new/` share its fsync ([`DirSync`], group commit).
//!
//! Layout: `<root>/<domain>/<local part>/{tmp,new,cur}`, made on first delivery.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::delivery::{DeliveryError, io_err};
use super::group_commit::DirSync;
use crate::wire::WireSize;

/// The Maildir tree under one root.
#[derive(Debug)]
pub struct MaildirStore {
    root: PathBuf,
    /// Host part of unique names, with `/` and `:` escaped as the Maildir rule asks.
    host: String,
    pid: u32,
    /// Maildirs known to have tmp/, new/ and cur/ (no stat calls for each delivery).
    ready: Mutex<HashSet<PathBuf>>,
    dirsync: Arc<DirSync>,
}

/// A message's unique name and short id, chosen before its file exists.
#[derive(Clone, Debug)]
pub struct Reservation {
    unique: String,
    /// Short id for logs and the Received: header.
    pub id: String,
}

/// Maildirs remembered as ready before the set is emptied (and rebuilt on demand).
const READY_CACHE: usize = 10_000;

/// Shared by every store of the process, so names stay unique across config reloads.
static SEQ: AtomicU64 = AtomicU64::new(0);

impl MaildirStore {
    /// A store under `root` whose new files end with `instance` (`[server] instance`; `/` and
    /// `:` written as `\057` and `\072`, as the Maildir spec says).
    pub fn new(root: impl Into<PathBuf>, instance: &str) -> Self {
        let host = instance
            .chars()
            .map(|c| match c {
                '/' => "\\057".to_string(),
                ':' => "\\072".to_string(),
                c if c.is_ascii_graphic() => c.to_string(),
                _ => "_".to_string(),
            })
            .collect();
        MaildirStore {
            root: root.into(),
            host,
            pid: std::process::id(),
            ready: Mutex::new(HashSet::new()),
            dirsync: Arc::new(DirSync::new()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `<root>/<domain>/<local>`; refuses names that would leave the root.
    pub fn maildir(&self, domain: &str, local: &str) -> Result<PathBuf, DeliveryError> {
        for name in [domain, local] {
            if name.is_empty()
                || name.starts_with('.')
                || name.contains('/')
                || name.contains('\0')
                || name.contains('\\')
            {
                return Err(DeliveryError::UnsafeName(name.to_string()));
            }
        }
        Ok(self.root.join(domain).join(local))
    }

    /// Makes `dir/{tmp,new,cur}` if missing, fsyncing each parent that gained an entry.
    pub fn ensure(&self, dir: &Path) -> Result<(), DeliveryError> {
        let ready = || self.ready.lock().unwrap_or_else(PoisonError::into_inner);
        if ready().contains(dir) {
            return Ok(());
        }
        self.make(dir)?;
        let mut set = ready();
        if set.len() >= READY_CACHE {
            set.clear();
        }
        set.insert(dir.to_path_buf());
        Ok(())
    }

    /// Makes the next delivery check (and re-make) `dir` instead of trusting the cache.
    pub fn forget(&self, dir: &Path) {
        self.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(dir);
    }

    fn make(&self, dir: &Path) -> Result<(), DeliveryError> {
        if dir.join("new").is_dir() && dir.join("tmp").is_dir() && dir.join("cur").is_dir() {
            return Ok(());
        }
        let mut builder = DirBuilder::new();
        builder.recursive(true).mode(0o700);
        for sub in ["tmp", "new", "cur"] {
            let p = dir.join(sub);
            builder.create(&p).map_err(io_err("create directory", &p))?;
        }
        // Make the new directory entries durable: the maildir and its parents up to the root.
        let mut d = dir.to_path_buf();
        sync_dir(&d)?;
        while d != self.root {
            match d.parent() {
                Some(p) if p.starts_with(&self.root) => {
                    d = p.to_path_buf();
                    sync_dir(&d)?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    /// A new unique name: `<secs>.M<usec>P<pid>Q<seq>.<host>`, and the short id.
    pub fn reserve(&self) -> Reservation {
        let (unique, id) = self.unique();
        Reservation { unique, id }
    }

    /// A new unique name alone (IMAP APPEND and COPY name their files with it).
    pub fn unique_name(&self) -> String {
        self.unique().0
    }

    fn unique(&self) -> (String, String) {
        let (now, seq) = stamp();
        let name = format!(
            "{}.M{}P{}Q{}.{}",
            now.as_secs(),
            now.subsec_micros(),
            self.pid,
            seq,
            self.host
        );
        (name, short_id(now, seq))
    }

    /// Opens a spool file in `first`'s `tmp/` (the maildir must exist: see [`Self::ensure`]).
    pub fn begin(&self, first: &Path) -> Result<Spool, DeliveryError> {
        self.begin_reserved(first, self.reserve())
    }

    fn begin_reserved(&self, first: &Path, r: Reservation) -> Result<Spool, DeliveryError> {
        let tmp_path = first.join("tmp").join(&r.unique);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp_path)
            .map_err(io_err("create", &tmp_path))?;
        Ok(Spool {
            file: Some(file),
            tmp_path,
            unique: r.unique,
            id: r.id,
            size: 0,
            wire: WireSize::default(),
            dirsync: Arc::clone(&self.dirsync),
            placed: false,
        })
    }

    /// Makes every maildir ready and opens the spool in the first one's `tmp/`. A maildir removed
    /// behind the store's back is made again.
    pub fn open(&self, maildirs: &[PathBuf], r: Reservation) -> Result<Spool, DeliveryError> {
        let Some(first) = maildirs.first() else {
            return Err(DeliveryError::NoRecipients);
        };
        for md in maildirs {
            self.ensure(md)?;
        }
        match self.begin_reserved(first, r.clone()) {
            Err(e) if e.is_io_kind(io::ErrorKind::NotFound) => {
                for md in maildirs {
                    self.forget(md);
                    self.ensure(md)?;
                }
                self.begin_reserved(first, r)
            }
            other => other,
        }
    }
}

/// The time and the next number of the process-wide sequence.
fn stamp() -> (std::time::Duration, u64) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now, SEQ.fetch_add(1, Ordering::Relaxed))
}

fn short_id(now: std::time::Duration, seq: u64) -> String {
    format!("{:X}{:X}", now.as_micros() & 0xFFFF_FFFF_FFFF, seq & 0xFFFF)
}

/// A new short id (the time in µs and a process-wide sequence, in hex): names a message in the
/// logs, its `Received:` header and the outbound queue.
pub fn new_id() -> String {
    let (now, seq) = stamp();
    short_id(now, seq)
}

fn closed(op: &'static str, path: &Path) -> DeliveryError {
    io_err(op, path)(io::Error::other("spool already closed")).into()
}

fn sync_dir(dir: &Path) -> Result<(), DeliveryError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))?;
    Ok(())
}

/// A message being written in `tmp/`. Dropped without [`Spool::commit`], it is removed.
#[derive(Debug)]
pub struct Spool {
    file: Option<File>,
    tmp_path: PathBuf,
    unique: String,
    /// Short id for logs and the Received: header.
    pub id: String,
    /// Octets written (LF line ends).
    pub size: u64,
    wire: WireSize,
    dirsync: Arc<DirSync>,
    /// The tmp file has been renamed away (Drop has nothing to remove).
    placed: bool,
}

impl Spool {
    pub fn write(&mut self, data: &[u8]) -> Result<(), DeliveryError> {
        let file = self
            .file
            .as_mut()
            .ok_or_else(|| closed("write", &self.tmp_path))?;
        file.write_all(data)
            .map_err(io_err("write", &self.tmp_path))?;
        self.size += data.len() as u64;
        self.wire.feed(data);
        Ok(())
    }

    /// The final file name: unique part plus Dovecot's size hints. `W=` is the size with CRLF
    /// line ends, i.e. what POP3 RETR sends (see [`crate::wire`]).
    pub fn final_name(&self) -> String {
        format!("{},S={},W={}", self.unique, self.size, self.wire.total())
    }

    /// Makes the message durable in every maildir's `new/` (each must exist; the first is the
    /// one whose `tmp/` holds the spool). Returns the delivered paths.
    pub fn commit(mut self, maildirs: &[PathBuf]) -> Result<Vec<PathBuf>, DeliveryError> {
        let file = self
            .file
            .take()
            .ok_or_else(|| closed("commit", &self.tmp_path))?;
        file.sync_all().map_err(io_err("fsync", &self.tmp_path))?;
        drop(file);
        crate::testing::stall_point("after_fsync");
        let name = self.final_name();
        let mut done: Vec<PathBuf> = Vec::new();
        let result = self.place_all(maildirs, &name, &mut done);
        if result.is_err() {
            // Leave nothing behind in any new/: a 4xx means the client sends it again.
            for p in &done {
                let _ = fs::remove_file(p);
            }
        }
        result.map(|_| done)
    }

    fn place_all(
        &mut self,
        maildirs: &[PathBuf],
        name: &str,
        done: &mut Vec<PathBuf>,
    ) -> Result<(), DeliveryError> {
        let Some((first, others)) = maildirs.split_first() else {
            return Ok(());
        };
        for md in others {
            let target = md.join("new").join(name);
            match fs::hard_link(&self.tmp_path, &target) {
                Ok(()) => {}
                Err(_) => copy_into(&self.tmp_path, md, name)?,
            }
            done.push(target);
            crate::testing::stall_point("between_copies");
        }
        let target = first.join("new").join(name);
        fs::rename(&self.tmp_path, &target).map_err(io_err("rename into", &target))?;
        self.placed = true;
        done.push(target);
        let mut synced: Vec<&Path> = Vec::new();
        for md in maildirs {
            if !synced.contains(&md.as_path()) {
                let new = md.join("new");
                self.dirsync
                    .sync(&new)
                    .map_err(io_err("fsync directory", &new))?;
                synced.push(md);
            }
        }
        Ok(())
    }
}

/// Removes files older than `max_age` from every `<root>/<domain>/<local>/tmp/` (the Maildir rule
/// says 36 hours): what a crash left between create and rename. Returns how many were removed.
pub fn clean_stale_tmp(root: &Path, max_age: std::time::Duration) -> usize {
    let now = SystemTime::now();
    let mut removed = 0;
    let dirs = |p: &Path| -> Vec<PathBuf> {
        fs::read_dir(p)
            .map(|it| {
                it.flatten()
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .map(|e| e.path())
                    .collect()
            })
            .unwrap_or_default()
    };
    for domain in dirs(root) {
        for maildir in dirs(&domain) {
            let Ok(files) = fs::read_dir(maildir.join("tmp")) else {
                continue;
            };
            for f in files.flatten() {
                let old = f
                    .metadata()
                    .ok()
                    .filter(|m| m.is_file())
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| now.duration_since(t).ok())
                    .is_some_and(|age| age > max_age);
                if old && fs::remove_file(f.path()).is_ok() {
                    removed += 1;
                }
            }
        }
    }
    removed
}

/// Fallback when a hard link is impossible (another file system): copy through `tmp/`.
fn copy_into(src: &Path, maildir: &Path, name: &str) -> Result<(), DeliveryError> {
    let tmp = maildir.join("tmp").join(name);
    let result = (|| {
        let mut out = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        let mut input = File::open(src).map_err(io_err("open", src))?;
        io::copy(&mut input, &mut out).map_err(io_err("copy to", &tmp))?;
        out.sync_all().map_err(io_err("fsync", &tmp))?;
        let target = maildir.join("new").join(name);
        fs::rename(&tmp, &target).map_err(io_err("rename into", &target))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    Ok(result?)
}

impl Drop for Spool {
    fn drop(&mut self) {
        if !self.placed {
            self.file = None;
            let _ = fs::remove_file(&self.tmp_path);
        }
    }
}

#[cfg(test)]
mod tests;
