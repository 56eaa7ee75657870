#!/usr/bin/env python3
"""Times POP3 login + STAT + LIST + UIDL against smtpd on a large maildrop, with a 10-message
maildrop as the reference in the same run. Messages are written straight into the Maildir with
smtpd's own naming (size hints included), as delivery would leave them.

usage: bench/pop3_maildrop.py [MESSAGES]   (default 100000; builds target/release/smtpd)
"""
import os, re, socket, subprocess, sys, tempfile, time

count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "smtpd", "--bin", "smtpctl"], cwd=repo, check=True)
smtpd = os.path.join(repo, "target/release/smtpd")
pw_hash = subprocess.run([os.path.join(repo, "target/release/smtpctl"), "encrypt"], input=b"bench\n",
                         capture_output=True, check=True).stdout.decode().strip().splitlines()[-1]

tmp = tempfile.mkdtemp(prefix="smtpd-pop3-bench-")
root = os.path.join(tmp, "mailboxes")
body = b"Return-Path: <a@b.test>\nSubject: bench\n\n" + b"x" * 900 + b"\n"
wire = len(body) + body.count(b"\n")

def fill(local, n):
    md = os.path.join(root, "example.test", local)
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    for i in range(n):
        name = f"1795000000.M{i}P1Q{i}.bench,S={len(body)},W={wire}"
        with open(os.path.join(md, "new", name), "wb") as f:
            f.write(body)

t = time.perf_counter()
fill("big", count)
fill("small", 10)
print(f"wrote {count} messages in {time.perf_counter() - t:.1f} s")

cfg = os.path.join(tmp, "smtpd.toml")
with open(cfg, "w") as f:
    f.write(f'''hostname = "bench.test"
[smtp]
listen = ["127.0.0.1:0"]
[pop3]
listen = ["127.0.0.1:0"]
[mailboxes]
root = "{root}"
domains = ["example.test"]
[log]
dir = "{tmp}/logs"
level = "info"
[[accounts]]
address = "big@example.test"
password = "{pw_hash}"
[[accounts]]
address = "small@example.test"
password = "{pw_hash}"
''')
proc = subprocess.Popen([smtpd, "--foreground", "--config", cfg], stderr=subprocess.PIPE, text=True)
port = None
for line in proc.stderr:
    m = re.search(r"listening on pop3 127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
        break
assert port, "smtpd did not start"
import threading
threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep the pipe drained

def session(user):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    f.readline()
    t0 = time.perf_counter()
    marks = {}
    def cmd(c, multi=False):
        s.sendall(c)
        first = f.readline()
        assert first.startswith(b"+OK"), first
        n = 0
        if multi:
            while f.readline() != b".\r\n":
                n += 1
        return n
    cmd(f"USER {user}\r\n".encode()); cmd(b"PASS bench\r\n"); marks["login"] = time.perf_counter() - t0
    cmd(b"STAT\r\n"); marks["stat"] = time.perf_counter() - t0
    n = cmd(b"LIST\r\n", True); marks["list"] = time.perf_counter() - t0
    u = cmd(b"UIDL\r\n", True); marks["uidl"] = time.perf_counter() - t0
    cmd(b"QUIT\r\n")
    s.close()
    return marks, n, u

runs = []
for _ in range(3):
    small, _, _ = session("small@example.test")
    big, n, u = session("big@example.test")
    assert n == u == count, (n, u)
    runs.append((small, big))
runs.sort(key=lambda r: r[1]["uidl"])
small, big = runs[1]
proc.terminate(); proc.wait()
print(f"median of 3; login includes one argon2id check")
for k in ("login", "stat", "list", "uidl"):
    print(f"  {k:5s} done at {big[k]*1000:8.1f} ms ({count} msgs)   {small[k]*1000:6.1f} ms (10 msgs)")
print(f"login+STAT+LIST+UIDL: {big['uidl']*1000:.0f} ms for {count} messages; ratio to 10 messages {big['uidl']/small['uidl']:.1f}x")
