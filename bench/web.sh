#!/usr/bin/env bash
# Web console benchmark: page load times with a large event log.
#
#   bench/web.sh [EVENTS]        (default 1000000)
#
# 1. Loads EVENTS synthetic events over 7 days (and 500 quarantined
#    messages) into a SQLite store with the store benchmark's bulk loader
#    (crates/store/examples/store_bench.rs, the same data as bench/store.sh).
# 2. Serves the console over that store (crates/web/examples/web_bench.rs,
#    release build) on a loopback port.
# 3. Fetches every page and API call below RUNS times with curl (a logged-in
#    session, keep-alive off: each load is a new connection) and reports the
#    median, p90 and max of curl's total time.
# Writes bench/results/web-latest.md.
set -euo pipefail
cd "$(dirname "$0")/.."

events=${1:-1000000}
runs=${RUNS:-10}
target=${CARGO_TARGET_DIR:-target}
out=bench/results/web-latest.md
work=bench/work/web
port=${PORT:-18089}
mkdir -p "$work" bench/results
command -v curl >/dev/null || { echo "bench/web.sh: curl is needed" >&2; exit 2; }

cargo build --release -p mxguard-store --example store_bench
cargo build --release -p mxguard-web --example web_bench
db="$PWD/$work/bench.db"
rm -f "$db"*
load_log="$work/load.md"
"$target/release/examples/store_bench" sqlite "$events" "sqlite://$db" > "$load_log"

server=""
start_server() { # WARM_SECS
  WARM_SECS=$1 "$target/release/examples/web_bench" "sqlite://$db" "$port" > "$work/serve.out" 2>"$work/serve.err" &
  server=$!
  for _ in $(seq 1 100); do
    grep -q mxguard_session "$work/serve.out" 2>/dev/null && break
    sleep 0.1
  done
  cookie=$(grep mxguard_session "$work/serve.out")
}
trap 'kill $server 2>/dev/null || true' EXIT
start_server 0
qid=$(sqlite3 "$db" "SELECT id FROM quarantine LIMIT 1" 2>/dev/null || true)
if [ -z "$qid" ]; then
  qid=$(curl -s -b "$cookie" "http://127.0.0.1:$port/api/v1/quarantine?limit=1" | sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
fi
evq=$(curl -s -b "$cookie" "http://127.0.0.1:$port/api/v1/events?limit=1" | sed -n 's/.*"queue_id":"\([^"]*\)".*/\1/p')
evfrom=$(curl -s -b "$cookie" "http://127.0.0.1:$port/api/v1/events?limit=1" | sed -n 's/.*"mail_from":"\([^"]*\)".*/\1/p')

pages=(
  "/"
  "/?hours=168"
  "/quarantine"
  "/quarantine?subject=invoice+4"
  "/quarantine/$qid"
  "/events"
  "/events?q=$evq"
  "/events?sender=s123%40"
  "/events?sender=$evfrom"
  "/events?sender=%40sender7.example"
  "/events?recipient=%40dept7.corp.example"
  "/events?recipient=user4242"
  "/trace/$evq"
  "/reports"
  "/reports?since=24h"
  "/signatures"
  "/system"
  "/users"
  "/policy"
  "/metrics"
  "/api/v1/dashboard"
  "/api/v1/quarantine"
  "/api/v1/events"
  "/api/v1/reports?since=7d"
)
# First load after 11 s without requests (the 10 s cache has expired), then RUNS-1 more.
declare -A cold row
measure() { # into: cold|row
  for p in "${pages[@]}"; do
    times=()
    size=0
    sleep 11
    first=""
    for _ in $(seq 1 "$runs"); do
      r=$(curl -s -o /dev/null -b "$cookie" -w "%{http_code} %{time_total} %{size_download}" "http://127.0.0.1:$port$p")
      code=${r%% *}
      [ "$code" = 200 ] || { echo "bench/web.sh: $p answered $code" >&2; exit 1; }
      t=$(echo "$r" | cut -d' ' -f2)
      size=$(echo "$r" | cut -d' ' -f3)
      ms=$(awk -v t="$t" 'BEGIN{printf "%.1f", t*1000}')
      [ -n "$first" ] || first=$ms
      times+=("$ms")
    done
    sorted=$(printf '%s\n' "${times[@]}" | sort -n)
    med=$(echo "$sorted" | awk -v n="$runs" 'NR==int((n+1)/2){print}')
    p90=$(echo "$sorted" | awk -v n="$runs" 'NR==int(n*0.9+0.999){print}')
    max=$(echo "$sorted" | tail -1)
    if [ "$1" = cold ]; then
      cold[$p]=$first
    else
      row[$p]="$first | $med | $p90 | $max | $size"
    fi
  done
}
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
measure cold                     # WARM_SECS=0: every first load runs its store queries
kill $server; wait $server 2>/dev/null || true
start_server 60                  # as shipped: [web] warm_secs = 60
sleep 5                          # the first refresh round
measure row
{
  echo "# mxguard web console benchmark"
  echo
  echo "- date: $(date -u +%Y-%m-%dT%H:%M:%SZ), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  echo "- machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')), $(free -g | awk '/Mem:/{print $2}') GiB RAM"
  echo "- load average (1/5/15 min) before the timed loads: $load_before (other work on this machine shares its 2 cores)"
  echo "- command: \`bench/web.sh $events\` ($runs loads per page, curl's total time, new connection each, session cookie)"
  echo "- store: SQLite, $events events over 7 days ending at the end of the current UTC day, 500 quarantined messages (the store benchmark's data)"
  echo
  echo 'Dashboard and report numbers are cached for 10 s (`[web] cache_secs`). Each page is first loaded after'
  echo '11 s without any request. "cold" is that first load with `[web] warm_secs = 0` (every store query'
  echo 'runs on the request); the other columns are with the shipped default `warm_secs = 60` (the 24 h and'
  echo '7 day dashboard and report numbers are refreshed in the background; other periods still run on the request).'
  echo
  echo "| page | cold, warm_secs=0 ms | first ms | median ms | p90 ms | max ms | bytes |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  for p in "${pages[@]}"; do
    echo "| \`$p\` | ${cold[$p]} | ${row[$p]} |"
  done
  echo
  echo "- load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "## The data (store benchmark output)"
  echo
  sed 's/^### /#### /' "$load_log"
} > "$out.tmp"
mv "$out.tmp" "$out"
rm -f "$db"*
cat "$out"
