#!/usr/bin/env bash
# Write <capture>.tshark.tsv (frame, stream, tcp.analysis flags) next to every capture.
#
# Usage: lab/tshark-golden.sh [CAPTURE...]
#   With no argument: every testdata/**/*.pcap and *.pcapng of the repository.
#   With arguments: those files (their goldens are written next to them).
#
# tshark runs with default preferences: an empty personal configuration directory (so no
# user preference, profile or decode-as can change the result), -n (no name resolution) and
# a single pass (see lab/tshark_golden.py for why, and for the format).
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
PYTHON=$(command -v python3)
command -v tshark >/dev/null || { echo "tshark not found" >&2; exit 1; }

CONF=$(mktemp -d /tmp/pdlab-tshark-conf.XXXXXX)
trap 'rm -rf "$CONF"' EXIT
export WIRESHARK_CONFIG_DIR="$CONF"
export LC_ALL=C TZ=UTC

files=()
if [[ $# -gt 0 ]]; then
    files=("$@")
else
    while IFS= read -r -d '' f; do files+=("$f"); done < <(
        find "$REPO/testdata" -type f \( -name '*.pcap' -o -name '*.pcapng' \) -print0 | sort -z)
fi

for f in "${files[@]}"; do
    out="$f.tshark.tsv"
    "$PYTHON" "$LAB_DIR/tshark_golden.py" "$f" "$out.tmp"
    mv -f "$out.tmp" "$out"
    echo "$out: $(($(wc -l <"$out") - 1)) frames" >&2
done
