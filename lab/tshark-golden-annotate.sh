#!/usr/bin/env bash
# Write testdata/golden/annotate/<name>.comments.tsv: what tshark reads back from the pcapng
# files that `pcapdiag analyze --annotate` writes for a lab capture set: frame number,
# time (seconds since the epoch, 9 decimals), interface id and packet comments (joined by
# `|`), one line per frame. tests/it/annotate.rs reads the same files with pcap-parser and
# compares; tshark does not run in the tests.
#
# Usage: lab/tshark-golden-annotate.sh   (builds pcapdiag with cargo first)
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
command -v tshark >/dev/null || { echo "tshark not found" >&2; exit 1; }

CONF=$(mktemp -d /tmp/pdlab-tshark-conf.XXXXXX)
OUT=$(mktemp -d /tmp/pdlab-annotate.XXXXXX)
trap 'rm -rf "$CONF" "$OUT"' EXIT
export WIRESHARK_CONFIG_DIR="$CONF"
export LC_ALL=C TZ=UTC

cd "$REPO"
cargo build --quiet
PCAPDIAG=${CARGO_TARGET_DIR:-$REPO/target}/debug/pcapdiag
mkdir -p testdata/golden/annotate
# The set of the syn_drop scenario: client, node (-i any) and real server.
"$PCAPDIAG" analyze -q --annotate "$OUT" testdata/lab/syn_drop.client.pcap \
    testdata/lab/syn_drop.nat-any.pcap testdata/lab/syn_drop.rs.pcap >/dev/null
for f in merged syn_drop.nat-any; do
    tshark -n -r "$OUT/$f.pcapng" -T fields -E aggregator='|' \
        -e frame.number -e frame.time_epoch -e frame.interface_id -e frame.comment \
        >"testdata/golden/annotate/$f.comments.tsv"
    echo "testdata/golden/annotate/$f.comments.tsv: $(wc -l <"testdata/golden/annotate/$f.comments.tsv") frames" >&2
done
