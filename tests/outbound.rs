//! Mail that leaves the host (issue 15, first part): accepted for a remote domain from a relay
//! peer (or an AUTH'd submission user), queued durably before the 250, delivered by the runner to
//! a real receiver (a second smtpd on loopback) through `[relay] routes` or the smarthost,
//! deferred and retried, failed on 5xx, held and released, and resumed after a kill -9 without a
//! recipient sent twice. Direct delivery (a domain without a route: its MX hosts) is in mx.rs.
mod common;
use common::*;

/// A second smtpd that receives for far.test (fault addresses on).
fn receiver() -> Server {
    Server::start_with(
        Overrides::new()
            .set("mailboxes", "domains", "[\"far.test\"]")
            .set("testing", "fault_addresses", "true"),
    )
}

/// The smtpd under test, routing far.test to `receiver`, retrying after 1-2 s.
fn sender(receiver: &Server) -> Server {
    sender_with_backoff(receiver, 1)
}

/// The same, retrying after `secs` (then twice that).
fn sender_with_backoff(receiver: &Server, secs: u64) -> Server {
    let route = format!("{{ \"far.test\" = \"{}\" }}", receiver.addr("smtp"));
    Server::start_with(
        Overrides::new()
            .set("relay", "routes", &route)
            .set("queue", "minimal_backoff_secs", &secs.to_string())
            .set("queue", "maximal_backoff_secs", &(2 * secs).to_string()),
    )
}

fn queue(srv: &Server) -> serde_json::Value {
    srv.ctl_json(&["queue"])
}

/// One message from alice@example.test to `to` over `srv`'s SMTP listener; must get 250.
fn send(srv: &Server, to: &[&str]) {
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail("alice@example.test", to, TEXT);
    assert_eq!(r.code, 250, "{r:?}");
}

const TEXT: &[u8] =
    b"Subject: out\r\nMessage-ID: <out.1@example.test>\r\n\r\nfirst line\r\n..dotted\r\nlast\r\n";

/// One message for a remote and a local recipient: one 250; the local copy lands in its
/// Maildir, the remote one at the receiver with the text unchanged (our Received: on top), and
/// the queue ends empty.
#[test]
fn relayed_through_a_route_and_delivered_locally() {
    let far = receiver();
    let srv = sender(&far);
    send(&srv, &["bob@far.test", "carol@example.test"]);
    until("the remote copy", || {
        far.new_mail("far.test", "bob").len() == 1
    });
    until("the local copy", || {
        srv.new_mail("example.test", "carol").len() == 1
    });
    until("an empty queue", || {
        queue(&srv).as_array().unwrap().is_empty()
    });
    let body = b"Subject: out\nMessage-ID: <out.1@example.test>\n\nfirst line\n.dotted\nlast\n";
    // Each copy: its final hop's Return-Path and Received, then (remote) our Received, then the
    // text exactly as sent.
    let local = std::fs::read_to_string(&srv.new_mail("example.test", "carol")[0]).unwrap();
    assert!(
        local.starts_with("Return-Path: <alice@example.test>\nReceived: from "),
        "{local}"
    );
    assert!(
        local.ends_with(std::str::from_utf8(body).unwrap()),
        "{local}"
    );
    assert_eq!(local.matches("Return-Path:").count(), 1, "{local}");
    let remote = std::fs::read_to_string(&far.new_mail("far.test", "bob")[0]).unwrap();
    assert_eq!(remote.matches("Return-Path:").count(), 1, "{remote}");
    assert_eq!(remote.matches("Received: from ").count(), 2, "{remote}");
    let after_first_hop = stored_body(&far.new_mail("far.test", "bob")[0]);
    let ours = String::from_utf8(after_first_hop).unwrap();
    assert!(ours.starts_with("Received: from [127.0.0.1]"), "{ours}");
    assert!(ours.ends_with(std::str::from_utf8(body).unwrap()), "{ours}");
    let st = srv.ctl_json(&["status"]);
    assert_eq!(st["counters"]["remote_delivered"], 1, "{st}");
    let log = srv.log.wait_for("bob@far.test>: delivered");
    assert!(log.contains("INFO"), "{log}");
}

/// The receiver refuses for now (paused: 421): deferred with the reply as last error; once it
/// takes mail again, `queue flush` delivers at once (the next try would be a minute away).
#[test]
fn deferred_then_flushed() {
    let far = receiver();
    let srv = sender_with_backoff(&far, 60);
    far.ctl(&["pause", "smtp"]);
    srv.deliver("bob@far.test", TEXT);
    until("a deferral", || {
        let q = queue(&srv);
        q[0]["recipients"][0]["state"] == "deferred"
    });
    let q = queue(&srv);
    let error = q[0]["recipients"][0]["last_error"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(error.contains("421"), "{q}");
    let text = stdout(&srv.ctl(&["queue"]));
    assert!(
        text.contains("deferred  bob@far.test") && text.contains("421"),
        "{text}"
    );
    far.ctl(&["resume", "smtp"]);
    let out = srv.ctl_json(&["queue", "flush"]);
    assert_eq!(out["flushed"], 1, "{out}");
    until("delivery after the flush", || {
        far.new_mail("far.test", "bob").len() == 1
    });
    until("an empty queue", || {
        queue(&srv).as_array().unwrap().is_empty()
    });
}

/// A 5xx for one recipient fails it while the other is delivered; the sender (local here) gets
/// an RFC 3464 report from `<>` in its Maildir, and the message leaves the queue.
#[test]
fn permanent_refusal_bounces_to_the_sender() {
    let far = receiver();
    let srv = sender(&far);
    send(&srv, &["fail-550@far.test", "bob@far.test"]);
    until("bob's copy", || far.new_mail("far.test", "bob").len() == 1);
    until("the bounce", || {
        srv.new_mail("example.test", "alice").len() == 1
    });
    until("an empty queue", || {
        queue(&srv).as_array().unwrap().is_empty()
    });
    let raw = std::fs::read(&srv.new_mail("example.test", "alice")[0]).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    assert!(text.starts_with("Return-Path: <>\n"), "{text}");
    let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
    use mail_parser::MimeHeaders;
    let ct = m.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype()),
        ("multipart", Some("report")),
        "{text}"
    );
    assert_eq!(ct.attribute("report-type"), Some("delivery-status"));
    assert!(text.contains("Final-Recipient: rfc822; fail-550@far.test\nAction: failed\nStatus: 5.0.0\nRemote-MTA: dns; 127.0.0.1"), "{text}");
    assert!(
        text.contains("Diagnostic-Code: smtp; 550 5.0.0 Fault injected"),
        "{text}"
    );
    assert!(
        !text.contains("Final-Recipient: rfc822; bob@far.test"),
        "{text}"
    );
    assert!(
        text.contains("Content-Type: text/rfc822-headers\n\nReceived: from "),
        "{text}"
    );
    assert!(
        text.contains("Subject: out\n") && !text.contains("first line"),
        "{text}"
    );
}

/// A bounce is never bounced: a message from `<>` that fails is logged and dropped (so the
/// queue cannot fill with them), and nobody gets a report.
#[test]
fn a_bounce_is_never_bounced() {
    let far = receiver();
    let srv = sender(&far);
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail("", &["fail-550@far.test"], TEXT);
    assert_eq!(r.code, 250, "{r:?}");
    let line = srv.log.wait_for("undeliverable bounce dropped");
    assert!(
        line.contains("fail-550@far.test") && line.contains("550"),
        "{line}"
    );
    until("an empty queue", || {
        queue(&srv).as_array().unwrap().is_empty()
    });
    assert_eq!(
        std::fs::read_dir(srv.dir.path().join("queue/msg"))
            .unwrap()
            .count(),
        0
    );
    assert!(
        srv.root()
            .join("example.test")
            .read_dir()
            .map(|d| d.count())
            .unwrap_or(0)
            == 0,
        "no report delivered"
    );
}

/// Still deferred at the end of its lifetime: failed, and bounced with the last error.
#[test]
fn lifetime_expiry_bounces() {
    let far = receiver();
    let route = format!("{{ \"far.test\" = \"{}\" }}", far.addr("smtp"));
    let srv = Server::start_with(
        Overrides::new()
            .set("relay", "routes", &route)
            .set("queue", "minimal_backoff_secs", "1")
            .set("queue", "maximal_backoff_secs", "1")
            .set("queue", "max_lifetime_secs", "1"),
    );
    far.ctl(&["pause", "smtp"]);
    send(&srv, &["bob@far.test"]);
    until("the bounce", || {
        srv.new_mail("example.test", "alice").len() == 1
    });
    let text = std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap();
    assert!(text.contains("Action: failed\nStatus: 4.3.2"), "{text}");
    assert!(text.contains("queue lifetime expired"), "{text}");
    until("an empty queue", || {
        queue(&srv).as_array().unwrap().is_empty()
    });
}

/// Held messages are not tried (a flush passes them by); released, they are.
#[test]
fn hold_and_release() {
    let far = receiver();
    let srv = sender(&far);
    far.ctl(&["pause", "smtp"]);
    srv.deliver("bob@far.test", TEXT);
    until("a deferral", || {
        queue(&srv)[0]["recipients"][0]["state"] == "deferred"
    });
    let id = queue(&srv)[0]["id"].as_str().unwrap().to_string();
    srv.ctl_json(&["queue", "hold", &id]);
    assert_eq!(queue(&srv)[0]["recipients"][0]["state"], "held");
    assert_eq!(queue(&srv)[0]["held"], true);
    far.ctl(&["resume", "smtp"]);
    let out = srv.ctl_json(&["queue", "flush"]);
    assert_eq!(out["flushed"], 0, "a held message is not flushed: {out}");
    srv.ctl_json(&["queue", "release", &id]);
    srv.ctl_json(&["queue", "flush"]);
    until("delivery after release", || {
        far.new_mail("far.test", "bob").len() == 1
    });
}

/// 20 messages queued while the receiver refuses, then smtpd is killed with SIGKILL and
/// restarted: every message is delivered once, none twice.
#[test]
fn kill_9_with_a_full_queue_resumes_exactly() {
    let far = receiver();
    let mut srv = sender(&far);
    far.ctl(&["pause", "smtp"]);
    for i in 0..20 {
        srv.deliver(&format!("r{i}@far.test"), TEXT);
    }
    assert_eq!(queue(&srv).as_array().unwrap().len(), 20);
    srv.kill_and_restart(&[]);
    srv.log.wait_for("queue loaded");
    assert_eq!(queue(&srv).as_array().unwrap().len(), 20);
    far.ctl(&["resume", "smtp"]);
    srv.ctl_json(&["queue", "flush"]);
    until("20 deliveries", || {
        (0..20).all(|i| far.new_mail("far.test", &format!("r{i}")).len() == 1)
    });
    until("an empty queue", || {
        queue(&srv).as_array().unwrap().is_empty()
    });
    for i in 0..20 {
        assert_eq!(
            far.new_mail("far.test", &format!("r{i}")).len(),
            1,
            "r{i} twice"
        );
    }
}

/// The smarthost: every remote domain goes there, over STARTTLS with its certificate verified
/// (a lab's self-signed one, trusted through `[relay] cafile`) and AUTH PLAIN with the
/// credentials file; the receiver sees an authenticated session (ESMTPSA).
#[test]
fn smarthost_with_starttls_and_auth() {
    let hub = Server::start_with(Overrides::new().tls(&["relay@example.test"]).set(
        "mailboxes",
        "domains",
        "[\"example.test\", \"far.test\"]",
    ));
    let dir = tempfile::tempdir().unwrap();
    let auth = dir.path().join("smarthost.auth");
    std::fs::write(&auth, format!("relay@example.test:{PASSWORD}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&auth, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cafile = hub.dir.path().join("tls/cert.pem");
    let srv = Server::start_with(
        Overrides::new()
            .set("mailboxes", "domains", "[\"local.test\"]")
            .set(
                "relay",
                "smarthost",
                &format!("\"{}\"", hub.addr("submission")),
            )
            .set("relay", "smarthost_tls", "\"starttls\"")
            .set(
                "relay",
                "smarthost_auth_file",
                &format!("\"{}\"", auth.display()),
            )
            .set("relay", "cafile", &format!("\"{}\"", cafile.display()))
            .set("queue", "minimal_backoff_secs", "1")
            .set("queue", "maximal_backoff_secs", "2"),
    );
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail("relay@example.test", &["bob@far.test"], TEXT);
    assert_eq!(r.code, 250, "{r:?}");
    until("delivery through the smarthost", || {
        hub.new_mail("far.test", "bob").len() == 1
    });
    let text = std::fs::read_to_string(&hub.new_mail("far.test", "bob")[0]).unwrap();
    assert!(text.contains(" with ESMTPSA id "), "{text}");
    // A smarthost whose certificate cannot be verified is not sent to (nor the password).
    let untrusted = Server::start_with(
        Overrides::new()
            .set("mailboxes", "domains", "[\"local.test\"]")
            .set(
                "relay",
                "smarthost",
                &format!("\"{}\"", hub.addr("submission")),
            )
            .set(
                "relay",
                "smarthost_auth_file",
                &format!("\"{}\"", auth.display()),
            ),
    );
    untrusted.deliver("bob@far.test", TEXT);
    until("a deferral for the certificate", || {
        let q = queue(&untrusted);
        q[0]["recipients"][0]["state"] == "deferred"
    });
    let q = queue(&untrusted);
    let error = q[0]["recipients"][0]["last_error"].as_str().unwrap();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

/// A message that has gone round too often (more than 50 Received: headers) fails as a loop
/// and is bounced, instead of being sent on.
#[test]
fn mail_loop_fails_and_bounces() {
    let far = receiver();
    let srv = sender(&far);
    let mut text = "Received: from somewhere\r\n".repeat(51).into_bytes();
    text.extend_from_slice(TEXT);
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail("alice@example.test", &["bob@far.test"], &text);
    assert_eq!(r.code, 250, "{r:?}");
    until("the bounce", || {
        srv.new_mail("example.test", "alice").len() == 1
    });
    let report = std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap();
    assert!(report.contains("Status: 5.4.6"), "{report}");
    assert!(far.new_mail("far.test", "bob").is_empty(), "not sent on");
}

/// Two servers whose aliases forward to each other: the copy that comes back carries our
/// Delivered-To: twice, so it fails as a forwarding loop on its second pass (not after 50
/// Received: headers) and the sender gets a bounce naming it.
#[test]
fn alias_forwarding_loop_bounces_on_the_second_pass() {
    let far_o = |route: &str| {
        Overrides::new()
            .set("mailboxes", "domains", "[\"far.test\"]")
            .set("aliases", "\"bob@far.test\"", "\"loop@example.test\"")
            .set("relay", "routes", route)
    };
    let far = Server::start_with(far_o("{}"));
    let route = format!("{{ \"far.test\" = \"{}\" }}", far.addr("smtp"));
    let srv = Server::start_with(Overrides::new().set("relay", "routes", &route).set(
        "aliases",
        "\"loop@example.test\"",
        "\"bob@far.test\"",
    ));
    let back = format!("{{ \"example.test\" = \"{}\" }}", srv.addr("smtp"));
    far.rewrite_config(&far_o(&back));
    assert_eq!(far.ctl_json(&["reload"])["applied"], true);
    send(&srv, &["loop@example.test"]);
    until("the bounce", || {
        srv.new_mail("example.test", "alice").len() == 1
    });
    let report = std::fs::read_to_string(&srv.new_mail("example.test", "alice")[0]).unwrap();
    assert!(report.contains("Status: 5.4.6"), "{report}");
    assert!(
        report.contains("mail forwarding loop for loop@example.test"),
        "{report}"
    );
    // The returned headers: two passes through each server, no more.
    let received = report.matches("\nReceived: ").count();
    assert!(
        (3..=5).contains(&received),
        "{received} Received: in\n{report}"
    );
    until("both queues empty", || {
        queue(&srv).as_array().is_some_and(|q| q.is_empty())
            && queue(&far).as_array().is_some_and(|q| q.is_empty())
    });
}

/// `[aliases]` (a list with a remote address, reloadable) and `recipient_delimiter`.
#[test]
fn aliases_and_recipient_delimiter() {
    let far = receiver();
    let route = format!("{{ \"far.test\" = \"{}\" }}", far.addr("smtp"));
    let o = |team: &str| {
        Overrides::new()
            .set("relay", "routes", &route)
            .set("mailboxes", "recipient_delimiter", "\"+\"")
            .set("aliases", "\"team@example.test\"", team)
    };
    let srv = Server::start_with(o("[\"carol@example.test\", \"bob@far.test\"]"));
    send(&srv, &["team@example.test"]);
    send(&srv, &["carol+lists@example.test"]);
    until("bob's copy", || far.new_mail("far.test", "bob").len() == 1);
    until("carol's two copies", || {
        srv.new_mail("example.test", "carol").len() == 2
    });
    assert!(
        !srv.root().join("example.test/carol+lists").exists(),
        "the tag names no Maildir"
    );
    // A reload changes where the alias goes.
    srv.rewrite_config(&o("\"dave@example.test\""));
    assert_eq!(srv.ctl_json(&["reload"])["applied"], true);
    send(&srv, &["team@example.test"]);
    until("dave's copy", || {
        srv.new_mail("example.test", "dave").len() == 1
    });
    assert_eq!(far.new_mail("far.test", "bob").len(), 1);
}

/// Each recipient's outcome is on disk before the next step: smtpd killed (SIGKILL) right after
/// the local copy and the first of two next hops were done, then restarted, delivers neither
/// again, and delivers the second hop's recipient once.
#[test]
fn kill_9_between_hops_sends_nobody_twice() {
    let far = receiver();
    let far2 = Server::start_with(Overrides::new().set("mailboxes", "domains", "[\"far2.test\"]"));
    let route = format!(
        "{{ \"far.test\" = \"{}\", \"far2.test\" = \"{}\" }}",
        far.addr("smtp"),
        far2.addr("smtp")
    );
    let o = Overrides::new()
        .set("relay", "routes", &route)
        .set("queue", "minimal_backoff_secs", "1")
        .set("queue", "maximal_backoff_secs", "2");
    let mut srv = Server::start_env(o, &[("SMTPD_TEST_STALL", "between_hops")]);
    send(
        &srv,
        &["bob@far.test", "dan@far2.test", "carol@example.test"],
    );
    srv.log.wait_for("fault point between_hops reached");
    let first = far.new_mail("far.test", "bob").len() + far2.new_mail("far2.test", "dan").len();
    assert_eq!(first, 1, "one hop done before the stall");
    assert_eq!(srv.new_mail("example.test", "carol").len(), 1);
    srv.kill_and_restart(&[]);
    srv.ctl_json(&["queue", "flush"]);
    until("an empty queue", || {
        queue(&srv).as_array().unwrap().is_empty()
    });
    assert_eq!(far.new_mail("far.test", "bob").len(), 1, "bob once");
    assert_eq!(far2.new_mail("far2.test", "dan").len(), 1, "dan once");
    assert_eq!(srv.new_mail("example.test", "carol").len(), 1, "carol once");
}
