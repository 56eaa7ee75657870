#!/usr/bin/env bash
# The package under a real systemd: a Debian bookworm tree (debootstrap) booted with
# systemd-nspawn (../shared/research/systemd-nspawn.md), our .deb installed in it, then
# `systemctl start/reload/stop smtpd`, `smtpctl status` and `smtpctl send-test` inside.
# Needs root and the Debian mirror apt uses. usage: packaging/test-systemd.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
deb=$(ls -t target/debian/*.deb 2>/dev/null | head -n 1 || true)
[ -n "$deb" ] || deb=$(packaging/build-deb.sh)
W=${1:-/var/tmp/smtpd-systemd-test}
R=$W/root
mkdir -p "$W"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap systemd-container >/dev/null
# The Debian mirror apt already uses here.
mirror=$( (cat /etc/apt/sources.list /etc/apt/sources.list.d/*.sources 2>/dev/null || true) \
    | grep -oE '^(deb|URIs:)[^#]*https?://[^ ]+' | grep -oE 'https?://[^ ]+' | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
if [ ! -x "$R/lib/systemd/systemd" ]; then
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps,adduser,man-db \
        bookworm "$R" "$mirror" >"$W/debootstrap.log" 2>&1 || { tail -20 "$W/debootstrap.log"; exit 1; }
fi
cp "$deb" "$R/root/smtpd.deb"
setsid systemd-nspawn --boot --register=no --keep-unit --console=passive -D "$R" -M smtpdtest \
    >"$W/nspawn.log" 2>&1 &
ns=$!
cleanup() {
    [ -n "${C:-}" ] && nsenter -t "$C" -a systemctl poweroff >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do kill -0 "$ns" 2>/dev/null || return 0; sleep 0.1; done
    kill "$ns" 2>/dev/null || true
}
trap cleanup EXIT
C=
for _ in $(seq 1 300); do
    C=$(pgrep -P "$ns" -x systemd || true)
    if [ -n "$C" ]; then
        s=$(nsenter -t "$C" -a systemctl is-system-running 2>/dev/null || true)
        [ "$s" = running ] || [ "$s" = degraded ] && break
    fi
    sleep 0.1
done
[ -n "$C" ] || { cat "$W/nspawn.log"; echo "FAIL: the container did not boot"; exit 1; }
X="nsenter -t $C -a"
$X dpkg -i /root/smtpd.deb >"$W/dpkg.log" 2>&1 || { cat "$W/dpkg.log"; exit 1; }
$X systemctl start smtpd
state=$($X systemctl is-active smtpd || true)
[ "$state" = active ] || { $X journalctl -u smtpd --no-pager | tail -30; echo "FAIL: smtpd is $state"; exit 1; }
echo "systemctl start smtpd: active"
$X systemctl show -p StatusText --value smtpd
$X smtpctl status
$X smtpctl send-test --to postmaster@localhost
$X systemctl reload smtpd
# ExecReload sends SIGHUP and returns (bookworm's systemd 252 has no Type=notify-reload), so the
# reload may still be in progress here: poll its outcome for up to 10 s.
applied=no
for _ in $(seq 50); do
    if $X smtpctl --json status | grep -q '"applied": true'; then applied=yes; break; fi
    sleep 0.2
done
[ "$applied" = yes ] || { $X smtpctl status; echo "FAIL: reload not applied"; exit 1; }
echo "systemctl reload smtpd: applied"
pid=$($X systemctl show -p MainPID --value smtpd)
$X ps -o user= -p "$pid"
$X systemctl stop smtpd
echo "systemctl stop smtpd: $($X systemctl is-active smtpd || true)"

# Two more instances from the template beside it, on their own ports, socket and logs, sharing
# its mailboxes and queue (README "Running several instances").
for i in a b; do
    n=$([ $i = a ] && echo 1 || echo 2)
    sed -e "s/0.0.0.0:\([0-9]*\)/127.0.0.1:${n}\1/" \
        -e "s|/run/smtpd/|/run/smtpd-$i/|" -e "s|^dir = \"/var/log/smtpd\"|dir = \"/var/log/smtpd/$i\"|" \
        -e "s|^\[server\]|[server]\ninstance = \"$i\"|" \
        "$R/etc/smtpd/smtpd.toml" >"$R/etc/smtpd/$i.toml"
done
$X systemctl start smtpd smtpd@a smtpd@b
for u in smtpd smtpd@a smtpd@b; do
    state=$($X systemctl is-active "$u" || true)
    [ "$state" = active ] || { $X journalctl -u "$u" --no-pager | tail -30; echo "FAIL: $u is $state"; exit 1; }
done
echo "systemctl start smtpd smtpd@a smtpd@b: active"
$X smtpctl --socket /run/smtpd-a/control.sock send-test --to postmaster@localhost
$X smtpctl --socket /run/smtpd-b/control.sock send-test --to postmaster@localhost
$X systemctl stop smtpd@a
$X test -S /run/smtpd-b/control.sock || { echo "FAIL: stopping smtpd@a removed smtpd@b's socket"; exit 1; }
$X smtpctl status >/dev/null || { echo "FAIL: stopping smtpd@a stopped smtpd"; exit 1; }
n=$($X sh -c 'ls /var/lib/smtpd/mailboxes/localhost/postmaster/new | wc -l')
[ "$n" -ge 3 ] || { echo "FAIL: $n messages in the shared mailbox, want 3 (send-tests of smtpd, a, b)"; exit 1; }
$X ls /var/lib/smtpd/mailboxes/localhost/postmaster/new | grep -qE '\.a(,|:|$)' \
    || { $X ls /var/lib/smtpd/mailboxes/localhost/postmaster/new; echo "FAIL: no Maildir name of instance a"; exit 1; }
$X systemctl stop smtpd smtpd@b
echo "smtpd@.service: two instances beside smtpd on one mailbox root"
echo "systemd test: passed"
