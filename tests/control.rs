//! The control socket and every smtpctl command, human and --json (CONTRACT: smtpctl).
mod common;
use common::*;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;

/// status: human text, and --json with at least pid, version, uptime_secs and listeners with the
/// bound addresses; --json may stand before or after the subcommand.
#[test]
fn status_human_and_json() {
    let srv = Server::start_with(Overrides::new().pop3(&[]));
    let v = srv.ctl_json(&["status"]);
    assert_eq!(v["pid"].as_u64(), Some(srv.child.id() as u64));
    assert_eq!(v["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    assert!(v["uptime_secs"].as_u64().is_some());
    let listeners = v["listeners"].as_array().unwrap();
    let smtp = srv.smtp.to_string();
    let pop3 = srv.pop3.unwrap().to_string();
    assert!(
        listeners
            .iter()
            .any(|l| l["protocol"] == "smtp" && l["address"] == smtp.as_str())
    );
    assert!(
        listeners
            .iter()
            .any(|l| l["protocol"] == "pop3" && l["address"] == pop3.as_str())
    );
    let after = srv.ctl(&["status", "--json"]);
    assert!(after.status.success());
    let v2: serde_json::Value = serde_json::from_slice(&after.stdout).unwrap();
    assert_eq!(v2["pid"], v["pid"]);
    let human = srv.ctl(&["status"]);
    assert!(human.status.success());
    let text = stdout(&human);
    assert!(
        text.starts_with(&format!(
            "smtpd {}, pid {}",
            env!("CARGO_PKG_VERSION"),
            srv.child.id()
        )),
        "{text}"
    );
    assert!(text.contains(&format!("smtp {smtp}")), "{text}");
    assert!(text.contains("smtp intake:  running"));
}

/// A reader that goes away (`smtpctl status | grep -q ...` under `set -o pipefail`) ends smtpctl
/// quietly with status 0: no panic, no "Broken pipe" on stderr.
#[test]
fn closed_stdout_is_a_quiet_exit() {
    let srv = Server::start();
    for args in [&["status"][..], &["--json", "status"], &["metrics"]] {
        // The read end is closed before smtpctl starts writing, so its first write gets EPIPE.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(smtpctl_bin())
            .arg("--socket")
            .arg(srv.socket())
            .args(args)
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// Counters follow the traffic.
#[test]
fn status_counts_sessions_and_messages() {
    let srv = Server::start();
    srv.deliver("a@example.test", b"Subject: 1\r\n\r\nx\r\n");
    let mut c = srv.connect();
    c.expect(220);
    let v = srv.ctl_json(&["status"]);
    assert_eq!(v["counters"]["messages_accepted"].as_u64(), Some(1));
    assert_eq!(v["counters"]["deliveries"].as_u64(), Some(1));
    assert_eq!(v["sessions"]["smtp"]["active"].as_u64(), Some(1));
    assert_eq!(v["sessions"]["smtp"]["total"].as_u64(), Some(2));
}

/// mailboxes: one line per mailbox with the address first; --json with address, messages, bytes.
#[test]
fn mailboxes_human_and_json() {
    let srv = Server::start();
    srv.deliver("alice@example.test", b"Subject: 1\r\n\r\nx\r\n");
    srv.deliver("alice@example.test", b"Subject: 2\r\n\r\ny\r\n");
    srv.deliver("bob@localhost", b"Subject: 3\r\n\r\nz\r\n");
    let v = srv.ctl_json(&["mailboxes"]);
    let list = v.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["address"], "alice@example.test");
    assert_eq!(list[0]["messages"].as_u64(), Some(2));
    let on_disk: u64 = list_files(&srv.root().join("example.test/alice/new"));
    assert_eq!(list[0]["bytes"].as_u64(), Some(on_disk));
    assert_eq!(list[1]["address"], "bob@localhost");
    let human = stdout(&srv.ctl(&["mailboxes"]));
    let lines: Vec<&str> = human.lines().collect();
    assert_eq!(lines.len(), 2, "{human}");
    assert!(lines[0].starts_with("alice@example.test "), "{human}");
    assert!(lines[0].contains(" 2 messages"), "{human}");
    assert!(lines[1].starts_with("bob@localhost "), "{human}");
}

fn list_files(dir: &std::path::Path) -> u64 {
    list(dir)
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum()
}

/// send-test goes through the daemon's own SMTP listener into the Maildir; a refused recipient
/// (remote, and loopback is not in `[relay] networks` here) is reported with the server's reply
/// and exit status 1.
#[test]
fn send_test_delivers_and_reports() {
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let v = srv.ctl_json(&["send-test"]);
    assert_eq!(v["delivered"], true, "{v}");
    assert_eq!(v["to"], "postmaster@example.test");
    let path = v["path"].as_str().unwrap();
    assert!(std::path::Path::new(path).starts_with(srv.root().join("example.test/postmaster/new")));
    let stored = std::fs::read_to_string(path).unwrap();
    assert!(stored.contains(v["message_id"].as_str().unwrap()));
    assert!(v["latency_ms"].as_u64().is_some());
    let human = srv.ctl(&["send-test", "--to", "bob@localhost", "--from", "me@b.test"]);
    assert!(human.status.success(), "{}", stderr(&human));
    assert!(
        stdout(&human).starts_with("delivered to bob@localhost in "),
        "{}",
        stdout(&human)
    );
    assert_eq!(srv.new_mail("localhost", "bob").len(), 1);
    let refused = srv.ctl(&["send-test", "--to", "x@elsewhere.test"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stdout(&refused).contains("NOT delivered"),
        "{}",
        stdout(&refused)
    );
    assert!(stdout(&refused).contains("550 5.7.1"));
}

/// log-level changes the running daemon's level (debug lines start to appear).
#[test]
fn log_level_human_and_json() {
    let srv = Server::start();
    let v = srv.ctl_json(&["log-level", "debug"]);
    assert_eq!(v["previous"], "info");
    assert_eq!(v["level"], "debug");
    srv.ctl(&["status"]);
    srv.log.wait_for("DEBUG");
    let out = srv.ctl(&["log-level", "info"]);
    assert_eq!(stdout(&out).trim(), "log level: info (was debug)");
    let bad = srv.ctl(&["log-level", "no=such=level"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(stderr(&bad).contains("bad log level"), "{}", stderr(&bad));
}

/// pause smtp: new SMTP sessions get 421 4.3.2; a session in progress goes on; resume smtp.
#[test]
fn pause_and_resume_smtp() {
    let srv = Server::start();
    let mut open = srv.connect();
    open.expect(220);
    let out = srv.ctl(&["pause", "smtp"]);
    assert!(out.status.success());
    assert!(stdout(&out).contains("paused"));
    let mut c = srv.connect();
    let r = c.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(r.lines[0].starts_with("4.3.2"));
    assert_eq!(open.cmd("NOOP").code, 250);
    assert_eq!(srv.ctl_json(&["status"])["smtp_paused"], true);
    let v = srv.ctl_json(&["resume", "smtp"]);
    assert_eq!(v["smtp_paused"], false);
    let mut c = srv.connect();
    c.expect(220);
    let bad = srv.ctl(&["pause", "pop3"]);
    assert_eq!(bad.status.code(), Some(2), "usage error");
}

/// reload through smtpctl: applied, with --json details.
#[test]
fn reload_human_and_json() {
    let srv = Server::start();
    let out = srv.ctl(&["reload"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).starts_with("configuration reloaded"));
    srv.rewrite_config(&Overrides::new().set("limits", "max_recipients", "7"));
    let v = srv.ctl_json(&["reload"]);
    assert_eq!(v["applied"], true);
    assert!(
        v["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "limits.max_recipients: 100 → 7"),
        "{v}"
    );
    let st = srv.ctl_json(&["status"]);
    assert_eq!(st["last_reload"]["applied"], true);
}

/// Against a stopped daemon: exit 1, and the message names the socket it tried.
#[test]
fn smtpctl_without_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("none.sock");
    for cmd in ["status", "mailboxes", "reload", "send-test"] {
        let out = Command::new(smtpctl_bin())
            .arg("--socket")
            .arg(&sock)
            .arg(cmd)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = stderr(&out);
        assert!(err.contains("smtpd is not running"), "{err}");
        assert!(err.contains(&sock.display().to_string()), "{err}");
    }
    // --config names the socket too.
    let cfg = dir.path().join("smtpd.toml");
    std::fs::write(&cfg, config_text(dir.path(), &Overrides::new())).unwrap();
    let out = Command::new(smtpctl_bin())
        .args(["--config"])
        .arg(&cfg)
        .arg("status")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&dir.path().join("run/smtpd.sock").display().to_string()));
}

/// The socket is 0660; a peer that is neither root nor smtpd's user may read (status) but not
/// change anything (reload), and is logged.
#[test]
fn socket_permissions_and_refused_peer() {
    let srv = Server::start();
    let mode = std::fs::metadata(srv.socket())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o660);
    if !have("setpriv") {
        return;
    }
    if !nix_is_root() {
        eprintln!("SKIPPED: a second user's request needs root to switch users");
        return;
    }
    // Let "nobody" reach the directory (the test's directory is private by default).
    for p in [srv.dir.path().to_path_buf(), srv.dir.path().join("run")] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let nobody = |cmd: &str| {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            smtpctl_bin(),
            "--socket",
        ])
        .arg(srv.socket())
        .arg(cmd);
        c
    };
    let as_nobody = |cmd: &str| nobody(cmd).output().unwrap();
    // A user outside the socket's group cannot even connect (mode 0660).
    let outsider = as_nobody("status");
    assert_eq!(outsider.status.code(), Some(1));
    assert!(
        stderr(&outsider).contains("Permission denied"),
        "{}",
        stderr(&outsider)
    );
    // Opened to everyone, a stranger may read but not change anything.
    std::fs::set_permissions(srv.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    let status = as_nobody("status");
    assert!(status.status.success(), "{}", stderr(&status));
    let metrics = as_nobody("metrics");
    assert!(
        metrics.status.success(),
        "metrics need no privilege: {}",
        stderr(&metrics)
    );
    let reload = as_nobody("reload");
    assert_eq!(reload.status.code(), Some(1));
    assert!(
        stderr(&reload).contains("permission denied"),
        "{}",
        stderr(&reload)
    );
    srv.log.wait_for("control request refused");
    // watch is reading (README: the group may use it): the same check lets it through.
    let mut watch = nobody("watch")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let err = LogWatch::spawn(watch.stderr.take().unwrap());
    err.wait_for("watching");
    let _ = watch.kill();
    let _ = watch.wait();
    assert_eq!(err.count("permission denied"), 0, "{}", err.all());
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        .unwrap_or(false)
}

/// A live socket is refused ("already running"); a stale one is replaced.
#[test]
fn live_socket_refused_stale_socket_replaced() {
    let srv = Server::start();
    // A second smtpd with its own pid file but the same control socket.
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("smtpd.toml");
    let o = Overrides::new().set(
        "control",
        "socket",
        &format!("\"{}\"", srv.socket().display()),
    );
    std::fs::write(&cfg, config_text(dir.path(), &o)).unwrap();
    let out = Command::new(smtpd_bin())
        .args(["--foreground", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("already running"), "{}", stderr(&out));
    drop(srv);
    // A stale socket file (nobody listening) does not stop a new start.
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("run")).unwrap();
    let stale = std::os::unix::net::UnixListener::bind(dir.path().join("run/smtpd.sock")).unwrap();
    drop(stale);
    assert!(dir.path().join("run/smtpd.sock").exists());
    let cfg = dir.path().join("smtpd.toml");
    std::fs::write(&cfg, config_text(dir.path(), &Overrides::new())).unwrap();
    start_until_ready(&cfg);
}

/// metrics: Prometheus text format with the counters.
#[test]
fn metrics_prometheus_text() {
    let srv = Server::start();
    srv.deliver("a@example.test", b"Subject: m\r\n\r\nx\r\n");
    let out = srv.ctl(&["metrics"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "# TYPE smtpd_sessions_total counter",
        "smtpd_sessions_total{protocol=\"smtp\"} 1",
        "smtpd_messages_accepted_total 1",
        "smtpd_deliveries_total 1",
        "# TYPE smtpd_sessions_active gauge",
        "smtpd_smtp_paused 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} missing:\n{text}");
    }
    // Every sample line is `name{labels} value` or `name value`.
    for l in text.lines().filter(|l| !l.starts_with('#')) {
        let value = l.rsplit(' ').next().unwrap();
        assert!(value.parse::<u64>().is_ok(), "{l}");
    }
}

/// reload --check: validates and shows the semantic diff without applying; a broken file is
/// refused with its lines; `reload` then applies the same diff.
#[test]
fn reload_check_shows_the_diff_without_applying() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_recipients", "2"));
    let candidate = srv.dir.path().join("candidate.toml");
    let o = Overrides::new()
        .set("limits", "max_recipients", "1")
        .set("log", "level", "\"debug\"")
        .set("smtp", "listen", "[\"127.0.0.1:0\", \"127.0.0.1:0\"]")
        .account("new@example.test", "pw");
    std::fs::write(&candidate, config_text(srv.dir.path(), &o)).unwrap();
    let out = srv.ctl(&["--config", candidate.to_str().unwrap(), "reload", "--check"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let text = stdout(&out);
    for want in [
        "configuration valid; a reload would apply:",
        "limits.max_recipients: 2 → 1",
        "log.level: info → debug",
        "listener added: smtp 127.0.0.1:0",
        "account added: new@example.test",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    // Nothing applied: the old limit still holds and no reload is recorded.
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<r1@example.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<r2@example.test>").code, 250);
    assert!(srv.ctl_json(&["status"])["last_reload"].is_null());
    std::fs::write(
        &candidate,
        "hostname = \"x.test\"\n[limits]\nmax_errors = 0\n",
    )
    .unwrap();
    let out = srv.ctl(&["--config", candidate.to_str().unwrap(), "reload", "--check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("candidate.toml:3:"),
        "{}",
        stdout(&out)
    );
    // The running config checked against itself: no changes.
    let out = srv.ctl(&["reload", "--check"]);
    assert!(stdout(&out).contains("(no changes)"), "{}", stdout(&out));
}

/// watch: a delivery that happens while it runs is shown (filtered by address), one line each.
#[test]
fn watch_shows_live_deliveries() {
    let srv = Server::start();
    let mut child = Command::new(smtpctl_bin())
        .arg("--socket")
        .arg(srv.socket())
        .args(["watch", "Bob@Example.test"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = LogWatch::spawn(child.stdout.take().unwrap());
    let err = LogWatch::spawn(child.stderr.take().unwrap());
    err.wait_for("watching");
    srv.deliver("carol@example.test", b"Subject: not for bob\r\n\r\nx\r\n");
    srv.deliver("bob@example.test", b"Subject: for bob\r\n\r\nx\r\n");
    let line = out.wait_for("delivered");
    assert!(
        line.contains("<sender@b.test> → bob@example.test"),
        "{line}"
    );
    assert!(
        line.contains("127.0.0.1:") && line.contains(" id "),
        "{line}"
    );
    assert_eq!(out.count("carol"), 0, "{}", out.all());
    let _ = child.kill();
    let _ = child.wait();
    // --json: one event object per line.
    let mut child = Command::new(smtpctl_bin())
        .arg("--socket")
        .arg(srv.socket())
        .args(["--json", "watch"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = LogWatch::spawn(child.stdout.take().unwrap());
    // The subscription is in place once the daemon has answered the request; poll by sending.
    let deadline = std::time::Instant::now() + WAIT;
    while out.count("\"delivered\"") == 0 {
        assert!(std::time::Instant::now() < deadline, "{}", out.all());
        srv.deliver("dave@example.test", b"Subject: d\r\n\r\nx\r\n");
    }
    let line = out.wait_for("\"delivered\"");
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["to"][0], "dave@example.test");
    assert!(v["size"].as_u64().unwrap() > 0);
    let _ = child.kill();
    let _ = child.wait();
}
