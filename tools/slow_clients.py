#!/usr/bin/env python3
"""Holds many slow clients open against a running flowd and times `/healthz` (issue 14, finding 5).

Opens COUNT connections to ADDRESS, half stopping in their headers and half in their body, then
times `GET /healthz` over a new connection, and counts how many of the slow ones the server has
closed after WAIT seconds. The body of the slow ones goes to `POST /api/v1/workflows`, which reads
it, with the admin key in FLOWD_API_KEY.

    FLOWD_API_KEY=... tools/slow_clients.py 127.0.0.1:8080 [COUNT=20000] [WAIT=15]
"""
import os
import resource
import socket
import sys
import time


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    wait = float(sys.argv[3]) if len(sys.argv) > 3 else 15
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    slow_body = (
        "POST /api/v1/workflows HTTP/1.1\r\nHost: flowd\r\n"
        f"Authorization: Bearer {os.environ['FLOWD_API_KEY']}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"
    ).encode()
    slow = []
    started = time.time()
    for i in range(count):
        s = socket.create_connection((host, int(port)))
        if i % 2:
            s.sendall(b"POST /healthz HTTP/1.1\r\nHost: flowd\r\nX-Slow: ")
        else:
            s.sendall(slow_body)
        slow.append(s)
    print(f"{count} slow connections open in {time.time() - started:.1f} s")
    for attempt in range(3):
        t = time.time()
        probe = socket.create_connection((host, int(port)), timeout=30)
        probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: flowd\r\nConnection: close\r\n\r\n")
        answer = probe.recv(100)
        probe.close()
        status_line = answer.split(b"\r\n")[0].decode()
        print(f"/healthz: {status_line} in {(time.time() - t) * 1000:.0f} ms")
    time.sleep(wait)
    closed = 0
    for s in slow:
        s.setblocking(False)
        try:
            if s.recv(4096) is not None:
                closed += 1
        except BlockingIOError:
            pass
        except OSError:
            closed += 1
    print(f"after {wait:.0f} s: {closed} of {count} slow connections closed by the server")


if __name__ == "__main__":
    main()
