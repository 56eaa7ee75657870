//! Changes to the selected folder made by other programs (Dovecot, mutt, procmail, another
//! server), seen through inotify on its `new/` and `cur/` while a session is in IDLE. Changes by
//! this smtpd arrive in-process instead (deliveries and "mailbox changed" watch events).

use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// One inotify instance on a folder's `new/` and `cur/`.
pub struct FolderWatch {
    fd: AsyncFd<Fd>,
}

impl FolderWatch {
    /// Watches the Maildir folder `dir`; `None` when inotify is not available (out of instances
    /// or watches: `fs.inotify.max_user_instances`), and IDLE then looks every `idle_poll_secs`.
    pub fn new(dir: &Path) -> Option<FolderWatch> {
        let ino = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
        let mask = AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_MOVED_FROM
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_ONLYDIR;
        for sub in ["new", "cur"] {
            ino.add_watch(&dir.join(sub), mask).ok()?;
        }
        // SAFETY: `Fd` owns the inotify descriptor (an `OwnedFd` inside `Inotify`), which stays
        // open and the same until the `AsyncFd` drops it; `as_raw_fd` always returns it.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(ino), Interest::READABLE) }.ok()?;
        Some(FolderWatch { fd })
    }

    /// Returns when something changed in the folder since the last call (events are drained);
    /// never, if the instance fails.
    pub async fn changed(&mut self) {
        loop {
            let Ok(mut ready) = self.fd.readable().await else {
                return std::future::pending().await;
            };
            match ready.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
                Ok(Ok(events)) if !events.is_empty() => return,
                Ok(Ok(_)) => {}
                Ok(Err(_)) => return std::future::pending().await,
                // Spurious readiness: cleared, wait again.
                Err(_) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_file_added_or_renamed_by_another_program_is_seen() {
        let d = tempfile::tempdir().unwrap();
        for s in ["tmp", "new", "cur"] {
            std::fs::create_dir(d.path().join(s)).unwrap();
        }
        let mut w = FolderWatch::new(d.path()).unwrap();
        std::fs::write(d.path().join("new/1.M1P1.h"), "x\n").unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .unwrap();
        std::fs::rename(
            d.path().join("new/1.M1P1.h"),
            d.path().join("cur/1.M1P1.h:2,S"),
        )
        .unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .unwrap();
        // Nothing more: no wake-up.
        assert!(
            tokio::time::timeout(Duration::from_millis(100), w.changed())
                .await
                .is_err()
        );
        assert!(FolderWatch::new(&d.path().join("missing")).is_none());
    }
}
