//! The edges of relaying (issue 15): `[relay] tls = "required"` on a route (verified, pinned, or
//! refused), a next hop whose SIZE is smaller than the message (failed before DATA), and a
//! kill -9 in the middle of delivering 200 queued messages (each delivered, at most the ones in
//! flight twice).
mod common;
use common::*;

const TEXT: &[u8] = b"Subject: edge\r\n\r\nbody\r\n";

/// A sender routing far.test to `route`, with `extra`, retrying after 1-2 s.
fn sender(route: std::net::SocketAddr, extra: Overrides) -> Server {
    Server::start_with(
        extra
            .set(
                "relay",
                "routes",
                &format!("{{ \"far.test\" = \"{route}\" }}"),
            )
            .set("queue", "minimal_backoff_secs", "1")
            .set("queue", "maximal_backoff_secs", "2"),
    )
}

/// `tls = "required"`: STARTTLS with the next hop's certificate verified (here pinned through
/// `cafile`) delivers over TLS; an unverifiable certificate, or a next hop without STARTTLS,
/// defers the message and sends nothing.
#[test]
fn required_tls_on_a_route() {
    let far = Server::start_with(Overrides::new().tls(&[]).set(
        "mailboxes",
        "domains",
        "[\"far.test\"]",
    ));
    let cafile = far.dir.path().join("tls/cert.pem");
    let srv = sender(
        far.addr("smtp"),
        Overrides::new().set("relay", "tls", "\"required\"").set(
            "relay",
            "cafile",
            &format!("\"{}\"", cafile.display()),
        ),
    );
    srv.deliver("bob@far.test", TEXT);
    until("delivery over TLS", || {
        far.new_mail("far.test", "bob").len() == 1
    });
    let text = std::fs::read_to_string(&far.new_mail("far.test", "bob")[0]).unwrap();
    assert!(text.contains(" with ESMTPS id "), "{text}");

    let untrusted = sender(
        far.addr("smtp"),
        Overrides::new().set("relay", "tls", "\"required\""),
    );
    untrusted.deliver("carol@far.test", TEXT);
    until("a deferral for the certificate", || {
        untrusted
            .queue()
            .first()
            .is_some_and(|q| q["recipients"][0]["state"] == "deferred")
    });
    let error = untrusted.queue()[0]["recipients"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_lowercase();
    assert!(error.contains("certificate"), "{error}");
    assert!(far.new_mail("far.test", "carol").is_empty());

    let plain = Server::start_with(Overrides::new().set("mailboxes", "domains", "[\"far.test\"]"));
    let srv = sender(
        plain.addr("smtp"),
        Overrides::new().set("relay", "tls", "\"required\""),
    );
    srv.deliver("dave@far.test", TEXT);
    until("a deferral for missing STARTTLS", || {
        srv.queue()
            .first()
            .is_some_and(|q| q["recipients"][0]["state"] == "deferred")
    });
    let error = srv.queue()[0]["recipients"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("STARTTLS is required"), "{error}");
    assert!(plain.new_mail("far.test", "dave").is_empty());
}

/// A next hop that advertises a SIZE below the message's: failed at once (552 5.3.4) without
/// sending it, and bounced to the sender.
#[test]
fn next_hop_size_smaller_than_the_message() {
    let far = Server::start_with(
        Overrides::new()
            .set("mailboxes", "domains", "[\"far.test\"]")
            .set("limits", "max_message_bytes", "2000"),
    );
    let srv = sender(far.addr("smtp"), Overrides::new());
    let big = format!(
        "Subject: big\r\n\r\n{}",
        format!("{}\r\n", "y".repeat(70)).repeat(70)
    );
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail("alice@example.test", &["bob@far.test"], big.as_bytes());
    assert_eq!(r.code, 250, "{r:?}");
    until("the bounce", || {
        srv.new_mail("example.test", "alice").len() == 1
    });
    let text = std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap();
    assert!(text.contains("Status: 5.3.4\n"), "{text}");
    assert!(text.contains("SIZE limit (2000)"), "{text}");
    assert!(far.new_mail("far.test", "bob").is_empty());
    let st = far.ctl_json(&["status"]);
    assert_eq!(st["counters"]["messages_accepted"], 0, "{st}");
}

/// 200 messages queued, then delivery starts and smtpd is killed with SIGKILL in the middle:
/// after the restart every message is delivered, and only those in flight at the kill (at
/// most `[relay] concurrency`, 8 here) twice.
#[test]
fn kill_9_mid_delivery_of_200() {
    const N: usize = 200;
    let far = Server::start_with(Overrides::new().set("mailboxes", "domains", "[\"far.test\"]"));
    let mut srv = sender(
        far.addr("smtp"),
        Overrides::new().set("relay", "concurrency", "8"),
    );
    far.ctl(&["pause", "smtp"]);
    for i in 0..N {
        srv.deliver(&format!("r{i}@far.test"), TEXT);
    }
    assert_eq!(srv.queue().len(), N);
    far.ctl(&["resume", "smtp"]);
    srv.ctl_json(&["queue", "flush"]);
    let delivered = |far: &Server| {
        (0..N)
            .filter(|i| !far.new_mail("far.test", &format!("r{i}")).is_empty())
            .count()
    };
    until("a quarter delivered", || delivered(&far) >= N / 4);
    srv.kill_and_restart(&[]);
    let at_kill = delivered(&far);
    assert!(at_kill < N, "all {N} were delivered before the kill");
    until("every message", || delivered(&far) == N);
    until("an empty queue", || srv.queue().is_empty());
    let twice: Vec<usize> = (0..N)
        .filter(|i| far.new_mail("far.test", &format!("r{i}")).len() > 1)
        .collect();
    assert!(twice.len() <= 8, "sent twice: {twice:?}");
    eprintln!(
        "{at_kill} delivered before the kill, {} twice after it",
        twice.len()
    );
}

/// `smtpctl watch` shows each remote attempt (deferred, then delivered, with the next hop), and
/// the log has one line per attempt with relay= and delay=.
#[test]
fn watch_and_log_show_remote_attempts() {
    let far = Server::start_with(
        Overrides::new()
            .set("mailboxes", "domains", "[\"far.test\"]")
            .set("testing", "fault_addresses", "true"),
    );
    let srv = sender(far.addr("smtp"), Overrides::new());
    let mut child = std::process::Command::new(smtpctl_bin())
        .arg("--socket")
        .arg(srv.socket())
        .arg("watch")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = LogWatch::spawn(child.stdout.take().unwrap());
    let err = LogWatch::spawn(child.stderr.take().unwrap());
    err.wait_for("watching");
    far.ctl(&["pause", "smtp"]);
    srv.deliver("bob@far.test", TEXT);
    let deferred = out.wait_for("queue deferred");
    let hop = far.addr("smtp").to_string();
    assert!(
        deferred.contains("<sender@b.test> → bob@far.test") && deferred.contains("421"),
        "{deferred}"
    );
    far.ctl(&["resume", "smtp"]);
    srv.ctl_json(&["queue", "flush"]);
    let delivered = out.wait_for("queue delivered");
    assert!(
        delivered.contains(&hop) && delivered.contains("(try 2): 250"),
        "{delivered}"
    );
    let _ = child.kill();
    let _ = child.wait();
    let line = srv.log.wait_for("bob@far.test>: delivered, relay=");
    assert!(
        line.contains(&format!("relay={hop}, delay=")) && line.contains("250"),
        "{line}"
    );
    let line = srv.log.wait_for("bob@far.test>: deferred, relay=");
    assert!(line.contains("421"), "{line}");
}

/// The receiving smtpd's count of SMTP sessions so far.
fn sessions_at(srv: &Server) -> u64 {
    srv.ctl_json(&["status"])["counters"]["smtp_total"]
        .as_u64()
        .unwrap()
}

/// Messages queued at once: one session per message in parallel up to
/// `destination_concurrency`; with a limit of 1 they go one after the other over one cached
/// session (RSET between them); with the cache off, one session each.
#[test]
fn connection_reuse_and_destination_concurrency() {
    let run = |limit: &str, cache: &str| -> (u64, String) {
        let far = Server::start_with(
            Overrides::new()
                .set("mailboxes", "domains", "[\"far.test\"]")
                .set("testing", "fault_addresses", "true"),
        );
        let srv = sender(
            far.addr("smtp"),
            Overrides::new()
                .set("relay", "destination_concurrency", limit)
                .set("relay", "connection_cache_secs", cache),
        );
        // Held at RCPT for a second each, so the three are in flight together unless the
        // limit keeps them apart.
        let mut c = srv.connect();
        c.expect(220);
        for _ in 0..3 {
            let r = c.send_mail("alice@example.test", &["slow-1s@far.test"], TEXT);
            assert_eq!(r.code, 250, "{r:?}");
        }
        until("three deliveries", || {
            far.new_mail("far.test", "slow-1s").len() == 3
        });
        until("an empty queue", || srv.queue().is_empty());
        let metrics = stdout(&srv.ctl(&["metrics"]));
        (sessions_at(&far), metrics)
    };
    let (one, metrics) = run("1", "30");
    assert_eq!(one, 1, "one session, reused twice");
    assert!(
        metrics.contains("smtpd_remote_sessions_total{kind=\"opened\"} 1")
            && metrics.contains("smtpd_remote_sessions_total{kind=\"reused\"} 2"),
        "{metrics}"
    );
    let (parallel, _) = run("20", "30");
    assert_eq!(parallel, 3, "three at once, each on its own session");
    let (uncached, _) = run("1", "0");
    assert_eq!(uncached, 3, "no cache: one session per message");
}
