//! The IMAP engine's [`Store`] over the Maildir ([`MaildirAccount`]): the two sides' types meet
//! here, since the engine (`proto`) may not name the mailbox layer nor the mailbox layer the
//! engine. Keeps the engine's view of the selected folder in step with the folder.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::mailbox::MaildirStore;
use crate::mailbox::imap::{self as md, MaildirAccount};
use crate::proto::imap::store::{self as ps, Store};

pub struct ImapMaildir {
    inner: MaildirAccount,
    view: Vec<ps::Msg>,
    shared: Arc<Shared>,
}

/// What the connection driver reads of the store while the engine owns it.
#[derive(Debug, Default)]
pub struct Shared {
    /// Set when this session changed messages (flags, expunges, appends, copies), so the driver
    /// can tell other sessions on the account (their IDLE wakes at once); the driver clears it.
    pub changed: AtomicBool,
    /// The selected folder's directory (for inotify in IDLE).
    pub selected: Mutex<Option<PathBuf>>,
}

impl Shared {
    pub fn selected_dir(&self) -> Option<PathBuf> {
        self.selected
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
    fn set_selected(&self, dir: Option<PathBuf>) {
        *self.selected.lock().unwrap_or_else(PoisonError::into_inner) = dir;
    }
}

impl ImapMaildir {
    /// The account whose INBOX is the Maildir `root` (made with its special folders at the
    /// first login).
    pub fn open(
        root: &std::path::Path,
        names: Arc<MaildirStore>,
        opts: md::Options,
    ) -> Result<Self, md::StoreError> {
        Ok(ImapMaildir {
            inner: MaildirAccount::open_with(root, names, opts)?,
            view: Vec::new(),
            shared: Arc::default(),
        })
    }

    /// The state the driver reads while the engine owns the store.
    pub fn shared(&self) -> Arc<Shared> {
        Arc::clone(&self.shared)
    }

    fn mark<T>(&self, r: Result<T, ps::StoreError>) -> Result<T, ps::StoreError> {
        if r.is_ok() {
            self.shared.changed.store(true, Ordering::Relaxed);
        }
        r
    }

    fn refresh(&mut self) {
        self.view = self
            .inner
            .selected()
            .map_or(Vec::new(), |f| f.msgs.iter().map(msg).collect());
    }
}

const PAIRS: [(md::Flag, ps::Flag); 5] = [
    (md::Flag::Draft, ps::Flag::Draft),
    (md::Flag::Flagged, ps::Flag::Flagged),
    (md::Flag::Answered, ps::Flag::Answered),
    (md::Flag::Seen, ps::Flag::Seen),
    (md::Flag::Deleted, ps::Flag::Deleted),
];

fn flags(f: &md::Flags) -> ps::Flags {
    let mut out = ps::Flags::default();
    out.keywords = f.keywords();
    for (m, p) in PAIRS {
        if f.contains(m) {
            out.insert(p);
        }
    }
    out
}

fn msg(m: &md::Msg) -> ps::Msg {
    ps::Msg {
        uid: m.uid,
        flags: flags(&m.flags),
        recent: m.recent,
        size: m.size,
        internal: m.internal,
        modseq: m.modseq,
    }
}

/// The engine's flags and keywords over `f`, whose other letters are kept.
fn with_flags(f: md::Flags, set: ps::Flags) -> md::Flags {
    let mut f = f.with_keywords(set.keywords);
    for (m, p) in PAIRS {
        if set.contains(p) {
            f.insert(m);
        } else {
            f.remove(m);
        }
    }
    f
}

fn err(e: md::StoreError) -> ps::StoreError {
    match e {
        md::StoreError::BadName(why) => ps::StoreError::BadName(why),
        md::StoreError::NoSuchFolder => ps::StoreError::NoSuchFolder,
        md::StoreError::Exists => ps::StoreError::Exists,
        md::StoreError::Refused(why) => ps::StoreError::Refused(why),
        md::StoreError::Gone => ps::StoreError::Gone,
        e if e.is_disk_full() => ps::StoreError::DiskFull,
        e => ps::StoreError::Failed(e.to_string()),
    }
}

fn changes(c: md::Changes) -> ps::Changes {
    ps::Changes {
        expunged: c.expunged,
        vanished: c.vanished,
        exists: c.exists,
        flags: c.flags,
    }
}

impl Store for ImapMaildir {
    fn folders(&self) -> Result<Vec<ps::FolderInfo>, ps::StoreError> {
        let list = self.inner.folders().map_err(err)?;
        Ok(list
            .into_iter()
            .map(|f| ps::FolderInfo {
                name: f.name,
                special: f.special,
                has_children: f.has_children,
                subscribed: f.subscribed,
            })
            .collect())
    }
    fn create(&mut self, name: &str) -> Result<(), ps::StoreError> {
        self.inner.create(name).map_err(err)
    }
    fn delete(&mut self, name: &str) -> Result<(), ps::StoreError> {
        self.inner.delete(name).map_err(err)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), ps::StoreError> {
        self.inner.rename(from, to).map_err(err)
    }
    fn subscribe(&mut self, name: &str, on: bool) -> Result<(), ps::StoreError> {
        self.inner.subscribe(name, on).map_err(err)
    }
    fn subscriptions(&self) -> Result<Vec<String>, ps::StoreError> {
        Ok(self.inner.account.subscriptions())
    }
    fn status(&self, name: &str) -> Result<ps::Status, ps::StoreError> {
        let s = self.inner.status(name).map_err(err)?;
        Ok(ps::Status {
            messages: s.messages,
            recent: s.recent,
            uidnext: s.uidnext,
            uidvalidity: s.uidvalidity,
            unseen: s.unseen,
            deleted: s.deleted,
            size: s.size,
            highest_modseq: s.highest_modseq,
        })
    }
    fn append(
        &mut self,
        name: &str,
        body: &[u8],
        set: ps::Flags,
        keywords: &[&str],
        internal: Option<i64>,
    ) -> Result<(u32, u32), ps::StoreError> {
        let mut set = set;
        set.keywords = 0;
        let f = with_flags(md::Flags::default(), set);
        let r = self
            .inner
            .append(name, body, &f, keywords, internal)
            .map_err(err);
        self.mark(r)
    }
    fn select(&mut self, name: &str, read_only: bool) -> Result<(), ps::StoreError> {
        let r = self.inner.select(name, read_only).map_err(err);
        self.refresh();
        self.shared
            .set_selected(self.inner.selected().map(|f| f.dir.clone()));
        r
    }
    fn deselect(&mut self) {
        self.inner.deselect();
        self.view.clear();
        self.shared.set_selected(None);
    }
    fn selected(&self) -> Option<ps::Selected<'_>> {
        self.inner.selected().map(|f| ps::Selected {
            uidvalidity: f.uidvalidity,
            next_uid: f.next_uid,
            msgs: &self.view,
            keywords: &f.keywords,
            highest_modseq: f.highest_modseq(),
        })
    }
    fn sync(&mut self) -> Result<ps::Changes, ps::StoreError> {
        let was_asleep = self.inner.is_asleep();
        let c = self.inner.sync().map_err(err)?;
        if c != md::Changes::default() || was_asleep && !self.inner.is_asleep() {
            self.refresh();
        }
        Ok(changes(c))
    }
    fn sleep(&mut self) {
        self.inner.sleep();
        if self.inner.is_asleep() {
            self.view = Vec::new();
        }
    }
    fn wake(&mut self) -> Result<ps::Changes, ps::StoreError> {
        let c = self.inner.wake().map_err(err)?;
        self.refresh();
        Ok(changes(c))
    }
    fn keyword(&mut self, name: &str) -> Result<Option<u8>, ps::StoreError> {
        let i = self.inner.define_keyword(name).map_err(err)?;
        Ok(i.map(|i| i as u8))
    }
    fn store_flags(
        &mut self,
        changes: &[(usize, ps::Flags)],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<usize>, ps::StoreError> {
        let Some(f) = self.inner.selected() else {
            return Err(ps::StoreError::Gone);
        };
        let wanted: Vec<(usize, md::Flags)> = changes
            .iter()
            .filter_map(|&(i, set)| f.msgs.get(i).map(|m| (i, with_flags(m.flags.clone(), set))))
            .collect();
        let r = self
            .inner
            .store_flags(&wanted, unchanged_since)
            .map_err(err);
        // Whatever was done before a failure shows: the view follows the folder.
        self.refresh();
        self.mark(r)
    }
    fn expunge(
        &mut self,
        pick: &dyn Fn(usize, &ps::Msg) -> bool,
    ) -> Result<Vec<(u32, u32)>, ps::StoreError> {
        let view = &self.view;
        let r = self
            .inner
            .expunge(&|i, _| view.get(i).is_some_and(|m| pick(i, m)))
            .map_err(err);
        self.refresh();
        if r.as_ref().is_ok_and(|gone| !gone.is_empty()) {
            self.shared.changed.store(true, Ordering::Relaxed);
        }
        r
    }
    fn expunged_since(&self, since: u64) -> Option<Vec<u32>> {
        self.inner.selected()?.expunged_since(since)
    }
    fn read(&self, i: usize) -> Result<Vec<u8>, ps::StoreError> {
        self.inner.read(i).map_err(err)
    }
    fn file(&self, i: usize) -> Option<ps::MessageFile> {
        let f = self.inner.selected()?;
        let m = f.msgs.get(i)?;
        Some(ps::MessageFile {
            path: m.path.clone(),
            folder: f.dir.clone(),
            base: m.base.clone(),
            size: m.size,
        })
    }
    fn copy(
        &mut self,
        idx: &[usize],
        dest: &str,
    ) -> Result<(u32, Vec<(u32, u32)>), ps::StoreError> {
        let r = self.inner.copy(idx, dest).map_err(err);
        self.mark(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_keywords_map_both_ways() {
        let d = tempfile::tempdir().unwrap();
        for s in ["tmp", "new", "cur"] {
            std::fs::create_dir(d.path().join(s)).unwrap();
        }
        std::fs::write(d.path().join("cur/1700000001.M1P1Q1.h:2,PSa"), "m\n").unwrap();
        std::fs::write(d.path().join("dovecot-keywords"), "0 $Forwarded\n").unwrap();
        let names = Arc::new(MaildirStore::new(d.path(), "h"));
        let mut s = ImapMaildir::open(d.path(), names, md::Options::default()).unwrap();
        s.select("INBOX", false).unwrap();
        let sel = s.selected().unwrap();
        assert_eq!(sel.msgs.len(), 1);
        assert!(sel.msgs[0].flags.contains(ps::Flag::Seen));
        assert!(sel.msgs[0].flags.has_keyword(0));
        assert_eq!(sel.keywords, ["$Forwarded"]);
        let junk = s.keyword("Junk").unwrap().unwrap();
        assert_eq!(junk, 1);
        assert_eq!(s.keyword("$forwarded").unwrap(), Some(0));
        let mut f = ps::Flags::default();
        f.insert(ps::Flag::Flagged);
        f.set_keyword(junk, true);
        s.set_flags(0, f).unwrap();
        let names: Vec<String> = std::fs::read_dir(d.path().join("cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        // P (passed) is not an IMAP flag: kept.
        assert_eq!(names, ["1700000001.M1P1Q1.h:2,FPb"]);
        assert_eq!(
            std::fs::read_to_string(d.path().join("dovecot-keywords")).unwrap(),
            "0 $Forwarded\n1 Junk\n"
        );
        // COPY maps keywords by name: Junk is the first keyword of Archive.
        let (_, pairs) = s.copy(&[0], "Archive").unwrap();
        assert_eq!(pairs.len(), 1);
        assert_eq!(
            std::fs::read_to_string(d.path().join(".Archive/dovecot-keywords")).unwrap(),
            "0 Junk\n"
        );
        let copied: Vec<String> = std::fs::read_dir(d.path().join(".Archive/cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(copied.len(), 1);
        assert!(copied[0].ends_with(":2,FPa"), "{copied:?}");
        // APPEND names its keywords: defined in the destination.
        let mut seen = ps::Flags::default();
        seen.insert(ps::Flag::Seen);
        s.append("Sent", b"x\n", seen, &["$Forwarded", "Junk"], None)
            .unwrap();
        assert_eq!(
            std::fs::read_to_string(d.path().join(".Sent/dovecot-keywords")).unwrap(),
            "0 $Forwarded\n1 Junk\n"
        );
        let sent: Vec<String> = std::fs::read_dir(d.path().join(".Sent/cur"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(sent[0].ends_with(":2,Sab"), "{sent:?}");
        assert_eq!(s.selected().unwrap().msgs[0].flags, f);
        assert!(matches!(s.create("a/b"), Err(ps::StoreError::BadName(_))));
        assert!(matches!(
            s.select("Nope", false),
            Err(ps::StoreError::NoSuchFolder)
        ));
        assert!(s.selected().is_none());
    }
}
