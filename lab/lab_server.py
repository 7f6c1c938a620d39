#!/usr/bin/env python3
"""Tiny HTTP/1.0-style server for the pcapdiag namespace lab (runs inside the RS namespace).

It reads one request, answers, and closes the connection first, so the server side of every
finished connection sits in TIME_WAIT (like nginx answering HTTP/1.0 without keep-alive).
With --abort-every N, every N-th accepted connection is instead aborted after reading the
request: SO_LINGER {on, 0} + close() makes the kernel send a RST.

With --hold S, every connection is served in its own thread and held S seconds before the
answer; with --wait-close the server then waits (up to 5 s) for the client to close first,
so the real server keeps no TIME_WAIT.

The server stops by itself after --max-seconds or --max-conns, whichever comes first;
lab.sh also kills it by its PID.
"""
import argparse
import socket
import struct
import sys
import threading
import time

RESPONSE = (
    b"HTTP/1.0 200 OK\r\n"
    b"Content-Type: text/plain\r\n"
    b"Content-Length: 3\r\n"
    b"Connection: close\r\n"
    b"\r\n"
    b"ok\n"
)


def read_request(conn):
    """Read until the end of the headers, a closed peer, or 2 s of silence."""
    conn.settimeout(2.0)
    data = b""
    while b"\r\n\r\n" not in data and len(data) < 8192:
        try:
            chunk = conn.recv(4096)
        except (socket.timeout, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def serve(conn, accepted, args):
    try:
        read_request(conn)
        if args.hold > 0:
            time.sleep(args.hold)
        if args.abort_every and accepted % args.abort_every == 0:
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
        else:
            conn.settimeout(2.0)
            conn.sendall(RESPONSE)
            if args.wait_close:
                conn.settimeout(5.0)
                while conn.recv(4096):
                    pass
    except OSError:
        pass
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bind", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=8080)
    ap.add_argument("--abort-every", type=int, default=0,
                    help="abort (RST) every N-th accepted connection; 0 = never")
    ap.add_argument("--max-seconds", type=float, default=120.0)
    ap.add_argument("--max-conns", type=int, default=5000)
    ap.add_argument("--hold", type=float, default=0.0,
                    help="seconds to hold each connection before answering (threaded)")
    ap.add_argument("--wait-close", action="store_true",
                    help="after answering, wait for the client to close first")
    ap.add_argument("--ready-file", default="",
                    help="file to create once listening")
    args = ap.parse_args()

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.bind, args.port))
    srv.listen(128)
    srv.settimeout(0.5)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("listening\n")

    deadline = time.monotonic() + args.max_seconds
    accepted = 0
    while accepted < args.max_conns and time.monotonic() < deadline:
        try:
            conn, _peer = srv.accept()
        except socket.timeout:
            continue
        except OSError:
            continue
        accepted += 1
        if args.hold > 0 or args.wait_close:
            threading.Thread(target=serve, args=(conn, accepted, args), daemon=True).start()
        else:
            serve(conn, accepted, args)
    srv.close()
    for t in threading.enumerate():
        if t is not threading.current_thread():
            t.join(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
