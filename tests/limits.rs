//! Connection limits, timeouts, shutdown and start-up failures of the real smtpd.
mod common;
use common::*;

/// Past max_connections_per_ip the greeting is 421 4.7.0 and the connection closes; others keep
/// being served, and a freed slot is usable again.
#[test]
fn per_ip_connection_limit() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_connections_per_ip", "2"));
    let mut a = srv.connect();
    a.expect(220);
    let mut b = srv.connect();
    b.expect(220);
    let mut c = srv.connect();
    let r = c.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(r.lines[0].starts_with("4.7.0"));
    assert!(c.is_closed());
    // The two admitted sessions still work.
    assert_eq!(a.cmd("NOOP").code, 250);
    assert_eq!(b.cmd("NOOP").code, 250);
    assert_eq!(a.cmd("QUIT").code, 221);
    srv.log.wait_for("session end");
    // The slot is released just after the session's end line: retry until it is.
    let deadline = std::time::Instant::now() + WAIT;
    let mut d = loop {
        let mut d = srv.connect();
        if d.reply().code == 220 {
            break d;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the slot was never released"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert_eq!(d.cmd("NOOP").code, 250);
}

/// Past max_connections (all clients) the same happens.
#[test]
fn global_connection_limit() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_connections", "1"));
    let mut a = srv.connect();
    a.expect(220);
    let mut b = srv.connect();
    assert_eq!(b.reply().code, 421);
    assert_eq!(a.cmd("NOOP").code, 250);
}

/// An idle client gets 421 4.4.2 after command_timeout_secs and is disconnected.
#[test]
fn idle_timeout() {
    let srv = Server::start_with(Overrides::new().set("limits", "command_timeout_secs", "1"));
    let mut c = srv.connect();
    c.expect(220);
    let r = c.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(r.lines[0].starts_with("4.4.2"));
    assert!(c.is_closed());
}

/// A client that stalls inside DATA gets 421 4.4.2; nothing is delivered, no spool is left.
#[test]
fn data_timeout_leaves_nothing() {
    let srv = Server::start_with(Overrides::new().set("limits", "data_timeout_secs", "1"));
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: stalled\r\n\r\npartial line");
    let r = c.reply();
    assert_eq!(r.code, 421);
    assert!(c.is_closed());
    srv.log.wait_for("session end");
    assert!(srv.new_mail("example.test", "bob").is_empty());
    assert!(list(&srv.root().join("example.test/bob/tmp")).is_empty());
}

/// SIGTERM: an idle session gets 421 4.3.0; a session inside DATA finishes its message (250)
/// and then gets 421; smtpd exits 0.
#[test]
fn sigterm_is_graceful() {
    let mut srv = Server::start();
    let mut idle = srv.connect();
    idle.expect(220);
    let mut busy = srv.connect();
    busy.expect(220);
    assert_eq!(busy.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(busy.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(busy.cmd("DATA").code, 354);
    busy.send(b"Subject: in flight\r\n\r\nfirst half\r\n");
    srv.signal(15);
    let r = idle.reply();
    assert_eq!(r.code, 421, "{r:?}");
    assert!(r.lines[0].starts_with("4.3.0"));
    busy.send(b"second half\r\n.\r\n");
    let r = busy.reply();
    assert_eq!(r.code, 250, "the message in DATA completes: {r:?}");
    assert_eq!(busy.reply().code, 421);
    let status = srv.wait_exit();
    assert!(status.success(), "{status:?}");
    let mail = srv.new_mail("example.test", "bob");
    assert_eq!(
        stored_body(&mail[0]),
        b"Subject: in flight\n\nfirst half\nsecond half\n"
    );
    srv.log.wait_for("stopped");
}

/// A listener that cannot be bound: non-zero exit, the address and the error on stderr.
#[test]
fn bind_failure_is_reported() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("smtpd.toml");
    let o = Overrides::new().set("smtp", "listen", &format!("[\"{addr}\"]"));
    std::fs::write(&config, config_text(dir.path(), &o)).unwrap();
    let out = std::process::Command::new(smtpd_bin())
        .args(["--foreground", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&addr.to_string()), "{err}");
    assert!(
        err.to_lowercase().contains("address already in use"),
        "{err}"
    );
}
