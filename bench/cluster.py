#!/usr/bin/env python3
"""Issue 19's benchmark: one smtpd taking mail directly against three smtpd instances on one
mailbox root behind HAProxy (send-proxy-v2, round robin), in the same run, alternating.

usage: bench/cluster.py [--runs 3] [--messages 5000] [--sessions 16] [--size 1024] [--out FILE]

This machine has two cores, so three instances cannot be faster than one: what is measured is
the cost of the extra hop per message (HAProxy's CPU, the PROXY header, the second TCP
connection) and whether the instances contend on the shared Maildir. Every figure is the median
of --runs runs; a run counts the files delivered, not only the 250s. Needs haproxy (apt-get
install haproxy) and a release build (made here). Stops everything it started.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import util  # noqa: E402
from measure import count_files, cpu_secs, smtp_send  # noqa: E402
from util import DOMAIN, REPO, STARTED, free_port, log, run, wait_port  # noqa: E402

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--messages", type=int, default=5000)
ap.add_argument("--sessions", type=int, default=16)
ap.add_argument("--size", type=int, default=1024)
ap.add_argument("--out", default=os.path.join(REPO, "bench", "CLUSTER.md"))
ARGS = ap.parse_args()


def start_smtpd(name, root, queue, proxied):
    d = os.path.join(util.TMP, name)
    os.makedirs(d)
    cfg, sock = os.path.join(d, "smtpd.toml"), os.path.join(d, "control.sock")
    port = free_port()
    http = free_port()
    proxy = 'proxy_from = ["127.0.0.1/32"]\n' if proxied else ""
    with open(cfg, "w") as f:
        f.write(f'''hostname = "bench.test"
[server]
instance = "{name}"
{proxy}[smtp]
listen = ["127.0.0.1:{port}"]
[pop3]
listen = []
[http]
listen = ["127.0.0.1:{http}"]
[mailboxes]
root = "{root}"
domains = ["{DOMAIN}"]
[limits]
max_connections = 20000
max_connections_per_ip = 20000
[log]
dir = "{d}/logs"
[control]
socket = "{sock}"
pid_file = "{d}/smtpd.pid"
[queue]
dir = "{queue}"
''')
    p = subprocess.Popen([util.SMTPD, "--foreground", "--config", cfg],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    STARTED.append(p)
    for _ in range(200):
        if subprocess.run([util.SMTPCTL, "--socket", sock, "status"], capture_output=True).returncode == 0:
            return p, port, http
        time.sleep(0.05)
    raise SystemExit(f"{name} did not start")


def start_haproxy(backends):
    port = free_port()
    cfg = os.path.join(util.TMP, "haproxy.cfg")
    servers = "".join(
        f"    server n{i} 127.0.0.1:{p} check port {h} inter 1s send-proxy-v2 check-send-proxy\n"
        for i, (p, h) in enumerate(backends))
    with open(cfg, "w") as f:
        f.write(f"""global
    maxconn 4096
defaults
    mode tcp
    timeout connect 2s
    timeout client 60s
    timeout server 60s
frontend smtp
    bind 127.0.0.1:{port}
    default_backend smtp
backend smtp
    balance roundrobin
    option httpchk GET /health
{servers}""")
    p = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(util.TMP, "haproxy.log"), "w"))
    STARTED.append(p)
    return p, port


def one_run(port, new, pids):
    before = count_files(new)
    cpu0 = cpu_secs(pids, children=False)
    t0 = time.perf_counter()
    report = smtp_send(port, ARGS.sessions, ARGS.messages, ARGS.size)
    sent = report["messages_sent"]
    end = time.monotonic() + 120
    while count_files(new) - before < sent and time.monotonic() < end:
        time.sleep(0.005)
    wall = time.perf_counter() - t0
    delivered = count_files(new) - before
    cpu = cpu_secs(pids, children=False) - cpu0
    md = os.path.dirname(new)
    os.rename(md, f"{md}.done{time.monotonic_ns()}")
    return {"rate": delivered / wall, "delivered": delivered,
            "cpu_us_per_msg": cpu * 1e6 / max(1, delivered),
            "p50_ms": report["latency_ms_p50"], "p99_ms": report["latency_ms_p99"]}


def main():
    if not shutil.which("haproxy"):
        raise SystemExit("haproxy is not installed (apt-get install haproxy)")
    util.make_tmp()
    run(["cargo", "build", "--release", "--quiet", "--bins"], cwd=REPO)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    util.SMTPD, util.SMTPCTL, util.SMTP_SEND = (os.path.join(target, "release", b)
                                                for b in ("smtpd", "smtpctl", "smtp-send"))
    direct_root = os.path.join(util.TMP, "direct-mail")
    shared_root = os.path.join(util.TMP, "shared-mail")
    d_proc, d_port, _ = start_smtpd("direct", direct_root, os.path.join(util.TMP, "dq"), False)
    nodes = [start_smtpd(f"node{i}", shared_root, os.path.join(util.TMP, "sq"), True)
             for i in range(3)]
    ha, ha_port = start_haproxy([(p, h) for _, p, h in nodes])
    # HAProxy counts servers up from the start (until checks fail); a greeting through it.
    wait_port(ha_port)
    node_pids = [p.pid for p, _, _ in nodes]
    runs = {"direct": [], "haproxy": []}
    for r in range(ARGS.runs):
        for kind in ("direct", "haproxy"):
            if kind == "direct":
                res = one_run(d_port, os.path.join(direct_root, DOMAIN, "bench0", "new"), [d_proc.pid])
            else:
                new = os.path.join(shared_root, DOMAIN, "bench0", "new")
                cpu_ha0 = cpu_secs([ha.pid], children=False)
                res = one_run(ha_port, new, node_pids + [ha.pid])
                res["haproxy_us_per_msg"] = (cpu_secs([ha.pid], children=False) - cpu_ha0) * 1e6 / max(1, res["delivered"])
            log(f"run {r + 1} {kind}: {res['rate']:.0f} msg/s, {res['cpu_us_per_msg']:.0f} µs CPU/msg")
            runs[kind].append(res)
    med = {k: {m: statistics.median(x[m] for x in v) for m in v[0]} for k, v in runs.items()}
    d, h = med["direct"], med["haproxy"]
    hop = h["cpu_us_per_msg"] - d["cpu_us_per_msg"]
    lines = [
        "# One instance direct against three behind HAProxy (issue 19)",
        "",
        f"`bench/cluster.py --runs {ARGS.runs} --messages {ARGS.messages} --sessions {ARGS.sessions} "
        f"--size {ARGS.size}`, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, "
        f"{subprocess.run(['haproxy', '-v'], capture_output=True, text=True).stdout.splitlines()[0]}.",
        "Medians of the runs, alternating; CPU is the servers' (smtpd, and HAProxy in the second row).",
        "",
        "| | msg/s | CPU µs/msg | of it HAProxy | p50 ms | p99 ms |",
        "|---|---|---|---|---|---|",
        f"| one smtpd, direct | {d['rate']:.0f} | {d['cpu_us_per_msg']:.0f} | | {d['p50_ms']:.2f} | {d['p99_ms']:.2f} |",
        f"| three smtpd behind HAProxy | {h['rate']:.0f} | {h['cpu_us_per_msg']:.0f} | {h['haproxy_us_per_msg']:.0f} | {h['p50_ms']:.2f} | {h['p99_ms']:.2f} |",
        "",
        f"The extra hop costs {hop:.0f} µs of CPU per message ({hop / d['cpu_us_per_msg'] * 100:.0f}% more), "
        f"{h['haproxy_us_per_msg']:.0f} µs of it in HAProxy; throughput {h['rate'] / d['rate']:.2f}× direct.",
        "",
        "Raw runs: " + json.dumps(runs),
    ]
    with open(ARGS.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"wrote {ARGS.out}")


try:
    main()
finally:
    for p in STARTED:
        p.terminate()
    for p in STARTED:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
    if not util.KEEP and util.TMP:
        shutil.rmtree(util.TMP, ignore_errors=True)
