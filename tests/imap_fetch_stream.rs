//! FETCH BODY[] of a whole message is streamed from its file (issue 16): a 50 MiB message
//! arrives byte for byte with CRLF line ends while smtpd's peak memory grows by a few MiB, not
//! by the message (before, it was read, converted and buffered whole: over 150 MiB).
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

#[test]
fn a_50_mib_message_is_streamed_with_bounded_memory() {
    let srv = Server::start_with(Overrides::new().account(ALICE, PASSWORD).set(
        "imap",
        "listen",
        "[\"127.0.0.1:0\"]",
    ));
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

    let w = TcpStream::connect(srv.addr("imap")).unwrap();
    w.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w2 = w.try_clone().unwrap();
    let mut r = BufReader::new(w);
    let until = |r: &mut BufReader<TcpStream>, tag: &str| -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            assert!(r.read_line(&mut l).unwrap() > 0, "closed: {all}");
            all.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    };
    until(&mut r, "*");
    w2.write_all(
        format!("a LOGIN {ALICE} \"{PASSWORD}\"\r\nb SELECT INBOX\r\nc FETCH 2 RFC822.SIZE\r\n")
            .as_bytes(),
    )
    .unwrap();
    until(&mut r, "a");
    until(&mut r, "b");
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
