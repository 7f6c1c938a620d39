#!/usr/bin/env python3
"""Splits captures (paths NUL-separated on stdin) into `decode` fuzz inputs in the
directory given: per frame, a 2-byte link-type selector, a 2-byte uncaptured length and the
frame bytes. Classic pcap (both byte orders, Kuznetzov's format) and pcapng; stdlib only.
Used by seed.sh."""
import gzip, hashlib, os, struct, sys

out = sys.argv[1]
# Must match LINKTYPES in fuzz_targets/decode.rs.
LINKTYPES = [1, 113, 276, 101, 228, 229, 0, 108, 12, 14, 147]
PER_FILE = 64

def frames(b):
    """(linktype, captured bytes, orig_len) of each packet; stops quietly at damage."""
    if len(b) < 24:
        return
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d",
                 b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34"):
        e = "<" if magic[0] in (0xd4, 0x4d, 0x34) else ">"
        lt = struct.unpack(e + "I", b[20:24])[0] & 0xFFFF
        extra = 8 if magic in (b"\x34\xcd\xb2\xa1", b"\xa1\xb2\xcd\x34") else 0  # Kuznetzov
        i = 24
        while i + 16 + extra <= len(b):
            incl, orig = struct.unpack(e + "II", b[i + 8:i + 16])
            data = b[i + 16 + extra:i + 16 + extra + incl]
            if len(data) < incl:
                return
            yield lt, data, orig
            i += 16 + extra + incl
    elif magic == b"\x0a\x0d\x0d\x0a":
        i, e, ifaces = 0, "<", []
        while i + 12 <= len(b):
            t = b[i:i + 4]
            if t == b"\x0a\x0d\x0d\x0a":
                e = "<" if b[i + 8:i + 12] == b"\x4d\x3c\x2b\x1a" else ">"
                ifaces = []
            btype, blen = struct.unpack(e + "II", b[i:i + 8])
            if blen < 12 or i + blen > len(b):
                return
            body = b[i + 8:i + blen - 4]
            if btype == 1 and len(body) >= 2:
                ifaces.append(struct.unpack(e + "H", body[:2])[0])
            elif btype == 6 and len(body) >= 20:
                iid, _, _, incl, orig = struct.unpack(e + "IIIII", body[:20])
                if iid < len(ifaces):
                    yield ifaces[iid], body[20:20 + incl], orig
            elif btype == 3 and len(body) >= 4 and ifaces:
                orig = struct.unpack(e + "I", body[:4])[0]
                yield ifaces[0], body[4:4 + orig], orig
            i += blen

count = 0
for path in sys.stdin.read().split("\0"):
    if not path:
        continue
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except Exception:
            continue
    for k, (lt, data, orig) in enumerate(frames(raw)):
        if k == PER_FILE:
            break
        sel = LINKTYPES.index(lt) if lt in LINKTYPES else 0x8000 | (lt & 0x7FFF)
        unc = min(max(orig - len(data), 0), 0xFFFF)
        blob = struct.pack(">HH", sel, unc) + data
        name = hashlib.sha1(blob).hexdigest()
        p = os.path.join(out, name)
        if not os.path.exists(p):
            with open(p, "wb") as f:
                f.write(blob)
            count += 1
print(f"decode: {count} new frame seeds, {len(os.listdir(out))} in {out}")
