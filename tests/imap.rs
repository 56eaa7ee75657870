//! IMAP against the real smtpd: Python imaplib over plain loopback, STARTTLS and implicit TLS,
//! curl imap://, IDLE woken by an SMTP delivery, another session seeing changes, and bad input
//! (an overlong literal refused before it is sent, too many BADs, plaintext login refused).
mod common;
use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

const ALICE: &str = "alice@example.test";

/// How soon IDLE must report a change in these tests: far below `idle_poll_secs` (600 here), so
/// only the delivery event or inotify can wake it in time, with room for a loaded CI machine.
/// The latency itself (well under a second) is a benchmark's to measure, not a test's.
const WOKEN: Duration = Duration::from_secs(10);

fn overrides() -> Overrides {
    Overrides::new()
        .account(ALICE, PASSWORD)
        .set("imap", "listen", "[\"127.0.0.1:0\"]")
        .set("imap", "auth_failure_delay_ms", "100")
        // Only a delivery event can wake IDLE within the tests' time.
        .set("imap", "idle_poll_secs", "600")
}

fn server() -> Server {
    Server::start_with(overrides())
}

fn tls_server() -> Server {
    Server::start_with(
        overrides()
            .set("tls", "cert", "\"tls/cert.pem\"")
            .set("tls", "key", "\"tls/key.pem\"")
            .set("tls", "self_signed", "true")
            .set("imap", "imaps", "[\"127.0.0.1:0\"]"),
    )
}

fn two_messages(srv: &Server) {
    srv.deliver(ALICE, b"Subject: one\r\n\r\nfirst body\r\n");
    srv.deliver(ALICE, b"Subject: two\r\n\r\nsecond body\r\n");
}

/// A raw line client.
struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Imap {
    fn connect(addr: SocketAddr) -> Imap {
        let w = TcpStream::connect(addr).unwrap();
        w.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Imap {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        };
        let greeting = c.line();
        assert!(
            greeting.starts_with("* OK [CAPABILITY IMAP4rev1"),
            "{greeting}"
        );
        c
    }
    fn line(&mut self) -> String {
        let mut s = String::new();
        self.r.read_line(&mut s).unwrap();
        s
    }
    fn send(&mut self, s: &str) {
        self.w.write_all(s.as_bytes()).unwrap();
    }
    /// Sends `tag CMD`, returns every line up to the tagged one.
    fn cmd(&mut self, tag: &str, cmd: &str) -> String {
        self.send(&format!("{tag} {cmd}\r\n"));
        self.until(tag)
    }
    fn until(&mut self, tag: &str) -> String {
        let mut all = String::new();
        loop {
            let l = self.line();
            assert!(!l.is_empty(), "connection closed; so far:\n{all}");
            all.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }
}

fn python(mode: &str, addr: SocketAddr) {
    client_script("imaplib_session.py", mode, addr, ALICE, PASSWORD);
}

/// Python imaplib on the loopback listener: LIST with SPECIAL-USE, SELECT, FETCH, SEARCH, STORE,
/// APPEND, COPY, MOVE, EXPUNGE, CREATE/RENAME/DELETE; flags end up in the file names.
#[test]
fn python_imaplib_plain() {
    if !have("python3") {
        return;
    }
    let srv = server();
    two_messages(&srv);
    python("plain", srv.addr("imap"));
    let md = srv.root().join("example.test/alice");
    assert!(list(&md.join("new")).is_empty() && list(&md.join("cur")).is_empty());
    let archive = list(&md.join(".Archive/cur"));
    assert_eq!(archive.len(), 1);
    assert!(archive[0].to_string_lossy().ends_with(":2,"), "{archive:?}");
    let sent = list(&md.join(".Sent/cur"));
    assert!(sent[0].to_string_lossy().ends_with(":2,S"), "{sent:?}");
    let uidlist = std::fs::read_to_string(md.join(".Trash/dovecot-uidlist")).unwrap();
    assert!(
        uidlist.starts_with("3 V") && uidlist.contains("\n1 :"),
        "{uidlist}"
    );
}

/// The same over STARTTLS and over the implicit-TLS listener.
#[test]
fn python_imaplib_starttls_and_imaps() {
    if !have("python3") {
        return;
    }
    let srv = tls_server();
    two_messages(&srv);
    python("starttls", srv.addr("imap"));
    let srv = tls_server();
    two_messages(&srv);
    python("ssl", srv.addr("imaps"));
}

/// `smtpctl status --json` lists the IMAP listeners.
#[test]
fn status_lists_imap_listeners() {
    let srv = tls_server();
    let v = srv.ctl_json(&["status", "--json"]);
    let protos: Vec<&str> = v["listeners"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["protocol"].as_str())
        .collect();
    assert!(protos.contains(&"imap") && protos.contains(&"imaps"), "{v}");
}

/// IDLE is woken by an SMTP delivery within a second (idle_poll_secs is 600 here), and another
/// session on the same folder sees a flag change and an expunge at its next command.
#[test]
fn idle_woken_by_delivery_and_changes_reach_other_sessions() {
    let srv = server();
    two_messages(&srv);
    let addr = srv.addr("imap");
    let mut a = Imap::connect(addr);
    let mut b = Imap::connect(addr);
    for c in [&mut a, &mut b] {
        assert!(
            c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
                .contains("l OK")
        );
        assert!(c.cmd("s", "SELECT INBOX").contains("* 2 EXISTS"));
    }
    b.send("i IDLE\r\n");
    assert_eq!(b.line(), "+ idling\r\n");
    let t = Instant::now();
    srv.deliver(ALICE, b"Subject: three\r\n\r\nthird\r\n");
    let sent = t.elapsed();
    let line = b.line();
    assert_eq!(line, "* 3 EXISTS\r\n");
    assert!(
        t.elapsed() - sent < WOKEN,
        "IDLE woke {:?} after the delivery",
        t.elapsed() - sent
    );
    b.send("DONE\r\n");
    assert!(b.until("i").contains("i OK IDLE terminated"));
    // a flags and expunges message 1; b sees both at its next NOOP.
    assert!(a.cmd("f", "STORE 1 +FLAGS (\\Deleted)").contains("f OK"));
    assert!(a.cmd("e", "EXPUNGE").contains("* 1 EXPUNGE"));
    let seen = b.cmd("n", "NOOP");
    assert!(seen.contains("* 1 EXPUNGE"), "{seen}");
    let seen = b.cmd("m", "FETCH 1:* UID");
    assert!(
        seen.contains("* 1 FETCH (UID 2)") && seen.contains("* 2 FETCH (UID 3)"),
        "{seen}"
    );
}

/// An overlong synchronizing literal gets NO [TOOBIG] and no "+" (so the client never sends it);
/// the session goes on. Too many BAD commands end it with BYE.
#[test]
fn overlong_literal_and_too_many_bads() {
    let srv = Server::start_with(overrides().set("imap", "max_literal", "2048").set(
        "limits",
        "max_errors",
        "3",
    ));
    let mut c = Imap::connect(srv.addr("imap"));
    assert!(
        c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
            .contains("l OK")
    );
    c.send("a APPEND INBOX {1000000}\r\n");
    let l = c.line();
    assert!(l.starts_with("a NO [TOOBIG]"), "{l}");
    assert!(c.cmd("n", "NOOP").contains("n OK"));
    for i in 0..2 {
        assert!(c.cmd(&format!("b{i}"), "FROB").contains("BAD"));
    }
    c.send("b3 (((\r\n");
    let rest = c.until("b3");
    let mut tail = String::new();
    let _ = c.r.read_to_string(&mut tail);
    assert!(
        rest.contains("b3 BAD") && tail.contains("* BYE Too many invalid commands"),
        "{rest}{tail}"
    );
    assert!(srv.new_mail("example.test", "alice").is_empty());
}

/// `curl imap://` lists the folders and fetches a message by UID.
#[test]
fn curl_imap() {
    if !have("curl") {
        return;
    }
    let srv = server();
    two_messages(&srv);
    let addr = srv.addr("imap");
    let user = format!("{ALICE}:{PASSWORD}");
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-u",
            &user,
            &format!("imap://{addr}/"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Sent") && stdout(&out).contains("INBOX"),
        "{}",
        stdout(&out)
    );
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "20",
            "-u",
            &user,
            &format!("imap://{addr}/INBOX;UID=2"),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("second body"), "{}", stdout(&out));
}

/// IDLE with no DONE ends at the autologout (`idle_timeout_secs`) with BYE.
#[test]
fn idle_without_done_ends_at_the_autologout() {
    let srv = Server::start_with(overrides().set("imap", "idle_timeout_secs", "2"));
    let mut c = Imap::connect(srv.addr("imap"));
    assert!(
        c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
            .contains("l OK")
    );
    assert!(c.cmd("s", "SELECT INBOX").contains("s OK"));
    let t = Instant::now();
    c.send("i IDLE\r\n");
    assert_eq!(c.line(), "+ idling\r\n");
    let bye = c.line();
    assert!(bye.starts_with("* BYE Autologout"), "{bye}");
    assert!(t.elapsed() >= Duration::from_secs(2), "{:?}", t.elapsed());
    assert_eq!(c.line(), "", "the connection is closed after BYE");
}

fn uidls(p: &mut Pop3) -> Vec<String> {
    assert!(p.cmd("UIDL").starts_with("+OK"));
    p.multiline()
}

/// POP3 and IMAP on one account, as Dovecot behaves: IMAP's SELECT (new/ to cur/) and flag
/// changes leave the POP3 UIDLs unchanged; a message deleted over POP3 is an EXPUNGE for an IMAP
/// session at its next command, and one expunged over IMAP is gone from the next POP3 listing.
#[test]
fn pop3_and_imap_on_one_account() {
    let srv = Server::start_with(overrides().pop3(&[]));
    for s in ["one", "two", "three"] {
        srv.deliver(ALICE, format!("Subject: {s}\r\n\r\n{s}\r\n").as_bytes());
    }
    let mut p = srv.pop3();
    assert!(p.login(ALICE, PASSWORD).starts_with("+OK"));
    let before = uidls(&mut p);
    assert_eq!(before.len(), 3, "{before:?}");
    assert!(p.cmd("QUIT").starts_with("+OK"));

    let mut c = Imap::connect(srv.addr("imap"));
    assert!(
        c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
            .contains("l OK")
    );
    assert!(c.cmd("s", "SELECT INBOX").contains("* 3 EXISTS"));
    assert!(c.cmd("f", "STORE 1:3 +FLAGS (\\Flagged)").contains("f OK"));
    assert!(srv.new_mail("example.test", "alice").is_empty());

    let mut p = srv.pop3();
    assert!(p.login(ALICE, PASSWORD).starts_with("+OK"));
    assert_eq!(uidls(&mut p), before, "POP3 UIDLs changed after IMAP");
    // DELE 2 then QUIT: the file is removed; the IMAP session hears of it at its next command.
    assert!(p.cmd("DELE 2").starts_with("+OK"));
    assert!(p.cmd("QUIT").starts_with("+OK"));
    let noop = c.cmd("n", "NOOP");
    assert!(noop.contains("* 2 EXPUNGE\r\n"), "{noop}");
    let uids = c.cmd("u", "UID FETCH 1:* (UID)");
    assert!(
        uids.contains("* 1 FETCH (UID 1)") && uids.contains("* 2 FETCH (UID 3)"),
        "{uids}"
    );
    // Expunged over IMAP: gone for POP3, the other UIDL unchanged.
    assert!(c.cmd("d", "STORE 1 +FLAGS (\\Deleted)").contains("d OK"));
    assert!(c.cmd("e", "EXPUNGE").contains("* 1 EXPUNGE"));
    let mut p = srv.pop3();
    assert!(p.login(ALICE, PASSWORD).starts_with("+OK"));
    let after = uidls(&mut p);
    assert_eq!(after.len(), 1, "{after:?}");
    let uidl = |l: &str| l.split_whitespace().nth(1).unwrap_or("").to_string();
    assert_eq!(uidl(&after[0]), uidl(&before[2]), "{after:?} {before:?}");
    let (_, body) = p.retr(1);
    assert!(String::from_utf8_lossy(&body).contains("Subject: three"));
}

/// mbsync (isync) syncs 1,000 messages down to a local Maildir, then a flag set locally goes
/// back up: smtpd's file for that message gets the `F` letter, and a third run copies nothing.
#[test]
fn mbsync_syncs_a_thousand_messages_down_and_a_flag_back() {
    if !have("mbsync") {
        return;
    }
    let srv = server();
    let inbox = srv.root().join("example.test/alice");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(inbox.join(sub)).unwrap();
    }
    for i in 0..1000 {
        let body = format!("Subject: message {i}\nMessage-ID: <{i}@example.test>\n\nbody {i}\n");
        std::fs::write(
            inbox.join(format!(
                "new/{}.M{i}P1Q{i}.test,S={}",
                1_700_000_000 + i,
                body.len()
            )),
            body,
        )
        .unwrap();
    }
    let home = tempfile::tempdir().unwrap();
    let local = home.path().join("local");
    std::fs::create_dir(&local).unwrap();
    let rc = home.path().join("mbsyncrc");
    std::fs::write(
        &rc,
        format!(
            "FSync no\n\nIMAPAccount t\nHost {}\nPort {}\nUser {ALICE}\nPass \"{PASSWORD}\"\nSSLType None\n\
             AuthMechs LOGIN\n\nIMAPStore far\nAccount t\n\n\
             MaildirStore near\nPath {l}/\nInbox {l}/INBOX\n\n\
             Channel c\nFar :far:\nNear :near:\nPatterns INBOX\nCreate Near\nSync All\n\
             SyncState *\nExpunge None\n",
            srv.addr("imap").ip(),
            srv.addr("imap").port(),
            l = local.display()
        ),
    )
    .unwrap();
    let mbsync = || {
        let out = Command::new("mbsync")
            .env("HOME", home.path())
            .arg("-c")
            .arg(&rc)
            .arg("-V")
            .arg("c")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
        stdout(&out) + &stderr(&out)
    };
    let t = Instant::now();
    mbsync();
    let near = list(&local.join("INBOX/cur"))
        .into_iter()
        .chain(list(&local.join("INBOX/new")))
        .collect::<Vec<_>>();
    assert_eq!(near.len(), 1000, "after {:?}", t.elapsed());
    // Flag message 500 locally (Maildir info letter F) and sync back.
    let target = near
        .iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("Subject: message 500\n")
        })
        .unwrap()
        .clone();
    let name = target.file_name().unwrap().to_string_lossy().into_owned();
    let flagged = match name.split_once(":2,") {
        Some((base, letters)) => format!("{base}:2,F{letters}"),
        None => format!("{name}:2,F"),
    };
    std::fs::rename(&target, local.join("INBOX/cur").join(flagged)).unwrap();
    let second = mbsync();
    let ours: Vec<String> = list(&inbox.join("cur"))
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("1700000500.M500P1Q500.test"))
        .collect();
    assert_eq!(ours.len(), 1, "{ours:?}");
    assert!(ours[0].contains(":2,F"), "{ours:?}\n{second}");
    // Nothing is copied again either way.
    mbsync();
    let count = |d: &std::path::Path| list(&d.join("cur")).len() + list(&d.join("new")).len();
    assert_eq!(count(&local.join("INBOX")), 1000);
    assert_eq!(count(&inbox), 1000);
}

/// Folder names that would lead outside the account or are not names (`..`, `/`, `\`, control
/// characters, a leading dot) are refused by the real server, and nothing appears on disk.
#[test]
fn folder_names_that_leave_the_account_are_refused() {
    let srv = server();
    two_messages(&srv);
    let mut c = Imap::connect(srv.addr("imap"));
    assert!(
        c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
            .contains("l OK")
    );
    let before = walk(&srv.root());
    for (i, cmd) in [
        "CREATE ../x",
        "CREATE ../../../../tmp/x",
        "CREATE a/b",
        "CREATE \"a\\\\b\"",
        "CREATE ..",
        "CREATE .hidden",
        "CREATE \"a..b\"",
        "SELECT \"../..\"",
        "RENAME Trash ../../escaped",
        "DELETE ../alice",
        "STATUS \"/etc\" (MESSAGES)",
        "APPEND ../x {1+}\r\nx",
    ]
    .iter()
    .enumerate()
    {
        let tag = format!("t{i}");
        let out = c.cmd(&tag, cmd);
        assert!(out.contains(&format!("{tag} NO")), "{cmd}: {out}");
    }
    c.send("c CREATE {3}\r\n");
    assert!(c.line().starts_with("+ "));
    c.send("a\u{1}b\r\n");
    let out = c.until("c");
    assert!(out.contains("c NO"), "{out}");
    assert_eq!(walk(&srv.root()), before);
    assert!(c.cmd("n", "NOOP").contains("n OK"));
}

/// IDLE wakes within a second (idle_poll_secs is 600 here) when another IMAP session of the
/// account changes flags or expunges, and when a POP3 session deletes: smtpd tells its own
/// sessions in-process.
#[test]
fn idle_woken_by_another_imap_session_and_by_pop3() {
    let srv = Server::start_with(overrides().pop3(&[]));
    for s in ["one", "two", "three"] {
        srv.deliver(ALICE, format!("Subject: {s}\r\n\r\n{s}\r\n").as_bytes());
    }
    let addr = srv.addr("imap");
    let mut a = Imap::connect(addr);
    let mut b = Imap::connect(addr);
    for c in [&mut a, &mut b] {
        assert!(
            c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
                .contains("l OK")
        );
        assert!(c.cmd("s", "SELECT INBOX").contains("* 3 EXISTS"));
    }
    let within_a_second = |b: &mut Imap, t: Instant, want: &str| {
        let line = b.line();
        assert_eq!(line, want);
        assert!(t.elapsed() < WOKEN, "{:?}", t.elapsed());
    };
    b.send("i IDLE\r\n");
    assert_eq!(b.line(), "+ idling\r\n");
    let t = Instant::now();
    assert!(a.cmd("f", "STORE 2 +FLAGS (\\Flagged)").contains("f OK"));
    within_a_second(&mut b, t, "* 2 FETCH (UID 2 FLAGS (\\Flagged))\r\n");
    let t = Instant::now();
    assert!(
        a.cmd("d", "STORE 1 +FLAGS.SILENT (\\Deleted)")
            .contains("d OK")
    );
    assert!(a.cmd("e", "EXPUNGE").contains("* 1 EXPUNGE"));
    // The \Deleted flag may be reported before the expunge; the expunge comes within the second.
    loop {
        let line = b.line();
        if line == "* 1 EXPUNGE\r\n" {
            break;
        }
        assert!(line.starts_with("* 1 FETCH"), "{line}");
    }
    assert!(t.elapsed() < WOKEN, "{:?}", t.elapsed());
    // POP3 deletes what is now message 1 (UID 2).
    let mut p = srv.pop3();
    assert!(p.login(ALICE, PASSWORD).starts_with("+OK"));
    assert!(p.cmd("DELE 1").starts_with("+OK"));
    let t = Instant::now();
    assert!(p.cmd("QUIT").starts_with("+OK"));
    within_a_second(&mut b, t, "* 1 EXPUNGE\r\n");
    b.send("DONE\r\n");
    assert!(b.until("i").contains("i OK IDLE terminated"));
}

/// Changes by other programs on the Maildir (a file dropped into `new/` as procmail or Dovecot's
/// LDA would, a flag letter renamed on by mutt) reach a session in IDLE within a second through
/// inotify, although idle_poll_secs is 600 here.
#[test]
fn idle_sees_changes_by_other_programs_at_once() {
    let srv = server();
    two_messages(&srv);
    let mut c = Imap::connect(srv.addr("imap"));
    assert!(
        c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
            .contains("l OK")
    );
    assert!(c.cmd("s", "SELECT INBOX").contains("* 2 EXISTS"));
    c.send("i IDLE\r\n");
    assert_eq!(c.line(), "+ idling\r\n");
    let inbox = srv.root().join("example.test/alice");
    let t = Instant::now();
    std::fs::write(
        inbox.join("tmp/1800000000.M1P1Q1.other"),
        "Subject: dropped\n\nby hand\n",
    )
    .unwrap();
    std::fs::rename(
        inbox.join("tmp/1800000000.M1P1Q1.other"),
        inbox.join("new/1800000000.M1P1Q1.other"),
    )
    .unwrap();
    let mut got = String::new();
    while !got.contains(" RECENT\r\n") {
        got.push_str(&c.line());
    }
    assert!(got.starts_with("* 3 EXISTS\r\n"), "{got}");
    assert!(t.elapsed() < WOKEN, "{:?}", t.elapsed());
    // mutt marks the first message flagged: a rename within cur/.
    let first = list(&inbox.join("cur"))
        .into_iter()
        .find(|p| std::fs::read_to_string(p).unwrap().contains("Subject: one"))
        .unwrap();
    let name = first.file_name().unwrap().to_string_lossy().into_owned();
    let base = name.split(":2,").next().unwrap();
    let t = Instant::now();
    std::fs::rename(&first, inbox.join("cur").join(format!("{base}:2,F"))).unwrap();
    let line = c.line();
    assert_eq!(line, "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Recent))\r\n");
    assert!(t.elapsed() < WOKEN, "{:?}", t.elapsed());
    c.send("DONE\r\n");
    assert!(c.until("i").contains("i OK IDLE terminated"));
}

/// Thunderbird's conversation replayed (tests/clients/thunderbird_replay.py says where each
/// command comes from): capability, ID, AUTHENTICATE PLAIN, namespace, LIST (SPECIAL-USE), select
/// with (CONDSTORE) when offered, the flag and header fetches, IDLE woken by an SMTP delivery,
/// the body and part fetches after it, APPEND to Sent, logout.
#[test]
fn thunderbird_command_sequence() {
    if !have("python3") {
        return;
    }
    let srv = server();
    two_messages(&srv);
    client_script(
        "thunderbird_replay.py",
        &srv.smtp.port().to_string(),
        srv.addr("imap"),
        ALICE,
        PASSWORD,
    );
    let sent = srv.root().join("example.test/alice/.Sent/cur");
    let files = list(&sent);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0].to_string_lossy().ends_with(":2,S"),
        "{:?}",
        files[0]
    );
}

/// neomutt (Debian's), headless under script(1): it opens INBOX over IMAP, reads the first
/// message, flags it, saves the next one to the Archive folder and syncs. The Maildir shows it
/// as Dovecot would: `:2,FS` on the one read and flagged, the saved one moved into
/// `.Archive/cur` and gone from INBOX.
#[test]
fn neomutt_reads_flags_and_moves() {
    if !have("neomutt") || !have("script") {
        return;
    }
    let srv = server();
    for i in 0..3 {
        srv.deliver(
            ALICE,
            format!("Subject: msg {i}\r\nFrom: bob@example.test\r\n\r\nbody {i}\r\n").as_bytes(),
        );
    }
    let home = tempfile::tempdir().unwrap();
    let rc = home.path().join("muttrc");
    let addr = srv.addr("imap");
    std::fs::write(
        &rc,
        format!(
            "set folder = \"imap://alice%40example.test@{addr}/\"\n\
             set spoolfile = \"+INBOX\"\nset imap_pass = \"{PASSWORD}\"\n\
             set ssl_starttls = no\nset ssl_force_tls = no\nset mail_check = 0\n\
             set confirmappend = no\nset confirmcreate = no\nset delete = yes\n\
             set move = no\nset sort = date\nset imap_passive = yes\n"
        ),
    )
    .unwrap();
    let keys = "<display-message><exit><flag-message><next-entry><save-message>=Archive<enter><sync-mailbox><quit>";
    let out = Command::new("timeout")
        .args(["60", "script", "-qec"])
        .arg(format!(
            "neomutt -n -F {} -e 'push \"{keys}\"'",
            rc.display()
        ))
        .arg("/dev/null")
        .env("TERM", "xterm")
        .env("HOME", home.path())
        .output()
        .expect("run neomutt");
    assert!(out.status.success(), "neomutt: {out:?}");
    let inbox = srv.root().join("example.test/alice");
    let names = |d: &str| -> Vec<String> {
        list(&inbox.join(d))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect()
    };
    let (cur, new, archived) = (names("cur"), names("new"), names(".Archive/cur"));
    assert!(new.is_empty(), "{new:?}");
    assert_eq!(cur.len(), 2, "one of three moved away: {cur:?}");
    assert_eq!(archived.len(), 1, "{archived:?}");
    let info = |n: &String| {
        n.rsplit_once(":2,")
            .map(|(_, i)| i.to_string())
            .unwrap_or_default()
    };
    let flagged: Vec<&String> = cur
        .iter()
        .filter(|n| info(n).contains('F') && info(n).contains('S'))
        .collect();
    assert_eq!(flagged.len(), 1, "one read and flagged: {cur:?}");
    let subject = |p: PathBuf| {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .find(|l| l.starts_with("Subject: "))
            .unwrap()
            .to_string()
    };
    let mut subjects: Vec<String> = list(&inbox.join("cur"))
        .into_iter()
        .chain(list(&inbox.join(".Archive/cur")))
        .map(subject)
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        ["Subject: msg 0", "Subject: msg 1", "Subject: msg 2"]
    );
}
