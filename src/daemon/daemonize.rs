//! Detaching from the terminal, before the runtime or any thread exists: fork, setsid, fork,
//! chdir /, umask, stdio to /dev/null. The first parent waits on a pipe and exits 0 only when the
//! daemon reports its listeners bound, or prints the daemon's error and exits 1.

use std::io::{PipeWriter, Read, Write};

use anyhow::Context;
use nix::unistd::{ForkResult, fork, setsid};

/// The daemon's end of the start-up pipe. In the foreground it holds nothing.
pub struct Readiness {
    pipe: Option<PipeWriter>,
}

impl Readiness {
    pub fn foreground() -> Self {
        Readiness { pipe: None }
    }

    /// The listeners are bound: let the parent exit 0.
    pub fn ready(&mut self) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(b"READY\n");
        }
    }

    /// Start-up failed: the parent prints this and exits 1.
    pub fn fail(&mut self, error: &str) {
        if let Some(mut p) = self.pipe.take() {
            let _ = p.write_all(format!("ERROR {error}\n").as_bytes());
        }
    }

    pub fn is_daemon(&self) -> bool {
        self.pipe.is_some()
    }
}

/// Forks into the background. Returns in the daemon only; the original process exits here.
pub fn detach() -> anyhow::Result<Readiness> {
    let (mut reader, writer) = std::io::pipe().context("cannot create the start-up pipe")?;
    // SAFETY: called before any thread is started (no runtime, no logger thread yet).
    match unsafe { fork() }.context("cannot fork")? {
        ForkResult::Parent { child } => {
            drop(writer);
            let mut report = String::new();
            let _ = reader.read_to_string(&mut report);
            let _ = nix::sys::wait::waitpid(child, None);
            if report.starts_with("READY") {
                std::process::exit(0);
            }
            match report.strip_prefix("ERROR ") {
                Some(e) => eprintln!("smtpd: {}", e.trim_end()),
                None => eprintln!(
                    "smtpd: the daemon exited during start-up without saying why (see its log files)"
                ),
            }
            std::process::exit(1);
        }
        ForkResult::Child => {}
    }
    drop(reader);
    setsid().context("setsid failed")?;
    // SAFETY: still single-threaded.
    match unsafe { fork() }.context("cannot fork")? {
        ForkResult::Parent { .. } => {
            // The intermediate process: its exit reparents the daemon; the pipe stays open in it.
            unsafe { nix::libc::_exit(0) };
        }
        ForkResult::Child => {}
    }
    std::env::set_current_dir("/").context("chdir / failed")?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o027));
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("cannot open /dev/null")?;
    nix::unistd::dup2_stdin(&null).context("dup2 stdin")?;
    nix::unistd::dup2_stdout(&null).context("dup2 stdout")?;
    nix::unistd::dup2_stderr(&null).context("dup2 stderr")?;
    Ok(Readiness { pipe: Some(writer) })
}

/// The pid file, locked for the daemon's lifetime: a second smtpd on the same file is refused.
pub struct PidFile {
    path: std::path::PathBuf,
    _file: std::fs::File,
}

impl PidFile {
    pub fn acquire(path: &std::path::Path) -> anyhow::Result<PidFile> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        let mut file = std::fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot open the pid file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut other = String::new();
                let _ = file.read_to_string(&mut other);
                anyhow::bail!(
                    "smtpd is already running (pid {} holds the pid file {})",
                    other.trim(),
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|_| file.write_all(format!("{}\n", std::process::id()).as_bytes()))
            .and_then(|_| file.sync_all())
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        Ok(PidFile {
            path: path.to_path_buf(),
            _file: file,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
