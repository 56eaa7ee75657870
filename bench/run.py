#!/usr/bin/env python3
"""The benchmark of issue 8: smtpd against the disk's durable-create limit, Postfix's smtp-sink
(stores nothing), Postfix delivering to Maildir, and Dovecot's POP3, all in one run on loopback.

usage: bench/run.py [--runs N] [--quick] [--out BENCHMARKS.md] [--no-install]

Builds release, starts smtpd on port 0 with a temporary Maildir root, installs postfix and
dovecot-pop3d with apt-get when missing (as root; --no-install skips them), runs each of them with
its own config under a temporary directory on 127.0.0.1, stops everything it started, and writes
BENCHMARKS.md (machine, versions, tables, ratios). Every figure is the median of --runs runs
(default 3). Throughput counts delivered files, not only acknowledgements. --quick: one run and
fewer messages, for trying the script.
"""
import argparse, json, os, platform, pwd, re, resource, shutil, signal, socket, statistics
import subprocess, sys, tempfile, threading, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"))
ap.add_argument("--no-install", action="store_true")
ap.add_argument("--report-only", action="store_true",
                help="rewrite the report from bench/last-run.json without measuring")
ap.add_argument("--only", default="disk,large,smtp,idle,pop3",
                help="comma-separated parts to run (disk, large, smtp, idle, pop3); the other "
                "parts of the report are kept from bench/last-run.json")
ARGS = ap.parse_args()
RUNS = 1 if ARGS.quick else ARGS.runs
ONLY = set(ARGS.only.split(","))
DEADLINE = time.monotonic() + 14 * 60  # the whole run stays under 15 minutes
TMP = tempfile.mkdtemp(prefix="smtpd-bench-")
os.chmod(TMP, 0o755)  # Postfix's and Dovecot's unprivileged processes walk into it
KEEP = os.environ.get("BENCH_KEEP")  # keep the temporary directory, to look into a failure
STARTED = []  # Popen objects to stop at the end
DOMAIN = "bench.test"
CLK = os.sysconf("SC_CLK_TCK")
KiB, MiB = 1024, 1024 * 1024


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=20):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                if s.recv(512).startswith(b"220") or True:
                    return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing answers on 127.0.0.1:{port}")


def cpu_secs(pids, children=True):
    """utime+stime (and waited-for children's) of the given processes, in seconds."""
    total = 0
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12]) + ((int(f[13]) + int(f[14])) if children else 0)
    return total / CLK


def descendants(pid):
    kids, out = {}, []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                ppid = int(open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            kids.setdefault(ppid, []).append(int(d))
    todo = [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(kids.get(p, []))
    return out


def rss_kib(pid, field="VmRSS"):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def large_message_peak(smtpd, mib=25):
    """smtpd's RSS before and at its highest while receiving one message of `mib` MiB (sampled
    every 2 ms from another thread)."""
    before = rss_kib(smtpd.proc.pid)
    peak = [before]
    done = threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], rss_kib(smtpd.proc.pid))
            time.sleep(0.002)

    sampler = threading.Thread(target=sample)
    sampler.start()
    line = b"x" * 998 + b"\r\n"
    body = b"Subject: large\r\n\r\n" + line * (mib * MiB // len(line))
    s = socket.create_connection(("127.0.0.1", smtpd.port))
    f = s.makefile("rb")
    f.readline()
    s.sendall(b"EHLO bench\r\n")
    while not f.readline().startswith(b"250 "):
        pass
    s.sendall(f"MAIL FROM:<a@client.test>\r\nRCPT TO:<large@{DOMAIN}>\r\nDATA\r\n".encode())
    for _ in range(3):
        f.readline()
    t0 = time.perf_counter()
    s.sendall(body + b".\r\n")
    reply = f.readline()
    secs = time.perf_counter() - t0
    s.close()
    done.set()
    sampler.join()
    assert reply.startswith(b"250"), reply
    return {"mib": mib, "hwm_before_kib": before, "hwm_after_kib": peak[0],
            "data_to_250_ms": secs * 1000}


def count_files(d):
    try:
        return len(os.listdir(d))
    except FileNotFoundError:
        return 0


# ---------------------------------------------------------------- the disk's durable-create limit
def disk_limit(threads, secs=2.0):
    d = os.path.join(TMP, f"disk{threads}")
    os.makedirs(d + "/tmp"), os.makedirs(d + "/new")
    counts = [0] * threads
    stop = time.perf_counter() + secs

    def worker(i):
        dfd = os.open(d + "/new", os.O_RDONLY)
        n = 0
        while time.perf_counter() < stop:
            p = f"{d}/tmp/{i}.{n}"
            fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, b"x" * 1024)
            os.fsync(fd)
            os.close(fd)
            os.rename(p, f"{d}/new/{i}.{n}")
            os.fsync(dfd)
            n += 1
        os.close(dfd)
        counts[i] = n

    t0 = time.perf_counter()
    ths = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    [t.start() for t in ths]
    [t.join() for t in ths]
    rate = sum(counts) / (time.perf_counter() - t0)
    shutil.rmtree(d)
    return rate


# ---------------------------------------------------------------------------------- the servers
class Smtpd:
    name = "smtpd"

    def __init__(self, name="smtpd"):
        self.dir = os.path.join(TMP, name)
        self.root = os.path.join(self.dir, "mailboxes")
        os.makedirs(self.root)
        self.cfg = os.path.join(self.dir, "smtpd.toml")
        self.sock = os.path.join(self.dir, "control.sock")
        with open(self.cfg, "w") as f:
            f.write(f'''hostname = "bench.test"
[smtp]
listen = ["127.0.0.1:0"]
[pop3]
listen = ["127.0.0.1:0"]
[mailboxes]
root = "{self.root}"
domains = ["{DOMAIN}", "pop.test"]
[limits]
max_message_bytes = 52428800
max_connections = 20000
max_connections_per_ip = 20000
[log]
dir = "{self.dir}/logs"
[control]
socket = "{self.sock}"
pid_file = "{self.dir}/smtpd.pid"
[[accounts]]
address = "pop@pop.test"
password = "{POP_HASH}"
''')
        self.proc = subprocess.Popen([SMTPD, "--foreground", "--config", self.cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        status = None
        for _ in range(200):
            r = subprocess.run([SMTPCTL, "--socket", self.sock, "--json", "status"], capture_output=True)
            if r.returncode == 0:
                status = json.loads(r.stdout)
                break
            time.sleep(0.05)
        if not status:
            raise SystemExit("smtpd did not start")
        ports = {l["protocol"]: int(l["address"].rsplit(":", 1)[1]) for l in status["listeners"]}
        self.port, self.pop3_port = ports["smtp"], ports["pop3"]
        self.version = status["version"]

    def maildir_new(self):
        return os.path.join(self.root, DOMAIN, "bench0", "new")

    def cpu(self):
        return cpu_secs([self.proc.pid])

    def pids(self):
        return [self.proc.pid]


class Sink:
    """Postfix's smtp-sink: answers SMTP and stores nothing."""
    name = "smtp-sink"

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-u", "nobody", f"127.0.0.1:{self.port}", "256"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        wait_port(self.port)

    def maildir_new(self):
        return None

    def cpu(self):
        return cpu_secs([self.proc.pid])


class Postfix:
    name = "postfix"

    def __init__(self):
        self.dir = os.path.join(TMP, "postfix")
        etc, self.mail = os.path.join(self.dir, "etc"), os.path.join(self.dir, "mail")
        os.makedirs(etc)
        os.makedirs(self.mail)
        nobody = pwd.getpwnam("nobody")
        os.chown(self.mail, nobody.pw_uid, nobody.pw_gid)
        self.port = free_port()
        master = open("/etc/postfix/master.cf").read().splitlines()
        out = []
        for line in master:
            f = line.split()
            if f and f[0] == "smtp" and f[1] == "inet":
                f[0] = f"127.0.0.1:{self.port}"
            if len(f) >= 8 and not line.startswith((" ", "\t", "#")):
                f[4] = "n"  # no chroot: the queue lives in a temporary directory
                line = " ".join(f)
            out.append(line)
        open(os.path.join(etc, "master.cf"), "w").write("\n".join(out) + "\n")
        open(os.path.join(etc, "main.cf"), "w").write(f"""compatibility_level = 3.6
queue_directory = {self.dir}/queue
data_directory = {self.dir}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = postfix.bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_banner = $myhostname ESMTP
message_size_limit = 52428800
virtual_mailbox_limit = 0
virtual_mailbox_domains = {DOMAIN}
virtual_mailbox_base = {self.mail}
virtual_mailbox_maps = static:bench/
virtual_uid_maps = static:{nobody.pw_uid}
virtual_gid_maps = static:{nobody.pw_gid}
virtual_minimum_uid = 1
maillog_file = {self.dir}/maillog
maillog_file_prefixes = {self.dir}
smtpd_client_connection_count_limit = 0
smtpd_client_message_rate_limit = 0
default_process_limit = 100
biff = no
""")
        os.makedirs(os.path.join(self.dir, "data"))
        os.makedirs(os.path.join(self.dir, "queue"))
        shutil.chown(os.path.join(self.dir, "data"), "postfix")
        self.etc = etc
        run(["postfix", "-c", etc, "check"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        run(["postfix", "-c", etc, "start"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.master = int(open(os.path.join(self.dir, "queue", "pid", "master.pid")).read().split()[0])
        self.version = subprocess.run(["postconf", "-d", "-h", "mail_version"], capture_output=True,
                                      text=True).stdout.strip()

    def maildir_new(self):
        return os.path.join(self.mail, "bench", "new")

    def cpu(self):
        # The master's own and waited-for children's time, plus the children still alive.
        return cpu_secs([self.master]) + cpu_secs(descendants(self.master)[1:], children=False)

    def stop(self):
        subprocess.run(["postfix", "-c", self.etc, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------- the drivers
def smtp_source(port, sessions, count, size):
    # -d: keep each session for the next message (as smtp-send bench does).
    run(["smtp-source", "-d", "-s", str(sessions), "-m", str(count), "-l", str(size), "-f",
         "bench@client.test", "-t", f"bench0@{DOMAIN}", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return None


def smtp_send(port, sessions, count, size):
    per = max(1, count // sessions)
    r = run([SMTP_SEND, "bench", "127.0.0.1", str(port), "--sessions", str(sessions), "--messages",
             str(per), "--size", str(size), "--domain", DOMAIN, "--json"], capture_output=True)
    return json.loads(r.stdout)


def measure(server, driver, sessions, count, size):
    """One run: wall time until every message is delivered (files in new/), server CPU."""
    new = server.maildir_new()
    before = count_files(new) if new else 0
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    report = driver(server.port, sessions, count, size)
    sent = count if report is None else report["messages_sent"]
    delivered = sent
    if new:
        end = time.monotonic() + 120
        while count_files(new) - before < sent and time.monotonic() < end:
            time.sleep(0.005)
        delivered = count_files(new) - before
    wall = time.perf_counter() - t0
    if new:
        # The next run starts on an empty maildir: this one is moved aside (both servers make a
        # missing maildir again), not emptied, because mass deletion slows ext4's inode
        # allocation for a while after; only the large messages are deleted (few inodes).
        md = os.path.dirname(new)
        if size >= MiB:
            shutil.rmtree(md)
        else:
            global MOVED
            MOVED += 1
            os.rename(md, f"{md}.done{MOVED}")
    return {"rate": delivered / wall, "delivered": delivered, "sent": sent,
            "cpu_per_1000": (server.cpu() - cpu0) * 1000 / max(1, delivered), "report": report}


MOVED = 0


def median(runs, key):
    return statistics.median(r[key] for r in runs)


# ---------------------------------------------------------------------------------- idle sessions
def idle_rss(smtpd, n):
    base = rss_kib(smtpd.proc.pid)
    socks = []
    try:
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", smtpd.port))
            socks.append(s)
        for s in socks:  # every session is set up once its greeting has arrived
            s.settimeout(10)
            assert s.recv(512).startswith(b"220")
        time.sleep(0.2)
        rss = rss_kib(smtpd.proc.pid)
    finally:
        for s in socks:
            s.close()
    return base, rss


# ---------------------------------------------------------------------------------------- POP3
POP_BODY = b"Return-Path: <a@b.test>\nSubject: bench\n\n" + b"x" * 900 + b"\n"


def fill_maildrop(md, n):
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    have = count_files(os.path.join(md, "cur"))
    wire = len(POP_BODY) + POP_BODY.count(b"\n")
    for i in range(have, n):
        name = f"1795000000.M{i}P1Q{i}.bench,S={len(POP_BODY)},W={wire}:2,"
        with open(os.path.join(md, "cur", name), "wb") as f:
            f.write(POP_BODY)


def pop3_session(port, user, retr=0):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")

    def cmd(c, multi=False):
        s.sendall(c)
        first = f.readline()
        assert first.startswith(b"+OK"), (c, first)
        n = size = 0
        if multi:
            while (line := f.readline()) != b".\r\n":
                n += 1
                size += len(line)
        return n, size

    t0 = time.perf_counter()
    cmd(f"USER {user}\r\n".encode())
    cmd(b"PASS bench\r\n")
    cmd(b"STAT\r\n")
    n, _ = cmd(b"LIST\r\n", True)
    u, _ = cmd(b"UIDL\r\n", True)
    listing = time.perf_counter() - t0
    octets = 0
    t1 = time.perf_counter()
    for i in range(1, retr + 1):
        octets += cmd(f"RETR {i}\r\n".encode(), True)[1]
    retr_secs = time.perf_counter() - t1
    s.sendall(b"QUIT\r\n")
    f.readline()
    s.close()
    assert n == u, (n, u)
    return {"listing_ms": listing * 1000, "messages": n,
            "retr_mb_s": octets / MiB / retr_secs if retr else 0.0}


class Dovecot:
    name = "dovecot"

    def __init__(self, home):
        self.dir = os.path.join(TMP, "dovecot")
        os.makedirs(self.dir)
        self.port = free_port()
        uid = os.stat(home).st_uid
        gid = os.stat(home).st_gid
        open(os.path.join(self.dir, "passwd"), "w").write(
            f"pop@pop.test:{POP_HASH_DOVECOT}:{uid}:{gid}::{home}::userdb_mail=maildir:{home}\n")
        self.conf = os.path.join(self.dir, "dovecot.conf")
        open(self.conf, "w").write(f"""base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.dir}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = 0
mail_location = maildir:{home}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
}}
passdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
userdb {{
  driver = passwd-file
  args = {self.dir}/passwd
}}
protocol pop3 {{
  pop3_uidl_format = %f
}}
""")
        os.makedirs(os.path.join(self.dir, "state"))
        run(["dovecot", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.version = subprocess.run(["dovecot", "--version"], capture_output=True,
                                      text=True).stdout.strip()

    def stop(self):
        subprocess.run(["doveadm", "-c", self.conf, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


# ---------------------------------------------------------------------------------------- main
def ensure_tools():
    need = []
    if not shutil.which("smtp-source"):
        need.append("postfix")
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/pop3"):
        need.append("dovecot-pop3d")
    if need and not ARGS.no_install and os.geteuid() == 0:
        log(f"installing {' '.join(need)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq"] + need, env=env, check=False,
                       stdout=subprocess.DEVNULL)


def fmt_rate(x):
    return f"{x:,.0f}"


def main():
    global SMTPD, SMTPCTL, SMTP_SEND, POP_HASH, POP_HASH_DOVECOT
    if ARGS.report_only:
        r = json.load(open(os.path.join(REPO, "bench", "last-run.json")))
        r["disk"] = {int(k): v for k, v in r["disk"].items()}
        write_report(r)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    run(["cargo", "build", "--release", "--quiet", "--bins"], cwd=REPO)
    SMTPD, SMTPCTL, SMTP_SEND = (os.path.join(REPO, "target/release", b)
                                 for b in ("smtpd", "smtpctl", "smtp-send"))
    # sha512-crypt: the same hash (and cost) for smtpd and Dovecot.
    POP_HASH = run(["openssl", "passwd", "-6", "bench"], capture_output=True, text=True).stdout.strip()
    POP_HASH_DOVECOT = "{SHA512-CRYPT}" + POP_HASH
    ensure_tools()
    have_postfix = shutil.which("smtp-source") and shutil.which("postfix") and os.geteuid() == 0
    have_dovecot = shutil.which("dovecot") and os.geteuid() == 0

    results = {"disk": {}, "smtp": [], "latency": {}, "idle": [], "pop3": []}
    log("disk durable-create limit")
    for t in (1, 8) if "disk" in ONLY else ():
        results["disk"][t] = statistics.median(disk_limit(t) for _ in range(RUNS))

    smtpd = Smtpd()
    servers = [smtpd]
    sink = postfix = None
    if have_postfix and "smtp" in ONLY:
        sink = Sink()
        postfix = Postfix()
        servers = [sink, postfix, smtpd]
    drivers = [("smtp-send bench", smtp_send)] + ([("smtp-source", smtp_source)] if have_postfix else [])
    scale = 0.25 if ARGS.quick else 1.0
    plan = [(1 * KiB, {1: 600, 8: 2000, 32: 3000}), (100 * KiB, {1: 200, 8: 600, 32: 800}),
            (10 * MiB, {1: 3, 8: 8, 32: 32})]
    try:
        for size, counts in plan if "smtp" in ONLY else ():
            for sessions, count in counts.items():
                count = max(sessions, int(count * scale)) if size < MiB else count
                for dname, driver in drivers:
                    for server in servers:
                        if time.monotonic() > DEADLINE:
                            log("time budget spent: skipping the rest")
                            break
                        runs = [measure(server, driver, sessions, count, size) for _ in range(RUNS)]
                        row = {"server": server.name, "driver": dname, "sessions": sessions,
                               "size": size, "count": count,
                               "rate": median(runs, "rate"), "cpu_per_1000": median(runs, "cpu_per_1000"),
                               "delivered": min(r["delivered"] for r in runs),
                               "sent": min(r["sent"] for r in runs)}
                        if runs[0]["report"]:
                            row["p50"] = statistics.median(r["report"]["latency_ms_p50"] for r in runs)
                            row["p99"] = statistics.median(r["report"]["latency_ms_p99"] for r in runs)
                        results["smtp"].append(row)
                        log(f"{server.name:9s} {dname:15s} {sessions:2d} sessions {size:>9} B: "
                            f"{row['rate']:8.1f}/s, {row['cpu_per_1000']:.2f} CPU-s/1000, "
                            f"{row['delivered']}/{row['sent']} delivered")
        # A fresh smtpd, so that memory freed by the load above does not hide what a large
        # message or idle sessions cost.
        fresh = Smtpd("smtpd-fresh") if ONLY & {"large", "idle"} else None
        if "large" in ONLY:
            results["large"] = large_message_peak(fresh)
            log(f"25 MiB message: RSS {results['large']['hwm_before_kib']} KiB -> at most "
                f"{results['large']['hwm_after_kib']} KiB")
        for n in (1000, 10000) if "idle" in ONLY else ():
            base, rss = idle_rss(fresh, n)
            results["idle"].append({"sessions": n, "base_kib": base, "rss_kib": rss,
                                    "per_session_kib": (rss - base) / n})
            log(f"idle sessions {n}: {base} KiB -> {rss} KiB")
        # POP3: one maildrop, grown from 10,000 to 100,000 messages.
        home = os.path.join(smtpd.root, "pop.test", "pop")
        dovecot = None
        for n in (10000, 100000) if "pop3" in ONLY else ():
            fill_maildrop(home, n)
            if have_dovecot:
                nobody = pwd.getpwnam("nobody")
                for dp, dn, fn in os.walk(home):
                    os.chown(dp, nobody.pw_uid, nobody.pw_gid)
                if dovecot is None:
                    dovecot = Dovecot(home)
            for name, port in [("smtpd", smtpd.pop3_port)] + ([("dovecot", dovecot.port)] if dovecot else []):
                runs = [pop3_session(port, "pop@pop.test", retr=2000) for _ in range(RUNS)]
                row = {"server": name, "messages": n, "listing_ms": median(runs, "listing_ms"),
                       "retr_mb_s": median(runs, "retr_mb_s")}
                results["pop3"].append(row)
                log(f"pop3 {name:7s} {n:6d} messages: login+STAT+LIST+UIDL {row['listing_ms']:.1f} ms, "
                    f"RETR {row['retr_mb_s']:.1f} MiB/s")
        if dovecot:
            dovecot.stop()
    finally:
        if postfix:
            postfix.stop()
        for p in STARTED:
            if p.poll() is None:
                p.terminate()
                p.wait()
    last = os.path.join(REPO, "bench", "last-run.json")
    if ONLY != {"disk", "large", "smtp", "idle", "pop3"} and os.path.exists(last):
        kept = json.load(open(last))
        kept["disk"] = {int(k): v for k, v in kept["disk"].items()}
        for part, key in [("disk", "disk"), ("large", "large"), ("smtp", "smtp"), ("idle", "idle"),
                          ("pop3", "pop3")]:
            if part not in ONLY and key in kept:
                results[key] = kept[key]
    results["versions"] = {"smtpd": smtpd.version, "postfix": postfix.version if postfix else None,
                           "dovecot": dovecot.version if have_dovecot and dovecot else None}
    if ONLY != {"disk", "large", "smtp", "idle", "pop3"} and os.path.exists(last):
        for k, v in kept.get("versions", {}).items():
            results["versions"][k] = results["versions"][k] or v
    write_report(results)
    if not KEEP:
        shutil.rmtree(TMP, ignore_errors=True)


def size_name(n):
    return f"{n // MiB} MiB" if n >= MiB else f"{n // KiB} KiB"


def targets(r):
    """Issue 8's targets, checked against this run's numbers."""
    rows = r["smtp"]

    def get(server, size, sessions, driver):
        return next((x for x in rows if (x["server"], x["size"], x["sessions"], x["driver"])
                     == (server, size, sessions, driver)), None)

    out = ["", "## Targets (issue 8), from this run", "", "| target | measured | met |", "|---|---|---|"]

    def add(name, value, ok):
        out.append(f"| {name} | {value} | {'yes' if ok else 'no'} |")

    drivers = sorted({x["driver"] for x in rows})
    for d in drivers:
        m, p, s = get("smtpd", KiB, 32, d), get("postfix", KiB, 32, d), get("smtp-sink", KiB, 32, d)
        if m and p:
            add(f"32 sessions × 1 KiB ≥ 4× Postfix ({d})", f"{m['rate'] / p['rate']:.2f}×", m["rate"] >= 4 * p["rate"])
        if m and s:
            add(f"32 sessions × 1 KiB ≥ 40% of smtp-sink ({d})", f"{100 * m['rate'] / s['rate']:.0f}%", m["rate"] >= 0.4 * s["rate"])
        m, s = get("smtpd", 100 * KiB, 32, d), get("smtp-sink", 100 * KiB, 32, d)
        if m and s:
            add(f"32 sessions × 100 KiB ≥ 60% of smtp-sink ({d})", f"{100 * m['rate'] / s['rate']:.0f}%", m["rate"] >= 0.6 * s["rate"])
    m, p = get("smtpd", KiB, 1, "smtp-send bench"), get("postfix", KiB, 1, "smtp-send bench")
    if m and p and "p50" in m and "p50" in p:
        add("single-session p50 ≤ 0.5× Postfix's", f"{m['p50']:.2f} / {p['p50']:.2f} ms = {m['p50'] / p['p50']:.2f}×", m["p50"] <= 0.5 * p["p50"])
    for d in drivers:
        for n in (1, 8, 32):
            m, p = get("smtpd", KiB, n, d), get("postfix", KiB, n, d)
            if m and p:
                ratio = m["cpu_per_1000"] / p["cpu_per_1000"]
                add(f"CPU per 1,000 × 1 KiB ≤ 0.2× Postfix's ({n} sessions, {d})", f"{m['cpu_per_1000']:.2f} / {p['cpu_per_1000']:.2f} s = {ratio:.2f}×", ratio <= 0.2)
    if r.get("large"):
        g = r["large"]["hwm_after_kib"] - r["large"]["hwm_before_kib"]
        add("a 25 MiB message grows RSS by < 4 MiB", f"+{g:,} KiB", g < 4096)
    for row in r["idle"]:
        if row["sessions"] == 10000:
            add("≤ 16 KiB RSS per idle session at 10,000", f"{row['per_session_kib']:.1f} KiB", row["per_session_kib"] <= 16)
    pm = {(x["server"], x["messages"]): x for x in r["pop3"]}
    if ("smtpd", 100000) in pm and ("dovecot", 100000) in pm:
        a, b = pm[("smtpd", 100000)]["listing_ms"], pm[("dovecot", 100000)]["listing_ms"]
        add("POP3 100,000 messages: login+STAT+LIST+UIDL faster than Dovecot", f"{a:.0f} vs {b:.0f} ms", a < b)
    return out


def write_report(r):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Benchmarks", "",
        f"Written by `bench/run.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"median of {RUNS} run(s). Loopback only.", "",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
        f"{os.statvfs(TMP).f_bsize} B blocks on the temporary directory's filesystem",
        f"- smtpd {r['versions']['smtpd']} (release build), Postfix {r['versions']['postfix'] or 'not run'}, "
        f"Dovecot {r['versions']['dovecot'] or 'not run'}",
        "- throughput = messages found in `new/` divided by the time from the first connection "
        "until the last file appeared (Postfix delivers after its 250, so its time includes the queue)",
        "- CPU = the server's user+system seconds per 1,000 delivered messages (Postfix: master and "
        "every child process)", "",
        "## The disk's durable-create limit", "",
        "write 1 KiB, fsync the file, rename into new/, fsync the directory:", "",
        "| threads | creates/s |", "|---|---|",
    ]
    for t, v in r["disk"].items():
        lines.append(f"| {t} | {fmt_rate(v)} |")
    lines += ["", "## SMTP throughput, messages/s (delivered)", "",
              "| size | sessions | driver | smtp-sink | Postfix | smtpd | smtpd/Postfix | smtpd/smtp-sink | "
              "CPU-s/1000 Postfix | CPU-s/1000 smtpd |", "|---|---|---|---|---|---|---|---|---|---|"]
    rows = r["smtp"]
    keys = []
    for row in rows:
        k = (row["size"], row["sessions"], row["driver"])
        if k not in keys:
            keys.append(k)
    for k in keys:
        by = {row["server"]: row for row in rows if (row["size"], row["sessions"], row["driver"]) == k}
        s, p, m = by.get("smtp-sink"), by.get("postfix"), by.get("smtpd")
        cell = lambda x: fmt_rate(x["rate"]) if x else "-"
        ratio = lambda a, b: f"{a['rate'] / b['rate']:.2f}" if a and b and b["rate"] else "-"
        cpu = lambda x: f"{x['cpu_per_1000']:.2f}" if x else "-"
        lines.append(f"| {size_name(k[0])} | {k[1]} | {k[2]} | {cell(s)} | {cell(p)} | {cell(m)} | "
                     f"{ratio(m, p)} | {ratio(m, s)} | {cpu(p)} | {cpu(m)} |")
    short = [row for row in rows if row.get("delivered", 0) < row.get("sent", 0) and row["server"] != "smtp-sink"]
    for row in short:
        lines.append(f"\n**{row['server']} delivered {row['delivered']} of {row['sent']}** "
                     f"({size_name(row['size'])}, {row['sessions']} sessions, {row['driver']}).")
    lines += ["", "## Single-session latency (smtp-send bench, 1 KiB, MAIL to 250 after DATA)", "",
              "| server | p50 ms | p99 ms |", "|---|---|---|"]
    for row in rows:
        if row["size"] == KiB and row["sessions"] == 1 and "p50" in row:
            lines.append(f"| {row['server']} | {row['p50']:.2f} | {row['p99']:.2f} |")
    if r.get("large"):
        l = r["large"]
        lines += ["", f"## One {l['mib']} MiB message", "",
                  f"smtpd's RSS {l['hwm_before_kib']:,} KiB before, at most {l['hwm_after_kib']:,} KiB while it arrived: "
                  f"+{l['hwm_after_kib'] - l['hwm_before_kib']:,} KiB; DATA to 250 in {l['data_to_250_ms']:.0f} ms."]
    lines += ["", "## Idle sessions (smtpd RSS after every greeting arrived)", "",
              "| sessions | RSS before KiB | RSS with sessions KiB | KiB per session |", "|---|---|---|---|"]
    for row in r["idle"]:
        lines.append(f"| {row['sessions']:,} | {row['base_kib']:,} | {row['rss_kib']:,} | {row['per_session_kib']:.1f} |")
    lines += ["", "## POP3 (USER/PASS with the same sha512-crypt hash, STAT, LIST, UIDL; then 2,000 RETR)", "",
              "| messages | server | login+STAT+LIST+UIDL ms | RETR MiB/s |", "|---|---|---|---|"]
    for row in r["pop3"]:
        lines.append(f"| {row['messages']:,} | {row['server']} | {row['listing_ms']:.1f} | {row['retr_mb_s']:.1f} |")
    lines += targets(r)
    lines.append("")
    open(ARGS.out, "w").write("\n".join(lines))
    json.dump(r, open(os.path.join(REPO, "bench", "last-run.json"), "w"), indent=1)
    log(f"wrote {ARGS.out}")


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
        raise
