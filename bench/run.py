#!/usr/bin/env python3
"""The benchmark of issue 8: smtpd against the disk's durable-create limit, Postfix's smtp-sink
(stores nothing), Postfix delivering to Maildir, and Dovecot's POP3, all in one run on loopback;
and issue 15's relay part: smtpd and Postfix relaying to smtp-sink.

usage: bench/run.py [--runs N] [--quick] [--out BENCHMARKS.md] [--no-install] [--only PARTS]

Builds release, starts smtpd on port 0 with a temporary Maildir root, installs postfix and
dovecot-pop3d with apt-get when missing (as root; --no-install skips them), runs each of them with
its own config under a temporary directory on 127.0.0.1, stops everything it started, and writes
BENCHMARKS.md (machine, versions, tables, ratios). Every figure is the median of --runs runs
(default 3). Throughput counts delivered files, not only acknowledgements. --quick: one run and
fewer messages, for trying the script.

The entry point: arguments and main(). Beside it: servers.py (the servers under test),
measure.py (load drivers and measurements), report.py (BENCHMARKS.md and bench/last-run.json)
and util.py (shared helpers and state).
"""
import argparse, json, os, pwd, resource, shutil, statistics, time

import util
from measure import (disk_limit, fill_maildrop, idle_rss, large_message_peak, measure, median,
                     pop3_session, relay_latency, relay_run, smtp_send, smtp_source)
from report import write_report
from servers import CountingSink, Dovecot, Postfix, Sink, Smtpd, ensure_tools
from util import KEEP, REPO, STARTED, KiB, MiB, log, run

ap = argparse.ArgumentParser()
ap.add_argument("--runs", type=int, default=3)
ap.add_argument("--quick", action="store_true")
ap.add_argument("--out", default=os.path.join(REPO, "BENCHMARKS.md"))
ap.add_argument("--no-install", action="store_true")
ap.add_argument("--report-only", action="store_true",
                help="rewrite the report from bench/last-run.json without measuring")
PARTS = ("disk", "large", "smtp", "idle", "pop3", "relay")
ap.add_argument("--only", default=",".join(PARTS),
                help=f"comma-separated parts to run ({', '.join(PARTS)}); the other "
                "parts of the report are kept from bench/last-run.json")
ARGS = ap.parse_args()
RUNS = 1 if ARGS.quick else ARGS.runs
ONLY = set(ARGS.only.split(","))
if ONLY - set(PARTS):
    ap.error(f"unknown part(s): {', '.join(sorted(ONLY - set(PARTS)))}")
DEADLINE = time.monotonic() + 14 * 60  # the whole run stays under 15 minutes
util.make_tmp()


def main():
    if ARGS.report_only:
        r = json.load(open(os.path.join(REPO, "bench", "last-run.json")))
        r["disk"] = {int(k): v for k, v in r["disk"].items()}
        write_report(r, RUNS, ARGS.out)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    run(["cargo", "build", "--release", "--quiet", "--bins"], cwd=REPO)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    util.SMTPD, util.SMTPCTL, util.SMTP_SEND = (os.path.join(target, "release", b)
                                                for b in ("smtpd", "smtpctl", "smtp-send"))
    # sha512-crypt: the same hash (and cost) for smtpd and Dovecot.
    util.POP_HASH = run(["openssl", "passwd", "-6", "bench"], capture_output=True, text=True).stdout.strip()
    util.POP_HASH_DOVECOT = "{SHA512-CRYPT}" + util.POP_HASH
    ensure_tools(ARGS.no_install)
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
        if "relay" in ONLY and have_postfix:
            results["relay"] = relay_part()
        elif "relay" in ONLY:
            log("relay: needs Postfix's smtp-source and smtp-sink, and root: skipped")
    finally:
        if postfix:
            postfix.stop()
        for p in STARTED:
            if p.poll() is None:
                p.terminate()
                p.wait()
    last = os.path.join(REPO, "bench", "last-run.json")
    partial = ONLY != set(PARTS) and os.path.exists(last)
    if partial:
        kept = json.load(open(last))
        kept["disk"] = {int(k): v for k, v in kept["disk"].items()}
        for part in PARTS:
            if part not in ONLY and part in kept:
                results[part] = kept[part]
    relay_postfix = results.get("relay", {}).get("versions", {}).get("postfix") if "relay" in ONLY else None
    results["versions"] = {"smtpd": smtpd.version, "postfix": postfix.version if postfix else relay_postfix,
                           "dovecot": dovecot.version if have_dovecot and dovecot else None}
    if partial:
        for k, v in kept.get("versions", {}).items():
            results["versions"][k] = results["versions"][k] or v
    write_report(results, RUNS, ARGS.out)
    if not KEEP:
        shutil.rmtree(util.TMP, ignore_errors=True)


def relay_part():
    """Issue 15: 32 sessions × 1 KiB for a remote domain, submitted with smtp-source, relayed by
    smtpd (smarthost) and by Postfix (relayhost) each to its own counting smtp-sink; runs
    alternate between the two servers. Then the single-session latency from the server's 250
    to the sink's, and the same measurement against a sink alone (the floor)."""
    sessions, count, samples = 32, (500 if ARGS.quick else 2000), (50 if ARGS.quick else 300)
    sink_m, sink_p = CountingSink(), CountingSink()
    smtpd = Smtpd("smtpd-relay", smarthost=sink_m.port)
    postfix = Postfix("postfix-relay", relayhost=sink_p.port)
    pairs = [(postfix, sink_p), (smtpd, sink_m)]
    out = {"sessions": sessions, "size": KiB, "count": count, "servers": []}
    try:
        for server, sink in pairs:  # warm-up: processes started, caches filled; not counted
            relay_run(server, sink, sessions, 64, KiB)
        runs = {server.name: [] for server, _ in pairs}
        for i in range(RUNS):
            for server, sink in pairs:
                if time.monotonic() > DEADLINE:
                    log("time budget spent: skipping the rest of the relay runs")
                    break
                r = relay_run(server, sink, sessions, count, KiB)
                runs[server.name].append(r)
                log(f"relay {server.name:8s} {sessions} sessions × 1 KiB: {r['rate']:7.1f}/s end to end "
                    f"(accepted at {r['submit_rate']:.0f}/s), {r['cpu_per_1000']:.2f} CPU-s/1000, "
                    f"{r['relayed']}/{r['sent']} at the sink over {r['sink_sessions']} sessions")
        for server, sink in pairs:
            rs = runs[server.name]
            if not rs:
                continue
            row = {"server": server.name, "runs": len(rs), "rate": median(rs, "rate"),
                   "submit_rate": median(rs, "submit_rate"), "cpu_per_1000": median(rs, "cpu_per_1000"),
                   "relayed": min(r["relayed"] for r in rs), "sent": count,
                   "sink_sessions_per_message": median(rs, "sink_sessions") / count,
                   "each_rate": [r["rate"] for r in rs], "each_cpu": [r["cpu_per_1000"] for r in rs]}
            lat = relay_latency(server.port, sink, samples)
            row.update({"p50": lat["p50"], "p99": lat["p99"], "samples": lat["samples"]})
            log(f"relay {server.name:8s} 1 session: 250 to the sink's 250 p50 {lat['p50']:.2f} ms, "
                f"p99 {lat['p99']:.2f} ms")
            out["servers"].append(row)
        floor = relay_latency(sink_m.port, sink_m, samples)
        out["floor"] = {"p50": floor["p50"], "p99": floor["p99"]}
        log(f"relay floor (client to the sink itself): p50 {floor['p50']:.3f} ms")
        out["versions"] = {"smtpd": smtpd.version, "postfix": postfix.version}
    finally:
        postfix.stop()
        for p in (smtpd.proc, sink_m.proc, sink_p.proc):
            p.terminate()
            p.wait()
    return out


if __name__ == "__main__":
    try:
        main()
    except BaseException:
        for p in STARTED:
            if p.poll() is None:
                p.kill()
        raise
