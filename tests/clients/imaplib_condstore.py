"""CONDSTORE and QRESYNC (RFC 7162) with Python's imaplib against smtpd; used by
tests/imap_condstore.rs.

usage: imaplib_condstore.py STEP HOST PORT USER PASSWORD
STEP: two (two sessions on INBOX), before (changes to keep over a restart) or after:H (after
the restart, H being the HIGHESTMODSEQ the index held). INBOX must hold three messages at the
start. imaplib has no helper for these extensions: the commands go through its generic ones
(xatom, uid, fetch, select with arguments) and the untagged answers are read from
untagged_responses. Every step asserts what it sees; prints "ok" at the end.
"""
import imaplib
import re
import sys

step, host, port, user, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]


def ok(result, what):
    typ, data = result
    assert typ == "OK", (what, typ, data)
    return data


def session():
    m = imaplib.IMAP4(host, port)
    ok(m.login(user, password), "login")
    assert "CONDSTORE" in m.capabilities and "QRESYNC" in m.capabilities, m.capabilities
    return m


def enable_qresync(m):
    ok(m.xatom("ENABLE", "QRESYNC"), "enable")
    typ, data = m.response("ENABLED")
    assert data[0] is not None and b"QRESYNC" in data[0], data


def code(m, name):
    """The value of the response code `name` the last command left ([HIGHESTMODSEQ n])."""
    typ, data = m.response(name)
    assert data and data[-1] is not None, (name, data)
    return data[-1].decode()


def untagged(m, name):
    """Every untagged `name` line since the last look, decoded, and forgets them."""
    got = m.untagged_responses.pop(name, [])
    return [g.decode() if isinstance(g, bytes) else g for g in got if g is not None]


def modseqs(lines):
    """{uid (or the sequence number when no UID is given): modseq} of FETCH lines."""
    out = {}
    for l in lines:
        if isinstance(l, tuple):
            l = l[0]
        text = l.decode() if isinstance(l, bytes) else l
        u = re.search(r"UID (\d+)", text) or re.match(r"(\d+) ", text)
        s = re.search(r"MODSEQ \((\d+)\)", text)
        if u and s:
            out[int(u.group(1))] = int(s.group(1))
    return out


def uidvalidity(m):
    return int(code(m, "UIDVALIDITY"))


if step == "two":
    a, b = session(), session()
    enable_qresync(b)
    ok(a.select("INBOX"), "a select")
    ok(b.select("INBOX", False), "b select")
    h0 = int(code(b, "HIGHESTMODSEQ"))
    validity = uidvalidity(b)
    # A flag change in a shows in b as CHANGEDSINCE, with a larger MODSEQ.
    ok(a.store("1", "+FLAGS", "(\\Flagged)"), "a store")
    data = ok(b.uid("FETCH", "1:*", "(FLAGS) (CHANGEDSINCE %d)" % h0), "changedsince")
    changed = modseqs([d for d in data if d is not None])
    assert list(changed) == [1] and changed[1] > h0, (data, h0)
    # UNCHANGEDSINCE from before a's change fails with MODIFIED.
    # (imaplib reads response codes of untagged lines only: the tagged text holds it.)
    data = ok(b._simple_command("UID", "STORE", "1", "(UNCHANGEDSINCE %d)" % h0, "+FLAGS.SILENT", "(\\Seen)"), "unchangedsince")
    assert data[-1].startswith(b"[MODIFIED 1] "), data
    # An expunge by a: VANISHED (not EXPUNGE) in b, which enabled QRESYNC.
    ok(a.store("2", "+FLAGS.SILENT", "(\\Deleted)"), "a delete")
    ok(a.expunge(), "a expunge")
    ok(b.noop(), "b noop")
    assert untagged(b, "VANISHED") == ["2"], b.untagged_responses
    assert "EXPUNGE" not in b.untagged_responses, b.untagged_responses
    # A QRESYNC reselect from h0: uid 2 went (VANISHED (EARLIER)), uid 1 changed.
    ok(b.close(), "b close")
    untagged(b, "FETCH")
    ok(b._simple_command("SELECT", "INBOX", "(QRESYNC (%d %d 1:3))" % (validity, h0)), "qresync")
    b.state = "SELECTED"
    assert untagged(b, "VANISHED") == ["(EARLIER) 2"], b.untagged_responses
    fetched = modseqs(untagged(b, "FETCH"))
    assert list(fetched) == [1] and fetched[1] == changed[1], fetched
    # STATUS HIGHESTMODSEQ from a: above every modseq seen.
    data = ok(a.status("INBOX", "(HIGHESTMODSEQ MESSAGES)"), "status")
    hs = int(re.search(rb"HIGHESTMODSEQ (\d+)", data[0]).group(1))
    assert hs > changed[1] and b"MESSAGES 2" in data[0], data
    # SEARCH MODSEQ.
    data = ok(b.search(None, "MODSEQ", str(changed[1])), "search modseq")
    assert data[0].decode() == "1 (MODSEQ %d)" % changed[1], data
    a.logout()
    b.logout()
elif step == "before":
    m = session()
    ok(m.select("INBOX"), "select")
    ok(m.store("3", "+FLAGS", "(\\Answered)"), "store")
    m.logout()
elif step.startswith("after:"):
    h = int(step.split(":", 1)[1])
    m = session()
    ok(m.select("INBOX", True), "examine")
    assert int(code(m, "HIGHESTMODSEQ")) == h, (code(m, "HIGHESTMODSEQ"), h)
    data = ok(m.fetch("1:*", "(UID MODSEQ)"), "fetch")
    before = modseqs([d for d in data if d is not None])
    assert max(before.values()) == h, (before, h)
    ok(m.select("INBOX"), "select")
    data = ok(m.store("1", "+FLAGS", "(\\Flagged)"), "store")
    after = modseqs([d for d in data if d is not None])
    assert after[1] > h, (after, h)
    m.logout()
else:
    raise SystemExit(f"unknown step {step}")
print("ok")
