//! Daemon life: detaching, the pid file, systemd notifications, log files, reload semantics,
//! privilege drop.
mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::Duration;

/// A detached smtpd, stopped (SIGTERM, then SIGKILL) when dropped.
struct Daemon {
    dir: tempfile::TempDir,
    pid: i32,
}

impl Daemon {
    fn pid_alive(pid: i32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .unwrap_or_default()
                .contains(") Z ")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg(self.pid.to_string()).status();
        for _ in 0..250 {
            if !Self::pid_alive(self.pid) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-9", &self.pid.to_string()])
            .status();
    }
}

fn start_detached(dir: &std::path::Path, o: &Overrides) -> std::process::Output {
    let cfg = dir.join("smtpd.toml");
    std::fs::write(&cfg, config_text(dir, o)).unwrap();
    Command::new(smtpd_bin())
        .arg("--config")
        .arg(&cfg)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Without --foreground: the parent returns 0 only once the listeners are bound (a connection
/// right after it exits is greeted), writes the pid file, and a second start is refused.
#[test]
fn daemonize_pid_file_and_second_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = start_detached(dir.path(), &Overrides::new());
    assert!(out.status.success(), "{}", stderr(&out));
    let pid: i32 = std::fs::read_to_string(dir.path().join("run/smtpd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let d = Daemon { dir, pid };
    assert!(Daemon::pid_alive(pid));
    // Bound already: ask the daemon where, then connect.
    let st = Command::new(smtpctl_bin())
        .arg("--socket")
        .arg(d.dir.path().join("run/smtpd.sock"))
        .args(["--json", "status"])
        .output()
        .unwrap();
    assert!(st.status.success(), "{}", stderr(&st));
    let v: serde_json::Value = serde_json::from_slice(&st.stdout).unwrap();
    assert_eq!(v["pid"].as_i64(), Some(pid as i64));
    let addr: std::net::SocketAddr = v["listeners"][0]["address"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut c = Client::connect(addr);
    c.expect(220);
    // Detached: not in our session, stdio closed, cwd "/".
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, std::path::Path::new("/"));
    // The daemon's relative paths were made absolute: mail lands under the start directory.
    let r = c.send_mail(
        "a@b.test",
        &["x@example.test"],
        b"Subject: d\r\n\r\nbody\r\n",
    );
    assert_eq!(r.code, 250);
    assert_eq!(
        list(&d.dir.path().join("mailboxes/example.test/x/new")).len(),
        1
    );
    // A second start on the same pid file is refused with a clear message.
    let again = Command::new(smtpd_bin())
        .arg("--config")
        .arg(d.dir.path().join("smtpd.toml"))
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(
        stderr(&again).contains("already running"),
        "{}",
        stderr(&again)
    );
    // SIGTERM: the daemon exits and removes its pid file.
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let deadline = std::time::Instant::now() + WAIT;
    while Daemon::pid_alive(pid) {
        assert!(std::time::Instant::now() < deadline, "daemon did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!d.dir.path().join("run/smtpd.pid").exists());
}

/// A daemon that cannot bind: the parent's exit status is 1 and it prints the address and error.
#[test]
fn daemonize_bind_failure_reported_by_parent() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = start_detached(
        dir.path(),
        &Overrides::new().set("smtp", "listen", &format!("[\"{addr}\"]")),
    );
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&addr.to_string()) && err.contains("in use"),
        "{err}"
    );
    assert!(!dir.path().join("run/smtpd.pid").exists());
}

/// NOTIFY_SOCKET: READY=1 when listening, RELOADING=1 with MONOTONIC_USEC then READY=1 around a
/// reload, STOPPING=1 at shutdown, STATUS= lines.
#[test]
fn systemd_notifications() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let mut srv = Server::start_env(
        Overrides::new(),
        &[("NOTIFY_SOCKET", path.to_str().unwrap())],
    );
    let mut buf = [0u8; 4096];
    let mut recv = || {
        let n = sock.recv(&mut buf).expect("notification");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = recv();
    assert!(first.starts_with("READY=1\nSTATUS="), "{first}");
    assert!(first.contains("0 messages delivered"), "{first}");
    srv.signal(1);
    let reloading = recv();
    assert!(
        reloading.starts_with("RELOADING=1\nMONOTONIC_USEC="),
        "{reloading}"
    );
    let usec: u64 = reloading
        .rsplit('=')
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(usec > 0);
    assert!(recv().starts_with("READY=1"));
    srv.signal(15);
    assert_eq!(recv(), "STOPPING=1");
    assert!(srv.wait_exit().success());
}

/// Log files: named by rotation ("never" → smtpd.log, "daily" → smtpd.log.YYYY-MM-DD, "hourly"
/// → smtpd.log.YYYY-MM-DD-HH); JSON format writes one JSON object per line.
#[test]
fn log_files_and_rotation_names() {
    let today = {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        smtpd::mailbox::headers::iso_utc(secs)
    };
    let date = &today[..10];
    for (rotation, expect) in [
        ("never", "smtpd.log".to_string()),
        ("daily", format!("smtpd.log.{date}")),
        ("hourly", format!("smtpd.log.{date}-{}", &today[11..13])),
    ] {
        let srv =
            Server::start_with(Overrides::new().set("log", "rotation", &format!("\"{rotation}\"")));
        srv.deliver("a@example.test", b"Subject: x\r\n\r\ny\r\n");
        let files: Vec<String> = list(&srv.dir.path().join("logs"))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        // The hour may turn between the two readings; accept the next hour's name then.
        assert!(
            files.contains(&expect) || rotation == "hourly" && files.len() == 1,
            "{rotation}: {files:?}"
        );
    }
    let srv = Server::start_with(Overrides::new().set("log", "format", "\"json\"").set(
        "log",
        "rotation",
        "\"never\"",
    ));
    srv.deliver("a@example.test", b"Subject: x\r\n\r\ny\r\n");
    srv.log.wait_for("delivered");
    let mut srv = srv;
    srv.signal(15);
    srv.wait_exit();
    let text = std::fs::read_to_string(srv.dir.path().join("logs/smtpd.log")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 3);
    for l in lines {
        let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["fields"]["message"].is_string(), "{l}");
    }
    assert!(text.contains("\"delivered\""));
}

/// keep = N: old rotated files beyond N are pruned at start.
#[test]
fn log_files_pruned_to_keep() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for d in 1..=6 {
        std::fs::write(logs.join(format!("smtpd.log.2020-01-0{d}")), b"old\n").unwrap();
    }
    let cfg = dir.path().join("smtpd.toml");
    std::fs::write(
        &cfg,
        config_text(dir.path(), &Overrides::new().set("log", "keep", "3")),
    )
    .unwrap();
    start_until_ready(&cfg);
    let n = list(&logs).len();
    assert!(n <= 3, "{n} log files kept: {:?}", list(&logs));
}

/// Reload: a changed max_recipients applies to new sessions while an open session keeps the
/// limits it started with.
#[test]
fn reload_applies_to_new_sessions_only() {
    let mut srv = Server::start_with(Overrides::new().set("limits", "max_recipients", "2"));
    let mut old = srv.connect();
    old.expect(220);
    assert_eq!(old.cmd("MAIL FROM:<a@b.test>").code, 250);
    srv.rewrite_config(&Overrides::new().set("limits", "max_recipients", "1"));
    srv.signal(1);
    srv.log.wait_for("configuration reloaded");
    assert_eq!(old.cmd("RCPT TO:<r1@example.test>").code, 250);
    assert_eq!(
        old.cmd("RCPT TO:<r2@example.test>").code,
        250,
        "old session keeps its snapshot"
    );
    assert_eq!(old.cmd("DATA").code, 354);
    old.send(b"Subject: old\r\n\r\nx\r\n.\r\n");
    old.expect(250);
    let mut new = srv.connect();
    new.expect(220);
    assert_eq!(new.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(new.cmd("RCPT TO:<r1@example.test>").code, 250);
    assert_eq!(new.cmd("RCPT TO:<r2@example.test>").code, 452);
    srv.signal(15);
    assert!(srv.wait_exit().success());
}

/// A broken config on reload is refused (smtpctl says why, with file:line), the old one stays in
/// force and service continues.
#[test]
fn broken_config_on_reload_is_refused() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_recipients", "1"));
    let good = std::fs::read_to_string(&srv.config).unwrap();
    std::fs::write(
        &srv.config,
        format!("{good}\n[limits]\nmax_recipients = \"lots\"\n"),
    )
    .unwrap();
    let out = srv.ctl(&["reload"]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.contains("reload refused"), "{text}");
    assert!(
        text.contains(&format!("{}:", srv.config.display())),
        "{text}"
    );
    std::fs::write(&srv.config, "hostname = \"x.test\"\nmax = [\n").unwrap();
    srv.signal(1);
    srv.log.wait_for("reload refused");
    let st = srv.ctl_json(&["status"]);
    assert_eq!(st["last_reload"]["applied"], false);
    // Still serving, with the old limits.
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<r1@example.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<r2@example.test>").code, 452);
}

/// Reload adds and removes listeners: a new POP3 listener is bound; a removed SMTP address stops
/// accepting while its open session carries on.
#[test]
fn reload_diffs_listeners() {
    let srv = Server::start_with(Overrides::new().set(
        "smtp",
        "listen",
        "[\"127.0.0.1:0\", \"127.0.0.1:0\"]",
    ));
    let st = srv.ctl_json(&["status"]);
    let smtp: Vec<String> = st["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(smtp.len(), 2);
    let second: std::net::SocketAddr = smtp[1].parse().unwrap();
    let mut open = Client::connect(second);
    open.expect(220);
    srv.rewrite_config(&Overrides::new().pop3(&[]));
    let v = srv.ctl_json(&["reload"]);
    assert_eq!(v["applied"], true, "{v}");
    let st = srv.ctl_json(&["status"]);
    let listeners = st["listeners"].as_array().unwrap();
    assert_eq!(listeners.len(), 2, "{st}");
    assert!(listeners.iter().any(|l| l["protocol"] == "pop3"));
    let pop3: std::net::SocketAddr =
        listeners.iter().find(|l| l["protocol"] == "pop3").unwrap()["address"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
    Pop3::connect(pop3);
    assert!(
        std::net::TcpStream::connect(second).is_err(),
        "removed listener closed"
    );
    assert_eq!(open.cmd("NOOP").code, 250, "its session goes on");
}

/// Started as root with [server] user = "nobody": mail files belong to nobody.
#[test]
fn privilege_drop_owns_mail_files() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let is_root = std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if !is_root {
        eprintln!("SKIPPED: privilege drop needs root");
        return;
    }
    let srv = Server::start_with(Overrides::new().set("server", "user", "\"nobody\""));
    std::fs::set_permissions(srv.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    srv.log.wait_for("dropped root privileges");
    srv.deliver("x@example.test", b"Subject: p\r\n\r\nowned\r\n");
    let files = srv.new_mail("example.test", "x");
    let uid = std::fs::metadata(&files[0]).unwrap().uid();
    assert_eq!(uid, 65534, "mail file owned by nobody");
    let status = std::fs::read_to_string(format!("/proc/{}/status", srv.child.id())).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line.split_whitespace().skip(1).all(|u| u == "65534"),
        "{uid_line}"
    );
}

/// A reload refused for its TLS files (a certificate that is not PEM: refused at validation,
/// before bind and build) changes nothing, the log level included; the old reload applied the
/// level before building and kept it. (The ordering of the later steps is proved by
/// `failed_reload_task_is_an_internal_error`.)
#[test]
fn refused_reload_keeps_the_log_level() {
    let srv = Server::start();
    assert_eq!(srv.ctl_json(&["status"])["log_level"], "info");
    let bad = srv.dir.path().join("bad.pem");
    std::fs::write(&bad, "not a certificate\n").unwrap();
    let path = format!("\"{}\"", bad.display());
    srv.rewrite_config(
        &Overrides::new()
            .set("log", "level", "\"debug\"")
            .set("tls", "cert", &path)
            .set("tls", "key", &path),
    );
    let v = refused_reload(&srv);
    assert!(v["errors"][0].as_str().unwrap().contains("[tls]"), "{v}");
    let st = srv.ctl_json(&["status"]);
    assert_eq!(st["log_level"], "info", "{st}");
    assert_eq!(st["last_reload"]["applied"], false);
}

/// A reload whose build fails inside its background task (a debug build told to panic there)
/// is refused as an internal error, not reported as a TLS problem; the level and the service
/// stay as they were.
#[test]
fn failed_reload_task_is_an_internal_error() {
    let srv = Server::start_env(Overrides::new(), &[("SMTPD_TEST_BREAK", "reload_panic")]);
    srv.rewrite_config(&Overrides::new().set("log", "level", "\"debug\""));
    let v = refused_reload(&srv);
    let error = v["errors"][0].as_str().unwrap();
    assert!(error.contains("internal error"), "{error}");
    assert!(!error.contains("[tls]"), "{error}");
    assert_eq!(srv.ctl_json(&["status"])["log_level"], "info");
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("NOOP").code, 250);
}

/// `smtpctl --json reload` that must be refused: exit 1, the outcome on stdout.
fn refused_reload(srv: &Server) -> serde_json::Value {
    let out = srv.ctl(&["--json", "reload"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON outcome");
    assert_eq!(v["applied"], false, "{v}");
    v
}
