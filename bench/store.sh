#!/usr/bin/env bash
# Store benchmark (crates/store): sustained batched event inserts through the
# EventWriter, dashboard query times on the resulting log, and quarantine put
# latency, on SQLite and on PostgreSQL. Writes bench/results/store-latest.md.
#
#   bench/store.sh [EVENTS]        (default 1000000)
#
# SQLite: a database file under bench/work/. PostgreSQL: a private server that
# the benchmark starts itself (initdb + pg_ctl in a temp dir on a free
# loopback port, as user postgres when run as root; default settings, fsync
# and synchronous_commit on) and stops at the end. Needs the Debian package
# `postgresql`.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${1:-1000000}
target=${CARGO_TARGET_DIR:-target}
out=bench/results/store-latest.md
work=bench/work/store
mkdir -p "$work" bench/results

cargo build --release -p mxguard-store --example store_bench
bin="$target/release/examples/store_bench"

rm -f "$work"/bench.db*
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
{
  echo "# mxguard-store benchmark"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "- load average (1/5/15 min) before the run: $load_before (other work on this machine shares its 2 cores)"
  echo "- command: \`bench/store.sh $events\`"
  echo
  "$bin" sqlite "$events" "sqlite://$PWD/$work/bench.db"
  echo "SQLite file after the run: $(du -sh "$work" | cut -f1)."
  echo
  "$bin" postgres "$events"
  echo "- load average after the run: $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out.tmp"
mv "$out.tmp" "$out"
rm -f "$work"/bench.db*
cat "$out"
