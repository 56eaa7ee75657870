#!/usr/bin/env bash
# Builds the Debian package, checks its contents and lintian, installs it, runs the installed
# smtpd as user smtpd and delivers with `smtpctl send-test`, checks the unit and the man pages,
# and purges it. Needs root on a disposable machine (CI). Prints the figures worth reporting.
set -euo pipefail
cd "$(dirname "$0")/.."

deb=$(packaging/build-deb.sh)
echo "package: $deb, $(stat -c %s "$deb") bytes"

contents=$(dpkg-deb -c "$deb")
for p in ./usr/sbin/smtpd ./usr/bin/smtpctl ./usr/bin/smtp-send ./usr/sbin/sendmail ./etc/smtpd/smtpd.toml \
    ./usr/lib/systemd/system/smtpd.service ./usr/lib/systemd/system/smtpd@.service \
    ./usr/share/man/man8/smtpd.8.gz \
    ./usr/share/man/man8/smtpctl.8.gz ./usr/share/man/man1/smtp-send.1.gz ./usr/share/man/man8/sendmail.8.gz \
    ./usr/share/man/man5/smtpd.toml.5.gz ./usr/share/bash-completion/completions/smtpctl \
    ./usr/share/zsh/vendor-completions/_smtpctl ./usr/share/fish/vendor_completions.d/smtpctl.fish \
    ./usr/share/doc/smtpd/copyright ./usr/share/doc/smtpd/changelog.Debian.gz; do
    grep -q " $p\$" <<<"$contents" || { echo "FAIL: $p is not in the package"; exit 1; }
done
grep -q '^ Conflicts: opensmtpd' <(dpkg-deb -I "$deb") || { echo "FAIL: no Conflicts: opensmtpd"; exit 1; }
grep -q '^ Provides: mail-transport-agent' <(dpkg-deb -I "$deb") || { echo "FAIL: no Provides: mail-transport-agent"; exit 1; }
echo "contents: every expected path is there"

echo "lintian:"
lintian --fail-on error "$deb" 2>&1 | grep -v 'root privileges' || true
lintian --fail-on error "$deb" >/dev/null 2>&1 || { echo "FAIL: lintian reports errors"; exit 1; }

# Like Postfix and OpenSMTPD, the package conflicts with and replaces another MTA: apt removes an
# installed one (CI has Postfix, for smtp-sink), and it is put back at the end.
replaced=""
if dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
    apt-get install -y -qq "$(realpath "$deb")" >/dev/null
    dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed' \
        && { echo "FAIL: postfix is still installed beside smtpd"; exit 1; }
    [ "$(dpkg -S /usr/sbin/sendmail)" = "smtpd: /usr/sbin/sendmail" ] \
        || { echo "FAIL: /usr/sbin/sendmail is not ours"; exit 1; }
    echo "installed in place of postfix"
    replaced=postfix
else
    dpkg -i "$deb"
fi
getent passwd smtpd >/dev/null || { echo "FAIL: no smtpd user"; exit 1; }
[ "$(stat -c %U:%G /var/lib/smtpd/mailboxes)" = smtpd:smtpd ] || { echo "FAIL: mailbox owner"; exit 1; }
/usr/sbin/smtpd --check-config --config /etc/smtpd/smtpd.toml

# The installed smtpd, as user smtpd, in the foreground, on free loopback ports.
work=$(mktemp -d)
chmod 755 "$work"
install -d -o smtpd -g smtpd "$work/mailboxes" "$work/logs" "$work/run" "$work/tls" "$work/queue"
sed -e 's/0\.0\.0\.0:[0-9]*/127.0.0.1:0/g' \
    -e "s|/var/lib/smtpd/mailboxes|$work/mailboxes|" -e "s|/var/lib/smtpd/tls|$work/tls|g" \
    -e "s|/var/lib/smtpd/queue|$work/queue|" \
    -e "s|/var/log/smtpd|$work/logs|" -e "s|/run/smtpd|$work/run|g" \
    /etc/smtpd/smtpd.toml >"$work/smtpd.toml"
chmod 644 "$work/smtpd.toml"
setpriv --reuid=smtpd --regid=smtpd --init-groups \
    /usr/sbin/smtpd --foreground --config "$work/smtpd.toml" 2>"$work/stderr" &
pid=$!
for _ in $(seq 1 200); do
    grep -q ' ready' "$work/stderr" && break
    kill -0 "$pid" 2>/dev/null || { cat "$work/stderr"; echo "FAIL: smtpd exited"; exit 1; }
    sleep 0.1
done
grep -q ' ready' "$work/stderr" || { cat "$work/stderr"; echo "FAIL: smtpd not ready"; exit 1; }
[ "$(stat -c %U /proc/$pid)" = smtpd ] || { echo "FAIL: not running as smtpd"; exit 1; }
/usr/bin/smtpctl --socket "$work/run/control.sock" send-test --to postmaster@localhost
/usr/bin/smtpctl --socket "$work/run/control.sock" status | head -3
files=$(find "$work/mailboxes/localhost/postmaster/new" -type f | wc -l)
[ "$files" = 1 ] || { echo "FAIL: $files messages delivered"; exit 1; }
[ "$(stat -c %U "$(find "$work/mailboxes/localhost/postmaster/new" -type f)")" = smtpd ] \
    || { echo "FAIL: mail not owned by smtpd"; exit 1; }
# What cron does: /usr/sbin/sendmail with the message on stdin.
printf 'Subject: from cron\n\nhello\n' | /usr/sbin/sendmail -C "$work/smtpd.toml" -i postmaster@localhost
files=$(find "$work/mailboxes/localhost/postmaster/new" -type f | wc -l)
[ "$files" = 2 ] || { echo "FAIL: sendmail: $files messages delivered"; exit 1; }
echo "sendmail: delivered"
kill "$pid"
wait "$pid" || true

for m in man8/smtpd.8 man8/smtpctl.8 man1/smtp-send.1 man8/sendmail.8 man5/smtpd.toml.5; do
    out=$(MANWIDTH=80 man -l "/usr/share/man/$m.gz" 2>&1)
    [ "$(wc -l <<<"$out")" -gt 10 ] || { echo "FAIL: man page $m: $out"; exit 1; }
done
echo "man pages render"

# The template is verified as an instance of it.
inst=$(mktemp -d)
cp systemd/smtpd@.service "$inst/smtpd@a.service"
verify=$(systemd-analyze verify systemd/smtpd.service "$inst/smtpd@a.service" 2>&1 || true)
rm -rf "$inst"
if [ -n "$verify" ]; then
    echo "$verify"
    echo "FAIL: systemd-analyze verify is not clean"
    exit 1
fi
echo "systemd-analyze verify: clean"
systemd-analyze security --offline=true systemd/smtpd.service 2>/dev/null | tail -n 1

dpkg --purge smtpd
[ ! -e /etc/smtpd ] || { echo "FAIL: purge left /etc/smtpd"; exit 1; }
[ ! -e /var/log/smtpd ] || { echo "FAIL: purge left /var/log/smtpd"; exit 1; }
rm -rf "$work"
if [ -n "$replaced" ]; then
    apt-get install -y -qq --no-install-recommends "$replaced" >/dev/null
fi
echo "package test: passed"
