#!/usr/bin/env bash
# The gateway's throughput and added latency: Postfix's smtp-source sends to
# mxguard serve, which scans, spools (fsync) and relays to smtp-sink; the same
# load sent straight to smtp-sink is the ceiling. Scenarios: real messages from
# the SpamAssassin corpus, synthetic 10 KB and 100 KB messages. With Postfix
# available, two more paths: smtp-source → Postfix → smtp-sink (a relay that
# does not scan), and the same Postfix with mxguard as its milter (every
# message scanned at end of data, the verdict applied by Postfix).
#
#   bench/smtp.sh [--messages N] [--corpus-files K] [--corpus-repeat R]
#                 [--latency N] [--repeat N] [--db DIR] [--scenarios LIST]
#                 [--no-postfix] [--no-milter] [--data-dir DIR] [--out FILE] [--no-build]
#                 [--policy default|off|FILE]
#
# --messages N       messages per synthetic throughput run (default 5000; 100 KB: N/2)
# --corpus-files K   distinct corpus messages, a stratified sample (default 100)
# --corpus-repeat R  each of them sent R times per run (default 50: 5,000 messages);
#                    one smtp-source process per file (-F), so K processes per run
# --latency N        sequential messages per latency run (default 1000)
# --repeat N         throughput runs per scenario and path, best kept (default 3)
# --db DIR           signature database for mxguard (default: the quick synthetic
#                    one from bench/gen.py, 111k signatures; "builtin" for EICAR only)
# --scenarios LIST   comma-separated subset of corpus,10k,100k
# --no-postfix       skip the reference row through a private Postfix (smtp-source →
#                    postfix → smtp-sink): a relay that also fsyncs its queue file
# --no-milter        skip the rows through that Postfix with mxguard as its milter
# --data-dir DIR     mxguard's data_dir (spool) there instead of in the run directory,
#                    e.g. /dev/shm/x to see what the disk's fsync costs (diagnostic only)
# --out FILE         the report (default bench/results/smtp-latest.md)
# --no-build         use the release binary as it is ($CARGO_TARGET_DIR or target/)
# --policy P         the rules engine: "default" (what `serve` runs with no policy:
#                    the built-in phishing rules), "off" (no rules: the facts are not
#                    gathered), or a policy FILE (e.g. crates/policy/examples/policy.toml)
#
# Needs postfix (smtp-source, smtp-sink), python3 and cargo. Results:
# bench/results/smtp-latest.md; raw outputs in bench/work/runs/smtp-DATE/.
set -euo pipefail

BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
W=$BENCH/work
N=5000
CORPUS_FILES=100
CORPUS_REPEAT=50
LAT_N=1000
REPEAT=3
DB=""
POLICY=default
SCENARIOS=corpus,10k,100k
BUILD=1
POSTFIX=1
MILTER=1
DATA=""
OUT=""
while [ $# -gt 0 ]; do
    case "$1" in
        --messages) N=$2; shift ;;
        --corpus-files) CORPUS_FILES=$2; shift ;;
        --corpus-repeat) CORPUS_REPEAT=$2; shift ;;
        --latency) LAT_N=$2; shift ;;
        --repeat) REPEAT=$2; shift ;;
        --db) DB=$2; shift ;;
        --policy) POLICY=$2; shift ;;
        --scenarios) SCENARIOS=$2; shift ;;
        --no-build) BUILD=0 ;;
        --no-postfix) POSTFIX=0 ;;
        --no-milter) MILTER=0 ;;
        --data-dir) DATA=$2; shift ;;
        --out) OUT=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "smtp.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift
done
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
PROBE="python3 $BENCH/smtp_probe.py"
SESSIONS=20
FROM=bench@source.test
TO=rcpt@example.com

for t in smtp-source smtp-sink; do
    command -v $t >/dev/null 2>&1 || [ -x /usr/sbin/$t ] || {
        echo "smtp.sh: $t is missing: install postfix (apt-get install -y postfix)" >&2; exit 2; }
done
export PATH=$PATH:/usr/sbin
SINK_USER=()
[ "$(id -u)" = 0 ] && SINK_USER=(-u root)   # smtp-sink refuses root without a user to switch to
if [ $POSTFIX = 1 ] && { [ "$(id -u)" != 0 ] || ! command -v postfix >/dev/null 2>&1 || ! id postfix >/dev/null 2>&1; }; then
    log "no Postfix reference rows: they need root and the postfix package"
    POSTFIX=0
fi
[ $POSTFIX = 1 ] || MILTER=0

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ $BUILD = 1 ]; then
    log "cargo build --release -p mxguard"
    (cd "$ROOT" && cargo build --release -p mxguard) >/dev/null 2>&1
fi
MXG=$TARGET/release/mxguard
[ -x "$MXG" ] || { echo "smtp.sh: no $MXG (build it or drop --no-build)" >&2; exit 2; }

# Signatures: the quick synthetic database (as bench/mail.sh) unless told otherwise.
if [ -z "$DB" ]; then
    DB=$W/quick/db
    if [ ! -d "$DB" ]; then
        log "generating the quick synthetic database"
        mkdir -p "$W/quick"
        python3 "$BENCH/gen.py" --out "$W/quick" --preset quick --seed 20240601 > "$W/quick/gen.log"
    fi
fi

# Corpus sample: every k-th message of the sorted list (so spam and ham keep
# their shares), without the mbox "From " line, which is not a header. Messages
# with a bare CR are left out: mxguard refuses them (550, RFC 5321 §2.3.8), and
# smtp-source would stop at the first refusal (8 of the 6,047 have one).
CORPUS_TGZ=$(cd "$ROOT/.." && pwd)/shared/corpus/spamassassin-corpus.tar.gz
MAIL=$W/spamassassin
if [[ ,$SCENARIOS, == *,corpus,* ]]; then
    if [ ! -d "$MAIL" ]; then
        log "extracting $CORPUS_TGZ"
        mkdir -p "$W"
        tar -xzf "$CORPUS_TGZ" -C "$W"
    fi
    SAMPLE=$W/smtp-corpus-$CORPUS_FILES
    if [ ! -f "$SAMPLE/list" ]; then
        rm -rf "$SAMPLE"; mkdir -p "$SAMPLE/msg"
        find "$MAIL" -type f -name '*.txt' | sort > "$SAMPLE/found"
        xargs -a "$SAMPLE/found" grep -lP '\r(?!\n)' | sort > "$SAMPLE/bare-cr" || true
        comm -23 "$SAMPLE/found" "$SAMPLE/bare-cr" > "$SAMPLE/all"
        total=$(wc -l < "$SAMPLE/all")
        awk -v t="$total" -v k="$CORPUS_FILES" 'BEGIN{s=t/k} { if (NR-1 >= n*s && n < k) { print; n++ } }' \
            "$SAMPLE/all" > "$SAMPLE/picked"
        i=0
        while read -r f; do
            i=$((i+1))
            out=$SAMPLE/msg/$(printf '%05d' $i)-$(basename "$(dirname "$f")").eml
            if head -c 5 "$f" | grep -q '^From '; then tail -n +2 "$f" > "$out"; else cp "$f" "$out"; fi
        done < "$SAMPLE/picked"
        ls "$SAMPLE"/msg/*.eml > "$SAMPLE/list"
    fi
    CORPUS_LIST=$SAMPLE/list
    CORPUS_BYTES=$(xargs -a "$CORPUS_LIST" stat -c %s | awk '{s+=$1} END {print s}')
    CORPUS_SPAM=$(grep -c -- '-spam-' "$CORPUS_LIST" || true)
fi

RUN=$W/runs/smtp-$(date +%Y%m%d-%H%M%S)
mkdir -p "$RUN"
DATA=${DATA:-$RUN/data}
OUT=${OUT:-$BENCH/results/smtp-latest.md}
SUMMARY=$RUN/summary.tsv
: > "$SUMMARY"
log "run directory $RUN"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() {
    local port=$1 pid=$2 i
    for i in $(seq 600); do
        (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || { echo "smtp.sh: process $pid died before listening on $port" >&2; return 1; }
        sleep 0.05
    done
    echo "smtp.sh: nothing listens on $port" >&2; return 1
}

# Only the sink, mxguard and Postfix we started last can still run; stopped by their pids.
SINK_PID=""
MX_PID=""
PF_DIR=""
PF_UP=0
stop_pid() { [ -n "$1" ] || return 0; kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
cleanup() {
    stop_pid "$MX_PID"; stop_pid "$SINK_PID"
    [ $PF_UP = 1 ] && postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || true
    if [ -n "$PF_DIR" ]; then cp "$PF_DIR/maillog" "$RUN/postfix-maillog" 2>/dev/null || true; rm -rf "$PF_DIR"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start_sink() {  # PORT COUNTER-FILE
    smtp-sink "${SINK_USER[@]}" -c "127.0.0.1:$1" 1000 > "$2" 2>&1 &
    SINK_PID=$!
    wait_port "$1" "$SINK_PID"
}

# The policy lines of the mxguard configs (see --policy).
policy_top() {
    case "$POLICY" in
        default|off) ;;
        *) printf 'policy_file = "%s"\n' "$(cd "$(dirname "$POLICY")" && pwd)/$(basename "$POLICY")" ;;
    esac
}
policy_section() {
    [ "$POLICY" = off ] && printf '[policy.phishing]\nbuiltin_rules = false\n'
    return 0
}

start_mxguard() {  # LISTEN-PORT NEXT-HOP-PORT NAME
    local conf=$RUN/$3.toml
    cat > "$conf" <<EOF
data_dir = "$DATA"
node_id = "bench"
$(policy_top)

[smtp]
listen = ["127.0.0.1:$1"]
hostname = "mx.bench.test"
local_domains = []
relay_domains = ["example.com"]
next_hop = "smtp://127.0.0.1:$2"

# Every verdict is delivered (tagged), so that all messages reach the sink and
# can be counted; every message is still scanned in full.
[actions]
infected = "tag"
suspicious = "tag"
unscannable = "tag"

[engine]
signatures = [$( [ "$DB" = builtin ] || printf '"%s"' "$DB")]
builtin = true

[web]
listen = ""
$(policy_section)
EOF
    "$MXG" serve --config "$conf" 2>> "$RUN/$3.log" &
    MX_PID=$!
    wait_port "$1" "$MX_PID"
}

start_mxguard_milter() {  # MILTER-PORT NAME
    local conf=$RUN/$2.toml
    cat > "$conf" <<EOF
data_dir = "$DATA"
node_id = "bench"
$(policy_top)

[smtp]
listen = []
hostname = "mx.bench.test"

[milter]
listen = ["127.0.0.1:$1"]

# As for the gateway runs: every verdict is delivered (tagged), every message scanned.
[actions]
infected = "tag"
suspicious = "tag"
unscannable = "tag"

[engine]
signatures = [$( [ "$DB" = builtin ] || printf '"%s"' "$DB")]
builtin = true

[web]
listen = ""
$(policy_section)
EOF
    "$MXG" serve --config "$conf" 2>> "$RUN/$2.log" &
    MX_PID=$!
    wait_port "$1" "$MX_PID"
}

# A private Postfix relay (../shared/TESTING-PEERS.md): smtpd on $PF_PORT,
# example.com relayed to smtp-sink on $PF_SINK. In a mktemp folder (mode 755)
# because every parent must be traversable by user postfix.
if [ $POSTFIX = 1 ]; then
    PF_DIR=$(mktemp -d /tmp/mxguard-bench-postfix.XXXXXX)
    chmod 755 "$PF_DIR"
    PF_PORT=$(free_port)
    PF_SINK=$(free_port)
    mkdir -p "$PF_DIR/etc" "$PF_DIR/queue" "$PF_DIR/data"
    chown postfix "$PF_DIR/queue" "$PF_DIR/data"
    sed "s/^smtp      inet/127.0.0.1:$PF_PORT      inet/" /etc/postfix/master.cf > "$PF_DIR/etc/master.cf"
    cat > "$PF_DIR/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF_DIR/queue
data_directory = $PF_DIR/data
mail_owner = postfix
myhostname = postfix.bench.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mydestination =
relay_domains = example.com
transport_maps = inline:{ example.com=smtp:[127.0.0.1]:$PF_SINK }
smtp_dns_support_level = disabled
maillog_file = $PF_DIR/maillog
maillog_file_prefixes = $PF_DIR
milter_protocol = 6
milter_default_action = tempfail
EOF
    postfix -c "$PF_DIR/etc" check
fi
start_postfix() {
    postfix -c "$PF_DIR/etc" start >/dev/null 2>&1
    PF_UP=1
    local pid
    pid=$(tr -d ' ' < "$PF_DIR/queue/pid/master.pid")
    wait_port "$PF_PORT" "$pid"
}
stop_postfix() {
    postfix -c "$PF_DIR/etc" stop >/dev/null 2>&1 || true
    PF_UP=0
    local i
    for i in $(seq 100); do [ -f "$PF_DIR/queue/pid/master.pid" ] || break; sleep 0.1; done
}

# The load: smtp-source with $SESSIONS sessions (one message per session, as
# smtp-source does by default), or for the corpus $SESSIONS parallel lanes of one
# smtp-source per message file (-m $CORPUS_REPEAT copies each, one session).
load() {  # SCENARIO PORT OUTFILE
    case "$1" in
        corpus) xargs -a "$CORPUS_LIST" -P "$SESSIONS" -I{} \
                    smtp-source -m "$CORPUS_REPEAT" -F {} -f $FROM -t $TO "127.0.0.1:$2" > "$3" 2>&1 ;;
        10k)    smtp-source -s "$SESSIONS" -m "$N" -l 10240 -f $FROM -t $TO "127.0.0.1:$2" > "$3" 2>&1 ;;
        100k)   smtp-source -s "$SESSIONS" -m $((N / 2)) -l 102400 -f $FROM -t $TO "127.0.0.1:$2" > "$3" 2>&1 ;;
    esac
}
count() {
    case "$1" in
        corpus) echo $(( $(wc -l < "$CORPUS_LIST") * CORPUS_REPEAT )) ;;
        10k) echo "$N" ;;
        100k) echo $((N / 2)) ;;
    esac
}

# One throughput run: wall time from the start of the load until the sink has
# counted every message (delivery included), and mxguard's CPU time over it.
throughput() {  # SCENARIO PATH(direct|via|postfix|milter) INDEX
    local scen=$1 path=$2 i=$3 n sp mp t0 t1 c0="0 0" c1="0 0" target
    n=$(count "$scen")
    sp=$(free_port)
    if [ "$path" = postfix ] || [ "$path" = milter ]; then sp=$PF_SINK; fi
    start_sink "$sp" "$RUN/sink-$scen-$path-$i.out"
    target=$sp
    if [ "$path" = milter ]; then
        mp=$(free_port)
        start_mxguard_milter "$mp" "mxguard-milter-$scen-$i"
        postconf -c "$PF_DIR/etc" -e "smtpd_milters = inet:127.0.0.1:$mp"
        c0=$($PROBE cpu "$MX_PID")
    fi
    if [ "$path" = postfix ] || [ "$path" = milter ]; then
        start_postfix
        target=$PF_PORT
    fi
    if [ "$path" = via ]; then
        mp=$(free_port)
        start_mxguard "$mp" "$sp" "mxguard-$scen-$i"
        target=$mp
        c0=$($PROBE cpu "$MX_PID")
    fi
    t0=$(date +%s.%N)
    local st=$RUN/source-$scen-$path-$i.status
    ( rc=0; load "$scen" "$target" "$RUN/source-$scen-$path-$i.out" || rc=$?; echo $rc > "$st" ) &
    local lp=$!
    if ! t1=$($PROBE wait-sink "$RUN/sink-$scen-$path-$i.out" "$n" 600 "$st"); then
        echo "smtp.sh: $scen/$path: the sink did not get all $n messages; see $RUN/source-$scen-$path-$i.out" >&2
        exit 1
    fi
    wait $lp
    [ "$(cat "$st")" = 0 ] || { echo "smtp.sh: smtp-source failed ($scen/$path); see $RUN/source-$scen-$path-$i.out" >&2; exit 1; }
    if [ "$path" = via ] || [ "$path" = milter ]; then
        c1=$($PROBE cpu "$MX_PID")
    fi
    if [ "$path" = postfix ] || [ "$path" = milter ]; then stop_postfix; fi
    if [ "$path" = milter ]; then postconf -c "$PF_DIR/etc" -X smtpd_milters; fi
    if [ "$path" = via ] || [ "$path" = milter ]; then
        stop_pid "$MX_PID"; MX_PID=""
    fi
    stop_pid "$SINK_PID"; SINK_PID=""
    local wall usr sys
    wall=$(echo "$t1 - $t0" | bc -l)
    usr=$(echo "${c1% *} - ${c0% *}" | bc -l)
    sys=$(echo "${c1#* } - ${c0#* }" | bc -l)
    log "$scen $path #$i: $n messages in $(printf %.2f "$wall") s ($(echo "$n / $wall" | bc) msg/s)$( { [ "$path" = via ] || [ "$path" = milter ]; } && echo ", mxguard CPU user $usr s + system $sys s")"
    printf 'tp\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$path" "$i" "$n" "$wall" "$usr" "$sys" >> "$SUMMARY"
}

# Sequential messages, one session: final dot → reply, and → arrival at the sink.
# After a sync and a pause: the throughput runs leave dirty pages (logs, Postfix's
# queue) whose writeback would otherwise slow the first fsyncs measured here.
latency() {  # SCENARIO PATH
    local scen=$1 path=$2 lp mp args
    sync; sleep 2
    lp=$(free_port)
    case "$scen" in
        corpus) args=(--files "$CORPUS_LIST") ;;
        10k) args=(--size 10240) ;;
        100k) args=(--size 102400) ;;
    esac
    if [ "$path" = via ]; then
        mp=$(free_port)
        start_mxguard "$mp" "$lp" "mxguard-latency-$scen"
        $PROBE latency --target "127.0.0.1:$mp" --sink-port "$lp" --n "$LAT_N" "${args[@]}" \
            --out "$RUN/latency-$scen-$path.json" 2>> "$RUN/latency.log"
        stop_pid "$MX_PID"; MX_PID=""
    else
        $PROBE latency --target "127.0.0.1:$lp" --sink-port "$lp" --n "$LAT_N" "${args[@]}" \
            --out "$RUN/latency-$scen-$path.json" 2>> "$RUN/latency.log"
    fi
    printf 'lat\t%s\t%s\t%s\n' "$scen" "$path" "$RUN/latency-$scen-$path.json" >> "$SUMMARY"
}

# Warm-up: compile the signature cache into the data dir, so later starts load it in milliseconds.
p=$(free_port); q=$(free_port)
start_mxguard "$p" "$q" warmup
stop_pid "$MX_PID"; MX_PID=""
LOAD_AVG=$(cut -d' ' -f1-3 /proc/loadavg)
IFS=, read -r -a SCEN <<< "$SCENARIOS"
for s in "${SCEN[@]}"; do
    for i in $(seq "$REPEAT"); do
        throughput "$s" direct "$i"
        throughput "$s" via "$i"
        if [ $POSTFIX = 1 ]; then throughput "$s" postfix "$i"; fi
        if [ $MILTER = 1 ]; then throughput "$s" milter "$i"; fi
    done
    latency "$s" direct
    latency "$s" via
done

python3 - "$SUMMARY" "$DB" "$SESSIONS" "$LOAD_AVG" "${CORPUS_FILES}" "${CORPUS_REPEAT}" \
    "${CORPUS_BYTES:-0}" "${CORPUS_SPAM:-0}" "$REPEAT" "$($MXG --version 2>/dev/null || echo mxguard)" \
    "$(postconf -h mail_version 2>/dev/null || echo '?')" "$DATA" "$RUN" "$POLICY" > "$OUT" <<'EOF'
import sys, json, os, time
summary, db, sessions, load_avg, cfiles, crep, cbytes, cspam, repeat, version, pfver, data, run, policy = sys.argv[1:]
tp, lat = {}, {}
for line in open(summary):
    f = line.rstrip("\n").split("\t")
    if f[0] == "tp":
        _, scen, path, i, n, wall, usr, sys_ = f
        tp.setdefault((scen, path), []).append((int(n), float(wall), float(usr), float(sys_)))
    else:
        lat[(f[1], f[2])] = json.load(open(f[3]))
names = {"corpus": f"SpamAssassin corpus ({int(cfiles):,} messages × {crep})",
         "10k": "synthetic 10 KB", "100k": "synthetic 100 KB"}
order = [s for s in ("corpus", "10k", "100k") if (s, "direct") in tp]
has_pf = any(p == "postfix" for _, p in tp)
def best(s, p):
    runs = tp.get((s, p))
    return max(runs, key=lambda r: r[0] / r[1]) if runs else None
cores = os.cpu_count()
policy_desc = {"default": "the default policy (built-in phishing rules)",
               "off": "off (no rules, no facts gathered)"}.get(policy, f"policy file `{os.path.relpath(policy)}`")
dbname = "built-in only" if db == "builtin" else f"`{os.path.relpath(db)}` + built-in"
print(f"# SMTP gateway throughput and added latency ({time.strftime('%Y-%m-%d')})\n")
print(f"smtp-source ({sessions} parallel sessions) → {version} serve → smtp-sink, against smtp-source → "
      f"smtp-sink directly (the ceiling: smtp-sink keeps nothing). mxguard scans every message "
      f"(signatures: {dbname}; decoder and heuristics on; rules engine: {policy_desc}), writes it to its spool with fsync before "
      f"the 250, then relays it. {cores} cores shared by load generator, mxguard and sink. "
      f"Best of {repeat} runs per cell; load average at start: {load_avg}.\n")
if not os.path.realpath(data).startswith(os.path.realpath(run)):
    print(f"**Diagnostic run: mxguard's data_dir (spool) was `{data}`, not the disk of the other runs.**\n")
hdr = "| scenario | messages | direct msg/s | via mxguard msg/s | ratio |"
sep = "|---|---:|---:|---:|---:|"
if has_pf:
    hdr += " via Postfix msg/s |"
    sep += "---:|"
hdr += " mxguard CPU s (user + sys) | msg/s per core | added reply latency p50 / p99 (ms) | added delivery latency p50 / p99 (ms) |"
sep += "---:|---:|---:|---:|"
print(hdr)
print(sep)
notes = []
for s in order:
    d, v, pf = best(s, "direct"), best(s, "via"), best(s, "postfix")
    dr, vr = d[0] / d[1], v[0] / v[1]
    cpu = v[2] + v[3]
    per_core = v[0] / cpu if cpu > 0 else float("nan")
    cells = ["", ""]
    ld, lv = lat.get((s, "direct")), lat.get((s, "via"))
    if ld and lv:
        cells = [f"{lv['reply_ms_p50'] - ld['reply_ms_p50']:.2f} / {lv['reply_ms_p99'] - ld['reply_ms_p99']:.2f}",
                 f"{lv['delivery_ms_p50'] - ld['delivery_ms_p50']:.2f} / {lv['delivery_ms_p99'] - ld['delivery_ms_p99']:.2f}"]
    row = f"| {names[s]} | {v[0]:,} | {dr:,.0f} | {vr:,.0f} | {vr / dr:.0%} |"
    if has_pf:
        row += f" {pf[0] / pf[1]:,.0f} |" if pf else " |"
    row += f" {cpu:.2f} ({v[2]:.2f} + {v[3]:.2f}) | {per_core:,.0f} | {cells[0]} | {cells[1]} |"
    print(row)
    notes.append((s, dr, vr, per_core, pf[0] / pf[1] if pf else None))
print("\nTargets: ≥ 1,000 msg/s per core of mxguard CPU with AV scanning on; ≥ 50% of the direct rate.\n")
for s, dr, vr, pc, pfr in notes:
    ok1 = "met" if pc >= 1000 else "**not met**"
    ok2 = "met" if vr / dr >= 0.5 else "**not met**"
    extra = f"; {vr / pfr:.1f}x Postfix's relay rate" if pfr else ""
    print(f"- {names[s]}: {pc:,.0f} msg/s per core ({ok1}); {vr / dr:.0%} of direct ({ok2}){extra}.")
if any(p == "milter" for _, p in tp):
    print("\n## As a Postfix milter\n")
    print("smtp-source → Postfix (private instance, same settings) → smtp-sink, without and with "
          "`smtpd_milters` pointing at mxguard (`[milter] listen`; every message scanned at end of "
          "data, the verdict applied by Postfix). Same runs, same machine.\n")
    print("| scenario | messages | Postfix alone msg/s | Postfix + mxguard milter msg/s | ratio | mxguard CPU s (user + sys) | msg/s per core of mxguard |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in order:
        pf, m = best(s, "postfix"), best(s, "milter")
        if not (pf and m):
            continue
        cpu = m[2] + m[3]
        pc = m[0] / cpu if cpu > 0 else float("nan")
        print(f"| {names[s]} | {m[0]:,} | {pf[0] / pf[1]:,.0f} | {m[0] / m[1]:,.0f} | "
              f"{(m[0] / m[1]) / (pf[0] / pf[1]):.0%} | {cpu:.2f} ({m[2]:.2f} + {m[3]:.2f}) | {pc:,.0f} |")
print("\n## Latency, raw (sequential messages on one session, no other load)\n")
print("| scenario | path | messages | reply p50 | reply p99 | delivery p50 | delivery p99 |")
print("|---|---|---:|---:|---:|---:|---:|")
for s in order:
    for p in ("direct", "via"):
        l = lat.get((s, p))
        if l:
            print(f"| {names[s]} | {'probe sink directly' if p == 'direct' else 'via mxguard'} | {l['n']:,} | "
                  f"{l['reply_ms_p50']:.2f} | {l['reply_ms_p99']:.2f} | {l['delivery_ms_p50']:.2f} | {l['delivery_ms_p99']:.2f} |")
print("\n## Every throughput run\n")
print("| scenario | path | messages | wall s | msg/s | mxguard CPU user s | mxguard CPU sys s |")
print("|---|---|---:|---:|---:|---:|---:|")
for s in order:
    for p in ("direct", "via", "postfix", "milter"):
        for n, w, u, y in tp.get((s, p), []):
            cpu = f"{u:.2f} | {y:.2f}" if p in ("via", "milter") else " | "
            print(f"| {names[s]} | {p} | {n:,} | {w:.2f} | {n / w:,.0f} | {cpu} |")
if "corpus" in order:
    print(f"\nCorpus sample: {int(cfiles):,} messages ({int(cspam):,} spam), {int(cbytes) / 1e6:.1f} MB, "
          f"every k-th file of the sorted corpus, mbox `From ` line removed; each sent {crep} times per run.")
if has_pf:
    print(f"\nPostfix {pfver}: a private instance with Debian's defaults, relaying example.com to the same smtp-sink; "
          "it writes each message to its queue with fsync before the 250, like mxguard, but does not scan.")
print("\nHow it is measured: see the `bench/smtp.sh` section of bench/README.md.")
EOF
cat "$OUT"
