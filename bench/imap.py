#!/usr/bin/env python3
"""Issue 16's benchmark: smtpd's IMAP against Dovecot's (Debian dovecot-imapd) on the same
Maildir, in the same run.

usage: sudo bench/imap.py [--messages 10000,100000] [--runs 3] [--bodies 200] [--idle 100]
                          [--sessions 1000] [--out bench/IMAP.md]

- listing: login + SELECT INBOX + `UID FETCH 1:* (UID FLAGS RFC822.SIZE)` + LOGOUT, cold (each
  server's index removed, the page cache dropped: needs root) and warm (the median of --runs);
- FETCH BODY[]: MiB/s reading --bodies messages of 1 MiB each with `UID FETCH 1:* BODY.PEEK[]`;
- IDLE: the time from the 250 of an SMTP delivery (to smtpd, which writes the Maildir both
  serve) to the `* N EXISTS` in a session idling on that INBOX, p50/p99 over --idle deliveries;
- RSS per IDLE session: --sessions sessions logged in, INBOX selected, in IDLE; the server's RSS
  (smtpd's process; Dovecot's imap processes, one a session, plus imap-login) before and after.

The client is a raw socket that counts bytes to the tagged reply, so the servers' work is what
is timed, not a Python IMAP parser. Builds release; stops everything it started.
"""
import argparse, os, re, resource, shutil, socket, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import util  # noqa: E402
from measure import rss_kib  # noqa: E402
from util import REPO, STARTED, free_port, log, run, wait_port  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--messages", default="10000,100000")
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--bodies", type=int, default=200)
ap.add_argument("--idle", type=int, default=100)
ap.add_argument("--sessions", type=int, default=1000)
ap.add_argument("--smtpd-sessions", type=int, default=10000,
                help="RSS per IDLE session of smtpd alone at this many too (Dovecot runs a process "
                "a session: 10,000 of them would need some 50 GB)")
ap.add_argument("--out", default=os.path.join(REPO, "bench", "IMAP.md"))
ARGS = ap.parse_args()
USER, PASSWORD = "bench@bench.test", "bench pass"
NOBODY = 65534
DOVECOTS = []  # stopped at the end, also when a measurement fails
MSG = (b"From: a@b.test\r\nTo: bench@bench.test\r\nSubject: listing %d\r\n"
       b"Date: Wed, 02 Dec 2026 12:00:00 +0000\r\n\r\n" + b"x" * 1800 + b"\r\n")


class Imap:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0
        self.n = 0
        self.read_until(b"\r\n")

    def read_until(self, marker):
        """The bytes up to and including the next `marker` (a position into the buffer, which is
        compacted now and then: no copy of the rest per line)."""
        while True:
            i = self.buf.find(marker, self.pos)
            if i >= 0:
                end = i + len(marker)
                out = bytes(self.buf[self.pos:end])
                self.pos = end
                if self.pos > (1 << 20):
                    del self.buf[:self.pos]
                    self.pos = 0
                return out
            d = self.s.recv(1 << 20)
            if not d:
                raise EOFError("closed")
            self.buf += d

    def cmd(self, text):
        """Sends a command; returns everything up to and including its tagged reply line. A tag
        cannot appear at the start of a line inside a literal here (bodies are x and listing)."""
        self.n += 1
        tag = b"T%d " % self.n
        self.s.sendall(tag + text.encode() + b"\r\n")
        lines = []
        while True:
            line = self.read_until(b"\r\n")
            lines.append(line)
            if line.startswith(tag):
                if not line[len(tag):].startswith(b"OK"):
                    raise RuntimeError(line.decode(errors="replace"))
                return b"".join(lines)

    def login(self):
        self.cmd(f'LOGIN "{USER}" "{PASSWORD}"')

    def close(self):
        try:
            self.cmd("LOGOUT")
        except (OSError, EOFError, RuntimeError):
            pass
        self.s.close()


def fill(md, n, body=None):
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    for i in range(n):
        text = (body if body is not None else MSG % i).replace(b"\r\n", b"\n")
        with open(os.path.join(md, "cur", f"17000{i:08d}.M{i}P1Q1.bench,S={len(text)}:2,S"), "wb") as f:
            f.write(text)
    # Dovecot refuses to touch mail as root: the Maildir is nobody's (smtpd runs as root here).
    for dirpath, dirs, files in os.walk(os.path.dirname(os.path.dirname(md))):
        for name in [dirpath] + [os.path.join(dirpath, f) for f in dirs + files]:
            os.chown(name, NOBODY, NOBODY)


def drop_indexes(md):
    for root, _, files in os.walk(md):
        for f in files:
            if f.startswith("dovecot.index") or f.startswith("smtpd-cache") or f == "dovecot-uidlist":
                os.remove(os.path.join(root, f))
    if os.geteuid() == 0:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def listing(port):
    t0 = time.perf_counter()
    c = Imap(port)
    c.login()
    c.cmd("SELECT INBOX")
    data = c.cmd("UID FETCH 1:* (UID FLAGS RFC822.SIZE)")
    c.close()
    return time.perf_counter() - t0, data.count(b" FETCH (")


class Smtpd:
    name = "smtpd"

    def __init__(self, root):
        d = os.path.join(util.TMP, "smtpd")
        os.makedirs(d)
        self.port, self.smtp = free_port(), free_port()
        cfg = os.path.join(d, "smtpd.toml")
        # The same hash (and cost) as Dovecot's: SHA512-CRYPT, which smtpd accepts as it is.
        h = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD],
                           capture_output=True, text=True).stdout.strip()
        with open(cfg, "w") as f:
            f.write(f'''hostname = "bench.test"
[smtp]
listen = ["127.0.0.1:{self.smtp}"]
[pop3]
listen = []
[imap]
listen = ["127.0.0.1:{self.port}"]
idle_poll_secs = 600
[mailboxes]
root = "{root}"
domains = ["bench.test"]
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[log]
dir = "{d}/logs"
[control]
socket = "{d}/control.sock"
pid_file = "{d}/smtpd.pid"
[queue]
dir = "{d}/queue"
[[accounts]]
address = "{USER}"
password = "{h}"
''')
        self.proc = subprocess.Popen([util.SMTPD, "--foreground", "--config", cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        wait_port(self.port)

    def rss(self):
        return rss_kib(self.proc.pid)


class Dovecot:
    name = "dovecot"

    def __init__(self, root):
        self.dir = os.path.join(util.TMP, "dovecot")
        os.makedirs(os.path.join(self.dir, "state"))
        self.port = free_port()
        md = os.path.join(root, "bench.test", "bench")
        crypt = subprocess.run(["doveadm", "pw", "-s", "SHA512-CRYPT", "-p", PASSWORD],
                               capture_output=True, text=True).stdout.strip()
        open(os.path.join(self.dir, "passwd"), "w").write(
            f"{USER}:{crypt}:{NOBODY}:{NOBODY}::{md}::userdb_mail=maildir:{md}\n")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        open(self.conf, "w").write(f"""base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 1
mail_location = maildir:{md}
default_process_limit = 20000
default_client_limit = 20000
protocol imap {{
  mail_max_userip_connections = 20000
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  service_count = 0
}}
passdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
""")
        run(["dovecot", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        DOVECOTS.append(self)
        wait_port(self.port)
        self.version = subprocess.run(["dovecot", "--version"], capture_output=True, text=True).stdout.strip()

    def rss(self):
        """Every imap and imap-login process's (only this Dovecot runs here)."""
        total = 0
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                comm = open(f"/proc/{pid}/comm").read().strip()
            except OSError:
                continue
            if comm in ("imap", "imap-login"):
                total += rss_kib(int(pid))
        return total

    def stop(self):
        subprocess.run(["doveadm", "-c", self.conf, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def idle_latency(server, smtpd, n):
    import smtplib
    c = Imap(server.port)
    c.login()
    sel = c.cmd("SELECT INBOX")
    exists = int(re.search(rb"\* (\d+) EXISTS", sel).group(1))
    c.n += 1
    c.s.sendall(b"I IDLE\r\n")
    c.read_until(b"\r\n")  # + idling
    lat = []
    with smtplib.SMTP("127.0.0.1", smtpd.smtp) as s:
        for i in range(n):
            s.mail("a@b.test")
            s.rcpt(USER)
            s.putcmd("DATA")
            s.getreply()
            s.send(b"Subject: idle %d\r\n\r\nx\r\n.\r\n" % i)
            code, _ = s.getreply()
            t0 = time.perf_counter()
            assert code == 250, code
            exists += 1
            want = b"* %d EXISTS\r\n" % exists
            c.read_until(want)
            lat.append((time.perf_counter() - t0) * 1000)
    c.s.sendall(b"DONE\r\n")
    c.read_until(b"I OK")
    c.close()
    lat.sort()
    return statistics.median(lat), lat[min(len(lat) - 1, int(len(lat) * 0.99))]


def idle_rss(server, n):
    before = server.rss()
    conns = []
    for _ in range(n):
        c = Imap(server.port)
        c.login()
        c.cmd("SELECT INBOX")
        c.s.sendall(b"I IDLE\r\n")
        c.read_until(b"+ ")
        conns.append(c)
    time.sleep(1)  # a settled RSS (not a test: a measurement)
    after = server.rss()
    for c in conns:
        c.s.close()
    return (after - before) / n


def fmt(x):
    return f"{x:.1f}" if x < 100 else f"{x:.0f}"


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    util.make_tmp()
    run(["cargo", "build", "--release", "--quiet", "--bins"], cwd=REPO)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    util.SMTPD, util.SMTPCTL = (os.path.join(target, "release", b) for b in ("smtpd", "smtpctl"))
    root = os.path.join(util.TMP, "mail")
    md = os.path.join(root, "bench.test", "bench")
    os.makedirs(md)
    smtpd, dove = Smtpd(root), Dovecot(root)
    rows = []
    for n in [int(x) for x in ARGS.messages.split(",")]:
        shutil.rmtree(md)
        fill(md, n)
        for server in (smtpd, dove):
            drop_indexes(md)
            cold, got = listing(server.port)
            assert got == n, (server.name, got, n)
            warm = statistics.median(listing(server.port)[0] for _ in range(ARGS.runs))
            rows.append((n, server.name, cold * 1000, warm * 1000))
            log(f"{n} {server.name}: cold {cold * 1000:.0f} ms, warm {warm * 1000:.0f} ms")
    shutil.rmtree(md)
    fill(md, ARGS.bodies, body=b"Subject: big\r\n\r\n" + (b"y" * 1022 + b"\r\n") * 1024)
    bodies = {}
    for server in (smtpd, dove):
        listing(server.port)
        c = Imap(server.port)
        c.login()
        c.cmd("SELECT INBOX")
        t0 = time.perf_counter()
        data = c.cmd("UID FETCH 1:* BODY.PEEK[]")
        secs = time.perf_counter() - t0
        c.close()
        bodies[server.name] = len(data) / secs / (1 << 20)
        log(f"FETCH BODY[] {server.name}: {bodies[server.name]:.0f} MiB/s")
    idle = {s.name: idle_latency(s, smtpd, ARGS.idle) for s in (smtpd, dove)}
    for k, v in idle.items():
        log(f"IDLE {k}: p50 {v[0]:.2f} ms, p99 {v[1]:.2f} ms")
    per = {s.name: idle_rss(s, ARGS.sessions) for s in (smtpd, dove)}
    for k, v in per.items():
        log(f"RSS per IDLE session {k}: {v:.1f} KiB at {ARGS.sessions}")
    more = idle_rss(smtpd, ARGS.smtpd_sessions) if ARGS.smtpd_sessions else None
    if more is not None:
        log(f"RSS per IDLE session smtpd: {more:.1f} KiB at {ARGS.smtpd_sessions}")
    lines = ["# IMAP: smtpd against Dovecot on the same Maildir (issue 16)", "",
             f"`sudo bench/imap.py --messages {ARGS.messages} --runs {ARGS.runs} --bodies {ARGS.bodies} "
             f"--idle {ARGS.idle} --sessions {ARGS.sessions} --smtpd-sessions {ARGS.smtpd_sessions}`, {time.strftime('%Y-%m-%d')}, "
             f"{os.cpu_count()} cores, Dovecot {dove.version}, release build; loopback.", "",
             "Listing: login + SELECT + `UID FETCH 1:* (UID FLAGS RFC822.SIZE)` + LOGOUT, ms "
             "(cold: indexes removed" + (", page cache dropped" if os.geteuid() == 0 else "") +
             "; warm: median of the runs).", "",
             "| messages | server | cold ms | warm ms |", "|---|---|---|---|"]
    lines += [f"| {n} | {s} | {fmt(c)} | {fmt(w)} |" for n, s, c, w in rows]
    lines += ["", "| | smtpd | Dovecot |", "|---|---|---|",
              f"| FETCH BODY[] of {ARGS.bodies} × 1 MiB, MiB/s | {bodies['smtpd']:.0f} | {bodies['dovecot']:.0f} |",
              f"| IDLE wake after the SMTP 250, p50 ms | {idle['smtpd'][0]:.2f} | {idle['dovecot'][0]:.2f} |",
              f"| IDLE wake after the SMTP 250, p99 ms | {idle['smtpd'][1]:.2f} | {idle['dovecot'][1]:.2f} |",
              f"| RSS per IDLE session at {ARGS.sessions}, KiB | {per['smtpd']:.1f} | {per['dovecot']:.1f} |",
              *([f"| RSS per IDLE session at {ARGS.smtpd_sessions}, KiB | {more:.1f} | (not run) |"]
                if more is not None else []),
              "", "Dovecot's RSS counts its imap and imap-login processes (one imap process a "
              "session, as Debian configures it)."]
    with open(ARGS.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"wrote {ARGS.out}")


try:
    main()
finally:
    for d in DOVECOTS:
        d.stop()
    for p in STARTED:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    if not util.KEEP and util.TMP:
        shutil.rmtree(util.TMP, ignore_errors=True)
