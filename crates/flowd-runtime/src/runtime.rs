//! [`Runtime`]: one interpreter, its environment, its base processes and its warm instances —
//! starting them, running jobs in them, and stopping them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowd_core::requirements::Requirements;
use flowd_core::workflow::{Isolation, Mode};

use crate::bases::{self, BaseProcess, BaseStatus};
use crate::cgroup;
use crate::config::RuntimeConfig;
use crate::egress::WorkflowExceptions;
use crate::envs::{BuildError, BuiltEnv, EnvBuilder};
use crate::error::{CodeError, RuntimeError, WarmUpFailure};
use crate::instance::{InitFailure, Instance, InstanceSpec};
use crate::instance_egress;
use crate::job::Job;
use crate::layers::{isolation_layers, IsolationLayer};
use crate::metrics;
use crate::outcome::{ErrorInfo, Execution, Outcome};
use crate::provision::{self, Environment, Interpreter};
use crate::sandbox::{self, PrivateTmp, SandboxUser};
use crate::slots::{Capacity, Reservation, Slot, Slots};
use crate::sync::lock;
use crate::zygote::ZygoteSpec;

/// How much longer than its `timeout_s` a call may take at most, whatever dies underneath:
/// stopping the execution, reading its exit status and the rest of its output, and the pauses
/// of a loaded machine. A call that must start its warm instance first (after a crash, an
/// eviction) spends the same budget on the module's top level.
pub const CALL_MARGIN: Duration = Duration::from_secs(2);

/// The Python side of every process: this file is written next to the environment.
const RUNNER_SOURCE: &str = include_str!("../python/flowd_runner.py");

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
    slots: Mutex<Slots>,
    cgroups: Option<cgroup::InstanceCgroups>,
    /// The layers each instance applies to itself.
    instance_layers: Vec<String>,
    /// The seccomp programs, when `instance_layers` has `seccomp`.
    seccomp_programs: Vec<Vec<u8>>,
    layers: Vec<IsolationLayer>,
    /// Where workflows' own egress exceptions are opened (none: they stay closed).
    workflow_egress: Option<Arc<WorkflowExceptions>>,
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
        Runtime::start_in(config, interpreter, progress, None).await
    }

    /// [`Runtime::start_with`], opening workflows' own egress exceptions in `workflow_egress`.
    pub(crate) async fn start_in(
        config: RuntimeConfig,
        interpreter: Interpreter,
        progress: &(dyn Fn(&str) + Send + Sync),
        workflow_egress: Option<Arc<WorkflowExceptions>>,
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
            proxy: config.egress.proxy.clone(),
        };
        let base = Arc::new(BaseProcess::start_now(zygote_spec.clone()).await?);
        let cgroups = cgroup::InstanceCgroups::open(
            config.sandbox.kernel_layers,
            user,
            workflow_egress.is_some(),
        );
        let seccomp = crate::seccomp::InstanceFilter::native();
        let (layers, instance_layers) = {
            let mut guard = base.lock().await;
            let zygote = base.live(&mut guard).await?;
            isolation_layers(zygote, user, cgroups.as_ref(), &seccomp, &config)
        };
        bases::supervise(&base);
        let seccomp_programs = match seccomp {
            Ok(filter) if instance_layers.iter().any(|name| name == "seccomp") => {
                filter.programs_as_bytes()
            }
            _ => Vec::new(),
        };
        let builder =
            EnvBuilder::new(&environment, &config.runtime_dir, config.build.clone()).await;
        Ok(Runtime {
            cgroups: cgroups.ok(),
            instance_layers,
            seccomp_programs,
            layers,
            environment,
            config,
            base,
            builder,
            env_bases: Mutex::new(HashMap::new()),
            zygote_spec,
            slots: Mutex::new(Slots::default()),
            workflow_egress,
        })
    }

    /// Whether this runtime's warm instances can get egress exceptions of their own, or why not.
    pub fn instance_egress(&self) -> Result<(), String> {
        match &self.cgroups {
            Some(cgroups) => cgroups.socket_groups().map_err(str::to_string),
            None => Err("warm instances get no cgroup here".into()),
        }
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
        let started = Instant::now();
        let built = self.builder.build(requirements).await;
        match &built {
            Ok(env) if env.reused => {}
            Ok(env) => metrics::environment_built(self.name(), true, env.duration),
            Err(_) => metrics::environment_built(self.name(), false, started.elapsed()),
        }
        built
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
            .or_insert_with(|| {
                let base = Arc::new(BaseProcess::new(Some(id), spec));
                bases::supervise(&base);
                base
            })
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

    /// The state of its base processes: its own first, then those of requirement sets.
    pub fn base_processes(&self) -> Vec<BaseStatus> {
        let env_bases: Vec<Arc<BaseProcess>> = lock(&self.env_bases).values().cloned().collect();
        std::iter::once(self.base.status())
            .chain(env_bases.iter().map(|base| base.status()))
            .collect()
    }

    /// Runs a job in a fresh fork of the warm instance of its code version. Whatever happens
    /// underneath, it answers within the job's timeout and [`CALL_MARGIN`]: past that, the call
    /// is abandoned (what it started is killed) and reported as timed out.
    #[tracing::instrument(name = "runtime", skip_all, fields(runtime = %self.name(), isolation = %job.isolation))]
    pub async fn execute(&self, job: &Job) -> Execution {
        let started = Instant::now();
        match tokio::time::timeout(job.timeout + CALL_MARGIN, self.execute_unbounded(job)).await {
            Ok(execution) => {
                tracing::debug!(
                    outcome = execution.outcome.kind(),
                    duration_ms = execution.duration.as_secs_f64() * 1000.0,
                    "call ended"
                );
                execution
            }
            Err(_) => {
                tracing::warn!(
                    version = %job.version_key,
                    "a call was abandoned at its deadline ({} s and the margin)",
                    job.timeout.as_secs_f64()
                );
                Execution {
                    outcome: Outcome::Timeout,
                    logs: Vec::new(),
                    logs_truncated: false,
                    duration: started.elapsed(),
                }
            }
        }
    }

    async fn execute_unbounded(&self, job: &Job) -> Execution {
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
            // Not closed while the slot exists.
            return not_started(Err(RuntimeError::PoolClosed));
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

    /// Stops the warm instances of every version key `stop` says so of (all of a workflow's,
    /// say): they start again on their next use.
    pub fn forget_where(&self, stop: impl Fn(&str) -> bool) {
        let mut slots = lock(&self.slots);
        slots.remove_where(stop);
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
        let slots = lock(&self.slots).all();
        let bases: Vec<Arc<BaseProcess>> = lock(&self.env_bases).values().cloned().collect();
        slots.iter().map(|s| s.memory_kb()).sum::<u64>()
            + bases.iter().map(|b| b.memory_kb()).sum::<u64>()
    }

    /// The base processes of requirement sets whose versions have no warm instance any more.
    fn stop_unused_bases(&self, slots: &Slots) {
        lock(&self.env_bases).retain(|id, _| slots.use_environment(id));
    }

    /// How many warm instances are kept now.
    pub fn warm_instances(&self) -> usize {
        lock(&self.slots).len()
    }

    fn slot(&self, key: &str, base: &Arc<BaseProcess>) -> Arc<Slot> {
        lock(&self.slots).use_slot(key, base, self.config.reuse_pool_size)
    }

    /// Stops the least recently used warm instances beyond `max_warm_instances`, or beyond
    /// `warm_memory_mb` together with the base processes of requirement sets and `busy_kb` held
    /// by an instance in use (not in its slot); never those of `keep` (the version just
    /// started). See [`Slots::evict_beyond`].
    fn evict_beyond_capacity(&self, keep: &str, busy_kb: u64) {
        let capacity = Capacity {
            max_instances: self.config.max_warm_instances,
            memory_kb: self.config.warm_memory_mb.saturating_mul(1024),
        };
        let mut slots = lock(&self.slots);
        let bases_kb: u64 = lock(&self.env_bases).values().map(|b| b.memory_kb()).sum();
        let evicted = slots.evict_beyond(capacity, bases_kb + busy_kb, keep);
        metrics::warm_instances_evicted(self.name(), evicted);
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
        let exceptions = instance_egress::exceptions_of(
            job,
            self.workflow_egress.as_ref(),
            self.instance_egress(),
        )
        .await;
        let mut cgroup = match &self.cgroups {
            Some(cgroups) => Some(cgroups.create(
                &format!("instance-{n}"),
                limits,
                self.zygote_spec.user,
                !exceptions.is_empty(),
            )?),
            None => None,
        };
        if let (Some(group), Some(workflow_egress)) = (cgroup.as_mut(), &self.workflow_egress) {
            if !exceptions.is_empty() {
                instance_egress::open(workflow_egress, n, group, exceptions).await?;
            }
        }
        let spec = InstanceSpec {
            code: &job.code,
            mode: job.mode.as_str(),
            memory_mb: job.memory_mb,
            env: &job.env,
            init_timeout: job.timeout,
            layers: &self.instance_layers,
            seccomp_programs: &self.seccomp_programs,
            limits: &self.config.sandbox,
            isolation: job.isolation.as_str(),
        };
        let pending = {
            let mut guard = base.lock().await;
            let zygote = base.live(&mut guard).await?;
            // A restarted base process joins the cgroup of base processes again.
            if let (Some(cgroups), Some(pid)) = (&self.cgroups, zygote.pid()) {
                cgroups.adopt_base(pid)?;
            }
            // A base process that did not answer is out of step: started again on its next use.
            Instance::request(zygote, &spec, &tmp, cgroup.as_ref())
                .await
                .map_err(RuntimeError::Zygote)?
        };
        let started = Instance::await_ready(pending, spec.init_timeout, tmp, cgroup)
            .await
            .map_err(RuntimeError::Instance)?;
        if started.is_ok() {
            metrics::warm_instance_started(self.name());
        }
        Ok(started)
    }
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
