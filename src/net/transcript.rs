//! Session transcripts (`[log] transcripts = true`): each SMTP session's dialogue, `C:` and `S:`
//! lines, kept in `<log dir>/transcripts/<start>-<pid>-<session>.log`, with AUTH secrets
//! redacted and message text reduced to its size. `by-id/<queue id>` links each delivered message
//! to its session's file, for `smtpctl transcript ID`. Files older than
//! `[log] transcript_keep_days` are removed at start and every 1,000 sessions.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// Where and how much (from the config).
#[derive(Clone, Debug)]
pub struct TranscriptConfig {
    pub dir: PathBuf,
    /// A session's transcript stops growing here ("[transcript truncated]").
    pub max_bytes: usize,
    pub keep: Duration,
}

/// One session's dialogue: lines gather in memory and are appended to its file at each delivery
/// and at the end (only what is new each time).
pub struct Transcript {
    cfg: TranscriptConfig,
    name: String,
    /// Not yet written.
    buf: Vec<u8>,
    /// Octets of the whole transcript so far (written or not), against `max_bytes`.
    total: usize,
    truncated: bool,
    /// The next client line is a SASL response (after a 334): redact it.
    redact_next: bool,
    /// A client line split across reads.
    partial: Vec<u8>,
    /// Message text octets not yet summarised.
    data_octets: u64,
    /// Messages delivered since the last write, to link under by-id/.
    pending_ids: Vec<String>,
}

static SESSIONS: AtomicU64 = AtomicU64::new(0);

impl Transcript {
    pub fn new(cfg: &TranscriptConfig, sid: u64, peer: &str, listener: &str) -> Transcript {
        let secs = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let now = crate::mailbox::headers::iso_utc(secs);
        let digits: String = now.chars().filter(char::is_ascii_digit).collect();
        let stamp = format!(
            "{}T{}",
            digits.get(..8).unwrap_or_default(),
            digits.get(8..14).unwrap_or_default()
        );
        let mut t = Transcript {
            cfg: cfg.clone(),
            name: format!("{stamp}-{}-{sid}.log", std::process::id()),
            buf: Vec::new(),
            total: 0,
            truncated: false,
            redact_next: false,
            partial: Vec::new(),
            data_octets: 0,
            pending_ids: Vec::new(),
        };
        t.push(
            format!("# session {sid} from {peer} on the {listener} listener, {now}\n").as_bytes(),
        );
        if SESSIONS.fetch_add(1, Ordering::Relaxed) % 1000 == 999 {
            let cfg = cfg.clone();
            std::thread::spawn(move || prune(&cfg));
        }
        t
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.truncated {
            return;
        }
        if self.total + bytes.len() > self.cfg.max_bytes {
            self.buf.extend_from_slice(b"[transcript truncated]\n");
            self.truncated = true;
            return;
        }
        self.total += bytes.len();
        self.buf.extend_from_slice(bytes);
    }

    /// Octets from the client; `in_data`: message text (summarised, never kept).
    pub fn client(&mut self, bytes: &[u8], in_data: bool) {
        if in_data {
            self.data_octets += bytes.len() as u64;
            return;
        }
        self.partial.extend_from_slice(bytes);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end_matches(['\r', '\n']);
            let shown = self.redact(text);
            self.push(format!("C: {shown}\n").as_bytes());
        }
        if self.partial.len() > 4096 {
            self.partial.clear();
            self.push(b"C: [a line over 4096 octets]\n");
        }
    }

    fn redact(&mut self, line: &str) -> String {
        if std::mem::take(&mut self.redact_next) {
            return if line == "*" {
                "*".into()
            } else {
                "[redacted]".into()
            };
        }
        let mut words = line.split(' ');
        let verb = words.next().unwrap_or("");
        if verb.eq_ignore_ascii_case("AUTH") {
            let mech = words.next().unwrap_or("");
            return if words.next().is_some() {
                format!("{verb} {mech} [redacted]")
            } else {
                format!("{verb} {mech}")
            };
        }
        line.to_string()
    }

    /// Octets the server sent.
    pub fn server(&mut self, bytes: &[u8]) {
        if self.data_octets > 0 {
            let n = std::mem::take(&mut self.data_octets);
            self.push(format!("C: [message text, {n} octets]\n").as_bytes());
        }
        for line in String::from_utf8_lossy(bytes).lines() {
            if line.starts_with("334") {
                self.redact_next = true;
            }
            self.push(format!("S: {line}\n").as_bytes());
        }
    }

    pub fn note(&mut self, text: &str) {
        self.push(format!("-- {text}\n").as_bytes());
    }

    pub fn delivered(&mut self, id: &str) {
        self.pending_ids.push(id.to_string());
    }

    /// What must reach the disk now (run its `write` on a blocking thread): the lines gathered
    /// since the last one, when there is a delivery to link or at the `end` of the session.
    pub fn snapshot(&mut self, end: bool) -> Option<Snapshot> {
        if !end && self.pending_ids.is_empty() {
            return None;
        }
        Some(Snapshot {
            dir: self.cfg.dir.clone(),
            name: self.name.clone(),
            text: std::mem::take(&mut self.buf),
            ids: std::mem::take(&mut self.pending_ids),
        })
    }
}

pub struct Snapshot {
    dir: PathBuf,
    name: String,
    text: Vec<u8>,
    ids: Vec<String>,
}

impl Snapshot {
    /// Appends the new lines to the session's file and makes the by-id links.
    pub fn write(self) -> io::Result<()> {
        let by_id = self.dir.join("by-id");
        std::fs::create_dir_all(&by_id)?;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(&self.name))?
            .write_all(&self.text)?;
        for id in self.ids {
            let link = by_id.join(&id);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(Path::new("..").join(&self.name), &link)?;
        }
        Ok(())
    }
}

/// A queue id as smtpd makes them (hex digits): anything else is refused before touching files.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// The transcript behind a delivered message.
pub fn read(dir: &Path, id: &str) -> io::Result<String> {
    if !valid_id(id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "a queue id is letters and digits only",
        ));
    }
    std::fs::read_to_string(dir.join("by-id").join(id))
}

/// Removes transcripts and links older than `keep`.
pub fn prune(cfg: &TranscriptConfig) -> usize {
    let mut removed = 0;
    for d in [cfg.dir.join("by-id"), cfg.dir.clone()] {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let old = e
                .path()
                .symlink_metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > cfg.keep);
            let is_file = e.file_type().map(|t| !t.is_dir()).unwrap_or(false);
            if old && is_file && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(dir: &Path) -> TranscriptConfig {
        TranscriptConfig {
            dir: dir.to_path_buf(),
            max_bytes: 4096,
            keep: Duration::from_secs(3600),
        }
    }

    #[test]
    fn dialogue_with_secrets_redacted_and_text_summarised() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Transcript::new(&cfg(d.path()), 7, "127.0.0.1:5000", "smtp");
        t.server(b"220 mx ESMTP\r\n");
        t.client(b"EHLO c\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n", false);
        t.server(b"250-mx\r\n250 AUTH PLAIN LOGIN\r\n535 5.7.8 no\r\n");
        t.client(b"AUTH LOG", false);
        t.client(b"IN\r\n", false);
        t.server(b"334 VXNlcm5hbWU6\r\n");
        t.client(b"YWxpY2U=\r\n", false);
        t.server(b"334 UGFzc3dvcmQ6\r\n");
        t.client(b"c2VjcmV0\r\n", false);
        t.server(b"235 2.7.0 ok\r\n");
        t.client(b"DATA\r\n", false);
        t.server(b"354 go\r\n");
        t.client(b"Subject: private\r\n\r\nbody\r\n.\r\n", true);
        t.server(b"250 2.0.0 Ok: queued as ABC123\r\n");
        t.delivered("ABC123");
        let text = String::from_utf8(t.buf.clone()).unwrap();
        assert!(text.contains("C: AUTH PLAIN [redacted]\n"), "{text}");
        assert!(
            text.contains("C: AUTH LOGIN\nS: 334 VXNlcm5hbWU6\nC: [redacted]\n"),
            "{text}"
        );
        assert!(
            text.contains("S: 334 UGFzc3dvcmQ6\nC: [redacted]\nS: 235"),
            "{text}"
        );
        assert!(text.contains("C: [message text, 29 octets]\nS: 250 2.0.0 Ok: queued as ABC123\n"));
        for secret in ["AGFsaWNlAHNlY3JldA", "YWxpY2U=", "c2VjcmV0", "private"] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
        t.snapshot(false).unwrap().write().unwrap();
        assert_eq!(read(d.path(), "ABC123").unwrap(), text);
        assert!(read(d.path(), "../x").is_err());
        assert!(t.snapshot(false).is_none(), "nothing new to link");
        // The end appends only what came after.
        t.client(b"QUIT\r\n", false);
        t.server(b"221 bye\r\n");
        t.snapshot(true).unwrap().write().unwrap();
        assert_eq!(
            read(d.path(), "ABC123").unwrap(),
            format!("{text}C: QUIT\nS: 221 bye\n")
        );
    }

    #[test]
    fn a_long_session_is_truncated() {
        let d = tempfile::tempdir().unwrap();
        let mut t = Transcript::new(&cfg(d.path()), 1, "p", "smtp");
        for _ in 0..1000 {
            t.client(b"NOOP\r\n", false);
        }
        assert!(t.total <= 4096);
        assert!(t.buf.len() <= 4096 + 32);
        assert!(t.buf.ends_with(b"[transcript truncated]\n"));
    }
}
