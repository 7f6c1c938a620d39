#!/usr/bin/env bash
# Throughput and peak memory of pcapdiag on a large synthetic capture, against two
# references: the floor (examples/count.rs: pcap-parser's streaming reader counting
# records, nothing else) and, if installed, tshark computing its tcp.analysis flags.
#
# Usage: benches/bench.sh [--packets N] [--pair]   (from any directory; default N = 1000000)
#   --pair: a client-side and an RS-side capture of N packets each (examples/gen --pair),
#   measured as a pair: (a) counts both files one after the other, (b) analyses the pair
#   (both read in parallel, then paired), (c) runs tshark on each file in turn.
#
# Builds the release binary and the examples gen and count, generates the capture once
# (cached as target/bench/short-<N>.pcap: short connections, 3 % anomalous attempts,
# seed 1), then runs count and pcapdiag 3 times each (best of 3) and tshark once. Peak RSS
# comes from /usr/bin/time -v (Debian package `time`).
set -euo pipefail

packets=1000000
pair=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --pair)
            pair=1
            shift
            ;;
        --packets)
            [[ $# -ge 2 && "$2" =~ ^[0-9]+$ ]] || { echo "--packets needs a number" >&2; exit 2; }
            packets=$2
            shift 2
            ;;
        -h | --help)
            sed -n '2,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
            exit 0
            ;;
        *)
            echo "unknown argument: $1 (usage: bench.sh [--packets N])" >&2
            exit 2
            ;;
    esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
BENCH_DIR="$TARGET/bench"
mkdir -p "$BENCH_DIR"

TIME=/usr/bin/time
if [[ ! -x $TIME ]]; then
    echo "note: $TIME not found, peak RSS not measured (Debian/Ubuntu: apt-get install time)" >&2
    TIME=""
fi

echo "building (release): pcapdiag, examples gen and count ..." >&2
cargo build --release --quiet --bin pcapdiag --example gen --example count
PCAPDIAG="$TARGET/release/pcapdiag"
GEN="$TARGET/release/examples/gen"
COUNT="$TARGET/release/examples/count"

if [[ -n $pair ]]; then
    prefix="$BENCH_DIR/pair-$packets"
    if [[ ! -s $prefix.rs.pcap ]]; then
        echo "generating $prefix.{client,rs}.pcap ..." >&2
        "$GEN" --pair --packets "$packets" --anomaly-rate 0.03 --seed 1 --offset-ms 12.5 --skew-ppm 20 -o "$prefix" >&2
    fi
    files=("$prefix.client.pcap" "$prefix.rs.pcap")
else
    capture="$BENCH_DIR/short-$packets.pcap"
    if [[ ! -s $capture ]]; then
        echo "generating $capture ..." >&2
        "$GEN" --packets "$packets" --anomaly-rate 0.03 --seed 1 --clients 256 -o "$capture.tmp"
        mv -f "$capture.tmp" "$capture"
    fi
    files=("$capture")
fi
capture="${files[*]}"
bytes=0 records=0
for f in "${files[@]}"; do
    bytes=$((bytes + $(stat -c %s "$f")))
    records=$((records + $("$COUNT" "$f" | awk '{print $2}')))
done

now() { date +%s.%N; }

# measure NAME CMD...: runs CMD (stdout to /dev/null) once; sets LAST_S and LAST_RSS_KB.
measure() {
    local rss_file start end
    rss_file=$(mktemp)
    start=$(now)
    if [[ -n $TIME ]]; then
        "$TIME" -v -o "$rss_file" "$@" >/dev/null
    else
        "$@" >/dev/null
    fi
    end=$(now)
    LAST_S=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    LAST_RSS_KB=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$rss_file")
    LAST_RSS_KB=${LAST_RSS_KB:-0}
    rm -f "$rss_file"
}

# best_of N NAME CMD...: the fastest of N runs; sets BEST_S and BEST_RSS_KB (the peak RSS
# of that run).
best_of() {
    local n=$1 i
    shift
    BEST_S="" BEST_RSS_KB=0
    for ((i = 1; i <= n; i++)); do
        measure "$@"
        echo "  run $i: ${LAST_S} s, peak RSS $((LAST_RSS_KB / 1024)) MiB" >&2
        if [[ -z $BEST_S ]] || awk -v a="$LAST_S" -v b="$BEST_S" 'BEGIN { exit !(a < b) }'; then
            BEST_S=$LAST_S BEST_RSS_KB=$LAST_RSS_KB
        fi
    done
}

# The floor: every file read and counted, one after the other.
echo "(a) count: $COUNT on ${capture}" >&2
best_of 3 bash -c 'for f in "$@"; do "'"$COUNT"'" "$f"; done' _ "${files[@]}"
a_s=$BEST_S a_rss=$BEST_RSS_KB

echo "(b) pcapdiag: $PCAPDIAG analyze --json ${capture} > /dev/null" >&2
best_of 3 "$PCAPDIAG" analyze --quiet --json "${files[@]}"
b_s=$BEST_S b_rss=$BEST_RSS_KB

c_s="" c_rss=0
if command -v tshark >/dev/null; then
    echo "(c) tshark: tshark -r $capture -Y tcp.analysis.flags -T fields -e frame.number > /dev/null (once)" >&2
    conf=$(mktemp -d)
    measure env WIRESHARK_CONFIG_DIR="$conf" bash -c \
        'for f in "$@"; do tshark -n -r "$f" -Y tcp.analysis.flags -T fields -e frame.number; done' _ "${files[@]}"
    rm -rf "$conf"
    c_s=$LAST_S c_rss=$LAST_RSS_KB
    echo "  run 1: ${c_s} s, peak RSS $((c_rss / 1024)) MiB" >&2
else
    echo "(c) tshark not installed: skipped" >&2
fi

echo
echo "capture: $capture"
echo "machine: $(nproc) CPUs, $(lscpu 2>/dev/null | awk -F': +' '/^Model name/ { print $2; exit }' || true)"
row() { # name seconds rss_kb runs
    awk -v name="$1" -v s="$2" -v rss="$3" -v p="$records" -v b="$bytes" -v runs="$4" 'BEGIN {
        printf "%-34s %10d %8.1f %9.3f %12.0f %9.1f %9.1f   %s\n",
            name, p, b / 1e6, s, (s > 0 ? p / s : 0), (s > 0 ? b / 1e6 / s : 0), rss / 1024, runs }'
}
printf "%-34s %10s %8s %9s %12s %9s %9s   %s\n" \
    "" "packets" "MB" "seconds" "packets/s" "MB/s" "RSS MiB" "runs"
row "(a) count (floor)" "$a_s" "$a_rss" "best of 3"
row "(b) pcapdiag analyze --json" "$b_s" "$b_rss" "best of 3"
if [[ -n $c_s ]]; then
    row "(c) tshark -Y tcp.analysis.flags" "$c_s" "$c_rss" "1"
fi
echo
awk -v a="$a_s" -v b="$b_s" 'BEGIN { printf "b/a = %.1f  (pcapdiag time over the floor)\n", (a > 0 ? b / a : 0) }'
if [[ -n $c_s ]]; then
    awk -v b="$b_s" -v c="$c_s" 'BEGIN { printf "c/b = %.1f  (tshark time over pcapdiag)\n", (b > 0 ? c / b : 0) }'
fi
