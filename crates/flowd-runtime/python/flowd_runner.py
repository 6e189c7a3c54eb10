"""flowd's Python side: the base process ("zygote"), warm instances and execution forks.

Three levels of process (see ARCHITECTURE.md):

1. The zygote, started by flowd, imports this file and the preloaded libraries and never runs
   user code. It validates code (parsing only) and forks warm instances on request.
2. A warm instance per code version runs the module's top level once, then forks once per
   execution.
3. An execution fork reads its request and settings, calls ``workflow()``, sends back the result
   and exits, so that no execution sees another's globals.

Every message is a frame: a 4-byte little-endian length, then ``marshal.dumps(value, 2)`` of a
dict. File descriptors travel with SCM_RIGHTS on the first byte of a frame. What this file sends
back is parsed strictly by flowd: the process that sends it runs untrusted code.
"""

import ast
import gc
import inspect
import io
import json
import linecache
import marshal
import os
import resource
import selectors
import signal
import socket
import struct
import sys
import tempfile
import time
import traceback
import types

# Everything an execution needs is imported here, once, in the base process: an import in the
# per-call path would cost milliseconds on every call.

PROTOCOL_VERSION = 1
HEADER = struct.Struct("<I")
MAX_CONTROL_FRAME = 256 * 1024 * 1024
OPAQUE = "<opaque>"

# An execution fork's first steps, prepared once: every object made and every page written
# between the fork and the call is paid on every call (copy-on-write). `signal.signal` goes
# through enum conversions, `_signal.signal` does not; the hello frame is pre-encoded around its
# pid (marshal writes an int that fits 32 bits as "i" and 4 little-endian bytes).
import _signal

_SIGCHLD = int(signal.SIGCHLD)
_SIG_DFL = int(signal.SIG_DFL)
_PID = struct.Struct("<i")
_HELLO_SAMPLE = marshal.dumps({"t": "hello", "pid": 0x7EADBEEF}, 2)
_HELLO_AT = _HELLO_SAMPLE.index(_PID.pack(0x7EADBEEF))
HELLO_HEAD = HEADER.pack(len(_HELLO_SAMPLE)) + _HELLO_SAMPLE[:_HELLO_AT]
HELLO_TAIL = _HELLO_SAMPLE[_HELLO_AT + _PID.size :]


# --------------------------------------------------------------------------- framing


# Room for the fds one read may bring (SCM_RIGHTS): a frame carries at most two.
_FD_SPACE = socket.CMSG_SPACE(8 * 4)


def read_frame(receive, source, pending=b""):
    """The next frame's value, and what was read beyond it (the start of the next frame).
    `receive(source, wanted)` reads up to `wanted` more bytes (none at the end): `os.read` on a
    raw fd, as an execution fork reads its job (no object to make in the fork: each costs it
    copy-on-write faults), or `Channel._receive` on a channel. `pending`: what the previous call
    read beyond its frame."""
    data = pending
    while len(data) < HEADER.size:
        more = receive(source, 1 << 16)
        if not more:
            raise EOFError
        data += more
    (length,) = HEADER.unpack_from(data)
    if length > MAX_CONTROL_FRAME:
        raise ValueError("frame too large")
    end = HEADER.size + length
    if len(data) < end:
        chunks = [data]
        missing = end - len(data)
        while missing > 0:
            more = receive(source, min(max(missing, 1 << 16), 1 << 20))
            if not more:
                raise EOFError
            chunks.append(more)
            missing -= len(more)
        data = b"".join(chunks)
    return marshal.loads(memoryview(data)[HEADER.size : end]), data[end:]


def write_frame(fd, message):
    """Sends one frame on `fd` with write(): no socket object is needed (an execution fork has
    none), and every frame leaves a process the same way."""
    payload = marshal.dumps(message, 2)
    frame = memoryview(HEADER.pack(len(payload)) + payload)
    while frame:
        frame = frame[os.write(fd, frame) :]


class Channel:
    """A framed, fd-carrying connection over a Unix stream socket."""

    def __init__(self, sock):
        self.sock = sock
        # What was read beyond the last frame.
        self.pending = b""
        self.fds = []

    def _receive(self, wanted):
        # The fds come close-on-exec: none of them goes to a program a workflow runs.
        data, ancillary, _flags, _addr = self.sock.recvmsg(wanted, _FD_SPACE, socket.MSG_CMSG_CLOEXEC)
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                self.fds.extend(struct.unpack("%di" % (len(payload) // 4), payload[: len(payload) // 4 * 4]))
        return data

    def receive(self):
        """The next frame's value, and the fds it carries (``nfds`` in the frame)."""
        message, self.pending = read_frame(Channel._receive, self, self.pending)
        nfds = message.get("nfds", 0) if isinstance(message, dict) else 0
        fds, self.fds = self.fds[:nfds], self.fds[nfds:]
        return message, fds

    def has_frame(self):
        if len(self.pending) < HEADER.size:
            return False
        (length,) = HEADER.unpack_from(self.pending)
        return len(self.pending) >= HEADER.size + length

    def send(self, message):
        write_frame(self.sock.fileno(), message)


# --------------------------------------------------------------------------- validation

# A parameter of `workflow` by this name (after the mode's, or keyword-only) gets the execution's
# context (see `Context`).
CONTEXT_PARAMETER = "context"


def validate(code, arity):
    """Parses ``code`` (never runs it) and checks it defines ``workflow`` taking ``arity``
    positional parameters. Returns None, or (message, line, column)."""

    try:
        tree = ast.parse(code, filename="workflow.py")
    except SyntaxError as error:
        return (
            "%s: %s" % (type(error).__name__, error.msg),
            error.lineno or 1,
            error.offset or 1,
        )
    except (ValueError, RecursionError, MemoryError) as error:
        return ("the code cannot be parsed: %s" % error, 1, 1)
    functions = [
        node
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == "workflow"
    ]
    expected = "def workflow(_request, settings)" if arity == 2 else "def workflow(settings)"
    if not functions:
        return ("the code must define a top-level function: %s" % expected, 1, 1)
    node = functions[-1]
    args = node.args
    names = [a.arg for a in args.posonlyargs + args.args]
    positional = len(names)
    required = positional - len(args.defaults)
    if len(names) > arity and names[arity] == CONTEXT_PARAMETER:
        # `context` after the mode's parameters is flowd's to fill, not the caller's.
        if arity < required:
            required -= 1
        positional -= 1
    kw_required = [
        a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None and a.arg != CONTEXT_PARAMETER
    ]
    fits = required <= arity and (positional >= arity or args.vararg is not None) and not kw_required
    if not fits:
        return (
            "workflow takes %s; this mode calls it with %d positional parameter%s: %s"
            % (
                describe_parameters(positional, required, args.vararg is not None, kw_required),
                arity,
                "" if arity == 1 else "s",
                expected,
            ),
            node.lineno,
            node.col_offset + 1,
        )
    return None


def describe_parameters(positional, required, vararg, kw_required):
    if kw_required:
        return "required keyword-only parameters (%s)" % ", ".join(kw_required)
    if required > positional or (required == positional and not vararg):
        return "%d positional parameter%s" % (required, "" if required == 1 else "s")
    return "%d to %d positional parameters" % (required, positional)


# --------------------------------------------------------------------------- zygote


def zygote_main(config):
    control = Channel(socket.socket(fileno=os.dup(0)))
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.close(devnull)
    for name in config.get("preload", []):
        try:
            __import__(name)
        except Exception as error:  # a missing preload is reported, not fatal
            sys.stderr.write("flowd: preload of %r failed: %s\n" % (name, error))
            sys.stderr.flush()
    # Instances are reaped by the kernel; flowd learns of their end from their socket.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    gc.collect()
    gc.freeze()
    control.send({"t": "ready", "pid": os.getpid(), "protocol": PROTOCOL_VERSION, "layers": probe_layers()})
    while True:
        try:
            message, fds = control.receive()
        except EOFError:
            os._exit(0)
        op = message.get("op")
        if op == "validate":
            problem = validate(message["code"], message["arity"])
            if problem is None:
                control.send({"ok": True})
            else:
                control.send({"ok": False, "message": problem[0], "line": problem[1], "column": problem[2]})
        elif op == "spawn":
            pid = os.fork()
            if pid == 0:
                try:
                    control.sock.close()
                    instance_main(message, fds)
                finally:
                    os._exit(70)
            for fd in fds:
                os.close(fd)
            control.send({"ok": True, "pid": pid})
        else:
            for fd in fds:
                os.close(fd)
            control.send({"ok": False, "message": "unknown op %r" % (op,)})


# --------------------------------------------------------------------------- warm instance


class WorkflowModule:
    """The user's module, initialised once per warm instance."""

    def __init__(self, code, mode):
        self.mode = mode
        self.module = types.ModuleType("workflow")
        self.module.__file__ = "workflow.py"
        sys.modules["workflow"] = self.module
        linecache.cache["workflow.py"] = (len(code), None, code.splitlines(True), "workflow.py")
        compiled = compile(code, "workflow.py", "exec")
        exec(compiled, self.module.__dict__)
        function = self.module.__dict__.get("workflow")
        if not callable(function):
            raise TypeError("the code does not define a callable named workflow")
        self.function = function
        # Inspected once per version, here, never per call.
        self.context_passing = context_passing(function, 2 if mode == "catch" else 1)


def context_passing(function, arity):
    """How `function` takes the execution context: None (it declares no `context` parameter),
    "positional" (a positional-only one, after the mode's `arity` parameters) or "keyword"."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return None
    for index, parameter in enumerate(parameters):
        if parameter.name != CONTEXT_PARAMETER:
            continue
        if parameter.kind == inspect.Parameter.KEYWORD_ONLY:
            return "keyword"
        if parameter.kind == inspect.Parameter.POSITIONAL_ONLY and index == arity:
            return "positional"
        if parameter.kind == inspect.Parameter.POSITIONAL_OR_KEYWORD and index >= arity:
            return "keyword"
    return None


class Context:
    """What a workflow declaring a `context` parameter learns about its execution (CONTRACT.md
    §2 "The execution context"). Times are Unix seconds (floats)."""

    __slots__ = (
        "raw_body",
        "method",
        "query_string",
        "execution_id",
        "workflow",
        "version",
        "trigger",
        "attempt",
        "fire_time",
        "deadline",
    )

    def __init__(self, fields):
        for name in Context.__slots__:
            setattr(self, name, fields.get(name))

    def remaining_s(self):
        """Seconds left before the execution's time limit (0 once it has passed)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.time())

    def __repr__(self):
        return "Context(execution_id=%r, workflow=%r, version=%r, trigger=%r, attempt=%r)" % (
            self.execution_id,
            self.workflow,
            self.version,
            self.trigger,
            self.attempt,
        )


def instance_main(spawn, fds):
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    channel = Channel(socket.socket(fileno=fds[0]))
    # `isolation: "reuse"`: the write end of the instance's output pipe, kept for its lifetime.
    output_fd = fds[1] if len(fds) > 1 else None
    for fd in fds:
        # Neither the control socket nor the output pipe goes to a program a workflow runs.
        os.set_inheritable(fd, False)
    try:
        enter_sandbox(spawn)
    except BaseException as error:
        channel.send({"t": "init_failed", "error": {"type": "SandboxError", "message": "the sandbox could not be set up: %s" % error, "traceback": None}, "output": ""})
        os._exit(0)
    tmp_dir = spawn.get("tmp_dir")
    if tmp_dir:
        os.chdir(tmp_dir)
        os.environ["TMPDIR"] = tmp_dir
        os.environ["HOME"] = tmp_dir

        tempfile.tempdir = tmp_dir
    for key, value in spawn.get("env", {}).items():
        os.environ[key] = value

    captured = io.StringIO()
    real_stdout, real_stderr = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = captured
    try:
        workflow = WorkflowModule(spawn["code"], spawn["mode"])
    except BaseException as error:
        sys.stdout, sys.stderr = real_stdout, real_stderr
        channel.send({"t": "init_failed", "error": describe_error(error, skip=1), "output": captured.getvalue()})
        os._exit(0)
    sys.stdout, sys.stderr = real_stdout, real_stderr
    # Executions print line by line (what a run printed before a timeout is kept); set once here
    # rather than in every fork.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True)
        except (AttributeError, ValueError):
            pass
    gc.collect()
    gc.freeze()
    ready = {"t": "ready", "pid": os.getpid(), "output": captured.getvalue()}
    if workflow.context_passing is not None:
        ready["context"] = True
    channel.send(ready)
    if spawn.get("isolation") == "reuse" and output_fd is not None:
        serve_reuse(workflow, channel, output_fd)
        os._exit(0)

    wake_read, wake_write = os.pipe()
    os.set_blocking(wake_write, False)
    os.set_blocking(wake_read, False)
    signal.set_wakeup_fd(wake_write)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    selector = selectors.DefaultSelector()
    selector.register(channel.sock, selectors.EVENT_READ, "control")
    selector.register(wake_read, selectors.EVENT_READ, "children")
    while True:
        for key, _ in selector.select():
            if key.data == "children":
                try:
                    while os.read(wake_read, 512):
                        pass
                except BlockingIOError:
                    pass
                reap_children(channel)
                continue
            while True:
                try:
                    message, fds = channel.receive()
                except EOFError:
                    os._exit(0)
                if message.get("op") == "run" and len(fds) == 2:
                    pid = os.fork()
                    if pid == 0:
                        try:
                            # The child must not keep the instance's channel: it carries other
                            # executions' sockets. Raw closes: no Python objects torn down.
                            gc.disable()
                            for fd in (selector.fileno(), wake_read, wake_write, channel.sock.detach()):
                                os.close(fd)
                            execution_main(workflow, fds[0], fds[1])
                        finally:
                            os._exit(71)
                for fd in fds:
                    os.close(fd)
                # Several commands may have arrived in one read: serve them all before waiting.
                if not channel.has_frame():
                    break


def reap_children(channel):
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if os.WIFSIGNALED(status):
            channel.send({"t": "exit", "pid": pid, "signal": os.WTERMSIG(status)})
        else:
            channel.send({"t": "exit", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


# --------------------------------------------------------------------------- sandbox layers
#
# Applied by each warm instance to itself before the module's top level runs; every execution
# fork inherits them. The base process probes which layers this kernel offers and reports them
# to flowd, which logs them and shows them in GET /api/v1/system.

import ctypes
import platform

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.restype = ctypes.c_int

PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

SYS_LANDLOCK_CREATE_RULESET = 444
SYS_LANDLOCK_ADD_RULE = 445
SYS_LANDLOCK_RESTRICT_SELF = 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1

# Access rights by the ABI version that introduced them.
FS_EXECUTE, FS_WRITE_FILE, FS_READ_FILE, FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1_ALL = (1 << 13) - 1
FS_REFER, FS_TRUNCATE, FS_IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
FS_READ = FS_EXECUTE | FS_READ_FILE | FS_READ_DIR
FS_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
# ABI 6: a domain's processes may not signal, nor connect to the abstract Unix sockets of,
# processes outside it. Each warm instance creates its own domain, so this keeps workflows (and
# the base process, and flowd) out of each other's reach; ptrace and /proc/<pid>/{environ,mem,...}
# across domains are refused by Landlock from ABI 1.
SCOPE_ABSTRACT_UNIX_SOCKET, SCOPE_SIGNAL = 1 << 0, 1 << 1
LANDLOCK_SCOPE_ABI = 6

PR_GET_SECCOMP = 21


def landlock_abi():
    if platform.machine() not in ("x86_64", "aarch64"):
        return 0
    abi = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0), LANDLOCK_CREATE_RULESET_VERSION)
    return abi if abi > 0 else 0


def probe_layers():
    """Which layers this kernel and interpreter offer: {name: detail or None when missing}."""
    abi = landlock_abi()
    return {
        "landlock": ("ABI %d" % abi) if abi else None,
        "landlock_scope": "signals and abstract Unix sockets (Landlock ABI %d)" % abi if abi >= LANDLOCK_SCOPE_ABI else None,
        "seccomp": "filter mode" if seccomp_available() else None,
        "rlimits": "memory (DATA), CPU time, file size, open files, core dumps",
    }


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def apply_landlock(read_only, read_write, devices, scoped=False):
    """Restricts the filesystem to `read_only` and `read_write` trees and `devices` files; with
    `scoped`, also signals and abstract Unix sockets to this new domain."""
    abi = landlock_abi()
    if not abi:
        return False
    if scoped and abi < LANDLOCK_SCOPE_ABI:
        raise OSError("Landlock scoping needs ABI %d, the kernel has %d" % (LANDLOCK_SCOPE_ABI, abi))
    handled = FS_ABI1_ALL
    if abi >= 2:
        handled |= FS_REFER
    if abi >= 3:
        handled |= FS_TRUNCATE
    if abi >= 5:
        handled |= FS_IOCTL_DEV
    attr = _RulesetAttr(handled, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if scoped else 0)
    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    ruleset = _libc.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        rules = [(path, FS_READ) for path in read_only]
        rules += [(path, handled) for path in read_write]
        rules += [(path, (FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE | FS_IOCTL_DEV) & handled) for path in devices]
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if not os.path.isdir(path):
                    access &= FS_FILE_RIGHTS
                rule = _PathBeneath(access & handled, fd)
                if _libc.syscall(SYS_LANDLOCK_ADD_RULE, ruleset, LANDLOCK_RULE_PATH_BENEATH, ctypes.byref(rule), 0) < 0:
                    raise OSError(ctypes.get_errno(), "landlock_add_rule failed for %s" % path)
            finally:
                os.close(fd)
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
        if _libc.syscall(SYS_LANDLOCK_RESTRICT_SELF, ruleset, 0) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return True


class _SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter))]


def seccomp_available():
    """Whether this kernel accepts seccomp filters (flowd compiles the filter itself)."""
    return _libc.prctl(PR_GET_SECCOMP, 0, 0, 0, 0) >= 0


def apply_seccomp(programs):
    """Installs the BPF programs flowd compiled (flowd-runtime/src/seccomp.rs), in order: each an
    array of `struct sock_filter` in native byte order."""
    if not programs:
        raise ValueError("flowd sent no seccomp program")
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS failed")
    for program in programs:
        count, rest = divmod(len(program), ctypes.sizeof(_SockFilter))
        if rest or not count:
            raise ValueError("a seccomp program of %d bytes is not whole instructions" % len(program))
        instructions = (_SockFilter * count).from_buffer_copy(program)
        fprog = _SockFprog(count, instructions)
        if _libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_SECCOMP failed")
    return True


def readable_roots():
    """What a workflow may read: the system's libraries and configuration, the interpreter and
    its packages."""
    roots = ["/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/proc", "/sys/devices/system/cpu"]
    for path in [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix] + list(sys.path):
        if path and os.path.isabs(path) and os.path.exists(path):
            roots.append(path)
    return sorted(set(roots))


DEVICES = ["/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom"]


def enter_sandbox(spawn):
    """Applies every layer flowd asked for; a layer that fails to apply is fatal, so that no code
    runs with less isolation than flowd reported."""
    apply_limits(spawn)
    cgroup_procs = spawn.get("cgroup_procs") or []
    for procs in cgroup_procs:
        with open(procs, "w") as handle:
            handle.write("0")
    layers = spawn.get("layers", [])
    if "landlock" in layers:
        read_write = [spawn["tmp_dir"]] if spawn.get("tmp_dir") else []
        apply_landlock(readable_roots(), read_write, DEVICES, scoped="landlock_scope" in layers)
    if "seccomp" in layers:
        apply_seccomp(spawn.get("seccomp_programs"))


def apply_limits(spawn):
    memory = spawn.get("memory_bytes")
    if memory:
        resource.setrlimit(resource.RLIMIT_DATA, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    file_size = spawn.get("max_file_bytes")
    if file_size:
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    open_files = spawn.get("max_open_files")
    if open_files:
        resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))


# --------------------------------------------------------------------------- execution


class SettingsError(Exception):
    pass


def execution_main(workflow, exec_fd, log_fd):
    """One execution, in a fresh fork of the warm instance. Kept lean: every object created and
    every page written between the fork and the call is paid on every call."""
    signal.set_wakeup_fd(-1)
    _signal.signal(_SIGCHLD, _SIG_DFL)
    os.setpgid(0, 0)
    os.write(exec_fd, HELLO_HEAD + _PID.pack(os.getpid()) + HELLO_TAIL)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    os.close(log_fd)
    job, _ = read_frame(os.read, exec_fd)
    cpu_seconds = job.get("cpu_seconds")
    if cpu_seconds:
        # CPU time can outrun the wall clock with threads: bound it too.
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    result = run_job(workflow, job)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    # The output is complete: closing it now lets flowd see its end without waiting for this
    # process's memory to be torn down.
    os.close(1)
    os.close(2)
    write_frame(exec_fd, result)
    os._exit(0)


def serve_reuse(workflow, channel, output_fd):
    """`isolation: "reuse"`: this warm process runs the executions itself, one after another, like
    a serverless container; module globals persist from one execution to the next.

    One round trip per call on the instance's control socket: a job frame in, a result frame out.
    During a call, fds 1 and 2 are the output pipe flowd gave this instance (so C code and child
    processes are captured too); the result frame is sent only once the output is flushed, so
    everything the call wrote is in the pipe before flowd reads the result, and flowd needs no
    marker in the output, which a workflow could print. Between calls, fds 1 and 2 are what they
    were before (what a leftover thread prints then is no execution's output). When a call leaves
    child processes behind, the result says so and flowd sends a new pipe with the next job: what
    they write later goes to the old pipe, which nobody reads, not into a later call's output."""
    idle_out, idle_err = os.dup(1), os.dup(2)
    while True:
        try:
            job, fds = channel.receive()
        except (EOFError, OSError, ValueError):
            return
        if fds:
            for fd in fds[:-1]:
                os.close(fd)
            os.close(output_fd)
            output_fd = fds[-1]
        os.dup2(output_fd, 1)
        os.dup2(output_fd, 2)
        try:
            result = run_job(workflow, job)
        finally:
            try:
                sys.stdout.flush()
                sys.stderr.flush()
            except Exception:
                pass
            os.dup2(idle_out, 1)
            os.dup2(idle_err, 2)
        if has_children():
            result["children"] = True
        try:
            channel.send(result)
        except OSError:
            return


def has_children():
    """Whether this process has a child process, running or exited (none is reaped here)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    return True


def run_job(workflow, job):
    # Every page touched in a fresh fork is a copy-on-write fault: the common cases skip the
    # general machinery (`json` for empty settings, `inspect`'s ABC checks for plain returns).
    settings_json = job["settings"]
    settings = {} if settings_json == "{}" else json.loads(settings_json)
    try:
        passing = workflow.context_passing
        if passing is None:
            if workflow.mode == "catch":
                returned = workflow.function(job["request"], settings)
            else:
                returned = workflow.function(settings)
        else:
            arguments = (job["request"], settings) if workflow.mode == "catch" else (settings,)
            context = Context(job.get("context") or {})
            if passing == "keyword":
                returned = workflow.function(*arguments, context=context)
            else:
                returned = workflow.function(*arguments, context)
        if type(returned) not in _NEVER_AWAITABLE and _is_awaitable(returned):
            import asyncio

            returned = asyncio.run(_awaited(returned))
    except MemoryError as error:
        return {"outcome": "killed", "error": {"type": "MemoryLimit", "message": "the execution ran out of its memory limit (%d MiB)" % (job.get("memory_mb", 0)), "traceback": format_traceback(error, 1)}}
    except BaseException as error:
        return {"outcome": "error", "error": describe_error(error, skip=1)}
    result = {"outcome": "ok"}
    try:
        result["ret"] = reduce_return(returned, job.get("max_body", 1 << 30))
    except ReturnTooLarge as error:
        result["ret"] = None
        result["ret_warning"] = str(error)
    except BaseException as error:
        result["ret"] = None
        result["ret_warning"] = "the return value was not used: reading it raised %s" % type_name(error)
    try:
        if settings:
            check_json(settings, [])
            result["settings"] = json.dumps(settings, allow_nan=False, ensure_ascii=False)
        else:
            result["settings"] = "{}"
    except SettingsError as error:
        result["settings_error"] = str(error)
    except (ValueError, TypeError, RecursionError) as error:
        result["settings_error"] = "settings are not JSON serializable: %s" % error
    return result


# Exact types whose instances are never awaitable (subclasses go through `inspect`).
_NEVER_AWAITABLE = frozenset((dict, type(None), str, int, float, bool, bytes, list, tuple))


async def _awaited(awaitable):
    # `asyncio.run` takes coroutines only; any awaitable (a Future-like object) is awaited here.
    return await awaitable


def _is_awaitable(value):
    return inspect.isawaitable(value)


class ReturnTooLarge(Exception):
    pass


def plain(value):
    """A value that marshal carries: plain types kept, subclasses converted, others opaque."""
    kind = type(value)
    if kind is str or isinstance(value, str):
        return plain_str(str(value))
    if value is None or kind in (bool, int, float, bytes):
        return value
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return (OPAQUE, type_name(value))


def plain_str(text):
    # A lone surrogate cannot be sent as UTF-8 (nor on the wire): such a str is not usable text.
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return (OPAQUE, "str with a lone surrogate")
    return text


def reduce_return(returned, max_body):
    if returned is None:
        return None
    if not isinstance(returned, dict):
        return (OPAQUE, type_name(returned))
    reduced = {}
    for key in ("status_code", "body", "headers"):
        if key not in returned:
            continue
        value = returned[key]
        if key == "headers" and isinstance(value, dict):
            value = {plain(k): plain(v) for k, v in value.items()}
        else:
            value = plain(value)
        if key == "body" and isinstance(value, str) and body_too_large(value, max_body):
            raise ReturnTooLarge(
                "the return value was not used: its body is larger than the %d-byte limit" % max_body
            )
        reduced[key] = value
    return reduced


def body_too_large(body, max_body):
    # A character is one to four bytes: only encode (and so copy) a body when the count of
    # characters alone cannot tell.
    if len(body) > max_body:
        return True
    return len(body) > max_body // 4 and len(body.encode("utf-8", "surrogatepass")) > max_body


def check_json(value, path):
    kind = type(value)
    if kind is str:
        if plain_str(value) is not value:
            raise SettingsError("%s holds a str with a lone surrogate, which JSON text cannot hold" % describe_path(path))
        return
    if value is None or kind is bool or kind is int:
        return
    if kind is float or isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise SettingsError("%s is %r, which JSON cannot hold" % (describe_path(path), value))
        return
    if isinstance(value, dict):
        if len(path) > 64:
            raise SettingsError("%s is nested too deeply" % describe_path(path))
        for key, item in value.items():
            if not isinstance(key, str):
                raise SettingsError(
                    "%s has a key of type %s (%r): settings keys must be str at every level"
                    % (describe_path(path), type_name(key), key)
                )
            if plain_str(key) is not key:
                raise SettingsError(
                    "%s has a key with a lone surrogate (%r), which JSON text cannot hold"
                    % (describe_path(path), key)
                )
            check_json(item, path + [key])
        return
    if isinstance(value, (list, tuple)):
        if len(path) > 64:
            raise SettingsError("%s is nested too deeply" % describe_path(path))
        for index, item in enumerate(value):
            check_json(item, path + [index])
        return
    if isinstance(value, (str, int)):
        return
    raise SettingsError(
        "%s is a %s, which is not natively JSON serializable" % (describe_path(path), type_name(value))
    )


def describe_path(path):
    if not path:
        return "settings"
    return "settings" + "".join("[%r]" % (part,) for part in path)


def type_name(value):
    kind = value if isinstance(value, type) else type(value)
    module = getattr(kind, "__module__", "builtins")
    name = getattr(kind, "__qualname__", kind.__name__)
    if module in ("builtins", None):
        return name
    return "%s.%s" % (module, name)


def format_traceback(error, skip):
    tb = error.__traceback__
    for _ in range(skip):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    return "".join(traceback.format_exception(type(error), error, tb))


def safe_text(text):
    # What goes to flowd must be UTF-8: a lone surrogate is shown escaped.
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def describe_error(error, skip):
    try:
        message = str(error)
    except BaseException:
        message = "<the exception's message could not be read>"
    return {"type": safe_text(type_name(error)), "message": safe_text(message), "traceback": safe_text(format_traceback(error, skip))}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "zygote":
        sys.stderr.write("usage: flowd_runner.py zygote CONFIG_JSON\n")
        sys.exit(2)
    zygote_main(json.loads(sys.argv[2]))
