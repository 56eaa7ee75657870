//! Storage failures become 4xx replies, leave nothing in new/, and the server recovers
//! (CONTRACT: "storage failure: 451/452 4.3.x").
mod common;
use common::*;
use std::process::Command;

/// A mailbox path that cannot be made (a file stands where the Maildir should be): 451 4.3.0,
/// the session goes on, other mailboxes still receive mail.
#[test]
fn storage_failure_is_451() {
    let srv = Server::start();
    std::fs::create_dir_all(srv.root().join("example.test")).unwrap();
    std::fs::write(srv.root().join("example.test/broken"), b"not a directory").unwrap();
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    assert_eq!(c.cmd("MAIL FROM:<a@b.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<ok@example.test>").code, 250);
    assert_eq!(c.cmd("RCPT TO:<broken@example.test>").code, 250);
    assert_eq!(c.cmd("DATA").code, 354);
    c.send(b"Subject: x\r\n\r\nbody\r\n.\r\n");
    let r = c.reply();
    assert_eq!(r.code, 451, "{r:?}");
    assert!(r.lines[0].starts_with("4.3.0"));
    assert!(
        !r.text().contains("broken"),
        "no internals in the reply: {r:?}"
    );
    assert!(
        srv.new_mail("example.test", "ok").is_empty(),
        "all or nothing"
    );
    srv.log.wait_for("delivery failed");
    let r = c.send_mail(
        "a@b.test",
        &["ok@example.test"],
        b"Subject: y\r\n\r\nbody\r\n",
    );
    assert_eq!(r.code, 250);
    assert_eq!(srv.new_mail("example.test", "ok").len(), 1);
}

/// A 256 KiB tmpfs, unmounted on drop (after the server using it was killed).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    /// `None` (with a printed reason) without root; under CI=true that is a failure.
    fn mount(dir: &std::path::Path) -> Option<Tmpfs> {
        std::fs::create_dir(dir).unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"])
            .arg(dir)
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !mounted {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI runs as root and must be able to mount a tmpfs");
            }
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// A 1 MiB message from `from` to `to` (more than the 256 KiB tmpfs holds): it must get
/// 452 4.3.1. Returns the session, still open.
fn too_big_for_the_disk(srv: &Server, from: &str, to: &[&str]) -> Client {
    let mut c = srv.connect();
    c.expect(220);
    c.cmd("EHLO client.test");
    assert_eq!(c.cmd(&format!("MAIL FROM:<{from}>")).code, 250);
    for t in to {
        assert_eq!(c.cmd(&format!("RCPT TO:<{t}>")).code, 250);
    }
    assert_eq!(c.cmd("DATA").code, 354);
    let big = "x".repeat(998) + "\r\n";
    for _ in 0..1024 {
        c.send(big.as_bytes());
    }
    c.send(b".\r\n");
    let r = c.reply();
    assert_eq!(r.code, 452, "{r:?}");
    assert!(r.lines[0].starts_with("4.3.1"), "{r:?}");
    c
}

/// The mailbox root on a tiny tmpfs: a message that does not fit gets 452 4.3.1, nothing partial
/// appears in new/ or stays in tmp/, and a message that fits is then delivered.
#[test]
fn disk_full_is_452_and_recovers() {
    let base = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&base.path().join("mnt")) else {
        return;
    };
    let mnt = tmpfs.0.clone();
    let root = mnt.join("mailboxes");
    let srv = Server::start_with(Overrides::new().set(
        "mailboxes",
        "root",
        &format!("\"{}\"", root.display()),
    ));
    let mut c = too_big_for_the_disk(
        &srv,
        "a@b.test",
        &["bob@example.test", "carol@example.test"],
    );
    let bob = root.join("example.test/bob");
    assert!(list(&bob.join("new")).is_empty());
    assert!(list(&root.join("example.test/carol/new")).is_empty());
    assert!(list(&bob.join("tmp")).is_empty(), "partial spool removed");
    let r = c.send_mail(
        "a@b.test",
        &["bob@example.test"],
        b"Subject: small\r\n\r\nfits\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
    assert_eq!(list(&bob.join("new")).len(), 1);
    drop(c);
    drop(srv);
    drop(tmpfs);
}

/// The outbound queue on a tiny tmpfs: a message for a remote domain that does not fit gets
/// 452 4.3.1 and leaves nothing in the queue (no message, no envelope, no temporary file); one
/// that fits is queued.
#[test]
fn queue_disk_full_is_452_and_nothing_partial() {
    let base = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&base.path().join("mnt")) else {
        return;
    };
    let q = tmpfs.0.join("queue");
    let srv = Server::start_with(
        Overrides::new()
            .set("queue", "dir", &format!("\"{}\"", q.display()))
            // Nobody listens there: queued messages stay deferred.
            .set("relay", "routes", "{ \"far.test\" = \"127.0.0.1:9\" }"),
    );
    let mut c = too_big_for_the_disk(
        &srv,
        "a@example.test",
        &["bob@far.test", "carol@example.test"],
    );
    for sub in ["msg", "env", "tmp"] {
        assert!(walk(&q.join(sub)).is_empty(), "{sub}/ not empty");
    }
    assert!(srv.new_mail("example.test", "carol").is_empty());
    let r = c.send_mail(
        "a@example.test",
        &["bob@far.test"],
        b"Subject: small\r\n\r\nfits\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
    // One file a queued message; an env/ file once its first try (nobody listens) deferred it.
    assert_eq!(list(&q.join("msg")).len(), 1);
    assert!(list(&q.join("env")).len() <= 1);
    // tmp/ (this instance's tmp/<instance>/) may hold that env/ file while the deferral saves
    // it, never a message.
    let left: Vec<_> = walk(&q.join("tmp"))
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "json"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    drop(c);
    drop(srv);
    drop(tmpfs);
}

/// POP3 on a full disk: login, DELE and QUIT still work (deleting needs no space), and delivery
/// recovers once space is freed.
#[test]
fn pop3_dele_on_a_full_disk() {
    let base = tempfile::tempdir().unwrap();
    let Some(tmpfs) = Tmpfs::mount(&base.path().join("mnt")) else {
        return;
    };
    let mnt = tmpfs.0.clone();
    let root = mnt.join("mailboxes");
    let srv = Server::start_with(Overrides::new().pop3(&["alice@example.test"]).set(
        "mailboxes",
        "root",
        &format!("\"{}\"", root.display()),
    ));
    for i in 0..3 {
        srv.deliver(
            "alice@example.test",
            format!("Subject: {i}\r\n\r\nx\r\n").as_bytes(),
        );
    }
    // Fill every remaining block.
    let filler = mnt.join("filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while f.write_all(&chunk).is_ok() {}
    }
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail(
        "a@b.test",
        &["alice@example.test"],
        b"Subject: no room\r\n\r\nx\r\n",
    );
    assert_eq!(r.code, 452, "{r:?}");
    let mut p = srv.pop3();
    assert!(p.login("alice@example.test", PASSWORD).starts_with("+OK"));
    assert!(p.cmd("STAT").starts_with("+OK 3 "));
    assert!(p.cmd("DELE 1").starts_with("+OK"));
    assert!(p.cmd("DELE 2").starts_with("+OK"));
    assert!(p.cmd("QUIT").starts_with("+OK"));
    srv.log.wait_for("pop3 session end");
    let md = root.join("example.test/alice");
    assert_eq!(list(&md.join("new")).len() + list(&md.join("cur")).len(), 1);
    std::fs::remove_file(&filler).unwrap();
    let r = c.send_mail(
        "a@b.test",
        &["alice@example.test"],
        b"Subject: room again\r\n\r\nx\r\n",
    );
    assert_eq!(r.code, 250, "{r:?}");
}

/// A maildir, or only its new/, removed while smtpd runs is made again: the store's memory of
/// ready maildirs never turns one removal into lasting failures (at most one 451).
#[test]
fn maildir_removed_behind_the_servers_back_is_made_again() {
    let srv = Server::start_with(Overrides::new().pop3(&["alice@example.test"]));
    let md = srv.root().join("example.test/alice");
    srv.deliver("alice@example.test", b"Subject: 1\r\n\r\nx\r\n");
    std::fs::remove_dir_all(&md).unwrap();
    // POP3 finds it gone too, and makes it again.
    let mut p = srv.pop3();
    let login = p.login("alice@example.test", PASSWORD);
    assert!(login.starts_with("+OK"), "{login}");
    assert!(p.cmd("STAT").starts_with("+OK 0 "));
    p.cmd("QUIT");
    std::fs::remove_dir_all(&md).unwrap();
    srv.deliver("alice@example.test", b"Subject: 2\r\n\r\nx\r\n");
    assert_eq!(list(&md.join("new")).len(), 1);
    std::fs::remove_dir_all(md.join("new")).unwrap();
    let mut c = srv.connect();
    c.expect(220);
    let r = c.send_mail(
        "s@b.test",
        &["alice@example.test"],
        b"Subject: 3\r\n\r\nx\r\n",
    );
    assert!(r.code == 250 || r.code == 451, "{r:?}");
    c.cmd("QUIT");
    srv.deliver("alice@example.test", b"Subject: 4\r\n\r\nx\r\n");
    assert!(!list(&md.join("new")).is_empty());
    assert!(list(&md.join("tmp")).is_empty(), "nothing left in tmp/");
}
