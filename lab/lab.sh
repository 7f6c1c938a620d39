#!/usr/bin/env bash
# pcapdiag namespace lab: produces small real captures on both sides of a NATed VIP.
#
# Usage (as root):  lab/lab.sh [SCENARIO...]      (default: all scenarios)
# Scenarios: baseline rs_timewait client_port_reuse syn_drop rs_reset two_backends
#            snat_exhaustion insert_race drop_under_reuse capture_cut
#            mix (only when named: a large capture pair for benches/bench.sh --lab)
# Output:    <repo>/testdata/lab/<scenario>.{client,rs}.pcap, <scenario>.truth.tsv, ...
#            (LAB_OUT=DIR writes them to DIR instead)
#
# Topology (three network namespaces, nothing in the host namespace is touched):
#
#   pdlab-cli                 pdlab-nat                          pdlab-rs
#   10.77.1.2 [pdl-c0]---[pdl-n0] 10.77.1.1  10.77.2.1 [pdl-n1]---[pdl-r0] 10.77.2.2
#                          VIP 10.77.100.100:80 -DNAT-> 10.77.2.2:8080
#                          MASQUERADE (SNAT to 10.77.2.1) towards the RS
#
# snat_exhaustion, insert_race, drop_under_reuse and capture_cut also write a `cause` column
# in their truth (what the lab did to each request's first SYN) and <scenario>.records.txt.
# The cause comes from the lab's own records in pdlab-nat, never from the captures:
# conntrack -E events (a request whose entry is confirmed >= 0.5 s after its connect() lost
# its first SYN in the NAT box), conntrack -S insert_failed/drop deltas, nft counters (SYNs
# forwarded by the NAT box, SYNs received by the RS), nflog group 1 (the SYNs the lab's nft
# drop rules dropped) and the instant the captures were stopped (capture_cut). See
# "independent records" below, lab/attribute.py and testdata/lab/README.md.
# Needs nft and conntrack (apt-get install conntrack). LAB_KEEP_RECORDS=DIR keeps the raw
# records. lab/check_truth.py compares a pcapdiag JSON report with a truth file.
#
# Every command that configures networking runs inside one of the lab namespaces
# (ip -n / ip netns exec). Every process started is recorded by PID and stopped by PID.
# Namespaces are deleted at the end of each scenario and on any error (trap).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
OUT=${LAB_OUT:-$REPO/testdata/lab}
ALL_SCENARIOS=(baseline rs_timewait client_port_reuse syn_drop rs_reset two_backends
               snat_exhaustion insert_race drop_under_reuse capture_cut)
# Run only when named (too large for testdata/; benches/bench.sh --lab makes it).
EXTRA_SCENARIOS=(mix)

PFX=pdlab
NS_CLI=$PFX-cli
NS_NAT=$PFX-nat
NS_RS=$PFX-rs
NS_RS2=$PFX-rs2  # second real server (two_backends only)
IF_C0=pdl-c0   # in cli, towards nat
IF_N0=pdl-n0   # in nat, towards cli
IF_N1=pdl-n1   # in nat, towards rs
IF_R0=pdl-r0   # in rs, towards nat
IF_N2=pdl-n2   # in nat, towards rs2
IF_R2=pdl-r2   # in rs2, towards nat
CIP=10.77.1.2
CIP2=10.77.1.3    # second client address (insert_race)
NAT_CLI_IP=10.77.1.1
NAT_RS_IP=10.77.2.1
RIP=10.77.2.2
NAT_RS2_IP=10.77.3.1
RIP2=10.77.3.2
VIP=10.77.100.100
VPORT=80
RPORT=8080
VPORT_CLOSED=81   # DNATed to a RS port nobody listens on (rs_reset)
RPORT_CLOSED=8081
SNAPLEN=256

PYTHON=$(command -v python3)
PIDS=()          # every background process this script started
WORK=""          # per-run scratch directory

log() { printf '[lab %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

# Stop one PID we started: SIGINT, wait up to 5 s, then SIGKILL.
stop_pid() {
    local pid=$1 sig=${2:-INT} i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -"$sig" "$pid" 2>/dev/null || true
    for i in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid did not stop on SIG$sig, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}

stop_all_pids() {
    local pid
    for pid in "${PIDS[@]+"${PIDS[@]}"}"; do
        stop_pid "$pid" TERM
    done
    PIDS=()
}

delete_namespaces() {
    local ns
    for ns in "$NS_CLI" "$NS_NAT" "$NS_RS" "$NS_RS2"; do
        if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
            ip netns del "$ns" || log "could not delete namespace $ns"
        fi
    done
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    stop_all_pids
    delete_namespaces
    [[ -n "$WORK" && -d "$WORK" ]] && rm -rf "$WORK"
    if [[ $rc -ne 0 ]]; then log "failed (exit $rc); namespaces removed"; fi
    exit "$rc"
}

# ---------------------------------------------------------------- topology

setup_topology() {
    # args: masquerade port range (may be empty), second real server (0/1)
    local masq_ports=$1 rs2=${2:-0}
    delete_namespaces
    ip netns add "$NS_CLI"
    ip netns add "$NS_NAT"
    ip netns add "$NS_RS"
    local spaces=("$NS_CLI" "$NS_NAT" "$NS_RS") ns
    if [[ "$rs2" == 1 ]]; then
        ip netns add "$NS_RS2"
        spaces+=("$NS_RS2")
    fi
    for ns in "${spaces[@]}"; do
        ip -n "$ns" link set lo up
        # No IPv6 chatter (MLD/RS/DAD) in the captures: keep them to the lab traffic + ARP.
        in_ns "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
        in_ns "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
    done
    # veth pairs are created directly inside the namespaces (never in the host namespace).
    ip -n "$NS_CLI" link add "$IF_C0" type veth peer name "$IF_N0" netns "$NS_NAT"
    ip -n "$NS_NAT" link add "$IF_N1" type veth peer name "$IF_R0" netns "$NS_RS"

    ip -n "$NS_CLI" addr add "$CIP/24" dev "$IF_C0"
    ip -n "$NS_NAT" addr add "$NAT_CLI_IP/24" dev "$IF_N0"
    ip -n "$NS_NAT" addr add "$NAT_RS_IP/24" dev "$IF_N1"
    ip -n "$NS_RS" addr add "$RIP/24" dev "$IF_R0"
    ip -n "$NS_CLI" link set "$IF_C0" up
    ip -n "$NS_NAT" link set "$IF_N0" up
    ip -n "$NS_NAT" link set "$IF_N1" up
    ip -n "$NS_RS" link set "$IF_R0" up
    ip -n "$NS_CLI" route add default via "$NAT_CLI_IP"
    # The RS only ever talks to the SNAT address (on-link); no route back to the client.

    if [[ "$rs2" == 1 ]]; then
        ip -n "$NS_NAT" link add "$IF_N2" type veth peer name "$IF_R2" netns "$NS_RS2"
        ip -n "$NS_NAT" addr add "$NAT_RS2_IP/24" dev "$IF_N2"
        ip -n "$NS_RS2" addr add "$RIP2/24" dev "$IF_R2"
        ip -n "$NS_NAT" link set "$IF_N2" up
        ip -n "$NS_RS2" link set "$IF_R2" up
    fi

    in_ns "$NS_NAT" sysctl -qw net.ipv4.ip_forward=1
    if [[ "$rs2" == 1 ]]; then
        # Like kube-proxy's iptables mode: every other new connection to the second backend.
        in_ns "$NS_NAT" iptables -t nat -A PREROUTING -d "$VIP" -p tcp --dport "$VPORT" \
            -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination "$RIP2:$RPORT"
        in_ns "$NS_NAT" iptables -t nat -A POSTROUTING -o "$IF_N2" -j MASQUERADE
    fi
    in_ns "$NS_NAT" iptables -t nat -A PREROUTING -d "$VIP" -p tcp --dport "$VPORT" \
        -j DNAT --to-destination "$RIP:$RPORT"
    in_ns "$NS_NAT" iptables -t nat -A PREROUTING -d "$VIP" -p tcp --dport "$VPORT_CLOSED" \
        -j DNAT --to-destination "$RIP:$RPORT_CLOSED"
    if [[ -n "$masq_ports" ]]; then
        in_ns "$NS_NAT" iptables -t nat -A POSTROUTING -o "$IF_N1" -p tcp \
            -j MASQUERADE --to-ports "$masq_ports"
    else
        in_ns "$NS_NAT" iptables -t nat -A POSTROUTING -o "$IF_N1" -j MASQUERADE
    fi
}

# ---------------------------------------------------------------- processes

# start_bg NAME NS CMD... : start CMD in NS in the background, stdout/stderr to $WORK/NAME.*
start_bg() {
    local name=$1 ns=$2; shift 2
    ip netns exec "$ns" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    local pid=$!
    PIDS+=("$pid")
    eval "PID_$name=$pid"
}

wait_for_text() {  # file text seconds
    local f=$1 text=$2 secs=$3 i
    for i in $(seq 1 $((secs * 10))); do
        if [[ -f "$f" ]] && grep -q "$text" "$f"; then return 0; fi
        sleep 0.1
    done
    die "timed out waiting for '$text' in $f: $(cat "$f" 2>/dev/null || true)"
}

# start_tcpdump NAME NS IFACE FILE [extra tcpdump args...]
start_tcpdump() {
    local name=$1 ns=$2 iface=$3 file=$4; shift 4
    # shellcheck disable=SC2086
    start_bg "$name" "$ns" tcpdump -n -i "$iface" -s "$SNAPLEN" -U -Z root $TCPDUMP_EXTRA \
        -w "$file" "$@"
    wait_for_text "$WORK/$name.err" "listening on" 10
}

# start_dumpcap NAME NS IFACE FILE : pcapng writer
start_dumpcap() {
    local name=$1 ns=$2 iface=$3 file=$4
    start_bg "$name" "$ns" dumpcap -q -i "$iface" -s "$SNAPLEN" -w "$file"
    wait_for_text "$WORK/$name.err" "Capturing on" 10
    sleep 0.3
}

# stop_named SIGNAL NAME...: stop by recorded PID, drop from PIDS.
# (Background jobs of a non-interactive shell ignore SIGINT unless they install their own
# handler, as tcpdump and dumpcap do; python does not, so the server gets SIGTERM.)
stop_named() {
    local sig=$1 name pid keep p
    shift
    for name in "$@"; do
        eval "pid=\${PID_$name:-}"
        [[ -z "$pid" ]] && continue
        stop_pid "$pid" "$sig"
        keep=()
        for p in "${PIDS[@]}"; do [[ "$p" != "$pid" ]] && keep+=("$p"); done
        PIDS=("${keep[@]+"${keep[@]}"}")
        eval "PID_$name="
    done
}

start_server() {  # [name namespace] extra server args...
    local name=server ns=$NS_RS
    if [[ "${1:-}" == server2 ]]; then name=$1 ns=$2; shift 2; fi
    rm -f "$WORK/$name.ready"
    start_bg "$name" "$ns" "$PYTHON" "$LAB_DIR/lab_server.py" --port "$RPORT" \
        --max-seconds 90 --ready-file "$WORK/$name.ready" "$@"
    wait_for_text "$WORK/$name.ready" "listening" 10
}

run_client() {  # scenario, extra client args...
    local sc=$1; shift
    # Bounded in count (--count), per attempt (timeouts) and in total (timeout 60).
    timeout --signal=INT --kill-after=5 60 \
        ip netns exec "$NS_CLI" "$PYTHON" "$LAB_DIR/lab_client.py" \
        --target "$VIP:$VPORT" --max-seconds 50 --out "$WORK/$sc.truth.tsv" "$@"
}

# ---------------------------------------------------------------- scenarios

# Common skeleton: topology, captures, server, client, stop, collect.
#   scenario_run NAME MASQ_PORTS CONFIG_FN SERVER_ARGS CLIENT_ARGS EXTRA_CAPTURES
# EXTRA_CAPTURES: 0 (client and RS only), node (also the NAT box's `tcpdump -i any`),
# 1 (node, and the client side again as nanosecond pcap and as pcapng), backends (node, a
# second real server with its own capture, and the client side again rotated every 2 s).
scenario_run() {
    local sc=$1 masq=$2 config_fn=$3 server_args=$4 client_args=$5 extra=$6
    log "scenario $sc: setting up"
    local rs2=0
    [[ "$extra" == backends ]] && rs2=1
    setup_topology "$masq" "$rs2"
    "$config_fn"

    local names=(cap_cli cap_rs)
    start_tcpdump cap_cli "$NS_CLI" "$IF_C0" "$WORK/$sc.client.pcap"
    start_tcpdump cap_rs "$NS_RS" "$IF_R0" "$WORK/$sc.rs.pcap"
    if [[ "$extra" == 1 || "$extra" == node || "$extra" == backends ]]; then
        start_tcpdump cap_nat "$NS_NAT" any "$WORK/$sc.nat-any.pcap" -y LINUX_SLL2
        names+=(cap_nat)
    fi
    if [[ "$extra" == 1 ]]; then
        start_tcpdump cap_nano "$NS_CLI" "$IF_C0" "$WORK/$sc.client.nano.pcap" \
            --time-stamp-precision=nano
        start_dumpcap cap_ng "$NS_CLI" "$IF_C0" "$WORK/$sc.client.pcapng"
        names+=(cap_nano cap_ng)
    fi
    if [[ "$rs2" == 1 ]]; then
        start_tcpdump cap_rs2 "$NS_RS2" "$IF_R2" "$WORK/$sc.rs2.pcap"
        # tcpdump -G: a new file every 2 s (on the next packet), named by its start time.
        mkdir -p "$WORK/$sc.client-rotated"
        start_tcpdump cap_rot "$NS_CLI" "$IF_C0" \
            "$WORK/$sc.client-rotated/client.%Y%m%d-%H%M%S.pcap" -G 2
        names+=(cap_rs2 cap_rot)
    fi
    # shellcheck disable=SC2086
    start_server $server_args
    if [[ "$rs2" == 1 ]]; then
        # shellcheck disable=SC2086
        start_server server2 "$NS_RS2" $server_args
    fi
    sleep 0.2

    if [[ "$RECORDS" == 1 ]]; then start_records "$sc"; fi

    log "scenario $sc: running client ($client_args)"
    CAP_NAMES=("${names[@]}")
    if [[ -n "$CLIENT_FN" ]]; then
        "$CLIENT_FN" "$sc" "$client_args"
    else
        # shellcheck disable=SC2086
        run_client "$sc" $client_args
    fi
    sleep 1   # let the last FIN/ACKs and any late retransmissions be captured

    stop_named TERM server server2
    stop_named INT "${names[@]}"
    local n
    for n in "${names[@]}"; do
        grep -h -E 'packets (captured|received|dropped)' "$WORK/$n.err" 2>/dev/null \
            | sed "s/^/[$sc $n] /" >&2 || true
    done
    if [[ "$RECORDS" == 1 ]]; then stop_records "$sc"; fi
    delete_namespaces
    if [[ "$RECORDS" == 1 ]]; then attribute "$sc"; fi

    mkdir -p "$OUT"
    local f
    for f in "$WORK/$sc".*; do
        if [[ -d "$f" ]]; then
            rm -rf "$OUT/$(basename "$f")"
            chmod 0755 "$f"
            chmod 0644 "$f"/*
        else
            chmod 0644 "$f"
        fi
        mv -f "$f" "$OUT/"
    done
    log "scenario $sc: done -> $OUT/$sc.*"
}

cfg_none() { :; }

# ---------------------------------------------------------------- independent records
# For the scenarios with a `cause` column in their truth (RECORDS=1), the lab keeps its own
# records of what the NAT box did, apart from the captures:
#   - conntrack -E (NEW/UPDATE/DESTROY events with timestamps) in pdlab-nat: a request's
#     conntrack entry is created (NEW event) only when one of its SYNs is confirmed, i.e.
#     got through the NAT. A request whose NEW event comes >= 0.5 s after its connect()
#     started lost its first SYN inside the NAT box.
#   - conntrack -S before and after (insert_failed, drop: SYNs that lost at confirm).
#   - nft counters: SYNs forwarded by the NAT box (pdlab-nat, forward) and SYNs received by
#     the real server (pdlab-rs, input); the difference is what died between them.
#   - nflog group 1 (tcpdump -i nflog:1 in pdlab-nat): every packet an nft drop rule of
#     the lab dropped, with its source port and time.
#   - the client's own timers (the truth rows) and, for capture_cut, the instant the
#     captures were stopped.
# lab/attribute.py joins them into the `cause` column; <scenario>.records.txt keeps the
# counters and a per-request summary.
RECORDS=0
CLIENT_FN=""
CUT_NS=""
TCPDUMP_EXTRA=""
SNAT_PORTS=0
CAP_NAMES=()

cfg_records() {
    in_ns "$NS_NAT" nft -f - <<NFT
table ip pdlab {
    chain fwd_syns {
        type filter hook forward priority 0; policy accept;
        iifname "$IF_N0" tcp flags & (syn|ack) == syn counter comment "syns_forwarded"
    }
}
NFT
    in_ns "$NS_RS" nft -f - <<NFT
table ip pdlab {
    chain rs_in {
        type filter hook input priority 0; policy accept;
        tcp dport $RPORT tcp flags & (syn|ack) == syn counter comment "syns_at_rs"
    }
}
NFT
}

start_records() {
    local sc=$1
    mkdir -p "$WORK/rec"
    in_ns "$NS_NAT" conntrack -S >"$WORK/rec/$sc.ct-stats.before"
    start_bg ct_events "$NS_NAT" stdbuf -oL conntrack -E -o timestamp,extended -p tcp
    start_bg nflog "$NS_NAT" tcpdump -n -i nflog:1 -U --immediate-mode \
        -w "$WORK/rec/$sc.nflog.pcap"
    wait_for_text "$WORK/nflog.err" "listening on" 10
    sleep 0.3
}

stop_records() {
    local sc=$1
    sleep 0.3
    stop_named INT ct_events nflog
    cp "$WORK/ct_events.out" "$WORK/rec/$sc.ct-events"
    in_ns "$NS_NAT" conntrack -S >"$WORK/rec/$sc.ct-stats.after"
    { echo "## pdlab-nat"; in_ns "$NS_NAT" nft list table ip pdlab
      echo "## pdlab-rs"; in_ns "$NS_RS" nft list table ip pdlab; } >"$WORK/rec/$sc.nft"
    if [[ -n "${LAB_KEEP_RECORDS:-}" ]]; then   # a folder to keep the raw records in
        mkdir -p "$LAB_KEEP_RECORDS" && cp "$WORK/rec/$sc".* "$LAB_KEEP_RECORDS/"
    fi
}

attribute() {
    local sc=$1 extra=()
    [[ -f "$WORK/rec/$sc.tail.tsv" ]] && extra+=(--tail "$WORK/rec/$sc.tail.tsv")
    [[ -n "$CUT_NS" ]] && extra+=(--cut-ns "$CUT_NS")
    "$PYTHON" "$LAB_DIR/attribute.py" --scenario "$sc" --truth "$WORK/$sc.truth.tsv" \
        --default-ip "$CIP" --vip "$VIP" --snat-ports "$SNAT_PORTS" \
        --ct-events "$WORK/rec/$sc.ct-events" \
        --ct-before "$WORK/rec/$sc.ct-stats.before" --ct-after "$WORK/rec/$sc.ct-stats.after" \
        --nft "$WORK/rec/$sc.nft" --nflog "$WORK/rec/$sc.nflog.pcap" \
        --records-out "$WORK/$sc.records.txt" "${extra[@]}"
}

cfg_snat_exhaustion() {
    # 8 SNAT ports (MASQUERADE --to-ports 40000-40007), connections held 1.5 s by the
    # server, closed by the client first (no TIME_WAIT on the RS, so no stale ACKs); the
    # NAT forgets closed connections after 1 s.
    in_ns "$NS_NAT" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1
    cfg_records
}

cfg_insert_race() {
    # A second client address; SNAT range 40000-40159 (MASQUERADE without --random-fully
    # keeps a client port that is in the range and free), client ports 40000+round from
    # both addresses at the same instant: both SYNs get 10.77.2.1:port -> RS before either
    # is confirmed, and one loses the insert.
    ip -n "$NS_CLI" addr add "$CIP2/24" dev "$IF_C0"
    in_ns "$NS_NAT" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1
    cfg_records
    local n=${LAB_RACE_RULES:-0} i
    if (( n > 0 )); then
        # Work between SNAT (postrouting 100) and conntrack confirm (last): n rules that
        # match nothing, as on a node with a large ruleset. Widens the race window.
        {
            echo "table ip pdlab_slow {"
            echo "  chain slow_post { type filter hook postrouting priority 200; policy accept;"
            for ((i = 0; i < n; i++)); do echo "    tcp dport $((20000 + i)) counter"; done
            echo "  }"
            echo "}"
        } | in_ns "$NS_NAT" nft -f -
    fi
}

cfg_drop_under_reuse() {
    # Every SYN from the client (first or retransmitted, reused tuple or not) has a 1 in
    # 10 chance to be dropped in the NAT box's forward path, counted and logged (nflog 1).
    cfg_records
    in_ns "$NS_NAT" nft add rule ip pdlab fwd_syns iifname "$IF_N0" \
        'tcp flags & (syn|ack) == syn' numgen random mod 10 == 0 \
        counter log group 1 queue-threshold 1 drop comment '"random_syn_drop"'
}

cfg_capture_cut() {
    cfg_records
    # The drop rule is added by client_capture_cut, for the last requests only.
    in_ns "$NS_NAT" nft add chain ip pdlab cut_syns
    in_ns "$NS_NAT" nft add rule ip pdlab fwd_syns jump cut_syns
}

client_capture_cut() {
    # Phase 1: ordinary requests. Phase 2: drop every SYN from the client (counted, nflog),
    # start 3 concurrent requests, stop both captures 200 ms later (before the client's
    # 1 s retransmission), then remove the rule: the retries get through after the cut.
    local sc=$1 args=$2
    # shellcheck disable=SC2086
    run_client "$sc" $args
    in_ns "$NS_NAT" nft add rule ip pdlab cut_syns iifname "$IF_N0" \
        'tcp flags & (syn|ack) == syn' counter log group 1 queue-threshold 1 drop comment '"cut_syn_drop"'
    timeout --signal=INT --kill-after=5 30 \
        ip netns exec "$NS_CLI" "$PYTHON" "$LAB_DIR/lab_client.py" \
        --target "$VIP:$VPORT" --max-seconds 20 --out "$WORK/rec/$sc.tail.tsv" \
        --count 3 --concurrency 3 --interval 0 --connect-timeout 5 &
    local tail_pid=$!
    PIDS+=("$tail_pid")
    # Wait (at most 5 s) until the rule has dropped the 3 first SYNs, then 200 ms more.
    local i dropped=0
    for i in $(seq 1 100); do
        dropped=$(in_ns "$NS_NAT" nft list chain ip pdlab cut_syns \
            | sed -n 's/.*counter packets \([0-9]*\).*/\1/p')
        (( ${dropped:-0} >= 3 )) && break
        sleep 0.05
    done
    log "capture_cut: $dropped SYNs dropped; stopping the captures in 200 ms"
    sleep 0.2
    CUT_NS=$(date +%s%N)
    stop_named INT "${CAP_NAMES[@]}"
    in_ns "$NS_NAT" nft flush chain ip pdlab cut_syns
    wait "$tail_pid" || log "tail client exited $?"
    local keep=() p
    for p in "${PIDS[@]}"; do [[ "$p" != "$tail_pid" ]] && keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
}

# mix: a real connection mix for the benchmark (benches/bench.sh --lab). Many short
# HTTP/1.0 connections through DNAT+SNAT: LAB_MIX_COUNT requests (default 32000) by
# LAB_MIX_PROCS client processes (default 4) of LAB_MIX_THREADS threads each (default 4),
# all within LAB_MIX_SECONDS (default 240; each process is also killed 20 s after that);
# answers of LAB_MIX_BODY bytes (default 2000) after a separate head (three segments),
# served by 2 processes; full packets captured (LAB_MIX_SNAPLEN, default 262144).
# 1 in LAB_MIX_DROP_EVERY client SYNs (default 100; 0: none) is dropped at random in the
# NAT box, for a few percent of anomalies (1 s SYN retransmits).
cfg_mix() {
    # Twice the default client port range. Ports still come back within the run, as on a
    # busy client (connect() walks the range in steps of 2: about a third of the SYNs of
    # 32000 requests reuse a 4-tuple whose RS side is in TIME_WAIT; the RS takes them, their
    # timestamps being newer).
    in_ns "$NS_CLI" sysctl -qw net.ipv4.ip_local_port_range="10000 65000"
    # One segment per packet, as on a wire (else the veths carry 4 KB GSO packets).
    ip -n "$NS_CLI" link set dev "$IF_C0" gso_max_segs 1
    ip -n "$NS_NAT" link set dev "$IF_N0" gso_max_segs 1
    ip -n "$NS_NAT" link set dev "$IF_N1" gso_max_segs 1
    ip -n "$NS_RS" link set dev "$IF_R0" gso_max_segs 1
    local every=${LAB_MIX_DROP_EVERY:-100}
    if (( every > 0 )); then
        in_ns "$NS_NAT" nft -f - <<NFT
table ip pdlab {
    chain fwd_syns {
        type filter hook forward priority 0; policy accept;
        iifname "$IF_N0" tcp flags & (syn|ack) == syn numgen random mod $every == 0 counter drop comment "mix_random_syn_drop"
    }
}
NFT
    fi
}

client_mix() {
    local sc=$1 args=$2
    local count=${LAB_MIX_COUNT:-32000} procs=${LAB_MIX_PROCS:-4} secs=${LAB_MIX_SECONDS:-240}
    local k n pids=() rc=0 t0=$SECONDS
    for ((k = 0; k < procs; k++)); do
        n=$((count / procs + (k < count % procs ? 1 : 0)))
        # shellcheck disable=SC2086
        timeout --signal=INT --kill-after=5 $((secs + 20)) \
            ip netns exec "$NS_CLI" "$PYTHON" "$LAB_DIR/lab_client.py" \
            --target "$VIP:$VPORT" --max-seconds "$secs" --out "$WORK/mixpart.$k.tsv" \
            --count "$n" $args &
        pids+=($!)
        PIDS+=($!)
    done
    for k in "${pids[@]}"; do wait "$k" || rc=$?; done
    local keep=() p
    for p in "${PIDS[@]}"; do [[ " ${pids[*]} " == *" $p "* ]] || keep+=("$p"); done
    PIDS=("${keep[@]+"${keep[@]}"}")
    (( rc == 0 )) || log "mix: a client process exited $rc"
    # One truth file, in start order, attempts renumbered.
    { head -n 1 "$WORK/mixpart.0.tsv"
      tail -q -n +2 "$WORK"/mixpart.*.tsv | sort -t $'\t' -k3,3n \
        | awk -F '\t' -v OFS='\t' '{ $1 = NR; print }'; } >"$WORK/$sc.truth.tsv"
    log "mix: $(($(wc -l <"$WORK/$sc.truth.tsv") - 1)) requests in $((SECONDS - t0)) s ($(awk -F '\t' 'NR > 1 { n[$5]++ } END { for (o in n) printf "%s %d ", o, n[o] }' "$WORK/$sc.truth.tsv"))"
}

cfg_rs_timewait() {
    # The NAT box forgets finished connections after 1 s and has only two SNAT ports, so
    # new connections are mapped onto SNAT tuples the RS still holds in TIME_WAIT (60 s).
    in_ns "$NS_NAT" sysctl -qw net.netfilter.nf_conntrack_tcp_timeout_time_wait=1
    # Client timestamps on (the default, set explicitly): the client's TSval offset is
    # per 4-tuple, so a SYN from another client port mapped onto an old SNAT tuple carries
    # an unrelated TSval and ISN; the RS's TIME_WAIT socket then often rejects it (PAWS or
    # ISN not after rcv_nxt) and answers with an ACK of the old connection.
    # LAB_RS_TIMEWAIT_TS=0 turns them off (the ISN alone decides then).
    in_ns "$NS_CLI" sysctl -qw net.ipv4.tcp_timestamps="${LAB_RS_TIMEWAIT_TS:-1}"
}

cfg_client_port_reuse() {
    # Only two client ports: the same client 4-tuple comes back again and again.
    in_ns "$NS_CLI" sysctl -qw net.ipv4.ip_local_port_range="40000 40001"
}

cfg_two_backends() {
    # SYNs toward the second real server only: the first of every three is dropped
    # after DNAT, inside the NAT box (FORWARD, out of pdl-n2).
    in_ns "$NS_NAT" iptables -A FORWARD -o "$IF_N2" -p tcp --syn \
        -m statistic --mode nth --every 3 --packet 0 -j DROP
}

cfg_syn_drop() {
    # Drop client SYNs in FORWARD: rule 1 drops SYN #1, #4, #7, ... (every 3rd, so about every
    # other attempt has one retransmit after 1 s); rule 2 counts only SYNs that survived rule 1
    # and drops its 4th, 12th, ..., which is a retransmitted SYN: that attempt needs a 2nd retry.
    in_ns "$NS_NAT" iptables -A FORWARD -i "$IF_N0" -p tcp --syn \
        -m statistic --mode nth --every 3 --packet 0 -j DROP
    in_ns "$NS_NAT" iptables -A FORWARD -i "$IF_N0" -p tcp --syn \
        -m statistic --mode nth --every 8 --packet 3 -j DROP
}

scenario() {
    local sc=$1
    RECORDS=0 CLIENT_FN="" CUT_NS="" SNAT_PORTS=0 TCPDUMP_EXTRA="" SNAPLEN=256
    case "$sc" in
    baseline)
        scenario_run "$sc" "" cfg_none "" \
            "--count 50 --interval 0.02 --connect-timeout 5" 0 ;;
    rs_timewait)
        # 0.6 s between attempts: each of the two SNAT ports is reused every ~1.2 s, after
        # the NAT's 1 s conntrack TIME_WAIT but well within the RS's 60 s TIME_WAIT.
        # (With 0.1 s the NAT also runs out of ports and drops SYNs: 1 s retransmits.)
        scenario_run "$sc" "40000-40001" cfg_rs_timewait "" \
            "--count ${LAB_RS_TIMEWAIT_COUNT:-40} --interval ${LAB_RS_TIMEWAIT_INTERVAL:-0.6} --connect-timeout 8" 1 ;;
    client_port_reuse)
        scenario_run "$sc" "" cfg_client_port_reuse "" \
            "--count 40 --interval 0.05 --connect-timeout 5" 0 ;;
    syn_drop)
        # With the NAT box's own capture: the dropped SYNs enter it and never leave.
        scenario_run "$sc" "" cfg_syn_drop "" \
            "--count 12 --interval 0.1 --connect-timeout 10" node ;;
    rs_reset)
        # Every 4th attempt goes to VIP:81 -> RS:8081 (no listener: RST,ACK);
        # the server aborts every 3rd connection it accepts with SO_LINGER 0 (RST).
        scenario_run "$sc" "" cfg_none "--abort-every 3" \
            "--count 24 --interval 0.05 --connect-timeout 5 --alt-target $VIP:$VPORT_CLOSED --alt-every 4" 0 ;;
    two_backends)
        # Two real servers behind the VIP (every other new connection to each), SYNs to
        # the second one dropped now and then on the NAT box; captures on the client
        # (also rotated), on the NAT box and on each real server.
        scenario_run "$sc" "" cfg_two_backends "" \
            "--count 24 --interval 0.25 --connect-timeout 10" backends ;;
    snat_exhaustion)
        # 12 concurrent clients, 8 SNAT ports, each connection held 1.5 s: SYNs beyond the
        # 8 ports in use lose at conntrack confirm (no free tuple) and are retried at 1 s.
        RECORDS=1 SNAT_PORTS=8
        scenario_run "$sc" "40000-40007" cfg_snat_exhaustion "--hold 1.5 --wait-close" \
            "--count 36 --concurrency 12 --interval 0 --connect-timeout 10 --read-timeout 5 --client-closes" node ;;
    insert_race)
        # 150 rounds 0.1 s apart; in round r both addresses connect from port 40000+r at
        # the same instant (each port once: no client tuple is reused). SNAT range
        # 40000-40159, of which ~20 are in use at any time: never exhausted.
        # LAB_RACE_RULES=N adds N no-match rules between SNAT and confirm (not used for
        # the committed files: the race shows without them).
        RECORDS=1 SNAT_PORTS=160
        scenario_run "$sc" "40000-40159" cfg_insert_race "--wait-close" \
            "--race-sources $CIP,$CIP2 --race-port-base 40000 --rounds ${LAB_RACE_ROUNDS:-150} --interval 0.1 --connect-timeout 5 --client-closes" node ;;
    drop_under_reuse)
        # Odd requests bind one of 4 fixed ports (61000-61003, outside the ephemeral range;
        # each reused every ~0.4 s, the RS's TIME_WAIT accepts the newer SYN), even
        # requests take an ephemeral port.
        RECORDS=1
        scenario_run "$sc" "" cfg_drop_under_reuse "" \
            "--count 160 --interval 0.05 --connect-timeout 10 --fixed-ports 61000-61003 --fixed-every 2" node ;;
    capture_cut)
        # --immediate-mode: tcpdump writes each packet as it comes (else libpcap hands
        # them over in blocks, every 1 s at worst, and a stop 200 ms after the last SYNs
        # would lose the last block).
        RECORDS=1 CLIENT_FN=client_capture_cut TCPDUMP_EXTRA=--immediate-mode
        scenario_run "$sc" "" cfg_capture_cut "" \
            "--count 20 --interval 0.05 --connect-timeout 5" node ;;
    mix)
        # A large pair for the benchmark (not for testdata/: about 2 x 100 MB). See client_mix.
        local secs=${LAB_MIX_SECONDS:-240} count=${LAB_MIX_COUNT:-32000}
        CLIENT_FN=client_mix TCPDUMP_EXTRA="-B 32768" SNAPLEN=${LAB_MIX_SNAPLEN:-262144}
        scenario_run "$sc" "" cfg_mix \
            "--body-bytes ${LAB_MIX_BODY:-2000} --split-header --workers 2 --max-conns $((count + 100)) --max-seconds $((secs + 40))" \
            "--concurrency ${LAB_MIX_THREADS:-4} --interval 0 --connect-timeout 5 --read-timeout 5" 0 ;;
    *)
        die "unknown scenario '$sc' (known: ${ALL_SCENARIOS[*]} ${EXTRA_SCENARIOS[*]})" ;;
    esac
}

# ---------------------------------------------------------------- main

main() {
    [[ $EUID -eq 0 ]] || die "must run as root"
    local tool
    for tool in ip iptables nft conntrack tcpdump dumpcap timeout "$PYTHON"; do
        command -v "$tool" >/dev/null || die "missing tool: $tool"
    done
    local scenarios=("$@")
    [[ ${#scenarios[@]} -eq 0 ]] && scenarios=("${ALL_SCENARIOS[@]}")
    local sc
    for sc in "${scenarios[@]}"; do
        case " ${ALL_SCENARIOS[*]} ${EXTRA_SCENARIOS[*]} " in *" $sc "*) ;; *) die "unknown scenario '$sc'";; esac
    done

    # One lab at a time (the namespace names are fixed).
    exec 9>"/tmp/$PFX.lock"
    flock -n 9 || die "another lab.sh run holds /tmp/$PFX.lock"

    trap cleanup EXIT INT TERM
    WORK=$(mktemp -d "/tmp/$PFX.XXXXXX")
    for sc in "${scenarios[@]}"; do
        scenario "$sc"
    done
    log "all done: ${scenarios[*]}"
}

main "$@"
