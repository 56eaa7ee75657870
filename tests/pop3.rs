//! POP3 against the real smtpd: the original spec's commands, Python poplib, curl, fetchmail,
//! Thunderbird's "leave on server" flow, sizes, locking, UPDATE semantics, and login delays.
mod common;
use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.test";

fn server() -> Server {
    Server::start_with(Overrides::new().pop3(&[ALICE, "bob@example.test"]))
}

/// Three messages; the second has lines that start with dots.
fn three_messages(srv: &Server) -> Vec<Vec<u8>> {
    let msgs: Vec<Vec<u8>> = vec![
        b"Subject: one\r\n\r\nfirst message\r\n".to_vec(),
        b"Subject: two\r\n\r\n.leading dot\r\n..\r\n..two\r\nend\r\n".to_vec(),
        b"Subject: three\r\nX-Extra: yes\r\n\r\nl1\r\nl2\r\nl3\r\n".to_vec(),
    ];
    for m in &msgs {
        // Dot-stuff for SMTP.
        let mut stuffed = Vec::new();
        for line in m.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                stuffed.push(b'.');
            }
            stuffed.extend_from_slice(line);
        }
        srv.deliver(ALICE, &stuffed);
    }
    msgs
}

/// The original spec's commands over a raw socket: USER, PASS, STAT, LIST, RETR, QUIT.
#[test]
fn original_spec_commands() {
    let srv = server();
    let sent = three_messages(&srv);
    let mut p = srv.pop3();
    assert!(p.login(ALICE, PASSWORD).starts_with("+OK"));
    let stat = p.cmd("STAT");
    assert!(stat.starts_with("+OK 3 "), "{stat}");
    let list = p.cmd("LIST");
    assert!(list.starts_with("+OK"));
    let lines = p.multiline();
    assert_eq!(lines.len(), 3, "{lines:?}");
    let (status, msg) = p.retr(1);
    assert!(status.starts_with("+OK"));
    assert!(msg.starts_with(b"Return-Path: <sender@b.test>\r\nReceived: from "));
    assert!(msg.ends_with(&sent[0]), "{}", String::from_utf8_lossy(&msg));
    assert!(p.cmd("QUIT").starts_with("+OK"));
}

/// LIST sizes are exactly the octets RETR sends; dot lines round-trip exactly.
#[test]
fn list_size_equals_retr_octets_and_dots_round_trip() {
    let srv = server();
    let sent = three_messages(&srv);
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    p.cmd("LIST");
    let sizes: Vec<u64> = p
        .multiline()
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    for (i, size) in sizes.iter().enumerate() {
        let (status, msg) = p.retr(i + 1);
        assert_eq!(msg.len() as u64, *size, "message {}", i + 1);
        assert_eq!(status, format!("+OK {size} octets"));
        assert!(msg.ends_with(&sent[i]), "message {} differs", i + 1);
        let single = p.cmd(&format!("LIST {}", i + 1));
        assert_eq!(single, format!("+OK {} {size}", i + 1));
    }
}

/// A message of several 64 KiB read chunks, with dot lines everywhere (also astride the chunk
/// boundaries): RETR returns it exactly, in LIST's octets, and TOP stops where asked.
#[test]
fn large_message_retr_and_top_across_chunks() {
    let srv = server();
    let mut msg = b"Subject: big\r\n\r\n".to_vec();
    let mut i = 0;
    while msg.len() < 300 * 1024 {
        // Lines of varying length so that dot lines fall on many different offsets.
        let line = format!(".{i} {}\r\n", "y".repeat(i % 97));
        msg.extend_from_slice(line.as_bytes());
        i += 1;
    }
    let mut stuffed = Vec::new();
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            stuffed.push(b'.');
        }
        stuffed.extend_from_slice(line);
    }
    srv.deliver(ALICE, &stuffed);
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    let list = p.cmd("LIST 1");
    let size: usize = list.rsplit(' ').next().unwrap().parse().unwrap();
    let (status, got) = p.retr(1);
    assert_eq!(status, format!("+OK {size} octets"));
    assert_eq!(got.len(), size);
    assert!(got.ends_with(&msg), "the text differs");
    assert!(p.cmd("TOP 1 3").starts_with("+OK"));
    let top = p.multiline_raw();
    assert!(
        top.ends_with(b"\r\n\r\n..0 \r\n..1 y\r\n..2 yy\r\n.\r\n"),
        "{}",
        String::from_utf8_lossy(&top)
    );
    assert!(p.cmd("QUIT").starts_with("+OK"));
}

/// Python poplib: user/pass_, stat, list, uidl, top, retr, dele, quit.
#[test]
fn python_poplib() {
    if !have("python3") {
        return;
    }
    let srv = server();
    three_messages(&srv);
    let addr = srv.pop3.unwrap();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/poplib_session.py"
        ))
        .args([
            &addr.ip().to_string(),
            &addr.port().to_string(),
            ALICE,
            PASSWORD,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    srv.log.wait_for("pop3 session end");
    let md = srv.root().join("example.test/alice");
    let remaining = list(&md.join("new")).len() + list(&md.join("cur")).len();
    assert_eq!(remaining, 2, "DELE 1 + QUIT removed one file");
    assert_eq!(
        list(&md.join("cur")).len(),
        2,
        "retrieved messages moved to cur/"
    );
    for f in list(&md.join("cur")) {
        assert!(f.to_string_lossy().ends_with(":2,S"), "{f:?}");
    }
}

/// curl pop3:// lists and retrieves.
#[test]
fn curl_list_and_retrieve() {
    if !have("curl") {
        return;
    }
    let srv = server();
    let sent = three_messages(&srv);
    let addr = srv.pop3.unwrap();
    let user = format!("{ALICE}:{PASSWORD}");
    let list = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--user", &user])
        .arg(format!("pop3://{addr}/"))
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listing = String::from_utf8_lossy(&list.stdout);
    assert_eq!(listing.lines().count(), 3, "{listing}");
    let retr = Command::new("curl")
        .args(["-sS", "--max-time", "20", "--user", &user])
        .arg(format!("pop3://{addr}/2"))
        .output()
        .unwrap();
    assert!(
        retr.status.success(),
        "{}",
        String::from_utf8_lossy(&retr.stderr)
    );
    assert!(
        retr.stdout.ends_with(&sent[1]),
        "{}",
        String::from_utf8_lossy(&retr.stdout)
    );
}

/// fetchmail retrieves every message into a file through --mda, and deletes them (no --keep).
#[test]
fn fetchmail_through_mda() {
    if !have("fetchmail") {
        return;
    }
    let srv = server();
    three_messages(&srv);
    let got = fetchmail(srv.pop3.unwrap(), ALICE, PASSWORD, "sslproto ''");
    for subject in ["Subject: one", "Subject: two", "Subject: three"] {
        assert!(got.contains(subject), "{subject} missing from {got}");
    }
    assert!(got.contains("\n.leading dot\n"), "{got}");
    srv.log.wait_for("pop3 session end");
    let md = srv.root().join("example.test/alice");
    assert_eq!(
        list(&md.join("new")).len() + list(&md.join("cur")).len(),
        0,
        "fetched and deleted"
    );
}

/// Thunderbird's "leave messages on server": UIDL over three sessions is stable for the messages
/// that stay (also after RETR moved them to cur/), and new mail gets new ids.
#[test]
fn uidl_stable_over_three_sessions() {
    let srv = server();
    three_messages(&srv);
    let uidl = |p: &mut Pop3| -> Vec<String> {
        assert!(p.cmd("UIDL").starts_with("+OK"));
        p.multiline()
            .iter()
            .map(|l| l.split(' ').nth(1).unwrap().to_string())
            .collect()
    };
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    let first = uidl(&mut p);
    p.retr(1);
    p.retr(2);
    p.cmd("QUIT");
    srv.log.wait_for("pop3 session end");
    srv.deliver(ALICE, b"Subject: four\r\n\r\nnew\r\n");
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    let second = uidl(&mut p);
    assert_eq!(second[..3], first[..], "ids survive the move to cur/");
    assert_eq!(second.len(), 4);
    assert!(!first.contains(&second[3]));
    assert_eq!(p.cmd("UIDL 4"), format!("+OK 4 {}", second[3]));
    p.cmd("QUIT");
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    assert_eq!(uidl(&mut p), second);
    for uid in &second {
        assert!((1..=70).contains(&uid.len()) && uid.bytes().all(|b| (0x21..=0x7e).contains(&b)));
    }
}

/// A second login to a locked maildrop gets [IN-USE]; after the first quits, it works.
#[test]
fn concurrent_logins_are_refused() {
    let srv = server();
    three_messages(&srv);
    let mut first = srv.pop3();
    assert!(first.login(ALICE, PASSWORD).starts_with("+OK"));
    let mut second = srv.pop3();
    let r = second.login(ALICE, PASSWORD);
    assert!(r.starts_with("-ERR [IN-USE]"), "{r}");
    // Another user's maildrop is not affected.
    let mut bob = srv.pop3();
    assert!(bob.login("bob@example.test", PASSWORD).starts_with("+OK"));
    assert!(first.cmd("QUIT").starts_with("+OK"));
    let r = second.login(ALICE, PASSWORD);
    assert!(r.starts_with("+OK"), "{r}");
}

/// DELE then a dropped connection keeps the message; DELE then QUIT removes the file.
#[test]
fn dele_applies_only_at_quit() {
    let srv = server();
    three_messages(&srv);
    let md = srv.root().join("example.test/alice");
    let count = || list(&md.join("new")).len() + list(&md.join("cur")).len();
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    assert!(p.cmd("DELE 1").starts_with("+OK"));
    assert!(p.cmd("RETR 1").starts_with("-ERR"));
    assert!(p.cmd("STAT").starts_with("+OK 2 "));
    drop(p);
    srv.log.wait_for("pop3 session end");
    assert_eq!(count(), 3, "disconnect without QUIT deletes nothing");
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    assert!(p.cmd("DELE 1").starts_with("+OK"));
    assert!(p.cmd("DELE 3").starts_with("+OK"));
    assert!(p.cmd("QUIT").starts_with("+OK"));
    assert_eq!(count(), 1);
}

/// Mail delivered by SMTP during a POP3 session is not in that session's listing, is never
/// lost, and shows at the next login.
#[test]
fn smtp_delivery_during_pop3_session() {
    let srv = server();
    three_messages(&srv);
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    srv.deliver(ALICE, b"Subject: during\r\n\r\narrived mid-session\r\n");
    assert!(p.cmd("STAT").starts_with("+OK 3 "));
    for n in 1..=3 {
        p.cmd(&format!("DELE {n}"));
    }
    assert!(p.cmd("QUIT").starts_with("+OK"));
    let mut p = srv.pop3();
    p.login(ALICE, PASSWORD);
    assert!(p.cmd("STAT").starts_with("+OK 1 "));
    let (_, msg) = p.retr(1);
    assert!(msg.ends_with(b"Subject: during\r\n\r\narrived mid-session\r\n"));
}

/// A wrong password is answered after a delay, the same way as an unknown user, and that delay
/// does not hold up other sessions.
#[test]
fn failed_login_delay_does_not_block_others() {
    let srv = Server::start_with(Overrides::new().pop3(&[ALICE]).set(
        "pop3",
        "auth_failure_delay_ms",
        "1500",
    ));
    let mut slow = srv.pop3();
    slow.cmd(&format!("USER {ALICE}"));
    let t0 = Instant::now();
    slow.send("PASS wrong");
    // Meanwhile another client logs in and works.
    let mut fast = srv.pop3();
    assert!(fast.login(ALICE, PASSWORD).starts_with("+OK"));
    assert!(fast.cmd("STAT").starts_with("+OK"));
    let fast_done = t0.elapsed();
    let r = slow.line();
    let slow_done = t0.elapsed();
    assert_eq!(r, "-ERR [AUTH] Authentication failed");
    assert!(slow_done >= Duration::from_millis(1500), "{slow_done:?}");
    assert!(fast_done < slow_done, "the other session was served first");
    let r = slow.login("nobody@example.test", PASSWORD);
    assert_eq!(r, "-ERR [AUTH] Authentication failed");
    srv.log.wait_for("pop3 login failed");
}

/// AUTH PLAIN with an initial response works; TOP sends the header and n lines.
#[test]
fn auth_plain_and_top() {
    let srv = server();
    three_messages(&srv);
    let mut p = srv.pop3();
    let ir = smtpd::proto::sasl::encode_plain(ALICE, PASSWORD);
    assert!(p.cmd(&format!("AUTH PLAIN {ir}")).starts_with("+OK"));
    assert!(p.cmd("TOP 3 1").starts_with("+OK"));
    let top = p.multiline_raw();
    let text = String::from_utf8_lossy(&top);
    assert!(
        text.contains("Subject: three\r\nX-Extra: yes\r\n\r\nl1\r\n.\r\n"),
        "{text}"
    );
    assert!(!text.contains("l2"));
}
