"""Drives `smtp-send HOST PORT` through a pseudo-terminal, answering its prompts like a person;
used by tests/smtp_send.rs. Prints everything the program showed.

usage: pty_session.py SMTP_SEND HOST PORT
"""
import os
import pty
import select
import sys
import time

binary, host, port = sys.argv[1], sys.argv[2], sys.argv[3]
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, host, port])

seen = b""

def expect(text, timeout=20):
    global seen
    deadline = time.time() + timeout
    while text.encode() not in seen:
        left = deadline - time.time()
        if left <= 0:
            sys.stdout.write(seen.decode(errors="replace"))
            raise SystemExit(f"timed out waiting for {text!r}")
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
    # Consume up to and including the match so the next expect looks further on.
    i = seen.index(text.encode()) + len(text)
    out = seen[:i]
    seen = seen[i:]
    sys.stdout.write(out.decode(errors="replace"))

def send(line):
    os.write(fd, line.encode() + b"\r")

expect("Choice: ")
send("1")
expect("From: ")
send("alice@b.test")
expect("To (comma-separated): ")
send("bob@example.test, nobody@elsewhere.test")
expect("Subject: ")
send("Typed by hand")
expect("FIN")
send("Hello Bob,")
send(".a line with a leading dot")
send("FIN")
expect("Message delivered to bob@example.test.")
expect("Choice: ")
send("3")
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
