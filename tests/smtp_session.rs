//! Black-box SMTP behaviour of the real smtpd (CONTRACT: "SMTP behaviour").
mod common;
use common::*;

/// The original student telnet session works without HELO: MAIL FROM / RCPT TO / DATA / QUIT.
#[test]
fn original_telnet_session() {
    let srv = Server::start();
    let mut c = srv.connect();
    let greet = c.expect(220);
    assert!(
        greet.text().starts_with("mx.example.test ESMTP"),
        "{greet:?}"
    );
    c.send(b"MAIL FROM:<prof@univ.test>\r\n");
    c.expect(250);
    c.send(b"RCPT TO:<etudiant@example.test>\r\n");
    c.expect(250);
    c.send(b"DATA\r\n");
    c.expect(354);
    c.send(b"Subject: Bonjour\r\n\r\nCeci est un test.\r\n.\r\n");
    let r = c.expect(250);
    assert!(r.text().contains("queued as"), "{r:?}");
    c.send(b"QUIT\r\n");
    c.expect(221);
    assert!(c.is_closed());
    let mail = srv.new_mail("example.test", "etudiant");
    assert_eq!(mail.len(), 1);
    assert_eq!(
        stored_body(&mail[0]),
        b"Subject: Bonjour\n\nCeci est un test.\n"
    );
    let stored = std::fs::read_to_string(&mail[0]).unwrap();
    assert!(stored.starts_with("Return-Path: <prof@univ.test>\nReceived: from [127.0.0.1] ([127.0.0.1])\n\tby mx.example.test (smtpd) with SMTP id "), "{stored}");
    assert!(stored.contains("\tfor <etudiant@example.test>; "));
}

/// EHLO advertises the extensions of the contract; every reply carries an enhanced code
/// (loopback is no relay peer here, so a remote recipient gets 550 5.7.1).
#[test]
fn ehlo_and_enhanced_codes() {
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let mut c = srv.connect();
    c.expect(220);
    let r = c.cmd("EHLO client.test");
    assert_eq!(r.code, 250);
    for kw in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
    ] {
        assert!(r.lines.iter().any(|l| l == kw), "{kw} missing: {r:?}");
    }
    for (cmd, code, enh) in [
        ("NOOP", 250, "2.0.0"),
        ("VRFY alice", 252, "2.0.0"),
        ("HELP", 214, "2.0.0"),
        ("RCPT TO:<a@example.test>", 503, "5.5.1"),
        ("MAIL FROM:<a@b.test> FOO=1", 555, "5.5.4"),
        ("MAIL FROM:<a@b.test>", 250, "2.1.0"),
        ("RCPT TO:<x@elsewhere.test>", 550, "5.7.1"),
        ("RCPT TO:<alice@example.test>", 250, "2.1.5"),
        ("RSET", 250, "2.0.0"),
        ("XYZZY", 502, "5.5.2"),
        ("QUIT", 221, "2.0.0"),
    ] {
        let r = c.cmd(cmd);
        assert_eq!(r.code, code, "{cmd}: {r:?}");
        assert!(r.lines[0].starts_with(enh), "{cmd}: {r:?}");
    }
}

/// Two recipients in two local domains each get an identical durable copy.
#[test]
fn two_recipients_two_domains() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    let r = c.send_mail(
        "sender@b.test",
        &["Alice@Example.Test", "bob@localhost"],
        b"Subject: two\r\n\r\nfor both\r\n",
    );
    assert_eq!(r.code, 250);
    let a = srv.new_mail("example.test", "alice");
    let b = srv.new_mail("localhost", "bob");
    assert_eq!((a.len(), b.len()), (1, 1));
    assert_eq!(std::fs::read(&a[0]).unwrap(), std::fs::read(&b[0]).unwrap());
    assert_eq!(stored_body(&a[0]), b"Subject: two\n\nfor both\n");
    // Dovecot-style name with S= and W=, made by this instance (the host's name by default).
    let instance = smtpd::config::Server::default().instance_name();
    let name = a[0].file_name().unwrap().to_string_lossy().into_owned();
    let size = std::fs::metadata(&a[0]).unwrap().len();
    let lines = std::fs::read(&a[0])
        .unwrap()
        .iter()
        .filter(|&&b| b == b'\n')
        .count() as u64;
    assert!(
        name.ends_with(&format!(".{instance},S={size},W={}", size + lines)),
        "{name}"
    );
    assert!(srv.root().join("example.test/alice/tmp").is_dir());
    assert!(srv.root().join("example.test/alice/cur").is_dir());
}

/// 8-bit bytes (even invalid UTF-8) are stored byte for byte.
#[test]
fn eight_bit_body_intact() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    assert_eq!(c.cmd("MAIL FROM:<a@b.test> BODY=8BITMIME").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    let body: Vec<u8> =
        b"Subject: 8bit\r\n\r\nl\xc3\xa9t\xc3\xa9 \xff\xfe\x80 \x01\x7f\r\n".to_vec();
    c.send(&body);
    c.send(b".\r\n");
    c.expect(250);
    let mail = srv.new_mail("example.test", "bob");
    assert_eq!(
        stored_body(&mail[0]),
        b"Subject: 8bit\n\nl\xc3\xa9t\xc3\xa9 \xff\xfe\x80 \x01\x7f\n"
    );
}

/// Lines starting with "." survive dot-stuffing and unstuffing.
#[test]
fn leading_dots_intact() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail(
        "a@b.test",
        &["bob@example.test"],
        b"Subject: dots\r\n\r\n..\r\n...\r\n..hidden\r\n. \r\n",
    );
    assert_eq!(r.code, 250);
    let mail = srv.new_mail("example.test", "bob");
    assert_eq!(
        stored_body(&mail[0]),
        b"Subject: dots\n\n.\n..\n.hidden\n \n"
    );
}

/// SIZE is enforced on the declared size (at MAIL) and the actual size (after DATA); the session
/// survives both and the next message goes through.
#[test]
fn size_refused_declared_and_actual() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_message_bytes", "1000"));
    let mut c = srv.connect();
    c.expect(220);
    let r = c.cmd("EHLO client.test");
    assert!(r.lines.iter().any(|l| l == "SIZE 1000"));
    let r = c.cmd("MAIL FROM:<a@b.test> SIZE=1001");
    assert_eq!(
        (r.code, r.lines[0].starts_with("5.3.4")),
        (552, true),
        "{r:?}"
    );
    assert_eq!(c.cmd("MAIL FROM:<a@b.test> SIZE=500").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    for _ in 0..100 {
        c.send(b"0123456789012345678901234567890123456789\r\n");
    }
    c.send(b".\r\n");
    let r = c.reply();
    assert_eq!(r.code, 552, "{r:?}");
    assert!(srv.new_mail("example.test", "bob").is_empty());
    assert!(
        list(&srv.root().join("example.test/bob/tmp")).is_empty(),
        "no spool left behind"
    );
    let r = c.send_mail(
        "a@b.test",
        &["bob@example.test"],
        b"Subject: small\r\n\r\nok\r\n",
    );
    assert_eq!(r.code, 250);
    assert_eq!(srv.new_mail("example.test", "bob").len(), 1);
}

/// Mail for a domain that is not local is refused to a peer outside `[relay] networks` (never
/// an open relay) and nothing is written.
#[test]
fn relay_refused() {
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    for rcpt in [
        "victim@gmail.test",
        "bob@example.test.evil.test",
        "bob@[127.0.0.1]",
        "bob@sub.example.test",
    ] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>"));
        assert_eq!(r.code, 550, "{rcpt}: {r:?}");
        assert!(r.lines[0].starts_with("5.7.1"), "{r:?}");
        assert!(r.text().contains("Relay access denied"));
    }
    let r = c.cmd("DATA");
    assert_eq!(r.code, 554);
    assert!(walk(&srv.root()).is_empty());
}

/// Path-traversal attempts in local parts and domains write nothing outside the mailbox root.
#[test]
fn path_traversal_writes_nothing_outside_root() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_errors", "50"));
    let before: Vec<_> = walk(srv.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(srv.dir.path().join("logs")))
        .collect();
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    for rcpt in [
        "<\"../../escape\"@example.test>",
        "<\"..\"@example.test>",
        "<\".\"@example.test>",
        "<\"a/b\"@example.test>",
        "<\"a\\\\b\"@example.test>",
        "<\".hidden\"@example.test>",
        "<\"/etc/passwd\"@example.test>",
        "<x@../../example.test>",
        "<x@example.test/../../tmp>",
        "<..@example.test>",
        "<a/../../b@example.test>",
        "<a/b@example.test>",
        "<\"a\u{0}b\"@example.test>",
    ] {
        let r = c.cmd(&format!("RCPT TO:{rcpt}"));
        assert!(r.code >= 500, "{rcpt} accepted: {r:?}");
    }
    // One good recipient so DATA runs and something is written.
    assert_eq!(c.cmd("RCPT TO:<ok@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: x\r\n\r\n.\r\n");
    c.expect(250);
    let after: Vec<_> = walk(srv.dir.path())
        .into_iter()
        .filter(|p| !p.starts_with(srv.dir.path().join("logs")))
        .collect();
    let new: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    assert!(new[0].starts_with(srv.root().join("example.test/ok/new")));
    let dirs: Vec<_> = list(&srv.root().join("example.test"));
    assert_eq!(dirs, vec![srv.root().join("example.test/ok")]);
}

/// `postmaster` (with or without a domain) is always accepted, even with accept = "accounts".
#[test]
fn postmaster_always_accepted() {
    let srv = Server::start_with(
        Overrides::new()
            .set("mailboxes", "accept", "\"accounts\"")
            .set("mailboxes", "domains", "[\"example.test\"]"),
    );
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    assert_eq!(c.cmd("MAIL FROM:<>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<nobody@example.test>").code, 550);
    assert_eq!(c.cmd("RCPT TO:<Postmaster>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<POSTMASTER@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: pm\r\n\r\nhello postmaster\r\n.\r\n");
    c.expect(250);
    let mail = srv.new_mail("example.test", "postmaster");
    assert_eq!(mail.len(), 1, "one copy for the same mailbox named twice");
    let stored = std::fs::read_to_string(&mail[0]).unwrap();
    assert!(stored.starts_with("Return-Path: <>\n"));
}

/// Over-long lines: 500 5.5.6 and the session goes on (commands and message text).
#[test]
fn overlong_lines() {
    let srv = Server::start();
    let mut c = srv.connect();
    c.expect(220);
    let r = c.cmd(&format!("NOOP {}", "x".repeat(2000)));
    assert_eq!(r.code, 500);
    assert!(r.lines[0].starts_with("5.5.6"));
    assert_eq!(c.cmd("NOOP").code, 250);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(format!("Subject: long\r\n\r\n{}\r\n.\r\n", "y".repeat(5000)).as_bytes());
    let r = c.reply();
    assert_eq!(r.code, 500, "{r:?}");
    assert!(srv.new_mail("example.test", "bob").is_empty());
    assert_eq!(c.cmd("NOOP").code, 250);
}

/// The smuggling sequences never end DATA: the smuggled MAIL FROM stays in the body and no
/// second message is created.
#[test]
fn smuggling_is_not_a_second_message() {
    for variant in ["\n.\n", "\n.\r\n", "\r.\r\n", "\r\n.\r", "\r.\r"] {
        let srv = Server::start();
        let mut c = srv.connect();
        c.expect(220);
        c.cmd("EHLO client.test");
        assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
        assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
        assert_eq!(c.cmd("DATA").code, 354);
        c.send(format!("Subject: s\r\n\r\nhello{variant}MAIL FROM:<evil@b.test>\r\nRCPT TO:<victim@example.test>\r\nDATA\r\nsmuggled\r\n.\r\n").as_bytes());
        c.expect(250);
        assert_eq!(c.cmd("QUIT").code, 221);
        assert!(
            srv.new_mail("example.test", "victim").is_empty(),
            "{variant:?}"
        );
        let mail = srv.new_mail("example.test", "bob");
        assert_eq!(mail.len(), 1);
        let body = String::from_utf8_lossy(&stored_body(&mail[0])).into_owned();
        assert!(
            body.contains("MAIL FROM:<evil@b.test>"),
            "{variant:?}: {body:?}"
        );
    }
}

/// Pipelined commands are answered in order, all in one write (a remote recipient is refused:
/// loopback is no relay peer here).
#[test]
fn pipelining_in_order() {
    let srv = Server::start_with(Overrides::new().set("relay", "networks", "[]"));
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    c.send(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nRCPT TO:<y@nowhere.test>\r\nRCPT TO:<z@localhost>\r\nDATA\r\nSubject: p\r\n\r\none\r\n.\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.test>\r\nDATA\r\nSubject: q\r\n\r\ntwo\r\n.\r\nQUIT\r\n");
    let codes: Vec<u16> = (0..10).map(|_| c.reply().code).collect();
    assert_eq!(codes, [250, 250, 550, 250, 354, 250, 250, 250, 354, 250]);
    c.expect(221);
    assert_eq!(srv.new_mail("example.test", "x").len(), 2);
    assert_eq!(srv.new_mail("localhost", "z").len(), 1);
}

/// After max_errors bad commands: 421 and the connection is closed.
#[test]
fn too_many_errors_close() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_errors", "3"));
    let mut c = srv.connect();
    c.expect(220);
    c.send(b"BAD1\r\nBAD2\r\nBAD3\r\nNOOP\r\n");
    assert_eq!(
        [c.reply().code, c.reply().code, c.reply().code],
        [502, 502, 502]
    );
    let r = c.reply();
    assert_eq!(r.code, 421);
    assert!(c.is_closed());
}

/// `[testing] fault_addresses = true`: `fail-NNN@` gets reply NNN, `slow-Ns@` is answered after
/// N seconds; off by default.
#[test]
fn fault_addresses() {
    let srv = Server::start_with(Overrides::new().set("testing", "fault_addresses", "true"));
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    let r = c.cmd("RCPT TO:<fail-452@example.test>");
    assert_eq!(
        (r.code, r.lines[0].as_str()),
        (452, "4.0.0 Fault injected for <fail-452@example.test>")
    );
    assert_eq!(c.cmd("RCPT TO:<fail-550@example.test>").code, 550);
    let t0 = std::time::Instant::now();
    assert_eq!(c.cmd("RCPT TO:<slow-1s@example.test>").code, 250);
    assert!(t0.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(c.cmd("RCPT TO:<fail-421@example.test>").code, 421);
    assert!(c.is_closed());
    let plain = Server::start();
    let mut c = plain.connect();
    c.expect(220);
    assert_eq!(
        c.send_mail(
            "a@b.test",
            &["fail-452@example.test"],
            b"Subject: x\r\n\r\ny\r\n"
        )
        .code,
        250
    );
}

/// Issue 14: a bare CR inside DATA ends a line as a bare LF does, so the stored copy holds LF
/// only, and POP3 serves CRLF only, the LIST size being exactly the octets RETR sends.
#[test]
fn bare_cr_is_normalised_and_pop3_serves_it_consistently() {
    let srv = Server::start_with(Overrides::new().pop3(&["bob@example.test"]));
    srv.deliver(
        "bob@example.test",
        b"Subject: cr\r\n\r\nalpha\rbeta\r\ngamma\ndelta\r\r\n",
    );
    let mail = srv.new_mail("example.test", "bob");
    assert_eq!(
        stored_body(&mail[0]),
        b"Subject: cr\n\nalpha\nbeta\ngamma\ndelta\n\n"
    );
    let mut p = srv.pop3();
    assert!(p.login("bob@example.test", PASSWORD).starts_with("+OK"));
    let list = p.cmd("LIST 1");
    let (_, message) = p.retr(1);
    assert!(message.ends_with(b"alpha\r\nbeta\r\ngamma\r\ndelta\r\n\r\n"));
    let bare = message
        .windows(2)
        .any(|w| (w[0] == b'\r') != (w[1] == b'\n'));
    assert!(
        !bare,
        "a bare CR or LF in RETR: {:?}",
        String::from_utf8_lossy(&message)
    );
    assert_eq!(list, format!("+OK 1 {}", message.len()));
}

/// Refused MAIL, RCPT and DATA are logged at info with session, peer, user, address, reason and
/// the reply, and counted in `smtpctl status` and the metrics by reason (issue 14: they were
/// invisible, and status said 0).
#[test]
fn refusals_are_logged_and_counted() {
    // Loopback is no relay peer here: the remote recipient is a relay refusal.
    let srv = Server::start_with(
        Overrides::new()
            .tls(&["alice@example.test"])
            .set("mailboxes", "accept", "\"accounts\"")
            .set("relay", "networks", "[]"),
    );
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<x@elsewhere.test>").code, 550);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 550);
    assert_eq!(c.cmd("RCPT TO:<a b@example.test>").code, 501);
    let mut s = Client::connect(srv.addr("submission"));
    s.expect(220);
    assert_eq!(s.cmd("EHLO c").code, 250);
    let plain = smtpd::proto::sasl::encode_plain("alice@example.test", PASSWORD);
    assert_eq!(s.cmd(&format!("AUTH PLAIN {plain}")).code, 235);
    assert_eq!(s.cmd("MAIL FROM:<eve@example.test>").code, 553);
    let relay = srv.log.wait_for("reason=relay");
    assert!(
        relay.contains("refused")
            && relay.contains("x@elsewhere.test")
            && relay.contains("550 5.7.1"),
        "{relay}"
    );
    assert!(
        relay.contains("INFO") && relay.contains("peer=127.0.0.1"),
        "{relay}"
    );
    let owned = srv.log.wait_for("reason=sender_not_owned");
    assert!(
        owned.contains("alice@example.test") && owned.contains("eve@example.test"),
        "{owned}"
    );
    srv.log.wait_for("reason=unknown_user");
    let st = srv.ctl_json(&["status"]);
    let counters = &st["counters"];
    assert_eq!(counters["refused_commands"], 4, "{st}");
    assert_eq!(counters["refusals"]["rcpt/syntax"], 1, "{st}");
    assert_eq!(counters["refusals"]["rcpt/relay"], 1, "{st}");
    assert_eq!(counters["refusals"]["rcpt/unknown_user"], 1, "{st}");
    assert_eq!(counters["refusals"]["mail/sender_not_owned"], 1, "{st}");
    let human = stdout(&srv.ctl(&["status"]));
    assert!(
        human.contains("refused:      4 MAIL/RCPT/DATA (mail sender_not_owned 1, rcpt relay 1, rcpt syntax 1, rcpt unknown_user 1)"),
        "{human}"
    );
    let metrics = stdout(&srv.ctl(&["metrics"]));
    assert!(
        metrics.contains("smtpd_refusals_total{stage=\"rcpt\",reason=\"relay\"} 1"),
        "{metrics}"
    );
}
