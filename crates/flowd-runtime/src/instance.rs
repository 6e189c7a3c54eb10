//! A warm instance: one Python process per code version that ran the module's top level once and
//! forks once per execution (`isolation: "fork"`), or runs the executions itself, one after
//! another, with one round trip per call on its control socket (`isolation: "reuse"`).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowd_core::PyValue;
use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, Notify};

use crate::cgroup::InstanceCgroup;
use crate::config::{OutputLimits, SandboxLimits};
use crate::job::Job;
use crate::outcome::{ErrorInfo, Execution, Outcome};
use crate::protocol::{
    encode_frame, message, read_frame, send_frame_with_fds, str_value, MessageExt, ProtocolError,
};
use crate::sandbox::PrivateTmp;
use crate::sync::lock;
use crate::zygote::Zygote;

/// How many recent child exits an instance remembers (to explain a crash).
const EXIT_MEMORY: usize = 256;
/// How long to wait, after an execution process vanished, for its exit status.
const EXIT_STATUS_WAIT: Duration = Duration::from_millis(500);
/// How long to wait for the rest of the output once the result is in.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);
/// Forks kept parked per warm instance, ready for the next call: one, and a second once a call
/// found none ready (calls coming back to back, faster than one fork is made and says hello).
const PARKED_PER_INSTANCE: usize = 1;
const PARKED_PER_BUSY_INSTANCE: usize = 2;
/// How long a parked fork may take to say hello.
const PARK_HELLO_WAIT: Duration = Duration::from_secs(10);
/// Largest control frame an instance sends (ready / init_failed / exit).
const CONTROL_LIMIT: usize = 8 << 20;
/// Bytes read from a reuse instance's output pipe at a time.
const OUTPUT_CHUNK: usize = 64 * 1024;
/// Reads at most of a reuse instance's output pipe once a call ended: more than a full pipe.
const DRAIN_READS: usize = 32;

/// An instance the base process has forked, still starting.
pub struct PendingInstance {
    stream: StdUnixStream,
    /// Killed if the start is abandoned (the caller's deadline passed).
    process: KillOnDrop,
    /// `isolation: "reuse"`: the read end of the output pipe the instance keeps for its lifetime.
    output: Option<OwnedFd>,
}

/// What the module's top level printed and, if it failed, why.
#[derive(Debug)]
pub struct InitFailure {
    pub error: ErrorInfo,
    pub output: String,
}

/// How an execution process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildExit {
    Code(i32),
    Signal(i32),
}

impl ChildExit {
    fn describe(self) -> String {
        match self {
            ChildExit::Code(code) => {
                format!("the execution process exited with code {code} before returning")
            }
            ChildExit::Signal(signal) => {
                let name = Signal::try_from(signal)
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_else(|_| format!("signal {signal}"));
                format!("the execution process was killed by {name}")
            }
        }
    }
}

struct Shared {
    alive: AtomicBool,
    exits: Mutex<VecDeque<(i32, ChildExit)>>,
    exit_signal: Notify,
}

pub struct Instance {
    pub pid: i32,
    /// Its private memory once its module's top level had run, in KiB.
    init_memory_kb: u64,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    shared: Arc<Shared>,
    /// Forks made ahead of need, each waiting for its job (hello already received).
    parked: Mutex<Vec<ExecutionRun>>,
    /// Forks being made ahead of need (not said hello yet).
    parking: AtomicUsize,
    /// How many forks to keep parked (see [`PARKED_PER_INSTANCE`]).
    park_depth: AtomicUsize,
    /// `isolation: "reuse"`: the instance's side of the conversation (one call at a time).
    reuse: Option<tokio::sync::Mutex<ReuseIo>>,
    _tmp: PrivateTmp,
    /// Dropped after the instance is killed: kills whatever it left behind.
    cgroup: Option<InstanceCgroup>,
    /// The cgroup's count of OOM kills already attributed to an execution.
    oom_kills_seen: AtomicU64,
    /// Its `workflow` declares a `context` parameter: jobs carry their context.
    takes_context: bool,
}

/// What an instance is made from.
pub struct InstanceSpec<'a> {
    pub code: &'a str,
    pub mode: &'a str,
    pub memory_mb: u32,
    pub env: &'a [(String, String)],
    pub init_timeout: Duration,
    /// The layers the instance must apply to itself (`landlock`, `seccomp`).
    pub layers: &'a [String],
    /// The seccomp filter's BPF programs, installed in order (see `seccomp`).
    pub seccomp_programs: &'a [Vec<u8>],
    pub limits: &'a SandboxLimits,
    pub isolation: &'a str,
}

impl Instance {
    /// Forks a new instance from the zygote and waits for its module top level to run.
    /// Asks the base process for a new instance (the base process is busy only for this part:
    /// the instance's start-up, [`Instance::await_ready`], happens without it).
    pub async fn request(
        zygote: &mut Zygote,
        spec: &InstanceSpec<'_>,
        tmp: &PrivateTmp,
        cgroup: Option<&InstanceCgroup>,
    ) -> Result<PendingInstance, ProtocolError> {
        let (ours, theirs) = StdUnixStream::pair()?;
        ours.set_nonblocking(true)?;
        let mut fds = vec![OwnedFd::from(theirs)];
        // A reuse instance writes every execution's output into one pipe, made here once.
        let output = if spec.isolation == "reuse" {
            let (read_end, write_end) =
                nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
            fds.push(write_end);
            Some(read_end)
        } else {
            None
        };
        let env = PyValue::Dict(
            spec.env
                .iter()
                .map(|(k, v)| (str_value(k.as_str()), str_value(v.as_str())))
                .collect(),
        );
        let request = message([
            ("op", str_value("spawn")),
            ("nfds", PyValue::Int(fds.len() as i64)),
            ("code", str_value(spec.code)),
            ("mode", str_value(spec.mode)),
            (
                "memory_bytes",
                PyValue::Int(i64::from(spec.memory_mb) << 20),
            ),
            ("tmp_dir", str_value(tmp.path().to_string_lossy())),
            ("env", env),
            (
                "layers",
                PyValue::List(spec.layers.iter().map(|l| str_value(l.as_str())).collect()),
            ),
            (
                "seccomp_programs",
                PyValue::List(
                    spec.seccomp_programs
                        .iter()
                        .map(|program| PyValue::Bytes(program.clone()))
                        .collect(),
                ),
            ),
            (
                "cgroup_procs",
                PyValue::List(
                    cgroup
                        .iter()
                        .flat_map(|group| group.procs_files())
                        .map(|procs| str_value(procs.to_string_lossy()))
                        .collect(),
                ),
            ),
            (
                "max_file_bytes",
                PyValue::Int(spec.limits.max_file_bytes.min(i64::MAX as u64) as i64),
            ),
            (
                "max_open_files",
                PyValue::Int(i64::from(spec.limits.max_open_files)),
            ),
            ("isolation", str_value(spec.isolation)),
        ]);
        let reply = zygote.request(&request, &fds).await?;
        // The instance holds the write end now: flowd's copy would hide the pipe's end.
        drop(fds);
        let pid = reply.int_field("pid").unwrap_or(0) as i32;
        if pid <= 0 {
            return Err(ProtocolError::Unexpected(format!("spawn reply {reply:?}")));
        }
        Ok(PendingInstance {
            stream: ours,
            process: KillOnDrop { pid: Some(pid) },
            output,
        })
    }

    /// Waits for a requested instance to run its module's top level.
    pub async fn await_ready(
        pending: PendingInstance,
        init_timeout: Duration,
        tmp: PrivateTmp,
        cgroup: Option<InstanceCgroup>,
    ) -> Result<Result<Instance, InitFailure>, ProtocolError> {
        let PendingInstance {
            stream: ours,
            mut process,
            output: output_pipe,
        } = pending;
        let pid = process.pid.unwrap_or(0);
        let stream = UnixStream::from_std(ours)?;
        let (mut reader, writer) = stream.into_split();
        let first = match tokio::time::timeout(init_timeout, read_frame(&mut reader, CONTROL_LIMIT))
            .await
        {
            Ok(Ok(frame)) => frame,
            // It ended before saying ready: `os._exit` or a signal in the top level, a limit.
            Ok(Err(ProtocolError::Closed | ProtocolError::Io(_))) => {
                return Ok(Err(InitFailure {
                    error: ErrorInfo::new(
                        "InitExited",
                        "the warm instance ended while the module's top level ran (os._exit, a \
                         signal or a limit), before it was ready"
                            .to_string(),
                    ),
                    output: String::new(),
                }));
            }
            Ok(Err(error)) => return Err(error),
            Err(_) => {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                return Ok(Err(InitFailure {
                    error: ErrorInfo {
                        kind: "InitTimeout".into(),
                        message: format!(
                            "the module's top level did not finish within {} s",
                            init_timeout.as_secs()
                        ),
                        traceback: None,
                    },
                    output: String::new(),
                }));
            }
        };
        let output = first.str_field("output").unwrap_or("").to_string();
        let takes_context = matches!(first.field("context"), Some(PyValue::Bool(true)));
        match first.str_field("t") {
            Some("ready") => process.disarm(),
            Some("init_failed") => {
                return Ok(Err(InitFailure {
                    error: ErrorInfo::from_message(first.field("error")),
                    output,
                }))
            }
            _ => {
                return Err(ProtocolError::Unexpected(format!(
                    "instance said {first:?}"
                )))
            }
        }
        let shared = Arc::new(Shared {
            alive: AtomicBool::new(true),
            exits: Mutex::new(VecDeque::new()),
            exit_signal: Notify::new(),
        });
        if !output.is_empty() {
            tracing::debug!(pid, output = %output, "warm instance printed while starting");
        }
        let reuse = match output_pipe {
            // A reuse instance forks no execution: nothing to watch, its socket carries results.
            Some(output) => Some(tokio::sync::Mutex::new(ReuseIo {
                reader: BufReader::with_capacity(OUTPUT_CHUNK, reader),
                output: pipe::Receiver::from_owned_fd(output)?,
                chunk: vec![0u8; OUTPUT_CHUNK],
                rotate_output: false,
            })),
            None => {
                tokio::spawn(watch(reader, shared.clone()));
                None
            }
        };
        Ok(Ok(Instance {
            init_memory_kb: u32::try_from(pid).map_or(0, crate::memory::private_kb),
            pid,
            writer: tokio::sync::Mutex::new(writer),
            shared,
            parked: Mutex::new(Vec::new()),
            parking: AtomicUsize::new(0),
            park_depth: AtomicUsize::new(PARKED_PER_INSTANCE),
            reuse,
            _tmp: tmp,
            oom_kills_seen: AtomicU64::new(
                cgroup
                    .as_ref()
                    .and_then(InstanceCgroup::oom_kills)
                    .unwrap_or(0),
            ),
            cgroup,
            takes_context,
        }))
    }

    pub fn is_alive(&self) -> bool {
        if !self.shared.alive.load(Ordering::Acquire) {
            return false;
        }
        // An idle reuse instance says nothing between calls: if its socket has something to
        // read (its end, or bytes it should not have sent), it can no longer serve.
        if let Some(io) = self.reuse.as_ref().and_then(|io| io.try_lock().ok()) {
            if io.has_pending() {
                self.stop();
                return false;
            }
        }
        true
    }

    /// Kills the instance and what it started (its process group), for good.
    fn stop(&self) {
        let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
        self.shared.alive.store(false, Ordering::Release);
    }

    /// What the instance holds alone (not shared with its base process), in KiB, as measured
    /// when its module's top level had run — what the init cost, which is what keeping it warm
    /// saves. Measured once: reading `/proc/<pid>/smaps_rollup` walks the process's page tables
    /// (a parked fork would also hide it later, the pages it shares counting as shared). An
    /// instance that was stopped holds nothing.
    pub fn memory_kb(&self) -> u64 {
        if self.is_alive() {
            self.init_memory_kb
        } else {
            0
        }
    }

    /// Forks one execution ahead of need, if none is parked or being parked: the fork and the
    /// child's start-up then happen while the instance is idle, not while a caller waits.
    pub async fn park(&self, limits: &OutputLimits) {
        if self.reuse.is_some() || !self.is_alive() {
            return;
        }
        // Counted as parking from here, so that concurrent calls do not fork one each.
        let depth = self.park_depth.load(Ordering::Acquire);
        if self.parking.fetch_add(1, Ordering::AcqRel) + self.parked_count() >= depth {
            self.parking.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let mut run = ExecutionRun::default();
        let ready = match self.start_fork(limits, &mut run).await {
            Ok(()) => tokio::time::timeout(PARK_HELLO_WAIT, hello(&mut run))
                .await
                .is_ok_and(|hello| hello.is_ok()),
            Err(_) => false,
        };
        // A fork that did not get ready is killed as `run` is dropped.
        if ready && !run.in_instance {
            lock(&self.parked).push(run);
        }
        self.parking.fetch_sub(1, Ordering::AcqRel);
    }

    /// [`Instance::park`] in a task of its own, unless a fork is parked or being parked already
    /// (the common case under steady load: no task to spawn).
    pub fn park_in_background(self: &Arc<Self>, limits: OutputLimits) {
        if self.reuse.is_some() {
            return;
        }
        let depth = self.park_depth.load(Ordering::Acquire);
        let ready_or_coming = self.parking.load(Ordering::Acquire) + self.parked_count();
        for _ in ready_or_coming..depth {
            let instance = self.clone();
            tokio::spawn(async move { instance.park(&limits).await });
        }
    }

    pub fn parked_count(&self) -> usize {
        lock(&self.parked).len()
    }

    /// A parked fork that is still alive (it has said nothing since its hello).
    fn take_parked(&self) -> Option<ExecutionRun> {
        loop {
            let run = lock(&self.parked).pop()?;
            let mut probe = [0u8; 1];
            let alive = run.stream.as_ref().is_some_and(|stream| {
                matches!(stream.try_read(&mut probe), Err(error) if error.kind() == std::io::ErrorKind::WouldBlock)
            });
            if alive {
                return Some(run);
            }
        }
    }

    /// Runs one execution in a fresh fork of this instance (one parked ahead, if there is one),
    /// or, for a reuse instance, in the instance itself.
    pub async fn run(self: &Arc<Self>, job: &Job, limits: &OutputLimits) -> Execution {
        if let Some(io) = &self.reuse {
            return self
                .run_in_instance(&mut *io.lock().await, job, limits)
                .await;
        }
        let started = Instant::now();
        let mut run = ExecutionRun::default();
        let taken = self.take_parked();
        if taken.is_none() && self.parking.load(Ordering::Acquire) > 0 {
            // A fork was being parked but not ready yet: calls come faster than a fork is made
            // and says hello. Keep one more ready.
            self.park_depth
                .store(PARKED_PER_BUSY_INSTANCE, Ordering::Release);
        }
        // The next call's fork is made while this one runs: ready by the time it comes.
        self.park_in_background(*limits);
        let forked = match taken {
            Some(parked) => {
                run = parked;
                Ok(())
            }
            None => self.start_fork(limits, &mut run).await,
        };
        let outcome = match forked {
            Ok(()) => {
                let conversation = converse(&mut run, job, limits, self.takes_context);
                match tokio::time::timeout(job.timeout, conversation).await {
                    Ok(Ok(outcome)) => outcome,
                    Ok(Err(error)) => match Outcome::from_unreadable_result(error) {
                        Some(outcome) => outcome,
                        None => self.explain_vanished(run.pid).await,
                    },
                    Err(_) => {
                        if run.pid.is_none() || run.in_instance {
                            // The fork never reported: the instance itself is stuck.
                            let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
                            self.shared.alive.store(false, Ordering::Release);
                        }
                        Outcome::Timeout
                    }
                }
            }
            Err(error) => {
                self.shared.alive.store(false, Ordering::Release);
                Outcome::Failed(ErrorInfo::new(
                    "RuntimeUnavailable",
                    format!("the warm instance could not start the execution: {error}"),
                ))
            }
        };
        let finished = matches!(outcome, Outcome::Returned { .. } | Outcome::Raised(_));
        match (run.pid, run.in_instance) {
            // The execution ran in the instance, which goes on serving...
            (Some(_), true) if finished => {}
            // ...unless the run ended it or was cut short: then the whole instance, with what it
            // started, is stopped.
            (Some(_), true) => {
                let _ = killpg(Pid::from_raw(self.pid), Signal::SIGKILL);
                self.shared.alive.store(false, Ordering::Release);
            }
            // Whatever a forked execution left behind (children, threads) ends with it.
            (Some(pid), false) => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            (None, _) => {}
        }
        let (logs, logs_truncated) = match run.logs.take() {
            Some(collector) => collector.finish().await,
            None => (Vec::new(), false),
        };
        Execution {
            outcome,
            logs,
            logs_truncated,
            duration: started.elapsed(),
        }
    }

    /// `isolation: "reuse"`: one round trip on the instance's socket — the job out, the result in
    /// — while its output pipe is drained. The instance flushes its output before it sends the
    /// result, so once the result is in, this call's output is in the pipe: no marker in the
    /// output stream is needed (a workflow could print one), and what arrives after the result (a
    /// child process still writing) is dropped before the next call.
    async fn run_in_instance(
        &self,
        io: &mut ReuseIo,
        job: &Job,
        limits: &OutputLimits,
    ) -> Execution {
        let started = Instant::now();
        let mut logs = Logs::new(limits.max_log_bytes);
        if !self.is_alive_flag() {
            return Execution {
                outcome: Outcome::Failed(ErrorInfo::new(
                    "RuntimeUnavailable",
                    "the warm instance is no longer running".to_string(),
                )),
                logs: Vec::new(),
                logs_truncated: false,
                duration: started.elapsed(),
            };
        }
        io.discard_output();
        let rotate_output = std::mem::take(&mut io.rotate_output);
        let message = job_message(job, limits, usize::from(rotate_output), self.takes_context);
        let exchange = async {
            if rotate_output {
                // The old pipe is closed here: a leftover process writing to it gets EPIPE.
                let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                    .map_err(std::io::Error::from)?;
                io.output = pipe::Receiver::from_owned_fd(read_end)?;
                let writer = self.writer.lock().await;
                send_frame_with_fds(writer.as_ref(), &message, &[write_end.as_raw_fd()]).await?;
            } else {
                let frame = encode_frame(&message);
                self.writer.lock().await.write_all(&frame).await?;
            }
            io.result_draining_output(limits.max_result_bytes, &mut logs)
                .await
        };
        let mut abandoned = StopUnlessFinished {
            instance: Some(self),
        };
        let answered = tokio::time::timeout(job.timeout, exchange).await;
        abandoned.finished();
        let outcome = match answered {
            Ok(Ok(result)) => {
                io.rotate_output = matches!(result.field("children"), Some(PyValue::Bool(true)));
                Outcome::from_result(&result)
            }
            Ok(Err(error)) => Outcome::from_unreadable_result(error).unwrap_or_else(|| {
                // The instance died under the call (`os._exit`, a signal, the memory limit). Its
                // exit status goes to the base process, not to flowd.
                if self.went_over_memory() {
                    Outcome::Killed(memory_limit_error())
                } else {
                    Outcome::Killed(ErrorInfo::new(
                        "Crashed",
                        "the execution process ended before returning".to_string(),
                    ))
                }
            }),
            Err(_) => Outcome::Timeout,
        };
        let finished = matches!(outcome, Outcome::Returned { .. } | Outcome::Raised(_));
        if !finished {
            // Cut short, ended or out of step: the instance, with what it started, is stopped
            // (the pool starts another).
            self.stop();
        }
        // What the call wrote before its result (or before it was stopped) is in the pipe now.
        io.drain_now(&mut logs);
        let (logs, logs_truncated) = logs.finish();
        Execution {
            outcome,
            logs,
            logs_truncated,
            duration: started.elapsed(),
        }
    }

    fn is_alive_flag(&self) -> bool {
        self.shared.alive.load(Ordering::Acquire)
    }

    async fn start_fork(
        &self,
        limits: &OutputLimits,
        run: &mut ExecutionRun,
    ) -> Result<(), ProtocolError> {
        if !self.is_alive() {
            return Err(ProtocolError::Closed);
        }
        let (ours, theirs) = StdUnixStream::pair()?;
        let (log_read, log_write) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(std::io::Error::from)?;
        {
            let writer = self.writer.lock().await;
            send_frame_with_fds(
                writer.as_ref(),
                &message([("op", str_value("run")), ("nfds", PyValue::Int(2))]),
                &[theirs.as_raw_fd(), log_write.as_raw_fd()],
            )
            .await?;
        }
        drop(theirs);
        drop(log_write);
        ours.set_nonblocking(true)?;
        run.stream = Some(UnixStream::from_std(ours)?);
        run.logs = Some(LogCollector::start(log_read, limits.max_log_bytes)?);
        Ok(())
    }

    async fn explain_vanished(&self, pid: Option<i32>) -> Outcome {
        let Some(pid) = pid else {
            return Outcome::Killed(ErrorInfo::new(
                "Crashed",
                "the execution process ended before it started".to_string(),
            ));
        };
        let deadline = Instant::now() + EXIT_STATUS_WAIT;
        loop {
            let notified = self.shared.exit_signal.notified();
            if let Some(exit) = self.find_exit(pid) {
                if exit == ChildExit::Signal(Signal::SIGKILL as i32) && self.went_over_memory() {
                    return Outcome::Killed(memory_limit_error());
                }
                let kind = match exit {
                    ChildExit::Signal(_) => "Crashed",
                    ChildExit::Code(_) => "Exited",
                };
                return Outcome::Killed(ErrorInfo::new(kind, exit.describe()));
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() || tokio::time::timeout(remaining, notified).await.is_err() {
                return Outcome::Killed(ErrorInfo::new(
                    "Crashed",
                    "the execution process ended before returning".to_string(),
                ));
            }
        }
    }

    /// Whether the kernel killed a process of this instance for going over its memory cgroup's
    /// limit since the last time this answered `true` (cgroup v2 only).
    fn went_over_memory(&self) -> bool {
        let Some(kills) = self.cgroup.as_ref().and_then(InstanceCgroup::oom_kills) else {
            return false;
        };
        self.oom_kills_seen.fetch_max(kills, Ordering::AcqRel) < kills
    }

    fn find_exit(&self, pid: i32) -> Option<ChildExit> {
        let exits = self.shared.exits.lock().ok()?;
        exits.iter().rev().find(|(p, _)| *p == pid).map(|(_, e)| *e)
    }
}

fn memory_limit_error() -> ErrorInfo {
    ErrorInfo::new(
        "MemoryLimit",
        "the execution went over its memory limit (the workflow's memory_mb, for its warm instance and executions together) and was killed".to_string(),
    )
}

impl Drop for Instance {
    fn drop(&mut self) {
        // Parked forks are killed as they are dropped.
        lock(&self.parked).clear();
        // Closing the control socket ends the instance; make sure of it.
        let _ = kill(Pid::from_raw(self.pid), Signal::SIGKILL);
    }
}

#[derive(Default)]
struct ExecutionRun {
    stream: Option<UnixStream>,
    pid: Option<i32>,
    /// The execution runs in the warm instance itself (`isolation: "reuse"`).
    in_instance: bool,
    logs: Option<LogCollector>,
}

impl Drop for ExecutionRun {
    /// A forked execution, with what it started, ends with its run: also when the run is
    /// abandoned (a parked fork never used, a call whose deadline passed).
    fn drop(&mut self) {
        if let (Some(pid), false) = (self.pid, self.in_instance) {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Kills a process being started unless its start completed.
struct KillOnDrop {
    pid: Option<i32>,
}

impl KillOnDrop {
    fn disarm(&mut self) {
        self.pid = None;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Stops a reuse instance whose call did not finish: abandoned mid-call (the caller's deadline
/// passed), its reply would answer the next call.
struct StopUnlessFinished<'a> {
    instance: Option<&'a Instance>,
}

impl StopUnlessFinished<'_> {
    fn finished(&mut self) {
        self.instance = None;
    }
}

impl Drop for StopUnlessFinished<'_> {
    fn drop(&mut self) {
        if let Some(instance) = self.instance {
            instance.stop();
        }
    }
}

/// Talks to the execution fork: hello (its pid), the job, the result.
async fn converse(
    run: &mut ExecutionRun,
    job: &Job,
    limits: &OutputLimits,
    takes_context: bool,
) -> Result<Outcome, ProtocolError> {
    if run.pid.is_none() {
        hello(run).await?;
    }
    let Some(stream) = run.stream.as_mut() else {
        return Err(ProtocolError::Closed);
    };
    let frame = encode_frame(&job_message(job, limits, 0, takes_context));
    stream.write_all(&frame).await?;
    let result = read_frame(stream, limits.max_result_bytes).await?;
    Ok(Outcome::from_result(&result))
}

/// The job as the runner reads it, sent with `nfds` file descriptors; with its context when the
/// instance's `workflow` takes one.
fn job_message(job: &Job, limits: &OutputLimits, nfds: usize, takes_context: bool) -> PyValue {
    let mut fields = vec![
        (str_value("settings"), str_value(job.settings_json.as_str())),
        (
            str_value("max_body"),
            PyValue::Int(limits.max_body_bytes as i64),
        ),
        (
            str_value("memory_mb"),
            PyValue::Int(i64::from(job.memory_mb)),
        ),
        (
            str_value("cpu_seconds"),
            PyValue::Int(job.timeout.as_secs() as i64 + 1),
        ),
    ];
    if let Some(request) = &job.request {
        fields.push((str_value("request"), request.clone()));
    }
    if nfds > 0 {
        fields.push((str_value("nfds"), PyValue::Int(nfds as i64)));
    }
    if let (true, Some(context)) = (takes_context, &job.context) {
        fields.push((str_value("context"), context.to_message()));
    }
    PyValue::Dict(fields)
}

/// Reads the execution's hello: its pid, and whether it runs inside the instance.
async fn hello(run: &mut ExecutionRun) -> Result<(), ProtocolError> {
    let Some(stream) = run.stream.as_mut() else {
        return Err(ProtocolError::Closed);
    };
    let hello = read_frame(stream, 4096).await?;
    let pid = hello.int_field("pid").unwrap_or(0) as i32;
    if hello.str_field("t") != Some("hello") || pid <= 0 {
        return Err(ProtocolError::Unexpected(
            "no hello from the execution".into(),
        ));
    }
    run.pid = Some(pid);
    run.in_instance = matches!(hello.field("reuse"), Some(PyValue::Bool(true)));
    Ok(())
}

/// Reads the exit notifications of an instance until it closes.
async fn watch(mut reader: OwnedReadHalf, shared: Arc<Shared>) {
    loop {
        match read_frame(&mut reader, CONTROL_LIMIT).await {
            Ok(frame) if frame.str_field("t") == Some("exit") => {
                let pid = frame.int_field("pid").unwrap_or(0) as i32;
                let exit = match (frame.int_field("signal"), frame.int_field("code")) {
                    (Some(signal), _) => ChildExit::Signal(signal as i32),
                    (None, Some(code)) => ChildExit::Code(code as i32),
                    (None, None) => continue,
                };
                if let Ok(mut exits) = shared.exits.lock() {
                    if exits.len() >= EXIT_MEMORY {
                        exits.pop_front();
                    }
                    exits.push_back((pid, exit));
                }
                shared.exit_signal.notify_waiters();
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    shared.alive.store(false, Ordering::Release);
    shared.exit_signal.notify_waiters();
}

/// Collects an execution's output from its pipe, keeping at most `cap` bytes.
struct LogCollector {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<(Vec<u8>, bool)>,
}

impl LogCollector {
    fn start(read_end: OwnedFd, cap: usize) -> std::io::Result<LogCollector> {
        let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read_end)?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let mut kept = Vec::new();
            let mut truncated = false;
            let mut chunk = vec![0u8; 64 * 1024];
            loop {
                tokio::select! {
                    read = pipe.read(&mut chunk) => match read {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let room = cap.saturating_sub(kept.len());
                            if n > room {
                                truncated = true;
                            }
                            kept.extend_from_slice(&chunk[..n.min(room)]);
                        }
                    },
                    _ = &mut stopped => break,
                }
            }
            (kept, truncated)
        });
        Ok(LogCollector { stop, task })
    }

    /// What was collected: the output up to end of file, or up to a short grace period after the
    /// execution ended (a process that escaped may still hold the pipe open).
    async fn finish(self) -> (Vec<u8>, bool) {
        let LogCollector { stop, mut task } = self;
        match tokio::time::timeout(OUTPUT_GRACE, &mut task).await {
            Ok(joined) => joined.unwrap_or_default(),
            Err(_) => {
                let _ = stop.send(());
                task.await.unwrap_or_default()
            }
        }
    }
}

/// A reuse instance's side of its calls: results come on its control socket, output through the
/// pipe it was given when it started.
struct ReuseIo {
    reader: BufReader<OwnedReadHalf>,
    output: pipe::Receiver,
    /// Scratch space for reading the output.
    chunk: Vec<u8>,
    /// The last call left child processes behind: the next one gets a new pipe, so that what
    /// they write later is in no later call's output.
    rotate_output: bool,
}

impl ReuseIo {
    /// Whether the socket has something to read while no call is under way (the instance
    /// ended, or sent what it should not have).
    fn has_pending(&self) -> bool {
        if !self.reader.buffer().is_empty() {
            return true;
        }
        let mut probe = [0u8; 1];
        let fd = self.reader.get_ref().as_ref().as_raw_fd();
        let peeked = nix::sys::socket::recv(
            fd,
            &mut probe,
            nix::sys::socket::MsgFlags::MSG_PEEK | nix::sys::socket::MsgFlags::MSG_DONTWAIT,
        );
        // Nothing to read (EAGAIN) is the healthy case; an end (0), bytes or an error are not.
        !matches!(
            peeked,
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EINTR)
        )
    }

    /// Reads the result frame, keeping the output the instance writes meanwhile (a call that
    /// prints more than the pipe holds would otherwise block before answering).
    async fn result_draining_output(
        &mut self,
        limit: usize,
        logs: &mut Logs,
    ) -> Result<PyValue, ProtocolError> {
        let ReuseIo {
            reader,
            output,
            chunk,
            ..
        } = self;
        let result = read_frame(reader, limit);
        tokio::pin!(result);
        let mut output_open = true;
        loop {
            tokio::select! {
                biased;
                frame = &mut result => return frame,
                ready = output.readable(), if output_open => {
                    if ready.is_err() {
                        output_open = false;
                        continue;
                    }
                    loop {
                        match output.try_read(chunk) {
                            Ok(0) => {
                                output_open = false;
                                break;
                            }
                            Ok(n) => logs.push(&chunk[..n]),
                            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => break,
                            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                            Err(_) => {
                                output_open = false;
                                break;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Reads what the pipe holds now, without waiting (a direct read: the reactor may not have
    /// seen the last writes yet). Bounded: a child process left writing cannot keep it going.
    fn drain_now(&mut self, logs: &mut Logs) {
        let fd = self.output.as_raw_fd();
        for _ in 0..DRAIN_READS {
            match nix::unistd::read(fd, &mut self.chunk) {
                Ok(0) => return,
                Ok(n) => logs.push(&self.chunk[..n]),
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => return,
            }
        }
    }

    /// Drops what was written to the pipe since the last call ended: no execution's output.
    fn discard_output(&mut self) {
        let mut dropped = Logs::new(0);
        self.drain_now(&mut dropped);
    }
}

/// An execution's output, capped.
struct Logs {
    kept: Vec<u8>,
    cap: usize,
    truncated: bool,
}

impl Logs {
    fn new(cap: usize) -> Logs {
        Logs {
            kept: Vec::new(),
            cap,
            truncated: false,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let room = self.cap.saturating_sub(self.kept.len());
        if bytes.len() > room {
            self.truncated = true;
        }
        self.kept.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn finish(self) -> (Vec<u8>, bool) {
        (self.kept, self.truncated)
    }
}
