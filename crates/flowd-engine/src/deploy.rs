//! Deploying a version without breaking what runs: the version's environment is built (its
//! requirements installed) and its module's top level imported in the sandbox before it becomes
//! active. Until then — and for good if either fails — the previous version keeps serving, and
//! the version's record says why (the installer's output, the traceback).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use flowd_core::workflow::VersionState;
use flowd_runtime::{Runtimes, WarmUpFailure};
use flowd_store::{Store, StoreError, VersionOutcome, VersionRecord, WorkflowRecord};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::executor::version_job;
use crate::hot::{version_key, version_requirements, HotCache};

/// Where a deployed version is, as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    pub version: u32,
    pub state: VersionState,
    /// Whether it became the active version.
    pub active: bool,
    pub error: Option<String>,
    pub build_log: String,
}

impl Deployment {
    fn building(version: u32) -> Deployment {
        Deployment {
            version,
            state: VersionState::Building,
            active: false,
            error: None,
            build_log: String::new(),
        }
    }
}

type Waiters = watch::Receiver<Option<Deployment>>;

/// Runs builds in the background and lets callers wait for them.
pub struct Deployer {
    store: Arc<dyn Store>,
    runtimes: Arc<Runtimes>,
    cache: Arc<HotCache>,
    /// Builds going, by (workflow id, version).
    going: Mutex<HashMap<(String, u32), Waiters>>,
    /// Environments built at once: many deploys at once (`?wait=false`, a restart resuming
    /// builds) queue here instead of starting every installer together.
    building: tokio::sync::Semaphore,
    /// Import checks (warm instances starting) at once.
    importing: tokio::sync::Semaphore,
}

/// Environments built at once.
const PARALLEL_BUILDS: usize = 2;
/// Import checks at once.
const PARALLEL_IMPORTS: usize = 4;

impl Deployer {
    pub fn new(store: Arc<dyn Store>, runtimes: Arc<Runtimes>, cache: Arc<HotCache>) -> Deployer {
        Deployer {
            store,
            runtimes,
            cache,
            going: Mutex::new(HashMap::new()),
            building: tokio::sync::Semaphore::new(PARALLEL_BUILDS),
            importing: tokio::sync::Semaphore::new(PARALLEL_IMPORTS),
        }
    }

    /// Starts building `version` of `workflow` (stored as `building`) in the background. The
    /// build goes on if nobody waits for it.
    pub fn start(self: &Arc<Self>, workflow: WorkflowRecord, version: VersionRecord) {
        let key = (workflow.id.clone(), version.version);
        let (done, waiters) = watch::channel(None);
        lock(&self.going).insert(key.clone(), waiters);
        let deployer = self.clone();
        tokio::spawn(async move {
            let deployment = deployer.build_and_settle(&workflow, &version).await;
            lock(&deployer.going).remove(&key);
            let _ = done.send(Some(deployment));
        });
    }

    /// Waits at most `wait` for the build of a version to end: how the deployment stands then.
    pub async fn wait(&self, workflow_id: &str, version: u32, wait: Duration) -> Deployment {
        let waiters = lock(&self.going)
            .get(&(workflow_id.to_string(), version))
            .cloned();
        if let Some(mut waiters) = waiters {
            let settled = tokio::time::timeout(wait, waiters.wait_for(Option::is_some)).await;
            if let Ok(Ok(deployment)) = settled {
                if let Some(deployment) = deployment.clone() {
                    return deployment;
                }
            }
        }
        // Not going (any more): the record says how it ended.
        match self.store.version(workflow_id, version).await {
            Ok(Some(record)) => {
                let active = self
                    .store
                    .workflow_by_id(workflow_id)
                    .await
                    .ok()
                    .flatten()
                    .and_then(|w| w.version)
                    == Some(version);
                Deployment {
                    version,
                    state: record.state,
                    active,
                    error: record.error,
                    build_log: record.build_log,
                }
            }
            _ => Deployment::building(version),
        }
    }

    /// Restarts the builds a previous process left going (a crash or a stop in the middle).
    pub async fn resume(self: &Arc<Self>) -> Result<usize, StoreError> {
        let building = self.store.building_versions().await?;
        let mut resumed = 0;
        for version in building {
            if let Some(workflow) = self.store.workflow_by_id(&version.workflow_id).await? {
                tracing::info!(workflow = %workflow.name, version = version.version, "resuming an interrupted build");
                self.start(workflow, version);
                resumed += 1;
            }
        }
        Ok(resumed)
    }

    async fn build_and_settle(
        &self,
        workflow: &WorkflowRecord,
        version: &VersionRecord,
    ) -> Deployment {
        let started = Instant::now();
        let outcome = self.build(workflow, version).await;
        let key = version_key(workflow, version.version);
        let forget = |key: &str| {
            if let Some(runtime) = self.runtimes.get(&workflow.runtime) {
                runtime.forget(key);
            }
        };
        let active = match self.store.settle_version(&outcome).await {
            Ok(active) => active,
            Err(error) => {
                // Deleted meanwhile, or the store failed: the version's instance is not needed.
                tracing::warn!(workflow = %workflow.id, version = version.version, %error, "the end of a build could not be recorded");
                forget(&key);
                false
            }
        };
        if active {
            self.cache.invalidate(&workflow.id);
            if let Some(previous) = workflow.version {
                forget(&version_key(workflow, previous));
            }
        } else if outcome.state == VersionState::Ready {
            // Ready but superseded by a newer active version meanwhile: nothing will run it.
            forget(&key);
        }
        tracing::info!(
            workflow = %workflow.name,
            version = version.version,
            state = %outcome.state,
            active,
            error = outcome.error.as_deref().unwrap_or(""),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "deploy settled"
        );
        Deployment {
            version: version.version,
            state: outcome.state,
            active,
            error: outcome.error,
            build_log: outcome.build_log,
        }
    }

    /// Builds the version's environment, then starts its warm instance (the module's top level,
    /// in the sandbox).
    async fn build(&self, workflow: &WorkflowRecord, version: &VersionRecord) -> VersionOutcome {
        let mut log = String::new();
        let failed = |error: String, log: String, environment: Option<String>| VersionOutcome {
            workflow_id: workflow.id.clone(),
            version: version.version,
            state: VersionState::Failed,
            build_log: log,
            error: Some(error),
            environment,
            settled_at: now_ms(),
        };
        let requirements = match version_requirements(version) {
            Ok(requirements) => requirements,
            Err(error) => return failed(error.to_string(), log, None),
        };
        let Some(runtime) = self.runtimes.get(&workflow.runtime) else {
            let error = format!(
                "the runtime {} is not available on this server (it has {})",
                workflow.runtime,
                self.runtimes.names()
            );
            return failed(error, log, None);
        };
        let mut environment = None;
        if let Some(requirements) = &requirements {
            let _turn = self.building.acquire().await;
            match runtime.build_environment(requirements).await {
                Ok(built) => {
                    if built.reused {
                        log.push_str(&format!(
                            "environment {} is already built: reused\n",
                            built.id
                        ));
                    } else {
                        log.push_str(&built.log);
                        log.push_str(&format!(
                            "\nenvironment {} built in {:.1} s\n",
                            built.id,
                            built.duration.as_secs_f64()
                        ));
                    }
                    environment = Some(built.id);
                }
                Err(error) => {
                    log.push_str(&error.log);
                    return failed(error.summary, log, None);
                }
            }
        }
        let job = version_job(
            workflow,
            version_key(workflow, version.version),
            Arc::from(version.code.as_str()),
            requirements,
            None,
            "{}".to_string(),
        );
        let _turn = self.importing.acquire().await;
        let started = Instant::now();
        match runtime.warm_up(&job).await {
            Ok(()) => {
                log.push_str(&format!(
                    "module imported in the sandbox in {} ms\n",
                    started.elapsed().as_millis()
                ));
                VersionOutcome {
                    workflow_id: workflow.id.clone(),
                    version: version.version,
                    state: VersionState::Ready,
                    build_log: log,
                    error: None,
                    environment,
                    settled_at: now_ms(),
                }
            }
            Err(WarmUpFailure::Init(failure)) => {
                if !failure.output.is_empty() {
                    log.push_str(&failure.output);
                    if !failure.output.ends_with('\n') {
                        log.push('\n');
                    }
                }
                if let Some(traceback) = &failure.error.traceback {
                    log.push_str(traceback);
                }
                let summary = format!(
                    "importing the module failed: {}: {}",
                    failure.error.kind, failure.error.message
                );
                failed(summary, log, environment)
            }
            Err(WarmUpFailure::Runtime(error)) => failed(
                format!("the Python runtime could not start the module: {error}"),
                log,
                environment,
            ),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// How long the API waits for a deploy by default: a build's time limit and an import.
pub const DEFAULT_DEPLOY_WAIT: Duration = Duration::from_secs(20 * 60);
