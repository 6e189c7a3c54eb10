#!/usr/bin/env python3
"""Where a hook call's time goes: drives one hook at c=1 with flowd-bench's load generator under
`perf record` with scheduler and system-call tracepoints (no ptrace, a few µs of overhead per
event), then lines up, per call, the moments that mark each stage:

  load generator sends → flowd sends the job (to a fork parked ahead of need, isolation "fork",
  or to the warm instance itself, "reuse") → the result comes back → SQLite writes the WAL (the
  group commit) → flowd writes the response → the load generator reads it.

Needs root (or perf_event_paranoid ≤ -1) and `perf`. Usage, with flowd running:

  scripts/hot_path.py --flowd-pid PID --hook http://127.0.0.1:PORT/teams/default/NAME/python3.11/TOKEN

Prints the median and p90 of each stage. Only the time between two consecutive marks is known;
what happens inside a stage is described by its label.
"""

import argparse
import bisect
import os
import re
import statistics
import subprocess
import sys
import tempfile

EVENTS = [
    "sched:sched_process_fork",
    "sched:sched_process_exit",
    "syscalls:sys_enter_pwrite64",
    "syscalls:sys_exit_recvfrom",
    "syscalls:sys_enter_sendmsg",
    "syscalls:sys_enter_sendto",
    "syscalls:sys_enter_writev",
    "syscalls:sys_enter_write",
]
LINE = re.compile(r"^\s*(.+?)\s+(\d+)/(\d+)\s+([\d.]+):\s+(\S+):\s*(.*)$")


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as handle:
                stat = handle.read()
        except OSError:
            continue
        if int(stat[stat.rfind(")") + 2 :].split()[1]) == pid:
            out.append(int(entry))
    return out


def python_processes(flowd_pid):
    """Every warm instance (children of the zygote, itself a child of flowd)."""
    instances = set()
    for zygote in children(flowd_pid):
        instances.update(children(zygote))
    return instances


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flowd-pid", type=int, required=True)
    parser.add_argument("--hook", required=True, help="the hook URL (http://127.0.0.1:PORT/teams/…)")
    parser.add_argument("--json", default='{"name": "bench"}')
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument(
        "--bench",
        default=os.path.join(os.path.dirname(__file__), "../../../target/release/flowd-bench"),
    )
    args = parser.parse_args()

    instances = python_processes(args.flowd_pid)
    with tempfile.TemporaryDirectory() as scratch:
        data = os.path.join(scratch, "perf.data")
        record = ["perf", "record", "-a", "-q", "-o", data]
        for event in EVENTS:
            record += ["-e", event]
        drive = [args.bench, "--drive", args.hook, "--json", args.json, "-c", "1", "-n", str(args.requests)]
        subprocess.run(record + ["--"] + drive, check=True)
        script = subprocess.run(
            ["perf", "script", "-i", data, "-F", "comm,pid,tid,time,event,trace"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    events = []
    bench_pid = None
    for line in script.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        comm, pid, _tid, at, event, trace = match.groups()
        pid = int(pid)
        if bench_pid is None and comm.startswith("flowd-bench"):
            bench_pid = pid
        events.append((float(at), pid, event, trace))
    events.sort()
    forks = {}
    for at, pid, event, trace in events:
        if event == "sched:sched_process_fork" and pid in instances:
            child = int(re.search(r"child_pid=(\d+)", trace).group(1))
            forks[child] = at

    def times(predicate):
        return [at for at, pid, event, trace in events if predicate(pid, event, trace)]

    def returned_data(trace):
        value = trace.strip().split()[-1]
        return not value.startswith("0xffff") and int(value, 16) > 0

    bench_sent = times(lambda p, e, t: p == bench_pid and e in ("syscalls:sys_enter_writev", "syscalls:sys_enter_write", "syscalls:sys_enter_sendto") and "fd: 0x00000001" not in t)
    bench_read = times(lambda p, e, t: p == bench_pid and e == "syscalls:sys_exit_recvfrom" and returned_data(t))
    flowd_sent = times(lambda p, e, t: p == args.flowd_pid and e == "syscalls:sys_enter_sendto")
    wal = times(lambda p, e, t: p == args.flowd_pid and e == "syscalls:sys_enter_pwrite64")
    answered = times(lambda p, e, t: p == args.flowd_pid and e == "syscalls:sys_enter_writev")
    python_sent = {}
    exits = {}
    for at, pid, event, trace in events:
        if pid in forks or pid in instances:
            # Frames go out with send() or write() (the forks write theirs with os.write).
            if event in ("syscalls:sys_enter_sendto", "syscalls:sys_enter_write"):
                python_sent.setdefault(pid, []).append(at)
            elif event == "sched:sched_process_exit":
                exits[pid] = at
    all_python_sent = sorted(at for sends in python_sent.values() for at in sends)

    def after(values, at):
        index = bisect.bisect_right(values, at)
        return values[index] if index < len(values) else None

    def before(values, at):
        index = bisect.bisect_left(values, at)
        return values[index - 1] if index else None

    rows = []
    if forks:
        mode = "fork"
        for child, forked in forks.items():
            sends = python_sent.get(child, [])
            if len(sends) < 2 or child not in exits:
                continue
            # A fork is parked ahead of need: it says hello, then waits for a job; the job is the
            # last thing flowd sent before the fork's result.
            # Its first frame is its hello, its last one its result (a workflow that prints writes
            # in between).
            row = {"fork": forked, "hello": sends[0], "result": sends[-1], "exit": exits[child]}
            row["job"] = before(flowd_sent, row["result"])
            row["sent"] = before(bench_sent, row["job"]) if row["job"] else None
            row["wal"] = after(wal, row["result"])
            row["answer"] = after(answered, row["result"])
            row["read"] = after(bench_read, row["answer"]) if row["answer"] else None
            if (
                None not in row.values()
                and row["hello"] < row["job"] < row["result"]
                and row["sent"] < row["job"]
                and row["wal"] < row["answer"] < row["read"]
            ):
                rows.append(row)
        parked = sum(1 for row in rows if row["hello"] < row["sent"])
        mode += ", %d of the calls found their fork parked" % parked
        stages = [
            ("sent", "job", "HTTP request in, hook handler and engine, the job written to the fork"),
            ("job", "result", "fork: job decoded, settings parsed, workflow(), result encoded and sent"),
            ("result", "wal", "flowd reads the result, stops the fork's group, concludes; the commit writes the WAL"),
            ("wal", "answer", "commit ends, response built"),
            ("answer", "read", "HTTP response out"),
        ]
    else:
        mode = "reuse (no fork seen)"
        for result in all_python_sent:
            row = {"result": result, "job": before(flowd_sent, result)}
            row["sent"] = before(bench_sent, row["job"]) if row["job"] else None
            row["wal"] = after(wal, result)
            row["answer"] = after(answered, result)
            row["read"] = after(bench_read, row["answer"]) if row["answer"] else None
            if None not in row.values() and row["sent"] < row["job"] < result < row["wal"] < row["answer"] < row["read"]:
                rows.append(row)
        stages = [
            ("sent", "job", "HTTP request in, hook handler and engine, the job frame written to the instance"),
            ("job", "result", "instance: job decoded, settings parsed, workflow(), output flushed, result sent"),
            ("result", "wal", "flowd reads the result and drains the output pipe, concludes; the commit writes the WAL"),
            ("wal", "answer", "commit ends, response built"),
            ("answer", "read", "HTTP response out"),
        ]
    if not rows:
        sys.exit(
            "no complete call found in the trace (is --flowd-pid right?): %d forks, %d with two sends, "
            "%d bench sends, %d flowd sends, %d WAL writes, %d answers"
            % (len(forks), sum(1 for c in forks if len(python_sent.get(c, [])) >= 2), len(bench_sent),
               len(flowd_sent), len(wal), len(answered))
        )
    total = [(row["read"] - row["sent"]) * 1e3 for row in rows]
    print("%d calls traced, isolation %s; end to end: median %.3f ms" % (len(rows), mode, statistics.median(total)))
    print("%10s %10s  stage" % ("median", "p90"))
    for start, end, label in stages:
        spans = sorted((row[end] - row[start]) * 1e3 for row in rows)
        print("%7.3f ms %7.3f ms  %s" % (statistics.median(spans), spans[int(len(spans) * 0.9)], label))


if __name__ == "__main__":
    main()
