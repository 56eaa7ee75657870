//! What the engine needs from storage, as plain data and one trait: the folder tree, the
//! selected folder's messages (UID order) with their flags, and the operations IMAP asks of
//! them. The Maildir implementation lives with the connection driver (`net::imap_store`); the
//! engine's tests use an in-memory one (`fake`).

/// The five IMAP system flags that a Maildir keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flag {
    Draft,
    Flagged,
    Answered,
    Seen,
    Deleted,
}

impl Flag {
    pub const ALL: [Flag; 5] = [
        Flag::Draft,
        Flag::Flagged,
        Flag::Answered,
        Flag::Seen,
        Flag::Deleted,
    ];

    /// The IMAP name (`\Seen`...).
    pub fn name(self) -> &'static str {
        match self {
            Flag::Draft => "\\Draft",
            Flag::Flagged => "\\Flagged",
            Flag::Answered => "\\Answered",
            Flag::Seen => "\\Seen",
            Flag::Deleted => "\\Deleted",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A message's flags: the system flags, and keywords as bits (bit i: the selected folder's
/// keyword i, [`Selected::keywords`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    system: u8,
    pub keywords: u32,
}

impl Flags {
    pub fn contains(self, f: Flag) -> bool {
        self.system & f.bit() != 0
    }
    pub fn insert(&mut self, f: Flag) {
        self.system |= f.bit();
    }
    pub fn remove(&mut self, f: Flag) {
        self.system &= !f.bit();
    }
    /// In a fixed order.
    pub fn iter(self) -> impl Iterator<Item = Flag> {
        Flag::ALL.into_iter().filter(move |f| self.contains(*f))
    }
    pub fn has_keyword(self, i: u8) -> bool {
        i < 32 && self.keywords & 1 << i != 0
    }
    pub fn set_keyword(&mut self, i: u8, on: bool) {
        if i < 32 {
            if on {
                self.keywords |= 1 << i;
            } else {
                self.keywords &= !(1 << i);
            }
        }
    }
}

/// One message of the selected folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Msg {
    pub uid: u32,
    pub flags: Flags,
    /// \Recent: first seen by this session.
    pub recent: bool,
    /// Octets as FETCH sends them (CRLF line ends).
    pub size: u64,
    /// INTERNALDATE, Unix seconds.
    pub internal: i64,
    /// MODSEQ: the mod-sequence of its last change (RFC 7162).
    pub modseq: u64,
}

/// The selected folder as the engine reads it.
#[derive(Clone, Copy, Debug)]
pub struct Selected<'a> {
    pub uidvalidity: u32,
    pub next_uid: u32,
    pub msgs: &'a [Msg],
    /// The folder's keyword names by index (an empty name for an unused index).
    pub keywords: &'a [String],
    /// HIGHESTMODSEQ (RFC 7162).
    pub highest_modseq: u64,
}

/// What a sync found since the last one.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Sequence numbers to report as EXPUNGE, in the order to send them.
    pub expunged: Vec<u32>,
    /// Their UIDs, ascending (VANISHED once QRESYNC is enabled).
    pub vanished: Vec<u32>,
    /// The new message count when it changed.
    pub exists: Option<u32>,
    /// Sequence numbers (after the expunges) whose flags changed.
    pub flags: Vec<u32>,
}

/// Where a message's bytes are, for a driver that streams them (FETCH BODY[] of a whole
/// message): plain data, the engine never opens it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MessageFile {
    /// The file as last seen.
    pub path: std::path::PathBuf,
    /// Its folder and base name, to find it again when it was renamed meanwhile.
    pub folder: std::path::PathBuf,
    pub base: String,
    /// Its octets with CRLF line ends, as the folder's index knows them (RFC822.SIZE): the
    /// literal's size without a first pass over the file.
    pub size: u64,
}

/// One folder for LIST.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderInfo {
    pub name: String,
    /// The RFC 6154 attribute (`\Sent`...).
    pub special: Option<&'static str>,
    pub has_children: bool,
    pub subscribed: bool,
}

/// STATUS counts of one folder.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub messages: u32,
    pub recent: u32,
    pub uidnext: u32,
    pub uidvalidity: u32,
    pub unseen: u32,
    pub deleted: u32,
    /// Octets of all messages as FETCH sends them (STATUS SIZE, RFC 8438 / RFC 9051).
    pub size: u64,
    /// HIGHESTMODSEQ (RFC 7162).
    pub highest_modseq: u64,
}

/// Why a storage operation failed, as the engine answers it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// A folder name that cannot be one; the text says why, for the client.
    #[error("{0}")]
    BadName(&'static str),
    #[error("no such folder")]
    NoSuchFolder,
    #[error("the folder already exists")]
    Exists,
    /// Not possible for this folder; the text says why, for the client.
    #[error("{0}")]
    Refused(&'static str),
    /// The message was removed by another session or program.
    #[error("the message is gone")]
    Gone,
    /// Out of disk space or quota.
    #[error("no space left")]
    DiskFull,
    /// Anything else: the text is for the log, not the client.
    #[error("{0}")]
    Failed(String),
}

pub trait Store: Send {
    fn folders(&self) -> Result<Vec<FolderInfo>, StoreError>;
    fn create(&mut self, name: &str) -> Result<(), StoreError>;
    fn delete(&mut self, name: &str) -> Result<(), StoreError>;
    fn rename(&mut self, from: &str, to: &str) -> Result<(), StoreError>;
    fn subscribe(&mut self, name: &str, on: bool) -> Result<(), StoreError>;
    /// The subscribed names, also those of folders that do not exist (LIST (SUBSCRIBED) shows
    /// them as `\NonExistent`).
    fn subscriptions(&self) -> Result<Vec<String>, StoreError>;
    fn status(&self, name: &str) -> Result<Status, StoreError>;
    /// APPEND into `name` (INTERNALDATE `internal`; now when `None`) with these system flags
    /// (`flags.keywords` is ignored) and keywords by name: (UIDVALIDITY, UID).
    fn append(
        &mut self,
        name: &str,
        body: &[u8],
        flags: Flags,
        keywords: &[&str],
        internal: Option<i64>,
    ) -> Result<(u32, u32), StoreError>;
    /// Selects `name`; the previous selection ends. Read-write: new mail becomes \Recent.
    fn select(&mut self, name: &str, read_only: bool) -> Result<(), StoreError>;
    fn deselect(&mut self);
    /// The session waits in IDLE: the store may drop the selected folder's messages until the
    /// next [`Store::sync`] (which wakes it when the folder changed) or [`Store::wake`]; the
    /// engine reads nothing of the folder meanwhile.
    fn sleep(&mut self) {}
    /// Awake again after [`Store::sleep`] (a [`Store::sync`] when awake), with what changed.
    fn wake(&mut self) -> Result<Changes, StoreError> {
        self.sync()
    }
    fn selected(&self) -> Option<Selected<'_>>;
    /// Brings the selected folder up to date with changes made elsewhere.
    fn sync(&mut self) -> Result<Changes, StoreError>;
    /// The index of keyword `name` in the selected folder, defined there when new; `None` when
    /// the folder can take no more keywords.
    fn keyword(&mut self, name: &str) -> Result<Option<u8>, StoreError>;
    /// Sets the flags and keywords of messages (by index; other flags the store keeps are
    /// kept), all changed ones under one new mod-sequence. With `unchanged_since` (STORE
    /// UNCHANGEDSINCE), messages whose mod-sequence is above it are left alone: their indexes
    /// are returned.
    fn store_flags(
        &mut self,
        changes: &[(usize, Flags)],
        unchanged_since: Option<u64>,
    ) -> Result<Vec<usize>, StoreError>;
    /// Sets the flags and keywords of message `i`.
    fn set_flags(&mut self, i: usize, flags: Flags) -> Result<(), StoreError> {
        self.store_flags(&[(i, flags)], None).map(|_| ())
    }
    /// Removes the messages `pick` names: (EXPUNGE sequence number, UID) in the order to send
    /// them.
    fn expunge(
        &mut self,
        pick: &dyn Fn(usize, &Msg) -> bool,
    ) -> Result<Vec<(u32, u32)>, StoreError>;
    /// The UIDs expunged from the selected folder after mod-sequence `since` (and no longer in
    /// the view), ascending; `None` when the store no longer knows them all.
    fn expunged_since(&self, since: u64) -> Option<Vec<u32>>;
    /// The stored bytes of message `i`.
    fn read(&self, i: usize) -> Result<Vec<u8>, StoreError>;
    /// The file of message `i` when the driver can stream it instead of [`Store::read`].
    fn file(&self, _i: usize) -> Option<MessageFile> {
        None
    }
    /// COPY of messages `idx` into `dest`: (UIDVALIDITY of dest, (old UID, new UID)...).
    fn copy(&mut self, idx: &[usize], dest: &str) -> Result<(u32, Vec<(u32, u32)>), StoreError>;
}
