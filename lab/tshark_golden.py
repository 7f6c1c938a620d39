#!/usr/bin/env python3
"""Write tshark's tcp.analysis verdicts for one capture as a TSV golden file.

Usage: tshark_golden.py [--tcp-only] CAPTURE OUTPUT_TSV

With --tcp-only (the public corpora, where most frames are not TCP): only the rows of TCP
frames are written, and no file at all when the capture has none.

Output: header `frame<TAB>stream<TAB>flags`, then one row per frame of the capture (all frames;
a frame without a top-level TCP header has an empty stream and empty flags). `flags` is the
comma-separated, alphabetically sorted list of the short names (without `tcp.analysis.`) of the
flags below that tshark set on the frame.

Method: `tshark -T pdml` (the full protocol tree), parsed incrementally. Several of these
fields are FT_NONE and `-T fields -e` does not reliably print them across tshark versions;
the tree always has them. Only a TCP header that is a direct layer of the packet counts:
the TCP header quoted inside an ICMP error (nested under the icmp element) is not analysed
by Wireshark and is ignored here, like any other non-TCP frame.

Determinism: the caller runs tshark with an empty personal configuration directory
(WIRESHARK_CONFIG_DIR), no name resolution (-n), single pass: with -2, tshark 4.0 re-runs
the SYN-ACK reused-ports check against the final base sequence and can flag earlier
SYN-ACKs too (docs/wireshark-tcp-analysis.md §1); the first pass is what a reader of the
file sees packet by packet.
"""
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

FLAGS = [
    "reused_ports", "ack_lost_segment", "lost_segment", "retransmission",
    "spurious_retransmission", "fast_retransmission", "out_of_order", "duplicate_ack",
    "keep_alive", "keep_alive_ack", "zero_window", "zero_window_probe",
    "zero_window_probe_ack", "window_update", "window_full",
]
FIELD_TO_FLAG = {"tcp.analysis." + f: f for f in FLAGS}


def frame_number(packet):
    for proto in packet.findall("proto"):
        if proto.get("name") == "geninfo":
            for field in proto.findall("field"):
                if field.get("name") == "num":
                    return int(field.get("show"))
        if proto.get("name") == "frame":
            for field in proto.findall("field"):
                if field.get("name") == "frame.number":
                    return int(field.get("show"))
    raise ValueError("packet without frame number")


def tcp_row(packet):
    """(stream, sorted flags) from the first top-level tcp layer, or ('', [])."""
    for proto in packet.findall("proto"):
        if proto.get("name") != "tcp":
            continue
        stream = ""
        flags = set()
        for field in proto.iter("field"):
            name = field.get("name")
            if name == "tcp.stream" and stream == "":
                stream = field.get("show", "")
            elif name in FIELD_TO_FLAG:
                flags.add(FIELD_TO_FLAG[name])
        return stream, sorted(flags)
    return "", []


def main():
    args = sys.argv[1:]
    tcp_only = bool(args) and args[0] == "--tcp-only"
    if tcp_only:
        args = args[1:]
    if len(args) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    capture, out_path = args
    cmd = ["tshark", "-n", "-r", capture, "-T", "pdml"]
    # tshark's warnings go to a file: a pipe that nobody reads while the PDML is parsed
    # fills up and blocks tshark (it did on a suricata-verify capture).
    errfile = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errfile)
    rows = []
    expected = 1
    for event, elem in ET.iterparse(proc.stdout, events=("end",)):
        if elem.tag != "packet":
            continue
        num = frame_number(elem)
        if num != expected:
            raise SystemExit("%s: frame %d out of order (expected %d)" % (capture, num, expected))
        expected += 1
        stream, flags = tcp_row(elem)
        if stream or not tcp_only:
            rows.append("%d\t%s\t%s" % (num, stream, ",".join(flags)))
        elem.clear()
    rc = proc.wait()
    errfile.seek(0)
    err = errfile.read().decode(errors="replace")
    if rc != 0:
        # tshark exits 2 on a cut-off last record but has printed every frame before it.
        print("%s: tshark exit %d: %s" % (capture, rc, err.strip()), file=sys.stderr)
    if tcp_only and not rows:
        return 0
    with open(out_path, "w") as f:
        f.write("frame\tstream\tflags\n")
        for r in rows:
            f.write(r + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
