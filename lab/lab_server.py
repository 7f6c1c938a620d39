#!/usr/bin/env python3
"""Tiny HTTP/1.0-style server for the pcapdiag namespace lab (runs inside the RS namespace).

It reads one request, answers, and closes the connection first, so the server side of every
finished connection sits in TIME_WAIT (like nginx answering HTTP/1.0 without keep-alive).
With --abort-every N, every N-th accepted connection is instead aborted after reading the
request: SO_LINGER {on, 0} + close() makes the kernel send a RST.

With --hold S, every connection is served in its own thread and held S seconds before the
answer; with --wait-close the server then waits (up to 5 s) for the client to close first,
so the real server keeps no TIME_WAIT.

With --body-bytes N the answer carries N bytes of body instead of "ok\n" (a larger answer
takes several segments, as a real page does); --split-header sends its head and its body
in two writes. With --workers N, N processes (forked, each
with its own SO_REUSEPORT listener) serve in parallel, --max-conns each.

The server stops by itself after --max-seconds or --max-conns, whichever comes first;
lab.sh also kills it by its PID (the workers stop with their parent: SIGTERM is passed on,
and each worker also stops at its own --max-seconds).
"""
import argparse
import os
import signal
import socket
import struct
import sys
import threading
import time



def response(body):
    return (
        b"HTTP/1.0 200 OK\r\n"
        b"Content-Type: text/plain\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n"
        b"Connection: close\r\n"
        b"\r\n" + body
    )


RESPONSE = response(b"ok\n")


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
            if args.split_header:
                # The head, then the body: two writes, as a server sending a file does.
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                head, sep, body = args.response.partition(b"\r\n\r\n")
                conn.sendall(head + sep)
                conn.sendall(body)
            else:
                conn.sendall(args.response)
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
    ap.add_argument("--body-bytes", type=int, default=0,
                    help="answer with this many bytes of body (0: \"ok\\n\")")
    ap.add_argument("--split-header", action="store_true",
                    help="send the answer's head and body in two writes (TCP_NODELAY)")
    ap.add_argument("--workers", type=int, default=1,
                    help="serving processes, each with its own SO_REUSEPORT listener")
    args = ap.parse_args()
    args.response = RESPONSE
    if args.body_bytes > 0:
        line = b"0123456789abcdef" * 4 + b"\n"
        body = (line * (args.body_bytes // len(line) + 1))[:args.body_bytes]
        args.response = response(body)

    if args.workers <= 1:
        serve_forever(args, listener(args, reuseport=False), args.ready_file)
        return 0
    # Several processes: each binds its own listener (SO_REUSEPORT) before the ready file
    # is written, so no connection is refused at the start.
    socks = [listener(args, reuseport=True) for _ in range(args.workers)]
    children = []
    for k in range(args.workers):
        pid = os.fork()
        if pid == 0:
            for j, other in enumerate(socks):
                if j != k:
                    other.close()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            serve_forever(args, socks[k], "")
            os._exit(0)
        children.append(pid)
    for sock in socks:
        sock.close()

    def pass_on(signum, _frame):
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass

    signal.signal(signal.SIGTERM, pass_on)
    signal.signal(signal.SIGINT, pass_on)
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            f.write("listening\n")
    for pid in children:
        while True:
            try:
                os.waitpid(pid, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    return 0


def listener(args, reuseport):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    srv.bind((args.bind, args.port))
    srv.listen(512 if reuseport else 128)
    srv.settimeout(0.5)
    return srv


def serve_forever(args, srv, ready_file):
    if ready_file:
        with open(ready_file, "w") as f:
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


if __name__ == "__main__":
    sys.exit(main())
