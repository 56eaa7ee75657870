#!/usr/bin/env python3
"""Thunderbird's IMAP conversation replayed over a raw socket, as tests/imap.rs drives it:
  thunderbird_replay.py SMTP_PORT HOST PORT USER PASSWORD   (prints "ok" when every step passed)

The commands and their spelling are Thunderbird's (nsImapProtocol.cpp in comm-central): a
lower-case "capability", ID when offered, AUTHENTICATE PLAIN, "namespace", LIST with SPECIAL-USE,
"select" with (CONDSTORE) when the server offers CONDSTORE, then as a Thunderbird 91 trace against
Dovecot shows it after a new message: "UID fetch N:* (FLAGS)", the header fetch with
IMAP_ENV_AND_DB_HEADERS (From To Cc Bcc Subject Date Message-ID Priority X-Priority References
Newsgroups In-Reply-To Content-Type Reply-To), "UID fetch N (UID RFC822.SIZE BODY.PEEK[])", the
part probe "BODY.PEEK[HEADER.FIELDS (Content-Type Content-Transfer-Encoding)]
BODY.PEEK[TEXT]<0.2048>", IDLE/DONE with a "noop" after it, and APPEND of a sent copy to Sent.
Each tagged reply must be OK and carry the untagged data Thunderbird reads from it.
"""
import base64
import re
import smtplib
import socket
import sys
import time

HEADERS = ("From To Cc Bcc Subject Date Message-ID Priority X-Priority References "
           "Newsgroups In-Reply-To Content-Type Reply-To")


class Conn:
    def __init__(self, host, port):
        self.s = socket.create_connection((host, port), timeout=20)
        self.buf = b""
        self.tag = 0

    def _fill(self):
        data = self.s.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        """One response line, literals included in it (as bytes)."""
        out = b""
        while True:
            while b"\r\n" not in self.buf:
                self._fill()
            l, self.buf = self.buf.split(b"\r\n", 1)
            out += l + b"\r\n"
            m = re.search(rb"~?\{(\d+)\}$", l)
            if not m:
                return out
            n = int(m.group(1))
            while len(self.buf) < n:
                self._fill()
            out += self.buf[:n]
            self.buf = self.buf[n:]

    def send(self, text):
        self.s.sendall(text.encode() if isinstance(text, str) else text)

    def cmd(self, text):
        """Sends `TAG text`; returns (untagged lines, the tagged line)."""
        self.tag += 1
        tag = str(self.tag)
        self.send(f"{tag} {text}\r\n")
        return self.until(tag)

    def until(self, tag):
        untagged = []
        while True:
            l = self.line()
            if l.startswith(tag.encode() + b" "):
                return untagged, l
            untagged.append(l)


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def ok(tagged, what):
    check(b" OK" in tagged.split(b"\r\n")[0][:12], f"{what}: {tagged!r}")


def main(smtp_port, host, port, user, password):
    c = Conn(host, int(port))
    greeting = c.line()
    check(greeting.startswith(b"* OK"), f"greeting {greeting!r}")

    u, t = c.cmd("capability")
    ok(t, "capability")
    caps = next(l for l in u if l.startswith(b"* CAPABILITY")).upper().split()
    for need in (b"IMAP4REV1", b"IDLE", b"UIDPLUS", b"MOVE", b"NAMESPACE", b"SPECIAL-USE"):
        check(need in caps, f"{need!r} not in {caps!r}")

    if b"ID" in caps:
        u, t = c.cmd('ID ("name" "Thunderbird" "version" "115.16.0")')
        ok(t, "ID")
        check(any(l.startswith(b"* ID") for l in u), f"no * ID in {u!r}")

    check(b"AUTH=PLAIN" in caps, f"no AUTH=PLAIN in {caps!r}")
    c.tag += 1
    tag = str(c.tag)
    c.send(f"{tag} authenticate PLAIN\r\n")
    cont = c.line()
    check(cont.startswith(b"+"), f"authenticate: {cont!r}")
    c.send(base64.b64encode(f"\0{user}\0{password}".encode()) + b"\r\n")
    u, t = c.until(tag)
    ok(t, "authenticate PLAIN")
    # A server sends its capabilities again after the login (Thunderbird reads them from the OK).
    check(b"CAPABILITY" in t.upper() or any(b"CAPABILITY" in l for l in u),
          f"no capabilities after the login: {t!r}")

    u, t = c.cmd("namespace")
    ok(t, "namespace")
    check(any(l.startswith(b'* NAMESPACE (("" ".")') for l in u), f"namespace {u!r}")

    u, t = c.cmd('list (SPECIAL-USE) "" "*"')
    ok(t, "list (SPECIAL-USE)")
    listing = b"".join(u)
    for flag in (b"\\Sent", b"\\Drafts", b"\\Trash"):
        check(flag in listing, f"{flag!r} not listed: {listing!r}")
    u, t = c.cmd('lsub "" "*"')
    ok(t, "lsub")
    check(any(b"INBOX" in l.upper() for l in u), f"lsub {u!r}")

    condstore = b"CONDSTORE" in caps
    u, t = c.cmd('select "INBOX"' + (" (CONDSTORE)" if condstore else ""))
    ok(t, "select")
    sel = b"".join(u)
    m = re.search(rb"\* (\d+) EXISTS", sel)
    check(m, f"no EXISTS in {sel!r}")
    exists = int(m.group(1))
    check(b"[UIDVALIDITY " in sel and b"[UIDNEXT " in sel, f"select {sel!r}")
    if condstore:
        check(b"[HIGHESTMODSEQ " in sel, f"CONDSTORE offered but no HIGHESTMODSEQ: {sel!r}")

    u, t = c.cmd("UID fetch 1:* (FLAGS)")
    ok(t, "UID fetch 1:* (FLAGS)")
    fetched = [l for l in u if b" FETCH " in l]
    check(len(fetched) == exists, f"{len(fetched)} FETCH for {exists} messages: {u!r}")
    uids = [int(re.search(rb"UID (\d+)", l).group(1)) for l in fetched]

    u, t = c.cmd(f"UID fetch {uids[0]}:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS ({HEADERS})])")
    ok(t, "UID fetch headers")
    heads = b"".join(u)
    check(b"RFC822.SIZE " in heads and b"Subject: " in heads, f"headers {heads!r}")
    check(b"\\Seen" not in heads, "BODY.PEEK set \\Seen")

    # IDLE, woken by a delivery over SMTP, then what Thunderbird does after it.
    c.tag += 1
    idle = str(c.tag)
    c.send(f"{idle} IDLE\r\n")
    cont = c.line()
    check(cont.startswith(b"+"), f"IDLE: {cont!r}")
    with smtplib.SMTP(host, int(smtp_port), timeout=20) as s:
        s.sendmail("bob@example.test", [user],
                   "Subject: while idle\r\nContent-Type: text/plain\r\n\r\nnew in idle\r\n")
    deadline = time.monotonic() + 10
    woken = None
    while time.monotonic() < deadline:
        l = c.line()
        if re.match(rb"\* (\d+) EXISTS", l):
            woken = int(re.match(rb"\* (\d+) EXISTS", l).group(1))
            break
    check(woken == exists + 1, f"IDLE not woken with {exists + 1} EXISTS (got {woken})")
    c.send("DONE\r\n")
    u, t = c.until(idle)
    ok(t, "IDLE")
    u, t = c.cmd("noop")
    ok(t, "noop")
    nxt = uids[-1] + 1
    u, t = c.cmd(f"UID fetch {nxt}:* (FLAGS)")
    ok(t, "UID fetch new (FLAGS)")
    check(sum(b" FETCH " in l for l in u) == 1, f"new message flags {u!r}")
    u, t = c.cmd(f"UID fetch {nxt} (UID RFC822.SIZE BODY.PEEK[])")
    ok(t, "UID fetch BODY.PEEK[]")
    check(b"new in idle" in b"".join(u), f"body {u!r}")
    u, t = c.cmd(f"UID fetch {nxt} (UID BODY.PEEK[HEADER.FIELDS (Content-Type "
                 "Content-Transfer-Encoding)] BODY.PEEK[TEXT]<0.2048>)")
    ok(t, "UID fetch part probe")
    probe = b"".join(u)
    check(b"Content-Type: text/plain" in probe and b"BODY[TEXT]<0>" in probe, f"probe {probe!r}")

    # The copy of a message sent, appended to Sent (a synchronizing literal, as Thunderbird).
    sent = b"From: alice@example.test\r\nSubject: sent copy\r\n\r\nsent from thunderbird\r\n"
    c.tag += 1
    tag = str(c.tag)
    c.send(f'{tag} append "Sent" (\\Seen) {{{len(sent)}}}\r\n')
    cont = c.line()
    check(cont.startswith(b"+"), f"append: {cont!r}")
    c.send(sent + b"\r\n")
    u, t = c.until(tag)
    ok(t, "append to Sent")
    check(b"[APPENDUID " in t, f"no APPENDUID: {t!r}")
    u, t = c.cmd('status "Sent" (MESSAGES UNSEEN)')
    ok(t, "status Sent")
    check(b"MESSAGES 1" in b"".join(u) and b"UNSEEN 0" in b"".join(u), f"status {u!r}")

    u, t = c.cmd("logout")
    ok(t, "logout")
    check(any(l.startswith(b"* BYE") for l in u), f"logout {u!r}")
    print("ok")


if __name__ == "__main__":
    try:
        main(*sys.argv[1:6])
    except (AssertionError, EOFError, OSError, StopIteration) as e:
        print(f"FAIL: {e}")
        sys.exit(1)
