//! `flowd serve`: configuration, start-up (store, runtime, engine, bootstrap) and shutdown.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use flowd_engine::{Bootstrap, Engine, EngineConfig};
use flowd_runtime::{OutputLimits, Runtime, RuntimeConfig, SandboxUser};
use flowd_server::{AppState, ServerConfig};
use flowd_store::SqliteStore;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FLOWD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where flowd keeps its database, keys and runtime environments.
    #[arg(long, env = "FLOWD_DATA_DIR", default_value = "./flowd-data")]
    pub data_dir: PathBuf,
    /// Where Python environments are built [default: <data-dir>/runtimes].
    #[arg(long, env = "FLOWD_RUNTIME_DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// The Python interpreter to build the runtime from [default: the first usable python3].
    #[arg(long, env = "FLOWD_PYTHON")]
    pub python: Option<PathBuf>,
    /// The admin API key to create on first start [default: generated and printed once].
    #[arg(long, env = "FLOWD_ADMIN_API_KEY", hide_env_values = true)]
    pub admin_api_key: Option<String>,
    /// Run user code as this uid:gid (when flowd runs as root) [default: 65534:65534, nobody].
    #[arg(long, env = "FLOWD_SANDBOX_USER", value_parser = parse_user)]
    pub sandbox_user: Option<SandboxUser>,
    /// Modules the Python base process imports once for all workflows (comma-separated).
    #[arg(long, env = "FLOWD_PRELOAD", value_delimiter = ',', default_value = "requests")]
    pub preload: Vec<String>,
    /// Largest hook request body, in MiB.
    #[arg(long, env = "FLOWD_MAX_BODY_MB", default_value_t = 25)]
    pub max_body_mb: usize,
    /// Executions running at once.
    #[arg(long, env = "FLOWD_MAX_CONCURRENCY", default_value_t = 64)]
    pub max_concurrency: usize,
    /// Calls that may wait for an execution slot before `503`.
    #[arg(long, env = "FLOWD_QUEUE_DEPTH", default_value_t = 256)]
    pub queue_depth: usize,
    /// Upper bound of a workflow's `timeout_s`.
    #[arg(long, env = "FLOWD_MAX_TIMEOUT_S", default_value_t = 900)]
    pub max_timeout_s: u32,
    /// Upper bound of a workflow's `memory_mb`.
    #[arg(long, env = "FLOWD_MAX_MEMORY_MB", default_value_t = 4096)]
    pub max_memory_mb: u32,
    /// Captured output kept per execution, in KiB.
    #[arg(long, env = "FLOWD_MAX_LOG_KB", default_value_t = 1024)]
    pub max_log_kb: usize,
    /// Warm instances kept (least recently used beyond are stopped).
    #[arg(long, env = "FLOWD_MAX_WARM_INSTANCES", default_value_t = 64)]
    pub max_warm_instances: usize,
    /// Seconds a shutdown waits for executions in flight.
    #[arg(long, env = "FLOWD_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    /// Log filter (e.g. `info`, `flowd=debug`).
    #[arg(long, env = "FLOWD_LOG", default_value = "info")]
    pub log: String,
}

fn parse_user(text: &str) -> Result<SandboxUser, String> {
    let (uid, gid) = text.split_once(':').unwrap_or((text, text));
    let parse = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("{text:?} is not UID:GID"));
    Ok(SandboxUser {
        uid: parse(uid)?,
        gid: parse(gid)?,
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&args.log).context("invalid --log filter")?)
        .init();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let state = start(&args).await?;
    tracing::info!(address = %listener.local_addr()?, "flowd is listening");
    flowd_server::serve(listener, state, shutdown_signal())
        .await
        .context("the server stopped with an error")?;
    tracing::info!("flowd stopped");
    Ok(())
}

/// Opens the data dir and the store, starts the Python runtime and the engine, bootstraps.
pub async fn start(args: &ServeArgs) -> anyhow::Result<Arc<AppState>> {
    let data_dir = &args.data_dir;
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create the data dir {}", data_dir.display()))?;
    // Traversable (the runtime environment inside must be reachable by the sandbox user), not
    // listable; the database and key files inside are 0600.
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("cannot set the permissions of {}", data_dir.display()))?;
    let data_dir = std::fs::canonicalize(data_dir)?;
    let store = SqliteStore::open(&data_dir.join("flowd.db"))
        .await
        .context("cannot open the database")?;
    let runtime_config = RuntimeConfig {
        runtime_dir: args.runtime_dir.clone().unwrap_or_else(|| data_dir.join("runtimes")),
        tmp_dir: data_dir.join("sandbox-tmp"),
        python: args.python.clone(),
        sandbox_user: args.sandbox_user,
        preload: args.preload.iter().filter(|m| !m.is_empty()).cloned().collect(),
        limits: OutputLimits {
            max_log_bytes: args.max_log_kb << 10,
            ..OutputLimits::default()
        },
        max_warm_instances: args.max_warm_instances,
    };
    let progress = |line: &str| tracing::info!("{line}");
    let runtime = Runtime::start(runtime_config, &progress)
        .await
        .context("cannot start the Python runtime")?;
    let environment = runtime.environment();
    tracing::info!(
        runtime = runtime.name(),
        interpreter = %environment.interpreter.executable.display(),
        environment = %environment.dir.display(),
        "python runtime ready"
    );
    match runtime.sandbox_user() {
        Some(user) => tracing::info!(uid = user.uid, gid = user.gid, "user code runs as an unprivileged user"),
        None => tracing::warn!("flowd is not root: user code runs under flowd's own uid (no user switch)"),
    }
    let engine = Engine::start(
        Arc::new(store),
        Arc::new(runtime),
        EngineConfig {
            max_concurrent_executions: args.max_concurrency,
            queue_depth: args.queue_depth,
            max_timeout_s: args.max_timeout_s,
            max_memory_mb: args.max_memory_mb,
            ..EngineConfig::default()
        },
    )
    .await?;
    match engine.bootstrap(args.admin_api_key.as_deref(), &data_dir).await? {
        Bootstrap::AlreadyDone => {}
        Bootstrap::WithGivenKey => tracing::info!("created team \"default\" with the admin key from FLOWD_ADMIN_API_KEY"),
        Bootstrap::WithGeneratedKey(key) => {
            tracing::info!(
                "created team \"default\"; admin API key (shown once, also in {}): {key}",
                data_dir.join(flowd_engine::auth::ADMIN_KEY_FILE).display()
            );
        }
    }
    Ok(Arc::new(AppState {
        engine: Arc::new(engine),
        config: ServerConfig {
            max_body_bytes: args.max_body_mb << 20,
            shutdown_grace: Duration::from_secs(args.shutdown_grace_s),
        },
    }))
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
}
