//! Postfix's `smtp-sink` as a real receiving peer: started on a free loopback port with the
//! options given (e.g. `-N`: no DSN), each message dumped to a file, killed on drop.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;
use super::clients::have;

pub struct Sink {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Sink {
    /// `None` (with a printed reason) when smtp-sink is not installed; under CI=true that fails.
    pub fn start(options: &[&str]) -> Option<Sink> {
        if !have("smtp-sink") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        // As root smtp-sink must switch to another user, who then writes the dumps.
        let root = nix::unistd::geteuid().is_root();
        if root {
            Command::new("chmod")
                .arg("777")
                .arg(dir.path())
                .status()
                .unwrap();
        }
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let mut cmd = Command::new("smtp-sink");
            if root {
                cmd.args(["-u", "nobody"]);
            }
            cmd.args(options)
                .arg("-d")
                .arg(dir.path().join("%H%M%S."))
                .arg(addr.to_string())
                .arg("64")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = cmd.spawn().expect("spawn smtp-sink");
            let deadline = Instant::now() + WAIT;
            loop {
                if TcpStream::connect(addr).is_ok() {
                    return Some(Sink { child, addr, dir });
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > deadline {
                    // The port was taken meanwhile, or it could not start: try another.
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("smtp-sink did not start");
    }

    /// The dumped transactions: the X-*-Args lines smtp-sink writes, then the message as it
    /// came over the wire (LF line ends, still dot-stuffed).
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
            .iter()
            .filter_map(|p| std::fs::read_to_string(p).ok())
            // A dump is complete once the message's end (an empty line after the text) is in.
            .filter(|t| t.ends_with("\n\n"))
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
