//! The queue on disk: `tmp/` (being written), `msg/<id>` (the message, LF line ends, as a Maildir
//! copy would be), `env/<id>.json` (its [`Envelope`]). A message is queued once its envelope is
//! in `env/`: commit fsyncs the message, renames it into `msg/`, writes the envelope the same way,
//! and fsyncs both directories before the 250. A message without an envelope (a crash between
//! the two renames) was never acknowledged and is removed at start.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::envelope::{Envelope, RecipientState, State};
use crate::mailbox::delivery::{
    Committed, Delivery, DeliveryError, FsError, Origin, Recipient, Target, io_err,
};
use crate::mailbox::group_commit::DirSync;
use crate::mailbox::maildir::new_id;

/// Called with each newly queued envelope (the outbound runner's wake-up).
pub type OnQueued = Arc<dyn Fn(&Envelope) + Send + Sync>;

pub struct QueueStore {
    dir: PathBuf,
    on_queued: Mutex<Option<OnQueued>>,
    /// Directory fsyncs shared by the sessions and attempts renaming into `env/` and `msg/` at
    /// once (group commit, as the Maildir store does).
    dirs: DirSync,
}

impl std::fmt::Debug for QueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn sync_dir(dir: &Path) -> Result<(), FsError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl QueueStore {
    /// One fsync of `sub/` that covers every rename into it made before this call.
    fn sync_sub(&self, sub: &str) -> Result<(), FsError> {
        let dir = self.dir.join(sub);
        self.dirs
            .sync(&dir)
            .map_err(io_err("fsync directory", &dir))
    }

    /// Opens (making when missing) the queue at `dir`.
    pub fn open(dir: &Path) -> Result<Arc<QueueStore>, DeliveryError> {
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for sub in ["tmp", "msg", "env"] {
            let p = dir.join(sub);
            b.create(&p).map_err(io_err("create directory", &p))?;
        }
        sync_dir(dir)?;
        Ok(Arc::new(QueueStore {
            dir: dir.to_path_buf(),
            on_queued: Mutex::new(None),
            dirs: DirSync::new(),
        }))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Who to tell when a message is queued.
    pub fn on_queued(&self, f: OnQueued) {
        *self
            .on_queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(f);
    }

    pub fn message_path(&self, id: &str) -> PathBuf {
        self.dir.join("msg").join(id)
    }

    fn envelope_path(&self, id: &str) -> PathBuf {
        self.dir.join("env").join(format!("{id}.json"))
    }

    /// Every queued envelope; removes what a crash left (files in `tmp/`, messages without an
    /// envelope). An envelope that cannot be read is moved to `corrupt/` and reported.
    pub fn load(&self) -> Result<(Vec<Envelope>, Vec<String>), DeliveryError> {
        let mut problems = Vec::new();
        let tmp = self.dir.join("tmp");
        for e in fs::read_dir(&tmp).map_err(io_err("list", &tmp))?.flatten() {
            let _ = fs::remove_file(e.path());
        }
        let env_dir = self.dir.join("env");
        let mut envelopes = Vec::new();
        let mut keep: Vec<String> = Vec::new();
        for e in fs::read_dir(&env_dir)
            .map_err(io_err("list", &env_dir))?
            .flatten()
        {
            let path = e.path();
            let parsed = fs::read(&path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<Envelope>(&b).map_err(|e| e.to_string()));
            let stem = e
                .file_name()
                .to_string_lossy()
                .trim_end_matches(".json")
                .to_string();
            match parsed {
                Ok(env) => match fs::metadata(self.message_path(&env.id)) {
                    Ok(_) => envelopes.push(env),
                    Err(m) if m.kind() == io::ErrorKind::NotFound => {
                        problems.push(format!(
                            "{}: its message file is missing; removed",
                            path.display()
                        ));
                        let _ = fs::remove_file(&path);
                    }
                    // Unreadable (permissions, I/O): never a reason to delete anything.
                    Err(m) => return Err(io_err("stat", &self.message_path(&env.id))(m).into()),
                },
                Err(why) => {
                    // Set aside with its message, which is kept (nothing acknowledged is lost).
                    let corrupt = self.dir.join("corrupt");
                    let _ = fs::create_dir_all(&corrupt);
                    let _ = fs::rename(&path, corrupt.join(e.file_name()));
                    let _ = fs::rename(self.message_path(&stem), corrupt.join(&stem));
                    keep.push(stem);
                    problems.push(format!(
                        "{}: {why}; it and its message moved to {}",
                        path.display(),
                        corrupt.display()
                    ));
                }
            }
        }
        let msg_dir = self.dir.join("msg");
        for e in fs::read_dir(&msg_dir)
            .map_err(io_err("list", &msg_dir))?
            .flatten()
        {
            let id = e.file_name().to_string_lossy().into_owned();
            if !envelopes.iter().any(|env| env.id == id) && !keep.contains(&id) {
                let _ = fs::remove_file(e.path());
            }
        }
        envelopes.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok((envelopes, problems))
    }

    /// Replaces `env`'s file durably (write, fsync, rename, fsync the directory). The temporary
    /// file's name is unique, so two saves of one message never write the same inode.
    pub fn save(&self, env: &Envelope) -> Result<(), DeliveryError> {
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.dir.join("tmp").join(format!("{}.{n}.json", env.id));
        let text = serde_json::to_vec_pretty(env).map_err(|e| FsError {
            op: "encode",
            path: tmp.clone(),
            source: io::Error::other(e),
        })?;
        let mut f = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        f.write_all(&text).map_err(io_err("write", &tmp))?;
        f.sync_all().map_err(io_err("fsync", &tmp))?;
        let to = self.envelope_path(&env.id);
        fs::rename(&tmp, &to).map_err(io_err("rename into", &to))?;
        self.sync_sub("env")?;
        Ok(())
    }

    /// Removes a message and its envelope (the envelope first: without it the message is gone).
    pub fn remove(&self, id: &str) -> Result<(), DeliveryError> {
        let env = self.envelope_path(id);
        match fs::remove_file(&env) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &env)(e).into()),
        }
        self.sync_sub("env")?;
        let msg = self.message_path(id);
        let _ = fs::remove_file(&msg);
        Ok(())
    }
}

impl Target for QueueStore {
    fn begin(self: Arc<Self>, origin: &Origin, recipients: &[Recipient]) -> Box<dyn Delivery> {
        let id = new_id();
        let now = unix_now();
        let envelope = Envelope {
            id: id.clone(),
            sender: origin.sender.clone(),
            created: now,
            size: 0,
            held: false,
            ret: origin.ret,
            envid: origin.envid.clone(),
            smtputf8: origin.smtputf8,
            recipients: recipients
                .iter()
                .map(|r| RecipientState {
                    address: r.address.clone(),
                    domain: r.domain.clone(),
                    local: r.local.clone(),
                    local_delivery: !r.remote,
                    state: State::Queued,
                    attempts: 0,
                    last_error: None,
                    next_try: now,
                    remote_mta: None,
                    bounced: false,
                    notify: r.notify,
                    orcpt: r.orcpt.clone(),
                    warned: false,
                    success_report: false,
                })
                .collect(),
        };
        let tmp = self.dir.join("tmp").join(&id);
        Box::new(QueueDelivery {
            store: self,
            envelope,
            tmp,
            file: None,
            placed: false,
        })
    }
}

/// A message being queued. Dropped without commit, it leaves nothing behind.
struct QueueDelivery {
    store: Arc<QueueStore>,
    envelope: Envelope,
    tmp: PathBuf,
    file: Option<File>,
    /// The file left `tmp/`.
    placed: bool,
}

impl QueueDelivery {
    fn file(&mut self) -> Result<&mut File, DeliveryError> {
        let file = match self.file.take() {
            Some(f) => f,
            None => OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&self.tmp)
                .map_err(io_err("create", &self.tmp))?,
        };
        Ok(self.file.insert(file))
    }

    fn place(&mut self) -> Result<(), DeliveryError> {
        let file = self.file()?;
        file.sync_all().map_err(io_err("fsync", &self.tmp))?;
        self.file = None;
        crate::testing::stall_point("queue_after_fsync");
        let msg = self.store.message_path(&self.envelope.id);
        fs::rename(&self.tmp, &msg).map_err(io_err("rename into", &msg))?;
        self.placed = true;
        self.store.save(&self.envelope)?;
        self.store.sync_sub("msg")?;
        Ok(())
    }
}

impl Delivery for QueueDelivery {
    fn id(&self) -> &str {
        &self.envelope.id
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), DeliveryError> {
        self.file()?
            .write_all(bytes)
            .map_err(io_err("write", &self.tmp))?;
        self.envelope.size += bytes.len() as u64;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<Committed, DeliveryError> {
        if let Err(e) = self.place() {
            // Nothing half-queued: no envelope, no message.
            let _ = self.store.remove(&self.envelope.id);
            return Err(e);
        }
        let hook = self
            .store
            .on_queued
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(f) = hook {
            f(&self.envelope);
        }
        Ok(Committed {
            id: self.envelope.id.clone(),
            size: self.envelope.size,
            copies: self.envelope.recipients.len(),
            files: None,
        })
    }

    fn abort(self: Box<Self>) {
        drop(self);
    }
}

impl Drop for QueueDelivery {
    fn drop(&mut self) {
        if !self.placed {
            self.file = None;
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests;
