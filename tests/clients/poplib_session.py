"""A POP3 session with Python's poplib against smtpd; used by tests/pop3.rs.

usage: poplib_session.py HOST PORT USER PASSWORD
Expects exactly three messages (subjects one, two, three; the second has lines starting with ".").
Checks STAT/LIST/UIDL/TOP/RETR, that LIST sizes equal RETR octets, deletes message 1 and quits.
"""
import poplib
import sys

host, port, user, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
p = poplib.POP3(host, port, timeout=20)
caps = p.capa()
for cap in ("TOP", "UIDL", "USER", "RESP-CODES", "PIPELINING"):
    assert cap in caps, (cap, caps)
assert p.user(user).startswith(b"+OK")
assert p.pass_(password).startswith(b"+OK")
count, total = p.stat()
assert count == 3, count
resp, listing, _ = p.list()
sizes = {int(n): int(s) for n, s in (l.split() for l in listing)}
assert sum(sizes.values()) == total, (sizes, total)
resp, uidls, _ = p.uidl()
uids = [l.split()[1] for l in uidls]
assert len(set(uids)) == 3, uids
for n in (1, 2, 3):
    resp, lines, octets = p.retr(n)
    # poplib strips the CRLFs and un-stuffs; octets counts the raw response lines + CRLFs.
    body = b"\r\n".join(lines) + b"\r\n"
    assert len(body) == sizes[n], (n, len(body), sizes[n])
    assert resp.split()[1] == str(sizes[n]).encode(), resp
resp, lines, _ = p.retr(2)
assert b".leading dot" in lines and b".." in lines and b"..two" in lines, lines
resp, top, _ = p.top(3, 0)
assert top[-1] == b"", top  # header, then the blank line, then no body line
assert any(l.startswith(b"Subject: three") for l in top), top
assert p.dele(1).startswith(b"+OK")
assert p.stat()[0] == 2
assert p.quit().startswith(b"+OK")
print("poplib: ok")
