//! CONDSTORE and QRESYNC (RFC 7162) over the in-memory store: one session's transcript fed
//! whole, byte by byte and in pieces, and two sessions on one folder.

use super::*;

/// (command, what the replies must hold, what they must not).
#[rustfmt::skip]
const SCRIPT: &[(&str, &[&str], &[&str])] = &[
    ("e ENABLE QRESYNC", &["* ENABLED CONDSTORE QRESYNC\r\ne OK"], &[]),
    ("s SELECT INBOX (CONDSTORE)", &["* OK [HIGHESTMODSEQ 3] ", "s OK [READ-WRITE]"], &["NOMODSEQ"]),
    ("f FETCH 1:* (FLAGS MODSEQ)", &["* 1 FETCH (FLAGS (\\Recent) MODSEQ (2))", "* 2 FETCH (FLAGS (\\Recent) MODSEQ (3))"], &[]),
    ("t STORE 1 +FLAGS (\\Flagged)", &["* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (4))\r\nt OK"], &[]),
    // CHANGEDSINCE implies MODSEQ and leaves out what did not change.
    ("c FETCH 1:* (FLAGS) (CHANGEDSINCE 3)", &["* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (4))\r\nc OK"], &["* 2 FETCH"]),
    // Message 1 changed after 3: left alone, named in MODIFIED; message 2 gets the new MODSEQ.
    ("u STORE 1,2 (UNCHANGEDSINCE 3) +FLAGS.SILENT (\\Seen)", &["* 2 FETCH (MODSEQ (5))\r\nu OK [MODIFIED 1] "], &["* 1 FETCH"]),
    ("g FETCH 1 FLAGS", &["* 1 FETCH (FLAGS (\\Flagged \\Recent) MODSEQ (4))"], &[]),
    ("q SEARCH MODSEQ 5", &["* SEARCH 2 (MODSEQ 5)\r\nq OK"], &[]),
    ("r UID SEARCH RETURN (ALL) MODSEQ 4", &["* ESEARCH (TAG \"r\") UID ALL 1:2 MODSEQ 5\r\nr OK"], &[]),
    ("n SEARCH MODSEQ 6", &["* SEARCH\r\nn OK"], &[]),
    ("st STATUS INBOX (HIGHESTMODSEQ MESSAGES)", &["* STATUS INBOX (HIGHESTMODSEQ 5 MESSAGES 2)"], &[]),
    ("x UID STORE 2 (UNCHANGEDSINCE 0) +FLAGS (\\Deleted)", &["x OK [MODIFIED 2] "], &[]),
    ("d STORE 2 +FLAGS.SILENT (\\Deleted)", &["* 2 FETCH (MODSEQ (6))\r\nd OK"], &[]),
    ("y EXPUNGE", &["* VANISHED 2\r\ny OK [HIGHESTMODSEQ 7] "], &["EXPUNGE\r\n"]),
    ("v UID FETCH 1:* (FLAGS) (CHANGEDSINCE 5 VANISHED)", &["* VANISHED (EARLIER) 2\r\nv OK"], &["* 1 FETCH"]),
    ("b FETCH 1 (FLAGS) (CHANGEDSINCE 1 VANISHED)", &["b BAD VANISHED is a modifier of UID FETCH only"], &[]),
    ("b2 UID FETCH 1 (FLAGS) (VANISHED)", &["b2 BAD VANISHED needs CHANGEDSINCE"], &[]),
    // QRESYNC: what went and what changed since modseq 3, of the UIDs the client knows.
    ("z SELECT INBOX (QRESYNC (1000 3 1:5))", &["* OK [CLOSED]", "* OK [HIGHESTMODSEQ 7] ", "* VANISHED (EARLIER) 2\r\n* 1 FETCH (UID 1 FLAGS (\\Flagged) MODSEQ (4))\r\nz OK"], &[]),
    ("z2 SELECT INBOX (QRESYNC (1000 4))", &["* VANISHED (EARLIER) 2\r\nz2 OK"], &["* 1 FETCH"]),
    // Another UIDVALIDITY: nothing to resync from.
    ("w EXAMINE INBOX (QRESYNC (999 3))", &["w OK [READ-ONLY]"], &["VANISHED", "* 1 FETCH"]),
];

#[test]
fn condstore_and_qresync_fed_whole_byte_by_byte_and_in_pieces() {
    let script: String = SCRIPT.iter().map(|(c, _, _)| format!("{c}\r\n")).collect();
    for size in [0, 1, 7, 64] {
        let mut h = Harness::new(true);
        let caps = h.run("k CAPABILITY\r\nl LOGIN alice@example.test secret\r\n", 0);
        assert!(caps.contains(" CONDSTORE QRESYNC "), "{caps}");
        let out = h.run(&script, size);
        for (cmd, want, never) in SCRIPT {
            for w in *want {
                assert!(
                    out.contains(w),
                    "size {size}: {cmd:?} wants {w:?} in:\n{out}"
                );
            }
            for n in *never {
                // Only within this command's replies.
                let own = replies_of(&out, cmd);
                assert!(
                    !own.contains(n),
                    "size {size}: {cmd:?} never {n:?} in:\n{own}"
                );
            }
        }
    }
}

/// The replies of the command `cmd` (from after the previous tagged line to its own).
fn replies_of<'a>(out: &'a str, cmd: &str) -> &'a str {
    let tag = cmd.split(' ').next().unwrap_or_default();
    let lines: Vec<&str> = out.split_inclusive("\r\n").collect();
    let end = lines
        .iter()
        .position(|l| l.starts_with(&format!("{tag} ")))
        .unwrap_or(lines.len().saturating_sub(1));
    let begin = lines[..end]
        .iter()
        .rposition(|l| !l.starts_with('*') && !l.starts_with('+'))
        .map_or(0, |i| i + 1);
    let from: usize = lines[..begin].iter().map(|l| l.len()).sum();
    let to: usize = lines[..=end.min(lines.len() - 1)]
        .iter()
        .map(|l| l.len())
        .sum();
    &out[from..to]
}

#[test]
fn qresync_must_be_enabled_and_condstore_is_off_until_asked() {
    let mut h = Harness::new(true);
    let out = h.run(
        "l LOGIN alice@example.test secret\r\na SELECT INBOX (QRESYNC (1000 1))\r\nb SELECT INBOX\r\nc FETCH 1 FLAGS\r\nd UID FETCH 1 FLAGS (CHANGEDSINCE 1 VANISHED)\r\n",
        0,
    );
    assert!(out.contains("a BAD QRESYNC is not enabled"), "{out}");
    // HIGHESTMODSEQ is sent at every SELECT; MODSEQ only once CONDSTORE is on.
    assert!(out.contains("* OK [HIGHESTMODSEQ 3] "), "{out}");
    assert!(out.contains("* 1 FETCH (FLAGS (\\Recent))\r\n"), "{out}");
    assert!(out.contains("d BAD VANISHED needs QRESYNC"), "{out}");
    let out = h.run("e FETCH 1 (MODSEQ)\r\nf FETCH 1 FLAGS\r\n", 0);
    assert!(out.contains("* 1 FETCH (MODSEQ (2))"), "{out}");
    assert!(
        out.contains("* 1 FETCH (FLAGS (\\Recent) MODSEQ (2))"),
        "{out}"
    );
}

#[test]
fn another_sessions_changes_carry_modseqs_and_expunges_are_vanished() {
    let mut a = Harness::new(true);
    let mut b = Harness::on(&a.account, true);
    a.run("l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\n", 0);
    let out = b.run(
        "l LOGIN alice@example.test secret\r\ne ENABLE QRESYNC\r\ns SELECT INBOX\r\n",
        0,
    );
    assert!(out.contains("[HIGHESTMODSEQ 3]"), "{out}");
    a.run("x STORE 1 +FLAGS (\\Seen)\r\n", 0);
    let out = b.run("n NOOP\r\n", 0);
    assert!(
        out.contains("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (4))"),
        "{out}"
    );
    let out = b.run("c UID FETCH 1:* (FLAGS) (CHANGEDSINCE 3)\r\n", 0);
    assert!(
        out.contains("* 1 FETCH (UID 1 FLAGS (\\Seen) MODSEQ (4))\r\nc OK"),
        "{out}"
    );
    // A change by another program, then an expunge by a.
    let mut f = crate::proto::imap::store::Flags::default();
    f.insert(Flag::Answered);
    a.account.lock().unwrap().set_flags("INBOX", 2, f);
    a.run("d STORE 1 +FLAGS (\\Deleted)\r\ny EXPUNGE\r\n", 0);
    let out = b.run("n NOOP\r\n", 0);
    assert!(out.contains("* VANISHED 1\r\n"), "{out}");
    assert!(!out.contains("EXPUNGE"), "{out}");
    assert!(
        out.contains("* 1 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (5))"),
        "{out}"
    );
    // A reselect from modseq 3: uid 1 went, uid 2 changed.
    let out = b.run("r SELECT INBOX (QRESYNC (1000 3))\r\n", 0);
    assert!(
        out.contains(
            "* VANISHED (EARLIER) 1\r\n* 1 FETCH (UID 2 FLAGS (\\Answered) MODSEQ (5))\r\n"
        ),
        "{out}"
    );
    // Expunges forgotten: every UID the client may know that is not there.
    a.account.lock().unwrap().deliver(b"Subject: 3\n\nx\n");
    a.account.lock().unwrap().forget_expunges("INBOX");
    let out = b.run("u UNSELECT\r\nr SELECT INBOX (QRESYNC (1000 3 1:9))\r\n", 0);
    assert!(out.contains("* VANISHED (EARLIER) 1\r\n"), "{out}");
}

/// A whole-message FETCH is left to the driver to stream from the file (the engine reads
/// nothing); with other content items, or a range, the engine reads the message as before.
#[test]
fn whole_message_fetches_are_streamed_by_the_driver() {
    for size in [0, 1, 5] {
        let mut h = Harness::new(true);
        h.files = true;
        h.run("l LOGIN alice@example.test secret\r\ns SELECT INBOX\r\n", 0);
        let out = h.run(
            "a UID FETCH 1 (FLAGS BODY.PEEK[])\r\nb FETCH 2 (BINARY.PEEK[] RFC822.SIZE)\r\nc FETCH 1:2 RFC822\r\nd FETCH 1 (BODY.PEEK[] ENVELOPE)\r\ne FETCH 1 BODY.PEEK[]<0.4>\r\n",
            size,
        );
        for want in [
            "* 1 FETCH (UID 1 FLAGS (\\Recent) BODY[] <stream msg1 binary=false>)\r\na OK",
            "* 2 FETCH (BINARY[] <stream msg2 binary=true> RFC822.SIZE 31)\r\nb OK",
            // RFC822 is not a PEEK: \Seen first, for both, then each streamed.
            "* 1 FETCH (RFC822 <stream msg1 binary=false> FLAGS (\\Seen \\Recent))\r\n* 2 FETCH (RFC822 <stream msg2 binary=false> FLAGS (\\Seen \\Recent))\r\nc OK",
            "* 1 FETCH (BODY[] {",
            "* 1 FETCH (BODY[]<0> {4}\r\nFrom)\r\ne OK",
        ] {
            assert!(out.contains(want), "size {size}: wants {want:?} in:\n{out}");
        }
        assert!(
            !out.contains("<stream msg1 binary=false> ENVELOPE"),
            "{out}"
        );
    }
}
