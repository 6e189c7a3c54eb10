//! An engine on a file-backed SQLite store in a temp dir, with the shared Python runtime; and
//! what the tests share: waiting for a condition, and the engine's log under `TEST_LOG`.

use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

use flowd_engine::{Engine, EngineConfig, NewWorkflow, Principal};
use flowd_runtime::{OutputLimits, Runtime, RuntimeConfig};
use flowd_store::{SqliteStore, WorkflowRecord};
use serde_json::Value;

pub struct Harness {
    pub engine: Arc<Engine>,
    pub principal: Principal,
    pub dir: tempfile::TempDir,
}

pub async fn engine() -> Harness {
    let dir = tempfile::Builder::new()
        .prefix("flowd-engine-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("tmp");
    let engine = open_engine(dir.path()).await;
    engine
        .bootstrap(Some("engine-test-admin-key"), dir.path())
        .await
        .expect("bootstrap");
    let principal = engine
        .authenticate("engine-test-admin-key")
        .await
        .expect("auth")
        .expect("principal");
    Harness {
        engine,
        principal,
        dir,
    }
}

/// An engine on the store in `dir` (a restart when called again on the same dir).
pub async fn open_engine(dir: &Path) -> Arc<Engine> {
    open_engine_with(dir, EngineConfig::default()).await
}

/// [`open_engine`] with `config`.
pub async fn open_engine_with(dir: &Path, config: EngineConfig) -> Arc<Engine> {
    init_test_log();
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let store = SqliteStore::open(&dir.join("flowd.db"))
        .await
        .expect("store");
    let runtime = Runtime::start(
        RuntimeConfig {
            runtime_dir: std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}")),
            tmp_dir: dir.join("sandbox"),
            python: None,
            sandbox_user: None,
            preload: vec![],
            limits: OutputLimits::default(),
            max_warm_instances: 8,
            warm_memory_mb: 4096,
            build: flowd_runtime::BuildConfig::default(),
            reuse_pool_size: 2,
            sandbox: Default::default(),
            egress: Default::default(),
        },
        &|_| {},
    )
    .await
    .expect("runtime");
    Arc::new(
        Engine::start(
            Arc::new(store),
            Arc::new(flowd_runtime::Runtimes::single(Arc::new(runtime))),
            config,
        )
        .await
        .expect("engine"),
    )
}

impl Harness {
    pub async fn create(&self, body: Value) -> WorkflowRecord {
        let new: NewWorkflow = serde_json::from_value(body).expect("a valid NewWorkflow");
        let (record, deployment) = self
            .engine
            .create_workflow(&self.principal, new, flowd_engine::DEFAULT_DEPLOY_WAIT)
            .await
            .expect("created");
        assert!(
            deployment.active,
            "the first version deploys: {deployment:?}"
        );
        record
    }

    pub async fn reload(&self, workflow: &WorkflowRecord) -> WorkflowRecord {
        self.engine
            .store()
            .workflow_by_id(&workflow.id)
            .await
            .expect("store")
            .expect("exists")
    }
}

/// Polls `check` until it answers `Some` and returns that; fails the test, naming `what`, when
/// `within` has passed first.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// With `TEST_LOG` set (`1` for `info`, or a filter such as `flowd_engine=debug`), the engine's
/// log goes to the test's output: shown for a failing test, or for all with `--nocapture`.
pub fn init_test_log() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let Ok(filter) = std::env::var("TEST_LOG") else {
            return;
        };
        let filter = if filter == "1" { "info".into() } else { filter };
        // Another subscriber already set (none is, in these tests) keeps its place.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    });
}
