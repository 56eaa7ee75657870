"""Sends messages to smtpd with Python's smtplib (send_message and sendmail); used by tests/clients.rs.

usage: smtplib_send.py HOST PORT OUTDIR
Writes each message it sent as OUTDIR/<n>.eml (bytes as smtplib serialised them) so the Rust test
can compare them with what smtpd stored.
"""
import smtplib
import sys
from email.message import EmailMessage
from email.policy import SMTP

host, port, outdir = sys.argv[1], int(sys.argv[2]), sys.argv[3]

with smtplib.SMTP(host, port, timeout=20) as s:
    s.ehlo("client.test")
    assert s.has_extn("pipelining") and s.has_extn("8bitmime") and s.has_extn("smtputf8"), s.esmtp_features

    m = EmailMessage()
    m["From"] = "Sender <sender@b.test>"
    m["To"] = "Alice <alice@example.test>, bob@localhost"
    m["Subject"] = "Grüße from smtplib"
    m.set_content("Hello,\n.leading dot\n..two dots\nnon-ASCII: été ✓\n")
    m.add_attachment(bytes(range(256)) * 40, maintype="application", subtype="octet-stream", filename="blob.bin")
    m.set_boundary("=====smtpd-test-boundary=====")  # fixed, so re-serialising gives the same bytes
    refused = s.send_message(m)
    assert refused == {}, refused
    with open(f"{outdir}/1.eml", "wb") as f:
        f.write(m.as_bytes(policy=SMTP))

    # An SMTPUTF8 recipient and an 8-bit body, through sendmail with explicit options.
    raw = "From: jörg@b.test\r\nTo: jörg@example.test\r\nSubject: utf8\r\n\r\nBody é\r\n".encode()
    refused = s.sendmail("jörg@b.test", ["jörg@example.test"], raw, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    assert refused == {}, refused
    with open(f"{outdir}/2.eml", "wb") as f:
        f.write(raw)

    # A refused recipient is reported and the others still get the message.
    refused = s.sendmail("sender@b.test", ["carol@example.test", "x@relay.test"], b"Subject: partial\r\n\r\nhi\r\n")
    assert list(refused) == ["x@relay.test"] and refused["x@relay.test"][0] == 550, refused
print("smtplib: ok")
