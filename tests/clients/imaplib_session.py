"""An IMAP session with Python's imaplib against smtpd; used by tests/imap.rs.

usage: imaplib_session.py MODE HOST PORT USER PASSWORD
MODE: plain (loopback, no TLS), starttls, or ssl (implicit TLS). Certificates are not verified
(the server's is self-signed). The mailbox must hold exactly two messages, subjects "one" and
"two", delivered over SMTP. Every step asserts what it sees; prints "ok" at the end.
"""
import imaplib
import ssl
import sys

mode, host, port, user, password = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def ok(result, what):
    typ, data = result
    assert typ == "OK", (what, typ, data)
    return data


if mode == "ssl":
    m = imaplib.IMAP4_SSL(host, port, ssl_context=ctx)
else:
    m = imaplib.IMAP4(host, port)
    if mode == "starttls":
        assert "STARTTLS" in m.capabilities, m.capabilities
        ok(m.starttls(ssl_context=ctx), "starttls")
        assert "STARTTLS" not in m.capabilities, m.capabilities

for cap in ("IMAP4REV1", "IDLE", "UIDPLUS", "MOVE", "SPECIAL-USE", "NAMESPACE", "ID", "UNSELECT"):
    assert cap in m.capabilities, (cap, m.capabilities)

try:
    m.login(user, "wrong password")
    raise SystemExit("a wrong password was accepted")
except imaplib.IMAP4.error as e:
    assert "AUTHENTICATIONFAILED" in str(e), e
ok(m.login(user, password), "login")

# LIST: INBOX and the special-use folders made at first login.
lines = [l.decode() for l in ok(m.list(), "list")]
names = {l.rsplit(" ", 1)[1].strip('"'): l for l in lines}
for name, attr in (("Sent", "\\Sent"), ("Drafts", "\\Drafts"), ("Trash", "\\Trash"), ("Junk", "\\Junk"), ("Archive", "\\Archive")):
    assert attr in names[name], (name, lines)
assert "INBOX" in names, lines
lsub = [l.decode() for l in ok(m.lsub(), "lsub")]
assert any(l.endswith("Sent") for l in lsub), lsub

# SELECT and FETCH.
data = ok(m.select("INBOX"), "select")
assert data == [b"2"], data
data = ok(m.fetch("1:*", "(UID FLAGS RFC822.SIZE)"), "fetch flags")
assert len(data) == 2 and b"UID 1 " in data[0] and b"RFC822.SIZE" in data[0], data
data = ok(m.fetch("1", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"), "fetch header")
assert data[0][1].strip() == b"Subject: one", data
data = ok(m.fetch("2", "(RFC822)"), "fetch rfc822")
raw = data[0][1]
assert raw.startswith(b"Return-Path: <sender@b.test>\r\n"), raw
assert b"\r\nSubject: two\r\n" in raw and raw.endswith(b"second body\r\n"), raw
size = int(ok(m.fetch("2", "(RFC822.SIZE)"), "size")[0].split(b"RFC822.SIZE ")[1].rstrip(b")"))
assert size == len(raw), (size, len(raw))
flags = ok(m.fetch("2", "(FLAGS)"), "flags after RFC822")
assert b"\\Seen" in flags[0], flags
env = ok(m.fetch("1", "(ENVELOPE BODYSTRUCTURE)"), "envelope")
assert b'"one"' in env[0] and b'"text" "plain"' in env[0], env

# SEARCH and STORE.
assert ok(m.search(None, "UNSEEN"), "search unseen") == [b"1"]
assert ok(m.search(None, "SUBJECT", "two"), "search subject") == [b"2"]
assert ok(m.uid("SEARCH", None, "ALL"), "uid search") == [b"1 2"]
data = ok(m.store("1", "+FLAGS", "(\\Flagged)"), "store")
assert b"\\Flagged" in data[0], data
ok(m.store("1", "-FLAGS.SILENT", "(\\Flagged)"), "store silent")
assert b"\\Flagged" not in ok(m.fetch("1", "(FLAGS)"), "flags")[0]

# APPEND to Sent, COPY, MOVE, EXPUNGE.
typ, data = m.append("Sent", "(\\Seen)", None, b"Subject: appended\r\n\r\nhello\r\n")
assert typ == "OK" and b"APPENDUID" in data[0], (typ, data)
status = ok(m.status("Sent", "(MESSAGES UNSEEN)"), "status")
assert b"MESSAGES 1" in status[0] and b"UNSEEN 0" in status[0], status
typ, data = m.copy("1", "Archive")
assert typ == "OK" and b"COPYUID" in data[0], (typ, data)
typ, data = m.uid("MOVE", "2", "Trash")
assert typ == "OK", (typ, data)
assert ok(m.search(None, "ALL"), "after move") == [b"1"]
ok(m.store("1", "+FLAGS", "(\\Deleted)"), "delete")
ok(m.expunge(), "expunge")
assert ok(m.select("INBOX"), "reselect") == [b"0"]
assert ok(m.select("Trash"), "trash") == [b"1"]
assert ok(m.fetch("1", "(BODY.PEEK[TEXT])"), "trash text")[0][1] == b"second body\r\n"
assert ok(m.select("Archive", readonly=True), "examine") == [b"1"]

# CREATE, RENAME, DELETE; a name that would leave the account.
ok(m.create("Work"), "create")
ok(m.rename("Work", "Jobs"), "rename")
ok(m.delete("Jobs"), "delete")
typ, data = m.create("../escape")
assert typ == "NO", (typ, data)
m.logout()
print("ok")
