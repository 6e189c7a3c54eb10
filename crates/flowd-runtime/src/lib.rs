//! flowd's Python side: provisioning the interpreter environment, the warm fork-server, the wire
//! protocol and the limits.
//!
//! A [`Runtime`] is one interpreter (named like `python3.11`) with its environment and its base
//! process. [`Runtime::execute`] runs a [`Job`] in a fork of the warm instance of the job's code
//! version, starting that instance on first use, and answers an [`Execution`].

mod bases;
mod cgroup;
pub mod envs;
mod instance;
mod memory;
pub mod protocol;
pub mod provision;
mod runtimes;
pub mod sandbox;
mod zygote;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowd_core::requirements::Requirements;
use flowd_core::workflow::{Isolation, Mode};
use flowd_core::PyValue;

pub use envs::{BuildConfig, BuildError, BuildFailure, BuiltEnv, InstallerChoice};
pub use instance::{ChildExit, InitFailure};
pub use provision::{Environment, Interpreter, ProvisionError};
pub use runtimes::Runtimes;
pub use sandbox::SandboxUser;

use bases::BaseProcess;
use envs::EnvBuilder;
use instance::{Instance, InstanceSpec};
use protocol::{MessageExt, ProtocolError};
use sandbox::PrivateTmp;
use zygote::{Zygote, ZygoteSpec};

/// The Python side of every process: this file is written next to the environment.
const RUNNER_SOURCE: &str = include_str!("../python/flowd_runner.py");

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Where environments are built (shared between data dirs is fine).
    pub runtime_dir: PathBuf,
    /// Where warm instances get their private temporary directories.
    pub tmp_dir: PathBuf,
    /// The interpreter to use instead of searching for one.
    pub python: Option<PathBuf>,
    /// Run user code as this user (default: `nobody` when flowd runs as root).
    pub sandbox_user: Option<SandboxUser>,
    /// Modules the base process imports once, shared by every instance.
    pub preload: Vec<String>,
    pub limits: OutputLimits,
    /// How many warm instances to keep; the least recently used beyond it are stopped, those
    /// reserved for a coming run (see [`Runtime::prewarm`]) last.
    pub max_warm_instances: usize,
    /// How much memory (MiB) warm instances and the base processes of requirement sets may hold
    /// together (what each holds alone, not what it shares with its base process); the least
    /// recently used are stopped beyond it.
    pub warm_memory_mb: u64,
    /// How environments for requirement sets are built.
    pub build: BuildConfig,
    /// `isolation: "reuse"`: warm instances per version serving executions in parallel.
    pub reuse_pool_size: usize,
    pub sandbox: SandboxLimits,
}

/// Limits every warm instance and execution runs under, besides a workflow's own time and
/// memory limits.
#[derive(Debug, Clone, Copy)]
pub struct SandboxLimits {
    /// Processes and threads of one warm instance and all its executions (cgroup `pids.max`).
    pub max_processes: u32,
    /// Largest file a workflow may write (`RLIMIT_FSIZE`).
    pub max_file_bytes: u64,
    /// Open files per process (`RLIMIT_NOFILE`).
    pub max_open_files: u32,
    /// Landlock, seccomp and the cgroups. Turned off only to measure what they cost.
    pub kernel_layers: bool,
}

impl Default for SandboxLimits {
    fn default() -> Self {
        SandboxLimits {
            max_processes: 256,
            max_file_bytes: 1 << 30,
            max_open_files: 1024,
            kernel_layers: true,
        }
    }
}

/// One isolation layer and whether it is in force.
#[derive(Debug, Clone, PartialEq)]
pub struct IsolationLayer {
    pub name: &'static str,
    /// What it does here, or why it is missing.
    pub detail: String,
    pub active: bool,
}

/// Caps on what comes back from an execution.
#[derive(Debug, Clone, Copy)]
pub struct OutputLimits {
    /// Captured stdout + stderr kept per execution.
    pub max_log_bytes: usize,
    /// Largest response body a workflow may return.
    pub max_body_bytes: usize,
    /// Largest result frame accepted (body + settings + error).
    pub max_result_bytes: usize,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            max_log_bytes: 1 << 20,
            max_body_bytes: 32 << 20,
            max_result_bytes: 80 << 20,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("the Python base process could not start: {0}")]
    Zygote(#[source] ProtocolError),
    #[error("the runtime environment {dir} is not reachable by uid {uid}, which user code runs as: give every directory above it the x bit for others, or set FLOWD_RUNTIME_DIR to a directory that is (e.g. under /var/lib)")]
    Unreachable { dir: PathBuf, uid: u32 },
    #[error("I/O error in the Python runtime: {0}")]
    Io(#[from] std::io::Error),
    #[error("the default runtime {name:?} is not among the interpreters found: {available} (give its interpreter with --python)")]
    UnknownDefault { name: String, available: String },
    #[error("the environment of the workflow's requirements could not be built: {0}")]
    Build(#[source] BuildError),
}

/// Why a version's warm instance could not be started.
#[derive(Debug)]
pub enum WarmUpFailure {
    /// The module's top level failed (raised, timed out).
    Init(InitFailure),
    /// The runtime could not start it.
    Runtime(RuntimeError),
}

/// Why code was refused at deploy time.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct CodeError {
    pub message: String,
    pub line: u32,
    pub column: u32,
}

/// An exception or a failure, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    /// The exception's type (`KeyError`, `requests.exceptions.HTTPError`) or flowd's reason.
    pub kind: String,
    pub message: String,
    pub traceback: Option<String>,
}

impl ErrorInfo {
    pub fn new(kind: &str, message: String) -> ErrorInfo {
        ErrorInfo {
            kind: kind.to_string(),
            message,
            traceback: None,
        }
    }

    fn from_message(value: Option<&PyValue>) -> ErrorInfo {
        let Some(value) = value else {
            return ErrorInfo::new("UnknownError", "no error details".into());
        };
        ErrorInfo {
            kind: value
                .str_field("type")
                .unwrap_or("UnknownError")
                .to_string(),
            message: value.str_field("message").unwrap_or("").to_string(),
            traceback: value.str_field("traceback").map(str::to_string),
        }
    }
}

/// One execution to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Identifies the code version: executions with the same key share a warm instance.
    pub version_key: String,
    pub code: Arc<str>,
    /// The version's requirement set (`None`: the runtime's base environment).
    pub requirements: Option<Arc<Requirements>>,
    pub mode: Mode,
    /// `_request` (catch mode).
    pub request: Option<PyValue>,
    /// The settings snapshot, as a JSON object.
    pub settings_json: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Environment variables of the workflow's processes.
    pub env: Vec<(String, String)>,
    /// A fork per execution, or executions inside the warm instance.
    pub isolation: Isolation,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `workflow()` returned.
    Returned {
        /// The return value, reduced by the runner (see `flowd_core::response::map_return`).
        value: PyValue,
        /// Set when the runner could not pass the return value on (too large, unreadable).
        warning: Option<String>,
        /// The settings after the run as a JSON object, or why they cannot be persisted.
        settings: Result<String, String>,
    },
    /// `workflow()` raised.
    Raised(ErrorInfo),
    /// The module's top level failed: the code cannot run at all.
    InitFailed(ErrorInfo),
    /// The time limit was reached; the execution was killed.
    Timeout,
    /// Killed for memory or another limit, or it died (signal, `os._exit`).
    Killed(ErrorInfo),
    /// flowd could not run it (the runtime is unavailable).
    Failed(ErrorInfo),
}

impl Outcome {
    fn from_result(result: &PyValue) -> Outcome {
        match result.str_field("outcome") {
            Some("ok") => Outcome::Returned {
                value: result.field("ret").cloned().unwrap_or(PyValue::None),
                warning: result.str_field("ret_warning").map(str::to_string),
                settings: match (
                    result.str_field("settings"),
                    result.str_field("settings_error"),
                ) {
                    (_, Some(error)) => Err(error.to_string()),
                    (Some(json), None) => Ok(json.to_string()),
                    (None, None) => Err("the runner sent no settings".to_string()),
                },
            },
            Some("error") => Outcome::Raised(ErrorInfo::from_message(result.field("error"))),
            Some("killed") => Outcome::Killed(ErrorInfo::from_message(result.field("error"))),
            _ => Outcome::Killed(ErrorInfo::new(
                "ProtocolError",
                "the execution process sent an invalid result".into(),
            )),
        }
    }
}

/// The record of one execution, as the runtime saw it.
#[derive(Debug, Clone)]
pub struct Execution {
    pub outcome: Outcome,
    /// Captured stdout and stderr, capped.
    pub logs: Vec<u8>,
    pub logs_truncated: bool,
    pub duration: Duration,
}

/// What [`Runtime::prewarm`] holds an instance for: a run expected `run_in` from now, and how
/// long past that the instance stays held if the run starts late (or never comes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reservation {
    pub run_in: Duration,
    pub grace: Duration,
}

/// A slot's reservation: the run it is held for, and when it ends at the latest.
#[derive(Debug, Clone, Copy)]
struct Held {
    run_at: Instant,
    until: Instant,
}

/// An execution this close before the time a reservation was made for is that run (the
/// scheduler never starts a run early; this absorbs the rounding of its millisecond clock).
const RUN_AT_TOLERANCE: Duration = Duration::from_millis(100);

/// A warm instance slot: one per code version.
struct Slot {
    /// `isolation: "fork"`: the one instance every execution forks from.
    instance: tokio::sync::Mutex<Option<Arc<Instance>>>,
    /// `isolation: "reuse"`: instances waiting for their next execution, and how many may exist.
    idle: Mutex<Vec<Arc<Instance>>>,
    reuse_capacity: tokio::sync::Semaphore,
    last_used: AtomicU64,
    /// Set by a pre-warm: the slot is held for a coming run, and evicted only when no slot
    /// without a reservation is left to evict. The run it was held for clears it.
    held: Mutex<Option<Held>>,
    /// The base process its instances are forked from.
    base: Arc<BaseProcess>,
}

impl Slot {
    /// Holds the slot for a coming run (and, if it was held for another already, until the
    /// later of the two).
    fn reserve(&self, reservation: Reservation, now: Instant) {
        let wanted = Held {
            run_at: now + reservation.run_in,
            until: now + reservation.run_in + reservation.grace,
        };
        let mut held = lock(&self.held);
        *held = Some(match *held {
            Some(earlier) => Held {
                run_at: earlier.run_at.max(wanted.run_at),
                until: earlier.until.max(wanted.until),
            },
            None => wanted,
        });
    }

    /// An execution starts at `now`: the reservation ends if this is the run it was made for,
    /// not when it is an earlier run with the reserved one still to come.
    fn release_if_due(&self, now: Instant) {
        let mut held = lock(&self.held);
        if held.is_some_and(|held| held.run_at <= now + RUN_AT_TOLERANCE) {
            *held = None;
        }
    }

    /// Whether its `isolation: "fork"` instance is running, or being started or used right now.
    fn has_live_instance(&self) -> bool {
        match self.instance.try_lock() {
            Ok(instance) => instance.as_ref().is_some_and(|i| i.is_alive()),
            Err(_) => true,
        }
    }

    /// When the run it is held for is due, if it is held at `now` (an expired reservation is
    /// not).
    fn reserved_for(&self, now: Instant) -> Option<Instant> {
        lock(&self.held)
            .filter(|held| held.until > now)
            .map(|held| held.run_at)
    }

    /// What its warm instances hold alone, in KiB.
    fn memory_kb(&self) -> u64 {
        let forked = self
            .instance
            .try_lock()
            .ok()
            .and_then(|instance| instance.as_ref().map(|i| i.memory_kb()))
            .unwrap_or(0);
        let reused: u64 = lock(&self.idle).iter().map(|i| i.memory_kb()).sum();
        forked + reused
    }
}

/// One interpreter, its environment, its base process and its warm instances.
pub struct Runtime {
    environment: Environment,
    config: RuntimeConfig,
    zygote_spec: ZygoteSpec,
    /// The base process of the runtime's own environment.
    base: Arc<BaseProcess>,
    /// Builds the environments of requirement sets.
    builder: EnvBuilder,
    /// The base processes of the requirement sets in use, by environment id.
    env_bases: Mutex<HashMap<String, Arc<BaseProcess>>>,
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    clock: AtomicU64,
    cgroups: Option<cgroup::InstanceCgroups>,
    /// The layers each instance applies to itself.
    instance_layers: Vec<String>,
    layers: Vec<IsolationLayer>,
}

impl Runtime {
    /// Finds the interpreter, provisions its environment (first start only) and starts the base
    /// process. `progress` gets a line before each slow step.
    pub async fn start(
        config: RuntimeConfig,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Runtime, RuntimeError> {
        let user = sandbox::choose_user(config.sandbox_user);
        let interpreter =
            provision::find_interpreter(config.python.as_deref(), user.is_some()).await?;
        Runtime::start_with(config, interpreter, progress).await
    }

    /// Provisions the environment of an interpreter already found and starts its base process.
    pub async fn start_with(
        config: RuntimeConfig,
        interpreter: Interpreter,
        progress: &(dyn Fn(&str) + Send + Sync),
    ) -> Result<Runtime, RuntimeError> {
        let user = sandbox::choose_user(config.sandbox_user);
        let environment = provision::provision(&interpreter, &config.runtime_dir, progress).await?;
        if let Some(user) = user {
            if !provision::reachable_by_others(&environment.dir) {
                return Err(RuntimeError::Unreachable {
                    dir: environment.dir.clone(),
                    uid: user.uid,
                });
            }
        }
        let runner = write_runner(&environment.dir)?;
        std::fs::create_dir_all(&config.tmp_dir)?;
        let zygote_spec = ZygoteSpec {
            python: environment.python.clone(),
            runner,
            preload: config.preload.clone(),
            user,
        };
        let zygote = Zygote::start(&zygote_spec)
            .await
            .map_err(RuntimeError::Zygote)?;
        let cgroups = cgroup::InstanceCgroups::open(config.sandbox.kernel_layers, user);
        let (layers, instance_layers) = isolation_layers(&zygote, user, cgroups.as_ref(), &config);
        let builder =
            EnvBuilder::new(&environment, &config.runtime_dir, config.build.clone()).await;
        Ok(Runtime {
            cgroups: cgroups.ok(),
            instance_layers,
            layers,
            environment,
            config,
            base: Arc::new(BaseProcess::running(zygote_spec.clone(), zygote)),
            builder,
            env_bases: Mutex::new(HashMap::new()),
            zygote_spec,
            slots: Mutex::new(HashMap::new()),
            clock: AtomicU64::new(0),
        })
    }

    /// `python3.11`
    pub fn name(&self) -> &str {
        &self.environment.interpreter.runtime_name
    }

    pub fn environment(&self) -> &Environment {
        &self.environment
    }

    /// The isolation layers in force, and those missing on this host.
    pub fn isolation_layers(&self) -> &[IsolationLayer] {
        &self.layers
    }

    /// The installer environments are built with (`uv 0.5.11`, `pip`).
    pub fn installer(&self) -> &str {
        self.builder.installer()
    }

    /// Builds the environment of a requirement set (or finds it built): for a deploy, before the
    /// version's module is imported.
    pub async fn build_environment(
        &self,
        requirements: &Requirements,
    ) -> Result<BuiltEnv, BuildError> {
        self.builder.build(requirements).await
    }

    /// Starts the warm instance of a job's version and says whether its module's top level ran:
    /// the import check of a deploy. The instance stays warm for the version's first execution.
    pub async fn warm_up(&self, job: &Job) -> Result<(), WarmUpFailure> {
        let base = self.base_for(job).await.map_err(WarmUpFailure::Runtime)?;
        let slot = self.slot(&job.version_key, &base);
        let started = match job.isolation {
            Isolation::Fork => {
                let mut current = slot.instance.lock().await;
                match current.as_ref() {
                    Some(instance) if instance.is_alive() => Ok(()),
                    _ => match self.spawn_instance(&base, job).await {
                        Ok(Ok(instance)) => {
                            *current = Some(Arc::new(instance));
                            Ok(())
                        }
                        Ok(Err(failure)) => Err(WarmUpFailure::Init(failure)),
                        Err(error) => Err(WarmUpFailure::Runtime(error)),
                    },
                }
            }
            Isolation::Reuse => match self.spawn_instance(&base, job).await {
                Ok(Ok(instance)) => {
                    lock(&slot.idle).push(Arc::new(instance));
                    Ok(())
                }
                Ok(Err(failure)) => Err(WarmUpFailure::Init(failure)),
                Err(error) => Err(WarmUpFailure::Runtime(error)),
            },
        };
        if started.is_err() {
            self.forget(&job.version_key);
        }
        self.evict_beyond_capacity(&job.version_key, 0);
        started
    }

    /// The base process a job's instances come from: the runtime's own, or its requirement
    /// set's (whose environment is built first if it is missing, e.g. after a cache was wiped).
    async fn base_for(&self, job: &Job) -> Result<Arc<BaseProcess>, RuntimeError> {
        let Some(requirements) = &job.requirements else {
            return Ok(self.base.clone());
        };
        let id = self.builder.env_id(requirements);
        if let Some(base) = lock(&self.env_bases).get(&id) {
            return Ok(base.clone());
        }
        let built = match self.builder.existing(requirements) {
            Some(built) => built,
            None => self
                .builder
                .build(requirements)
                .await
                .map_err(RuntimeError::Build)?,
        };
        let spec = ZygoteSpec {
            python: built.python.clone(),
            ..self.zygote_spec.clone()
        };
        let mut bases = lock(&self.env_bases);
        Ok(bases
            .entry(id.clone())
            .or_insert_with(|| Arc::new(BaseProcess::new(Some(id), spec)))
            .clone())
    }

    /// The user code runs as, if flowd switches users.
    pub fn sandbox_user(&self) -> Option<SandboxUser> {
        self.zygote_spec.user
    }

    /// Parses `code` (without running it) and checks its `workflow` signature for `mode`.
    pub async fn validate(
        &self,
        code: &str,
        mode: Mode,
    ) -> Result<Result<(), CodeError>, RuntimeError> {
        let mut guard = self.base.lock().await;
        let zygote = self.base.live(&mut guard).await?;
        match zygote.validate(code, mode.workflow_arity()).await {
            Ok(result) => Ok(result),
            Err(_) => {
                // The base process died under us: start another and try once more.
                *guard = None;
                let zygote = self.base.live(&mut guard).await?;
                zygote
                    .validate(code, mode.workflow_arity())
                    .await
                    .map_err(RuntimeError::Zygote)
            }
        }
    }

    /// Runs a job in a fresh fork of the warm instance of its code version.
    pub async fn execute(&self, job: &Job) -> Execution {
        let base = match self.base_for(job).await {
            Ok(base) => base,
            Err(error) => return not_started(Err(error)),
        };
        let slot = self.slot(&job.version_key, &base);
        slot.release_if_due(Instant::now());
        match job.isolation {
            Isolation::Fork => self.execute_forked(&slot, job).await,
            Isolation::Reuse => self.execute_in_instance(&slot, job).await,
        }
    }

    /// `isolation: "fork"`: a fresh fork of the version's one warm instance.
    async fn execute_forked(&self, slot: &Slot, job: &Job) -> Execution {
        let instance = self.forkable_instance(slot, job).await;
        match instance {
            Ok(instance) => instance.run(job, &self.config.limits).await,
            Err(execution) => execution,
        }
    }

    /// The version's warm instance, started if it is not running.
    async fn forkable_instance(&self, slot: &Slot, job: &Job) -> Result<Arc<Instance>, Execution> {
        let mut current = slot.instance.lock().await;
        match current.as_ref() {
            Some(instance) if instance.is_alive() => Ok(instance.clone()),
            _ => {
                *current = None;
                match self.spawn_instance(&slot.base, job).await {
                    Ok(Ok(instance)) => {
                        let instance = Arc::new(instance);
                        *current = Some(instance.clone());
                        drop(current);
                        self.evict_beyond_capacity(&job.version_key, 0);
                        Ok(instance)
                    }
                    Ok(Err(failure)) => Err(not_started(Ok(failure))),
                    Err(error) => Err(not_started(Err(error))),
                }
            }
        }
    }

    /// Starts the warm instance of a job's version ahead of its first execution (a scheduled run
    /// about to fire), so that the run does not begin with the module's top level, and reserves
    /// it for that run: until the run comes (or its grace ends), the LRU stops it only when no
    /// instance without a reservation is left to stop. Whether it worked does not matter here:
    /// the execution reports any failure.
    pub async fn prewarm(&self, job: &Job, reservation: Reservation) {
        let Ok(base) = self.base_for(job).await else {
            return;
        };
        let slot = self.slot(&job.version_key, &base);
        slot.reserve(reservation, Instant::now());
        match job.isolation {
            // Warm already (or being started): its executions keep a fork parked; forking here
            // too would race the run it was pre-warmed for.
            Isolation::Fork if slot.has_live_instance() => {}
            Isolation::Fork => {
                if let Ok(instance) = self.forkable_instance(&slot, job).await {
                    instance.park(&self.config.limits).await;
                }
            }
            Isolation::Reuse => {
                let has_idle = !lock(&slot.idle).is_empty();
                if !has_idle {
                    if let Ok(Ok(instance)) = self.spawn_instance(&base, job).await {
                        lock(&slot.idle).push(Arc::new(instance));
                        self.evict_beyond_capacity(&job.version_key, 0);
                    }
                }
            }
        }
    }

    /// `isolation: "reuse"`: the execution runs inside an idle warm instance of the version (one
    /// execution at a time per instance, up to `reuse_pool_size` instances in parallel).
    async fn execute_in_instance(&self, slot: &Slot, job: &Job) -> Execution {
        let Ok(_turn) = slot.reuse_capacity.acquire().await else {
            return not_started(Err(RuntimeError::Zygote(ProtocolError::Closed)));
        };
        let idle = {
            let mut idle = lock(&slot.idle);
            idle.retain(|instance| instance.is_alive());
            idle.pop()
        };
        let instance = match idle {
            Some(instance) => instance,
            None => match self.spawn_instance(&slot.base, job).await {
                Ok(Ok(instance)) => {
                    // Busy, so not in the slot's idle list yet: counted here.
                    self.evict_beyond_capacity(&job.version_key, instance.memory_kb());
                    Arc::new(instance)
                }
                Ok(Err(failure)) => return not_started(Ok(failure)),
                Err(error) => return not_started(Err(error)),
            },
        };
        let execution = instance.run(job, &self.config.limits).await;
        if instance.is_alive() {
            lock(&slot.idle).push(instance);
        }
        execution
    }

    /// Stops the warm instance of a version (after a new deploy, or a deletion).
    pub fn forget(&self, version_key: &str) {
        let mut slots = lock(&self.slots);
        slots.remove(version_key);
        self.stop_unused_bases(&slots);
    }

    /// Stops every warm instance (and the base processes of requirement sets): they start again
    /// on their next use.
    pub fn forget_all(&self) {
        let mut slots = lock(&self.slots);
        slots.clear();
        self.stop_unused_bases(&slots);
    }

    /// What the warm instances and the base processes of requirement sets hold alone, in KiB.
    pub fn warm_memory_kb(&self) -> u64 {
        let slots: Vec<Arc<Slot>> = lock(&self.slots).values().cloned().collect();
        let bases: Vec<Arc<BaseProcess>> = lock(&self.env_bases).values().cloned().collect();
        slots.iter().map(|s| s.memory_kb()).sum::<u64>()
            + bases.iter().map(|b| b.memory_kb()).sum::<u64>()
    }

    /// The base processes of requirement sets whose versions have no warm instance any more.
    fn stop_unused_bases(&self, slots: &HashMap<String, Arc<Slot>>) {
        let mut bases = lock(&self.env_bases);
        bases.retain(|id, _| {
            slots
                .values()
                .any(|slot| slot.base.environment.as_deref() == Some(id.as_str()))
        });
    }

    /// How many warm instances are kept now.
    pub fn warm_instances(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or(0)
    }

    fn slot(&self, key: &str, base: &Arc<BaseProcess>) -> Arc<Slot> {
        let now = self.clock.fetch_add(1, Ordering::Relaxed);
        let mut slots = match self.slots.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        };
        let slot = slots
            .entry(key.to_string())
            .or_insert_with(|| {
                Arc::new(Slot {
                    instance: tokio::sync::Mutex::new(None),
                    idle: Mutex::new(Vec::new()),
                    reuse_capacity: tokio::sync::Semaphore::new(self.config.reuse_pool_size.max(1)),
                    last_used: AtomicU64::new(now),
                    held: Mutex::new(None),
                    base: base.clone(),
                })
            })
            .clone();
        slot.last_used.store(now, Ordering::Relaxed);
        slot
    }

    /// Stops the least recently used warm instances while there are more than
    /// `max_warm_instances`, or while they (with `busy_kb` held by an instance in use, not in
    /// its slot) and the base processes of requirement sets hold more than `warm_memory_mb` —
    /// those reserved for a coming run only once no other is left, and never the instances of
    /// `keep` (the version just started).
    fn evict_beyond_capacity(&self, keep: &str, busy_kb: u64) {
        let budget_kb = self.config.warm_memory_mb.saturating_mul(1024);
        let mut slots = lock(&self.slots);
        let candidates = eviction_order(&slots);
        let bases_kb: u64 = lock(&self.env_bases).values().map(|b| b.memory_kb()).sum();
        let mut total_kb = candidates.iter().map(|c| c.memory_kb).sum::<u64>() + bases_kb + busy_kb;
        let mut count = slots.len();
        for EvictionCandidate {
            key, memory_kb: kb, ..
        } in candidates
        {
            let over_count = count > self.config.max_warm_instances.max(1);
            let over_memory = total_kb > budget_kb;
            if !over_count && !over_memory {
                break;
            }
            if key == keep {
                continue;
            }
            slots.remove(&key);
            count -= 1;
            total_kb = total_kb.saturating_sub(kb);
            tracing::debug!(version = %key, memory_kb = kb, over_memory, "warm instance stopped (least recently used)");
        }
        self.stop_unused_bases(&slots);
    }

    async fn spawn_instance(
        &self,
        base: &BaseProcess,
        job: &Job,
    ) -> Result<Result<Instance, InitFailure>, RuntimeError> {
        // Process-wide: the runtimes of one flowd share the temporary directory.
        static INSTANCES: AtomicU64 = AtomicU64::new(0);
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let tmp = PrivateTmp::create(
            &self.config.tmp_dir,
            &format!("instance-{}-{n}", std::process::id()),
            self.zygote_spec.user,
        )?;
        let limits = cgroup::InstanceLimits {
            max_processes: self.config.sandbox.max_processes,
            memory_mb: job.memory_mb,
        };
        let cgroup = match &self.cgroups {
            Some(cgroups) => {
                Some(cgroups.create(&format!("instance-{n}"), limits, self.zygote_spec.user)?)
            }
            None => None,
        };
        let spec = InstanceSpec {
            code: &job.code,
            mode: job.mode.as_str(),
            memory_mb: job.memory_mb,
            env: &job.env,
            init_timeout: job.timeout,
            layers: &self.instance_layers,
            limits: &self.config.sandbox,
            isolation: job.isolation.as_str(),
        };
        let pending = {
            let mut guard = base.lock().await;
            let zygote = base.live(&mut guard).await?;
            if let (Some(cgroups), Some(pid)) = (&self.cgroups, zygote.pid()) {
                cgroups.adopt_base(pid)?;
            }
            match Instance::request(zygote, &spec, &tmp, cgroup.as_ref()).await {
                Ok(pending) => pending,
                Err(error) => {
                    *guard = None;
                    return Err(RuntimeError::Zygote(error));
                }
            }
        };
        Instance::await_ready(pending, spec.init_timeout, tmp, cgroup)
            .await
            .map_err(RuntimeError::Zygote)
    }
}

/// A warm instance slot as the LRU ranks it.
#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct EvictionCandidate {
    rank: EvictionRank,
    key: String,
    memory_kb: u64,
}

/// The order of eviction: slots nobody holds, least recently used first; then, only if that is
/// not enough, held ones, the one whose run comes last first (it can be started again before
/// its run more easily than the one about to fire).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum EvictionRank {
    Unheld { last_used: u64 },
    Held { run_at: std::cmp::Reverse<Instant> },
}

/// The slots in the order they are evicted (see [`EvictionRank`]).
fn eviction_order(slots: &HashMap<String, Arc<Slot>>) -> Vec<EvictionCandidate> {
    let now = Instant::now();
    let mut candidates: Vec<EvictionCandidate> = slots
        .iter()
        .map(|(key, slot)| EvictionCandidate {
            rank: match slot.reserved_for(now) {
                Some(run_at) => EvictionRank::Held {
                    run_at: std::cmp::Reverse(run_at),
                },
                None => EvictionRank::Unheld {
                    last_used: slot.last_used.load(Ordering::Relaxed),
                },
            },
            key: key.clone(),
            memory_kb: slot.memory_kb(),
        })
        .collect();
    candidates.sort();
    candidates
}

/// Writes the runner next to the environment (content-addressed, so concurrent writers agree).
fn write_runner(environment_dir: &Path) -> std::io::Result<PathBuf> {
    use sha2::Digest;
    let digest = hex::encode(sha2::Sha256::digest(RUNNER_SOURCE.as_bytes()));
    let path = environment_dir.join(format!("flowd_runner_{}.py", &digest[..12]));
    if !path.exists() {
        let staging = environment_dir.join(format!(".runner-{}", std::process::id()));
        std::fs::write(&staging, RUNNER_SOURCE)?;
        std::fs::rename(&staging, &path)?;
    }
    Ok(path)
}

/// The execution of a job whose instance could not be started: why (the module's top level
/// failed, or the runtime could not start it).
fn not_started(why: Result<InitFailure, RuntimeError>) -> Execution {
    let (outcome, logs) = match why {
        Ok(failure) => (
            Outcome::InitFailed(failure.error),
            failure.output.into_bytes(),
        ),
        Err(error) => (
            Outcome::Failed(ErrorInfo::new(
                "RuntimeUnavailable",
                format!("the Python runtime could not start this workflow: {error}"),
            )),
            Vec::new(),
        ),
    };
    Execution {
        outcome,
        logs,
        logs_truncated: false,
        duration: Duration::ZERO,
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// Decides the layers from what the base process probed and what flowd itself can do; returns
/// the full report and the names the instances must apply.
fn isolation_layers(
    zygote: &Zygote,
    user: Option<SandboxUser>,
    cgroups: Result<&cgroup::InstanceCgroups, &cgroup::CgroupsUnavailable>,
    config: &RuntimeConfig,
) -> (Vec<IsolationLayer>, Vec<String>) {
    let probed = |name: &str| {
        zygote
            .layers
            .iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, detail)| detail.clone())
    };
    let layer = |name, detail: String, active| IsolationLayer {
        name,
        detail,
        active,
    };
    let mut layers = vec![
        layer(
            "fork_per_execution",
            "each execution runs in its own fork of the warm instance: no shared globals".into(),
            true,
        ),
        layer(
            "deadline",
            "flowd kills the execution's process group at its time limit, and after every execution"
                .into(),
            true,
        ),
        match user {
            Some(user) => layer(
                "unprivileged_user",
                format!("user code runs as uid {} gid {}", user.uid, user.gid),
                true,
            ),
            None => layer(
                "unprivileged_user",
                "flowd is not root: user code runs under flowd's own uid".into(),
                false,
            ),
        },
        layer(
            "scrubbed_environment",
            "the Python processes start with an empty environment (no FLOWD_* or server secrets)"
                .into(),
            true,
        ),
        layer(
            "private_tmp",
            "each warm instance has its own temporary directory (TMPDIR, HOME, working directory)"
                .into(),
            true,
        ),
    ];
    layers.push(match probed("rlimits") {
        Some(detail) => layer("rlimits", detail, true),
        None => layer("rlimits", "not reported by the base process".into(), false),
    });
    layers.extend(cgroup::layers(cgroups, config.sandbox.max_processes));
    let mut instance_layers = Vec::new();
    for (name, missing) in [
        (
            "landlock",
            "the kernel offers no Landlock: the filesystem is protected by the unprivileged uid only",
        ),
        (
            "landlock_scope",
            "the kernel's Landlock is older than ABI 6: workflows can signal each other's processes and reach their abstract Unix sockets",
        ),
        ("seccomp", "no seccomp deny list for this architecture"),
    ] {
        match probed(name) {
            Some(_) if !config.sandbox.kernel_layers => {
                layers.push(layer(name, "turned off by configuration".into(), false))
            }
            Some(detail) => {
                instance_layers.push(name.to_string());
                layers.push(layer(name, detail, true));
            }
            None => layers.push(layer(name, missing.into(), false)),
        }
    }
    (layers, instance_layers)
}
