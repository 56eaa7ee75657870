//! Crash durability: "250 after DATA" means the message survives `kill -9`. Senders record every
//! acknowledged message; smtpd is killed (under load, and at exact points of a delivery with the
//! debug-only SMTPD_TEST_STALL switch); after a restart every acknowledged message is in new/,
//! complete, and nothing truncated is in new/. Stale tmp/ files (older than 36 h) are removed at
//! start.
//!
//! What this proves and what it does not: a `kill -9` ends the process, not the machine, so the
//! kernel's page cache survives it, and a file that was written but never fsynced would still be
//! found after the restart. These tests therefore show the order of events (no 250 before the
//! message is fsynced, renamed into new/ and that directory fsynced), not that the message survives
//! a power loss or a kernel crash. That would need a machine (or VM) that really loses its unwritten pages, e.g. by
//! cutting its power or with a block device that drops unflushed writes.
mod common;
use common::*;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A message whose body proves it is whole: token first, 200 lines, token last.
fn body(token: &str) -> Vec<u8> {
    let mut b = format!("Subject: {token}\r\n\r\nBEGIN {token}\r\n").into_bytes();
    for i in 0..200 {
        b.extend_from_slice(
            format!("{token} line {i:04} padding padding padding padding\r\n").as_bytes(),
        );
    }
    b.extend_from_slice(format!("END {token}\r\n").as_bytes());
    b
}

/// Every file in every new/: (tokens of complete messages, names of incomplete ones).
fn scan(root: &std::path::Path) -> (BTreeSet<String>, Vec<String>) {
    let mut complete = BTreeSet::new();
    let mut broken = Vec::new();
    for f in walk(root) {
        if f.parent()
            .and_then(|p| p.file_name())
            .map(|n| n != "new")
            .unwrap_or(true)
        {
            continue;
        }
        let text = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        let token = text
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
            .unwrap_or("")
            .to_string();
        let expected = String::from_utf8(body(&token))
            .unwrap()
            .replace("\r\n", "\n");
        if !token.is_empty() && text.ends_with(&expected) {
            complete.insert(token);
        } else {
            broken.push(f.display().to_string());
        }
    }
    (complete, broken)
}

fn sender(addr: SocketAddr, id: usize, acked: Arc<Mutex<Vec<String>>>, stop: Arc<AtomicBool>) {
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        // The server may be gone (killed): stop quietly then.
        let Ok(stream) = std::net::TcpStream::connect(addr) else {
            return;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut c = Client {
            reader: std::io::BufReader::new(stream.try_clone().unwrap()),
            stream,
        };
        if c.try_reply().map(|r| r.code) != Some(220) {
            return;
        }
        for _ in 0..20 {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let token = format!("t{id}x{n}");
            n += 1;
            let ok = (|| {
                use std::io::Write;
                c.stream.write_all(b"MAIL FROM:<crash@b.test>\r\n").ok()?;
                (c.try_reply()?.code == 250).then_some(())?;
                let rcpt = format!("RCPT TO:<box{}@example.test>\r\n", id % 3);
                c.stream.write_all(rcpt.as_bytes()).ok()?;
                (c.try_reply()?.code == 250).then_some(())?;
                c.stream.write_all(b"DATA\r\n").ok()?;
                (c.try_reply()?.code == 354).then_some(())?;
                c.stream.write_all(&body(&token)).ok()?;
                c.stream.write_all(b".\r\n").ok()?;
                (c.try_reply()?.code == 250).then_some(())
            })();
            match ok {
                Some(()) => acked.lock().unwrap().push(token),
                None => return,
            }
        }
    }
}

/// 8 senders; smtpd is SIGKILLed under load; every acknowledged message is found complete.
/// (A process kill keeps the page cache: this checks the order "rename and fsync, then 250", not
/// power-loss durability; see the top of this file.)
#[test]
fn kill_under_load_loses_no_acknowledged_message() {
    let mut srv = Server::start();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let addr = srv.smtp;
    let threads: Vec<_> = (0..8)
        .map(|i| {
            let (a, s) = (Arc::clone(&acked), Arc::clone(&stop));
            std::thread::spawn(move || sender(addr, i, a, s))
        })
        .collect();
    // Kill once a good number of messages are acknowledged (bounded in time).
    let deadline = Instant::now() + Duration::from_secs(30);
    while acked.lock().unwrap().len() < 150 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // A stale tmp file from "a crash two days ago", for the restart to remove.
    let tmp = srv.root().join("example.test/box0/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    for d in ["new", "cur"] {
        std::fs::create_dir_all(srv.root().join("example.test/box0").join(d)).unwrap();
    }
    let old = tmp.join("1700000000.M1P1Q1.old");
    std::fs::write(&old, b"partial").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&old)
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(40 * 3600))
        .unwrap();
    srv.kill_and_restart(&[]);
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let acked: Vec<String> = acked.lock().unwrap().clone();
    assert!(acked.len() >= 150, "only {} acknowledged", acked.len());
    let (found, broken) = scan(&srv.root());
    let missing: Vec<&String> = acked.iter().filter(|t| !found.contains(*t)).collect();
    eprintln!(
        "crash test: {} acknowledged, {} complete in new/, {} missing, {} broken",
        acked.len(),
        found.len(),
        missing.len(),
        broken.len()
    );
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");
    assert!(broken.is_empty(), "incomplete files in new/: {broken:?}");
    srv.log.wait_for("removed stale files from tmp/");
    assert!(!old.exists(), "stale tmp file removed at start");
}

/// Group commit keeps "no 250 before durable": the leader of a directory fsync is held inside
/// it (debug-only switch) while three sessions deliver into the same maildir. All three messages
/// are renamed into new/, and none of the three clients gets its 250, because each waits for a
/// directory fsync that started after its rename. Killed there, the server restarts clean.
#[test]
fn no_250_before_the_shared_directory_fsync_returns() {
    let mut srv = Server::start_env(Overrides::new(), &[("SMTPD_TEST_STALL", "in_dir_fsync")]);
    let addr = srv.smtp;
    let clients: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let mut c = Client::connect(addr);
                c.stream
                    .set_read_timeout(Some(Duration::from_secs(30)))
                    .unwrap();
                c.expect(220);
                assert_eq!(c.cmd("MAIL FROM:<crash@b.test>").code, 250);
                assert_eq!(c.cmd("RCPT TO:<same@example.test>").code, 250);
                assert_eq!(c.cmd("DATA").code, 354);
                c.send(&body(&format!("group{i}")));
                c.send(b".\r\n");
                c.try_reply().map(|r| r.code)
            })
        })
        .collect();
    srv.log.wait_for("fault point in_dir_fsync reached");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while scan(&srv.root()).0.len() < 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "renamed: {:?}",
            scan(&srv.root()).0
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    srv.kill_and_restart(&[]);
    for c in clients {
        assert_eq!(
            c.join().unwrap(),
            None,
            "a 250 came before the fsync returned"
        );
    }
    srv.deliver("after@example.test", &body("after"));
    assert!(scan(&srv.root()).0.contains("after"));
}

/// Kill between the fsync of the spool and its rename into new/, and between the copies for two
/// recipients: the client had no 250; nothing incomplete is in new/; the server restarts clean.
#[test]
fn kill_at_exact_points() {
    for (point, rcpts) in [("after_fsync", 1), ("between_copies", 2)] {
        let mut srv = Server::start_env(Overrides::new(), &[("SMTPD_TEST_STALL", point)]);
        let addr = srv.smtp;
        let client = std::thread::spawn(move || {
            let mut c = Client::connect(addr);
            c.stream
                .set_read_timeout(Some(Duration::from_secs(20)))
                .unwrap();
            c.expect(220);
            assert_eq!(c.cmd("MAIL FROM:<crash@b.test>").code, 250);
            for r in 0..rcpts {
                assert_eq!(c.cmd(&format!("RCPT TO:<r{r}@example.test>")).code, 250);
            }
            assert_eq!(c.cmd("DATA").code, 354);
            c.send(&body("exact"));
            c.send(b".\r\n");
            c.try_reply().map(|r| r.code)
        });
        srv.log.wait_for(&format!("fault point {point} reached"));
        srv.kill_and_restart(&[]);
        let answer = client.join().unwrap();
        assert_eq!(answer, None, "{point}: the client never got a 250");
        let (found, broken) = scan(&srv.root());
        assert!(broken.is_empty(), "{point}: {broken:?}");
        if point == "after_fsync" {
            assert!(found.is_empty(), "not renamed into new/ yet");
        }
        // Still serving after the restart.
        srv.deliver("after@example.test", &body("after"));
        assert!(scan(&srv.root()).0.contains("after"));
    }
}
