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

Bounded: --count attempts, each with timeouts, and an overall --max-seconds.
"""
import argparse
import errno
import select
import socket
import sys
import time

REQUEST = b"GET / HTTP/1.0\r\nHost: vip\r\nUser-Agent: pcapdiag-lab\r\n\r\n"


def parse_target(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


def attempt_once(target, connect_timeout, read_timeout, bind_ip):
    """Return (local_port, start_unix_ns, connect_ns, outcome)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if bind_ip:
            s.bind((bind_ip, 0))
        s.setblocking(False)
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
            while True:
                chunk = s.recv(4096)
                if not chunk:
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
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--interval", type=float, default=0.05,
                    help="pause between attempts, seconds")
    ap.add_argument("--connect-timeout", type=float, default=5.0)
    ap.add_argument("--read-timeout", type=float, default=3.0)
    ap.add_argument("--max-seconds", type=float, default=50.0)
    ap.add_argument("--bind", default="", help="local IP to bind (port stays ephemeral)")
    ap.add_argument("--out", required=True, help="truth TSV to write")
    args = ap.parse_args()

    target = parse_target(args.target)
    alt = parse_target(args.alt_target) if args.alt_target else None
    deadline = time.monotonic() + args.max_seconds
    rows = []
    for i in range(1, args.count + 1):
        if time.monotonic() >= deadline:
            break
        tgt = alt if (alt and args.alt_every and i % args.alt_every == 0) else target
        remaining = max(0.1, deadline - time.monotonic())
        lp, start, cns, outcome = attempt_once(
            tgt, min(args.connect_timeout, remaining), args.read_timeout, args.bind)
        rows.append((i, lp, start, cns, outcome))
        if args.interval > 0 and i < args.count:
            time.sleep(args.interval)

    with open(args.out, "w") as f:
        f.write("attempt\tlocal_port\tstart_unix_ns\tconnect_ns\toutcome\n")
        for r in rows:
            f.write("\t".join(str(x) for x in r) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
