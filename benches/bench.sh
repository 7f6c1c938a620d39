#!/usr/bin/env bash
# benches/bench.sh: the project's benchmark. Time and peak memory of pcapdiag on large
# generated captures, beside the floor (only reading the packets) and tshark.
#
# Usage: benches/bench.sh [--single | --scale | --set | --flood [M] | --lab [C]] [--packets N]
#                         [--runs R] [--keep | --no-keep]
#
# Modes (at most one; run from any directory):
#   (default)    pair mode. A client-side and an RS-side capture of about N packets each
#                (examples/gen --pair: through DNAT and SNAT, 3 % anomalous attempts,
#                seed 1, RS clock 12.5 ms off with 20 ppm skew). Measured side by side:
#                  (a)  the floor: both files read and counted one after the other, by
#                       examples/count (pcap-parser's reader) and by capinfos -c (if
#                       installed); the faster of the two is the floor. Best of 3 each.
#                  (b)  pcapdiag analyze --quiet CLIENT RS > /dev/null: the terminal
#                       report, the main job. Best of 3.
#                  (b') pcapdiag analyze --quiet --json CLIENT RS > /dev/null. Best of 3.
#                  (c)  tshark -n -r FILE -Y tcp.analysis.flags -T fields -e frame.number
#                       on each file in turn, once, with an empty WIRESHARK_CONFIG_DIR
#                       (skipped when tshark is not installed).
#                Prints packets, MB, seconds, packets/s, MB/s, peak RSS, and b/a and c/b.
#   --single     the same on one capture of about N packets (examples/gen, 256 clients).
#   --scale      linearity: pairs of N/16, N/4 and N packets per side (1x, 4x, 16x). For
#                each: the floor, and (b) best of 3 with its ns per packet and peak RSS.
#   --set        a capture set against the pair: the pair of N packets per side, then 8
#                captures of the same kind holding as many packets in all (4 pairs of
#                N/4 packets per side, seeds 1-4) given to one pcapdiag analyze in mixed
#                order (RS and client files interleaved), so that what each saw is worked
#                out from the traffic. For each: the floor, (b) best of 3, ns per packet,
#                peak RSS, and the set's cost per packet over the pair's.
#   --flood [M]  a SYN flood: M SYNs from distinct 4-tuples, none answered
#                (examples/synflood; M defaults to 2000000). Time and peak RSS of
#                pcapdiag analyze --quiet FILE with default options, with
#                --max-connections 100000 (live state), and with --max-records 100000
#                (records). Best of 3 each.
#   --lab [C]    a real connection mix, made by the namespace lab (lab/lab.sh mix): C short
#                HTTP/1.0 connections (default 32000) through DNAT+SNAT on real kernels,
#                14 packets each (request, a head and a 2000-byte body in 3 segments, 1 %
#                of first SYNs dropped in the NAT box: 1 s retransmits), full packets
#                captured by tcpdump on both sides: about 2 x 105 MB, 450 k packets a side.
#                Measured side by side, the files in the page cache:
#                  (a) cat CLIENT RS > /dev/null: the byte floor. Best of R.
#                  (b) pcapdiag analyze --quiet CLIENT RS > /dev/null. Best of R.
#                  (a1), (b1) the same on the client capture alone (one capture: its
#                      pass takes both cores). Best of R.
#                  (c) tshark -n -r FILE -Y tcp.analysis.flags -T fields -e frame.number
#                      on each file in turn, once (as in pair mode).
#                Prints, per command: best and median seconds, ns per packet (both files'
#                packets), ns per connection (the lab client's requests), the ratio to cat
#                and tshark's ratio to pcapdiag, median CPU seconds (user + system) and
#                peak RSS (also per connection). The captures are cached as
#                mix-C.{client,rs}.pcap (and mix-C.truth.tsv, the client's own record of
#                each request). Making them needs root (network namespaces; a few
#                minutes, every loop bounded in count and time): run bench.sh --lab as
#                root once; without root and without the cached files it says so and stops.
#
# Options:
#   --packets N  packets per side (default 5000000; for --scale, the largest size; not
#                for --lab, whose size is its number of connections)
#   --runs R     runs of (a) and (b) in --lab mode, the best and the median reported
#                (default 3)
#   --pair       pair mode (the default; accepted for old command lines)
#   --keep       keep the generated captures in target/bench/ for later runs (the default)
#   --no-keep    delete the captures this run generated when it ends
#   -h, --help   this text
#
# First builds, in release mode, pcapdiag and the examples gen, count and synflood.
# Captures are generated once and cached in target/bench/ (CARGO_TARGET_DIR is honoured)
# under names that hold their size: pair-N.{client,rs}.pcap, short-N.pcap, synflood-M.pcap.
# They are written under a .tmp.PID name and renamed when complete, so an interrupted run
# never leaves a partial capture that a later run would reuse. Free disk space is checked
# before generating (a 5 M pair takes about 4 GB). Times are wall clock, with the files in
# the page cache (each file is read once before timing). Peak RSS comes from
# /usr/bin/time -v (Debian package `time`); without it RSS is not measured. Progress goes
# to standard error, the tables to standard output.
set -euo pipefail
export LC_ALL=C

# --- arguments -----------------------------------------------------------------------

MODE=pair
PACKETS=5000000
PACKETS_GIVEN=""
FLOOD=2000000
LAB_CONNS=32000
RUNS=3
KEEP=1

usage() { awk 'NR > 1 { if (!/^#/) exit; sub(/^# ?/, ""); print }' "${BASH_SOURCE[0]}"; }
log() { printf '%s\n' "$*" >&2; }
die() { log "bench.sh: $*"; exit 1; }
usage_error() { log "bench.sh: $*"; log "usage: benches/bench.sh [--single | --scale | --set | --flood [M] | --lab [C]] [--packets N] [--runs R] [--keep | --no-keep] (--help for more)"; exit 2; }

set_mode() {
    [[ $MODE == pair || $MODE == "$1" ]] || usage_error "--$MODE and --$1 cannot be combined"
    MODE=$1
}

is_count() { [[ $1 =~ ^[0-9]+$ ]] && (( ${#1} <= 12 )); }

parse_args() {
    while (( $# > 0 )); do
        case "$1" in
            --single | --scale | --set)
                set_mode "${1#--}"
                shift ;;
            --flood)
                set_mode flood
                shift
                if (( $# > 0 )) && [[ $1 != -* ]]; then
                    is_count "$1" || usage_error "--flood takes a number of SYNs, got '$1'"
                    FLOOD=$((10#$1))
                    shift
                fi ;;
            --lab)
                set_mode lab
                shift
                if (( $# > 0 )) && [[ $1 != -* ]]; then
                    is_count "$1" || usage_error "--lab takes a number of connections, got '$1'"
                    LAB_CONNS=$((10#$1))
                    shift
                fi ;;
            --runs)
                if (( $# < 2 )) || ! is_count "$2" || (( 10#$2 < 1 )); then usage_error "--runs needs a number of at least 1"; fi
                RUNS=$((10#$2))
                shift 2 ;;
            --packets)
                if (( $# < 2 )) || ! is_count "$2"; then usage_error "--packets needs a number"; fi
                PACKETS=$((10#$2)) PACKETS_GIVEN=1
                shift 2 ;;
            --pair) shift ;;  # the default; accepted for old command lines
            --keep) KEEP=1; shift ;;
            --no-keep) KEEP=""; shift ;;
            -h | --help) usage; exit 0 ;;
            *) usage_error "unknown argument: $1" ;;
        esac
    done
    case $MODE in
        flood)
            [[ -z $PACKETS_GIVEN ]] || usage_error "--flood takes its size as --flood M, not --packets"
            (( FLOOD >= 1 )) || usage_error "--flood needs at least 1 SYN" ;;
        lab)
            [[ -z $PACKETS_GIVEN ]] || usage_error "--lab takes its size as --lab C (connections), not --packets"
            (( LAB_CONNS >= 100 && LAB_CONNS <= 200000 )) || usage_error "--lab needs 100 to 200000 connections" ;;
        scale) (( PACKETS >= 16000 )) || usage_error "--scale needs --packets of at least 16000 (N/16 >= 1000)" ;;
        *) (( PACKETS >= 1000 )) || usage_error "--packets needs at least 1000" ;;
    esac
}

# --- setup ---------------------------------------------------------------------------

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
[[ $TARGET == /* ]] || TARGET=$REPO/$TARGET  # cargo runs in REPO
BENCH_DIR=$TARGET/bench
PCAPDIAG=$TARGET/release/pcapdiag
GEN=$TARGET/release/examples/gen
COUNT=$TARGET/release/examples/count
SYNFLOOD=$TARGET/release/examples/synflood
TIME_BIN=/usr/bin/time
TSHARK=$(command -v tshark || true)
CAPINFOS=$(command -v capinfos || true)
TSHARK_NOTE=""  # why (c) is missing, if it is
TMP_PATHS=()  # removed on exit
GENERATED=()  # captures made by this run (removed on exit with --no-keep)

cleanup() {
    local p
    for p in "${TMP_PATHS[@]}"; do rm -rf -- "$p"; done
    if [[ -z $KEEP ]]; then
        for p in "${GENERATED[@]}"; do rm -f -- "$p"; done
    fi
}

setup() {
    [[ -n ${EPOCHREALTIME:-} ]] || die "needs bash >= 5 (EPOCHREALTIME)"
    if [[ ! -x $TIME_BIN ]]; then
        log "note: $TIME_BIN not found: peak RSS is not measured (Debian: apt-get install time)"
        TIME_BIN=""
    fi
    log "building (release): pcapdiag, examples gen, count and synflood ..."
    (cd "$REPO" && cargo build --release --quiet --bin pcapdiag --example gen --example count --example synflood) \
        || die "cargo build failed"
    mkdir -p "$BENCH_DIR"
    remove_stale_tmp
    RSS_FILE=$(mktemp)
    TMP_PATHS+=("$RSS_FILE")
}

# Temporary captures of runs that were killed: NAME.tmp.PID.*, with PID no longer running.
remove_stale_tmp() {
    local f pid
    for f in "$BENCH_DIR"/*.tmp.*; do
        [[ -e $f ]] || continue
        pid=${f##*.tmp.}
        pid=${pid%%.*}
        if [[ $pid =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
            log "removing $f (left by an interrupted run)"
            rm -rf -- "$f"
        fi
    done
}

# --- generating captures (cached, atomic) --------------------------------------------

# ensure_space BYTES WHAT: stop unless BYTES plus 1 GiB are free in BENCH_DIR.
ensure_space() {
    local need=$1 what=$2 free
    free=$(($(df -Pk "$BENCH_DIR" | awk 'NR == 2 { print $4 }') * 1024))
    if (( free < need + (1 << 30) )); then
        die "$(awk -v n="$need" -v f="$free" -v d="$BENCH_DIR" -v w="$what" 'BEGIN {
            printf "not enough disk space for %s: needs about %.1f GB (plus 1 GiB to spare), %.1f GB free in %s", w, n / 1e9, f / 1e9, d }')"
    fi
}

# gen_pair N [SEED]: sets PAIR_CLIENT and PAIR_RS, generating them unless cached (seed 1
# unless given; another seed's files are named pair-N-sSEED).
gen_pair() {
    local n=$1 seed=${2:-1} name part
    name=pair-$n
    (( seed == 1 )) || name+=-s$seed
    local prefix=$BENCH_DIR/$name tmp=$BENCH_DIR/$name.tmp.$$
    PAIR_CLIENT=$prefix.client.pcap PAIR_RS=$prefix.rs.pcap
    [[ -s $PAIR_CLIENT && -s $PAIR_RS ]] && return
    ensure_space $((n * 900)) "a pair of $n packets per side"  # ~380 B a packet a side, 20 of truth
    log "generating $prefix.{client,rs}.pcap ($n packets per side) ..."
    TMP_PATHS+=("$tmp.client.pcap" "$tmp.rs.pcap" "$tmp.truth.tsv" "$tmp.nat.tsv")
    "$GEN" --pair --packets "$n" --anomaly-rate 0.03 --seed "$seed" --offset-ms 12.5 --skew-ppm 20 -o "$tmp" >&2
    # The RS side last: both captures exist only once both are complete.
    for part in truth.tsv nat.tsv client.pcap rs.pcap; do
        mv -f -- "$tmp.$part" "$prefix.$part"
        GENERATED+=("$prefix.$part")
    done
}

# gen_single N: sets SINGLE, generating it unless cached.
gen_single() {
    local n=$1
    SINGLE=$BENCH_DIR/short-$n.pcap
    [[ -s $SINGLE ]] && return
    gen_atomic "$SINGLE" $((n * 470)) "$GEN" --packets "$n" --anomaly-rate 0.03 --seed 1 --clients 256 -o
}

# gen_flood M: sets FLOOD_FILE, generating it unless cached.
gen_flood() {
    local m=$1
    FLOOD_FILE=$BENCH_DIR/synflood-$m.pcap
    [[ -s $FLOOD_FILE ]] && return
    gen_atomic "$FLOOD_FILE" $((m * 100)) "$SYNFLOOD" "$m"
}

# gen_lab C: sets LAB_CLIENT, LAB_RS and LAB_TRUTH, making them with the namespace lab
# (lab/lab.sh mix, C connections) unless cached. Needs root; the lab keeps every address
# inside its own namespaces and deletes them when it ends.
gen_lab() {
    local n=$1 prefix=$BENCH_DIR/mix-$1 tmp=$BENCH_DIR/mix-$1.tmp.$$ part
    LAB_CLIENT=$prefix.client.pcap LAB_RS=$prefix.rs.pcap LAB_TRUTH=$prefix.truth.tsv
    [[ -s $LAB_CLIENT && -s $LAB_RS ]] && return
    if (( EUID != 0 )); then
        die "$(printf '%s\n' "no cached lab captures $prefix.{client,rs}.pcap, and making them needs root" \
            "(network namespaces). Run once as root: sudo CARGO_TARGET_DIR=$TARGET $REPO/benches/bench.sh --lab $n" \
            "(needs ip, iptables, nft, conntrack, tcpdump, dumpcap, python3; a few minutes)")"
    fi
    ensure_space $((n * 7000)) "a lab capture pair of $n connections"  # ~3.3 KB a connection a side
    log "making $prefix.{client,rs}.pcap with the lab (lab/lab.sh mix, $n connections) ..."
    TMP_PATHS+=("$tmp")
    mkdir -p "$tmp"
    # Bounded: the lab's client stops after n requests or LAB_MIX_SECONDS, whichever first.
    LAB_OUT=$tmp LAB_MIX_COUNT=$n LAB_MIX_SECONDS=$((n / 100 + 120)) "$REPO/lab/lab.sh" mix >&2 \
        || die "lab/lab.sh mix failed"
    # The RS side last: both captures exist only once both are complete.
    for part in truth.tsv client.pcap rs.pcap; do
        mv -f -- "$tmp/mix.$part" "$prefix.$part"
        GENERATED+=("$prefix.$part")
    done
}

# gen_atomic FILE BYTES CMD...: runs CMD TMPFILE, then renames TMPFILE to FILE.
gen_atomic() {
    local file=$1 bytes=$2 tmp
    shift 2
    tmp=${file%.pcap}.tmp.$$.pcap
    ensure_space "$bytes" "${file##*/}"
    log "generating $file ..."
    TMP_PATHS+=("$tmp")
    "$@" "$tmp" >&2
    mv -f -- "$tmp" "$file"
    GENERATED+=("$file")
}

# capture_stats FILES...: sets NPKT (packets in all files) and NBYTES (their size). Reading
# every file once also checks it and brings it into the page cache.
capture_stats() {
    local f out
    NPKT=0 NBYTES=0
    for f in "$@"; do
        out=$("$COUNT" "$f") || die "$f is not a complete capture; delete it to regenerate it"
        NPKT=$((NPKT + $(awk '{ print $2 }' <<<"$out")))
        NBYTES=$((NBYTES + $(stat -c %s "$f")))
    done
}

# --- measuring -----------------------------------------------------------------------

declare -A US RSS  # per measurement key: best wall time (µs), peak RSS (KiB, "" if unknown)
declare -A RUNS_US RUNS_CPU  # per key: every run's wall time and CPU time (µs), space-separated

# A command line that runs CMD... FILE for each FILE in turn (one process to time):
#   bash -c "$EACH" _ CMD... -- FILES...
# shellcheck disable=SC2016  # expanded by the inner bash
EACH='cmd=(); while [[ $1 != -- ]]; do cmd+=("$1"); shift; done; shift
for f in "$@"; do "${cmd[@]}" "$f" || exit; done'

# measure CMD...: runs CMD once, standard output to /dev/null; sets LAST_US (wall time,
# µs) and LAST_RSS (peak RSS, KiB); returns CMD's exit status.
measure() {
    local t0 t1 rc=0
    t0=${EPOCHREALTIME//[.,]/}
    if [[ -n $TIME_BIN ]]; then
        "$TIME_BIN" -v -o "$RSS_FILE" "$@" >/dev/null || rc=$?
        t1=${EPOCHREALTIME//[.,]/}
        LAST_RSS=$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$RSS_FILE")
        LAST_CPU=$(awk -F': ' '/(User|System) time \(seconds\)/ { s += $2 } END { printf "%.0f", s * 1e6 }' "$RSS_FILE")
    else
        "$@" >/dev/null || rc=$?
        t1=${EPOCHREALTIME//[.,]/}
        LAST_RSS="" LAST_CPU=""
    fi
    LAST_US=$((t1 - t0))
    return "$rc"
}

# record KEY: folds the last measurement into KEY (the fastest time, the highest RSS).
record() {
    local key=$1
    if [[ -z ${US[$key]:-} ]] || (( LAST_US < US[$key] )); then US[$key]=$LAST_US; fi
    if [[ -n $LAST_RSS ]] && (( LAST_RSS > ${RSS[$key]:-0} )); then RSS[$key]=$LAST_RSS; fi
    RUNS_US[$key]+="$LAST_US "
    RUNS_CPU[$key]+="${LAST_CPU:-} "
    [[ -n ${RSS[$key]:-} ]] || RSS[$key]=""
    if [[ -n $LAST_RSS ]]; then
        log "    $(fmt_s "$LAST_US") s, peak RSS $(fmt_mib "$LAST_RSS") MiB"
    else
        log "    $(fmt_s "$LAST_US") s"
    fi
}

# best_of RUNS KEY CMD...: the fastest of RUNS runs of CMD; a failed run stops the bench.
best_of() {
    local runs=$1 key=$2 i rc
    shift 2
    for ((i = 1; i <= runs; i++)); do
        rc=0
        measure "$@" || rc=$?
        (( rc == 0 )) || die "exit status $rc from: $*"
        record "$key"
    done
}

# measure_floor KEY FILES...: count, then capinfos -c, on the files one after the other,
# best of 3 each; KEY gets the faster, FLOOR_TOOL[KEY] its name.
declare -A FLOOR_TOOL
measure_floor() {
    local key=$1
    shift
    log "(a) floor: $COUNT on each file, best of 3"
    best_of 3 "$key.count" bash -c "$EACH" _ "$COUNT" -- "$@"
    FLOOR_TOOL[$key]=count
    if [[ -n $CAPINFOS ]]; then
        log "(a) floor: capinfos -c on each file, best of 3"
        best_of 3 "$key.capinfos" bash -c "$EACH" _ "$CAPINFOS" -c -- "$@"
        (( US[$key.capinfos] < US[$key.count] )) && FLOOR_TOOL[$key]=capinfos
    else
        log "    capinfos not installed: the floor is count alone"
    fi
    US[$key]=${US[$key.${FLOOR_TOOL[$key]}]} RSS[$key]=${RSS[$key.${FLOOR_TOOL[$key]}]}
}

# measure_tshark KEY FILES...: tshark's analysis flags on each file in turn, once. Leaves
# KEY unset (and says why) when tshark is absent or fails.
measure_tshark() {
    local key=$1 conf rc=0
    shift
    if [[ -z $TSHARK ]]; then
        TSHARK_NOTE="not installed, skipped (Debian: apt-get install tshark)"
        log "(c) tshark: $TSHARK_NOTE"
        return
    fi
    log "(c) tshark -n -r FILE -Y tcp.analysis.flags -T fields -e frame.number, each file, once"
    conf=$(mktemp -d)
    TMP_PATHS+=("$conf")
    measure env WIRESHARK_CONFIG_DIR="$conf" bash -c "$EACH" _ \
        "$TSHARK" -n -Y tcp.analysis.flags -T fields -e frame.number -r -- "$@" || rc=$?
    if (( rc != 0 )); then
        TSHARK_NOTE="exited with status $rc, not reported"
        log "(c) tshark: $TSHARK_NOTE"
        return
    fi
    record "$key"
}

# --- printing ------------------------------------------------------------------------

# median VALUES...: the median (the mean of the two middle ones for an even count), or -.
median() {
    (( $# > 0 )) || { echo -; return; }
    printf '%s\n' "$@" | sort -n | awk '{ v[NR] = $1 } END { printf "%.0f", NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

fmt_s() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }
fmt_mib() { if [[ -n $1 ]]; then awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; else echo -; fi; }
# ratio US_A US_B: A / B, one decimal.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", a / b; else printf "-" }'; }

machine_info() {
    local cpu mem
    cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
    [[ -n $cpu ]] || cpu=$(lscpu 2>/dev/null | awk -F': +' '/^Model name/ { print $2; exit }' || true)
    mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
    echo "machine:  $(nproc) CPUs (nproc), ${cpu:-CPU model unknown}, ${mem:-? GiB} RAM, load average $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo '?')"
    echo "date:     $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "pcapdiag: $(git -C "$REPO" describe --always --dirty 2>/dev/null || echo 'not a git checkout'), $PCAPDIAG"
    [[ -n $TIME_BIN ]] || echo "note: /usr/bin/time not installed: peak RSS not measured (-)"
}

TABLE_FMT='%-44s %10s %9s %9s %12s %9s %8s %9s  %s\n'
table_header() {
    # shellcheck disable=SC2059
    printf "$TABLE_FMT" "" packets MB seconds packets/s MB/s "RSS MiB" "RSS B/pkt" runs
}

# row LABEL PACKETS BYTES KEY RUNS: one line of the table for measurement KEY.
row() {
    awk -v fmt="$TABLE_FMT" -v name="$1" -v p="$2" -v b="$3" -v us="${US[$4]}" -v rss="${RSS[$4]}" -v runs="$5" 'BEGIN {
        s = us / 1e6
        printf fmt, name, p, sprintf("%.1f", b / 1e6), sprintf("%.3f", s),
            (s > 0 ? sprintf("%.0f", p / s) : "-"), (s > 0 ? sprintf("%.1f", b / 1e6 / s) : "-"),
            (rss == "" ? "-" : sprintf("%.1f", rss / 1024)),
            (rss == "" || p == 0 ? "-" : sprintf("%.0f", rss * 1024 / p)), runs }'
}

# floor_rows KEY PACKETS BYTES: the floor's row, then the slower reader's.
declare -A READER=([count]="examples/count (pcap-parser)" [capinfos]="capinfos -c")
floor_rows() {
    local key=$1 p=$2 b=$3 tool=${FLOOR_TOOL[$1]} other
    row "(a) floor: ${READER[$tool]}" "$p" "$b" "$key" "best of 3"
    for other in count capinfos; do
        if [[ $other != "$tool" && -n ${US[$key.$other]:-} ]]; then
            row "    slower: ${READER[$other]}" "$p" "$b" "$key.$other" "best of 3"
        fi
    done
}

# --- modes ---------------------------------------------------------------------------

# compare TITLE FILES...: (a), (b), (b') and (c) on FILES, then the table.
compare() {
    local title=$1
    shift
    capture_stats "$@"
    measure_floor a "$@"
    log "(b) pcapdiag analyze --quiet ${*##*/} > /dev/null, best of 3"
    best_of 3 b "$PCAPDIAG" analyze --quiet "$@"
    log "(b') pcapdiag analyze --quiet --json ${*##*/} > /dev/null, best of 3"
    best_of 3 bj "$PCAPDIAG" analyze --quiet --json "$@"
    measure_tshark c "$@"

    echo
    echo "$title"
    machine_info
    echo
    table_header
    floor_rows a "$NPKT" "$NBYTES"
    row "(b) pcapdiag analyze (terminal report)" "$NPKT" "$NBYTES" b "best of 3"
    row "(b') pcapdiag analyze --json" "$NPKT" "$NBYTES" bj "best of 3"
    if [[ -n ${US[c]:-} ]]; then
        row "(c) tshark -Y tcp.analysis.flags" "$NPKT" "$NBYTES" c "once"
    else
        echo "(c) tshark: $TSHARK_NOTE"
    fi
    echo
    echo "b/a  = $(ratio "${US[b]}" "${US[a]}")  pcapdiag's terminal report over the floor"
    echo "b'/a = $(ratio "${US[bj]}" "${US[a]}")  pcapdiag --json over the floor"
    if [[ -n ${US[c]:-} ]]; then
        echo "c/b  = $(ratio "${US[c]}" "${US[b]}")  tshark over pcapdiag's terminal report"
    fi
}

mode_pair() {
    gen_pair "$PACKETS"
    compare "pair: ${PAIR_CLIENT##*/} + ${PAIR_RS##*/} (about $PACKETS packets per side)" "$PAIR_CLIENT" "$PAIR_RS"
}

mode_single() {
    gen_single "$PACKETS"
    compare "one capture: ${SINGLE##*/}" "$SINGLE"
}

mode_scale() {
    local i n labels=(1x 4x 16x) sizes=($((PACKETS / 16)) $((PACKETS / 4)) "$PACKETS") rows=""
    for i in 0 1 2; do
        n=${sizes[$i]}
        log "== ${labels[$i]}: pair of $n packets per side"
        gen_pair "$n"
        capture_stats "$PAIR_CLIENT" "$PAIR_RS"
        measure_floor "a$i" "$PAIR_CLIENT" "$PAIR_RS"
        log "(b) pcapdiag analyze --quiet ${PAIR_CLIENT##*/} ${PAIR_RS##*/}, best of 3"
        best_of 3 "b$i" "$PCAPDIAG" analyze --quiet "$PAIR_CLIENT" "$PAIR_RS"
        rows+="${labels[$i]} $NPKT $NBYTES ${US[a$i]} ${FLOOR_TOOL[a$i]} ${US[b$i]} ${RSS[b$i]:--}"$'\n'
    done

    echo
    echo "scale: pairs of ${sizes[0]}, ${sizes[1]} and ${sizes[2]} packets per side; (b) = pcapdiag analyze --quiet CLIENT RS, best of 3"
    machine_info
    echo
    printf '%s' "$rows" | scale_table
}

# scale_table: reads "LABEL PACKETS BYTES FLOOR_US FLOOR_TOOL B_US RSS_KIB" lines. The
# "added" columns are per packet added since the previous size, so fixed costs (start-up,
# the report's constant part) drop out: flat added ns/pkt means linear time.
scale_table() {
    awk '
    function row(l, p, mb, fs, fns, bs, bns, added_ns, ba, rss, rssp, added_b, tool) {
        printf "%-5s %10s %9s %9s %10s %9s %10s %12s %6s %9s %9s %11s  %s\n",
            l, p, mb, fs, fns, bs, bns, added_ns, ba, rss, rssp, added_b, tool
    }
    BEGIN {
        row("size", "packets", "MB", "floor s", "floor ns/p", "(b) s", "(b) ns/p", "added ns/p", "b/a",
            "RSS MiB", "RSS B/p", "added B/p", "floor by")
    }
    {
        l = $1; p = $2; b = $3; a = $4; tool = $5; us = $6; rss = $7
        added_ns = NR > 1 ? sprintf("%.1f", (us - pus) * 1e3 / (p - pp)) : "-"
        added_b = NR > 1 && rss != "-" ? sprintf("%.0f", (rss - prss) * 1024 / (p - pp)) : "-"
        row(l, p, sprintf("%.1f", b / 1e6), sprintf("%.3f", a / 1e6), sprintf("%.1f", a * 1e3 / p),
            sprintf("%.3f", us / 1e6), sprintf("%.1f", us * 1e3 / p), added_ns, sprintf("%.1f", us / a),
            (rss == "-" ? "-" : sprintf("%.1f", rss / 1024)), (rss == "-" ? "-" : sprintf("%.0f", rss * 1024 / p)),
            added_b, tool)
        if (NR == 1) { p0 = p; us0 = us; rss0 = rss }
        pp = p; pus = us; prss = rss
    }
    END {
        printf "\n1x -> 16x: packets x%.1f, (b) time x%.1f", pp / p0, pus / us0
        if (rss0 != "-") printf ", peak RSS x%.1f", prss / rss0
        printf "\nlinear in packets: (b) time x16 and a flat \"added ns/p\"; \"added B/p\" is the memory each further packet costs\n"
    }'
}

mode_set() {
    local quarter=$((PACKETS / 4)) seed files=() order=()
    gen_pair "$PACKETS"
    local pair=("$PAIR_CLIENT" "$PAIR_RS")
    for seed in 1 2 3 4; do
        gen_pair "$quarter" "$seed"
        files+=("$PAIR_CLIENT" "$PAIR_RS")
    done
    # Interleaved, RS side first: nothing in the order says which file is which.
    order=("${files[7]}" "${files[0]}" "${files[3]}" "${files[4]}" "${files[1]}" "${files[6]}" "${files[5]}" "${files[2]}")

    capture_stats "${pair[@]}"
    local pair_pkts=$NPKT pair_bytes=$NBYTES
    measure_floor a.pair "${pair[@]}"
    log "(b) pcapdiag analyze --quiet ${pair[*]##*/} > /dev/null, best of 3"
    best_of 3 b.pair "$PCAPDIAG" analyze --quiet "${pair[@]}"

    capture_stats "${order[@]}"
    local set_pkts=$NPKT set_bytes=$NBYTES
    measure_floor a.set "${order[@]}"
    log "(b) pcapdiag analyze --quiet (8 files) > /dev/null, best of 3"
    best_of 3 b.set "$PCAPDIAG" analyze --quiet "${order[@]}"

    echo
    echo "set: the pair of $PACKETS packets per side against 8 captures (4 pairs of $quarter per side, seeds 1-4, interleaved)"
    machine_info
    echo
    awk -v pp="$pair_pkts" -v pb="$pair_bytes" -v pa="${US[a.pair]}" -v pu="${US[b.pair]}" -v pr="${RSS[b.pair]:--}" \
        -v sp="$set_pkts" -v sb="$set_bytes" -v sa="${US[a.set]}" -v su="${US[b.set]}" -v sr="${RSS[b.set]:--}" '
    function row(l, p, b, a, u, r) {
        printf "%-24s %10d %9.1f %9.3f %9.3f %10.1f %6.1f %9s\n", l, p, b / 1e6, a / 1e6, u / 1e6, u * 1e3 / p, u / a,
            (r == "-" ? "-" : sprintf("%.1f", r / 1024))
    }
    BEGIN {
        printf "%-24s %10s %9s %9s %9s %10s %6s %9s\n", "", "packets", "MB", "floor s", "(b) s", "(b) ns/p", "b/a", "RSS MiB"
        row("pair (2 files)", pp, pb, pa, pu, pr)
        row("set (8 files)", sp, sb, sa, su, sr)
        printf "\nset / pair, ns per packet: %.2f (target: no more than 1)\n", (su / sp) / (pu / pp)
    }'
}

mode_flood() {
    gen_flood "$FLOOD"
    capture_stats "$FLOOD_FILE"
    measure_floor a "$FLOOD_FILE"
    log "(b) pcapdiag analyze --quiet ${FLOOD_FILE##*/} (default options), best of 3"
    best_of 3 f.default "$PCAPDIAG" analyze --quiet "$FLOOD_FILE"
    log "(b) pcapdiag analyze --quiet --max-connections 100000 ${FLOOD_FILE##*/}, best of 3"
    best_of 3 f.conn "$PCAPDIAG" analyze --quiet --max-connections 100000 "$FLOOD_FILE"
    log "(b) pcapdiag analyze --quiet --max-records 100000 ${FLOOD_FILE##*/}, best of 3"
    best_of 3 f.rec "$PCAPDIAG" analyze --quiet --max-records 100000 "$FLOOD_FILE"

    echo
    echo "SYN flood: ${FLOOD_FILE##*/} ($FLOOD SYNs from distinct 4-tuples, none answered)"
    machine_info
    echo
    table_header
    floor_rows a "$NPKT" "$NBYTES"
    row "(b) analyze, default options" "$NPKT" "$NBYTES" f.default "best of 3"
    row "(b) analyze --max-connections 100000" "$NPKT" "$NBYTES" f.conn "best of 3"
    row "(b) analyze --max-records 100000" "$NPKT" "$NBYTES" f.rec "best of 3"
}

# count_conns: sets NCONN, the lab client's requests (rows of its truth file), else the
# distinct (source, destination, ISN) SYNs of the client capture (tcpdump), else "".
count_conns() {
    NCONN=""
    if [[ -s $LAB_TRUTH ]]; then
        NCONN=$(($(wc -l <"$LAB_TRUTH") - 1))
    elif command -v tcpdump >/dev/null; then
        NCONN=$(tcpdump -nn -r "$LAB_CLIENT" 'tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn' 2>/dev/null \
            | awk '{ for (i = 1; i < NF; i++) if ($i == "seq") { print $3, $5, $(i + 1); break } }' | sort -u | wc -l)
    fi
}

mode_lab() {
    gen_lab "$LAB_CONNS"
    local files=("$LAB_CLIENT" "$LAB_RS") key
    capture_stats "${files[@]}"
    count_conns
    log "(a) cat ${files[*]##*/} > /dev/null, best of $RUNS"
    best_of "$RUNS" cat cat -- "${files[@]}"
    log "(b) pcapdiag analyze --quiet ${files[*]##*/} > /dev/null, best of $RUNS"
    best_of "$RUNS" b "$PCAPDIAG" analyze --quiet "${files[@]}"
    # The client capture alone: one capture, read on both cores (reading and decoding on
    # one, the connection table on the other).
    local pair_pkt=$NPKT pair_bytes=$NBYTES one_pkt
    capture_stats "$LAB_CLIENT"
    one_pkt=$NPKT
    NPKT=$pair_pkt NBYTES=$pair_bytes
    log "(a1) cat ${LAB_CLIENT##*/} > /dev/null, best of $RUNS"
    best_of "$RUNS" cat1 cat -- "$LAB_CLIENT"
    log "(b1) pcapdiag analyze --quiet ${LAB_CLIENT##*/} > /dev/null, best of $RUNS"
    best_of "$RUNS" b1 "$PCAPDIAG" analyze --quiet "$LAB_CLIENT"
    measure_tshark c "${files[@]}"

    echo
    echo "lab: ${LAB_CLIENT##*/} + ${LAB_RS##*/} (lab/lab.sh mix: short HTTP connections through DNAT+SNAT)"
    machine_info
    echo "size:     $NPKT packets, $(awk -v b="$NBYTES" 'BEGIN { printf "%.1f", b / 1e6 }') MB, ${NCONN:-?} connections (each seen on both sides)"
    echo
    local fmt='%-46s %8s %8s %9s %10s %7s %8s %9s %9s  %s\n'
    # shellcheck disable=SC2059
    printf "$fmt" "" "best s" "median s" "ns/packet" "ns/conn" "x cat" "CPU s" "RSS MiB" "RSS B/conn" runs
    local packets floor
    for key in cat b cat1 b1 c; do
        [[ -n ${US[$key]:-} ]] || continue
        packets=$NPKT floor=${US[cat]}
        [[ $key == *1 ]] && packets=$one_pkt floor=${US[cat1]}
        # shellcheck disable=SC2086  # the lists are space-separated numbers
        awk -v fmt="$fmt" -v key="$key" -v us="${US[$key]}" -v med="$(median ${RUNS_US[$key]})" \
            -v cpu="$(median ${RUNS_CPU[$key]})" -v rss="${RSS[$key]}" -v p="$packets" -v c="${NCONN:-0}" \
            -v cat_us="$floor" -v runs="$([[ $key == c ]] && echo once || echo "best of $RUNS")" 'BEGIN {
            name["cat"] = "(a) cat CLIENT RS > /dev/null (byte floor)"
            name["b"] = "(b) pcapdiag analyze --quiet CLIENT RS"
            name["cat1"] = "(a1) cat CLIENT > /dev/null"
            name["b1"] = "(b1) pcapdiag analyze --quiet CLIENT"
            name["c"] = "(c) tshark -Y tcp.analysis.flags, each file"
            printf fmt, name[key], sprintf("%.3f", us / 1e6), (med == "-" ? "-" : sprintf("%.3f", med / 1e6)),
                sprintf("%.0f", us * 1e3 / p), (c > 0 ? sprintf("%.0f", us * 1e3 / c) : "-"),
                sprintf("%.1f", us / cat_us), (cpu == "-" ? "-" : sprintf("%.3f", cpu / 1e6)),
                (rss == "" ? "-" : sprintf("%.1f", rss / 1024)),
                (rss == "" || c == 0 ? "-" : sprintf("%.0f", rss * 1024 / c)), runs }'
    done
    echo
    echo "b/cat = $(ratio "${US[b]}" "${US[cat]}")  pcapdiag over the byte floor (issue #16 target: <= 2)"
    echo "b1/a1 = $(ratio "${US[b1]}" "${US[cat1]}")  the client capture alone, on both cores, over its byte floor"
    if [[ -n ${US[c]:-} ]]; then
        echo "c/b   = $(ratio "${US[c]}" "${US[b]}")  tshark over pcapdiag (issue #16 target: >= 100)"
    else
        echo "(c) tshark: $TSHARK_NOTE"
    fi
    echo "peak RSS of (b): $(fmt_mib "${RSS[b]}") MiB (issue #16 target: <= 256 MiB for a 2 x 100 MB pair)"
}

main() {
    parse_args "$@"
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    setup
    "mode_$MODE"
}

main "$@"
