//! The storage interface the IMAP engine works through ([`Store`]), and its Maildir
//! implementation ([`MaildirAccount`]: an [`Account`] and the selected [`Folder`]). The engine
//! (`proto::imap`) does no I/O of its own; every call here may block on the disk, so the
//! connection driver runs the engine off the async threads.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Account, Changes, Flags, Folder, FolderInfo, Msg, StoreError};
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
}

pub trait Store: Send {
    fn folders(&self) -> Result<Vec<FolderInfo>, StoreError>;
    fn create(&self, name: &str) -> Result<(), StoreError>;
    fn delete(&self, name: &str) -> Result<(), StoreError>;
    fn rename(&self, from: &str, to: &str) -> Result<(), StoreError>;
    fn subscribe(&self, name: &str, on: bool) -> Result<(), StoreError>;
    fn status(&self, name: &str) -> Result<Status, StoreError>;
    /// APPEND into `name` (INTERNALDATE `internal`, Unix seconds; now when `None`);
    /// (UIDVALIDITY, UID).
    fn append(
        &self,
        name: &str,
        body: &[u8],
        flags: &Flags,
        internal: Option<i64>,
    ) -> Result<(u32, u32), StoreError>;
    /// Selects `name`; the previous selection ends.
    fn select(&mut self, name: &str, read_only: bool) -> Result<(), StoreError>;
    fn deselect(&mut self);
    /// The selected folder.
    fn selected(&self) -> Option<&Folder>;
    fn sync(&mut self) -> Result<Changes, StoreError>;
    fn set_flags(&mut self, i: usize, flags: Flags) -> Result<(), StoreError>;
    fn expunge(&mut self, pick: &dyn Fn(usize, &Msg) -> bool) -> Result<Vec<u32>, StoreError>;
    fn read(&self, i: usize) -> Result<Vec<u8>, StoreError>;
    /// COPY of the selected messages `idx` into `dest`: (UIDVALIDITY of dest, (old UID, new UID)...).
    fn copy(&self, idx: &[usize], dest: &str) -> Result<(u32, Vec<(u32, u32)>), StoreError>;
}

pub struct MaildirAccount {
    pub account: Account,
    folder: Option<Folder>,
}

impl MaildirAccount {
    /// The account whose INBOX is `root` (an existing Maildir).
    pub fn open(root: &std::path::Path, names: Arc<MaildirStore>) -> Result<Self, StoreError> {
        Ok(MaildirAccount {
            account: Account::open(root, names)?,
            folder: None,
        })
    }

    fn folder_mut(&mut self) -> Result<&mut Folder, StoreError> {
        self.folder.as_mut().ok_or(StoreError::NoSuchFolder)
    }
}

impl Store for MaildirAccount {
    fn folders(&self) -> Result<Vec<FolderInfo>, StoreError> {
        self.account.folders()
    }
    fn create(&self, name: &str) -> Result<(), StoreError> {
        self.account.create(name)
    }
    fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.account.delete(name)
    }
    fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        self.account.rename(from, to)
    }
    fn subscribe(&self, name: &str, on: bool) -> Result<(), StoreError> {
        self.account.subscribe(name, on)
    }

    fn status(&self, name: &str) -> Result<Status, StoreError> {
        let dir = self.account.existing(name)?;
        let f = Folder::open(&dir, true)?;
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
        })
    }

    fn append(
        &self,
        name: &str,
        body: &[u8],
        flags: &Flags,
        internal: Option<i64>,
    ) -> Result<(u32, u32), StoreError> {
        let dir = self.account.existing(name)?;
        let when = match internal {
            Some(t) => SystemTime::UNIX_EPOCH + Duration::from_secs(t.max(0) as u64),
            None => SystemTime::now(),
        };
        self.account.append(&dir, body, flags, when)
    }

    fn select(&mut self, name: &str, read_only: bool) -> Result<(), StoreError> {
        self.folder = None;
        let dir = self.account.existing(name)?;
        self.folder = Some(Folder::open(&dir, read_only)?);
        Ok(())
    }
    fn deselect(&mut self) {
        self.folder = None;
    }
    fn selected(&self) -> Option<&Folder> {
        self.folder.as_ref()
    }
    fn sync(&mut self) -> Result<Changes, StoreError> {
        match self.folder.as_mut() {
            Some(f) => f.sync(),
            None => Ok(Changes::default()),
        }
    }
    fn set_flags(&mut self, i: usize, flags: Flags) -> Result<(), StoreError> {
        self.folder_mut()?.set_flags(i, flags)
    }
    fn expunge(&mut self, pick: &dyn Fn(usize, &Msg) -> bool) -> Result<Vec<u32>, StoreError> {
        self.folder_mut()?.expunge(pick)
    }
    fn read(&self, i: usize) -> Result<Vec<u8>, StoreError> {
        self.folder
            .as_ref()
            .ok_or(StoreError::NoSuchFolder)?
            .read(i)
    }

    fn copy(&self, idx: &[usize], dest: &str) -> Result<(u32, Vec<(u32, u32)>), StoreError> {
        let f = self.folder.as_ref().ok_or(StoreError::NoSuchFolder)?;
        let dir = self.account.existing(dest)?;
        let mut pairs = Vec::with_capacity(idx.len());
        let mut validity = 0;
        for &i in idx {
            let Some(m) = f.msgs.get(i) else { continue };
            let mut flags = m.flags.clone();
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
