//! Listing a folder from its index alone, as Dovecot does from its own index: when `new/`, `cur/`
//! and `dovecot-uidlist` have exactly the stamps (mtime and ctime in nanoseconds, size, link
//! count, inode) they had when a listing matched the index exactly, the files are what the
//! index says, so a SELECT reads neither the directories (100,000 entries: most of a warm
//! listing's time, hash lookups that miss the caches) nor the uidlist. The stamps are saved in
//! the index (its `S` line) only for a listing that began when neither directory had changed
//! within the timestamps' granularity (a later change then moves a stamp), that no directory
//! change overlapped, with nothing in `new/` and every name in `cur/` `<base>:2,<letters>`
//! (the name the index gives back). Any change to the index clears them.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use super::{DirStamp, Folder, Found, Msg};
use crate::mailbox::imap::flags::Flags;
use crate::mailbox::imap::index::Index;
use crate::mailbox::imap::uidlist::{self, Lock};

/// How long a listing waits for the uidlist lock to save its stamps (else the next one does).
const SAVE_WAIT: Duration = Duration::from_millis(200);

impl DirStamp {
    fn render(&self) -> String {
        format!(
            "{}.{},{}.{},{},{},{}",
            self.mtime.0, self.mtime.1, self.ctime.0, self.ctime.1, self.size, self.nlink, self.ino
        )
    }
}

/// The stamps of a folder's directories and uidlist, and whether a directory changed too
/// recently for its stamp to show the next change.
pub(super) struct Stamps {
    text: String,
    fresh: bool,
}

impl Folder {
    /// Changed within the timestamps' granularity before now: may change again unseen.
    pub(super) fn too_fresh(&self, new: &DirStamp, cur: &DirStamp) -> bool {
        let window = self.opts.mtime_granularity.unwrap_or_else(|| {
            if new.mtime.1 == 0 && cur.mtime.1 == 0 {
                Duration::from_secs(2)
            } else {
                Duration::from_millis(50)
            }
        });
        let now = SystemTime::now();
        new.is_fresh(now, window) || cur.is_fresh(now, window)
    }

    pub(super) fn stamps(&self) -> Option<Stamps> {
        self.stamps_with((
            DirStamp::of(&self.dir.join("new")),
            DirStamp::of(&self.dir.join("cur")),
        ))
    }

    /// [`Folder::stamps`] with `new/`'s and `cur/`'s just taken.
    pub(super) fn stamps_with(&self, dirs: (Option<DirStamp>, Option<DirStamp>)) -> Option<Stamps> {
        let (n, c) = (dirs.0?, dirs.1?);
        let u = DirStamp::of(&self.dir.join(uidlist::FILE))?;
        Some(Stamps {
            text: format!("n{} c{} u{}", n.render(), c.render(), u.render()),
            fresh: self.too_fresh(&n, &c),
        })
    }

    /// (next UID, the messages in UID order) from `idx` alone, when `stamps` are the index's.
    pub(super) fn listed_by_index(&self, idx: &Index, stamps: &Stamps) -> Option<(u32, Vec<Msg>)> {
        if stamps.fresh || idx.uidvalidity == 0 {
            return None;
        }
        let next_uid: u32 = idx
            .listed
            .as_deref()?
            .strip_prefix(stamps.text.as_str())?
            .strip_prefix(" x")?
            .parse()
            .ok()?;
        let cur = self.dir.join("cur");
        let mut msgs: Vec<Msg> = idx
            .entries
            .iter()
            .map(|(base, e)| {
                // One allocation for the path, which ends in the name.
                let mut path = cur.clone();
                path.push(format!("{base}:2,{}", e.letters));
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default();
                Msg {
                    uid: e.uid,
                    flags: Flags::from_name(name),
                    path,
                    base: base.clone(),
                    recent: false,
                    size: e.size,
                    internal: e.internal,
                    modseq: e.modseq,
                }
            })
            .collect();
        msgs.sort_unstable_by_key(|m| m.uid);
        Some((next_uid, msgs))
    }

    /// The `S` line for a listing of `files` (found as `found`, all of them in the index as
    /// listed) begun at `before`, when it may be trusted (see the module's text).
    pub(super) fn stable_line(
        &self,
        before: Option<&Stamps>,
        files: &[(String, PathBuf, bool)],
        found: &[Found],
        next_uid: u32,
    ) -> Option<String> {
        let line = line_of(before, next_uid)?;
        let before = before?;
        if files.len() != found.len()
            || files.iter().any(|f| f.2)
            || !found.iter().all(|f| {
                f.name
                    .get(f.base.len()..)
                    .is_some_and(|r| r.starts_with(":2,"))
            })
            || self.stamps().is_none_or(|now| now.text != before.text)
        {
            return None;
        }
        Some(line)
    }

    /// Saves the `S` line of such a listing in the index, which matches `found`, when it is not
    /// there yet and the index is still the file's: under the uidlist lock, as every index write.
    pub(super) fn save_stamps(
        &self,
        idx: &mut Index,
        before: Option<&Stamps>,
        files: &[(String, PathBuf, bool)],
        found: &[Found],
        next_uid: u32,
    ) {
        // Already saved (the usual case): without going over the messages again.
        if !idx.on_disk || idx.listed.is_some() && idx.listed == line_of(before, next_uid) {
            return;
        }
        let Some(line) = self.stable_line(before, files, found, next_uid) else {
            return;
        };
        let Ok(lock) = Lock::take(&self.dir, SAVE_WAIT) else {
            return;
        };
        if idx.is_the_file(&self.dir) {
            idx.listed = Some(line);
            if idx.save(&self.dir).is_err() {
                idx.listed = None;
            }
        }
        drop(lock);
    }
}

/// The `S` line of stamps taken before a listing, unless a directory was too fresh to trust.
fn line_of(before: Option<&Stamps>, next_uid: u32) -> Option<String> {
    before
        .filter(|b| !b.fresh)
        .map(|b| format!("{} x{next_uid}", b.text))
}
