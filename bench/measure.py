"""Measurements: the disk's durable-create limit, the SMTP load drivers and one measured run,
idle sessions, a large message's RSS peak, POP3 sessions, and the /proc CPU and RSS helpers."""
import json, os, shutil, socket, statistics, subprocess, threading, time

import util
from util import DOMAIN, MiB, run

CLK = os.sysconf("SC_CLK_TCK")


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
    d = os.path.join(util.TMP, f"disk{threads}")
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



# ---------------------------------------------------------------------------------- the drivers
def smtp_source(port, sessions, count, size):
    # -d: keep each session for the next message (as smtp-send bench does).
    run(["smtp-source", "-d", "-s", str(sessions), "-m", str(count), "-l", str(size), "-f",
         "bench@client.test", "-t", f"bench0@{DOMAIN}", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return None


def smtp_send(port, sessions, count, size):
    per = max(1, count // sessions)
    r = run([util.SMTP_SEND, "bench", "127.0.0.1", str(port), "--sessions", str(sessions), "--messages",
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


# ------------------------------------------------------------------------------- relaying
RELAY_RCPT = "x@far.test"  # a domain that neither server delivers locally


def relay_run(server, sink, sessions, count, size, timeout=180):
    """One relay run: smtp-source submits `count` messages over `sessions` sessions for a remote
    domain; the server relays them to `sink`. The rate is end to end: messages counted at the
    sink over the time from smtp-source's start to the sink counting the last one. CPU is the
    server's from that start until its queue is empty again (the work after the sink's 250,
    such as removing the queued files, included). Bounded: smtp-source is stopped after
    `timeout` seconds, and the sink is waited for 60 s more."""
    base, sess0 = sink.counted()
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    try:
        run(["smtp-source", "-d", "-s", str(sessions), "-m", str(count), "-l", str(size), "-f",
             "bench@client.test", "-t", RELAY_RCPT, f"127.0.0.1:{server.port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        util.log(f"{server.name}: smtp-source still submitting after {timeout} s: stopped")
    submitted = time.perf_counter() - t0
    last = sink.wait_count(base + count, 60)
    wall = (last if last is not None else time.perf_counter()) - t0
    received = sink.counted()[0]
    end = time.monotonic() + 30
    while not server.queue_empty() and time.monotonic() < end:
        time.sleep(0.05)
    cpu = server.cpu() - cpu0
    # A session is counted by the sink when it ends: wait for connections the server keeps
    # (Postfix caches them for 2 s) to close.
    end = time.monotonic() + 10
    while established(sink.port) and time.monotonic() < end:
        time.sleep(0.1)
    sess1 = sink.counted()[1]
    relayed = min(count, received - base)
    return {"rate": relayed / wall, "relayed": relayed, "sent": count,
            "submit_rate": count / submitted, "cpu_per_1000": cpu * 1000 / max(1, relayed),
            "sink_sessions": sess1 - sess0}


def established(port):
    """TCP connections established to 127.0.0.1:port (its side, from /proc/net/tcp)."""
    n = 0
    for line in open("/proc/net/tcp").readlines()[1:]:
        f = line.split()
        if f[3] == "01" and int(f[1].rsplit(":", 1)[1], 16) == port:
            n += 1
    return n


def relay_latency(port, sink, n, size=1024, timeout=10):
    """One session, one message at a time: per message, the time from our client reading the
    250 after its final dot to the sink counting the relayed copy (the sink's own 250). The
    next message is sent once the sink has counted the previous one. The sink's time is taken
    by CountingSink's reader as the record arrives (see there), so the resolution is a thread
    wake-up, tens of microseconds; the same measurement against the sink itself (port = the
    sink's) gives the floor."""
    body = (b"Subject: relay latency\r\n\r\n" + b"x" * 76 + b"\r\n") * max(1, size // 104)
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    f = s.makefile("rb")

    def reply(expect):
        while True:
            line = f.readline()
            if not line.startswith(expect):
                raise RuntimeError(f"expected {expect!r}, got {line!r}")
            if line[3:4] != b"-":
                return

    reply(b"220")
    s.sendall(b"EHLO bench.test\r\n")
    reply(b"250")
    ms = []
    for _ in range(n):
        base = sink.counted()[0]
        s.sendall(b"MAIL FROM:<bench@client.test>\r\n")
        reply(b"250")
        s.sendall(f"RCPT TO:<{RELAY_RCPT}>\r\n".encode())
        reply(b"250")
        s.sendall(b"DATA\r\n")
        reply(b"354")
        s.sendall(body + b".\r\n")
        reply(b"250")
        t = time.perf_counter()
        at = sink.wait_count(base + 1, timeout)
        if at is None:
            raise RuntimeError(f"the sink did not count a message within {timeout} s")
        ms.append((at - t) * 1000)
    s.sendall(b"QUIT\r\n")
    s.close()
    ms.sort()
    return {"p50": statistics.median(ms), "p99": ms[min(len(ms) - 1, int(len(ms) * 0.99))],
            "samples": n}
