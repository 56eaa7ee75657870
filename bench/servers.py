"""The servers under test, each started with its own config under the temporary directory on
127.0.0.1: smtpd, Postfix's smtp-sink, Postfix delivering to Maildir, and Dovecot's POP3; smtpd
and Postfix relaying to a counting smtp-sink; and the apt-get install of the reference servers
when they are missing."""
import json, os, pwd, re, shutil, subprocess, threading, time

import util
from measure import cpu_secs, descendants
from util import DOMAIN, STARTED, free_port, log, run, wait_port


class Smtpd:
    name = "smtpd"

    def __init__(self, name="smtpd", smarthost=None):
        """smarthost: a port on 127.0.0.1 that every remote delivery goes to (no TLS). The queue
        is under the instance's directory either way."""
        self.dir = os.path.join(util.TMP, name)
        self.root = os.path.join(self.dir, "mailboxes")
        os.makedirs(self.root)
        self.cfg = os.path.join(self.dir, "smtpd.toml")
        self.sock = os.path.join(self.dir, "control.sock")
        relay = f'''[relay]
smarthost = "127.0.0.1:{smarthost}"
smarthost_tls = "none"
''' if smarthost else ""
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
[queue]
dir = "{self.dir}/queue"
{relay}[[accounts]]
address = "pop@pop.test"
password = "{util.POP_HASH}"
''')
        self.proc = subprocess.Popen([util.SMTPD, "--foreground", "--config", self.cfg],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        status = None
        for _ in range(200):
            r = subprocess.run([util.SMTPCTL, "--socket", self.sock, "--json", "status"], capture_output=True)
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

    def status(self):
        r = util.run([util.SMTPCTL, "--socket", self.sock, "--json", "status"], capture_output=True)
        return json.loads(r.stdout)

    def queue_empty(self):
        r = util.run([util.SMTPCTL, "--socket", self.sock, "--json", "queue"], capture_output=True)
        return json.loads(r.stdout) == []


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


class CountingSink:
    """smtp-sink that counts what it received, for the relay part: one per server under test,
    so a late delivery from one run can never be counted for another.

    How it counts: `smtp-sink -c` writes "sess=S quit=Q mesg=M" followed by CR to its stdout each
    time a session ends, a QUIT arrives or a message's final "." arrives (just before it sends
    its 250), and it flushes each record (checked: a record reaches a pipe within 0.05 ms of the
    client reading its 250). A thread blocked on the pipe timestamps every record as it arrives,
    so each message gets the time the sink counted it, without files (-d would add a disk write
    per message to the sink) and without polling. S, the sessions ended, says how many
    connections the relaying server opened."""

    RECORD = re.compile(rb"sess=(\d+) quit=\d+ mesg=(\d+)")

    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["smtp-sink", "-c", "-u", "nobody", f"127.0.0.1:{self.port}", "256"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        STARTED.append(self.proc)
        self.cond = threading.Condition()
        self.times = []  # time.perf_counter() when the sink counted message 1, 2, ...
        self.sessions = 0
        threading.Thread(target=self._read, daemon=True).start()
        wait_port(self.port)
        with self.cond:  # wait_port's probe is a session too
            self.cond.wait_for(lambda: self.sessions > 0, timeout=5)

    def _read(self):
        buf = b""
        while chunk := os.read(self.proc.stdout.fileno(), 65536):
            t = time.perf_counter()
            *records, buf = re.split(rb"[\r\n]", buf + chunk)
            with self.cond:
                for rec in records:
                    m = self.RECORD.match(rec)
                    if m:
                        self.sessions = int(m[1])
                        self.times.extend([t] * (int(m[2]) - len(self.times)))
                self.cond.notify_all()

    def counted(self):
        """(messages, sessions ended) so far."""
        with self.cond:
            return len(self.times), self.sessions

    def wait_count(self, n, timeout):
        """When the sink counted its n-th message (time.perf_counter()), or None after timeout
        seconds without it."""
        with self.cond:
            if self.cond.wait_for(lambda: len(self.times) >= n, timeout=timeout):
                return self.times[n - 1]
        return None


class Postfix:
    name = "postfix"

    def __init__(self, name="postfix", relayhost=None):
        """relayhost: a port on 127.0.0.1 that Postfix relays all non-local mail to (no TLS)."""
        self.dir = os.path.join(util.TMP, name)
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
""" + (f"""relayhost = [127.0.0.1]:{relayhost}
smtp_tls_security_level = none
""" if relayhost else ""))
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

    def queue_empty(self):
        """No message left in any of the instance's queues."""
        q = os.path.join(self.dir, "queue")
        return not any(files for sub in ("maildrop", "incoming", "active", "deferred", "hold")
                       for _, _, files in os.walk(os.path.join(q, sub)))

    def stop(self):
        subprocess.run(["postfix", "-c", self.etc, "stop"], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)



class Dovecot:
    name = "dovecot"

    def __init__(self, home):
        self.dir = os.path.join(util.TMP, "dovecot")
        os.makedirs(self.dir)
        self.port = free_port()
        uid = os.stat(home).st_uid
        gid = os.stat(home).st_gid
        open(os.path.join(self.dir, "passwd"), "w").write(
            f"pop@pop.test:{util.POP_HASH_DOVECOT}:{uid}:{gid}::{home}::userdb_mail=maildir:{home}\n")
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



def ensure_tools(no_install):
    need = []
    if not shutil.which("smtp-source"):
        need.append("postfix")
    if not shutil.which("dovecot") or not os.path.exists("/usr/lib/dovecot/pop3"):
        need.append("dovecot-pop3d")
    if need and not no_install and os.geteuid() == 0:
        log(f"installing {' '.join(need)} with apt-get")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq"] + need, env=env, check=False,
                       stdout=subprocess.DEVNULL)
