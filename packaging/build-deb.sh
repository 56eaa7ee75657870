#!/usr/bin/env bash
# Builds the Debian package: release binaries, man pages and completions (from the clap
# definitions; smtpd.toml(5) from the config reference), then cargo-deb. Prints the .deb path.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb >&2
cargo build --release --locked >&2
cargo run --locked --quiet --example gen_docs -- target/docs >&2
cargo deb --no-build --locked --strip --output target/debian/ >&2
ls -t target/debian/*.deb | head -n 1
