#!/usr/bin/env python3
"""Adds the `cause` column to a lab truth file, from the lab's own records (lab/lab.sh).

Input: the client's rows (attempt, local_port, start_unix_ns, connect_ns, outcome, local_ip)
and the records kept in the NAT namespace while the client ran: conntrack -E events with
timestamps, conntrack -S before/after, the nft counters, and the nflog capture of the packets
the lab's nft drop rules dropped. None of these are the captures handed to pcapdiag.

Per request (key: client address and port, from its connect() start):
- through_ms: time from connect() to the NEW event of its conntrack entry. An entry is
  confirmed (NEW) only when a SYN of the request got through the NAT box, so >= 500 ms (or
  none) means the first SYN died inside the NAT box.
- nft_drops: the request's SYNs in the nflog record (dropped by a lab rule).
- snat_port: the reply tuple's port in the NEW event (the SNAT source port given).
- client_tuple: fresh, or reused (an earlier request of the run had the same client address
  and port, to the same VIP:port; the note says how long before it started).
- in_use: conntrack entries toward the real server alive at connect() (NEW seen, no DESTROY
  yet, not past the 1 s TIME_WAIT the lab sets).

cause (what the lab did to the request's first SYN):
- none: the first SYN got through the NAT box (through_ms < 500) and no rule dropped it.
- snat_port_exhaustion (snat_exhaustion): lost in the NAT box, no nft rule dropped it,
  and every SNAT port of the range was in use (in_use >= --snat-ports) at connect().
- conntrack_insert_race (insert_race): lost in the NAT box, no rule dropped it, ports free
  (in_use < --snat-ports), and the other client address's request with the same source
  port had its entry confirmed on that very SNAT tuple within 10 ms of this connect().
- nft_random_syn_drop (drop_under_reuse): the nflog record holds this request's first SYN.
- unanswered_at_capture_end (capture_cut): the nflog record holds its first SYN, and the
  captures were stopped (--cut-ns) before the client's 1 s retransmission was due.
- lost_in_nat_unattributed: lost in the NAT box, none of the above fits.
"""
import argparse
import collections
import re
import subprocess
import sys

EV = re.compile(r"^\[(\d+\.\d+)\]\s+\[(\w+)\]\s+ipv4\s+\d+\s+tcp\s+\d+\s+(?:\d+\s+)?(\S+)?\s*(.*)$")


def parse_events(path):
    """-> list of (t_ns, type, state, orig(src,sport,dst,dport), reply(src,sport,dst,dport))"""
    out = []
    with open(path) as f:
        for line in f:
            m = EV.match(line.strip())
            if not m:
                continue
            t = int(round(float(m.group(1)) * 1e9))
            kind = m.group(2)
            rest = line
            state = ""
            sm = re.search(r"\btcp\s+6\s+(?:\d+\s+)?([A-Z_]+)\s+src=", line)
            if sm:
                state = sm.group(1)
            kv = re.findall(r"(src|dst|sport|dport)=(\S+)", rest)
            if len(kv) < 8:
                continue
            o = dict(kv[:4])
            r = dict(kv[4:8])
            out.append((t, kind, state,
                        (o["src"], int(o["sport"]), o["dst"], int(o["dport"])),
                        (r["src"], int(r["sport"]), r["dst"], int(r["dport"]))))
    return out


def parse_stats(path):
    tot = collections.Counter()
    with open(path) as f:
        for line in f:
            for k, v in re.findall(r"(\w+)=(\d+)", line):
                if k != "cpu":
                    tot[k] += int(v)
    return tot


def parse_nflog(path):
    """-> list of (t_ns, src, sport, flags)"""
    try:
        out = subprocess.run(
            ["tshark", "-n", "-r", path, "-T", "fields", "-E", "separator=\t",
             "-e", "frame.time_epoch", "-e", "ip.src", "-e", "tcp.srcport", "-e", "tcp.flags"],
            check=True, capture_output=True, text=True).stdout
    except (subprocess.CalledProcessError, FileNotFoundError) as e:
        print("attribute: nflog unreadable: %s" % e, file=sys.stderr)
        return []
    rows = []
    for line in out.splitlines():
        p = line.split("\t")
        if len(p) < 4 or not p[2]:
            continue
        rows.append((int(round(float(p[0]) * 1e9)), p[1], int(p[2]), int(p[3], 16)))
    return rows


def read_rows(path, default_ip, first_attempt=1):
    rows = []
    with open(path) as f:
        header = next(f).rstrip("\n").split("\t")
        for line in f:
            d = dict(zip(header, line.rstrip("\n").split("\t")))
            rows.append({
                "attempt": first_attempt + len(rows),
                "local_port": int(d["local_port"]),
                "start": int(d["start_unix_ns"]),
                "connect": int(d["connect_ns"]),
                "outcome": d["outcome"],
                "local_ip": d.get("local_ip") or default_ip,
            })
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scenario", required=True)
    ap.add_argument("--truth", required=True, help="client rows in, truth with cause out")
    ap.add_argument("--tail", default="", help="more client rows (capture_cut)")
    ap.add_argument("--default-ip", required=True)
    ap.add_argument("--vip", required=True)
    ap.add_argument("--snat-ports", type=int, default=0)
    ap.add_argument("--ct-events", required=True)
    ap.add_argument("--ct-before", required=True)
    ap.add_argument("--ct-after", required=True)
    ap.add_argument("--nft", required=True)
    ap.add_argument("--nflog", required=True)
    ap.add_argument("--cut-ns", type=int, default=0)
    ap.add_argument("--records-out", required=True)
    a = ap.parse_args()

    rows = read_rows(a.truth, a.default_ip)
    if a.tail:
        rows += read_rows(a.tail, a.default_ip, len(rows) + 1)
    events = parse_events(a.ct_events)
    nflog = parse_nflog(a.nflog)
    before, after = parse_stats(a.ct_before), parse_stats(a.ct_after)
    delta = {k: after[k] - before[k] for k in ("insert_failed", "drop", "insert", "clash_resolve")}

    news = collections.defaultdict(list)     # (src, sport) -> [(t, snat_port)]
    for t, kind, state, o, r in events:
        if kind == "NEW" and o[2] == a.vip:
            news[(o[0], o[1])].append((t, r[3]))

    def in_use_at(t):
        """Entries toward the RS alive at t: NEW before t, no DESTROY before t, not in
        TIME_WAIT (1 s in the lab) for more than 1 s."""
        alive = {}
        for te, kind, state, o, r in events:
            if te >= t:
                break
            if o[2] != a.vip:
                continue
            if kind == "NEW":
                alive[o] = None
            elif kind == "DESTROY":
                alive.pop(o, None)
            elif kind == "UPDATE" and o in alive:
                if state in ("TIME_WAIT", "CLOSE") and alive[o] is None:
                    alive[o] = te
        return sum(1 for tw in alive.values() if tw is None or t - tw < 1_000_000_000)

    # The client's own 4-tuple: fresh, or used by an earlier request of the run (how long
    # before, from the earlier request's connect() start).
    last_use = {}
    for row in sorted(rows, key=lambda r: r["start"]):
        key = (row["local_ip"], row["local_port"])
        row["reused_after_ms"] = ((row["start"] - last_use[key]) / 1e6
                                  if key in last_use else None)
        last_use[key] = row["start"]

    out_rows = []
    for row in rows:
        key = (row["local_ip"], row["local_port"])
        lo, hi = row["start"] - 5_000_000, row["start"] + row["connect"] + 100_000_000
        new = next(((t, p) for t, p in news.get(key, []) if lo <= t <= hi), None)
        through_ms = (new[0] - row["start"]) / 1e6 if new else -1.0
        drops = [t for t, src, sp, fl in nflog
                 if src == row["local_ip"] and sp == row["local_port"] and lo <= t <= hi
                 and fl & 0x12 == 0x02]
        first_dropped_by_rule = any(t <= row["start"] + 500_000_000 for t in drops)
        lost_in_nat = new is None or through_ms >= 500
        in_use = in_use_at(row["start"])
        note = []
        cause = "none"
        if a.scenario == "drop_under_reuse":
            note.append("fixed_port" if 61000 <= row["local_port"] <= 61003 else "ephemeral_port")
        if row["reused_after_ms"] is not None:
            note.append("tuple used %.0f ms earlier" % row["reused_after_ms"])
        if first_dropped_by_rule:
            if a.scenario == "capture_cut" and a.cut_ns and row["start"] < a.cut_ns < row["start"] + 1_000_000_000:
                cause = "unanswered_at_capture_end"
            else:
                cause = "nft_random_syn_drop"
        elif lost_in_nat:
            cause = "lost_in_nat_unattributed"
            if a.scenario == "snat_exhaustion" and a.snat_ports and in_use >= a.snat_ports:
                cause = "snat_port_exhaustion"
            elif a.scenario == "insert_race" and in_use < max(a.snat_ports, 1):
                rivals = [(src, t) for (src, sp), lst in news.items()
                          if sp == row["local_port"] and src != row["local_ip"]
                          for t, p in lst
                          if p == row["local_port"] and abs(t - row["start"]) <= 10_000_000]
                if rivals:
                    cause = "conntrack_insert_race"
                    note.append("winner %s:%d +%.3f ms" % (
                        rivals[0][0], row["local_port"], (rivals[0][1] - row["start"]) / 1e6))
        out_rows.append((row, cause, new[1] if new else 0, through_ms, len(drops), in_use,
                         ";".join(note)))

    with open(a.truth, "w") as f:
        f.write("attempt\tlocal_port\tstart_unix_ns\tconnect_ns\toutcome\tcause\tlocal_ip"
                "\tclient_tuple\tsnat_port\tthrough_nat_ms\tnft_drops\tin_use\tnote\n")
        for row, cause, sp, tms, nd, iu, note in out_rows:
            f.write("%d\t%d\t%d\t%d\t%s\t%s\t%s\t%s\t%d\t%.3f\t%d\t%d\t%s\n" % (
                row["attempt"], row["local_port"], row["start"], row["connect"],
                row["outcome"], cause, row["local_ip"],
                "fresh" if row["reused_after_ms"] is None else "reused",
                sp, tms, nd, iu, note))

    causes = collections.Counter(c for _, c, *_ in out_rows)
    slow = sum(1 for r, *_ in out_rows if r["connect"] >= 200_000_000 or r["outcome"] != "ok")
    lost = sum(1 for r, c, sp, tms, *_ in out_rows if tms < 0 or tms >= 500)
    with open(a.records_out, "w") as f:
        f.write("# %s: the lab's own records (lab/lab.sh, lab/attribute.py), not the captures\n"
                % a.scenario)
        f.write("requests\t%d\n" % len(out_rows))
        f.write("requests_slow_or_failed_by_client_timer\t%d\n" % slow)
        f.write("requests_first_syn_lost_in_nat_by_conntrack_events\t%d\n" % lost)
        for k in sorted(delta):
            f.write("conntrack_S_delta_%s\t%d\n" % (k, delta[k]))
        for m in re.finditer(r'counter packets (\d+) bytes \d+ comment "(\w+)"',
                             open(a.nft).read()):
            f.write("nft_counter_%s\t%s\n" % (m.group(2), m.group(1)))
        f.write("nflog_dropped_syns\t%d\n" % len(nflog))
        if a.cut_ns:
            f.write("captures_stopped_unix_ns\t%d\n" % a.cut_ns)
        for c, n in sorted(causes.items()):
            f.write("cause_%s\t%d\n" % (c, n))
    print("[%s] causes %s; conntrack -S delta %s; nflog drops %d" % (
        a.scenario, dict(causes), delta, len(nflog)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
