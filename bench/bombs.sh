#!/usr/bin/env bash
# Time and peak memory of mxguard and clamscan on each decompression / MIME
# bomb in the decoder's golden corpus (crates/decode/tests/corpus/bombs), with
# the built-in signatures only (EICAR) for mxguard and an EICAR hash database
# for clamscan.  Both run with their default limits.
#
#   bench/bombs.sh [--no-build]
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(dirname "$BENCH")
BUILD=1
[ "${1:-}" = "--no-build" ] && BUILD=0
[ -x /usr/bin/time ] || { echo "bombs.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
if [ $BUILD = 1 ]; then
    (cd "$ROOT" && cargo build --release -p mxguard) >/dev/null 2>&1
fi
MXG=$ROOT/target/release/mxguard
W=$BENCH/work/bombs
mkdir -p "$W"
printf '44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n' > "$W/eicar.hdb"

# "seconds max-RSS-MiB" of a command
measure() {
    /usr/bin/time -f '%e %M' -o "$W/time.txt" "$@" > "$W/out.txt" 2>&1 || true
    tail -n1 "$W/time.txt" | awk '{printf "%.2f %.0f\n", $1, $2/1024}'
}

OUT=$BENCH/results/bombs-latest.md
{
    echo "# Bombs: time and peak memory ($(date +%Y-%m-%d))"
    echo
    echo "Each file from \`crates/decode/tests/corpus/bombs\`, default limits, one run."
    echo
    echo "| file | size | mxguard s | mxguard MiB | mxguard reports | clamscan s | clamscan MiB | clamscan reports |"
    echo "|---|---:|---:|---:|---|---:|---:|---|"
    for f in "$ROOT"/crates/decode/tests/corpus/bombs/*; do
        case "$f" in *.expect|*.py) continue ;; esac
        name=$(basename "$f")
        size=$(stat -c %s "$f")
        read -r ms mm < <(measure "$MXG" scan --no-cache "$f")
        mr=$(sed -n 's/^.*: \(.*\) FOUND$/\1/p; s/^.*: OK$/OK/p' "$W/out.txt" | sort -u | paste -sd, -)
        read -r cs cm < <(measure clamscan --no-summary -d "$W/eicar.hdb" --alert-exceeds-max=yes --alert-encrypted=yes "$f")
        cr=$(sed -n 's/^.*: \(.*\) FOUND$/\1/p; s/^.*: OK$/OK/p' "$W/out.txt" | sort -u | paste -sd, -)
        echo "| $name | $size | $ms | $mm | $mr | $cs | $cm | $cr |"
    done
} > "$OUT"
cat "$OUT"
