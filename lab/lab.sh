#!/usr/bin/env bash
# pcapdiag namespace lab: produces small real captures on both sides of a NATed VIP.
#
# Usage (as root):  lab/lab.sh [SCENARIO...]      (default: all scenarios)
# Scenarios: baseline rs_timewait client_port_reuse syn_drop rs_reset two_backends
# Output:    <repo>/testdata/lab/<scenario>.{client,rs}.pcap, <scenario>.truth.tsv, ...
#
# Topology (three network namespaces, nothing in the host namespace is touched):
#
#   pdlab-cli                 pdlab-nat                          pdlab-rs
#   10.77.1.2 [pdl-c0]---[pdl-n0] 10.77.1.1  10.77.2.1 [pdl-n1]---[pdl-r0] 10.77.2.2
#                          VIP 10.77.100.100:80 -DNAT-> 10.77.2.2:8080
#                          MASQUERADE (SNAT to 10.77.2.1) towards the RS
#
# Every command that configures networking runs inside one of the lab namespaces
# (ip -n / ip netns exec). Every process started is recorded by PID and stopped by PID.
# Namespaces are deleted at the end of each scenario and on any error (trap).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
OUT="$REPO/testdata/lab"
ALL_SCENARIOS=(baseline rs_timewait client_port_reuse syn_drop rs_reset two_backends)

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
    start_bg "$name" "$ns" tcpdump -n -i "$iface" -s "$SNAPLEN" -U -Z root -w "$file" "$@"
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

    log "scenario $sc: running client ($client_args)"
    # shellcheck disable=SC2086
    run_client "$sc" $client_args
    sleep 1   # let the last FIN/ACKs and any late retransmissions be captured

    stop_named TERM server server2
    stop_named INT "${names[@]}"
    local n
    for n in "${names[@]}"; do
        grep -h -E 'packets (captured|received|dropped)' "$WORK/$n.err" 2>/dev/null \
            | sed "s/^/[$sc $n] /" >&2 || true
    done
    delete_namespaces

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
    *)
        die "unknown scenario '$sc' (known: ${ALL_SCENARIOS[*]})" ;;
    esac
}

# ---------------------------------------------------------------- main

main() {
    [[ $EUID -eq 0 ]] || die "must run as root"
    local tool
    for tool in ip iptables tcpdump dumpcap timeout "$PYTHON"; do
        command -v "$tool" >/dev/null || die "missing tool: $tool"
    done
    local scenarios=("$@")
    [[ ${#scenarios[@]} -eq 0 ]] && scenarios=("${ALL_SCENARIOS[@]}")
    local sc
    for sc in "${scenarios[@]}"; do
        case " ${ALL_SCENARIOS[*]} " in *" $sc "*) ;; *) die "unknown scenario '$sc'";; esac
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
