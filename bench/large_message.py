#!/usr/bin/env python3
"""Measures one large message through smtpd: wall time from DATA to the 250, and smtpd's peak RSS
(VmHWM) before and after. Reference run in the same invocation: a 1 KiB message.

usage: bench/large_message.py [SIZE_MIB]   (default 25; builds and runs target/release/smtpd)
"""
import os, re, socket, subprocess, sys, tempfile, time

size_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 25
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "smtpd"], cwd=repo, check=True)
binary = os.path.join(repo, "target/release/smtpd")

tmp = tempfile.mkdtemp(prefix="smtpd-bench-")
cfg = os.path.join(tmp, "smtpd.toml")
with open(cfg, "w") as f:
    f.write(f'''hostname = "bench.test"
[smtp]
listen = ["127.0.0.1:0"]
[pop3]
listen = []
[mailboxes]
root = "{tmp}/mailboxes"
domains = ["example.test"]
[limits]
max_message_bytes = {(size_mib + 8) * 1024 * 1024}
[log]
dir = "{tmp}/logs"
level = "warn,smtpd=info"
''')
proc = subprocess.Popen([binary, "--foreground", "--config", cfg], stderr=subprocess.PIPE, text=True)
port = None
for line in proc.stderr:
    m = re.search(r"listening on smtp 127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
    if "ready" in line:
        break
assert port, "smtpd did not start"
import threading
threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()  # keep the pipe drained

def hwm():
    with open(f"/proc/{proc.pid}/status") as f:
        return int(next(l for l in f if l.startswith("VmHWM:")).split()[1])

def reply(sock_file):
    while True:
        line = sock_file.readline()
        if line[3:4] != b"-":
            return line

def send(body: bytes):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    reply(f)
    for cmd in [b"EHLO bench\r\n", b"MAIL FROM:<a@b.test>\r\n", b"RCPT TO:<big@example.test>\r\n", b"DATA\r\n"]:
        s.sendall(cmd)
        reply(f)
    t0 = time.perf_counter()
    s.sendall(body)
    s.sendall(b".\r\n")
    r = reply(f)
    dt = time.perf_counter() - t0
    s.sendall(b"QUIT\r\n")
    s.close()
    assert r.startswith(b"250"), r
    return dt

line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_=+0123456789\r\n"
small = b"Subject: small\r\n\r\n" + line * 13
big = b"Subject: big\r\n\r\n" + line * (size_mib * 1024 * 1024 // len(line) + 1)
t_small = send(small)
before = hwm()
t_big = send(big)
after = hwm()
proc.terminate()
proc.wait()
print(f"message: {len(big)} bytes ({len(big) / 2**20:.1f} MiB)")
print(f"time DATA->250: {t_big * 1000:.0f} ms ({len(big) / 2**20 / t_big:.0f} MiB/s); 1 KiB reference: {t_small * 1000:.2f} ms; ratio {t_big / t_small:.0f}x")
print(f"smtpd peak RSS: before {before} KiB, after {after} KiB, growth {after - before} KiB")
