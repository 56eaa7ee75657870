"""TLS client flows against smtpd, with Python's smtplib, poplib and ssl; used by tests/tls.rs.

usage: tls_flows.py FLOW HOST PORT [ARGS...]
Certificates are not verified (the server's is self-signed); each flow asserts what it sees and
prints "ok".
"""
import base64
import poplib
import smtplib
import socket
import ssl
import sys
from email.message import EmailMessage

flow, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
args = sys.argv[4:]
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE


def message(frm, to, subject):
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = frm, to, subject
    m.set_content("Sent over TLS.\n.leading dot\nété\n")
    return m


class Lines:
    """A line reader/writer over a (possibly TLS) socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError(self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode("utf-8", "replace")

    def reply(self):
        lines = [self.line()]
        while len(lines[-1]) > 3 and lines[-1][3] == "-":
            lines.append(self.line())
        return int(lines[-1][:3]), lines

    def send(self, text):
        self.sock.sendall(text.encode() + b"\r\n")

    def multiline(self):
        out = []
        while True:
            l = self.line()
            if l == ".":
                return out
            out.append(l)


def plain(user, password):
    return base64.b64encode(f"\0{user}\0{password}".encode()).decode()


if flow == "smtplib-starttls":
    user, password, to = args
    with smtplib.SMTP(host, port, timeout=20) as s:
        s.ehlo("client.test")
        assert s.has_extn("starttls"), s.esmtp_features
        s.starttls(context=ctx)
        s.ehlo("client.test")
        assert not s.has_extn("starttls"), "STARTTLS offered again inside TLS"
        assert "PLAIN" in s.esmtp_features.get("auth", ""), s.esmtp_features
        s.login(user, password)
        assert s.send_message(message(user, to, "smtplib starttls")) == {}
elif flow == "smtplib-ssl":
    user, password, to = args
    with smtplib.SMTP_SSL(host, port, timeout=20, context=ctx) as s:
        s.ehlo("client.test")
        s.login(user, password)
        assert s.send_message(message(user, to, "smtplib implicit tls")) == {}
elif flow == "smtp-inject":
    # STARTTLS with MAIL FROM in the same write: the MAIL must never be answered or applied.
    sock = socket.create_connection((host, port), timeout=20)
    c = Lines(sock)
    assert c.reply()[0] == 220
    c.send("EHLO client.test")
    assert c.reply()[0] == 250
    sock.sendall(b"STARTTLS\r\nMAIL FROM:<evil@b.test>\r\n")
    code, lines = c.reply()
    assert code == 220, lines
    assert c.buf == b"", ("reply to the injected command before TLS", c.buf)
    tls = ctx.wrap_socket(sock, server_hostname=host)
    t = Lines(tls)
    t.send("EHLO client.test")
    code, lines = t.reply()
    assert code == 250 and "STARTTLS" not in lines, lines
    t.send("RCPT TO:<bob@example.test>")
    code, lines = t.reply()
    assert code == 503, ("the injected MAIL FROM was applied", lines)
    t.send("QUIT")
    t.reply()
elif flow == "pop3-inject":
    user, password = args
    sock = socket.create_connection((host, port), timeout=20)
    c = Lines(sock)
    assert c.line().startswith("+OK")
    sock.sendall(f"STLS\r\nUSER {user}\r\n".encode())
    first = c.line()
    assert first.startswith("+OK"), first
    assert c.buf == b"", ("reply to the injected command before TLS", c.buf)
    tls = ctx.wrap_socket(sock, server_hostname=host)
    t = Lines(tls)
    t.send(f"PASS {password}")
    r = t.line()
    assert r.startswith("-ERR"), ("the injected USER was applied", r)
    t.send("CAPA")
    assert t.line().startswith("+OK")
    caps = t.multiline()
    assert "STLS" not in caps and "USER" in caps, caps
    t.send("QUIT")
    t.line()
elif flow == "thunderbird-smtp":
    # Thunderbird's sequence: EHLO [127.0.0.1], STARTTLS, EHLO, AUTH PLAIN with initial response,
    # MAIL FROM:<a> SIZE=n BODY=8BITMIME, RCPT, DATA, QUIT.
    user, password, to = args
    body = ("From: " + user + "\r\nTo: " + to + "\r\nSubject: Thunderbird\r\n"
            "Content-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            "Bonjour, été.\r\n").encode()
    sock = socket.create_connection((host, port), timeout=20)
    c = Lines(sock)
    seen = [c.reply()[0]]
    c.send("EHLO [127.0.0.1]"); seen.append(c.reply()[0])
    c.send("STARTTLS"); seen.append(c.reply()[0])
    t = Lines(ctx.wrap_socket(sock, server_hostname=host))
    t.send("EHLO [127.0.0.1]"); code, ehlo = t.reply(); seen.append(code)
    assert "250-AUTH PLAIN LOGIN" in ehlo or "250 AUTH PLAIN LOGIN" in ehlo, ehlo
    t.send("AUTH PLAIN " + plain(user, password)); seen.append(t.reply()[0])
    t.send(f"MAIL FROM:<{user}> SIZE={len(body)} BODY=8BITMIME"); seen.append(t.reply()[0])
    t.send(f"RCPT TO:<{to}>"); seen.append(t.reply()[0])
    t.send("DATA"); seen.append(t.reply()[0])
    t.sock.sendall(body + b".\r\n"); seen.append(t.reply()[0])
    t.send("QUIT"); seen.append(t.reply()[0])
    assert seen == [220, 250, 220, 250, 235, 250, 250, 354, 250, 221], seen
elif flow == "thunderbird-pop3":
    # CAPA, STLS, CAPA, AUTH PLAIN, STAT, LIST, UIDL, TOP 1 0, RETR 1, DELE 1, QUIT.
    user, password = args
    sock = socket.create_connection((host, port), timeout=20)
    c = Lines(sock)
    assert c.line().startswith("+OK")
    c.send("CAPA"); assert c.line().startswith("+OK"); caps = c.multiline()
    assert "STLS" in caps, caps
    c.send("STLS"); assert c.line().startswith("+OK")
    t = Lines(ctx.wrap_socket(sock, server_hostname=host))
    t.send("CAPA"); assert t.line().startswith("+OK"); caps = t.multiline()
    assert "STLS" not in caps and "SASL PLAIN" in caps, caps
    t.send("AUTH PLAIN " + plain(user, password)); r = t.line(); assert r.startswith("+OK"), r
    t.send("STAT"); stat = t.line(); assert stat.startswith("+OK 1 "), stat
    t.send("LIST"); assert t.line().startswith("+OK"); listing = t.multiline()
    size = int(listing[0].split()[1])
    t.send("UIDL"); assert t.line().startswith("+OK"); assert len(t.multiline()) == 1
    t.send("TOP 1 0"); assert t.line().startswith("+OK"); top = t.multiline()
    assert top[-1] == "", top
    t.send("RETR 1"); r = t.line(); assert r == f"+OK {size} octets", r
    msg = t.multiline()
    assert sum(len(l.encode()) + 2 for l in msg) - sum(1 for l in msg if l.startswith("..")) == size
    t.send("DELE 1"); assert t.line().startswith("+OK")
    t.send("QUIT"); assert t.line().startswith("+OK")
elif flow == "pop3s":
    user, password = args
    p = poplib.POP3_SSL(host, port, timeout=20, context=ctx)
    assert "STLS" not in p.capa()
    p.user(user)
    p.pass_(password)
    assert p.stat()[0] >= 1
    p.quit()
elif flow == "remote-auth":
    # From a non-loopback peer: AUTH is not offered nor accepted before TLS; after STARTTLS it is.
    user, password = args
    sock = socket.create_connection((host, port), timeout=20)
    c = Lines(sock)
    c.reply()
    c.send("EHLO client.test"); code, ehlo = c.reply()
    assert not any("AUTH" in l for l in ehlo), ehlo
    c.send("AUTH PLAIN " + plain(user, password)); code, r = c.reply()
    assert code == 538 and "5.7.11" in r[0], r
    c.send("STARTTLS"); assert c.reply()[0] == 220
    t = Lines(ctx.wrap_socket(sock, server_hostname=host))
    t.send("EHLO client.test"); code, ehlo = t.reply()
    assert any("AUTH PLAIN LOGIN" in l for l in ehlo), ehlo
    t.send("AUTH PLAIN " + plain(user, password)); code, r = t.reply()
    assert code == 235, r
elif flow == "certhash":
    # Prints the SHA-256 of the certificate served on an implicit-TLS port.
    import hashlib
    with ctx.wrap_socket(socket.create_connection((host, port), timeout=20), server_hostname=host) as t:
        print(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())
else:
    raise SystemExit(f"unknown flow {flow}")
print("ok")
