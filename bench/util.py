"""Shared by the benchmark's modules: the repository, the temporary directory, the processes
started, the binaries and the POP3 hash (set by run.py's main), and small helpers."""
import os, socket, subprocess, sys, tempfile, time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEEP = os.environ.get("BENCH_KEEP")  # keep the temporary directory, to look into a failure
STARTED = []  # Popen objects to stop at the end
DOMAIN = "bench.test"
KiB, MiB = 1024, 1024 * 1024
# Set by run.py once its arguments are parsed (make_tmp) and by its main() (the rest).
TMP = None
SMTPD = SMTPCTL = SMTP_SEND = None  # the release binaries
POP_HASH = POP_HASH_DOVECOT = None  # sha512-crypt of the POP3 password, for smtpd and Dovecot


def make_tmp():
    global TMP
    TMP = tempfile.mkdtemp(prefix="smtpd-bench-")
    os.chmod(TMP, 0o755)  # Postfix's and Dovecot's unprivileged processes walk into it
    return TMP


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
