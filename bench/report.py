"""The report: BENCHMARKS.md (machine, versions, tables, ratios, the targets of issues 8 and 15)
and bench/last-run.json, from one run's results."""
import json, os, platform, time

import util
from util import REPO, KiB, MiB, log


def fmt_rate(x):
    return f"{x:,.0f}"



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


def relay_section(rel):
    """Issue 15's relay part: its table, how it was measured, and its targets."""
    by = {row["server"]: row for row in rel["servers"]}
    m, p = by.get("smtpd"), by.get("postfix")
    floor = rel.get("floor")
    how = (f"`smtp-source -d -s {rel['sessions']} -m {rel['count']:,} -l {rel['size']}` submits for "
           "x@far.test; smtpd relays with `[relay] smarthost` (`smarthost_tls = \"none\"`), Postfix "
           "with `relayhost` (`smtp_tls_security_level = none`, otherwise its defaults), each to its "
           "own `smtp-sink -c`, whose per-message counter records are timestamped as they arrive. "
           "End to end = messages counted at the sink / (smtp-source's start → the sink counting the "
           "last one); accepted = messages / smtp-source's own run time; CPU = the server's "
           "user+system seconds (Postfix: master and every child) from the start until its queue "
           "is empty again, per 1,000 relayed; sink sessions = connections the server opened to the "
           "sink. Latency: one session, one message at a time, from our client reading the 250 "
           f"after its dot to the sink counting the relayed copy ({m['samples'] if m else '?'} "
           "messages)")
    if floor:
        how += (f"; the same client talking to a sink directly gives p50 {floor['p50']:.3f} ms, "
                "the timing's floor (the sink's record can arrive before our client has read its "
                "250), so the resolution is a few hundredths of a millisecond")
    lines = ["", f"## Relaying (issue 15): {rel['sessions']} sessions × {size_name(rel['size'])} for a "
             "remote domain, relayed to smtp-sink", "", how + ".", "",
             "| server | end to end msg/s (range) | accepted msg/s | CPU-s/1000 (range) | sink sessions per message "
             "| p50 250→sink ms | p99 ms | at the sink |", "|---|---|---|---|---|---|---|---|"]
    def spread(row, key, each, f):
        """The median, and the range over the runs when there were several."""
        v = row.get(each, [])
        return f(row[key]) + (f" ({f(min(v))}–{f(max(v))})" if len(v) > 1 else "")

    for row in rel["servers"]:
        lines.append(f"| {row['server']} | {spread(row, 'rate', 'each_rate', fmt_rate)} | "
                     f"{fmt_rate(row['submit_rate'])} | "
                     f"{spread(row, 'cpu_per_1000', 'each_cpu', lambda x: f'{x:.2f}')} | "
                     f"{row['sink_sessions_per_message']:.2f} | "
                     f"{row['p50']:.2f} | {row['p99']:.2f} | {row['relayed']:,}/{row['sent']:,} |")
    out = ["", "## Targets (issue 15), from this run", "", "| target | measured | met |", "|---|---|---|"]
    if m and p:
        ratio = m["rate"] / p["rate"]
        out.append(f"| end to end ≥ 3× Postfix's rate | {fmt_rate(m['rate'])} / {fmt_rate(p['rate'])} "
                   f"msg/s = {ratio:.2f}× | {'yes' if ratio >= 3 else 'no'} |")
        ratio = m["cpu_per_1000"] / p["cpu_per_1000"]
        out.append(f"| CPU per 1,000 ≤ 0.3× Postfix's | {m['cpu_per_1000']:.2f} / {p['cpu_per_1000']:.2f} "
                   f"s = {ratio:.2f}× | {'yes' if ratio <= 0.3 else 'no'} |")
    if m:
        out.append(f"| p50 from 250 to the sink's 250 < 10 ms at 1 session | {m['p50']:.2f} ms "
                   f"(Postfix {p['p50']:.2f} ms) | {'yes' if m['p50'] < 10 else 'no'} |" if p else
                   f"| p50 from 250 to the sink's 250 < 10 ms at 1 session | {m['p50']:.2f} ms | "
                   f"{'yes' if m['p50'] < 10 else 'no'} |")
    return lines, out


def write_report(r, runs, out):
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = [
        "# Benchmarks", "",
        f"Written by `bench/run.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
        f"median of {runs} run(s). Loopback only.", "",
        f"- machine: {os.cpu_count()} CPUs ({cpu}), Linux {platform.release()}, "
        f"{os.statvfs(util.TMP).f_bsize} B blocks on the temporary directory's filesystem",
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
    relay_targets = []
    if r.get("relay"):
        table, relay_targets = relay_section(r["relay"])
        lines += table
    lines += targets(r)
    lines += relay_targets
    lines.append("")
    open(out, "w").write("\n".join(lines))
    json.dump(r, open(os.path.join(REPO, "bench", "last-run.json"), "w"), indent=1)
    log(f"wrote {out}")
