#!/usr/bin/env python3
"""The HTTP benchmark of issue 17: how soon GET /api/v1/wait returns after an SMTP delivery
(p50/p99), and how long the first page of GET /api/v1/messages (and of the web view) takes over
10,000 and 100,000 stored messages.

usage: bench/http_api.py [--samples N] [--sizes 10000,100000] [--out bench/HTTP.md]

Uses the release binaries (cargo build --release --bins first; CARGO_TARGET_DIR is honoured),
starts smtpd on 127.0.0.1 port 0 with a temporary Maildir root, and stops it at the end.

Wake latency: a wait for a unique subject is started and known to be waiting (the
smtpd_http_waits gauge of /metrics says 1); then one SMTP transaction sends a message with that
subject, its commands pipelined. Measured: from the moment the final "." is written to the
wait's answer ("end of DATA to wake"), and from the client reading the 250 to the wait's answer
(which can be negative: the waiter is woken when the copy is durable, as the 250 is sent).

List: the Maildir is filled directly with N small files named as smtpd names them; then the
first page (50, newest first) is asked for 5 times; the median is reported, for all mailboxes
and for the one Maildir, and for /web.
"""
import argparse, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ap = argparse.ArgumentParser()
ap.add_argument("--samples", type=int, default=200)
ap.add_argument("--sizes", default="10000,100000")
ap.add_argument("--out", default=os.path.join(REPO, "bench", "HTTP.md"))
ARGS = ap.parse_args()
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
BIN = os.environ.get("BENCH_BIN_DIR", os.path.join(TARGET, "release"))  # another build, to try the script
SMTPD, SMTPCTL = (os.path.join(BIN, b) for b in ("smtpd", "smtpctl"))


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def start(tmp):
    root = os.path.join(tmp, "mailboxes")
    cfg = os.path.join(tmp, "smtpd.toml")
    sock = os.path.join(tmp, "control.sock")
    with open(cfg, "w") as f:
        f.write(f'''hostname = "bench.test"
[smtp]
listen = ["127.0.0.1:0"]
[pop3]
listen = []
[http]
listen = ["127.0.0.1:0"]
max_waiters = 4
[mailboxes]
root = "{root}"
domains = ["bench.test"]
[log]
dir = "{tmp}/logs"
[control]
socket = "{sock}"
pid_file = "{tmp}/smtpd.pid"
[queue]
dir = "{tmp}/queue"
''')
    proc = subprocess.Popen([SMTPD, "--foreground", "--config", cfg],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(400):
        r = subprocess.run([SMTPCTL, "--socket", sock, "--json", "status"], capture_output=True)
        if r.returncode == 0:
            status = json.loads(r.stdout)
            ports = {l["protocol"]: int(l["address"].rsplit(":", 1)[1]) for l in status["listeners"]}
            return proc, root, ports["smtp"], ports["http"], status["version"]
        time.sleep(0.05)
    proc.terminate()
    raise SystemExit("smtpd did not start")


def get(url):
    with urllib.request.urlopen(url, timeout=60) as r:
        return r.read()


def waits(http):
    text = get(f"http://127.0.0.1:{http}/metrics").decode()
    for line in text.splitlines():
        if line.startswith("smtpd_http_waits "):
            return int(float(line.split()[1]))
    return 0


def wake_latency(smtp, http, n):
    """(end of DATA → wake, 250 → wake) in ms, n samples each."""
    from_dot, from_250 = [], []
    for i in range(n):
        subject = f"wake-{i}-{time.time_ns()}"
        done = {}

        def waiter():
            get(f"http://127.0.0.1:{http}/api/v1/wait?subject={subject}&timeout=20s")
            done["t"] = time.perf_counter()

        t = threading.Thread(target=waiter)
        t.start()
        while waits(http) < 1:
            time.sleep(0.001)
        s = socket.create_connection(("127.0.0.1", smtp))
        # Without it the final dot, a second small write, waits for the ACK of the text (Nagle
        # against the server's delayed ACK): 40 ms that are the client's, not the server's.
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        f = s.makefile("rb")
        f.readline()  # 220
        s.sendall(b"EHLO bench\r\n")
        while not f.readline()[3:4] == b" ":
            pass
        s.sendall(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<u@bench.test>\r\nDATA\r\n")
        for _ in range(3):
            f.readline()
        s.sendall(f"Subject: {subject}\r\n\r\nbody\r\n".encode())
        s.sendall(b".\r\n")
        t_dot = time.perf_counter()
        line = f.readline()
        t_250 = time.perf_counter()
        assert line.startswith(b"250"), line
        s.sendall(b"QUIT\r\n")
        t.join()
        s.close()
        from_dot.append((done["t"] - t_dot) * 1000)
        from_250.append((done["t"] - t_250) * 1000)
    return from_dot, from_250


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def fill(root, n, start):
    md = os.path.join(root, "bench.test", "many")
    for sub in ("tmp", "new", "cur"):
        os.makedirs(os.path.join(md, sub), exist_ok=True)
    for i in range(start, n):
        name = f"{1700000000 + i}.M{i % 1000000}P1Q{i}.bench.test,S=60"
        with open(os.path.join(md, "new", name), "w") as f:
            f.write(f"From: a@b.test\nTo: many@bench.test\nSubject: message {i}\n\nbody {i}\n")


def timed(url, runs=5):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        get(url)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def main():
    tmp = tempfile.mkdtemp(prefix="smtpd-bench-http-")
    proc, root, smtp, http, version = start(tmp)
    try:
        log(f"smtpd {version}: SMTP {smtp}, HTTP {http}")
        wake_latency(smtp, http, 5)  # warm-up
        from_dot, from_250 = wake_latency(smtp, http, ARGS.samples)
        wake = {"samples": ARGS.samples,
                "dot_p50": pct(from_dot, 50), "dot_p99": pct(from_dot, 99),
                "ok_p50": pct(from_250, 50), "ok_p99": pct(from_250, 99)}
        log(f"wake: end of DATA → wake p50 {wake['dot_p50']:.2f} ms, p99 {wake['dot_p99']:.2f} ms; "
            f"250 → wake p50 {wake['ok_p50']:.2f} ms, p99 {wake['ok_p99']:.2f} ms")
        lists, done = [], 0
        for n in (int(x) for x in ARGS.sizes.split(",")):
            fill(root, n, done)
            done = n
            base = f"http://127.0.0.1:{http}"
            row = {"messages": n,
                   "all_ms": timed(f"{base}/api/v1/messages?limit=50"),
                   "mailbox_ms": timed(f"{base}/api/v1/messages?limit=50&mailbox=many@bench.test"),
                   "web_ms": timed(f"{base}/web?mailbox=many@bench.test")}
            lists.append(row)
            log(f"list {n}: all {row['all_ms']:.0f} ms, one Maildir {row['mailbox_ms']:.0f} ms, "
                f"/web {row['web_ms']:.0f} ms")
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    with open(ARGS.out, "w") as f:
        f.write(f"""# HTTP benchmark (issue 17)

Written by `bench/http_api.py` (smtpd {version}, release build, {os.cpu_count()} CPUs: {cpu}).
Mailpit could not be measured beside it: it is a Go program, and no registry reachable here
ships a build of it (no npm, PyPI, Debian or crates package; the Go toolchain is not installed).
What Mailpit publishes instead (its README, 2024-2026): "approximately 70-100 emails per second
depending on CPU, network speed & email size" for SMTP processing and storing (SQLite), keeping
the newest 500 messages by default; it has no server-side wait (API clients poll
`/api/v1/search` or `/api/v1/message/latest`), and it publishes no list latency. For
comparison, smtpd's durable SMTP delivery in BENCHMARKS.md (the same 2-core machine, fsync'ed
Maildir) is 819 msg/s at 1 session and 2,199 at 32 (1 KiB), and a wait here returns when the
delivery is durable, with the latencies below.

## Wait: SMTP delivery to the wait's answer ({wake['samples']} samples)

| from | p50 | p99 |
|---|---|---|
| the final "." written by the client | {wake['dot_p50']:.2f} ms | {wake['dot_p99']:.2f} ms |
| the client reading the 250 | {wake['ok_p50']:.2f} ms | {wake['ok_p99']:.2f} ms |

The first row includes the delivery itself (spool file, fsync, rename into new/, fsync of
new/); a negative figure in the second means the wait answered before the client had read its
250 (the waiter is woken once the copy is durable, as the 250 is written).

## First page of the list (50 messages, newest first; median of 5)

| stored messages | all mailboxes | one Maildir (`?mailbox=`) | web view `/web?mailbox=` |
|---|---|---|---|
""")
        for r in lists:
            f.write(f"| {r['messages']:,} | {r['all_ms']:.0f} ms | {r['mailbox_ms']:.0f} ms | {r['web_ms']:.0f} ms |\n")
        f.write("""
Each list reads every file name of the Maildirs (the delivery time is in the name), sorts, and
opens only the page's files: the cost grows with the number of names, not of octets.
""")
    log(f"written {ARGS.out}")


if __name__ == "__main__":
    main()
