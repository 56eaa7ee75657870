//! Hostile input: each case gets the right reply, the session (or the server) goes on, nothing
//! panics, and memory stays bounded.
mod common;
use common::*;
use std::io::Write;

fn session(srv: &Server) -> Client {
    let mut c = srv.connect();
    c.expect(220);
    c
}

/// NUL bytes and non-UTF-8 in commands and addresses: 5xx, and the session goes on.
#[test]
fn nul_bytes_and_non_utf8() {
    let srv = Server::start_with(Overrides::new().set("limits", "max_errors", "50"));
    let mut c = session(&srv);
    let cases: &[(&[u8], u16)] = &[
        (b"\0\0\0\r\n", 502),
        (b"NO\0OP\r\n", 502),
        (b"MAIL FROM:<a\0b@b.test>\r\n", 501),
        (b"MAIL FROM:<\xff\xfe@b.test>\r\n", 501),
        (b"MAIL FROM:<ok@b.test>\r\n", 250),
        (b"RCPT TO:<\xc3\x28@example.test>\r\n", 501),
        (b"RCPT TO:<\"a\0b\"@example.test>\r\n", 501),
        (b"RCPT TO:<x@exa\0mple.test>\r\n", 501),
        (b"\xff\xff\xff\xff\r\n", 502),
        (b"NOOP\r\n", 250),
    ];
    for (line, code) in cases {
        c.send(line);
        let r = c.reply();
        assert_eq!(r.code, *code, "{:?}: {r:?}", String::from_utf8_lossy(line));
    }
    // A NUL inside message content is stored as sent.
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: nul\r\n\r\na\0b\r\n.\r\n");
    c.expect(250);
    assert_eq!(
        stored_body(&srv.new_mail("example.test", "bob")[0]),
        b"Subject: nul\n\na\0b\n"
    );
}

/// A 1 MB command line and a 1 MB text line: 500 5.5.6, the session goes on, memory bounded.
#[test]
fn one_megabyte_lines() {
    let srv = Server::start();
    let mut c = session(&srv);
    c.cmd("NOOP");
    let before = srv.peak_rss_kib();
    let mut line = b"NOOP ".to_vec();
    line.extend(std::iter::repeat_n(b'x', 1 << 20));
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    let r = c.reply();
    assert_eq!(
        (r.code, r.lines[0].starts_with("5.5.6")),
        (500, true),
        "{r:?}"
    );
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<bob@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: long\r\n\r\n");
    c.send(&vec![b'y'; 1 << 20]);
    c.send(b"\r\n.\r\n");
    assert_eq!(c.reply().code, 500);
    assert_eq!(c.cmd("NOOP").code, 250);
    assert!(srv.new_mail("example.test", "bob").is_empty());
    let growth = srv.peak_rss_kib().saturating_sub(before);
    assert!(
        growth < 8 * 1024,
        "peak RSS grew {growth} KiB for 1 MB lines"
    );
}

/// 10,000 recipients: the first max_recipients get 250, the rest 452 4.5.3; the message goes to
/// the accepted ones; the session is not closed for it.
#[test]
fn ten_thousand_recipients() {
    let srv = Server::start();
    let mut c = session(&srv);
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    let mut batch = Vec::new();
    for i in 0..10_000 {
        batch.extend_from_slice(format!("RCPT TO:<r{}@example.test>\r\n", i % 150).as_bytes());
    }
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&batch).unwrap());
    let mut ok = 0;
    let mut over = 0;
    for _ in 0..10_000 {
        match c.reply().code {
            250 => ok += 1,
            452 => over += 1,
            other => panic!("unexpected {other}"),
        }
    }
    writer.join().unwrap();
    assert_eq!((ok, over), (100, 9_900));
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: many\r\n\r\nx\r\n.\r\n");
    c.expect(250);
    assert_eq!(srv.new_mail("example.test", "r0").len(), 1);
    assert_eq!(srv.new_mail("example.test", "r99").len(), 1);
    assert!(srv.new_mail("example.test", "r100").is_empty());
}

/// 100,000 pipelined commands in one write: 100,000 replies in order, memory bounded.
#[test]
fn hundred_thousand_pipelined_commands() {
    let srv = Server::start();
    let mut c = session(&srv);
    c.cmd("NOOP");
    let before = srv.peak_rss_kib();
    let mut batch = b"NOOP\r\n".repeat(100_000);
    batch.extend_from_slice(b"QUIT\r\n");
    let mut w = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || w.write_all(&batch).unwrap());
    for i in 0..100_000 {
        let r = c.reply();
        assert_eq!(r.code, 250, "reply {i}");
    }
    assert_eq!(c.reply().code, 221);
    writer.join().unwrap();
    let growth = srv.peak_rss_kib().saturating_sub(before);
    assert!(growth < 8 * 1024, "peak RSS grew {growth} KiB");
}

/// Header-only and empty messages are accepted and stored.
#[test]
fn header_only_and_empty_messages() {
    let srv = Server::start();
    let mut c = session(&srv);
    assert_eq!(
        c.send_mail(
            "a@b.test",
            &["h@example.test"],
            b"Subject: only headers\r\n"
        )
        .code,
        250
    );
    assert_eq!(c.send_mail("a@b.test", &["e@example.test"], b"").code, 250);
    assert_eq!(
        stored_body(&srv.new_mail("example.test", "h")[0]),
        b"Subject: only headers\n"
    );
    assert_eq!(stored_body(&srv.new_mail("example.test", "e")[0]), b"");
}

/// A message of exactly max_message_bytes is accepted; one byte more is refused with 552.
#[test]
fn exactly_the_size_limit_and_one_byte_over() {
    let limit = 10_000usize;
    let srv =
        Server::start_with(Overrides::new().set("limits", "max_message_bytes", &limit.to_string()));
    // Size = octets as sent (CRLF counted), after un-stuffing, without the final ".".
    let make = |n: usize| {
        let mut m = b"Subject: size\r\n\r\n".to_vec();
        while m.len() + 80 <= n {
            m.extend_from_slice(&[b'z'; 78]);
            m.extend_from_slice(b"\r\n");
        }
        let rest = n - m.len();
        m.extend(std::iter::repeat_n(b'q', rest - 2));
        m.extend_from_slice(b"\r\n");
        assert_eq!(m.len(), n);
        m
    };
    let mut c = session(&srv);
    assert_eq!(
        c.send_mail("a@b.test", &["fit@example.test"], &make(limit))
            .code,
        250
    );
    let r = c.send_mail("a@b.test", &["over@example.test"], &make(limit + 1));
    assert_eq!(r.code, 552, "{r:?}");
    assert_eq!(srv.new_mail("example.test", "fit").len(), 1);
    assert!(srv.new_mail("example.test", "over").is_empty());
    assert_eq!(c.cmd("NOOP").code, 250);
}
