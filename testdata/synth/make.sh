#!/usr/bin/env bash
# Regenerate the synthetic captures of testdata/synth, their ground truth and their tshark
# goldens. Deterministic: the same seeds give byte-identical captures and truth files, and
# crafted.pcap is written from fixed sequences.
#
# Usage: testdata/synth/make.sh        (from any directory; needs cargo and tshark 4.0)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
cd "$REPO"

cargo build --quiet --example gen
GEN="$REPO/target/debug/examples/gen"

# name        packets  seed  options (every attempt anomalous: --anomaly-rate 1)
captures=(
    "eth-ipv4.pcap     600  3  --encap ethernet"
    "ipv6.pcapng       400  4  --ipv6 --format pcapng --nanos"
    "sll2.pcap         400  1  --encap sll2 --no-timestamps --schedule classic"
)

files=()
for line in "${captures[@]}"; do
    read -r name packets seed opts <<<"$line"
    base=${name%.*}
    # shellcheck disable=SC2086 # opts is a list of flags
    "$GEN" --packets "$packets" --seed "$seed" --anomaly-rate 1 $opts \
        -o "$HERE/$name" --truth "$HERE/$base.truth.tsv"
    files+=("$HERE/$name")
done

# Hand-written connections for the flags and quirks the generator does not reach
# (examples/craft.rs; one line per connection: client port, frames, scenario).
cargo build --quiet --example craft
"$REPO/target/debug/examples/craft" "$HERE/crafted.pcap"
files+=("$HERE/crafted.pcap")

"$REPO/lab/tshark-golden.sh" "${files[@]}"

# The flag counts the README quotes.
for f in "${files[@]}"; do
    printf '%s: ' "$(basename "$f")"
    tail -n +2 "$f.tshark.tsv" | cut -f3 | tr ',' '\n' | grep -v '^$' | sort | uniq -c |
        awk '{printf "%s=%s ", $2, $1}'
    echo
done
