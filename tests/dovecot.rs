//! The same Maildir read by Dovecot's IMAP and by ours, one after the other: UIDVALIDITY, UIDs
//! and flags set by one are what the other sees, and mail Dovecot appends gets the next UID for
//! us (Debian's dovecot-imapd, run pre-authenticated on stdin/stdout; as user nobody, since
//! Dovecot refuses to touch mail as root).
mod common;
use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

const ALICE: &str = "alice@example.test";
const DOVECOT_IMAP: &str = "/usr/lib/dovecot/imap";

/// Runs Dovecot's imap on `maildir` with `script` (CRLF lines); its output.
fn dovecot(dir: &std::path::Path, maildir: &std::path::Path, script: &str) -> String {
    let conf = dir.join("dovecot.conf");
    std::fs::write(
        &conf,
        format!(
            "mail_location = maildir:{}\nlog_path = /dev/stderr\nssl = no\nprotocols = imap\n\
             base_dir = {d}/dovecot-run\nstate_dir = {d}/dovecot-state\n\
             mail_uid = 65534\nmail_gid = 65534\nfirst_valid_uid = 1\n",
            maildir.display(),
            d = dir.display()
        ),
    )
    .unwrap();
    // Dovecot drops to nobody: the directories above the Maildir (tempdirs are 0700) need +x.
    use std::os::unix::fs::PermissionsExt;
    let mut up = maildir.parent();
    while let Some(d) = up {
        if !d.starts_with(dir) {
            break;
        }
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o711)).unwrap();
        up = d.parent();
    }
    let chown = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(maildir)
        .status()
        .unwrap();
    assert!(chown.success());
    let mut child = Command::new(DOVECOT_IMAP)
        .arg("-c")
        .arg(&conf)
        .env_clear()
        .env("USER", "alice")
        .env("HOME", dir)
        .env("PATH", "/usr/bin:/bin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = stdout(&out);
    assert!(text.contains("* BYE"), "{text}{}", stderr(&out));
    text
}

struct Imap {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Imap {
    fn connect(srv: &Server) -> Imap {
        let w = TcpStream::connect(srv.addr("imap")).unwrap();
        w.set_read_timeout(Some(WAIT)).unwrap();
        let mut c = Imap {
            r: BufReader::new(w.try_clone().unwrap()),
            w,
        };
        let mut greeting = String::new();
        c.r.read_line(&mut greeting).unwrap();
        assert!(
            c.cmd("l", &format!("LOGIN {ALICE} \"{PASSWORD}\""))
                .contains("l OK")
        );
        c
    }
    fn cmd(&mut self, tag: &str, cmd: &str) -> String {
        self.w
            .write_all(format!("{tag} {cmd}\r\n").as_bytes())
            .unwrap();
        let mut all = String::new();
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).unwrap();
            assert!(!l.is_empty(), "closed: {all}");
            all.push_str(&l);
            if l.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }
}

fn uidvalidity(select: &str) -> String {
    select
        .split("[UIDVALIDITY ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or_else(|| panic!("no UIDVALIDITY in {select}"))
        .to_string()
}

/// Dovecot's imap is installed and we are root (to run it as nobody); under CI=true both must be.
fn usable() -> bool {
    if !have(DOVECOT_IMAP) {
        return false;
    }
    if !is_root() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the Dovecot round trip needs root (to run Dovecot as nobody)");
        }
        eprintln!("SKIPPED: the Dovecot round trip needs root");
        return false;
    }
    true
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| stdout(&o).trim() == "0")
        .unwrap_or(false)
}

/// smtpd sets flags, Dovecot sees them with the same UIDs and UIDVALIDITY and changes them and
/// appends; smtpd then sees Dovecot's flags and the appended message as UID 4.
#[test]
fn dovecot_and_smtpd_share_uids_and_flags() {
    if !usable() {
        return;
    }
    let srv = Server::start_with(Overrides::new().account(ALICE, PASSWORD).set(
        "imap",
        "listen",
        "[\"127.0.0.1:0\"]",
    ));
    for s in ["one", "two", "three"] {
        srv.deliver(
            ALICE,
            format!("Subject: {s}\r\n\r\n{s} body\r\n").as_bytes(),
        );
    }
    let mut c = Imap::connect(&srv);
    let ours = uidvalidity(&c.cmd("s", "SELECT INBOX"));
    assert!(c.cmd("a", "STORE 1 +FLAGS (\\Seen)").contains("a OK"));
    assert!(
        c.cmd("b", "STORE 2 +FLAGS (\\Flagged \\Answered)")
            .contains("b OK")
    );
    let status = c.cmd("h", "STATUS INBOX (HIGHESTMODSEQ)");
    let highest: u64 = status
        .split("HIGHESTMODSEQ ")
        .nth(1)
        .and_then(|r| r.split(')').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{status}"));
    assert!(c.cmd("o", "LOGOUT").contains("o OK"));

    let maildir = srv.root().join("example.test/alice");
    let out = dovecot(
        srv.dir.path(),
        &maildir,
        "a SELECT INBOX\r\nb UID FETCH 1:* (UID FLAGS)\r\nc UID STORE 3 +FLAGS (\\Draft)\r\n\
         d APPEND INBOX (\\Seen) {23}\r\nSubject: four\r\n\r\nfour\r\n\r\ne LOGOUT\r\n",
    );
    assert_eq!(uidvalidity(&out), ours, "{out}");
    assert!(out.contains("* 1 FETCH (UID 1 FLAGS (\\Seen))"), "{out}");
    assert!(
        out.contains("* 2 FETCH (UID 2 FLAGS (\\Answered \\Flagged))"),
        "{out}"
    );
    assert!(out.contains("* 3 FETCH (UID 3 FLAGS ())"), "{out}");
    assert!(out.contains("d OK [APPENDUID"), "{out}");

    let mut c = Imap::connect(&srv);
    let select = c.cmd("s", "SELECT INBOX");
    assert_eq!(uidvalidity(&select), ours);
    assert!(select.contains("* 4 EXISTS"), "{select}");
    let f = c.cmd("f", "UID FETCH 1:* (UID FLAGS)");
    for want in [
        "* 1 FETCH (UID 1 FLAGS (\\Seen))",
        "* 2 FETCH (UID 2 FLAGS (\\Flagged \\Answered))",
        "* 3 FETCH (UID 3 FLAGS (\\Draft))",
        "* 4 FETCH (UID 4 FLAGS (\\Seen))",
    ] {
        assert!(f.contains(want), "{want} in {f}");
    }
    let body = c.cmd("g", "UID FETCH 4 BODY.PEEK[TEXT]");
    assert!(body.contains("four\r\n"), "{body}");
    // CONDSTORE: what Dovecot changed (a flag renamed in cur/, an APPEND) has a MODSEQ above
    // the HIGHESTMODSEQ from before; what it left alone has not.
    let changed = c.cmd(
        "m",
        &format!("UID FETCH 1:* (FLAGS) (CHANGEDSINCE {highest})"),
    );
    assert!(
        changed.contains("(UID 3 FLAGS (\\Draft) MODSEQ (")
            && changed.contains("(UID 4 FLAGS (\\Seen) MODSEQ (")
            && !changed.contains("UID 1 ")
            && !changed.contains("UID 2 "),
        "{changed}"
    );
}

fn uidnext(select: &str) -> String {
    select
        .split("[UIDNEXT ")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or_else(|| panic!("no UIDNEXT in {select}"))
        .to_string()
}

/// The other way: a Maildir Dovecot made and used (its uidlist, with its extended fields, its
/// index files, an expunge leaving a gap in the UIDs, keywords in dovecot-keywords) is what
/// smtpd serves with the same UIDVALIDITY, UIDs, UIDNEXT, flags and keywords, so a client
/// switching servers has nothing to download; after smtpd has used it, Dovecot still agrees.
#[test]
fn a_maildir_dovecot_made_keeps_its_uids_under_smtpd() {
    if !usable() {
        return;
    }
    let srv = Server::start_with(Overrides::new().account(ALICE, PASSWORD).set(
        "imap",
        "listen",
        "[\"127.0.0.1:0\"]",
    ));
    let maildir = srv.root().join("example.test/alice");
    std::fs::create_dir_all(&maildir).unwrap();
    let mut script = String::from("a CREATE Work\r\n");
    for i in 1..=5 {
        let m = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
        script.push_str(&format!("p{i} APPEND INBOX {{{}+}}\r\n{m}\r\n", m.len()));
    }
    script.push_str(
        "s SELECT INBOX\r\nt STORE 2 +FLAGS (\\Deleted)\r\nx EXPUNGE\r\n\
         f STORE 1 +FLAGS (\\Seen \\Answered)\r\ng UID STORE 5 +FLAGS (\\Flagged)\r\n\
         c UID COPY 3 Work\r\nk UID STORE 3 +FLAGS ($Forwarded Work)\r\nz LOGOUT\r\n",
    );
    let out = dovecot(srv.dir.path(), &maildir, &script);
    assert!(out.contains("x OK"), "{out}");
    let theirs = {
        let o = dovecot(
            srv.dir.path(),
            &maildir,
            "s SELECT INBOX\r\nf UID FETCH 1:* (UID FLAGS)\r\nz LOGOUT\r\n",
        );
        assert!(o.contains("* 4 EXISTS"), "{o}");
        o
    };

    let mut c = Imap::connect(&srv);
    let select = c.cmd("s", "SELECT INBOX");
    assert_eq!(uidvalidity(&select), uidvalidity(&theirs), "{select}");
    assert_eq!(uidnext(&select), uidnext(&theirs), "{select}");
    assert_eq!(uidnext(&select), "6");
    let f = c.cmd("f", "UID FETCH 1:* (UID FLAGS)");
    for want in [
        "* 1 FETCH (UID 1 FLAGS (\\Answered \\Seen))",
        "* 2 FETCH (UID 3 FLAGS ($Forwarded Work))",
        "* 3 FETCH (UID 4 FLAGS ())",
        "* 4 FETCH (UID 5 FLAGS (\\Flagged))",
    ] {
        assert!(f.contains(want), "{want} in {f}");
    }
    let body = c.cmd("b", "UID FETCH 4 BODY.PEEK[TEXT]");
    assert!(body.contains("body 4\r\n"), "{body}");
    let work = c.cmd("w", "STATUS Work (MESSAGES UIDNEXT)");
    assert!(work.contains("MESSAGES 1 UIDNEXT 2"), "{work}");
    // Our changes, then Dovecot again: same UIDs, our flag, our expunge.
    assert!(
        c.cmd("d", "UID STORE 4 +FLAGS (\\Deleted)")
            .contains("d OK")
    );
    assert!(c.cmd("e", "EXPUNGE").contains("* 3 EXPUNGE"));
    assert!(
        c.cmd("g", "UID STORE 3 +FLAGS (\\Draft Junk)")
            .contains("g OK")
    );
    assert!(c.cmd("h", "UID STORE 3 -FLAGS (Work)").contains("h OK"));
    assert!(c.cmd("o", "LOGOUT").contains("o OK"));
    let again = dovecot(
        srv.dir.path(),
        &maildir,
        "s SELECT INBOX\r\nf UID FETCH 1:* (UID FLAGS)\r\nz LOGOUT\r\n",
    );
    assert_eq!(uidvalidity(&again), uidvalidity(&theirs));
    assert!(again.contains("* 3 EXISTS"), "{again}");
    assert!(
        again.contains("* 2 FETCH (UID 3 FLAGS (\\Draft $Forwarded Junk))")
            && again.contains("* 3 FETCH (UID 5 FLAGS (\\Flagged))"),
        "{again}"
    );
}
