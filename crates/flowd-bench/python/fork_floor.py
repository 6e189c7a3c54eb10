"""The fork floor: fork + _exit + waitpid in a loop, in a process built like flowd's warm
instance (the same interpreter, flowd's runner module and preloads imported, the workflow's module
run, gc.freeze()), so that it has the same size.

argv[1]: JSON {"runner", "preload", "code", "count", "seconds", "procs"}.
Prints one JSON line: {"rss_kb", "serial_ns": [...], "parallel": {"forks", "seconds", "procs"}}.
"""

import gc
import importlib.util
import json
import os
import sys
import time


def prepare(config):
    spec = importlib.util.spec_from_file_location("flowd_runner", config["runner"])
    runner = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(runner)
    for name in config["preload"]:
        __import__(name)
    module = {"__name__": "workflow"}
    exec(compile(config["code"], "workflow.py", "exec"), module)
    gc.collect()
    gc.freeze()
    return runner, module


def rss_kb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def loop(count, seconds, keep):
    times = []
    deadline = time.perf_counter() + seconds
    done = 0
    while done < count and time.perf_counter() < deadline:
        start = time.perf_counter_ns()
        pid = os.fork()
        if pid == 0:
            os._exit(0)
        os.waitpid(pid, 0)
        if keep:
            times.append(time.perf_counter_ns() - start)
        done += 1
    return done, times


def main():
    config = json.loads(sys.argv[1])
    _kept = prepare(config)
    rss = rss_kb()
    _done, serial = loop(config["count"], config["seconds"], True)
    # Throughput: `procs` forking loops at once (one per core), each as large as the instance.
    procs = config["procs"]
    readers = []
    started = time.perf_counter()
    for _ in range(procs):
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            done, _ = loop(config["count"], config["seconds"], False)
            os.write(write_end, str(done).encode())
            os._exit(0)
        os.close(write_end)
        readers.append((pid, read_end))
    forks = 0
    for pid, read_end in readers:
        data = b""
        while True:
            chunk = os.read(read_end, 64)
            if not chunk:
                break
            data += chunk
        os.waitpid(pid, 0)
        forks += int(data or b"0")
    elapsed = time.perf_counter() - started
    print(json.dumps({"rss_kb": rss, "serial_ns": serial, "parallel": {"forks": forks, "seconds": elapsed, "procs": procs}}))


if __name__ == "__main__":
    main()
