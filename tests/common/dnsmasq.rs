//! [`Dnsmasq`]: Debian's dnsmasq as a test name server on 127.0.0.1 and a free port, answering
//! only the records a test gives it (no system config, no upstream, no /etc/hosts; every other
//! name under `.test` is NXDOMAIN). Ready once it answers a query; killed (by its PID) on drop.

use std::net::UdpSocket;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::WAIT;

pub struct Dnsmasq {
    child: Child,
    pub port: u16,
    /// Its log (stderr), for failure messages.
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The dnsmasq program, or `None` (with a printed reason) when it is not installed; under
/// CI=true that is a failure.
pub fn dnsmasq_bin() -> Option<PathBuf> {
    // Debian puts it in /usr/sbin, which a non-root PATH may not have.
    let sbin = PathBuf::from("/usr/sbin/dnsmasq");
    if sbin.exists() {
        return Some(sbin);
    }
    super::have("dnsmasq").then(|| PathBuf::from("dnsmasq"))
}

/// A port that was free for UDP a moment ago (another process may take it: callers retry).
pub fn free_udp_port() -> u16 {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket");
    s.local_addr().expect("local address").port()
}

impl Dnsmasq {
    /// Starts dnsmasq with `records` (e.g. `--mx-host=far.test,mx1.far.test,10`) on a free port,
    /// trying another port when the one picked is taken. `None` when dnsmasq is not installed.
    pub fn start(records: &[&str]) -> Option<Dnsmasq> {
        for _ in 0..10 {
            if let Some(d) = Self::start_on(free_udp_port(), records)? {
                return Some(d);
            }
        }
        panic!("dnsmasq could not bind a free port in 10 tries");
    }

    /// On `port`: `Some(None)` when it could not bind it (taken meanwhile).
    pub fn start_on(port: u16, records: &[&str]) -> Option<Option<Dnsmasq>> {
        let bin = dnsmasq_bin()?;
        let dir = tempfile::tempdir().expect("tempdir");
        let log = dir.path().join("dnsmasq.log");
        let child = Command::new(bin)
            .args([
                "--no-daemon",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--log-facility=-",
                "--log-queries",
                "--listen-address=127.0.0.1",
                "--bind-interfaces",
                "--local=/test/",
                &format!("--port={port}"),
            ])
            .args(records)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("dnsmasq log file"))
            .spawn()
            .expect("start dnsmasq");
        let mut d = Dnsmasq {
            child,
            port,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = d.child.try_wait().expect("dnsmasq status") {
                let log = d.log();
                if log.contains("Address already in use") {
                    return Some(None);
                }
                panic!("dnsmasq exited ({status}): {log}");
            }
            if d.answers() {
                return Some(Some(d));
            }
            std::thread::sleep(Duration::from_millis(20));
            assert!(
                Instant::now() < deadline,
                "dnsmasq did not answer: {}",
                d.log()
            );
        }
    }

    /// Whether it answers an MX query now (waits up to 100 ms).
    fn answers(&self) -> bool {
        let Ok(s) = UdpSocket::bind("127.0.0.1:0") else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(100)));
        // ID 0x5eed, recursion desired, one question: "ready.test" MX IN.
        let mut q = vec![0x5e, 0xed, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["ready", "test"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 15, 0, 1]);
        if s.send_to(&q, ("127.0.0.1", self.port)).is_err() {
            return false;
        }
        let mut buf = [0u8; 512];
        matches!(s.recv_from(&mut buf), Ok((n, _)) if n >= 12 && buf[..2] == [0x5e, 0xed])
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `[dns] nameservers` for it.
    pub fn nameservers(&self) -> String {
        format!("[\"127.0.0.1:{}\"]", self.port)
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
