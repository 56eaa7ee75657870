#!/usr/bin/env python3
"""Clients of tests/haproxy.rs, run inside its network namespace against HAProxy's frontends
(each client from its own source address, as real clients would be).

  load HOST PORT OUT TOTAL IP...   TOTAL messages over SMTP, two threads per source IP, each
                                   attempt with a unique Subject; an attempt that fails
                                   (connection reset by a killed instance, 4xx) is tried again
                                   as a new attempt. Writes the acknowledged Subjects to OUT.
  limits HOST PORT MAX IP1 IP2     MAX sessions from IP1 are served, the next one is refused with
                                   421; IP2 is still served meanwhile.
  pop3race HOST PORT USER PASS ROUNDS
                                   two POP3 sessions at once, ROUNDS times: each that gets the
                                   maildrop deletes message 1 and quits. Prints the sessions that
                                   deleted one and those refused as locked.
  imaprace HOST PORT USER PASS N   two IMAP sessions APPEND N messages each at once, then one
                                   lists UIDs; prints the count and whether the UIDs are unique.
"""
import imaplib
import os
import poplib
import smtplib
import sys
import threading
import time

FROM = "client@client.test"
TO = os.environ.get("CLUSTER_TO", "alice@example.test")


def load(host, port, out, total, ips):
    workers = [(ip, t) for ip in ips for t in range(2)]
    acked = []
    lock = threading.Lock()
    failures = []
    retries = 0

    def worker(index, ip, thread):
        nonlocal retries
        mine = range(index, total, len(workers))
        conn = None
        sent_on_conn = 0
        for k in mine:
            for attempt in range(40):
                subject = f"load-{ip}-{thread}-{k}-a{attempt}"
                try:
                    if conn is None:
                        conn = smtplib.SMTP(host, port, source_address=(ip, 0), timeout=30)
                        conn.ehlo(f"client{thread}.client.test")
                        sent_on_conn = 0
                    body = f"Subject: {subject}\r\nFrom: {FROM}\r\nTo: {TO}\r\n\r\nload\r\n"
                    conn.sendmail(FROM, [TO], body)
                    with lock:
                        acked.append(subject)
                    sent_on_conn += 1
                    # New connections now and then, so the balancer spreads them.
                    if sent_on_conn >= 25:
                        conn.quit()
                        conn = None
                    break
                except (smtplib.SMTPException, OSError) as e:
                    with lock:
                        retries += 1
                    if conn is not None:
                        try:
                            conn.close()
                        except OSError:
                            pass
                    conn = None
                    time.sleep(0.05)
                    last = e
            else:
                with lock:
                    failures.append(f"{ip}/{thread} message {k}: {last!r}")
        if conn is not None:
            try:
                conn.quit()
            except (smtplib.SMTPException, OSError):
                pass

    threads = [threading.Thread(target=worker, args=(i, ip, t)) for i, (ip, t) in enumerate(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        f.write("\n".join(acked) + "\n")
    print(f"acked {len(acked)} retries {retries} failures {len(failures)}")
    for f in failures[:10]:
        print("FAIL", f)
    return 0 if not failures else 1


def limits(host, port, most, ip1, ip2):
    held = []
    for i in range(most):
        c = smtplib.SMTP(host, port, source_address=(ip1, 0), timeout=30)
        held.append(c)
    try:
        extra = smtplib.SMTP(host, port, source_address=(ip1, 0), timeout=30)
        print(f"FAIL: session {most + 1} from {ip1} was served")
        extra.close()
        return 1
    except smtplib.SMTPConnectError as e:
        if e.smtp_code != 421:
            print(f"FAIL: session {most + 1} from {ip1}: {e.smtp_code} {e.smtp_error!r}")
            return 1
        print(f"refused: {e.smtp_code} {e.smtp_error.decode(errors='replace')}")
    other = smtplib.SMTP(host, port, source_address=(ip2, 0), timeout=30)
    code, _ = other.noop()
    print(f"other client: {code}")
    other.quit()
    for c in held:
        c.quit()
    return 0 if code == 250 else 1


def pop3race(host, port, user, password, rounds):
    deleted = 0
    locked = 0
    errors = []
    barrier = threading.Barrier(2)
    lock = threading.Lock()

    def session(ip):
        nonlocal deleted, locked
        barrier.wait()
        try:
            p = poplib.POP3(host, port, timeout=30)
            p.user(user)
            try:
                p.pass_(password)
            except poplib.error_proto as e:
                if b"IN-USE" in e.args[0] or b"locked" in e.args[0]:
                    with lock:
                        locked += 1
                    p.quit()
                    return
                raise
            count, _ = p.stat()
            if count > 0:
                p.retr(1)
                p.dele(1)
            p.quit()
            if count > 0:
                with lock:
                    deleted += 1
        except Exception as e:  # noqa: BLE001 - every failure is reported
            with lock:
                errors.append(repr(e))

    for _ in range(rounds):
        ts = [threading.Thread(target=session, args=(i,)) for i in range(2)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    print(f"deleted {deleted} locked {locked} errors {len(errors)}")
    for e in errors[:5]:
        print("ERROR", e)
    return 0 if not errors else 1


def imaprace(host, port, user, password, n):
    errors = []
    barrier = threading.Barrier(2)

    def appender(tag):
        try:
            c = imaplib.IMAP4(host, port, timeout=60)
            c.login(user, password)
            barrier.wait()
            for i in range(n):
                msg = f"Subject: imap-{tag}-{i}\r\n\r\nrace\r\n".encode()
                typ, data = c.append("INBOX", None, None, msg)
                if typ != "OK":
                    errors.append(f"{tag} {i}: {typ} {data}")
            c.logout()
        except Exception as e:  # noqa: BLE001
            errors.append(repr(e))

    ts = [threading.Thread(target=appender, args=(t,)) for t in ("x", "y")]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    c = imaplib.IMAP4(host, port, timeout=60)
    c.login(user, password)
    typ, data = c.select("INBOX")
    exists = int(data[0])
    typ, data = c.uid("SEARCH", None, "ALL")
    uids = [int(u) for u in data[0].split()]
    c.logout()
    unique = len(set(uids)) == len(uids)
    print(f"exists {exists} uids {len(uids)} unique {unique} errors {len(errors)}")
    for e in errors[:5]:
        print("ERROR", e)
    return 0 if not errors and unique else 1


def main(argv):
    mode = argv[1]
    if mode == "load":
        return load(argv[2], int(argv[3]), argv[4], int(argv[5]), argv[6:])
    if mode == "limits":
        return limits(argv[2], int(argv[3]), int(argv[4]), argv[5], argv[6])
    if mode == "pop3race":
        return pop3race(argv[2], int(argv[3]), argv[4], argv[5], int(argv[6]))
    if mode == "imaprace":
        return imaprace(argv[2], int(argv[3]), argv[4], argv[5], int(argv[6]))
    print(f"unknown mode {mode}")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
