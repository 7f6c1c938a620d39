#!/usr/bin/env bash
# Seeds the fuzz corpora (fuzz/corpus/<target>/, not committed) from the project's captures
# and the shared corpus (tcpdump's test suite, pcapng conformance files). Only files under
# 64 KiB: the fuzzers run with -max_len=65536 and small seeds mutate faster.
#   analyze, postmortem: whole capture files.
#   decode:  every frame (the first 64 of each file) as the decode target's input:
#            2-byte link-type selector, 2-byte uncaptured length, frame bytes.
# Usage: fuzz/seed.sh [SHARED_CORPUS_DIR]   (default: ../shared/corpus beside the repo)
set -euo pipefail
cd "$(dirname "$0")"
root=..
shared=${1:-../../shared/corpus}
mkdir -p corpus/analyze corpus/postmortem corpus/decode

seeds() {
    for dir in "$root/testdata" "$shared"; do
        [ -d "$dir" ] || { echo "seed.sh: no $dir, skipped" >&2; continue; }
        find "$dir" -type f \( -name '*.pcap' -o -name '*.pcapng' -o -name '*.pcap.gz' \
            -o -name '*.pcapng.gz' -o -name '*.ntar' \) -size -64k -print0
    done
}

# Named by content hash, as libFuzzer names its own finds: duplicates collapse.
n=0
while IFS= read -r -d '' f; do
    name=$(sha1sum <"$f" | cut -c1-40)
    cp "$f" "corpus/analyze/$name"
    cp "$f" "corpus/postmortem/$name"
    n=$((n + 1))
done < <(seeds)
echo "analyze, postmortem: $n seed files, $(ls corpus/analyze | wc -l) distinct in corpus/analyze"

# Frames for `decode`, split out by seed_frames.py (Python 3, stdlib only).
seeds | python3 seed_frames.py corpus/decode
