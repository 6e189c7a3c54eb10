//! flowd's execution engine: runs executions end to end (admission, settings snapshot, the run
//! in the Python runtime, the response, one commit of record and settings change), and manages
//! workflows, settings and API keys on top of the store.

#![forbid(unsafe_code)]

mod admission;
pub mod alerts;
mod async_queue;
pub mod audit;
pub mod auth;
pub mod clock;
pub mod delivery;
pub mod deploy;
mod detached;
mod error;
pub mod executor;
mod follow;
pub mod hot;
pub mod idempotency;
pub mod key_cache;
pub mod metrics;
mod node_lease;
mod refusal;
pub mod replay;
pub mod retention;
mod retry;
pub mod scheduler;
mod settings_cell;
pub mod signed;
mod stored_requests;
mod teams;
mod workflow_limit;
mod workflow_settings;
mod workflows;
mod writer;

use std::sync::Arc;
use std::time::Duration;

use flowd_runtime::{Runtime, Runtimes};
use flowd_store::Store;

pub use async_queue::Accepted;
pub use audit::AuditFilter;
pub use auth::{Bootstrap, Principal};
pub use deploy::{Deployment, DEFAULT_DEPLOY_WAIT};
pub use detached::{Detached, CALLER_LEFT_WARNING};
pub use error::{EngineError, Result};
pub use executor::{Reply, Report};
pub use node_lease::NodeConfig;
pub use refusal::{Refusal, Saturation};
pub use teams::{CreatedKey, NewApiKey};
pub use workflows::{generate_hook_token, NewWorkflow, RequirementsInput, WorkflowPatch};

use admission::Gate;
use deploy::Deployer;
use hot::HotCache;
use node_lease::NodeLease;
use writer::Writer;

/// How long idempotency keys are remembered by default.
pub const DEFAULT_IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 3600);

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
    /// How long an idempotency key is remembered: a repeat within it gets the first response.
    pub idempotency_ttl: Duration,
    /// How long executions are kept, and how the task deleting the others works.
    pub retention: retention::RetentionConfig,
    /// This process as a node of the store: its address and lease.
    pub node: NodeConfig,
    /// Audit entries are kept this many days.
    pub audit_retention_days: u32,
    /// How long an API key looked up in the store is trusted without looking again: the longest
    /// a key revoked on another node keeps working here without a cross-node notification.
    pub key_cache_ttl: Duration,
    /// The server's default alert policy, the links alerts carry, and how they are delivered.
    pub alerts: alerts::AlertConfig,
    /// Asynchronous calls the store's queue may hold (queued or running), all nodes together;
    /// more are refused with `503`.
    pub async_queue_max: u64,
    /// Hook requests larger than this (headers, query string and body) are not stored for
    /// replay; their execution says so.
    pub request_store_max_bytes: u64,
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
            idempotency_ttl: DEFAULT_IDEMPOTENCY_TTL,
            retention: retention::RetentionConfig::default(),
            node: NodeConfig::default(),
            audit_retention_days: 365,
            key_cache_ttl: key_cache::KEY_CACHE_TTL,
            alerts: alerts::AlertConfig::default(),
            async_queue_max: 10_000,
            request_store_max_bytes: stored_requests::DEFAULT_REQUEST_STORE_MAX_BYTES,
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
    /// Wakes the scheduler when a schedule changes (here, or on another node).
    schedule_changed: Arc<tokio::sync::Notify>,
    /// This process's registration as a node of the store, renewed while the engine lives.
    node: NodeLease,
    /// API keys looked up recently.
    keys: Arc<key_cache::KeyCache>,
    /// Alerts waiting for their delivery task.
    alerts: alerts::AlertQueue,
    /// The asynchronous calls this node runs.
    async_queue: async_queue::AsyncQueue,
    /// Bulk replays, kept in memory (see [`replay::ReplayJobs`]).
    replays: replay::ReplayJobs,
}

impl Engine {
    /// Starts the engine: registers this process as a node of the store, whose lease it renews
    /// from then on; executions left `running` by dead nodes (on a single node: by the previous
    /// process) become `interrupted`.
    pub async fn start(
        store: Arc<dyn Store>,
        runtimes: Arc<Runtimes>,
        config: EngineConfig,
    ) -> Result<Engine> {
        let node = NodeLease::start(store.clone(), config.node.clone()).await?;
        let writer = Writer::new(store.clone());
        let cache = Arc::new(HotCache::new(store.is_shared()));
        let schedule_changed = Arc::new(tokio::sync::Notify::new());
        // Before anything is cached: no change made from here on goes unheard.
        let keys = Arc::new(key_cache::KeyCache::new(config.key_cache_ttl));
        follow::spawn(
            store.changes(),
            cache.clone(),
            keys.clone(),
            schedule_changed.clone(),
        );
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
            alerts: alerts::AlertQueue::new(config.alerts.queue_capacity),
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
            schedule_changed,
            node,
            keys,
            async_queue: async_queue::AsyncQueue::default(),
            replays: replay::ReplayJobs::default(),
        })
    }

    /// Ends this node's lease now, releasing what it still holds (for a graceful shutdown, once
    /// executions are done and flushed); the engine should not run anything afterwards.
    pub async fn leave_cluster(&self) {
        self.node.end().await;
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
