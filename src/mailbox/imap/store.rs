//! One IMAP session's view of an account: the [`Account`] and the selected [`Folder`], with the
//! operations the IMAP engine asks for (the driver's `net::imap_store` puts them behind the
//! engine's `Store` trait). Every call may block on the disk.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Account, Changes, Flags, Folder, FolderInfo, Msg, Options, StoreError};
use crate::mailbox::MaildirStore;

/// STATUS counts of one folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub messages: u32,
    pub recent: u32,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub unseen: u32,
    pub deleted: u32,
    /// Octets of all messages with CRLF line ends (STATUS SIZE).
    pub size: u64,
    /// HIGHESTMODSEQ (RFC 7162).
    pub highest_modseq: u64,
}

pub struct MaildirAccount {
    pub account: Account,
    folder: Option<Folder>,
    opts: Options,
}

impl MaildirAccount {
    /// The account whose INBOX is `root` (an existing Maildir).
    pub fn open(root: &std::path::Path, names: Arc<MaildirStore>) -> Result<Self, StoreError> {
        MaildirAccount::open_with(root, names, Options::default())
    }

    pub fn open_with(
        root: &std::path::Path,
        names: Arc<MaildirStore>,
        opts: Options,
    ) -> Result<Self, StoreError> {
        Ok(MaildirAccount {
            account: Account::open(root, names)?,
            folder: None,
            opts,
        })
    }

    fn folder_mut(&mut self) -> Result<&mut Folder, StoreError> {
        self.folder.as_mut().ok_or(StoreError::NoSuchFolder)
    }
}

impl MaildirAccount {
    pub fn folders(&self) -> Result<Vec<FolderInfo>, StoreError> {
        self.account.folders()
    }
    pub fn create(&self, name: &str) -> Result<(), StoreError> {
        self.account.create(name)
    }
    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.account.delete(name)
    }
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.account.rename(from, to)
    }
    pub fn subscribe(&self, name: &str, on: bool) -> Result<(), StoreError> {
        self.account.subscribe(name, on)
    }

    pub fn status(&self, name: &str) -> Result<Status, StoreError> {
        let dir = self.account.existing(name)?;
        let f = Folder::open_with(&dir, true, self.opts)?;
        let new = f
            .msgs
            .iter()
            .filter(|m| m.path.parent().is_some_and(|p| p.ends_with("new")))
            .count();
        Ok(Status {
            messages: f.msgs.len() as u32,
            recent: new as u32,
            uidnext: f.next_uid,
            uidvalidity: f.uidvalidity,
            unseen: f
                .msgs
                .iter()
                .filter(|m| !m.flags.contains(super::Flag::Seen))
                .count() as u32,
            deleted: f
                .msgs
                .iter()
                .filter(|m| m.flags.contains(super::Flag::Deleted))
                .count() as u32,
            size: f.msgs.iter().map(|m| m.size).sum(),
            highest_modseq: f.highest_modseq(),
        })
    }

    pub fn append(
        &self,
        name: &str,
        body: &[u8],
        flags: &Flags,
        keywords: &[&str],
        internal: Option<i64>,
    ) -> Result<(u32, u32), StoreError> {
        let dir = self.account.existing(name)?;
        let mut mask = flags.keywords();
        for k in keywords {
            if let Some(i) = super::keywords::define(&dir, k)
                .map_err(super::io_at("define a keyword in", &dir))?
            {
                mask |= 1 << i;
            }
        }
        let flags = &flags.clone().with_keywords(mask);
        let when = match internal {
            Some(t) => SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64),
            None => SystemTime::now(),
        };
        self.account.append(&dir, body, flags, when)
    }

    pub fn select(&mut self, name: &str, read_only: bool) -> Result<(), StoreError> {
        self.folder = None;
        let dir = self.account.existing(name)?;
        self.folder = Some(Folder::open_with(&dir, read_only, self.opts)?);
        Ok(())
    }
    pub fn deselect(&mut self) {
        self.folder = None;
    }
    pub fn selected(&self) -> Option<&Folder> {
        self.folder.as_ref()
    }
    pub fn sync(&mut self) -> Result<Changes, StoreError> {
        match self.folder.as_mut() {
            Some(f) => f.sync(),
            None => Ok(Changes::default()),
        }
    }
    /// The selected folder drops its messages until the next sync or [`MaildirAccount::wake`].
    pub fn sleep(&mut self) {
        if let Some(f) = self.folder.as_mut() {
            f.sleep();
        }
    }
    pub fn is_asleep(&self) -> bool {
        self.folder.as_ref().is_some_and(Folder::is_asleep)
    }
    /// The selected folder awake again, with what changed meanwhile.
    pub fn wake(&mut self) -> Result<Changes, StoreError> {
        match self.folder.as_mut() {
            Some(f) => f.wake(),
            None => Ok(Changes::default()),
        }
    }
    pub fn define_keyword(&mut self, name: &str) -> Result<Option<usize>, StoreError> {
        self.folder_mut()?.define_keyword(name)
    }
    pub fn store_flags(
        &mut self,
        changes: &[(usize, Flags)],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<usize>, StoreError> {
        self.folder_mut()?.store_flags(changes, unchanged_since)
    }
    pub fn expunge(
        &mut self,
        pick: &dyn Fn(usize, &Msg) -> bool,
    ) -> Result<Vec<(u32, u32)>, StoreError> {
        self.folder_mut()?.expunge(pick)
    }
    pub fn read(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.folder
            .as_ref()
            .ok_or(StoreError::NoSuchFolder)?
            .read(i)
    }

    pub fn copy(&self, idx: &[usize], dest: &str) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let f = self.folder.as_ref().ok_or(StoreError::NoSuchFolder)?;
        let dir = self.account.existing(dest)?;
        let mut pairs = Vec::with_capacity(idx.len());
        let mut validity = 0;
        for &i in idx {
            let Some(m) = f.msgs.get(i) else { continue };
            // Keywords by name: the destination's letters may differ (Dovecot maps them too).
            let mut mask = 0u32;
            for k in 0..super::keywords::MAX.min(f.keywords.len()) {
                if m.flags.keywords() & 1 << k != 0
                    && !f.keywords[k].is_empty()
                    && let Some(j) = super::keywords::define(&dir, &f.keywords[k])
                        .map_err(super::io_at("define a keyword in", &dir))?
                {
                    mask |= 1 << j;
                }
            }
            let mut flags = m.flags.clone().with_keywords(mask);
            flags.remove(super::Flag::Deleted);
            let src = match std::fs::metadata(&m.path) {
                Ok(_) => m.path.clone(),
                Err(_) => continue,
            };
            let (v, uid) = self.account.copy(&src, &dir, &m.base, &flags)?;
            validity = v;
            pairs.push((m.uid, uid));
        }
        if validity == 0 {
            validity = Folder::open(&dir, true)?.uidvalidity;
        }
        Ok((validity, pairs))
    }
}
