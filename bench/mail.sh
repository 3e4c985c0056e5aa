#!/usr/bin/env bash
# Decode + scan of real mail: the SpamAssassin public corpus (../shared/corpus,
# 6,046 messages) scanned by mxguard and by clamscan, one core each, with the
# same signature database.  Reports messages per second per core, with each
# tool's database load time (measured on a one-line file) subtracted.
#
#   bench/mail.sh [--db DIR] [--folder NAME] [--repeat N] [--no-build]
#
# --db DIR     signature database for both tools (default: the quick synthetic
#              database from bench/gen.py, generated on first use)
# --folder NAME  only one folder of the corpus (easy-ham-1, spam-1, ...): clamscan
#              with a large database can take many minutes on the whole corpus
# --repeat N   run each timed command N times and keep the best (default 3)
# --no-build   use target/release/mxguard as it is
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
W=$BENCH/work
DB=""
FOLDER=""
REPEAT=3
BUILD=1
while [ $# -gt 0 ]; do
    case "$1" in
        --db) DB=$2; shift ;;
        --folder) FOLDER=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --no-build) BUILD=0 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "mail.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

CORPUS_TGZ=$(cd "$ROOT/.." && pwd)/shared/corpus/spamassassin-corpus.tar.gz
MAIL=$W/spamassassin
if [ ! -d "$MAIL" ]; then
    log "extracting $CORPUS_TGZ"
    mkdir -p "$W"
    tar -xzf "$CORPUS_TGZ" -C "$W"
fi
[ -n "$FOLDER" ] && MAIL=$MAIL/$FOLDER
[ -d "$MAIL" ] || { echo "mail.sh: no folder $MAIL" >&2; exit 2; }
N=$(find "$MAIL" -type f -name '*.txt' | wc -l)
BYTES=$(find "$MAIL" -type f -name '*.txt' -printf '%s\n' | awk '{s+=$1} END {print s}')

if [ -z "$DB" ]; then
    DB=$W/quick/db
    if [ ! -d "$DB" ]; then
        log "generating the quick synthetic database"
        mkdir -p "$W/quick"
        python3 "$BENCH/gen.py" --out "$W/quick" --preset quick --seed 20240601 > "$W/quick/gen.log"
    fi
fi
if [ $BUILD = 1 ]; then
    log "cargo build --release -p mxguard"
    (cd "$ROOT" && cargo build --release -p mxguard) >/dev/null 2>&1
fi
MXG=$ROOT/target/release/mxguard
PROBE=$W/probe-mail.txt
printf 'a tiny clean file\n' > "$PROBE"

# best wall time in seconds of N runs of a command; its output goes to the file $1
best() {
    local out=$1 b=""
    shift
    for _ in $(seq "$REPEAT"); do
        local s e t
        s=$(date +%s.%N)
        "$@" >"$out" 2>&1 || true
        e=$(date +%s.%N)
        t=$(echo "$e - $s" | bc -l)
        if [ -z "$b" ] || [ "$(echo "$t < $b" | bc -l)" = 1 ]; then b=$t; fi
    done
    echo "$b"
}

log "warming the compiled cache"
"$MXG" scan --db "$DB" "$PROBE" >/dev/null 2>&1 || true
log "timing ($N messages, $BYTES bytes, best of $REPEAT)"
MX_LOAD=$(best /dev/null "$MXG" scan --threads 1 --db "$DB" "$PROBE")
MX_ALL=$(best "$W/mail-mxguard.out" "$MXG" scan --threads 1 --infected --db "$DB" "$MAIL")
CS_LOAD=$(best /dev/null clamscan --no-summary -d "$DB" "$PROBE")
CS_ALL=$(best "$W/mail-clamscan.out" clamscan --no-summary --infected -r -d "$DB" "$MAIL")
MX_FOUND=$(grep -c ' FOUND$' "$W/mail-mxguard.out" || true)
CS_FOUND=$(grep -c ' FOUND$' "$W/mail-clamscan.out" || true)

python3 - "$N" "$BYTES" "$MX_LOAD" "$MX_ALL" "$CS_LOAD" "$CS_ALL" "$MX_FOUND" "$CS_FOUND" "$DB" "$MAIL" > "$BENCH/results/mail-latest.md" <<'EOF'
import sys, time, os
n, size = int(sys.argv[1]), int(sys.argv[2])
mxl, mxa, csl, csa = map(float, sys.argv[3:7])
mxf, csf, db = sys.argv[7], sys.argv[8], sys.argv[9]
def rate(total, load): return n / max(total - load, 1e-9)
mx, cs = rate(mxa, mxl), rate(csa, csl)
print(f"# Decode + scan of the SpamAssassin corpus ({time.strftime('%Y-%m-%d')})\n")
print(f"{n} messages ({os.path.relpath(sys.argv[10])}), {size/1048576:.1f} MiB; database `{os.path.relpath(db)}`; one core per tool; best of runs.\n")
print("| tool | total s | load s | scan s | messages/s/core | MB/s | files reported |")
print("|---|---:|---:|---:|---:|---:|---:|")
for name, a, l, r, f in (("mxguard scan --threads 1", mxa, mxl, mx, mxf), ("clamscan", csa, csl, cs, csf)):
    print(f"| {name} | {a:.2f} | {l:.2f} | {a-l:.2f} | {r:,.0f} | {size/1e6/max(a-l,1e-9):.1f} | {f} |")
print(f"\n**mxguard / clamscan: {mx/cs:.1f}x** messages per second per core (target: 10x).")
print("\n'files reported' counts FOUND lines: mxguard's are heuristic findings "
      "(clamscan runs with its default heuristics); see work/mail-*.out.")
EOF
cat "$BENCH/results/mail-latest.md"
