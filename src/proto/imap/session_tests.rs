//! Transcripts over the in-memory store, fed whole, byte by byte and in pieces; two sessions
//! on one account; limits and bad input; a property test that no input panics the engine.

use std::sync::{Arc, Mutex};

use proptest::prelude::*;

use super::*;
use crate::proto::imap::fake::{Account, FakeStore};
use crate::proto::imap::store::Flag;

#[path = "condstore_tests.rs"]
mod condstore;

fn policy(plaintext: bool) -> Arc<ImapPolicy> {
    Arc::new(ImapPolicy {
        hostname: "mail.example.test".into(),
        plaintext_allowed: plaintext,
        tls_available: true,
        max_errors: 5,
        max_literal: 1000,
        max_line: 200,
    })
}

struct Harness {
    account: Arc<Mutex<Account>>,
    s: ImapSession,
    closed: bool,
    tls_started: bool,
    /// The store names message files (whole-message FETCHes are then streamed).
    files: bool,
}

impl Harness {
    /// A session on an account with two messages in INBOX.
    fn new(plaintext: bool) -> Self {
        let account = Account::new();
        {
            let mut a = account.lock().unwrap();
            a.deliver(b"From: a@b.test\nSubject: first\nTo: alice@example.test\n\nhello\n");
            a.deliver(b"Subject: second\n\nworld wide\n");
        }
        Self::on(&account, plaintext)
    }

    /// Another session on the same account.
    fn on(account: &Arc<Mutex<Account>>, plaintext: bool) -> Self {
        Harness {
            account: Arc::clone(account),
            s: ImapSession::new(policy(plaintext)),
            closed: false,
            tls_started: false,
            files: false,
        }
    }

    fn events(&mut self, events: Vec<Event>, out: &mut Vec<u8>) {
        for ev in events {
            match ev {
                Event::Reply(b) => out.extend_from_slice(&b),
                Event::Login { user, password } => {
                    let outcome = if user == "alice@example.test" && password == "secret" {
                        let mut store = FakeStore::new(&self.account);
                        store.files = self.files;
                        LoginOutcome::Ok(Box::new(store))
                    } else {
                        LoginOutcome::BadCredentials
                    };
                    let more = self.s.login(outcome);
                    self.events(more, out);
                }
                Event::StartTls => {
                    self.s.tls_started();
                    self.tls_started = true;
                }
                Event::Idle => {}
                Event::Close => self.closed = true,
                Event::Foreign(kind) => out.extend_from_slice(format!("<{kind:?}>").as_bytes()),
                Event::Literal { file, binary } => out.extend_from_slice(
                    format!("<stream {} binary={binary}>", file.base).as_bytes(),
                ),
            }
        }
    }

    /// Feeds `input` in chunks of `size` (0: whole); returns the text of every reply.
    fn run(&mut self, input: &str, size: usize) -> String {
        let mut out = Vec::new();
        let bytes = input.as_bytes();
        let size = if size == 0 { bytes.len().max(1) } else { size };
        for chunk in bytes.chunks(size) {
            let ev = self.s.feed(chunk);
            self.events(ev, &mut out);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

const SESSION: &str = "a1 CAPABILITY\r\n\
a2 LOGIN alice@example.test secret\r\n\
a3 LIST \"\" *\r\n\
a4 SELECT INBOX\r\n\
a5 FETCH 1:* (UID FLAGS RFC822.SIZE)\r\n\
a6 FETCH 1 (BODY.PEEK[HEADER.FIELDS (SUBJECT)] ENVELOPE)\r\n\
a7 UID FETCH 2 BODY[]\r\n\
a8 STORE 1 +FLAGS (\\Deleted)\r\n\
a9 SEARCH UNSEEN\r\n\
b1 UID SEARCH BODY wide\r\n\
b2 COPY 2 Trash\r\n\
b3 EXPUNGE\r\n\
b4 APPEND Sent (\\Seen) {12}\r\nSubject: x\r\n\r\n\
b5 STATUS Sent (MESSAGES UIDNEXT UNSEEN)\r\n\
b6 MOVE 1 Archive\r\n\
b7 SELECT Archive\r\n\
b8 FETCH 1 (FLAGS BODY[TEXT]<0.5>)\r\n\
b9 LOGOUT\r\n";

#[test]
fn a_whole_session_fed_whole_byte_by_byte_and_in_pieces() {
    for size in [0, 1, 7, 64] {
        let mut h = Harness::new(true);
        let out = h.run(SESSION, size);
        for want in [
            "a1 OK CAPABILITY",
            "AUTH=PLAIN",
            "a2 OK [CAPABILITY",
            "* LIST (\\HasNoChildren \\Sent \\Subscribed) \".\" Sent\r\n",
            "* LIST (\\HasNoChildren \\Subscribed) \".\" INBOX\r\n",
            "* 2 EXISTS\r\n* 2 RECENT\r\n",
            "a4 OK [READ-WRITE] SELECT completed",
            "* 1 FETCH (UID 1 FLAGS (\\Recent) RFC822.SIZE 65)\r\n",
            "* 2 FETCH (UID 2 FLAGS (\\Recent) RFC822.SIZE 31)\r\n",
            "* 1 FETCH (BODY[HEADER.FIELDS (SUBJECT)] {18}\r\nSubject: first\r\n\r\n ENVELOPE (NIL \"first\" ((NIL NIL \"a\" \"b.test\"))",
            "* 2 FETCH (UID 2 BODY[] {31}\r\nSubject: second\r\n\r\nworld wide\r\n FLAGS (\\Seen \\Recent))",
            "* 1 FETCH (FLAGS (\\Deleted \\Recent))",
            "* SEARCH 1\r\n",
            "* SEARCH 2\r\n",
            "b2 OK [COPYUID ",
            "* 1 EXPUNGE\r\nb3 OK",
            "+ Ready for literal data\r\n",
            "b4 OK [APPENDUID ",
            "* STATUS Sent (MESSAGES 1 UIDNEXT 2 UNSEEN 0)",
            "* OK [COPYUID ",
            "b6 OK MOVE completed",
            "* 1 FETCH (FLAGS (\\Seen) BODY[TEXT]<0> {5}\r\nworld)",
            "* BYE",
            "b9 OK LOGOUT completed",
        ] {
            assert!(
                out.contains(want),
                "chunk size {size}: {want:?} missing in:\n{out}"
            );
        }
        assert!(h.closed);
        // What the store holds: the moved message \Seen in Archive, INBOX empty, one in Trash.
        let a = h.account.lock().unwrap();
        let archive = a.flags("Archive");
        assert_eq!(archive.len(), 1);
        assert!(archive[0].1.contains(Flag::Seen));
        assert!(a.flags("INBOX").is_empty());
        assert_eq!(a.flags("Trash").len(), 1);
    }
}

#[test]
fn plaintext_login_is_refused_when_not_allowed() {
    let mut h = Harness::new(false);
    assert!(String::from_utf8_lossy(&h.s.greeting()).contains("LOGINDISABLED"));
    let out = h.run("a LOGIN alice@example.test secret\r\nb AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\nc STARTTLS\r\nd NOOP\r\n", 0);
    assert!(out.contains("a NO [PRIVACYREQUIRED]"), "{out}");
    assert!(out.contains("b NO [PRIVACYREQUIRED]"), "{out}");
    assert!(out.contains("c OK Begin TLS"), "{out}");
    // Pipelined after STARTTLS: dropped, never answered.
    assert!(!out.contains("d OK"), "{out}");
    assert!(h.tls_started);
    let out = h.run(
        "e AUTHENTICATE PLAIN\r\nAGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQ=\r\nf CAPABILITY\r\n",
        0,
    );
    assert!(out.contains("+ \r\ne OK [CAPABILITY"), "{out}");
    assert!(
        !out.contains("STARTTLS") && !out.contains("LOGINDISABLED"),
        "{out}"
    );
}

#[test]
fn failed_logins_and_commands_before_login() {
    let mut h = Harness::new(true);
    let out = h.run(
        "a LOGIN alice@example.test wrong\r\nb SELECT INBOX\r\nc LOGIN nobody@x secret\r\n",
        0,
    );
    assert!(out.contains("a NO [AUTHENTICATIONFAILED]"), "{out}");
    assert!(out.contains("b BAD Log in first"), "{out}");
    assert!(out.contains("c NO [AUTHENTICATIONFAILED]"), "{out}");
    assert_eq!(h.s.failed_logins, 2);
}

#[test]
fn an_overlong_literal_is_refused_before_it_is_read() {
    let mut h = Harness::new(true);
    let out = h.run(
        "a LOGIN alice@example.test secret\r\nb APPEND INBOX {5000}\r\nc NOOP\r\n",
        0,
    );
    assert!(out.contains("b NO [TOOBIG]"), "{out}");
    assert!(!out.contains("+ Ready"), "{out}");
    assert!(out.contains("c OK NOOP"), "{out}");
    // A non-synchronizing one comes anyway: read, dropped, refused, and the session goes on.
    let big = "x".repeat(5000);
    let out = h.run(
        &format!("d APPEND INBOX {{5000+}}\r\n{big}\r\ne NOOP\r\n"),
        512,
    );
    assert!(out.contains("d NO [TOOBIG]"), "{out}");
    assert!(out.contains("e OK NOOP"), "{out}");
    assert_eq!(h.account.lock().unwrap().flags("INBOX").len(), 2);
}

#[test]
fn bad_commands_are_counted_then_bye() {
    let mut h = Harness::new(true);
    let long = format!("x NOOP {}\r\n", "a".repeat(300));
    let script =
        format!("a FOO\r\nb LOGIN (\r\n{long}c LIST \"unbalanced\r\nd SELECT\r\ne NOOP\r\n");
    let out = h.run(&script, 0);
    assert!(out.contains("a BAD Unknown command"), "{out}");
    assert!(out.contains("b BAD Syntax error"), "{out}");
    assert!(out.contains("x BAD Command line over 200 octets"), "{out}");
    assert!(out.contains("* BYE Too many invalid commands"), "{out}");
    assert!(!out.contains("e OK"), "{out}");
    assert!(h.closed);
}

#[test]
fn huge_sequence_sets_and_idle() {
    let mut h = Harness::new(true);
    let out = h.run("a LOGIN alice@example.test secret\r\nb SELECT INBOX\r\nc FETCH 1:4294967295 UID\r\nd UID FETCH *:* UID\r\ne FETCH 3 UID\r\nf IDLE\r\n", 0);
    assert!(out.contains("* 2 FETCH (UID 2)\r\nc OK"), "{out}");
    assert!(out.contains("* 2 FETCH (UID 2)\r\nd OK"), "{out}");
    assert!(out.contains("e BAD"), "{out}");
    assert!(out.contains("+ idling"), "{out}");
    assert!(h.s.is_idle());
    // A delivery while idling is reported when the driver polls.
    h.account.lock().unwrap().deliver(b"Subject: 3\n\nx\n");
    let mut out = Vec::new();
    let ev = h.s.idle_poll();
    h.events(ev, &mut out);
    assert!(
        String::from_utf8_lossy(&out).contains("* 3 EXISTS"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let out = h.run("DONE\r\ng NOOP\r\n", 1);
    assert!(out.contains("f OK IDLE terminated\r\ng OK"), "{out}");
}

/// While idling the store may sleep (the fake panics if the engine reads it then): changes by
/// another session reach the idler at a poll, a poll with nothing new says nothing, and DONE or
/// any other line wakes the folder for the next commands.
#[test]
fn an_idling_session_sleeps_and_wakes_on_changes_done_or_any_line() {
    let mut h = Harness::new(true);
    let mut other = Harness::on(&h.account, true);
    other.run(
        "o1 LOGIN alice@example.test secret\r\no2 SELECT INBOX\r\n",
        0,
    );
    let out = h.run(
        "a LOGIN alice@example.test secret\r\nb SELECT INBOX\r\nc IDLE\r\n",
        1,
    );
    assert!(out.contains("+ idling"), "{out}");
    let mut quiet = Vec::new();
    let ev = h.s.idle_poll();
    h.events(ev, &mut quiet);
    assert!(quiet.is_empty(), "{}", String::from_utf8_lossy(&quiet));
    let out = other.run("o3 STORE 1 +FLAGS (\\Flagged)\r\n", 0);
    assert!(out.contains("o3 OK"), "{out}");
    let mut out = Vec::new();
    let ev = h.s.idle_poll();
    h.events(ev, &mut out);
    let out = String::from_utf8_lossy(&out);
    assert!(out.contains("* 1 FETCH (UID 1 FLAGS (\\Flagged))"), "{out}");
    let out = other.run("o4 STORE 1 -FLAGS (\\Flagged)\r\n", 0);
    assert!(out.contains("o4 OK"), "{out}");
    // Not DONE: refused, and the session is out of IDLE with its folder awake.
    let out = h.run("d NOOP\r\ne FETCH 1:* (FLAGS)\r\nf IDLE\r\n", 1);
    assert!(out.contains("c BAD Expected DONE"), "{out}");
    assert!(out.contains("* 1 FETCH (FLAGS ())\r\n"), "{out}");
    assert!(out.contains("* 2 FETCH (FLAGS ())\r\ne OK"), "{out}");
    h.account.lock().unwrap().deliver(b"Subject: late\n\nx\n");
    let out = h.run("DONE\r\ng FETCH 3 (UID)\r\nh LOGOUT\r\n", 1);
    assert!(out.contains("* 3 EXISTS"), "{out}");
    assert!(out.contains("f OK IDLE terminated"), "{out}");
    assert!(out.contains("* 3 FETCH (UID 3)\r\ng OK"), "{out}");
}

#[test]
fn folder_names_that_leave_the_account_are_refused() {
    let mut h = Harness::new(true);
    let out = h.run("a LOGIN alice@example.test secret\r\nb CREATE \"../../etc\"\r\nc CREATE \"a/b\"\r\nd CREATE Work\r\ne CREATE Work.2026\r\nf LIST \"\" \"Work*\"\r\ng SELECT \"..\"\r\n", 0);
    assert!(out.contains("b NO [CANNOT]"), "{out}");
    assert!(out.contains("c NO [CANNOT]"), "{out}");
    assert!(out.contains("d OK") && out.contains("e OK"), "{out}");
    assert!(
        out.contains("* LIST (\\HasChildren) \".\" Work\r\n"),
        "{out}"
    );
    assert!(out.contains("g NO [CANNOT]"), "{out}");
}

#[test]
fn changes_by_one_session_reach_another_at_its_next_command() {
    let mut a = Harness::new(true);
    let mut b = Harness::on(&a.account, true);
    let login = "l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\n";
    a.run(login, 0);
    assert!(b.run(login, 0).contains("* 2 EXISTS"));
    a.run(
        "x STORE 2 +FLAGS (\\Flagged)\r\ny STORE 1 +FLAGS (\\Deleted)\r\nz EXPUNGE\r\n",
        0,
    );
    a.account.lock().unwrap().deliver(b"Subject: new\n\nnew\n");
    // FETCH by sequence number may not renumber (RFC 3501 7.4.1): nothing is reported there.
    let out = b.run("f FETCH 1 UID\r\n", 0);
    assert!(!out.contains("EXPUNGE"), "{out}");
    let out = b.run("n NOOP\r\n", 0);
    assert!(out.contains("* 1 EXPUNGE\r\n* 2 EXISTS\r\n"), "{out}");
    assert!(out.contains("* 1 FETCH (UID 2 FLAGS (\\Flagged))"), "{out}");
    let out = b.run("u UID FETCH 1:* (UID FLAGS)\r\n", 0);
    assert!(out.contains("* 2 FETCH (UID 3 FLAGS (\\Recent))"), "{out}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    /// Arbitrary bytes, before and after login, never panic the engine.
    #[test]
    fn arbitrary_bytes_never_panic(junk in proptest::collection::vec(any::<u8>(), 0..600), split in 1usize..50) {
        let mut h = Harness::new(true);
        let mut out = Vec::new();
        for chunk in junk.chunks(split) {
            let ev = h.s.feed(chunk);
            h.events(ev, &mut out);
        }
        let mut h = Harness::new(true);
        h.run("a LOGIN alice@example.test secret\r\nb SELECT INBOX\r\n", 0);
        for chunk in junk.chunks(split) {
            let ev = h.s.feed(chunk);
            h.events(ev, &mut out);
        }
    }
}

/// One bad or extreme command after login and SELECT INBOX (two messages, max_line 200,
/// max_literal 1000), what the reply must contain, and what it must not.
const BAD_INPUT: &[(&str, &str, &str)] = &[
    ("FETCH 1:4294967295 UID", "* 2 FETCH (UID 2)\r\nt OK", ""),
    (
        "UID FETCH 4294967295:1 UID",
        "* 2 FETCH (UID 2)\r\nt OK",
        "",
    ),
    (
        "UID FETCH *:* UID",
        "* 2 FETCH (UID 2)\r\nt OK",
        "* 1 FETCH",
    ),
    ("UID SEARCH UID 1:4294967295", "* SEARCH 1 2\r\nt OK", ""),
    (
        "SEARCH 1:4294967295,1:4294967295",
        "* SEARCH 1 2\r\nt OK",
        "",
    ),
    (
        "UID STORE 1:4294967295 +FLAGS.SILENT (\\Seen)",
        "t OK",
        "FETCH",
    ),
    ("UID COPY 3:4294967295 Trash", "t OK", "COPYUID"),
    ("FETCH 0 UID", "t BAD", "FETCH (UID"),
    ("FETCH 3 UID", "t BAD", "FETCH (UID"),
    ("FETCH 4294967296 UID", "t BAD", "FETCH (UID"),
    ("FETCH 1 (UID FLAGS", "t BAD", "FETCH (UID"),
    ("FETCH 1 UID)", "t BAD", "FETCH (UID"),
    ("SEARCH SUBJECT \"unterminated", "t BAD", "* SEARCH"),
    (
        "SEARCH (((((((((((((((((((((((((((((((((((((((((((ALL",
        "t BAD",
        "* SEARCH",
    ),
    ("SEARCH NOT NOT NOT ALL", "* SEARCH\r\nt OK", ""),
    // imap-codec's recursion limit: deep nesting is a syntax error, not a deep stack.
    (
        "SEARCH NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT NOT ALL",
        "t BAD",
        "* SEARCH",
    ),
    ("STORE 1 +FLAGS (\\Seen", "t BAD", "FETCH"),
    ("LOGIN \"a\" \"b", "t BAD", ""),
    // An empty line is skipped.
    ("", "z OK", "BAD"),
    ("t", "BAD", ""),
    ("t NOOP\0", "t BAD", "t OK"),
    ("t CREATE ../x", "t NO", "t OK"),
    ("t CREATE a/b", "t NO", "t OK"),
    ("t CREATE ..", "t NO", "t OK"),
    ("t CREATE .hidden", "t NO", "t OK"),
    ("t CREATE \"a\\\\b\"", "t NO", "t OK"),
    ("t CREATE {3}\r\na\u{1}b", "t NO", "t OK"),
    ("t SELECT \"../..\"", "t NO", "t OK"),
    ("t RENAME Trash ../../etc", "t NO", "t OK"),
    ("t DELETE INBOX", "t NO", "t OK"),
    ("t STATUS \"/etc\" (MESSAGES)", "t NO", "* STATUS"),
    ("t APPEND INBOX {1001}", "t NO [TOOBIG]", "+ "),
    // STATUS=SIZE (RFC 8438): the octets FETCH RFC822.SIZE gives, summed (65 + 31).
    (
        "STATUS INBOX (MESSAGES SIZE)",
        "* STATUS INBOX (MESSAGES 2 SIZE 96)\r\nt OK",
        "",
    ),
    (
        "LIST \"\" INBOX RETURN (STATUS (SIZE))",
        "* STATUS INBOX (SIZE 96)\r\nt OK",
        "",
    ),
    // BINARY (RFC 3516): APPEND takes a literal8; section syntax BINARY does not have is BAD.
    ("t APPEND INBOX ~{5}\r\nx\r\nyz", "t OK [APPENDUID", ""),
    ("t APPEND INBOX ~{5+}\r\nx\u{0}\r\nz", "t OK [APPENDUID", ""),
    ("FETCH 1 BINARY.PEEK[1.MIME]", "t BAD", "FETCH ("),
    ("FETCH 1 BINARY.PEEK[HEADER]", "t BAD", "FETCH ("),
    ("FETCH 1 BINARY.SIZE[1]<0.5>", "t BAD", "FETCH ("),
    ("FETCH 1 BINARY[0]", "t BAD", "FETCH ("),
    ("FETCH 1 BINARY.PEEK[1", "t BAD", "FETCH ("),
    (
        "FETCH 1 BINARY.PEEK[9.9.9]",
        "* 1 FETCH (BINARY[9.9.9] {0}\r\n)\r\nt OK",
        "",
    ),
    // SEARCH RETURN (RFC 4731): unknown or malformed options are BAD, never a half answer.
    (
        "SEARCH RETURN (COUNT) ALL",
        "* ESEARCH (TAG \"t\") COUNT 2\r\nt OK",
        "",
    ),
    ("SEARCH RETURN (SAVE) ALL", "t OK", "ESEARCH"),
    (
        "SEARCH RETURN (FROB) ALL",
        "t BAD Unknown SEARCH RETURN",
        "ESEARCH",
    ),
    ("UID SEARCH RETURN (PARTIAL 1:10) ALL", "t BAD", "ESEARCH"),
    ("SEARCH RETURN (MIN ALL", "t BAD Malformed", "ESEARCH"),
    ("SEARCH RETURN ((((((((((MIN ALL", "t BAD", "ESEARCH"),
    ("SEARCH RETURN (MIN)) ALL", "t BAD", "ESEARCH"),
    ("SEARCH RETURN (MIN) ", "t BAD", "ESEARCH"),
    ("SEARCH RETURN MIN ALL", "t BAD", "ESEARCH"),
    ("SEARCH RETURN", "t BAD", "ESEARCH"),
    ("SEARCH RETURN (MIN) NOSUCHKEY", "t BAD", "ESEARCH"),
    ("SEARCH RETURN (MIN) SUBJECT \"open", "t BAD", "ESEARCH"),
    ("SEARCH RETURN (\u{0}) ALL", "t BAD", "ESEARCH"),
    // LIST-EXTENDED (RFC 5258): unknown or malformed options are BAD, and nothing is listed.
    (
        "LIST (FROB) \"\" *",
        "t BAD Unknown LIST selection",
        "* LIST",
    ),
    (
        "LIST (RECURSIVEMATCH) \"\" *",
        "t BAD RECURSIVEMATCH",
        "* LIST",
    ),
    ("LIST (SUBSCRIBED \"\" *", "t BAD", "* LIST"),
    ("LIST \"\" (INBOX Sent", "t BAD", "* LIST"),
    ("LIST \"\" () RETURN (CHILDREN)", "t BAD", "* LIST"),
    (
        "LIST \"\" * RETURN (FROB)",
        "t BAD Unknown LIST return",
        "* LIST",
    ),
    (
        "LIST \"\" * RETURN (STATUS (HIGHESTMODSEQ))",
        "t BAD Unknown STATUS",
        "* LIST",
    ),
    ("LIST \"\" * RETURN (STATUS MESSAGES)", "t BAD", "* LIST"),
    ("LIST \"\" * RETURN (CHILDREN) extra", "t BAD", "* LIST"),
    ("LIST \"\" * RETURN ((((((((((", "t BAD", "* LIST"),
    ("LIST (SUBSCRIBED) \"\" \"unterminated", "t BAD", "* LIST"),
    (
        "LIST (SUBSCRIBED) \"\" {4}\r\nSent",
        "* LIST (\\HasNoChildren \\Sent \\Subscribed) \".\" Sent\r\n",
        "",
    ),
    ("t APPEND INBOX {4294967296}", "t BAD", "+ "),
    (
        "t APPEND INBOX (\\Seen \\Flagged) \"01-Jan-2020 00:00:00 +0000\" {5}\r\nx\r\nyz",
        "t OK [APPENDUID",
        "",
    ),
];

#[test]
fn bad_input_table_fed_whole_byte_by_byte_and_in_pieces() {
    for &(cmd, want, never) in BAD_INPUT {
        let line = if cmd.starts_with("t ") || cmd.is_empty() || cmd == "t" {
            format!("{cmd}\r\n")
        } else {
            format!("t {cmd}\r\n")
        };
        let mut outs = Vec::new();
        for size in [0, 1, 3, 17] {
            let mut h = Harness::new(true);
            let login = h.run("l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\n", 0);
            assert!(login.contains("s OK"), "{login}");
            let out = h.run(&format!("{line}z NOOP\r\n"), size);
            assert!(out.contains(want), "{cmd:?} (size {size}): {out}");
            assert!(
                never.is_empty() || !out.contains(never),
                "{cmd:?} (size {size}): {out}"
            );
            assert!(out.contains("z OK"), "{cmd:?} (size {size}): {out}");
            assert!(!h.closed, "{cmd:?}");
            outs.push(out);
        }
        // However the bytes arrive, the replies are the same.
        assert!(outs.windows(2).all(|w| w[0] == w[1]), "{cmd:?}: {outs:?}");
    }
}

#[test]
fn an_overlong_line_is_bad_whole_and_in_pieces_and_its_tail_never_runs() {
    for size in [0, 1, 100] {
        let mut h = Harness::new(true);
        h.run("l LOGIN alice@example.test secret\r\n", 0);
        let long = format!("a SEARCH SUBJECT {} \r\nb LOGOUT\r\n", "x".repeat(10_000));
        let out = h.run(&long, size);
        assert!(out.starts_with("a NO [TOOBIG]"), "size {size}: {out}");
        assert!(out.contains("b OK"), "size {size}: {out}");
        assert!(!out.contains("BAD"), "size {size}: {out}");
    }
}

#[test]
fn keywords_are_stored_fetched_and_searched() {
    let mut h = Harness::new(true);
    let out = h.run("l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\n", 0);
    assert!(
        out.contains("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]"),
        "{out}"
    );
    let out = h.run("a STORE 1 +FLAGS ($Forwarded Junk \\Seen)\r\n", 1);
    assert!(
        out.contains("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded Junk)\r\n"),
        "{out}"
    );
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Seen \\Recent $Forwarded Junk))\r\na OK"),
        "{out}"
    );
    let out = h.run(
        "b SEARCH KEYWORD junk\r\nc SEARCH UNKEYWORD Junk\r\nd STORE 1 -FLAGS (JUNK)\r\ne FETCH 1 FLAGS\r\nf SEARCH KEYWORD Nope\r\n",
        0,
    );
    assert!(out.contains("* SEARCH 1\r\nb OK"), "{out}");
    assert!(out.contains("* SEARCH 2\r\nc OK"), "{out}");
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Seen \\Recent $Forwarded))\r\nd OK"),
        "{out}"
    );
    assert!(out.contains("* SEARCH\r\nf OK"), "{out}");
    // FLAGS replaces keywords too.
    let out = h.run("g STORE 1 FLAGS (\\Flagged)\r\n", 0);
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Flagged \\Recent))"),
        "{out}"
    );
}

/// SEARCH RETURN (RFC 4731) in one session, fed whole, byte by byte and in pieces: MIN, MAX,
/// COUNT and ALL (as a sequence set), by sequence number and by UID, no hits, CHARSET and a
/// literal after the options; a plain SEARCH still answers `* SEARCH`.
#[test]
fn esearch_fed_whole_byte_by_byte_and_in_pieces() {
    const SCRIPT: &[(&str, &str)] = &[
        (
            "a SEARCH RETURN (MIN MAX COUNT ALL) UNSEEN",
            "* ESEARCH (TAG \"a\") MIN 2 MAX 4 COUNT 2 ALL 2,4\r\na OK",
        ),
        (
            "b UID SEARCH RETURN (ALL) ALL",
            "* ESEARCH (TAG \"b\") UID ALL 1:4\r\nb OK",
        ),
        (
            "c search return () SEEN",
            "* ESEARCH (TAG \"c\") ALL 1,3\r\nc OK",
        ),
        (
            "d UID SEARCH RETURN (MIN MAX COUNT ALL) SUBJECT nothing",
            "* ESEARCH (TAG \"d\") UID COUNT 0\r\nd OK",
        ),
        (
            "e UID SEARCH RETURN (MIN) SUBJECT nothing",
            "* ESEARCH (TAG \"e\") UID\r\ne OK",
        ),
        (
            "f SEARCH RETURN (COUNT) CHARSET UTF-8 SUBJECT {6}\r\nsecond",
            "* ESEARCH (TAG \"f\") COUNT 1\r\nf OK",
        ),
        (
            "g SEARCH RETURN (MAX MIN) 1,3",
            "* ESEARCH (TAG \"g\") MIN 1 MAX 3\r\ng OK",
        ),
        ("h SEARCH UNSEEN", "* SEARCH 2 4\r\nh OK"),
        (
            "i UID SEARCH RETURN (COUNT) UID 3:*",
            "* ESEARCH (TAG \"i\") UID COUNT 2\r\ni OK",
        ),
    ];
    let script: String = SCRIPT.iter().map(|(c, _)| format!("{c}\r\n")).collect();
    for size in [0, 1, 5, 64] {
        let mut h = Harness::new(true);
        {
            let mut a = h.account.lock().unwrap();
            a.deliver(b"Subject: third\n\nthree\n");
            a.deliver(b"Subject: fourth\n\nfour\n");
        }
        let out = h.run(
            "l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\nx STORE 1,3 +FLAGS.SILENT (\\Seen)\r\n",
            0,
        );
        assert!(out.contains("x OK"), "{out}");
        let caps = h.run("k CAPABILITY\r\n", 0);
        assert!(caps.contains(" ESEARCH"), "{caps}");
        let out = h.run(&script, size);
        for (cmd, want) in SCRIPT {
            assert!(
                out.contains(want),
                "size {size}: {cmd:?} wants {want:?} in:\n{out}"
            );
        }
        assert!(!out.contains("BAD"), "size {size}: {out}");
    }
    // Before SELECT, and before login.
    let mut h = Harness::new(true);
    let out = h.run("a SEARCH RETURN (ALL) ALL\r\nl LOGIN alice@example.test secret\r\nb UID SEARCH RETURN (ALL) ALL\r\n", 1);
    assert!(out.contains("a BAD Log in first"), "{out}");
    assert!(out.contains("b BAD Select a folder first"), "{out}");
}

/// LIST-EXTENDED (RFC 5258), LIST-STATUS (RFC 5819) and the SPECIAL-USE selection (RFC 6154) in
/// one session, fed whole, byte by byte and in pieces.
#[test]
fn list_extended_and_list_status_fed_whole_byte_by_byte_and_in_pieces() {
    const SETUP: &str = "l LOGIN alice@example.test secret\r\n\
        c1 CREATE Work\r\nc2 CREATE Work.2026\r\nc3 SUBSCRIBE Work.2026\r\n\
        c4 UNSUBSCRIBE Trash\r\nc5 SUBSCRIBE Gone\r\nc6 UNSUBSCRIBE Work\r\n";
    #[rustfmt::skip]
    const SCRIPT: &[(&str, &[&str], &[&str])] = &[
        (
            "a LIST (SUBSCRIBED SPECIAL-USE) \"\" \"*\" RETURN (SUBSCRIBED CHILDREN SPECIAL-USE STATUS (MESSAGES UNSEEN UIDNEXT UIDVALIDITY))",
            &[
                "* LIST (\\HasNoChildren \\Sent \\Subscribed) \".\" Sent\r\n* STATUS Sent (MESSAGES 0 UNSEEN 0 UIDNEXT 1 UIDVALIDITY 1004)\r\n",
                "* LIST (\\HasNoChildren \\Archive \\Subscribed) \".\" Archive\r\n* STATUS Archive (MESSAGES 0 ",
                "\\Drafts", "\\Junk", "a OK LIST completed",
            ],
            &["\" INBOX", "Trash", "Work", "Gone"],
        ),
        (
            "b LIST (SUBSCRIBED) \"\" *",
            &[
                "* LIST (\\HasNoChildren \\Subscribed) \".\" INBOX\r\n",
                "* LIST (\\NonExistent \\HasNoChildren \\Subscribed) \".\" Gone\r\n",
                "* LIST (\\HasNoChildren \\Subscribed) \".\" Work.2026\r\n",
            ],
            &["Trash", "\" Work\r\n", "STATUS"],
        ),
        (
            "c LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %",
            &[
                "* LIST (\\HasChildren) \".\" Work (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n",
                "* LIST (\\HasNoChildren \\Sent \\Subscribed) \".\" Sent\r\n",
            ],
            &["Work.2026", "Trash"],
        ),
        (
            "d LIST \"\" (inbox Work*) RETURN (STATUS (MESSAGES UNSEEN))",
            &[
                "* LIST (\\HasNoChildren \\Subscribed) \".\" INBOX\r\n* STATUS INBOX (MESSAGES 2 UNSEEN 2)\r\n",
                "* LIST (\\HasChildren) \".\" Work\r\n* STATUS Work (MESSAGES 0 UNSEEN 0)\r\n",
                "* LIST (\\HasNoChildren \\Subscribed) \".\" Work.2026\r\n* STATUS Work.2026 (",
            ],
            &["Sent", "Gone"],
        ),
        (
            "e LIST () \"\" % RETURN (CHILDREN)",
            &["* LIST (\\HasNoChildren \\Trash) \".\" Trash\r\n", "* LIST (\\HasChildren) \".\" Work\r\n"],
            &["Gone", "Work.2026", "STATUS"],
        ),
        (
            "f LIST (SPECIAL-USE) \"\" * RETURN (SPECIAL-USE)",
            &["* LIST (\\HasNoChildren \\Trash) \".\" Trash\r\n", "\\Sent"],
            &["INBOX", "Work", "Gone"],
        ),
        (
            "g LIST (REMOTE) Work. %",
            &["* LIST (\\HasNoChildren \\Subscribed) \".\" Work.2026\r\n"],
            &["Sent"],
        ),
        (
            "h LIST \"\" \"\" RETURN (CHILDREN)",
            &["* LIST (\\Noselect) \".\" \"\"\r\nh OK"],
            &[],
        ),
    ];
    for size in [0, 1, 5, 64] {
        let mut h = Harness::new(true);
        let out = h.run(SETUP, 0);
        assert_eq!(out.matches(" OK ").count(), 7, "{out}");
        let caps = h.run("k CAPABILITY\r\n", 0);
        assert!(caps.contains(" LIST-EXTENDED LIST-STATUS"), "{caps}");
        for (cmd, want, never) in SCRIPT {
            let out = h.run(&format!("{cmd}\r\n"), size);
            for w in *want {
                assert!(
                    out.contains(w),
                    "size {size}: {cmd:?} wants {w:?} in:\n{out}"
                );
            }
            for n in *never {
                assert!(
                    !out.contains(n),
                    "size {size}: {cmd:?} never {n:?} in:\n{out}"
                );
            }
            assert!(!out.contains("BAD"), "size {size}: {out}");
        }
    }
    let mut h = Harness::new(true);
    let out = h.run("a LIST (SUBSCRIBED) \"\" *\r\n", 1);
    assert!(out.contains("a BAD Log in first"), "{out}");
}

/// BINARY, BINARY.PEEK and BINARY.SIZE (RFC 3516) fed whole, byte by byte and in pieces:
/// base64 and quoted-printable parts decoded (a NUL makes the answer a literal8), partial
/// ranges of the decoded bytes, \Seen set by BINARY only, an unknown encoding is NO.
#[test]
fn binary_fetch_fed_whole_byte_by_byte_and_in_pieces() {
    const MIME: &[u8] = b"Subject: parts\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"B\"\n\n--B\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\ncaf=C3=A9 =\nau lait\n--B\nContent-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\nAAEC\nAw==\n--B\nContent-Type: text/plain\nContent-Transfer-Encoding: x-uuencode\n\nbegin 644 x\n--B--\n";
    #[rustfmt::skip]
    const SCRIPT: &[(&str, &str)] = &[
        ("a FETCH 3 (BINARY.PEEK[2] BINARY.SIZE[2])", "* 3 FETCH (BINARY[2] ~{4}\r\n\u{0}\u{1}\u{2}\u{3} BINARY.SIZE[2] 4)\r\na OK"),
        ("b FETCH 3 (BINARY.PEEK[1] BINARY.SIZE[1])", "* 3 FETCH (BINARY[1] {13}\r\ncaf\u{e9} au lait BINARY.SIZE[1] 13)\r\nb OK"),
        ("c FETCH 3 FLAGS", "* 3 FETCH (FLAGS (\\Recent))\r\nc OK"),
        ("d FETCH 3 BINARY.PEEK[3]", "d NO [UNKNOWN-CTE]"),
        // Not a PEEK: refused before \Seen is set.
        ("d2 FETCH 3 BINARY[3]", "d2 NO [UNKNOWN-CTE]"),
        ("e FETCH 3 FLAGS", "* 3 FETCH (FLAGS (\\Recent))\r\ne OK"),
        ("f UID FETCH 3 BINARY[1]<3.5>", "* 3 FETCH (UID 3 BINARY[1]<3> {5}\r\n\u{e9} au FLAGS (\\Seen \\Recent))\r\nf OK"),
        ("g FETCH 2 BINARY.PEEK[]", "* 2 FETCH (BINARY[] {31}\r\nSubject: second\r\n\r\nworld wide\r\n)\r\ng OK"),
        ("h FETCH 2 (BINARY.PEEK[1] BINARY.SIZE[1])", "* 2 FETCH (BINARY[1] {12}\r\nworld wide\r\n BINARY.SIZE[1] 12)\r\nh OK"),
        ("i FETCH 2 BINARY.SIZE[]", "* 2 FETCH (BINARY.SIZE[] 31)\r\ni OK"),
    ];
    let script: String = SCRIPT.iter().map(|(c, _)| format!("{c}\r\n")).collect();
    for size in [0, 1, 5, 64] {
        let mut h = Harness::new(true);
        h.account.lock().unwrap().deliver(MIME);
        let out = h.run(
            "l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\nk CAPABILITY\r\n",
            0,
        );
        assert!(out.contains(" BINARY") && out.contains("s OK"), "{out}");
        let out = h.run(&script, size);
        for (cmd, want) in SCRIPT {
            assert!(
                out.contains(want),
                "size {size}: {cmd:?} wants {want:?} in:\n{out}"
            );
        }
        assert!(!out.contains("BAD"), "size {size}: {out}");
    }
}

/// `ENABLE IMAP4rev2` (RFC 9051), fed whole, byte by byte and in pieces: no RECENT and no
/// \Recent, SELECT sends the folder's LIST line, SEARCH answers ESEARCH, a missing parent is
/// \NonExistent; `$` (SEARCHRES) is empty at first. The same commands without ENABLE keep rev1.
#[test]
fn imap4rev2_fed_whole_byte_by_byte_and_in_pieces() {
    #[rustfmt::skip]
    const REV2: &[(&str, &[&str], &[&str])] = &[
        ("e ENABLE X-NOTHING IMAP4rev2", &["* ENABLED IMAP4rev2\r\ne OK"], &["X-NOTHING\r\n"]),
        ("k CAPABILITY", &["* CAPABILITY IMAP4rev1 IMAP4rev2 "], &[]),
        (
            "s SELECT INBOX",
            &["* 2 EXISTS\r\n* LIST (\\HasNoChildren \\Subscribed) \".\" INBOX\r\n", "s OK [READ-WRITE]"],
            &["RECENT", "UNSEEN"],
        ),
        ("f FETCH 1:* FLAGS", &["* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS ())\r\nf OK"], &["Recent"]),
        ("a SEARCH UNSEEN", &["* ESEARCH (TAG \"a\") ALL 1:2\r\na OK"], &["* SEARCH"]),
        ("b UID SEARCH SUBJECT nothing", &["* ESEARCH (TAG \"b\") UID\r\nb OK"], &["* SEARCH"]),
        ("c SEARCH RETURN (COUNT) ALL", &["* ESEARCH (TAG \"c\") COUNT 2\r\nc OK"], &[]),
        ("d LIST \"\" %", &["* LIST (\\NonExistent \\HasChildren) \".\" Work\r\n", "d OK"], &["Work.2026", "Noselect"]),
        ("x UID FETCH $ FLAGS", &["x OK FETCH completed ($ is empty)"], &["x BAD"]),
        ("y STORE 1 +FLAGS (\\Seen)", &["* 1 FETCH (FLAGS (\\Seen))\r\ny OK"], &["Recent"]),
        // UTF-8 folder names on the wire, modified UTF-7 in the store.
        ("u1 CREATE \"Entw\u{fc}rfe\"", &["u1 OK"], &[]),
        ("u2 LIST \"\" \"Entw*\"", &["* LIST (\\HasNoChildren) \".\" {9}\r\nEntw\u{fc}rfe\r\nu2 OK"], &["&APw-"]),
        ("u3 STATUS {9+}\r\nEntw\u{fc}rfe (MESSAGES)", &["* STATUS {9}\r\nEntw\u{fc}rfe (MESSAGES 0)\r\nu3 OK"], &[]),
        ("u4 CREATE \"Tom & Jerry\"", &["u4 OK"], &[]),
        ("u6 LIST \"\" \"Tom*\" RETURN (STATUS (MESSAGES))", &["* LIST (\\HasNoChildren) \".\" \"Tom & Jerry\"\r\n* STATUS \"Tom & Jerry\" (MESSAGES 0)\r\nu6 OK"], &[]),
    ];
    let script: String = REV2.iter().map(|(c, _, _)| format!("{c}\r\n")).collect();
    for size in [0, 1, 5, 64] {
        let mut h = Harness::new(true);
        let out = h.run(
            "l LOGIN alice@example.test secret\r\nw CREATE Work.2026\r\n",
            0,
        );
        assert!(out.contains("w OK"), "{out}");
        let out = h.run(&script, size);
        for (cmd, want, never) in REV2 {
            for w in *want {
                assert!(
                    out.contains(w),
                    "size {size}: {cmd:?} wants {w:?} in:\n{out}"
                );
            }
            for n in *never {
                assert!(
                    !out.contains(n),
                    "size {size}: {cmd:?} never {n:?} in:\n{out}"
                );
            }
        }
        // New mail: EXISTS without RECENT.
        h.account.lock().unwrap().deliver(b"Subject: 3\n\nx\n");
        let out = h.run("n NOOP\r\n", size);
        assert_eq!(out, "* 3 EXISTS\r\nn OK NOOP completed\r\n", "size {size}");
        {
            let a = h.account.lock().unwrap();
            assert!(a.has_folder("Entw&APw-rfe") && a.has_folder("Tom &- Jerry"));
        }
        let out = h.run("v SELECT \"Entw\u{fc}rfe\"\r\n", size);
        assert!(
            out.contains("* LIST (\\HasNoChildren) \".\" {9}\r\nEntw\u{fc}rfe\r\n"),
            "{out}"
        );
    }
    // Without ENABLE (and with ENABLE only after SELECT), the session stays rev1.
    let mut h = Harness::new(true);
    let out = h.run(
        "e ENABLE IMAP4rev2\r\nl LOGIN alice@example.test secret\r\nw CREATE Work.2026\r\ns SELECT INBOX\r\n\
         e2 ENABLE IMAP4rev2\r\na SEARCH UNSEEN\r\nd LIST \"\" %\r\nf FETCH 1 FLAGS\r\n\
         u1 CREATE Entw&APw-rfe\r\nu2 CREATE \"Entw\u{fc}rfe\"\r\nu3 LIST \"\" Entw*\r\n",
        1,
    );
    for want in [
        "e BAD Log in first",
        "* 2 RECENT\r\n* OK [UNSEEN 1]",
        "* ENABLED\r\ne2 OK",
        "* SEARCH 1 2\r\na OK",
        "* LIST (\\Noselect \\HasChildren) \".\" Work\r\n",
        "* 1 FETCH (FLAGS (\\Recent))",
        "u1 OK",
        "u2 NO [CANNOT]",
        "* LIST (\\HasNoChildren) \".\" Entw&APw-rfe\r\nu3 OK",
    ] {
        assert!(out.contains(want), "{want:?} in:\n{out}");
    }
    assert!(
        !out.contains("* ESEARCH") && !out.contains("NonExistent"),
        "{out}"
    );
}

/// SEARCHRES (RFC 5182) fed whole, byte by byte and in pieces: SAVE alone answers nothing, `$`
/// in FETCH, STORE and SEARCH (by UID and by sequence number), SAVE with MIN, an empty `$`, a
/// refused SAVE empties `$`, expunged messages leave it, SELECT empties it.
#[test]
fn searchres_fed_whole_byte_by_byte_and_in_pieces() {
    #[rustfmt::skip]
    const SCRIPT: &[(&str, &[&str], &[&str])] = &[
        ("a SEARCH RETURN (SAVE) UNSEEN", &["a OK"], &["* ESEARCH (TAG \"a\")"]),
        ("b FETCH $ UID", &["* 2 FETCH (UID 2)\r\n* 3 FETCH (UID 3)\r\n* 4 FETCH (UID 4)\r\nb OK"], &["* 1 FETCH (UID"]),
        ("c UID SEARCH RETURN (ALL) $ SUBJECT third", &["* ESEARCH (TAG \"c\") UID ALL 3\r\nc OK"], &[]),
        ("d STORE $ +FLAGS.SILENT (\\Flagged)", &["d OK"], &[]),
        ("e SEARCH FLAGGED", &["* SEARCH 2 3 4\r\ne OK"], &[]),
        ("f SEARCH RETURN (SAVE MIN) UNSEEN", &["* ESEARCH (TAG \"f\") MIN 2\r\nf OK"], &[]),
        ("g UID FETCH $ UID", &["* 2 FETCH (UID 2)\r\ng OK"], &["* 3 FETCH (UID"]),
        ("h SEARCH RETURN (SAVE) SUBJECT nothing", &["h OK"], &[]),
        ("i FETCH $ UID", &["i OK FETCH completed ($ is empty)"], &[]),
        ("j SEARCH NOT $", &["* SEARCH 1 2 3 4\r\nj OK"], &[]),
        ("k1 SEARCH RETURN (SAVE) ALL", &["k1 OK"], &[]),
        ("k2 SEARCH RETURN (SAVE) FROB", &["k2 BAD"], &[]),
        ("k3 UID COPY $ Trash", &["k3 OK COPY completed ($ is empty)"], &[]),
        ("l1 SEARCH RETURN (SAVE) ALL", &["l1 OK"], &[]),
        ("l2 STORE 1 +FLAGS.SILENT (\\Deleted)", &["l2 OK"], &[]),
        ("l3 EXPUNGE", &["* 1 EXPUNGE\r\nl3 OK"], &[]),
        ("l4 FETCH $ UID", &["* 1 FETCH (UID 2)\r\n* 2 FETCH (UID 3)\r\n* 3 FETCH (UID 4)\r\nl4 OK"], &[]),
        ("m EXAMINE INBOX", &["m OK"], &[]),
        ("n UID FETCH $ UID", &["n OK FETCH completed ($ is empty)"], &["FETCH (UID"]),
    ];
    let script: String = SCRIPT.iter().map(|(c, _, _)| format!("{c}\r\n")).collect();
    for size in [0, 1, 5, 64] {
        let mut h = Harness::new(true);
        {
            let mut a = h.account.lock().unwrap();
            a.deliver(b"Subject: third\n\nthree\n");
            a.deliver(b"Subject: fourth\n\nfour\n");
        }
        let out = h.run(
            "l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\nx STORE 1 +FLAGS.SILENT (\\Seen)\r\ncap CAPABILITY\r\n",
            0,
        );
        assert!(out.contains("x OK") && out.contains(" SEARCHRES"), "{out}");
        let out = h.run(&script, size);
        let mut rest = out.as_str();
        for (cmd, want, never) in SCRIPT {
            // Each command's part of the output: up to and with its tagged line.
            let tag = cmd.split(' ').next().unwrap_or("");
            let start = if rest.starts_with(&format!("{tag} ")) {
                Some(0)
            } else {
                rest.find(&format!("\n{tag} ")).map(|i| i + 1)
            };
            let end = start
                .and_then(|i| rest[i..].find("\r\n").map(|j| i + j + 2))
                .unwrap_or_else(|| panic!("size {size}: no reply to {cmd:?} in:\n{out}"));
            let part = &rest[..end];
            for w in *want {
                assert!(
                    part.contains(w),
                    "size {size}: {cmd:?} wants {w:?} in:\n{part}"
                );
            }
            for n in *never {
                assert!(
                    !part.contains(n),
                    "size {size}: {cmd:?} never {n:?} in:\n{part}"
                );
            }
            rest = &rest[end..];
        }
    }
}

#[test]
fn a_proxy_header_or_http_request_ends_the_session() {
    for (input, kind) in [
        (
            "PROXY TCP4 192.0.2.1 127.0.0.1 4000 143\r\na1 CAPABILITY\r\n",
            "Proxy",
        ),
        ("\r\n\r\n\0\r\nQUIT\n", "Proxy"),
        ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "Http"),
    ] {
        for size in [0, 1, 5] {
            let mut h = Harness::new(true);
            let out = h.run(input, size);
            assert!(h.closed, "{input:?} in pieces of {size}: {out}");
            assert!(
                out.starts_with(&format!("<{kind}>* BYE ")),
                "{input:?}: {out}"
            );
            assert!(
                !out.contains("CAPABILITY"),
                "nothing after it is served: {out}"
            );
        }
    }
}
