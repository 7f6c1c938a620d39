#!/usr/bin/env bash
# Write tshark's tcp.analysis flags for every capture of the public corpora that has TCP:
# testdata/golden/corpus/<set>/<file>.tshark.tsv, TCP frames only (lab/tshark_golden.py
# --tcp-only), for the parity test (tests/it/parity.rs). tshark does not run in the tests.
#
# Usage: lab/tshark-golden-corpus.sh [CORPUS_DIR]   (default: ../shared/corpus)
#   Sets: public/ and tcpdump/. Same tshark settings as lab/tshark-golden.sh: an empty
#   configuration directory, -n, a single pass. Two files at a time.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
CORPUS=${1:-$REPO/../shared/corpus}
command -v tshark >/dev/null || { echo "tshark not found (Debian package tshark)" >&2; exit 1; }

CONF=$(mktemp -d /tmp/pdlab-tshark-conf.XXXXXX)
trap 'rm -rf "$CONF"' EXIT
export WIRESHARK_CONFIG_DIR="$CONF" LC_ALL=C TZ=UTC

for set in public tcpdump; do
    out="$REPO/testdata/golden/corpus/$set"
    rm -rf "$out"
    mkdir -p "$out"
    find "$CORPUS/$set" -maxdepth 1 -type f ! -name LICENSE ! -name '*.tsv' ! -name '*.md' \
        -print0 | sort -z |
        xargs -0 -P 2 -I{} sh -c 'python3 "$1" --tcp-only "$2" "$3/$(basename "$2").tshark.tsv" 2>/dev/null || true' \
            _ "$LAB_DIR/tshark_golden.py" {} "$out"
    echo "$set: $(ls "$out" | wc -l) captures with TCP" >&2
done
