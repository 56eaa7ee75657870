//! An in-memory [`Store`] for the engine's tests, shared between sessions like one account's
//! Maildir is: messages delivered, flagged or expunged through one handle show in the others at
//! their next sync.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};

use super::store::{
    Changes, Flag, Flags, FolderInfo, MessageFile, Msg, Selected, Status, Store, StoreError,
};

#[derive(Clone, Debug, Default)]
struct Folder {
    uidvalidity: u32,
    next_uid: u32,
    /// (message, bytes, still in new/).
    msgs: Vec<(Msg, Vec<u8>, bool)>,
    highest_modseq: u64,
    /// (modseq, UID) of each expunge.
    expunged: Vec<(u64, u32)>,
}

impl Folder {
    fn new(uidvalidity: u32) -> Folder {
        Folder {
            uidvalidity,
            next_uid: 1,
            msgs: Vec::new(),
            highest_modseq: 1,
            expunged: Vec::new(),
        }
    }

    fn next_modseq(&mut self) -> u64 {
        self.highest_modseq += 1;
        self.highest_modseq
    }
}

#[derive(Debug, Default)]
pub struct Account {
    folders: BTreeMap<String, Folder>,
    subscribed: BTreeSet<String>,
}

const SPECIAL: [(&str, &str); 5] = [
    ("Archive", "\\Archive"),
    ("Drafts", "\\Drafts"),
    ("Junk", "\\Junk"),
    ("Sent", "\\Sent"),
    ("Trash", "\\Trash"),
];

impl Account {
    /// INBOX and the special folders, subscribed.
    pub fn new() -> Arc<Mutex<Account>> {
        let mut a = Account::default();
        for (i, name) in std::iter::once("INBOX")
            .chain(SPECIAL.iter().map(|s| s.0))
            .enumerate()
        {
            a.folders
                .insert(name.to_string(), Folder::new(1000 + i as u32));
            a.subscribed.insert(name.to_string());
        }
        Arc::new(Mutex::new(a))
    }

    /// A delivery into INBOX (as into new/).
    pub fn deliver(&mut self, bytes: &[u8]) {
        self.add("INBOX", bytes, Flags::default(), 1_700_000_000, true);
    }

    fn add(
        &mut self,
        name: &str,
        bytes: &[u8],
        flags: Flags,
        internal: i64,
        new: bool,
    ) -> Option<(u32, u32)> {
        let f = self.folders.get_mut(name)?;
        let uid = f.next_uid;
        f.next_uid += 1;
        let size = crate::wire::wire_size(bytes);
        let modseq = f.next_modseq();
        f.msgs.push((
            Msg {
                uid,
                flags,
                recent: false,
                size,
                internal,
                modseq,
            },
            bytes.to_vec(),
            new,
        ));
        Some((f.uidvalidity, uid))
    }

    /// Whether folder `name` (as stored: modified UTF-7) exists.
    pub fn has_folder(&self, name: &str) -> bool {
        self.folders.contains_key(name)
    }

    /// A flag change by another program (Dovecot, mutt): a new modseq, seen at the next sync.
    pub fn set_flags(&mut self, name: &str, uid: u32, flags: Flags) {
        if let Some(f) = self.folders.get_mut(name) {
            let m = f.next_modseq();
            if let Some(e) = f.msgs.iter_mut().find(|e| e.0.uid == uid) {
                e.0.flags = flags;
                e.0.modseq = m;
            }
        }
    }

    /// Forgets the expunges up to now (as an index that kept too few of them).
    pub fn forget_expunges(&mut self, name: &str) {
        if let Some(f) = self.folders.get_mut(name) {
            f.expunged.clear();
        }
    }

    /// The flags of every message of `name`.
    pub fn flags(&self, name: &str) -> Vec<(u32, Flags)> {
        self.folders.get(name).map_or(Vec::new(), |f| {
            f.msgs.iter().map(|m| (m.0.uid, m.0.flags)).collect()
        })
    }
}

/// One session's handle: the shared account and the selected folder as this session sees it.
pub struct FakeStore {
    account: Arc<Mutex<Account>>,
    selected: Option<(String, u32, u32)>,
    view: Vec<Msg>,
    /// HIGHESTMODSEQ and the expunges as of the last sync.
    highest_modseq: u64,
    expunged: Vec<(u64, u32)>,
    /// Expunges before the first kept one are forgotten (the store answers `None`).
    forgotten: bool,
    /// Name a file per message (`msg<uid>`), as a store whose messages can be streamed.
    pub files: bool,
    /// Keyword names by index (this handle's only: the tests use keywords in one session).
    keywords: Vec<String>,
    /// Between [`Store::sleep`] and the next sync or wake, when the engine may not read the
    /// folder: [`Store::selected`] panics then, so the engine's tests find such a read.
    asleep: bool,
}

impl FakeStore {
    pub fn new(account: &Arc<Mutex<Account>>) -> FakeStore {
        FakeStore {
            account: Arc::clone(account),
            selected: None,
            view: Vec::new(),
            highest_modseq: 0,
            expunged: Vec::new(),
            forgotten: false,
            files: false,
            keywords: Vec::new(),
            asleep: false,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Account> {
        self.account.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn name(&self) -> Result<String, StoreError> {
        self.selected
            .as_ref()
            .map(|s| s.0.clone())
            .ok_or(StoreError::NoSuchFolder)
    }

    /// Brings the view in line with the account, as a Maildir sync does.
    fn resync(&mut self) -> Result<Changes, StoreError> {
        let Ok(name) = self.name() else {
            return Ok(Changes::default());
        };
        let acc = Arc::clone(&self.account);
        let a = acc.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(f) = a.folders.get(&name) else {
            return Ok(Changes::default());
        };
        let now: Vec<Msg> = f.msgs.iter().map(|m| m.0.clone()).collect();
        let next = f.next_uid;
        self.highest_modseq = f.highest_modseq;
        self.expunged = f.expunged.clone();
        drop(a);
        let mut ch = Changes::default();
        let mut kept = Vec::new();
        for old in std::mem::take(&mut self.view) {
            match now.iter().find(|m| m.uid == old.uid) {
                None => {
                    ch.expunged.push(kept.len() as u32 + 1);
                    ch.vanished.push(old.uid);
                }
                Some(m) => {
                    if m.flags != old.flags || m.modseq != old.modseq {
                        ch.flags.push(kept.len() as u32 + 1);
                    }
                    kept.push(Msg {
                        flags: m.flags,
                        modseq: m.modseq,
                        ..old
                    });
                }
            }
        }
        let max = kept.last().map_or(0, |m: &Msg| m.uid);
        let before = kept.len();
        kept.extend(
            now.into_iter()
                .filter(|m| m.uid > max)
                .map(|m| Msg { recent: true, ..m }),
        );
        if kept.len() != before || !ch.expunged.is_empty() {
            ch.exists = Some(kept.len() as u32);
        }
        self.view = kept;
        if let Some(s) = self.selected.as_mut() {
            s.2 = next;
        }
        Ok(ch)
    }
}

fn check(name: &str) -> Result<(), StoreError> {
    if name.is_empty()
        || name.contains(['/', '\\'])
        || name.contains("..")
        || name.starts_with('.')
        || name.chars().any(char::is_control)
    {
        return Err(StoreError::BadName("bad folder name"));
    }
    Ok(())
}

impl Store for FakeStore {
    fn folders(&self) -> Result<Vec<FolderInfo>, StoreError> {
        let a = self.lock();
        let names: Vec<&String> = a.folders.keys().collect();
        let mut out: Vec<FolderInfo> = names
            .iter()
            .map(|n| FolderInfo {
                name: n.to_string(),
                special: SPECIAL.iter().find(|s| s.0 == n.as_str()).map(|s| s.1),
                has_children: names.iter().any(|c| c.starts_with(&format!("{n}."))),
                subscribed: a.subscribed.contains(n.as_str()),
            })
            .collect();
        out.sort_by_key(|f| (f.name != "INBOX", f.name.clone()));
        Ok(out)
    }
    fn create(&mut self, name: &str) -> Result<(), StoreError> {
        check(name)?;
        let mut a = self.lock();
        if a.folders.contains_key(name) {
            return Err(StoreError::Exists);
        }
        let v = 2000 + a.folders.len() as u32;
        a.folders.insert(name.to_string(), Folder::new(v));
        Ok(())
    }
    fn delete(&mut self, name: &str) -> Result<(), StoreError> {
        if name == "INBOX" {
            return Err(StoreError::Refused("INBOX cannot be deleted"));
        }
        self.lock()
            .folders
            .remove(name)
            .map(|_| ())
            .ok_or(StoreError::NoSuchFolder)
    }
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StoreError> {
        check(to)?;
        let mut a = self.lock();
        let f = a.folders.remove(from).ok_or(StoreError::NoSuchFolder)?;
        a.folders.insert(to.to_string(), f);
        Ok(())
    }
    fn subscribe(&mut self, name: &str, on: bool) -> Result<(), StoreError> {
        let mut a = self.lock();
        if on {
            a.subscribed.insert(name.to_string());
        } else {
            a.subscribed.remove(name);
        }
        Ok(())
    }
    fn subscriptions(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.lock().subscribed.iter().cloned().collect())
    }
    fn status(&self, name: &str) -> Result<Status, StoreError> {
        let a = self.lock();
        let f = a.folders.get(name).ok_or(StoreError::NoSuchFolder)?;
        Ok(Status {
            messages: f.msgs.len() as u32,
            recent: f.msgs.iter().filter(|m| m.2).count() as u32,
            uidnext: f.next_uid,
            uidvalidity: f.uidvalidity,
            unseen: f
                .msgs
                .iter()
                .filter(|m| !m.0.flags.contains(Flag::Seen))
                .count() as u32,
            deleted: f
                .msgs
                .iter()
                .filter(|m| m.0.flags.contains(Flag::Deleted))
                .count() as u32,
            size: f.msgs.iter().map(|m| m.0.size).sum(),
            highest_modseq: f.highest_modseq,
        })
    }
    fn append(
        &mut self,
        name: &str,
        body: &[u8],
        flags: Flags,
        _keywords: &[&str],
        internal: Option<i64>,
    ) -> Result<(u32, u32), StoreError> {
        self.lock()
            .add(name, body, flags, internal.unwrap_or(1_800_000_000), false)
            .ok_or(StoreError::NoSuchFolder)
    }
    fn select(&mut self, name: &str, read_only: bool) -> Result<(), StoreError> {
        self.selected = None;
        check(name)?;
        let acc = Arc::clone(&self.account);
        let mut a = acc.lock().unwrap_or_else(PoisonError::into_inner);
        let f = a.folders.get_mut(name).ok_or(StoreError::NoSuchFolder)?;
        let mut view = Vec::new();
        for (m, _, new) in f.msgs.iter_mut() {
            let mut v = m.clone();
            v.recent = *new && !read_only;
            if !read_only {
                *new = false;
            }
            view.push(v);
        }
        let sel = (name.to_string(), f.uidvalidity, f.next_uid);
        self.highest_modseq = f.highest_modseq;
        self.expunged = f.expunged.clone();
        self.forgotten = f.expunged.is_empty() && f.highest_modseq > 1;
        drop(a);
        self.view = view;
        self.selected = Some(sel);
        Ok(())
    }
    fn deselect(&mut self) {
        self.selected = None;
        self.asleep = false;
        self.view.clear();
    }
    fn selected(&self) -> Option<Selected<'_>> {
        assert!(!self.asleep, "the engine read the folder while it slept");
        self.selected.as_ref().map(|(_, v, n)| Selected {
            uidvalidity: *v,
            next_uid: *n,
            msgs: &self.view,
            keywords: &self.keywords,
            highest_modseq: self.highest_modseq,
        })
    }
    fn keyword(&mut self, name: &str) -> Result<Option<u8>, StoreError> {
        if let Some(i) = self
            .keywords
            .iter()
            .position(|k| k.eq_ignore_ascii_case(name))
        {
            return Ok(Some(i as u8));
        }
        if self.keywords.len() >= 26 {
            return Ok(None);
        }
        self.keywords.push(name.to_string());
        Ok(Some(self.keywords.len() as u8 - 1))
    }
    fn sleep(&mut self) {
        self.asleep = self.selected.is_some();
    }
    /// As the Maildir store: asleep until something changed.
    fn sync(&mut self) -> Result<Changes, StoreError> {
        let c = self.resync()?;
        if c != Changes::default() {
            self.asleep = false;
        }
        Ok(c)
    }
    fn wake(&mut self) -> Result<Changes, StoreError> {
        self.asleep = false;
        self.resync()
    }
    fn store_flags(
        &mut self,
        changes: &[(usize, Flags)],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<usize>, StoreError> {
        let name = self.name()?;
        let acc = Arc::clone(&self.account);
        let mut a = acc.lock().unwrap_or_else(PoisonError::into_inner);
        let f = a.folders.get_mut(&name).ok_or(StoreError::NoSuchFolder)?;
        let mut refused = Vec::new();
        let mut done = Vec::new();
        for &(i, flags) in changes {
            let uid = self.view.get(i).ok_or(StoreError::Gone)?.uid;
            let Some(m) = f.msgs.iter().find(|m| m.0.uid == uid) else {
                continue;
            };
            if unchanged_since.is_some_and(|u| m.0.modseq > u) {
                refused.push(i);
            } else if m.0.flags != flags {
                done.push((i, uid, flags));
            }
        }
        if !done.is_empty() {
            let modseq = f.next_modseq();
            for &(i, uid, flags) in &done {
                if let Some(m) = f.msgs.iter_mut().find(|m| m.0.uid == uid) {
                    m.0.flags = flags;
                    m.0.modseq = modseq;
                }
                self.view[i].flags = flags;
                self.view[i].modseq = modseq;
            }
            self.highest_modseq = modseq;
        }
        Ok(refused)
    }
    fn expunge(
        &mut self,
        pick: &dyn Fn(usize, &Msg) -> bool,
    ) -> Result<Vec<(u32, u32)>, StoreError> {
        let name = self.name()?;
        let gone: Vec<u32> = self
            .view
            .iter()
            .enumerate()
            .filter(|(i, m)| pick(*i, m))
            .map(|(_, m)| m.uid)
            .collect();
        let acc = Arc::clone(&self.account);
        let mut a = acc.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(f) = a.folders.get_mut(&name)
            && !gone.is_empty()
        {
            f.msgs.retain(|m| !gone.contains(&m.0.uid));
            let modseq = f.next_modseq();
            f.expunged.extend(gone.iter().map(|&u| (modseq, u)));
            self.highest_modseq = modseq;
            self.expunged = f.expunged.clone();
        }
        drop(a);
        let mut seqs = Vec::new();
        let mut kept = Vec::new();
        for m in std::mem::take(&mut self.view) {
            if gone.contains(&m.uid) {
                seqs.push((kept.len() as u32 + 1, m.uid));
            } else {
                kept.push(m);
            }
        }
        self.view = kept;
        Ok(seqs)
    }
    fn expunged_since(&self, since: u64) -> Option<Vec<u32>> {
        let first = self.expunged.first().map_or(u64::MAX, |e| e.0);
        if self.forgotten && since < first {
            return None;
        }
        let mut uids: Vec<u32> = self
            .expunged
            .iter()
            .filter(|e| e.0 > since && !self.view.iter().any(|m| m.uid == e.1))
            .map(|e| e.1)
            .collect();
        uids.sort_unstable();
        Some(uids)
    }
    fn read(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        let name = self.name()?;
        let uid = self.view.get(i).ok_or(StoreError::Gone)?.uid;
        let a = self.lock();
        let f = a.folders.get(&name).ok_or(StoreError::NoSuchFolder)?;
        f.msgs
            .iter()
            .find(|m| m.0.uid == uid)
            .map(|m| m.1.clone())
            .ok_or(StoreError::Gone)
    }
    fn file(&self, i: usize) -> Option<MessageFile> {
        let m = self.view.get(i).filter(|_| self.files)?;
        Some(MessageFile {
            path: format!("/nowhere/cur/msg{}", m.uid).into(),
            folder: "/nowhere".into(),
            base: format!("msg{}", m.uid),
            size: m.size,
        })
    }
    fn copy(&mut self, idx: &[usize], dest: &str) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let name = self.name()?;
        let mut a = self.lock();
        if !a.folders.contains_key(dest) {
            return Err(StoreError::NoSuchFolder);
        }
        let mut pairs = Vec::new();
        let mut validity = 0;
        for &i in idx {
            let Some(v) = self.view.get(i) else { continue };
            let Some((m, bytes, _)) = a
                .folders
                .get(&name)
                .and_then(|f| f.msgs.iter().find(|m| m.0.uid == v.uid))
                .cloned()
            else {
                continue;
            };
            let mut flags = m.flags;
            flags.remove(Flag::Deleted);
            if let Some((val, uid)) = a.add(dest, &bytes, flags, m.internal, false) {
                validity = val;
                pairs.push((m.uid, uid));
            }
        }
        if validity == 0 {
            validity = a.folders.get(dest).map_or(0, |f| f.uidvalidity);
        }
        Ok((validity, pairs))
    }
}
