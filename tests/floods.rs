//! Slow and hostile clients: a thousand connections trickling bytes slower than the command
//! timeout are timed out with 421 while memory stays bounded and a normal client is still served;
//! failed logins are answered ever more slowly, the same way for unknown users, and logged with
//! the peer's address.
mod common;
use common::*;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn thousand_slow_clients_are_timed_out_while_others_are_served() {
    let srv = Server::start_with(
        Overrides::new()
            // Long enough that all 1000 are open at once even on a busy machine.
            .set("limits", "command_timeout_secs", "20")
            .set("limits", "max_connections", "1500")
            .set("limits", "max_connections_per_ip", "1500"),
    );
    let idle_rss = proc_status_kib(srv.pid(), "VmRSS:");
    let mut slow = Vec::new();
    for _ in 0..1000 {
        let s = std::net::TcpStream::connect(srv.smtp).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        slow.push(s);
    }
    // One byte each: a command that never ends (the next byte would come after the timeout).
    for s in &mut slow {
        s.write_all(b"N").unwrap();
    }
    // Wait until every one is a live session.
    let deadline = Instant::now() + WAIT;
    loop {
        let v = srv.ctl_json(&["status"]);
        if v["sessions"]["smtp"]["active"].as_u64() == Some(1000) {
            break;
        }
        assert!(Instant::now() < deadline, "sessions: {}", v["sessions"]);
        std::thread::sleep(Duration::from_millis(50));
    }
    let busy_rss = proc_status_kib(srv.pid(), "VmRSS:");
    // A normal client meanwhile.
    let t0 = Instant::now();
    srv.deliver("normal@example.test", b"Subject: normal\r\n\r\nserved\r\n");
    let served = t0.elapsed();
    eprintln!(
        "slow clients: RSS idle {idle_rss} KiB, with 1000 slow sessions {busy_rss} KiB ({} KiB each); a normal delivery took {} ms",
        (busy_rss.saturating_sub(idle_rss)) / 1000,
        served.as_millis()
    );
    assert!(
        served < Duration::from_secs(5),
        "normal client waited {served:?}"
    );
    assert!(
        busy_rss < 200 * 1024,
        "RSS {busy_rss} KiB with 1000 slow sessions"
    );
    // Every slow client gets the greeting, then 421 4.4.2, then EOF.
    for s in &mut slow {
        let mut all = Vec::new();
        s.read_to_end(&mut all).unwrap();
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.starts_with("220 ") && text.contains("\r\n421 4.4.2 "),
            "{text}"
        );
    }
    let v = srv.ctl_json(&["status"]);
    assert_eq!(v["sessions"]["smtp"]["active"].as_u64(), Some(0));
}

/// Brute force: each failed AUTH in a session waits longer (delay × failures), the reply is the
/// same for an unknown user, and every failure is logged with the peer address.
#[test]
fn failed_logins_slow_down_and_do_not_enumerate_users() {
    let srv = Server::start_with(
        Overrides::new()
            .tls(&["alice@example.test"])
            .set("pop3", "auth_failure_delay_ms", "300")
            .set("limits", "max_errors", "20"),
    );
    let mut c = Client::connect(srv.addr("submission"));
    c.expect(220);
    let mut took = Vec::new();
    for user in [
        "alice@example.test",
        "nobody@example.test",
        "alice@example.test",
    ] {
        let ir = smtpd::proto::sasl::encode_plain(user, "wrong");
        let t0 = Instant::now();
        let r = c.cmd(&format!("AUTH PLAIN {ir}"));
        took.push(t0.elapsed());
        assert_eq!(
            (r.code, r.text()),
            (535, "5.7.8 Authentication credentials invalid".into())
        );
    }
    eprintln!("failed AUTH delays: {took:?}");
    assert!(took[0] >= Duration::from_millis(300));
    assert!(took[1] >= Duration::from_millis(600));
    assert!(took[2] >= Duration::from_millis(900));
    srv.log.wait_count("smtp auth failed", 3);
    let log = srv.log.all();
    let failures: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("smtp auth failed"))
        .collect();
    assert_eq!(failures.len(), 3);
    assert!(
        failures.iter().all(|l| l.contains("peer=127.0.0.1:")),
        "{failures:?}"
    );
}
