//! The queue on disk: `tmp/` (being written), `msg/<id>` (one line with the [`Envelope`] as
//! it was queued, then the message, LF line ends, as a Maildir copy would be) and, once an
//! attempt leaves something to do, `env/<id>.json` (the envelope's later state, which wins
//! over the first line). Queueing is one file: written, fsynced, renamed into `msg/`, and the
//! directory fsynced (shared by the messages renamed at once) before the 250; a file in `tmp/`
//! was never acknowledged and is removed at start. Removal takes the message out of `msg/`
//! first (the point of no return), then unlinks its `env/` file: an `env/` file left without
//! its message by a crash in between is removed at start.
//!
//! Small message files are recycled: a removal renames the file into `spare/` instead of
//! unlinking it, and the next message queued is written into it (from its start, cut to its
//! length, fsynced) and renamed into `msg/`. Creating and freeing an inode per message is what
//! the disk spends most on when messages pass through quickly: on ext4 the create holds the
//! directory's lock while it looks for a free inode, and without a journal it walks past every
//! inode freed in the last 30 seconds (`recently_deleted`); the unlink frees blocks, discarded
//! at once under `-o discard`. A recycled file was never acknowledged as anything, so a crash
//! leaves nothing to redo: at start `spare/` is taken back as it is, except a name whose inode
//! is also a queued message's (a rename a crash cut in half on a file system without a
//! journal), which is left alone.
//!
//! Several instances may share one queue directory (on one host, or over NFS): each writes in
//! its own `tmp/<instance>/` and recycles through its own `spare/<instance>/` (so a start
//! clears only what its own crash left), its ids carry a tag of its instance and process, and
//! an attempt first [`QueueStore::claim`]s the message: an exclusive `flock` on its file in
//! `msg/`, taken without waiting (another instance trying it now: left for later), after which
//! the envelope is read again from disk, since another instance may have tried it since. The
//! kernel drops the lock of a process that dies, so its messages are taken over by the next
//! [`QueueStore::scan`] of another instance.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

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
    /// `tmp/<instance>` and `spare/<instance>`: this instance's own.
    tmp: PathBuf,
    spare: PathBuf,
    /// Ends every id made here: the instance and process, so that instances sharing the queue
    /// never make the same id.
    tag: String,
    on_queued: Mutex<Option<OnQueued>>,
    /// Directory fsyncs shared by the sessions and attempts renaming into `env/` and `msg/` at
    /// once (group commit, as the Maildir store does), on descriptors kept open.
    dirs: DirSync,
    /// Messages that have an `env/` file (loaded with one, or saved since): a removal of any
    /// other need not look for it.
    with_env: Mutex<HashSet<String>>,
    /// Recycled files in `spare/`: (name, length), about [`SPARE_FILES`] at most (removals at
    /// once may each add one past it; the next start trims them).
    spares: Mutex<Vec<(String, u64)>>,
}

/// How many removed message files are kept in `spare/` for the next messages, and the largest
/// kept (a larger one is unlinked): at most 4 MiB of disk held.
const SPARE_FILES: usize = 256;
const SPARE_MAX_BYTES: u64 = 16 << 10;

impl std::fmt::Debug for QueueStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueueStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The start of a message file's first line; the envelope follows as one line of JSON.
const HEADER: &[u8] = b"smtpd-queue-envelope ";
/// The longest first line read back (a message with thousands of long recipients fits).
const MAX_HEADER: u64 = 8 << 20;

/// Reads the envelope a message file starts with: `Ok(None)` for a file without one (from an
/// older version, whose envelope was never written: it was never acknowledged).
fn read_header(path: &Path) -> io::Result<Option<Result<Envelope, String>>> {
    use std::io::{BufRead, BufReader, Read};
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    let mut line = Vec::new();
    BufReader::new(file)
        .take(MAX_HEADER)
        .read_until(b'\n', &mut line)?;
    let Some(json) = line.strip_prefix(HEADER) else {
        return Ok(None);
    };
    if line.last() != Some(&b'\n') {
        return Ok(Some(Err(format!(
            "its envelope line is unfinished or longer than {MAX_HEADER} bytes"
        ))));
    }
    Ok(Some(
        serde_json::from_slice::<Envelope>(json)
            .map(|mut env| {
                env.body_offset = line.len() as u64;
                env.size = len.saturating_sub(env.body_offset);
                env
            })
            .map_err(|e| e.to_string()),
    ))
}

/// The envelope of the message file at `msg`: its `env/` file's when it has one (`env`), else
/// its first line's; `Ok(None)` for a message file without one.
fn read_envelope(msg: &Path, env: Option<&Path>) -> io::Result<Option<Result<Envelope, String>>> {
    match env {
        Some(p) => Ok(Some(fs::read(p).map_err(|e| e.to_string()).and_then(|b| {
            serde_json::from_slice::<Envelope>(&b).map_err(|e| e.to_string())
        }))),
        None => read_header(msg),
    }
}

/// The end of this process's ids: a hash of the instance name and the process id, five hex
/// digits (a collision needs the same tag, microsecond and sequence number at once).
fn id_tag(instance: &str, pid: u32) -> String {
    // FNV-1a: stable across builds and platforms, unlike std's hasher.
    let mut h: u32 = 0x811c_9dc5;
    for b in instance.bytes().chain(pid.to_le_bytes()) {
        h = (h ^ u32::from(b)).wrapping_mul(0x0100_0193);
    }
    format!("{:05X}", h & 0xF_FFFF)
}

/// [`QueueStore::claim`]'s answer.
#[derive(Debug)]
pub enum Claim {
    /// This process may try it until the lock is dropped; the envelope as it is on disk now.
    Claimed { lock: File, envelope: Envelope },
    /// Another instance (or another attempt of this one) holds it.
    Busy,
    /// Delivered and removed (by another instance), or its envelope cannot be read.
    Gone,
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

    /// Opens (making when missing) the queue at `dir` for `instance` (`[server] instance`).
    pub fn open(dir: &Path, instance: &str) -> Result<Arc<QueueStore>, DeliveryError> {
        let own: String = instance
            .chars()
            .map(|c| match c {
                'A'..='Z' | 'a'..='z' | '0'..='9' | '-' | '_' | '.' => c,
                _ => '_',
            })
            .collect();
        let own = match own.trim_start_matches('.') {
            "" => "default".to_string(),
            o => o.to_string(),
        };
        let (tmp, spare) = (dir.join("tmp").join(&own), dir.join("spare").join(&own));
        let mut b = fs::DirBuilder::new();
        b.recursive(true).mode(0o700);
        for p in [tmp.clone(), dir.join("msg"), dir.join("env"), spare.clone()] {
            b.create(&p).map_err(io_err("create directory", &p))?;
        }
        sync_dir(dir)?;
        // The queue's two directories are synced for every message: their descriptors stay
        // open (an open and a close fewer per fsync). They are never replaced while smtpd runs.
        let open = |sub: &str| {
            let p = dir.join(sub);
            File::open(&p)
                .map(|f| (p.clone(), f))
                .map_err(io_err("open directory", &p))
        };
        let kept = [open("msg")?, open("env")?];
        let dirs = DirSync::with(move |d: &Path| {
            crate::testing::stall_point("in_dir_fsync");
            match kept.iter().find(|(p, _)| p == d) {
                Some((_, f)) => f.sync_all(),
                None => File::open(d).and_then(|f| f.sync_all()),
            }
        });
        Ok(Arc::new(QueueStore {
            dir: dir.to_path_buf(),
            tmp,
            spare,
            tag: id_tag(instance, std::process::id()),
            on_queued: Mutex::new(None),
            dirs,
            with_env: Mutex::new(HashSet::new()),
            spares: Mutex::new(Vec::new()),
        }))
    }

    fn with_env(&self) -> MutexGuard<'_, HashSet<String>> {
        self.with_env.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spares(&self) -> MutexGuard<'_, Vec<(String, u64)>> {
        self.spares.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Recycled files left (a test's view).
    #[cfg(test)]
    pub(crate) fn spare_count(&self) -> usize {
        self.spares().len()
    }

    /// Takes `spare/` back at start: every file whose inode is not also a queued message's
    /// (`queued`) and not already taken under another name; beyond [`SPARE_FILES`], unlinked.
    fn load_spares(&self, queued: &HashSet<u64>) -> Result<(), DeliveryError> {
        use std::os::unix::fs::{DirEntryExt, MetadataExt};
        let dir = &self.spare;
        let mut seen = HashSet::new();
        let mut spares = Vec::new();
        for e in fs::read_dir(dir).map_err(io_err("list", dir))?.flatten() {
            let ino = e.ino();
            if queued.contains(&ino) || !seen.insert(ino) {
                continue;
            }
            let name = e.file_name().to_string_lossy().into_owned();
            match fs::symlink_metadata(e.path()) {
                Ok(m) if m.is_file() && m.nlink() == 1 && spares.len() < SPARE_FILES => {
                    spares.push((name, m.len()))
                }
                Ok(m) if m.is_file() && m.nlink() == 1 => {
                    let _ = fs::remove_file(e.path());
                }
                _ => {}
            }
        }
        *self.spares() = spares;
        Ok(())
    }

    /// Directory fsyncs made on `sub/` so far.
    #[cfg(test)]
    pub(crate) fn dir_syncs(&self, sub: &str) -> u64 {
        self.dirs.syncs(&self.dir.join(sub))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// This instance's `tmp/` directory.
    pub fn tmp_dir(&self) -> &Path {
        &self.tmp
    }

    /// A new message id: the time in µs, a sequence number and this process's tag, in hex.
    fn new_id(&self) -> String {
        format!("{}{}", new_id(), self.tag)
    }

    /// Takes message `id` for an attempt: an exclusive `flock` on its file in `msg/`, without
    /// waiting, then its envelope read again (another instance may have tried it since this
    /// one read it). The claim lasts as long as the lock file is kept (the kernel drops it when
    /// the process dies).
    pub fn claim(&self, id: &str) -> io::Result<Claim> {
        use std::os::unix::fs::MetadataExt;
        let path = self.message_path(id);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Claim::Gone),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => return Ok(Claim::Busy),
            Err(fs::TryLockError::Error(e)) => return Err(e),
        }
        // Removed (or recycled) between the open and the lock: not that message any more.
        let held = file.metadata()?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.ino() == held.ino() && m.dev() == held.dev() => {}
            Ok(_) => return Ok(Claim::Gone),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Claim::Gone),
            Err(e) => return Err(e),
        }
        match self.read_known(id)? {
            Some(Ok(envelope)) if envelope.id == id => Ok(Claim::Claimed {
                lock: file,
                envelope,
            }),
            _ => Ok(Claim::Gone),
        }
    }

    /// The ids in `msg/` now (another instance's messages among them).
    pub fn scan(&self) -> io::Result<Vec<String>> {
        let dir = self.dir.join("msg");
        Ok(fs::read_dir(&dir)?
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect())
    }

    /// The envelope of queued message `id` as it is on disk (`None`: gone or unreadable).
    pub fn read(&self, id: &str) -> Option<Envelope> {
        match self.read_known(id) {
            Ok(Some(Ok(e))) if e.id == id => Some(e),
            _ => None,
        }
    }

    /// Reads `id`'s envelope, noting whether it has an `env/` file (which its removal unlinks).
    fn read_known(&self, id: &str) -> io::Result<Option<Result<Envelope, String>>> {
        let env_path = self.envelope_path(id);
        let has_env = env_path.exists();
        if has_env {
            self.with_env().insert(id.to_string());
        }
        read_envelope(
            &self.message_path(id),
            has_env.then_some(env_path.as_path()),
        )
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

    /// Every queued envelope; removes what a crash left (files in `tmp/`, `env/` files whose
    /// message is gone, message files of an older version without an envelope). A message whose
    /// envelope cannot be read is moved to `corrupt/` (with its `env/` file) and reported.
    pub fn load(&self) -> Result<(Vec<Envelope>, Vec<String>), DeliveryError> {
        let mut problems = Vec::new();
        for e in fs::read_dir(&self.tmp)
            .map_err(io_err("list", &self.tmp))?
            .flatten()
        {
            let _ = fs::remove_file(e.path());
        }
        // Files (not the instances' directories) straight in tmp/ and spare/ are an older
        // version's, never acknowledged.
        for sub in ["tmp", "spare"] {
            for e in fs::read_dir(self.dir.join(sub))
                .into_iter()
                .flatten()
                .flatten()
            {
                if e.file_type().is_ok_and(|t| t.is_file()) {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
        let env_dir = self.dir.join("env");
        let mut later: std::collections::HashMap<String, PathBuf> = fs::read_dir(&env_dir)
            .map_err(io_err("list", &env_dir))?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_suffix(".json")?.to_string();
                Some((id, e.path()))
            })
            .collect();
        let msg_dir = self.dir.join("msg");
        let mut envelopes = Vec::new();
        let mut inodes = HashSet::new();
        for e in fs::read_dir(&msg_dir)
            .map_err(io_err("list", &msg_dir))?
            .flatten()
        {
            inodes.insert(std::os::unix::fs::DirEntryExt::ino(&e));
            let id = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            let env_path = later.remove(&id);
            // Unreadable (permissions, I/O): never a reason to delete anything.
            let parsed =
                read_envelope(&path, env_path.as_deref()).map_err(|e| io_err("read", &path)(e))?;
            match parsed {
                Some(Ok(env)) if env.id == id => {
                    if env_path.is_some() {
                        self.with_env().insert(id);
                    }
                    envelopes.push(env)
                }
                None => {
                    let _ = fs::remove_file(&path);
                }
                Some(other) => {
                    let why = match other {
                        Ok(env) => format!("its envelope names another message ({})", env.id),
                        Err(why) => why,
                    };
                    // Set aside, message and all (nothing acknowledged is lost).
                    let corrupt = self.dir.join("corrupt");
                    let _ = fs::create_dir_all(&corrupt);
                    let _ = fs::rename(&path, corrupt.join(&id));
                    let shown = match &env_path {
                        Some(p) => {
                            let _ = fs::rename(p, corrupt.join(format!("{id}.json")));
                            p.display().to_string()
                        }
                        None => path.display().to_string(),
                    };
                    problems.push(format!(
                        "{shown}: {why}; the message moved to {}",
                        corrupt.display()
                    ));
                }
            }
        }
        // What a removal interrupted by a crash left: the message was already gone.
        for (_, path) in later {
            let _ = fs::remove_file(&path);
        }
        self.load_spares(&inodes)?;
        envelopes.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok((envelopes, problems))
    }

    /// The message of `env`, without the envelope line its file starts with: the `size`
    /// octets after `body_offset`, in one pread (no stat, no read to the end of the file).
    pub fn read_message(&self, env: &Envelope) -> io::Result<Arc<[u8]>> {
        use std::os::unix::fs::FileExt;
        let path = self.message_path(&env.id);
        let short = |e: io::Error| match e.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::other(format!(
                "{}: shorter than its envelope says ({} + {} bytes)",
                path.display(),
                env.body_offset,
                env.size
            )),
            _ => e,
        };
        let size = usize::try_from(env.size).map_err(io::Error::other)?;
        let mut body = vec![0; size];
        File::open(&path)?
            .read_exact_at(&mut body, env.body_offset)
            .map_err(short)?;
        Ok(Arc::from(body))
    }

    /// Replaces `env`'s file durably (write, fsync, rename, fsync the directory). The temporary
    /// file's name is unique, so two saves of one message never write the same inode.
    pub fn save(&self, env: &Envelope) -> Result<(), DeliveryError> {
        static SAVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SAVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}.{n}.json", env.id));
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
        // Known before the rename: a removal racing with a failed save still looks for it.
        self.with_env().insert(env.id.clone());
        fs::rename(&tmp, &to).map_err(io_err("rename into", &to))?;
        self.sync_sub("env")?;
        Ok(())
    }

    /// Removes a message and its envelope: the message first (once it is out of `msg/`,
    /// nothing is sent again; the directory fsync makes that survive a power cut), then its
    /// `env/` file if it has one. Removals at once share their directory fsyncs. A small
    /// message's file is recycled into `spare/` while there is room.
    pub fn remove(&self, id: &str) -> Result<(), DeliveryError> {
        self.remove_locked(id, None)
    }

    /// [`QueueStore::remove`] of a message this process claimed: the lock is dropped once the
    /// file has left `msg/`, before the file may be recycled for another message.
    pub fn remove_claimed(&self, id: &str, lock: File) -> Result<(), DeliveryError> {
        self.remove_locked(id, Some(lock))
    }

    fn remove_locked(&self, id: &str, lock: Option<File>) -> Result<(), DeliveryError> {
        let msg = self.message_path(id);
        let len = match fs::symlink_metadata(&msg) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => u64::MAX,
            Err(e) => return Err(io_err("remove", &msg)(e).into()),
        };
        let recycle = len <= SPARE_MAX_BYTES && self.spares().len() < SPARE_FILES;
        let gone = if recycle {
            let spare = self.spare.join(id);
            fs::rename(&msg, &spare)
        } else {
            fs::remove_file(&msg)
        };
        drop(lock);
        match gone {
            Ok(()) => {
                self.sync_sub("msg")?;
                if recycle {
                    self.spares().push((id.to_string(), len));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("remove", &msg)(e).into()),
        }
        if self.with_env().remove(id) {
            let env = self.envelope_path(id);
            match fs::remove_file(&env) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("remove", &env)(e).into()),
            }
        }
        Ok(())
    }
}

impl Target for QueueStore {
    fn begin(self: Arc<Self>, origin: &Origin, recipients: &[Recipient]) -> Box<dyn Delivery> {
        let id = self.new_id();
        let now = unix_now();
        let envelope = Envelope {
            id: id.clone(),
            sender: origin.sender.clone(),
            created: now,
            size: 0,
            body_offset: 0,
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
                    alias: r.alias.clone(),
                    warned: false,
                    success_report: false,
                })
                .collect(),
        };
        let tmp = self.tmp.join(&id);
        Box::new(QueueDelivery {
            store: self,
            envelope,
            tmp,
            file: None,
            recycled: None,
            placed: false,
        })
    }
}

/// A message being queued. Dropped without commit, it leaves nothing behind.
struct QueueDelivery {
    store: Arc<QueueStore>,
    envelope: Envelope,
    /// Where the file is written: in `tmp/`, or the recycled file's name in `spare/`.
    tmp: PathBuf,
    file: Option<File>,
    /// The recycled file's length before this message (cut to this one's at the commit).
    recycled: Option<u64>,
    /// The file left `tmp/` or `spare/`.
    placed: bool,
}

impl QueueDelivery {
    /// The file, made at the first write with the envelope line it starts with.
    fn file(&mut self) -> Result<&mut File, DeliveryError> {
        let file = match self.file.take() {
            Some(f) => f,
            None => {
                let mut line = HEADER.to_vec();
                serde_json::to_writer(&mut line, &self.envelope).map_err(|e| FsError {
                    op: "encode",
                    path: self.tmp.clone(),
                    source: io::Error::other(e),
                })?;
                line.push(b'\n');
                let mut f = self.open()?;
                f.write_all(&line).map_err(io_err("write", &self.tmp))?;
                self.envelope.body_offset = line.len() as u64;
                f
            }
        };
        Ok(self.file.insert(file))
    }

    /// A recycled file when one is left (written from its start), else a new one in `tmp/`.
    fn open(&mut self) -> Result<File, DeliveryError> {
        let spare = self.store.spares().pop();
        if let Some((name, len)) = spare {
            let path = self.store.spare.join(name);
            if let Ok(f) = OpenOptions::new().write(true).open(&path) {
                self.tmp = path;
                self.recycled = Some(len);
                return Ok(f);
            }
        }
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&self.tmp)
            .map_err(|e| io_err("create", &self.tmp)(e).into())
    }

    fn place(&mut self) -> Result<(), DeliveryError> {
        self.file()?;
        let len = self.envelope.body_offset + self.envelope.size;
        if let Some(file) = &self.file {
            if self.recycled.is_some_and(|old| old > len) {
                file.set_len(len).map_err(io_err("truncate", &self.tmp))?;
            }
            file.sync_all().map_err(io_err("fsync", &self.tmp))?;
        }
        self.file = None;
        crate::testing::stall_point("queue_after_fsync");
        let msg = self.store.message_path(&self.envelope.id);
        fs::rename(&self.tmp, &msg).map_err(io_err("rename into", &msg))?;
        self.placed = true;
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
