#!/usr/bin/env python3
"""Summarise lab captures (via tshark fields) and truth files, for testdata/lab/README.md.

Usage: lab/summarize.py FILE...   (captures: .pcap/.pcapng; truth: .truth.tsv)

For a capture, a connection attempt is a distinct (src, sport, dst, dport, ISN) pure SYN.
Reported: attempts, SYN retransmits with their gaps to the previous SYN of the same attempt,
stale ACKs (a pure ACK towards the SYN sender while its attempt has no SYN-ACK yet, acking
something other than ISN+1), RSTs by direction and RST,ACK answers to a SYN (refusals),
distinct 4-tuples that carried more than one attempt (reused tuples), and the frame counts
of the tcp.analysis flags in the capture's .tshark.tsv golden (if present).
"""
import collections
import os
import subprocess
import sys

FIELDS = ["frame.number", "frame.time_epoch", "ip.src", "tcp.srcport", "ip.dst",
          "tcp.dstport", "tcp.flags", "tcp.seq_raw", "tcp.ack_raw"]


def tshark_rows(path):
    cmd = ["tshark", "-n", "-r", path, "-Y", "tcp", "-T", "fields", "-E", "separator=\t"]
    for f in FIELDS:
        cmd += ["-e", f]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        p = line.split("\t")
        if len(p) < len(FIELDS) or not p[3]:
            continue
        # ICMP-quoted TCP headers give comma-joined values; keep the outer header.
        p = [x.split(",")[0] for x in p]
        yield {
            "frame": int(p[0]), "t": float(p[1]), "src": p[2], "sport": int(p[3]),
            "dst": p[4], "dport": int(p[5]), "flags": int(p[6], 16),
            "seq": int(p[7]), "ack": int(p[8]) if p[8] else 0,
        }


SYN, RST, ACK, FIN = 0x02, 0x04, 0x10, 0x01


def summarize_capture(path):
    attempts = {}            # (tuple, isn) -> list of SYN times
    pending = {}             # forward tuple -> (isn, got_synack)
    tuples_attempts = collections.defaultdict(set)
    stale_acks = []
    rst_from_initiator = rst_from_responder = refusals = 0
    initiators = set()
    frames = 0
    for r in tshark_rows(path):
        frames += 1
        fwd = (r["src"], r["sport"], r["dst"], r["dport"])
        rev = (r["dst"], r["dport"], r["src"], r["sport"])
        fl = r["flags"]
        if fl & SYN and not fl & ACK:
            key = (fwd, r["seq"])
            attempts.setdefault(key, []).append((r["t"], r["frame"]))
            pending[fwd] = [r["seq"], False]
            tuples_attempts[fwd].add(r["seq"])
            initiators.add(fwd)
            continue
        if fl & SYN and fl & ACK and rev in pending:
            if r["ack"] == (pending[rev][0] + 1) % 2**32:
                pending[rev][1] = True
            continue
        if fl & RST:
            if fwd in initiators:
                rst_from_initiator += 1
            else:
                rst_from_responder += 1
                if rev in pending and not pending[rev][1] and fl & ACK:
                    refusals += 1
            continue
        if fl == ACK and rev in pending and not pending[rev][1]:
            isn = pending[rev][0]
            if r["ack"] != (isn + 1) % 2**32:
                stale_acks.append(r["frame"])
    retrans_gaps = []
    for key, syns in attempts.items():
        for (t0, _), (t1, _) in zip(syns, syns[1:]):
            retrans_gaps.append(t1 - t0)
    reused = sum(1 for s in tuples_attempts.values() if len(s) > 1)
    return {
        "tcp_frames": frames,
        "attempts": len(attempts),
        "syn_retransmits": len(retrans_gaps),
        "gaps": sorted(retrans_gaps),
        "stale_acks": stale_acks,
        "rst_from_initiator": rst_from_initiator,
        "rst_from_responder": rst_from_responder,
        "refusals": refusals,
        "tuples": len(tuples_attempts),
        "reused_tuples": reused,
    }


def fmt_gaps(gaps):
    buckets = collections.Counter()
    for g in gaps:
        if g < 0.1:
            buckets["<100ms"] += 1
        else:
            buckets["%.0fs" % g] += 1
    ms = [round(g * 1000, 1) for g in gaps if g < 0.1]
    s = ", ".join("%s x%d" % (k, v) for k, v in sorted(buckets.items()))
    if ms:
        s += " (short gaps ms: %s)" % ", ".join(str(x) for x in ms)
    return s or "-"


def golden_counts(path):
    g = path + ".tshark.tsv"
    if not os.path.exists(g):
        return None
    c = collections.Counter()
    with open(g) as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) > 2 and parts[2]:
                for fl in parts[2].split(","):
                    c[fl] += 1
    return c


def golden_frames(path, flag):
    frames = set()
    with open(path + ".tshark.tsv") as f:
        next(f)
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) > 2 and flag in parts[2].split(","):
                frames.add(int(parts[0]))
    return frames


def summarize_truth(path):
    outcomes = collections.Counter()
    slow = collections.Counter()
    n = 0
    with open(path) as f:
        next(f)
        for line in f:
            a = line.rstrip("\n").split("\t")
            n += 1
            outcomes[a[4]] += 1
            ns = int(a[3])
            if ns >= 1_000_000_000:
                slow["%ds" % (ns // 1_000_000_000)] += 1
            elif ns >= 2_000_000:
                slow["2-999ms"] += 1
    return n, outcomes, slow


def main():
    for path in sys.argv[1:]:
        name = os.path.basename(path)
        if path.endswith(".tshark.tsv") or path.endswith(".md"):
            continue
        if path.endswith(".truth.tsv"):
            n, outcomes, slow = summarize_truth(path)
            print("%s: %d attempts; outcomes %s; connect >=2ms: %s" % (
                name, n, dict(sorted(outcomes.items())), dict(sorted(slow.items())) or "none"))
            continue
        s = summarize_capture(path)
        print("%s: %d TCP frames, %d attempts on %d 4-tuples (%d tuples reused), "
              "%d SYN retransmits [%s], %d stale ACKs %s, RST from initiator %d, "
              "RST from responder %d (%d refusals)" % (
                  name, s["tcp_frames"], s["attempts"], s["tuples"], s["reused_tuples"],
                  s["syn_retransmits"], fmt_gaps(s["gaps"]), len(s["stale_acks"]),
                  s["stale_acks"][:12], s["rst_from_initiator"], s["rst_from_responder"],
                  s["refusals"]))
        g = golden_counts(path)
        if g is not None:
            print("    tshark flags: %s" % (", ".join(
                "%s=%d" % kv for kv in sorted(g.items())) or "none"))
            if s["stale_acks"]:
                flagged = golden_frames(path, "ack_lost_segment")
                n = sum(1 for fr in s["stale_acks"] if fr in flagged)
                print("    stale ACKs flagged ack_lost_segment by tshark: %d of %d" % (
                    n, len(s["stale_acks"])))


if __name__ == "__main__":
    main()
