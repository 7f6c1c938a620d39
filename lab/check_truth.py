#!/usr/bin/env python3
"""Join a pcapdiag JSON report with a lab truth file and print a confusion table.

Usage:
    pcapdiag analyze --json -q CAPTURE... > report.json
    lab/check_truth.py report.json testdata/lab/SCENARIO.truth.tsv [--split-by COLUMN] [-v]

Join: a truth row (local_ip, local_port, start_unix_ns) is the attempt of the report
(`pairs[].verdicts.attempts[]`) with the same client address (when the truth row has one) and
port whose `first_syn_ts` is the earliest at or after start - 1 ms, and at most 500 ms after
start (all lab namespaces share one clock). Attempts judged in several pairs are counted once
per truth row (the pair listed first) and reported.

Rows of the table: the truth's `cause` (with --split-by COLUMN, e.g. `note`, its value is
appended: `nft_random_syn_drop/fixed_port`); truth files without a `cause` column are labelled
by the client's timer (`fast` < 200 ms <= `slow`). Columns: pcapdiag's verdict, `(missing)`
when no attempt joins the row. Attempts of the report that no truth row joined are listed
as `(no truth row)`.

`match` counts the rows whose verdict is the one expected for the cause (EXPECT below);
with -v every disagreeing row is printed with the attempt's explanation.
"""
import argparse
import collections
import json
import sys

# The verdicts that name what the lab did (a cause may have several acceptable names).
EXPECT = {
    "none": {"ok"},
    "fast": {"ok"},
    "snat_port_exhaustion": {"snat_port_exhaustion"},
    "conntrack_insert_race": {"conntrack_insert_race"},
    # A rule dropped the SYN, for a reason no capture shows: lost before the RS (a pair) or
    # seen entering the NAT box and never leaving it (with the node's capture).
    "nft_random_syn_drop": {"syn_lost_before_rs", "dropped_in_nat"},
    "unanswered_at_capture_end": {"capture_ended"},
}

JOIN_BEFORE_NS = 1_000_000
JOIN_AFTER_NS = 500_000_000


def read_truth(path):
    with open(path) as f:
        header = f.readline().rstrip("\n").split("\t")
        return header, [dict(zip(header, l.rstrip("\n").split("\t"))) for l in f if l.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("report", help="pcapdiag analyze --json output ('-' for stdin)")
    ap.add_argument("truth", help="testdata/lab/<scenario>.truth.tsv")
    ap.add_argument("--split-by", default="", help="truth column appended to the cause")
    ap.add_argument("-v", "--verbose", action="store_true", help="print disagreeing rows")
    a = ap.parse_args()

    rep = json.load(sys.stdin if a.report == "-" else open(a.report))
    header, truth = read_truth(a.truth)

    attempts = []   # (pair index, attempt)
    for pi, p in enumerate(rep.get("pairs", [])):
        for at in p["verdicts"]["attempts"]:
            attempts.append((pi, at))
    by_port = collections.defaultdict(list)
    for pi, at in attempts:
        by_port[at["client"]["port"]].append((pi, at))

    table = collections.defaultdict(collections.Counter)
    joined = set()
    disagreements = []
    multi = 0
    for row in truth:
        if "cause" in row:
            cause = row["cause"]
        else:
            cause = "slow" if int(row["connect_ns"]) >= 200_000_000 else "fast"
        label = cause + ("/" + row.get(a.split_by, "") if a.split_by else "")
        start = int(row["start_unix_ns"])
        ip = row.get("local_ip") or None
        cands = [(pi, at) for pi, at in by_port.get(int(row["local_port"]), [])
                 if (ip is None or at["client"]["ip"] == ip)
                 and start - JOIN_BEFORE_NS <= at["first_syn_ts"] <= start + JOIN_AFTER_NS]
        if not cands:
            table[label]["(missing)"] += 1
            disagreements.append((label, row, None))
            continue
        best_ts = min(at["first_syn_ts"] for _, at in cands)
        same = [(pi, at) for pi, at in cands if at["first_syn_ts"] == best_ts]
        if len({pi for pi, _ in same}) > 1:
            multi += 1
        pi, at = min(same, key=lambda x: x[0])
        for p2, a2 in same:
            joined.add((p2, id(a2)))
        verdict = at["verdict"]
        table[label][verdict] += 1
        if verdict not in EXPECT.get(cause, set()):
            disagreements.append((label, row, at))

    extra = collections.Counter(at["verdict"] for pi, at in attempts
                                if (pi, id(at)) not in joined)
    if extra:
        table["(no truth row)"].update(extra)

    verdicts = sorted({v for c in table.values() for v in c})
    labels = sorted(table, key=lambda l: (l.startswith("("), l))
    w0 = max([len(l) for l in labels] + [len("truth cause \\ verdict")])
    widths = [max(len(v), 5) for v in verdicts]
    print("%s: %d truth rows, %d attempts in %d pair(s) of the report" % (
        a.truth, len(truth), len(attempts), len(rep.get("pairs", []))))
    print("  ".join(["truth cause \\ verdict".ljust(w0)] +
                    [v.rjust(w) for v, w in zip(verdicts, widths)] + ["total", "match"]))
    for l in labels:
        c = table[l]
        cause = l.split("/")[0]
        ok = sum(n for v, n in c.items() if v in EXPECT.get(cause, set()))
        match = "-" if l.startswith("(") or cause not in EXPECT else str(ok)
        print("  ".join([l.ljust(w0)] + [str(c.get(v, "")).rjust(w) for v, w in
                                         zip(verdicts, widths)]
                        + [str(sum(c.values())).rjust(5), match.rjust(5)]))
    if multi:
        print("note: %d truth rows joined attempts in more than one pair (counted once)" % multi)
    if a.verbose:
        for label, row, at in disagreements:
            if at is None:
                print("  %s attempt %s port %s: no attempt in the report" % (
                    label, row["attempt"], row["local_port"]))
            else:
                print("  %s attempt %s port %s connect %.3f ms -> %s: %s" % (
                    label, row["attempt"], row["local_port"], int(row["connect_ns"]) / 1e6,
                    at["verdict"], at.get("explanation", "")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
