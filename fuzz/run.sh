#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) on the stable toolchain (`-s none`: no
# sanitizer), starting from the seeds in fuzz/seeds/<target> and keeping the corpus in
# fuzz/corpus/<target>. A crash stops the run with its input saved under fuzz/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
command -v cargo-fuzz >/dev/null || cargo install --locked cargo-fuzz
for t in smtp_session pop3_session config control sasl proxy_header imap_session; do
    mkdir -p "fuzz/corpus/$t"
    cp -n fuzz/seeds/"$t"/* "fuzz/corpus/$t/" 2>/dev/null || true
    echo "== $t: ${secs}s"
    cargo fuzz run -s none "$t" "fuzz/corpus/$t" -- -max_total_time="$secs" -print_final_stats=1 2>&1 \
        | grep -E "stat::number_of_executed_units|stat::peak_rss_mb|ERROR|panicked|Done" || true
    [ -z "$(ls fuzz/artifacts/"$t" 2>/dev/null)" ] || { echo "FAIL: $t found a crash: fuzz/artifacts/$t"; exit 1; }
done
