#!/usr/bin/env python3
"""Bounded client loop for the pcapdiag namespace lab (runs inside the client namespace).

Makes a fixed number of sequential connections to the VIP, sends a one-line HTTP/1.0 request,
reads the answer until the server closes, then closes. Every attempt is measured by the client
itself and written as one TSV row (the lab's ground truth):

    attempt  local_port  start_unix_ns  connect_ns  outcome

- attempt: 1-based attempt number.
- local_port: the client's ephemeral port (known as soon as connect() starts).
- start_unix_ns: CLOCK_REALTIME in ns just before connect().
- connect_ns: ns from the connect() call until the handshake completed or failed
  (for a timeout: until the client gave up).
- outcome: ok (answer read to EOF), refused (RST to the SYN, ECONNREFUSED),
  timeout (no handshake within --connect-timeout, or no answer within --read-timeout),
  reset (connection established, then reset by the peer).
- local_ip (last column): the client's source address.

Modes (all bounded):
- default: sequential attempts.
- --concurrency N: N threads share the --count attempts (each runs one at a time).
- --fixed-ports A-B --fixed-every K: every K-th attempt (1st, K+1-th, ...) binds its source
  port to the next port of A..B in turn (SO_REUSEADDR), the others use ephemeral ports.
- --race-sources IP1,IP2 --race-port-base P --rounds R: one process per source address,
  pinned to its own CPU; in round r both processes busy-wait for the same instant and
  connect from (IPi, P + r): the same source port from both addresses at the same time.
- --client-closes: read the answer (up to its end) and close first, so the real server
  keeps no TIME_WAIT (the client does, on its own ports).

Bounded: --count attempts, each with timeouts, and an overall --max-seconds.
"""
import argparse
import errno
import os
import select
import socket
import sys
import threading
import time

REQUEST = b"GET / HTTP/1.0\r\nHost: vip\r\nUser-Agent: pcapdiag-lab\r\n\r\n"


def parse_target(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def attempt_once(target, connect_timeout, read_timeout, bind_ip, bind_port=0,
                 client_closes=False, at_ns=0):
    """Return (local_port, start_unix_ns, connect_ns, outcome).

    bind_port: a fixed source port (SO_REUSEADDR). at_ns: CLOCK_REALTIME instant to
    busy-wait for before connect() (0: now)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if bind_port:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if bind_ip or bind_port:
            s.bind((bind_ip or "0.0.0.0", bind_port))
        s.setblocking(False)
        while at_ns and time.time_ns() < at_ns:
            pass
        start_unix = time.time_ns()
        t0 = time.monotonic_ns()
        rc = s.connect_ex(target)
        try:
            local_port = s.getsockname()[1]
        except OSError:
            local_port = 0
        if rc not in (0, errno.EINPROGRESS):
            return local_port, start_unix, time.monotonic_ns() - t0, outcome_of(rc)
        if rc == errno.EINPROGRESS:
            p = select.poll()
            p.register(s, select.POLLOUT | select.POLLERR | select.POLLHUP)
            events = p.poll(int(connect_timeout * 1000))
            t1 = time.monotonic_ns()
            if not events:
                return local_port, start_unix, t1 - t0, "timeout"
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return local_port, start_unix, t1 - t0, outcome_of(err)
        else:
            t1 = time.monotonic_ns()
        connect_ns = t1 - t0

        # Established: send the request, read to EOF.
        s.setblocking(True)
        s.settimeout(read_timeout)
        try:
            s.sendall(REQUEST)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
                if client_closes and answer_complete(data):
                    break
        except socket.timeout:
            return local_port, start_unix, connect_ns, "timeout"
        except ConnectionResetError:
            return local_port, start_unix, connect_ns, "reset"
        except OSError as e:
            return local_port, start_unix, connect_ns, outcome_of(e.errno)
        return local_port, start_unix, connect_ns, "ok"
    finally:
        s.close()


def answer_complete(data):
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":", 1)[1])
    return False


def parse_range(s):
    """'A-B' or 'A,B,C' -> list of ints."""
    if not s:
        return []
    if "-" in s:
        a, b = s.split("-")
        return list(range(int(a), int(b) + 1))
    return [int(x) for x in s.split(",")]


def run_race(args, target):
    """One forked process per source address, each pinned to its own CPU; round r: both
    connect from port base+r at the same instant. Returns the rows of all processes."""
    sources = args.race_sources.split(",")
    ncpu = os.cpu_count() or 1
    t0 = time.time_ns() + 300_000_000
    period = int(args.interval * 1e9)
    children = []
    for k, src in enumerate(sources):
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.sched_setaffinity(0, {k % ncpu})
            except OSError:
                pass
            out = []
            deadline = time.monotonic() + args.max_seconds
            for rnd in range(args.rounds):
                if time.monotonic() >= deadline:
                    break
                at = t0 + rnd * period
                lp, start, cns, outcome = attempt_once(
                    target, args.connect_timeout, args.read_timeout, src,
                    args.race_port_base + rnd, args.client_closes, at)
                out.append((rnd + 1, lp, start, cns, outcome, src))
            with os.fdopen(w, "w") as f:
                for row in out:
                    f.write("\t".join(str(x) for x in row) + "\n")
            os._exit(0)
        os.close(w)
        children.append((pid, r))
    rows = []
    for pid, r in children:
        with os.fdopen(r) as f:
            for line in f:
                a = line.rstrip("\n").split("\t")
                rows.append((int(a[0]), int(a[1]), int(a[2]), int(a[3]), a[4], a[5]))
        os.waitpid(pid, 0)
    rows.sort(key=lambda x: (x[2], x[5]))
    return [(i + 1,) + row[1:] for i, row in enumerate(rows)]


def outcome_of(err):
    if err == errno.ECONNREFUSED:
        return "refused"
    if err in (errno.ECONNRESET, errno.EPIPE):
        return "reset"
    if err in (errno.ETIMEDOUT, errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "timeout"
    return "error_" + (errno.errorcode.get(err, str(err)).lower())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True, help="VIP:port")
    ap.add_argument("--alt-target", default="", help="VIP:port used every --alt-every attempts")
    ap.add_argument("--alt-every", type=int, default=0)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--interval", type=float, default=0.05,
                    help="pause between attempts, seconds")
    ap.add_argument("--connect-timeout", type=float, default=5.0)
    ap.add_argument("--read-timeout", type=float, default=3.0)
    ap.add_argument("--max-seconds", type=float, default=50.0)
    ap.add_argument("--bind", default="", help="local IP to bind (port stays ephemeral)")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--fixed-ports", default="", help="A-B: source ports to reuse")
    ap.add_argument("--fixed-every", type=int, default=1)
    ap.add_argument("--client-closes", action="store_true")
    ap.add_argument("--race-sources", default="")
    ap.add_argument("--race-port-base", type=int, default=40000)
    ap.add_argument("--rounds", type=int, default=0)
    ap.add_argument("--out", required=True, help="truth TSV to write")
    args = ap.parse_args()

    target = parse_target(args.target)
    alt = parse_target(args.alt_target) if args.alt_target else None
    fixed = parse_range(args.fixed_ports)
    deadline = time.monotonic() + args.max_seconds
    rows = []
    lock = threading.Lock()
    state = {"next": 1}
    local_ip = args.bind or ""

    def worker():
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i > args.count or time.monotonic() >= deadline:
                return
            tgt = alt if (alt and args.alt_every and i % args.alt_every == 0) else target
            port = 0
            if fixed and (i - 1) % args.fixed_every == 0:
                port = fixed[((i - 1) // args.fixed_every) % len(fixed)]
            remaining = max(0.1, deadline - time.monotonic())
            lp, start, cns, outcome = attempt_once(
                tgt, min(args.connect_timeout, remaining), args.read_timeout, args.bind,
                port, args.client_closes)
            with lock:
                rows.append((i, lp, start, cns, outcome, local_ip))
            if args.interval > 0 and i < args.count:
                time.sleep(args.interval)

    if args.race_sources:
        rows = run_race(args, target)
    elif args.concurrency > 1:
        threads = [threading.Thread(target=worker, daemon=True)
                   for _ in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(max(0.1, deadline - time.monotonic() + args.connect_timeout + 5))
        rows.sort(key=lambda r: r[0])
    else:
        worker()

    with open(args.out, "w") as f:
        f.write("attempt\tlocal_port\tstart_unix_ns\tconnect_ns\toutcome\tlocal_ip\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
