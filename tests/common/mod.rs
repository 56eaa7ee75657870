//! Shared harness for the black-box tests: starts the real `smtpd` on port 0 in its own temporary
//! directory, waits for readiness by reading its log lines (never by sleeping), and kills it on
//! drop. Also a tiny line-oriented SMTP client for transcript-style tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

pub const WAIT: Duration = Duration::from_secs(20);

/// Config overrides: section → key → TOML value ("" is the top level), and accounts.
#[derive(Clone, Debug, Default)]
pub struct Overrides(
    BTreeMap<String, BTreeMap<String, String>>,
    Vec<(String, String)>,
);

/// The password of every account the harness makes.
pub const PASSWORD: &str = "s3cret pass";

impl Overrides {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn set(mut self, section: &str, key: &str, value: &str) -> Self {
        self.0
            .entry(section.to_string())
            .or_default()
            .insert(key.to_string(), value.to_string());
        self
    }
    /// A POP3 listener on a free port, a short failed-login delay, and these accounts
    /// (password [`PASSWORD`]).
    pub fn pop3(mut self, accounts: &[&str]) -> Self {
        self = self.set("pop3", "listen", "[\"127.0.0.1:0\"]").set(
            "pop3",
            "auth_failure_delay_ms",
            "200",
        );
        for a in accounts {
            self = self.account(a, PASSWORD);
        }
        self
    }
    /// TLS with a self-signed certificate made at start, and every TLS listener: submission,
    /// submissions, pop3, pop3s; plus these accounts.
    pub fn tls(self, accounts: &[&str]) -> Self {
        self.pop3(accounts)
            .set("tls", "cert", "\"tls/cert.pem\"")
            .set("tls", "key", "\"tls/key.pem\"")
            .set("tls", "self_signed", "true")
            .set("smtp", "submission", "[\"127.0.0.1:0\"]")
            .set("smtp", "submissions", "[\"127.0.0.1:0\"]")
            .set("pop3", "pop3s", "[\"127.0.0.1:0\"]")
    }
    pub fn account(self, address: &str, password: &str) -> Self {
        let hash = smtpd::auth::password::hash(password).unwrap();
        self.account_hash(address, &hash)
    }
    /// An account with a ready-made password hash.
    pub fn account_hash(mut self, address: &str, hash: &str) -> Self {
        self.1.push((address.to_string(), hash.to_string()));
        self
    }
}

/// Builds a config for `dir`, the harness defaults overridden by `o`.
pub fn config_text(dir: &Path, o: &Overrides) -> String {
    let d = dir.display();
    let base = Overrides::new()
        .set("", "hostname", "\"mx.example.test\"")
        .set("smtp", "listen", "[\"127.0.0.1:0\"]")
        .set("pop3", "listen", "[]")
        .set("mailboxes", "root", &format!("\"{d}/mailboxes\""))
        .set("mailboxes", "domains", "[\"example.test\", \"localhost\"]")
        .set("log", "dir", &format!("\"{d}/logs\""))
        .set("control", "socket", &format!("\"{d}/run/smtpd.sock\""))
        .set("control", "pid_file", &format!("\"{d}/run/smtpd.pid\""));
    let mut merged = base.0;
    for (section, keys) in &o.0 {
        for (k, v) in keys {
            merged
                .entry(section.clone())
                .or_default()
                .insert(k.clone(), v.clone());
        }
    }
    let mut text = String::new();
    if let Some(top) = merged.remove("") {
        for (k, v) in top {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    for (section, keys) in merged {
        text.push_str(&format!("\n[{section}]\n"));
        for (k, v) in keys {
            text.push_str(&format!("{k} = {v}\n"));
        }
    }
    for (address, hash) in &o.1 {
        text.push_str(&format!(
            "\n[[accounts]]\naddress = \"{address}\"\npassword = \"{hash}\"\n"
        ));
    }
    text
}

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    closed: bool,
}

/// Collects a child's stderr lines in a thread so the pipe never fills.
#[derive(Clone)]
pub struct LogWatch(Arc<(Mutex<Lines>, Condvar)>);

impl LogWatch {
    pub fn spawn(stream: impl Read + Send + 'static) -> Self {
        let w = LogWatch(Arc::new((Mutex::new(Lines::default()), Condvar::new())));
        let w2 = w.clone();
        std::thread::spawn(move || {
            let reader = BufReader::new(stream);
            for line in reader.lines() {
                let Ok(line) = line else { break };
                if std::env::var_os("SMTPD_TEST_LOG").is_some() {
                    eprintln!("[smtpd] {line}");
                }
                let (m, cv) = &*w2.0;
                m.lock().unwrap().lines.push(line);
                cv.notify_all();
            }
            let (m, cv) = &*w2.0;
            m.lock().unwrap().closed = true;
            cv.notify_all();
        });
        w
    }

    /// Waits until a line contains `needle`; returns it.
    pub fn wait_for(&self, needle: &str) -> String {
        let (m, cv) = &*self.0;
        let deadline = Instant::now() + WAIT;
        let mut g = m.lock().unwrap();
        loop {
            if let Some(l) = g.lines.iter().find(|l| l.contains(needle)) {
                return l.clone();
            }
            let now = Instant::now();
            assert!(
                now < deadline && !g.closed,
                "smtpd never logged {needle:?}; its output:\n{}",
                g.lines.join("\n")
            );
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    /// Waits until `n` lines contain `needle`.
    pub fn wait_count(&self, needle: &str, n: usize) {
        let (m, cv) = &*self.0;
        let deadline = Instant::now() + WAIT;
        let mut g = m.lock().unwrap();
        loop {
            if g.lines.iter().filter(|l| l.contains(needle)).count() >= n {
                return;
            }
            let now = Instant::now();
            assert!(
                now < deadline && !g.closed,
                "smtpd never logged {n} × {needle:?}; its output:\n{}",
                g.lines.join("\n")
            );
            g = cv.wait_timeout(g, deadline - now).unwrap().0;
        }
    }

    pub fn all(&self) -> String {
        self.0.0.lock().unwrap().lines.join("\n")
    }

    pub fn count(&self, needle: &str) -> usize {
        self.0
            .0
            .lock()
            .unwrap()
            .lines
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }
}

pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub smtp: SocketAddr,
    /// The POP3 listener, when the config has one.
    pub pop3: Option<SocketAddr>,
    pub log: LogWatch,
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
        }
    }

    /// SIGKILLs smtpd (no clean-up of any kind) and starts it again on the same directory and
    /// config, with `env`; waits until it is ready.
    pub fn kill_and_restart(&mut self, env: &[(&str, &str)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, log, smtp, pop3) = Self::spawn(self.dir.path(), &self.config, &[], env);
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

    /// The bound address of the first listener of `protocol` (smtp, submission, submissions,
    /// pop3, pop3s), from the log.
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

pub fn list(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|it| it.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    v.sort();
    v
}

/// Every file under `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in list(dir) {
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// One reply: code and lines (text after the code and separator).
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }
}

pub struct Client {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    /// Reads one (possibly multi-line) reply; panics on EOF.
    pub fn reply(&mut self) -> Reply {
        self.try_reply()
            .expect("connection closed while waiting for a reply")
    }

    pub fn try_reply(&mut self) -> Option<Reply> {
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            let n = self.reader.read_until(b'\n', &mut line).ok()?;
            if n == 0 {
                return None;
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            assert!(line.len() >= 3, "short reply line {line:?}");
            let code: u16 = line[..3].parse().expect("reply code");
            let more = line.as_bytes().get(3) == Some(&b'-');
            lines.push(line.get(4..).unwrap_or("").to_string());
            if !more {
                return Some(Reply { code, lines });
            }
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("write");
    }

    /// Sends one command line (CRLF added) and returns the reply.
    pub fn cmd(&mut self, line: &str) -> Reply {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply()
    }

    /// Asserts the next reply's code, returning it.
    pub fn expect(&mut self, code: u16) -> Reply {
        let r = self.reply();
        assert_eq!(r.code, code, "unexpected reply {r:?}");
        r
    }

    /// True when the server has closed the connection (EOF).
    pub fn is_closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.reader.read(&mut b), Ok(0) | Err(_))
    }

    /// A whole transaction; returns the reply to the final dot.
    pub fn send_mail(&mut self, from: &str, to: &[&str], data: &[u8]) -> Reply {
        assert_eq!(self.cmd(&format!("MAIL FROM:<{from}>")).code, 250);
        for t in to {
            let r = self.cmd(&format!("RCPT TO:<{t}>"));
            assert_eq!(r.code, 250, "RCPT {t}: {r:?}");
        }
        assert_eq!(self.cmd("DATA").code, 354);
        self.send(data);
        self.send(b".\r\n");
        self.reply()
    }
}

/// A stored message without the `Return-Path:` and `Received:` headers smtpd prepends
/// (the Received: continuation lines start with a tab).
pub fn stored_body(path: &Path) -> Vec<u8> {
    let bytes = std::fs::read(path).unwrap();
    let mut rest: &[u8] = &bytes;
    let next_line = |rest: &mut &[u8]| -> Vec<u8> {
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| p + 1)
            .unwrap_or(rest.len());
        let line = rest[..end].to_vec();
        *rest = &rest[end..];
        line
    };
    assert!(next_line(&mut rest).starts_with(b"Return-Path: <"));
    assert!(next_line(&mut rest).starts_with(b"Received: from "));
    while rest.starts_with(b"\t") {
        next_line(&mut rest);
    }
    rest.to_vec()
}

/// Whether an external client is on PATH; under CI=true a missing one is a failure.
pub fn have(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("{tool} is required under CI=true (.ci/run installs it)");
        }
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// A raw POP3 client for transcript tests.
pub struct Pop3 {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Pop3 {
    pub fn connect(addr: SocketAddr) -> Pop3 {
        let stream = TcpStream::connect(addr).expect("connect pop3");
        stream.set_read_timeout(Some(WAIT)).unwrap();
        let mut p = Pop3 {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        };
        let greeting = p.line();
        assert!(greeting.starts_with("+OK"), "{greeting}");
        p
    }

    /// One line without CRLF ("" at EOF).
    pub fn line(&mut self) -> String {
        let mut buf = Vec::new();
        self.reader.read_until(b'\n', &mut buf).expect("read");
        String::from_utf8_lossy(&buf)
            .trim_end_matches(['\r', '\n'])
            .to_string()
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write");
    }

    /// Sends a command, returns the status line.
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.line()
    }

    /// Reads a multi-line body after a +OK status, raw bytes up to and including ".\r\n".
    pub fn multiline_raw(&mut self) -> Vec<u8> {
        let mut all = Vec::new();
        loop {
            let mut buf = Vec::new();
            let n = self.reader.read_until(b'\n', &mut buf).expect("read");
            assert!(n > 0, "EOF inside a multi-line response");
            all.extend_from_slice(&buf);
            if buf == b".\r\n" {
                return all;
            }
        }
    }

    /// Lines of a multi-line body, without the final ".".
    pub fn multiline(&mut self) -> Vec<String> {
        let raw = self.multiline_raw();
        let text = String::from_utf8_lossy(&raw[..raw.len() - 3]).into_owned();
        text.split("\r\n")
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    }

    pub fn login(&mut self, user: &str, password: &str) -> String {
        let r = self.cmd(&format!("USER {user}"));
        assert!(r.starts_with("+OK"), "{r}");
        self.cmd(&format!("PASS {password}"))
    }

    /// RETR n: the message as sent (CRLF, byte-stuffing removed, without the final ".").
    pub fn retr(&mut self, n: usize) -> (String, Vec<u8>) {
        let status = self.cmd(&format!("RETR {n}"));
        assert!(status.starts_with("+OK"), "{status}");
        let raw = self.multiline_raw();
        let body = &raw[..raw.len() - 3];
        let mut out = Vec::new();
        for line in body.split_inclusive(|&b| b == b'\n') {
            out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
        }
        (status, out)
    }
}

/// A private network namespace with one non-loopback address on its own `lo`, so a server and a
/// client inside it see each other as a non-loopback peer (../shared/research/non-loopback-peer.md).
/// Deleted on drop. `None` (with a printed reason) when namespaces cannot be made; under CI=true
/// that is a failure.
pub struct NetNs {
    pub name: String,
    pub addr: std::net::Ipv4Addr,
}

impl NetNs {
    pub fn new(tag: &str, addr: &str) -> Option<NetNs> {
        let name = format!("smtpd-{tag}-{}", std::process::id());
        let ok = |args: &[&str]| {
            Command::new("ip")
                .args(args)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        };
        let _ = ok(&["netns", "del", &name]);
        let made = ok(&["netns", "add", &name])
            && ok(&["-n", &name, "link", "set", "lo", "up"])
            && ok(&[
                "-n",
                &name,
                "addr",
                "add",
                &format!("{addr}/32"),
                "dev",
                "lo",
            ]);
        if !made {
            let _ = ok(&["netns", "del", &name]);
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("cannot create a network namespace (CI runs as root and must)");
            }
            eprintln!("SKIPPED: cannot create a network namespace (needs root and iproute2)");
            return None;
        }
        Some(NetNs {
            name,
            addr: addr.parse().unwrap(),
        })
    }

    /// `ip netns exec NAME` as a wrapper for [`Server::start_wrapped`].
    pub fn wrapper(&self) -> Vec<&str> {
        vec!["ip", "netns", "exec", &self.name]
    }

    /// Runs a command inside the namespace.
    pub fn run(&self, program: &str, args: &[&str]) -> std::process::Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name, program])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// Runs fetchmail once against `addr` (delivering through `--mda "cat >> mbox"`), with
/// `options` on the user line (e.g. "sslproto ''" or "ssl no sslcertck"); returns the mailbox text.
pub fn fetchmail(addr: SocketAddr, user: &str, password: &str, options: &str) -> String {
    let home = tempfile::tempdir().unwrap();
    let rc = home.path().join("fetchmailrc");
    let mbox = home.path().join("mbox");
    std::fs::write(
        &rc,
        format!(
            "poll {} service {} protocol POP3 auth password timeout 20\n  user \"{user}\" password \"{password}\" {options}\n",
            addr.ip(),
            addr.port()
        ),
    )
    .unwrap();
    // fetchmail refuses a run-control file others can read.
    Command::new("chmod").arg("600").arg(&rc).status().unwrap();
    let mda = format!("cat >> {}", mbox.display());
    let run = Command::new("fetchmail")
        .env("HOME", home.path())
        .env("FETCHMAILHOME", home.path())
        .arg("--fetchmailrc")
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "--mda", &mda, "--all"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "fetchmail: {}{}",
        String::from_utf8_lossy(&run.stderr),
        String::from_utf8_lossy(&run.stdout)
    );
    std::fs::read_to_string(&mbox).unwrap_or_default()
}
