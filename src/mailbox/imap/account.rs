//! The folder tree of one account: names to directories (refusing any name that could leave the
//! account), LIST with SPECIAL-USE, CREATE/DELETE/RENAME, subscriptions, and the two ways a
//! message enters a folder (APPEND, COPY), each with a UID assigned under the uidlist lock.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::flags::Flags;
use super::folder::{Folder, sync_dir};
use super::uidlist::{self, Lock, UidList};
use super::{StoreError, io_at};
use crate::mailbox::MaildirStore;

/// Made and subscribed at first login, with their RFC 6154 attribute.
pub const SPECIAL: [(&str, &str); 5] = [
    ("Sent", "\\Sent"),
    ("Drafts", "\\Drafts"),
    ("Trash", "\\Trash"),
    ("Junk", "\\Junk"),
    ("Archive", "\\Archive"),
];

const SUBSCRIPTIONS: &str = "subscriptions";
/// Longest folder name accepted (octets).
const MAX_NAME: usize = 200;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    pub special: Option<&'static str>,
    pub has_children: bool,
    pub subscribed: bool,
}

#[derive(Clone, Debug)]
pub struct Account {
    pub root: PathBuf,
    /// Names new files (APPEND, COPY) as delivery does.
    names: Arc<MaildirStore>,
}

impl Account {
    /// The account whose INBOX Maildir is `root` (which must exist); makes the special folders
    /// and subscribes them the first time (when there is no `subscriptions` file yet).
    pub fn open(root: &Path, names: Arc<MaildirStore>) -> Result<Account, StoreError> {
        let a = Account {
            root: root.to_path_buf(),
            names,
        };
        let subs = root.join(SUBSCRIPTIONS);
        if !subs.exists() {
            let mut names = Vec::new();
            for (name, _) in SPECIAL {
                let dir = a.dir_of(name)?;
                if !dir.exists() {
                    make_maildir(&dir)?;
                }
                names.push(name.to_string());
            }
            a.write_subscriptions(&names)?;
        }
        Ok(a)
    }

    /// The directory of folder `name` (INBOX in any case is the root).
    pub fn dir_of(&self, name: &str) -> Result<PathBuf, StoreError> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Ok(self.root.clone());
        }
        check_name(name)?;
        Ok(self.root.join(format!(".{name}")))
    }

    /// An existing folder's directory.
    pub fn existing(&self, name: &str) -> Result<PathBuf, StoreError> {
        let d = self.dir_of(name)?;
        if d.join("cur").is_dir() {
            Ok(d)
        } else {
            Err(StoreError::NoSuchFolder)
        }
    }

    /// Every folder, INBOX first, then by name.
    pub fn folders(&self) -> Result<Vec<FolderInfo>, StoreError> {
        let mut names = vec!["INBOX".to_string()];
        let entries = fs::read_dir(&self.root).map_err(io_at("list", &self.root))?;
        let mut others: Vec<String> = entries
            .flatten()
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().into_owned();
                let name = n.strip_prefix('.')?.to_string();
                (check_name(&name).is_ok() && e.path().join("cur").is_dir()).then_some(name)
            })
            .collect();
        others.sort();
        names.extend(others);
        let subs = self.subscriptions();
        Ok(names
            .iter()
            .map(|n| FolderInfo {
                special: SPECIAL.iter().find(|(s, _)| s == n).map(|(_, a)| *a),
                has_children: names.iter().any(|c| {
                    c.len() > n.len() + 1
                        && c.starts_with(n.as_str())
                        && c.as_bytes()[n.len()] == b'.'
                }),
                subscribed: n == "INBOX" || subs.iter().any(|s| s == n),
                name: n.clone(),
            })
            .collect())
    }

    pub fn create(&self, name: &str) -> Result<(), StoreError> {
        let name = name.strip_suffix('.').unwrap_or(name);
        let dir = self.dir_of(name)?;
        if name.eq_ignore_ascii_case("INBOX") || dir.exists() {
            return Err(StoreError::Exists);
        }
        make_maildir(&dir)
    }

    pub fn delete(&self, name: &str) -> Result<(), StoreError> {
        if name.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::Refused("INBOX cannot be deleted"));
        }
        let dir = self.existing(name)?;
        if self
            .folders()?
            .iter()
            .any(|f| f.name == name && f.has_children)
        {
            return Err(StoreError::Refused(
                "the folder has subfolders; delete them first",
            ));
        }
        // Renamed aside first, so no reader sees a half-deleted folder.
        let aside = self
            .root
            .join(format!(".{name}.~deleting~{}", std::process::id()));
        fs::rename(&dir, &aside).map_err(io_at("rename", &dir))?;
        fs::remove_dir_all(&aside).map_err(io_at("delete", &aside))?;
        let mut subs = self.subscriptions();
        subs.retain(|s| s != name);
        self.write_subscriptions(&subs)
    }

    /// RENAME, with the subfolders; INBOX cannot be renamed here (RFC 3501 moves its
    /// messages instead, which is not offered).
    pub fn rename(&self, from: &str, to: &str) -> Result<(), StoreError> {
        if from.eq_ignore_ascii_case("INBOX") {
            return Err(StoreError::Refused("renaming INBOX is not supported"));
        }
        let src = self.existing(from)?;
        let dst = self.dir_of(to)?;
        if to.eq_ignore_ascii_case("INBOX") || dst.exists() {
            return Err(StoreError::Exists);
        }
        let children: Vec<String> = self
            .folders()?
            .into_iter()
            .filter_map(|f| f.name.strip_prefix(&format!("{from}.")).map(str::to_string))
            .collect();
        fs::rename(&src, &dst).map_err(io_at("rename", &src))?;
        for c in &children {
            let (a, b) = (
                self.dir_of(&format!("{from}.{c}"))?,
                self.dir_of(&format!("{to}.{c}"))?,
            );
            fs::rename(&a, &b).map_err(io_at("rename", &a))?;
        }
        let subs: Vec<String> = self
            .subscriptions()
            .into_iter()
            .map(|s| match s.strip_prefix(from) {
                Some(rest) if rest.is_empty() || rest.starts_with('.') => format!("{to}{rest}"),
                _ => s,
            })
            .collect();
        self.write_subscriptions(&subs)
    }

    pub fn subscriptions(&self) -> Vec<String> {
        let text = fs::read_to_string(self.root.join(SUBSCRIPTIONS)).unwrap_or_default();
        // Dovecot 2.3 writes a "V\t2" header and an empty line first.
        text.lines()
            .filter(|l| !l.is_empty() && !l.starts_with("V\t"))
            .map(|l| l.replace('\t', "."))
            .collect()
    }

    pub fn subscribe(&self, name: &str, on: bool) -> Result<(), StoreError> {
        if !name.eq_ignore_ascii_case("INBOX") {
            check_name(name)?;
        }
        let mut subs = self.subscriptions();
        subs.retain(|s| s != name);
        if on {
            subs.push(name.to_string());
        }
        self.write_subscriptions(&subs)
    }

    fn write_subscriptions(&self, names: &[String]) -> Result<(), StoreError> {
        let path = self.root.join(SUBSCRIPTIONS);
        let tmp = self
            .root
            .join(format!("{SUBSCRIPTIONS}.tmp{}", std::process::id()));
        let mut text = String::new();
        for n in names {
            text.push_str(n);
            text.push('\n');
        }
        fs::write(&tmp, text).map_err(io_at("write", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_at("rename", &tmp))
    }

    /// APPEND: `body` (any line ends; stored with LF) into folder directory `dir` with `flags`
    /// and INTERNALDATE `internal`; returns (UIDVALIDITY, UID).
    pub fn append(
        &self,
        dir: &Path,
        body: &[u8],
        flags: &Flags,
        internal: SystemTime,
    ) -> Result<(u32, u32), StoreError> {
        let stored = crlf_to_lf(body);
        let base = format!(
            "{},S={},W={}",
            self.names.unique_name(),
            stored.len(),
            crate::wire::wire_size(&stored)
        );
        let tmp = dir.join("tmp").join(&base);
        let mut f = fs::File::create_new(&tmp).map_err(io_at("create", &tmp))?;
        f.write_all(&stored)
            .and_then(|()| f.set_modified(internal))
            .and_then(|()| f.sync_all())
            .map_err(io_at("write", &tmp))?;
        drop(f);
        let to = dir.join("cur").join(format!("{base}{}", flags.info()));
        let uid = self.assign_uid(dir, &base, || {
            fs::rename(&tmp, &to).map_err(io_at("rename", &tmp))
        });
        if uid.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        sync_dir(&dir.join("cur"));
        uid
    }

    /// COPY of message `src_path` (with `flags`) into `dir`, hard-linked when possible (as
    /// Dovecot does), else copied; returns (UIDVALIDITY, UID).
    pub fn copy(
        &self,
        src: &Path,
        dir: &Path,
        base: &str,
        flags: &Flags,
    ) -> Result<(u32, u32), StoreError> {
        // A new unique part, keeping the size hints of the old name.
        let hints: String = base.split(',').skip(1).map(|p| format!(",{p}")).collect();
        let new_base = format!("{}{hints}", self.names.unique_name());
        let to = dir.join("cur").join(format!("{new_base}{}", flags.info()));
        let r = self.assign_uid(dir, &new_base, || {
            if fs::hard_link(src, &to).is_err() {
                fs::copy(src, &to).map_err(io_at("copy", src))?;
            }
            Ok(())
        });
        sync_dir(&dir.join("cur"));
        r
    }

    /// Runs `place` (which puts the file named `base` into the folder) under the uidlist
    /// lock and gives it the next UID.
    fn assign_uid(
        &self,
        dir: &Path,
        base: &str,
        place: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(u32, u32), StoreError> {
        // Bring the list up to date first, so files delivered meanwhile keep their order.
        Folder::open(dir, true)?;
        let lock = Lock::take(dir, Duration::from_secs(10))?;
        let mut list = uidlist::read(dir)?.unwrap_or_else(|| UidList::fresh(SystemTime::now()));
        place()?;
        let uid = list.assign(base);
        lock.replace(&list)?;
        Ok((list.uidvalidity, uid))
    }
}

/// A folder name we accept: mailbox names as clients send them (modified UTF-7), never one
/// that could name a path outside the account or a hidden file.
pub fn check_name(name: &str) -> Result<(), StoreError> {
    if name.is_empty() {
        return Err(StoreError::BadName("empty folder name"));
    }
    if name.len() > MAX_NAME {
        return Err(StoreError::BadName("folder name too long"));
    }
    if name.contains(['/', '\\']) {
        return Err(StoreError::BadName(
            "folder names may not contain / or \\ (the hierarchy separator is .)",
        ));
    }
    if name.chars().any(|c| c.is_control()) {
        return Err(StoreError::BadName(
            "folder names may not contain control characters",
        ));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err(StoreError::BadName(
            "empty hierarchy level in folder name (. at the start or end, or ..)",
        ));
    }
    if name.contains("~deleting~")
        || name.split('.').any(|p| p.eq_ignore_ascii_case("INBOX"))
            && !name.eq_ignore_ascii_case("INBOX")
    {
        return Err(StoreError::BadName("reserved folder name"));
    }
    Ok(())
}

fn make_maildir(dir: &Path) -> Result<(), StoreError> {
    for sub in ["tmp", "new", "cur"] {
        let d = dir.join(sub);
        fs::create_dir_all(&d).map_err(io_at("create", &d))?;
    }
    // Dovecot marks Maildir++ subfolders with this empty file.
    let marker = dir.join("maildirfolder");
    fs::write(&marker, b"").map_err(io_at("create", &marker))?;
    if let Some(parent) = dir.parent() {
        sync_dir(parent);
    }
    Ok(())
}

/// CRLF → LF (the Unix Maildir convention our delivery keeps).
pub fn crlf_to_lf(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i] == b'\r' && body.get(i + 1) == Some(&b'\n') {
            i += 1;
            continue;
        }
        out.push(body[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
#[path = "account_tests.rs"]
mod tests;
