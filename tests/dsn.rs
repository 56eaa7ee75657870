//! Delivery status notifications (RFC 3461/3464) end to end: NOTIFY, RET, ENVID and ORCPT given
//! at RCPT/MAIL reach the reports a sender gets (bounces, delay warnings, success reports) and
//! the next hop when it offers DSN; a message that needs SMTPUTF8 is not sent to a peer
//! without it (RFC 6531: bounced with 5.6.7). Peers: a second smtpd, Postfix's smtp-sink.
mod common;
use common::*;
use std::net::SocketAddr;

/// A second smtpd that receives for far.test (fault addresses on).
fn receiver() -> Server {
    Server::start_with(
        Overrides::new()
            .set("mailboxes", "domains", "[\"far.test\"]")
            .set("testing", "fault_addresses", "true"),
    )
}

/// The smtpd under test, routing far.test to `to`, retrying after 1-2 s.
fn sender(to: SocketAddr, extra: Overrides) -> Server {
    Server::start_with(
        extra
            .set("relay", "routes", &format!("{{ \"far.test\" = \"{to}\" }}"))
            .set("queue", "minimal_backoff_secs", "1")
            .set("queue", "maximal_backoff_secs", "2"),
    )
}

const TEXT: &[u8] =
    b"Subject: dsn\r\nMessage-ID: <dsn.1@example.test>\r\n\r\nfirst line\r\nlast\r\n";

/// One message from alice@example.test: `mail` after the reverse path, each recipient with
/// its RCPT parameters.
fn submit(srv: &Server, mail: &str, rcpts: &[(&str, &str)], text: &[u8]) {
    let mut c = srv.connect();
    c.expect(220);
    assert_eq!(c.cmd("EHLO client.test").code, 250);
    let r = c.cmd(&format!("MAIL FROM:<alice@example.test>{mail}"));
    assert_eq!(r.code, 250, "{r:?}");
    for (to, params) in rcpts {
        let r = c.cmd(&format!("RCPT TO:<{to}>{params}"));
        assert_eq!(r.code, 250, "RCPT {to}: {r:?}");
    }
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(text);
    c.send(b".\r\n");
    let r = c.reply();
    assert_eq!(r.code, 250, "{r:?}");
    c.cmd("QUIT");
}

/// The reports in alice's Maildir, as text.
fn reports(srv: &Server) -> Vec<String> {
    srv.new_mail("example.test", "alice")
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

/// Parsed as a valid multipart/report of delivery-status.
fn assert_report(text: &str) {
    use mail_parser::MimeHeaders;
    let m = mail_parser::MessageParser::default()
        .parse(text.as_bytes())
        .unwrap();
    let ct = m.content_type().unwrap();
    assert_eq!(
        (ct.ctype(), ct.subtype(), ct.attribute("report-type")),
        ("multipart", Some("report"), Some("delivery-status")),
        "{text}"
    );
    assert!(text.starts_with("Return-Path: <>\n"), "{text}");
}

/// NOTIFY=NEVER: a recipient that fails is not bounced (logged instead); RET=FULL and ENVID
/// and ORCPT show in the bounce of the other one, which returns the whole message.
#[test]
fn notify_never_ret_full_envid_and_orcpt() {
    let far = receiver();
    let srv = sender(far.addr("smtp"), Overrides::new());
    submit(
        &srv,
        " RET=FULL ENVID=run+2B42",
        &[
            ("fail-550@far.test", " NOTIFY=NEVER"),
            ("fail-551@far.test", " ORCPT=rfc822;list+2Bfar@far.test"),
        ],
        TEXT,
    );
    until("the bounce", || reports(&srv).len() == 1);
    until("an empty queue", || srv.queue().is_empty());
    let line = srv.log.wait_for("no bounce: NOTIFY=NEVER");
    assert!(line.contains("fail-550@far.test"), "{line}");
    let text = &reports(&srv)[0];
    assert_report(text);
    assert!(!text.contains("fail-550"), "{text}");
    assert!(
        text.contains("Original-Envelope-Id: run+42\n"),
        "ENVID decoded: {text}"
    );
    assert!(text.contains("Final-Recipient: rfc822; fail-551@far.test\nOriginal-Recipient: rfc822;list+far@far.test\nAction: failed\nStatus: 5.0.0\n"), "{text}");
    assert!(
        text.contains("Content-Type: message/rfc822\n\nReceived: from ")
            && text.contains("first line\nlast\n"),
        "RET=FULL returns the body: {text}"
    );
    assert_eq!(reports(&srv).len(), 1);
}

/// A peer that offers DSN gets NOTIFY and ORCPT (and RET, ENVID) passed on, and reports the
/// success itself: here the receiving smtpd, which routes example.test back to the sender, so
/// alice's report says "delivered" by the final MTA.
#[test]
fn success_reported_by_a_next_hop_that_takes_dsn() {
    let far = receiver();
    let srv = sender(far.addr("smtp"), Overrides::new());
    far.rewrite_config(
        &Overrides::new()
            .set("mailboxes", "domains", "[\"far.test\"]")
            .set(
                "relay",
                "routes",
                &format!("{{ \"example.test\" = \"{}\" }}", srv.addr("smtp")),
            ),
    );
    let v = far.ctl_json(&["reload"]);
    assert_eq!(v["applied"], true, "{v}");
    submit(
        &srv,
        " ENVID=e1",
        &[("bob@far.test", " NOTIFY=SUCCESS")],
        TEXT,
    );
    until("bob's copy", || far.new_mail("far.test", "bob").len() == 1);
    until("the success report", || reports(&srv).len() == 1);
    let text = &reports(&srv)[0];
    assert_report(text);
    assert!(
        text.contains("Subject: Successful Mail Delivery Report\n"),
        "{text}"
    );
    assert!(text.contains("Original-Envelope-Id: e1\n"), "{text}");
    assert!(
        text.contains("Final-Recipient: rfc822; bob@far.test\nAction: delivered\nStatus: 2.0.0\n"),
        "the final MTA reported it: {text}"
    );
    until("both queues empty", || {
        srv.queue().is_empty() && far.queue().is_empty()
    });
    assert_eq!(reports(&srv).len(), 1);
}

/// A local recipient with NOTIFY=SUCCESS: delivered to its Maildir and the sender told
/// "delivered"; one without gets its copy and no report.
#[test]
fn local_success_report() {
    let far = receiver();
    let srv = sender(far.addr("smtp"), Overrides::new());
    submit(
        &srv,
        "",
        &[
            ("carol@example.test", " NOTIFY=SUCCESS,FAILURE"),
            ("dave@example.test", ""),
        ],
        TEXT,
    );
    until("the report", || reports(&srv).len() == 1);
    until("an empty queue", || srv.queue().is_empty());
    assert_eq!(srv.new_mail("example.test", "carol").len(), 1);
    assert_eq!(srv.new_mail("example.test", "dave").len(), 1);
    let text = &reports(&srv)[0];
    assert_report(text);
    assert!(
        text.contains(
            "Final-Recipient: rfc822; carol@example.test\nAction: delivered\nStatus: 2.0.0\n"
        ),
        "{text}"
    );
    assert!(!text.contains("dave@"), "{text}");
}

/// smtp-sink with DSN: the requests are passed on in MAIL and RCPT, and we send no report of
/// our own. Without DSN (-N): nothing passed on, and we report "relayed".
#[test]
fn dsn_passed_on_or_relayed_reported() {
    let Some(sink) = Sink::start(&[]) else { return };
    let srv = sender(sink.addr, Overrides::new());
    submit(
        &srv,
        " RET=HDRS ENVID=e2",
        &[("bob@far.test", " NOTIFY=SUCCESS ORCPT=rfc822;bob@far.test")],
        TEXT,
    );
    until("the sink's copy", || sink.messages().len() == 1);
    until("an empty queue", || srv.queue().is_empty());
    let dump = &sink.messages()[0];
    assert!(
        dump.contains("X-Mail-Args: <alice@example.test> RET=HDRS ENVID=e2\n"),
        "{dump}"
    );
    assert!(
        dump.contains("X-Rcpt-Args: <bob@far.test> NOTIFY=SUCCESS ORCPT=rfc822;bob@far.test"),
        "{dump}"
    );
    assert!(reports(&srv).is_empty(), "the next hop reports success");

    let Some(plain) = Sink::start(&["-N"]) else {
        return;
    };
    let srv = sender(plain.addr, Overrides::new());
    submit(
        &srv,
        " ENVID=e3",
        &[("bob@far.test", " NOTIFY=SUCCESS")],
        TEXT,
    );
    until("the report", || reports(&srv).len() == 1);
    let dump = &plain.messages()[0];
    assert!(
        !dump.contains("NOTIFY") && !dump.contains("ENVID"),
        "{dump}"
    );
    let text = &reports(&srv)[0];
    assert_report(text);
    assert!(text.contains("Final-Recipient: rfc822; bob@far.test\nAction: relayed\nStatus: 2.0.0\nRemote-MTA: dns; 127.0.0.1\n"), "{text}");
}

/// `[queue] delay_warning_secs`: one warning per recipient while the next hop keeps deferring
/// (not one per try), none for a recipient whose NOTIFY leaves DELAY out; once the peer takes
/// mail the message is delivered and no more reports come.
#[test]
fn one_delay_warning() {
    let far = receiver();
    let srv = sender(
        far.addr("smtp"),
        Overrides::new().set("queue", "delay_warning_secs", "1"),
    );
    far.ctl(&["pause", "smtp"]);
    submit(
        &srv,
        "",
        &[("bob@far.test", ""), ("carol@far.test", " NOTIFY=FAILURE")],
        TEXT,
    );
    until("the warning", || reports(&srv).len() == 1);
    until("two more tries", || {
        let q = srv.ctl_json(&["queue"]);
        q[0]["recipients"][0]["attempts"].as_u64().unwrap_or(0) >= 3
    });
    let all = reports(&srv);
    assert_eq!(all.len(), 1, "{all:?}");
    let text = &all[0];
    assert_report(text);
    assert!(
        text.contains("Subject: Delayed Mail (still being retried)\n"),
        "{text}"
    );
    assert!(
        text.contains("Final-Recipient: rfc822; bob@far.test\nAction: delayed\nStatus: 4."),
        "{text}"
    );
    assert!(text.contains("Will-Retry-Until: "), "{text}");
    assert!(!text.contains("carol@far.test"), "{text}");
    far.ctl(&["resume", "smtp"]);
    srv.ctl(&["queue", "flush"]);
    until("both copies", || {
        far.new_mail("far.test", "bob").len() == 1 && far.new_mail("far.test", "carol").len() == 1
    });
    until("an empty queue", || srv.queue().is_empty());
    assert_eq!(reports(&srv).len(), 1);
}

/// RFC 6531 §3.2: a message that needs SMTPUTF8 (a non-ASCII recipient) is not sent to a peer
/// that does not offer it (smtp-sink does not): it bounces with 5.6.7. An ASCII message that
/// merely asked for SMTPUTF8 goes through.
#[test]
fn smtputf8_needed_but_not_offered_bounces() {
    let Some(sink) = Sink::start(&[]) else { return };
    let srv = sender(sink.addr, Overrides::new());
    submit(
        &srv,
        " SMTPUTF8",
        &[("jörg@far.test", "")],
        "Subject: grüße\r\n\r\nhallo\r\n".as_bytes(),
    );
    until("the bounce", || reports(&srv).len() == 1);
    let text = &reports(&srv)[0];
    assert_report(text);
    assert!(text.contains("Action: failed\nStatus: 5.6.7\n"), "{text}");
    assert!(text.contains("SMTPUTF8"), "{text}");
    submit(&srv, " SMTPUTF8", &[("bob@far.test", "")], TEXT);
    until("the sink's copy", || sink.messages().len() == 1);
    assert!(!sink.messages()[0].contains("SMTPUTF8"));
    until("an empty queue", || srv.queue().is_empty());
    assert_eq!(reports(&srv).len(), 1);
}
