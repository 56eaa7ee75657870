//! What changes a folder's files and index: STORE (flags as renames in `cur/`, one new
//! mod-sequence per command, UNCHANGEDSINCE checked against the index), EXPUNGE, and bringing
//! the index in line with the files; each under the uidlist lock.

use std::fs;
use std::io;

use tracing::warn;

use super::{Folder, Found, LOCK_WAIT, Msg, find, seen_of, sync_dir};
use crate::mailbox::imap::flags::Flags;
use crate::mailbox::imap::index::Index;
use crate::mailbox::imap::uidlist::{Lock, UidList};
use crate::mailbox::imap::{StoreError, io_at};

impl Folder {
    /// The index brought in line with the files under the uidlist lock, and the messages as
    /// listed then: our sessions change files only under that lock, so what they did before
    /// is seen, never undone by an older listing. Without the lock (a read-only Maildir, a lock
    /// held for too long) the index is brought in line with `found`, in memory only.
    pub(super) fn reconciled(
        &self,
        list: &UidList,
        found: Vec<Found>,
        idx: Index,
    ) -> Result<(Index, Vec<Found>), StoreError> {
        let keep = self.opts.expunges_kept;
        match Lock::take(&self.dir, LOCK_WAIT) {
            Ok(lock) => {
                let mut idx = idx.refreshed(&self.dir);
                let before = self.stamps();
                let names = self.list_files()?;
                let (found, _) = self.found(list, &super::by_base(&names), &idx)?;
                if idx.reconcile(list.uidvalidity, &seen_of(&found), keep) {
                    // The stamps of this listing go with it: no second write to save them.
                    idx.listed = self.stable_line(before.as_ref(), &names, &found, list.next_uid);
                    if let Err(e) = idx.save(&self.dir) {
                        warn!(folder = %self.dir.display(), error = %e, "imap index not saved; mod-sequences kept in memory");
                    }
                }
                drop(lock);
                Ok((idx, found))
            }
            Err(e) => {
                warn!(folder = %self.dir.display(), error = %e, "imap index not locked; mod-sequences kept in memory");
                let mut idx = idx;
                idx.reconcile(list.uidvalidity, &seen_of(&found), keep);
                Ok((idx, found))
            }
        }
    }

    /// The index as the file holds it now (under the lock), or this view's when the file is of
    /// another UIDVALIDITY.
    pub(super) fn fresh_index(&mut self) -> Index {
        let mine = std::mem::take(&mut self.index);
        let backup = (!mine.on_disk).then(|| mine.clone());
        let idx = mine.refreshed(&self.dir);
        if idx.uidvalidity == self.uidvalidity {
            idx
        } else {
            backup.unwrap_or(idx)
        }
    }

    pub(super) fn save_index(&mut self, mut idx: Index) {
        if let Err(e) = idx.save(&self.dir) {
            warn!(folder = %self.dir.display(), error = %e, "imap index not saved; mod-sequences kept in memory");
        }
        self.index = idx;
    }

    /// Renames message `i` to carry `flags` (within `cur/`).
    pub fn set_flags(&mut self, i: usize, flags: Flags) -> Result<(), StoreError> {
        self.store_flags(&[(i, flags)], None).map(|_| ())
    }

    /// Gives messages their new flags under one new mod-sequence, under the uidlist lock. With
    /// `unchanged_since` (STORE UNCHANGEDSINCE, RFC 7162), a message whose mod-sequence is
    /// above it is left as it is: those are returned.
    pub fn store_flags(
        &mut self,
        changes: &[(usize, Flags)],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<usize>, StoreError> {
        let lock = Lock::take(&self.dir, LOCK_WAIT)?;
        let mut idx = self.fresh_index();
        let mut refused = Vec::new();
        let mut done = Vec::new();
        let mut failed = None;
        for (i, flags) in changes {
            let Some(m) = self.msgs.get(*i) else {
                continue;
            };
            let now = idx
                .entries
                .get(&m.base)
                .filter(|e| e.uid == m.uid)
                .map_or(m.modseq, |e| e.modseq.max(m.modseq));
            if unchanged_since.is_some_and(|u| now > u) {
                refused.push(*i);
                continue;
            }
            match self.rename_flags(*i, flags.clone()) {
                Ok(true) => done.push(*i),
                Ok(false) => {}
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        let pairs: Vec<(String, String)> = done
            .iter()
            .filter_map(|&i| self.msgs.get(i))
            .map(|m| {
                (
                    m.base.clone(),
                    m.flags.info().trim_start_matches(":2,").to_string(),
                )
            })
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(b, l)| (b.as_str(), l.as_str()))
            .collect();
        if let Some(m) = idx.bump(&refs) {
            for &i in &done {
                if let Some(msg) = self.msgs.get_mut(i) {
                    msg.modseq = m;
                }
            }
            self.save_index(idx);
        } else {
            self.index = idx;
        }
        drop(lock);
        match failed {
            Some(e) => Err(e),
            None => Ok(refused),
        }
    }

    /// Renames message `i` to carry `flags`; false when there was nothing to do (the same
    /// flags, or the message is gone).
    fn rename_flags(&mut self, i: usize, flags: Flags) -> Result<bool, StoreError> {
        let Some(m) = self.msgs.get_mut(i) else {
            return Ok(false);
        };
        if m.flags == flags {
            return Ok(false);
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
                    return Ok(false);
                };
                fs::rename(&now, &to).map_err(io_at("rename", &now))?;
            }
            Err(e) => return Err(io_at("rename", &m.path)(e)),
        }
        m.path = to;
        m.flags = flags;
        Ok(true)
    }

    /// Removes the messages whose index `pick` accepts; returns the EXPUNGE sequence numbers
    /// in the order to send them, each with its UID. The expunges get one new mod-sequence.
    pub fn expunge(
        &mut self,
        pick: impl Fn(usize, &Msg) -> bool,
    ) -> Result<Vec<(u32, u32)>, StoreError> {
        let mut gone = Vec::new();
        let mut bases = Vec::new();
        let mut kept = Vec::with_capacity(self.msgs.len());
        let mut first_err = None;
        for (i, m) in std::mem::take(&mut self.msgs).into_iter().enumerate() {
            if !pick(i, &m) {
                kept.push(m);
                continue;
            }
            match fs::remove_file(&m.path) {
                Ok(()) => {
                    gone.push((kept.len() as u32 + 1, m.uid));
                    bases.push(m.base);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    gone.push((kept.len() as u32 + 1, m.uid));
                    bases.push(m.base);
                }
                Err(e) => {
                    first_err.get_or_insert(io_at("delete", &m.path)(e));
                    kept.push(m);
                }
            }
        }
        self.msgs = kept;
        sync_dir(&self.dir.join("cur"));
        if !bases.is_empty() {
            let refs: Vec<&str> = bases.iter().map(String::as_str).collect();
            // Without the lock the next sync (of any session) records them.
            if let Ok(lock) = Lock::take(&self.dir, LOCK_WAIT) {
                let mut idx = self.fresh_index();
                if idx.forget(&refs, self.opts.expunges_kept).is_some() {
                    self.save_index(idx);
                } else {
                    self.index = idx;
                }
                drop(lock);
            }
        }
        match first_err {
            Some(e) if gone.is_empty() => Err(e),
            _ => Ok(gone),
        }
    }
}
