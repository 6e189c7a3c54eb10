//! flowd's execution engine: runs executions end to end (admission, settings snapshot, the run
//! in the Python runtime, the response, one commit of record and settings change), and manages
//! workflows, settings and API keys on top of the store.

#![forbid(unsafe_code)]

mod admission;
mod async_queue;
pub mod auth;
pub mod clock;
pub mod deploy;
mod detached;
mod error;
pub mod executor;
pub mod hot;
mod refusal;
pub mod scheduler;
mod settings_cell;
mod workflows;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use flowd_runtime::{Runtime, Runtimes};
use flowd_store::Store;

pub use async_queue::Accepted;
pub use auth::{Bootstrap, Principal};
pub use deploy::{Deployment, DEFAULT_DEPLOY_WAIT};
pub use detached::{Detached, CALLER_LEFT_WARNING};
pub use error::{EngineError, Result};
pub use executor::{Reply, Report};
pub use refusal::{Refusal, Saturation};
pub use workflows::{generate_hook_token, NewWorkflow, RequirementsInput, WorkflowPatch};

use admission::Gate;
use deploy::Deployer;
use hot::HotCache;
use writer::Writer;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Executions running at once, server-wide.
    pub max_concurrent_executions: usize,
    /// Calls that may wait for a slot beyond that; more are refused with `503`.
    pub queue_depth: usize,
    /// How long a call waits in that queue before it is refused.
    pub queue_timeout: Duration,
    /// Upper bounds of the per-workflow limits.
    pub max_timeout_s: u32,
    pub max_memory_mb: u32,
    pub max_code_bytes: usize,
    /// An execution still running after this long is recorded as `running` until it ends.
    pub running_record_delay: Duration,
    /// Asynchronous calls the store's queue may hold (queued or running), all nodes together;
    /// more are refused with `503`.
    pub async_queue_max: u64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_concurrent_executions: 64,
            queue_depth: 256,
            queue_timeout: Duration::from_secs(10),
            max_timeout_s: 900,
            max_memory_mb: 4096,
            max_code_bytes: 1 << 20,
            running_record_delay: Duration::from_millis(100),
            async_queue_max: 10_000,
        }
    }
}

pub struct Engine {
    store: Arc<dyn Store>,
    /// The default runtime.
    runtime: Arc<Runtime>,
    /// Every runtime of the server.
    runtimes: Arc<Runtimes>,
    config: EngineConfig,
    cache: Arc<HotCache>,
    deployer: Arc<Deployer>,
    gate: Gate,
    writer: Writer,
    /// Wakes the scheduler when a schedule changes.
    schedule_changed: tokio::sync::Notify,
    /// The asynchronous calls this node runs.
    async_queue: async_queue::AsyncQueue,
}

impl Engine {
    /// Starts the engine: executions left `running` by a previous process become `interrupted`,
    /// and the asynchronous calls it had claimed are queued again.
    pub async fn start(
        store: Arc<dyn Store>,
        runtimes: Arc<Runtimes>,
        config: EngineConfig,
    ) -> Result<Engine> {
        let interrupted = store.interrupt_running_executions(clock::now_ms()).await?;
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "executions left running by the previous process were marked interrupted"
            );
        }
        let released = store.release_claimed_async_calls().await?;
        if released > 0 {
            tracing::warn!(
                released,
                "asynchronous calls taken by the previous process were queued again"
            );
        }
        let writer = Writer::new(store.clone());
        let cache = Arc::new(HotCache::default());
        let deployer = Arc::new(Deployer::new(
            store.clone(),
            runtimes.clone(),
            cache.clone(),
        ));
        let resumed = deployer.resume().await?;
        if resumed > 0 {
            tracing::info!(
                resumed,
                "builds interrupted by the previous process were restarted"
            );
        }
        Ok(Engine {
            gate: Gate::new(
                config.max_concurrent_executions,
                config.queue_depth,
                config.queue_timeout,
            ),
            store,
            runtime: runtimes.default_runtime().clone(),
            runtimes,
            config,
            cache,
            deployer,
            writer,
            schedule_changed: tokio::sync::Notify::new(),
            async_queue: async_queue::AsyncQueue::default(),
        })
    }

    /// Waits until everything queued for the store is committed.
    pub async fn flush(&self) {
        if let Err(error) = self.writer.commit(Vec::new()).await {
            tracing::error!(%error, "flushing the store writer failed");
        }
    }

    /// Waits (at most `limit`) until no execution is running: for a graceful shutdown, which must
    /// also let scheduled runs finish.
    pub async fn wait_idle(&self, limit: Duration) -> bool {
        tokio::time::timeout(limit, self.gate.until_idle())
            .await
            .is_ok()
    }

    /// The store the engine reads and writes.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The server's default runtime.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Every runtime of the server.
    pub fn runtimes(&self) -> &Runtimes {
        &self.runtimes
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Executions running now.
    pub fn executions_in_flight(&self) -> usize {
        self.gate.in_use()
    }

    /// Executions waiting for a slot of the server now.
    pub fn executions_queued(&self) -> usize {
        self.gate.waiting()
    }
}
