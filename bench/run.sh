#!/usr/bin/env bash
# mxguard vs clamscan vs clamd+clamdscan on one synthetic ClamAV database and
# one mixed corpus.  See bench/README.md.
#
#   bench/run.sh            full run (2.17M signatures, 200 MiB corpus)
#   bench/run.sh --quick    smoke test (111k signatures, 20 MiB), about a minute
#
# Options:
#   --quick | --full       size preset (default: full)
#   --repeat N             run every timed command N times, keep the best wall time (default 1)
#   --tools LIST           comma-separated rows to run, from
#                          mxguard,mxguard-1t,mxguard-cold,clamscan,clamd,clamd-multiscan (default: all)
#   --no-build             do not run cargo build (use target/release/mxguard as it is)
#   --regen                regenerate the database and corpus even if they are up to date
#   --seed N               generator seed (default 20240601)
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
PRESET=full
REPEAT=1
BUILD=1
REGEN=0
SEED=20240601
TOOLS="mxguard,mxguard-1t,mxguard-cold,clamscan,clamd,clamd-multiscan"

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) PRESET=quick ;;
        --full) PRESET=full ;;
        --repeat) REPEAT=$2; shift ;;
        --tools) TOOLS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --regen) REGEN=1 ;;
        --seed) SEED=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
    esac
    shift
done

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
want() { [[ ",$TOOLS," == *",$1,"* ]]; }

if [ "$PRESET" = full ]; then W=$BENCH/work; else W=$BENCH/work/$PRESET; fi
DB=$W/db
CORPUS=$W/corpus
MANIFEST=$W/manifest.tsv
STATS=$W/stats.json
MXG=$ROOT/target/release/mxguard

# ---------------------------------------------------------------- prerequisites
need_pkg=()
[ -x /usr/bin/time ] || need_pkg+=(time)
command -v clamscan >/dev/null || need_pkg+=(clamav)
if want clamd || want clamd-multiscan; then
    command -v clamd >/dev/null || [ -x /usr/sbin/clamd ] || need_pkg+=(clamav-daemon)
    command -v clamdscan >/dev/null || need_pkg+=(clamdscan)
fi
if [ ${#need_pkg[@]} -gt 0 ]; then
    log "installing ${need_pkg[*]}"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq && apt-get install -y -qq "${need_pkg[@]}" >/dev/null
    else
        die "missing packages: ${need_pkg[*]} (apt-get install them)"
    fi
fi
CLAMD=$(command -v clamd || echo /usr/sbin/clamd)
command -v python3 >/dev/null || die "python3 is needed"

# ---------------------------------------------------------------- data
mkdir -p "$W"
STAMP="preset=$PRESET seed=$SEED gen=$(sha256sum "$BENCH/gen.py" | cut -c1-16)"
if [ $REGEN = 1 ] || [ ! -f "$W/.stamp" ] || [ "$(cat "$W/.stamp")" != "$STAMP" ] \
        || [ ! -d "$DB" ] || [ ! -d "$CORPUS" ] || [ ! -f "$MANIFEST" ]; then
    log "generating $PRESET database and corpus in $W (seed $SEED)"
    rm -f "$W/.stamp"
    python3 "$BENCH/gen.py" --out "$W" --preset "$PRESET" --seed "$SEED" > "$W/gen.log"
    echo "$STAMP" > "$W/.stamp"
else
    log "reusing $W ($STAMP)"
fi
PROBE=$W/probe.txt
printf 'mxguard benchmark probe: a tiny clean file\n' > "$PROBE"
read -r SIGS_TOTAL CORPUS_FILES CORPUS_BYTES < <(python3 -c '
import json,sys; s=json.load(open(sys.argv[1]))
print(s["signatures"]["total"], s["corpus"]["files"], s["corpus"]["bytes"])' "$STATS")
log "database: $SIGS_TOTAL signatures; corpus: $CORPUS_FILES files, $CORPUS_BYTES bytes"

RUN=$BENCH/work/runs/$PRESET-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
log "run directory: $RUN"

# ---------------------------------------------------------------- validate the db with clamscan
log "validating the database with clamscan"
clamscan -d "$DB" "$PROBE" > "$RUN/validate.out" 2> "$RUN/validate.err" || true
KNOWN=$(sed -n 's/^Known viruses: \([0-9]*\).*/\1/p' "$RUN/validate.out")
if grep -qiE 'error|malformed|warning' "$RUN/validate.err"; then
    log "WARNING: clamscan complained while loading the database:"
    head -5 "$RUN/validate.err" >&2
fi
if [ "${KNOWN:-0}" != "$SIGS_TOTAL" ]; then
    log "WARNING: clamscan loaded ${KNOWN:-?} signatures, the generator wrote $SIGS_TOTAL"
else
    log "clamscan loaded all $KNOWN signatures without errors"
fi

# ---------------------------------------------------------------- mxguard build
MXG_VERSION="not built"
if want mxguard || want mxguard-1t || want mxguard-cold; then
    if [ $BUILD = 1 ]; then
        log "building mxguard (cargo build --release -p mxguard)"
        if ! (cd "$ROOT" && cargo build --release -p mxguard) > "$RUN/cargo-build.log" 2>&1; then
            log "WARNING: cargo build failed (see $RUN/cargo-build.log); skipping mxguard"
            tail -5 "$RUN/cargo-build.log" >&2
            TOOLS=${TOOLS//mxguard-cold/}; TOOLS=${TOOLS//mxguard-1t/}; TOOLS=${TOOLS//mxguard/}
        fi
    fi
    if [ -x "$MXG" ] && "$MXG" scan --help >/dev/null 2>&1; then
        MXG_VERSION="$("$MXG" --version 2>/dev/null | head -1 || true) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty'))"
    else
        log "WARNING: $MXG scan is not usable; skipping mxguard"
        TOOLS=${TOOLS//mxguard-cold/}; TOOLS=${TOOLS//mxguard-1t/}; TOOLS=${TOOLS//mxguard/}
    fi
fi

python3 - "$RUN/run.json" <<EOF
import json, os, subprocess, sys, time
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True).stdout.strip()
    except Exception: return "?"
cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip() or "?"
mem = sh("awk '/MemTotal/ {printf \"%.0f GiB RAM\", \$2/1048576}' /proc/meminfo")
json.dump({
    "preset": "$PRESET", "seed": $SEED, "repeat": $REPEAT,
    "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    "cpu": cpu, "cores": os.cpu_count(), "mem": mem,
    "clamav_version": sh("clamscan --version"), "mxguard_version": """$MXG_VERSION""".removeprefix("mxguard ").strip(),
    "clamscan_known": "${KNOWN:-?}",
    "corpus_dir": "$CORPUS", "manifest": "$MANIFEST", "stats": "$STATS", "db_dir": "$DB",
}, open(sys.argv[1], "w"), indent=2)
EOF

# ---------------------------------------------------------------- warm the page cache
log "warming the page cache (db + corpus)"
cat "$DB"/* > /dev/null
find "$CORPUS" -type f -print0 | xargs -0 cat > /dev/null

# ---------------------------------------------------------------- one-shot scanners
# bench_cli ROW CMD...: load = scan of one tiny file; then a full scan of the corpus.
bench_cli() {
    local row=$1; shift
    local d=$RUN/$row i rc
    mkdir -p "$d"
    echo "$* $CORPUS" > "$d/cmd.txt"
    touch "$d/includes_load"
    for i in $(seq 1 "$REPEAT"); do
        log "$row: load (scan of one tiny file) $i/$REPEAT"
        rc=0; /usr/bin/time -v -o "$d/load.time.$i" "$@" "$PROBE" > "$d/load.out" 2> "$d/load.err" || rc=$?
        [ $rc -le 1 ] || log "WARNING: $row exited $rc on the probe file (see $d/load.err)"
    done
    for i in $(seq 1 "$REPEAT"); do
        log "$row: full scan $i/$REPEAT"
        rc=0; /usr/bin/time -v -o "$d/scan.time.$i" "$@" "$CORPUS" > "$d/scan.out" 2> "$d/scan.err" || rc=$?
        echo $rc > "$d/scan.rc"
        [ $rc -le 1 ] || log "WARNING: $row exited $rc on the corpus (see $d/scan.err)"
    done
    log "$row: $(grep -c ' FOUND$' "$d/scan.out" || true) FOUND lines"
}

# mxguard keeps a compiled copy of the databases (the cache) and reuses it while
# they are unchanged: rows `mxguard` and `mxguard-1t` measure that steady state
# (cache built once, untimed, before); `mxguard-cold` parses the text databases
# on every start (--no-cache), which is what a first start or an update costs.
MXG_CACHE=$RUN/mxguard-cache
if want mxguard || want mxguard-1t; then
    log "building mxguard's compiled cache (untimed)"
    "$MXG" sigs info --no-builtin --cache-dir "$MXG_CACHE" --db "$DB" > "$RUN/cache-build.txt" 2>&1 || true
fi
if want mxguard; then
    bench_cli mxguard "$MXG" scan --cache-dir "$MXG_CACHE" --db "$DB" --no-builtin --all-match
fi
if want mxguard-1t; then
    bench_cli mxguard-1t "$MXG" scan --cache-dir "$MXG_CACHE" --db "$DB" --no-builtin --all-match --threads 1
fi
if want mxguard-cold; then
    bench_cli mxguard-cold "$MXG" scan --no-cache --db "$DB" --no-builtin --all-match
fi
if want clamscan; then
    bench_cli clamscan clamscan --allmatch --no-summary -d "$DB" -r
fi

# ---------------------------------------------------------------- clamd + clamdscan
CLAMD_PID=
stop_clamd() {
    if [ -n "$CLAMD_PID" ] && kill -0 "$CLAMD_PID" 2>/dev/null; then
        kill "$CLAMD_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$CLAMD_PID" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$CLAMD_PID" 2>/dev/null && kill -9 "$CLAMD_PID" 2>/dev/null || true
    fi
    CLAMD_PID=
}
trap stop_clamd EXIT
trap 'stop_clamd; exit 130' INT TERM

clamd_ping() { # PORT -> 0 when clamd answers PONG
    local r
    r=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/'"$1"' && printf "zPING\0" >&3 && head -c 4 <&3' 2>/dev/null) || return 1
    [ "$r" = PONG ]
}
vm_hwm() { sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status" 2>/dev/null; }

if want clamd || want clamd-multiscan; then
    d=$RUN/clamd
    mkdir -p "$d" "$RUN/clamd-tmp"
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    CONF=$d/clamd.conf
    cat > "$CONF" <<EOF
# private clamd for bench/run.sh
DatabaseDirectory $DB
TCPSocket $PORT
TCPAddr 127.0.0.1
Foreground yes
LogFile $d/clamd.log
LogTime yes
PidFile $d/clamd.pid
TemporaryDirectory $RUN/clamd-tmp
# scan big files fully, like clamscan does with its defaults on this corpus
MaxScanSize 1000M
MaxFileSize 1000M
StreamMaxLength 1000M
AllowAllMatchScan yes
# no clean-file cache: a repeated scan would otherwise skip every clean file
DisableCache yes
EOF
    log "clamd: starting on 127.0.0.1:$PORT"
    t0=$(date +%s.%N)
    "$CLAMD" --config-file="$CONF" > "$d/clamd.stdout" 2>&1 &
    CLAMD_PID=$!
    while ! clamd_ping "$PORT"; do
        kill -0 "$CLAMD_PID" 2>/dev/null || { tail -5 "$d/clamd.stdout" >&2; die "clamd died while loading"; }
        if awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a > 1800) }'; then die "clamd did not answer PING in 30 min"; fi
        sleep 0.05
    done
    t1=$(date +%s.%N)
    LOAD=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
    LOAD_HWM=$(vm_hwm "$CLAMD_PID")
    log "clamd: PONG after ${LOAD}s, VmHWM ${LOAD_HWM} kB"

    clamd_row() { # ROW FIRST_MATCH clamdscan-args...
        local row=$1 first=$2 dd i rc; shift 2
        dd=$RUN/$row
        mkdir -p "$dd"
        echo "$LOAD" > "$dd/load.sec"
        echo "$LOAD_HWM" > "$dd/load_hwm_kb"
        [ "$first" = 1 ] && touch "$dd/first_match"
        echo "clamdscan --config-file=CONF $* $CORPUS" > "$dd/cmd.txt"
        for i in $(seq 1 "$REPEAT"); do
            log "$row: full scan $i/$REPEAT"
            rc=0; /usr/bin/time -v -o "$dd/scan.time.$i" clamdscan --config-file="$CONF" "$@" "$CORPUS" \
                > "$dd/scan.out" 2> "$dd/scan.err" || rc=$?
            echo $rc > "$dd/scan.rc"
            [ $rc -le 1 ] || log "WARNING: clamdscan exited $rc (see $dd/scan.err)"
        done
        vm_hwm "$CLAMD_PID" > "$dd/hwm_kb"
        log "$row: $(grep -c ' FOUND$' "$dd/scan.out" || true) FOUND lines, clamd VmHWM $(cat "$dd/hwm_kb") kB"
    }
    # clamdscan --fdpass sends one file at a time and honours --allmatch (every
    # match is reported); --multiscan scans in parallel on clamd's threads but
    # ignores --allmatch (first match per file only), so it is a separate row.
    want clamd && clamd_row clamd 0 --allmatch --no-summary --fdpass
    want clamd-multiscan && clamd_row clamd-multiscan 1 --no-summary --multiscan --fdpass
    stop_clamd
    log "clamd: stopped"
fi

# ---------------------------------------------------------------- report
mkdir -p "$BENCH/results"
if [ "$PRESET" = full ]; then OUT=$BENCH/results/latest.md; else OUT=$BENCH/results/latest-$PRESET.md; fi
python3 "$BENCH/report.py" "$RUN" --out "$OUT"
log "report written to $OUT (raw outputs in $RUN)"
