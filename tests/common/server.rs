//! [`Server`]: the real `smtpd` on port 0 in its own temporary directory, ready once its log says
//! so; also the binaries' paths, [`start_until_ready`] and `/proc` status figures.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Client, LogWatch, Overrides, Pop3, WAIT, config_text, list};

pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub smtp: SocketAddr,
    /// The POP3 listener, when the config has one.
    pub pop3: Option<SocketAddr>,
    pub log: LogWatch,
    /// The command smtpd was started through (e.g. `ip netns exec NS`), again at a restart.
    wrapper: Vec<String>,
}

/// The address in a "listening on PROTO ADDR" log line.
fn listening(line: &str, proto: &str) -> Option<SocketAddr> {
    let rest = line.split(&format!("listening on {proto} ")).nth(1)?;
    let end = rest
        .find(|c: char| !(c.is_ascii_hexdigit() || ".:[]".contains(c)))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

/// Starts smtpd in the foreground on `config`, waits until it is ready, and ends it.
pub fn start_until_ready(config: &Path) {
    let mut child = Command::new(smtpd_bin())
        .args(["--foreground", "--config"])
        .arg(config)
        .stderr(Stdio::piped())
        .spawn()
        .expect("start smtpd");
    let log = LogWatch::spawn(child.stderr.take().expect("stderr"));
    // Ended even when the wait below fails.
    struct Ends(Child);
    impl Drop for Ends {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Ends(child);
    log.wait_for("ready");
}

pub fn smtpd_bin() -> &'static str {
    env!("CARGO_BIN_EXE_smtpd")
}

pub fn smtpctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_smtpctl")
}

pub fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Overrides::new())
    }

    pub fn start_with(o: Overrides) -> Server {
        Self::start_wrapped(o, &[])
    }

    /// Starts smtpd through a wrapper command (e.g. `ip netns exec NS`), which must exec it.
    pub fn start_wrapped(o: Overrides, wrapper: &[&str]) -> Server {
        Self::start_full(o, wrapper, &[])
    }

    /// With extra environment variables.
    pub fn start_env(o: Overrides, env: &[(&str, &str)]) -> Server {
        Self::start_full(o, &[], env)
    }

    fn start_full(o: Overrides, wrapper: &[&str], env: &[(&str, &str)]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("smtpd.toml");
        std::fs::write(&config, config_text(dir.path(), &o)).unwrap();
        let (child, log, smtp, pop3) = Self::spawn(dir.path(), &config, wrapper, env);
        Server {
            child,
            dir,
            config,
            smtp,
            pop3,
            log,
            wrapper: wrapper.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// SIGKILLs smtpd (no clean-up of any kind) and starts it again on the same directory and
    /// config (through the same wrapper), with `env`; waits until it is ready.
    pub fn kill_and_restart(&mut self, env: &[(&str, &str)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let wrapper: Vec<&str> = self.wrapper.iter().map(String::as_str).collect();
        let (child, log, smtp, pop3) = Self::spawn(self.dir.path(), &self.config, &wrapper, env);
        self.child = child;
        self.log = log;
        self.smtp = smtp;
        self.pop3 = pop3;
    }

    fn spawn(
        dir: &Path,
        config: &Path,
        wrapper: &[&str],
        env: &[(&str, &str)],
    ) -> (Child, LogWatch, SocketAddr, Option<SocketAddr>) {
        let mut cmd = match wrapper.split_first() {
            None => Command::new(smtpd_bin()),
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(smtpd_bin());
                c
            }
        };
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .arg("--foreground")
            .arg("--config")
            .arg(config)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start smtpd");
        let log = LogWatch::spawn(child.stderr.take().unwrap());
        let line = log.wait_for("listening on smtp ");
        log.wait_for("ready");
        let smtp = listening(&line, "smtp").expect("smtp address in log line");
        let pop3 = log.all().lines().find_map(|l| listening(l, "pop3"));
        (child, log, smtp, pop3)
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("mailboxes")
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/smtpd.sock")
    }

    /// Runs `smtpctl --socket <this server's socket> ARGS`.
    pub fn ctl(&self, args: &[&str]) -> std::process::Output {
        Command::new(smtpctl_bin())
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run smtpctl")
    }

    /// `smtpctl ... --json ARGS` parsed.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--json"];
        a.extend_from_slice(args);
        let out = self.ctl(&a);
        assert!(
            out.status.success(),
            "smtpctl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("smtpctl --json output")
    }

    /// `smtpctl queue --json`: the queued messages, oldest first.
    pub fn queue(&self) -> Vec<serde_json::Value> {
        match self.ctl_json(&["queue"]) {
            serde_json::Value::Array(v) => v,
            other => panic!("smtpctl queue --json: not a list: {other}"),
        }
    }

    /// Rewrites the config file with `o` (same directory layout).
    pub fn rewrite_config(&self, o: &Overrides) {
        std::fs::write(&self.config, config_text(self.dir.path(), o)).unwrap();
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Files in `<root>/<domain>/<local>/new`, sorted.
    pub fn new_mail(&self, domain: &str, local: &str) -> Vec<PathBuf> {
        list(&self.root().join(domain).join(local).join("new"))
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.smtp)
    }

    /// `http://ADDR` of the first HTTP listener (`[http] listen`), from the log.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr("http"))
    }

    /// The bound address of the first listener of `protocol` (smtp, submission, submissions,
    /// pop3, pop3s, http), from the log.
    pub fn addr(&self, protocol: &str) -> SocketAddr {
        self.log
            .all()
            .lines()
            .find_map(|l| listening(l, protocol))
            .unwrap_or_else(|| panic!("no {protocol} listener"))
    }

    pub fn pop3(&self) -> Pop3 {
        Pop3::connect(self.pop3.expect("no POP3 listener configured"))
    }

    /// Delivers one message over SMTP (raw CRLF data, dot-stuffed by the caller).
    pub fn deliver(&self, to: &str, data: &[u8]) {
        let mut c = self.connect();
        c.expect(220);
        let r = c.send_mail("sender@b.test", &[to], data);
        assert_eq!(r.code, 250, "{r:?}");
        c.cmd("QUIT");
    }

    pub fn signal(&self, sig: i32) {
        unsafe_kill(self.pid(), sig);
    }

    /// Waits for exit (up to WAIT).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(Instant::now() < deadline, "smtpd did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Peak resident set size (VmHWM) in KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        proc_status_kib(self.pid(), "VmHWM:")
    }
}

pub fn proc_status_kib(pid: i32, key: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn unsafe_kill(pid: i32, sig: i32) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill");
    assert!(status.success());
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
