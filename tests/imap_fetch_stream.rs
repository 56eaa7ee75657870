//! FETCH BODY[] of a whole message is streamed from its file (issue 16): a 50 MiB message
//! arrives byte for byte with CRLF line ends while smtpd's peak memory grows by a few MiB, not
//! by the message (before, it was read, converted and buffered whole: over 150 MiB); BINARY[]
//! with a NUL is a literal8; a file gone meanwhile is NIL; the literal's size is the index's.
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const ALICE: &str = "alice@example.test";
/// 100-octet lines (LF on disk): 524,288 of them are 50 MiB.
const LINES: usize = 524_288;

fn line(i: usize) -> String {
    format!("{:<99}", format!("line {i} of a large message"))
}

/// The peak resident memory of `pid` (VmHWM), KiB.
fn peak_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn server() -> Server {
    Server::start_with(Overrides::new().account(ALICE, PASSWORD).set(
        "imap",
        "listen",
        "[\"127.0.0.1:0\"]",
    ))
}

/// A session logged in with INBOX selected, `then` sent after (reads time out after `secs`).
fn selected(srv: &Server, secs: u64, then: &str) -> (BufReader<TcpStream>, TcpStream) {
    let w = TcpStream::connect(srv.addr("imap")).unwrap();
    w.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
    let mut w2 = w.try_clone().unwrap();
    let mut r = BufReader::new(w);
    until(&mut r, "*");
    w2.write_all(format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\nb SELECT INBOX\r\n{then}").as_bytes())
        .unwrap();
    until(&mut r, "a");
    until(&mut r, "b");
    (r, w2)
}

/// Reads lines up to the one tagged `tag`.
fn until(r: &mut BufReader<TcpStream>, tag: &str) -> String {
    let mut all = String::new();
    loop {
        let mut l = String::new();
        assert!(r.read_line(&mut l).unwrap() > 0, "closed: {all}");
        all.push_str(&l);
        if l.starts_with(&format!("{tag} ")) {
            return all;
        }
    }
}

/// BINARY.PEEK[] of a message holding a NUL is streamed as a literal8 (`~{n}`); a message
/// whose file went away after SELECT is `NIL`, and the session goes on.
#[test]
fn a_streamed_literal8_and_a_vanished_file() {
    let srv = server();
    srv.deliver(ALICE, b"Subject: small\r\n\r\nsmall\r\n");
    let new = srv.root().join("example.test/alice/new");
    std::fs::write(new.join("1999999999.M1P1Q1.nul"), b"Subject: nul\n\na\0b\n").unwrap();
    let (mut r, mut w2) = selected(&srv, 30, "c FETCH 2 BINARY.PEEK[]\r\n");
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    assert_eq!(head, "* 2 FETCH (BINARY[] ~{21}\r\n");
    let mut body = [0u8; 21];
    r.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"Subject: nul\r\n\r\na\0b\r\n");
    assert!(until(&mut r, "c").starts_with(")\r\nc OK"));
    for e in std::fs::read_dir(srv.root().join("example.test/alice/cur")).unwrap() {
        let p = e.unwrap().path();
        if p.to_string_lossy().contains(".nul") {
            std::fs::remove_file(p).unwrap();
        }
    }
    w2.write_all(b"d FETCH 2 BODY.PEEK[]\r\ne NOOP\r\n")
        .unwrap();
    let gone = until(&mut r, "d");
    assert!(gone.starts_with("* 2 FETCH (BODY[] NIL)\r\nd OK"), "{gone}");
    let noop = until(&mut r, "e");
    assert!(noop.contains("* 2 EXPUNGE\r\ne OK"), "{noop}");
}

/// The literal of a whole-message FETCH has the size the index holds (RFC822.SIZE, from the
/// name's `W=`), so the file is read once. A file that does not match its name (written by
/// another program) is cut or padded to that size and logged: the session stays in step.
#[test]
fn the_literal_size_is_the_index_size_and_a_lying_file_is_cut_or_padded() {
    let srv = server();
    let new = srv.root().join("example.test/alice/new");
    for d in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(srv.root().join("example.test/alice").join(d)).unwrap();
    }
    // 21 octets with CRLF, named 12 (cut) and 25 (padded).
    std::fs::write(
        new.join("1999999991.M1P1Q1.h,S=9,W=12"),
        b"Subject: a\n\nabcde\n",
    )
    .unwrap();
    std::fs::write(
        new.join("1999999992.M1P1Q2.h,S=9,W=25"),
        b"Subject: b\n\nabcde\n",
    )
    .unwrap();
    let (mut r, _w) = selected(
        &srv,
        30,
        "c FETCH 1:2 (RFC822.SIZE BODY.PEEK[])\r\nd NOOP\r\n",
    );
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    assert_eq!(head, "* 1 FETCH (RFC822.SIZE 12 BODY[] {12}\r\n");
    let mut body = [0u8; 12];
    r.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"Subject: a\r\n");
    let mut close = String::new();
    r.read_line(&mut close).unwrap();
    assert_eq!(close, ")\r\n");
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    assert_eq!(head, "* 2 FETCH (RFC822.SIZE 25 BODY[] {25}\r\n");
    let mut body = [0u8; 25];
    r.read_exact(&mut body).unwrap();
    assert_eq!(&body, b"Subject: b\r\n\r\nabcde\r\n    ");
    assert!(until(&mut r, "c").starts_with(")\r\nc OK"));
    assert!(until(&mut r, "d").starts_with("d OK"));
    srv.log.wait_for("longer than its size in the index; cut");
    srv.log.wait_for("padded");
}

#[test]
fn a_50_mib_message_is_streamed_with_bounded_memory() {
    let srv = server();
    srv.deliver(ALICE, b"Subject: small\r\n\r\nsmall\r\n");
    let new = srv.root().join("example.test/alice/new");
    let mut f = std::fs::File::create(new.join("1999999999.M1P1Q1.big")).unwrap();
    let mut text = String::from("Subject: big\n\n");
    for i in 0..LINES {
        text.push_str(&line(i));
        text.push('\n');
        if text.len() > 1 << 20 {
            f.write_all(text.as_bytes()).unwrap();
            text.clear();
        }
    }
    f.write_all(text.as_bytes()).unwrap();
    drop(f);
    let wire = "Subject: big\r\n\r\n".len() + LINES * 101;

    let (mut r, mut w2) = selected(&srv, 60, "c FETCH 2 RFC822.SIZE\r\n");
    let size = until(&mut r, "c");
    assert!(size.contains(&format!("RFC822.SIZE {wire})")), "{size}");
    let before = peak_kib(srv.pid());

    w2.write_all(b"d FETCH 2 BODY.PEEK[]\r\n").unwrap();
    let mut head = String::new();
    r.read_line(&mut head).unwrap();
    assert_eq!(head, format!("* 2 FETCH (BODY[] {{{wire}}}\r\n"));
    let mut want = b"Subject: big\r\n\r\n".to_vec();
    for i in 0..LINES {
        want.extend_from_slice(line(i).as_bytes());
        want.extend_from_slice(b"\r\n");
    }
    let mut got = vec![0u8; wire];
    r.read_exact(&mut got).unwrap();
    assert!(
        got == want,
        "the streamed bytes differ from the file's CRLF form"
    );
    let rest = until(&mut r, "d");
    assert!(rest.starts_with(")\r\nd OK"), "{rest}");
    let after = peak_kib(srv.pid());
    println!(
        "smtpd peak memory: {before} KiB before the FETCH, {after} KiB after it (message: {} KiB)",
        wire / 1024
    );
    assert!(
        after.saturating_sub(before) < 16 * 1024,
        "peak memory grew by {} KiB for a {} KiB message",
        after - before,
        wire / 1024
    );
}
