#!/usr/bin/env python3
"""Measures flowd's memory under a burst of large hook calls (issue 14, finding 7).

Starts `flowd serve` (the binary given), creates a catch workflow, sends CALLS concurrent JSON
calls of about SIZE_MIB each, and prints the idle RSS, the peak (VmHWM), the RSS right after the
burst and every 5 s for 30 s, and the statuses answered. Extra arguments go to `flowd serve`.

    tools/body_memory.py target/release/flowd [--max-inflight-body-mb 1024 ...]
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

CALLS = int(os.environ.get("CALLS", "16"))
SIZE_MIB = int(os.environ.get("SIZE_MIB", "25"))
KEY = "measure-admin-key-0123456789"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def request(port, method, path, body=None, headers=None, timeout=300):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, data


def main():
    binary, extra = sys.argv[1], sys.argv[2:]
    port = free_port()
    data_dir = tempfile.mkdtemp(prefix="flowd-measure-")
    runtime_dir = os.environ.get("FLOWD_RUNTIME_DIR", f"/tmp/flowd-test-runtimes-{os.getuid()}")
    server = subprocess.Popen(
        [binary, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", data_dir,
         "--runtime-dir", runtime_dir, "--log", "warn", *extra],
        env={**os.environ, "FLOWD_ADMIN_API_KEY": KEY},
    )
    try:
        deadline = time.time() + 120
        while True:
            try:
                if request(port, "GET", "/readyz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            if time.time() > deadline:
                sys.exit("flowd did not start")
            time.sleep(0.2)
        code = "def workflow(_request, settings):\n    return {'n': len(_request['data'])}\n"
        status, data = request(
            port, "POST", "/api/v1/workflows",
            json.dumps({"name": "big", "mode": "catch", "code": code}),
            {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        assert status == 201, data
        hook = json.loads(data)["hook_url"]
        # Settle, then the idle figure.
        request(port, "POST", hook, b"{\"data\": \"x\"}", {"Content-Type": "application/json"})
        time.sleep(2)
        idle = status_kib(server.pid, "VmRSS")
        body = b'{"data": "' + b"x" * ((SIZE_MIB << 20) - 64) + b'"}'
        statuses = []

        def call():
            try:
                statuses.append(request(port, "POST", hook, body,
                                        {"Content-Type": "application/json"})[0])
            except OSError as error:
                statuses.append(str(error))

        threads = [threading.Thread(target=call) for _ in range(CALLS)]
        started = time.time()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - started
        peak = status_kib(server.pid, "VmHWM")
        after = [status_kib(server.pid, "VmRSS")]
        for _ in range(6):
            time.sleep(5)
            after.append(status_kib(server.pid, "VmRSS"))
        counts = {s: statuses.count(s) for s in set(statuses)}
        print(f"calls: {CALLS} x {SIZE_MIB} MiB in {took:.1f} s, statuses {counts}")
        print(f"idle RSS: {idle / 1024:.0f} MiB")
        print(f"peak RSS (VmHWM): {peak / 1024:.0f} MiB")
        print("RSS after, every 5 s: " + ", ".join(f"{kib / 1024:.0f}" for kib in after) + " MiB")
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
