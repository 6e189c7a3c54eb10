//! Start-up: the data dir, the store, the Python runtime, the engine and the first-start
//! bootstrap, from one [`Config`]. The binary and the tests both start flowd through here.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use flowd_engine::{Bootstrap, Engine, EngineConfig};
use flowd_runtime::sandbox::SandboxDirs;
use flowd_runtime::{
    BuildConfig, EgressConfig, OutputLimits, RuntimeConfig, Runtimes, SandboxLimits, SandboxUser,
};
use flowd_store::{DatabaseUrl, SecretKey};

use crate::{AppState, ConnectionLimits, ServerConfig};

/// Everything `flowd serve` can be told.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// The store's database (default: the SQLite file `<data_dir>/flowd.db`).
    pub database: Option<DatabaseUrl>,
    /// Where Python environments are built (default `<data_dir>/runtimes`).
    pub runtime_dir: Option<PathBuf>,
    /// The interpreters to build runtimes from (every usable one found when empty).
    pub pythons: Vec<PathBuf>,
    /// The runtime of workflows that pick none (the first found when `None`).
    pub default_runtime: Option<String>,
    pub admin_api_key: Option<String>,
    /// The key secret values are sealed with at rest (`None`: the one in
    /// `<data_dir>/secret-key`, generated there on first start).
    pub secret_key: Option<SecretKey>,
    pub sandbox_user: Option<SandboxUser>,
    pub preload: Vec<String>,
    pub max_body_bytes: usize,
    /// Hook request bodies held in memory at once, in bytes.
    pub max_inflight_body_bytes: usize,
    /// The connection cap and the read timeouts.
    pub connections: ConnectionLimits,
    pub max_log_bytes: usize,
    pub max_warm_instances: usize,
    /// Memory (MiB) warm instances may hold together before the least recently used stop.
    pub warm_memory_mb: u64,
    /// How environments of requirement sets are built.
    pub build: BuildConfig,
    /// `isolation: "reuse"`: warm instances per version serving executions in parallel.
    pub reuse_pool_size: usize,
    pub sandbox: SandboxLimits,
    /// Where user code may connect.
    pub egress: EgressConfig,
    pub shutdown_grace: Duration,
    pub engine: EngineConfig,
    /// `/metrics` on the main address without an API key.
    pub metrics_public: bool,
}

impl Config {
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            database: None,
            runtime_dir: None,
            pythons: Vec::new(),
            default_runtime: None,
            admin_api_key: None,
            secret_key: None,
            sandbox_user: None,
            preload: vec!["requests".into()],
            max_body_bytes: ServerConfig::default().max_body_bytes,
            max_inflight_body_bytes: ServerConfig::default().max_inflight_body_bytes,
            connections: ConnectionLimits::default(),
            max_log_bytes: OutputLimits::default().max_log_bytes,
            max_warm_instances: 64,
            warm_memory_mb: 2048,
            build: BuildConfig::default(),
            reuse_pool_size: 4,
            sandbox: SandboxLimits::default(),
            egress: EgressConfig::default(),
            shutdown_grace: ServerConfig::default().shutdown_grace,
            engine: EngineConfig::default(),
            metrics_public: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot prepare the data dir {dir}: {source}")]
    DataDir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] flowd_store::StoreError),
    #[error(
        "this store's secrets are encrypted (key fingerprint {fingerprint}) and there is no \
         secret key: put the key it was encrypted with in {} (or give it with FLOWD_SECRET_KEY \
         or --secret-key-file)",
        path.display()
    )]
    SecretKeyNotFound { path: PathBuf, fingerprint: String },
    #[error("the secret key file {}: {source}", path.display())]
    SecretKeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the Python runtime: {0}")]
    Runtime(#[from] flowd_runtime::RuntimeError),
    #[error("cannot start the engine: {0}")]
    Engine(#[from] flowd_engine::EngineError),
}

/// Where the secret key is kept in the data dir when none is configured.
pub const SECRET_KEY_FILE: &str = "secret-key";

/// The key in the key file at `path`, or a new one written there first (mode 0600, durably,
/// like the admin key's file); whether it was generated now.
fn data_dir_secret_key(path: &std::path::Path) -> Result<(SecretKey, bool), StartError> {
    let file_error = |source| StartError::SecretKeyFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(content) => content.parse().map(|key| (key, false)).map_err(|error| {
            file_error(std::io::Error::new(std::io::ErrorKind::InvalidData, error))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = SecretKey::generate();
            flowd_engine::auth::write_secret_file_durably(path, &key.to_hex())
                .map_err(file_error)?;
            tracing::info!(path = %path.display(), "generated the secret key: keep a copy of it apart from the backups");
            Ok((key, true))
        }
        Err(error) => Err(file_error(error)),
    }
}

/// Starts everything but the listener.
pub async fn start(config: &Config) -> Result<Arc<AppState>, StartError> {
    start_reporting(config, &|_| {}).await
}

/// [`start`], telling `report` what it does as it goes (`/readyz` shows it while flowd starts).
pub async fn start_reporting(
    config: &Config,
    report: &(dyn Fn(&'static str) + Sync),
) -> Result<Arc<AppState>, StartError> {
    // Installed first, so that nothing start-up counts (environment builds) is lost.
    crate::metrics::recorder();
    report("opening the store");
    let dir_error = |source| StartError::DataDir {
        dir: config.data_dir.clone(),
        source,
    };
    std::fs::create_dir_all(&config.data_dir).map_err(dir_error)?;
    // Traversable (the runtime environment inside must be reachable by the sandbox user) but not
    // listable; the database and the key file inside are 0600.
    std::fs::set_permissions(&config.data_dir, std::fs::Permissions::from_mode(0o711))
        .map_err(dir_error)?;
    let data_dir = std::fs::canonicalize(&config.data_dir).map_err(dir_error)?;
    let database = config
        .database
        .clone()
        .unwrap_or_else(|| DatabaseUrl::Sqlite(data_dir.join("flowd.db")));
    let key_file = data_dir.join(SECRET_KEY_FILE);
    let (secret_key, generated) = match &config.secret_key {
        Some(key) => (key.clone(), false),
        None => data_dir_secret_key(&key_file)?,
    };
    let store = match database.open_keyed(Some(&secret_key)).await {
        Ok(store) => store,
        // A store restored without its key: the key just generated is of no use to it.
        Err(flowd_store::StoreError::WrongSecretKey { stored, .. }) if generated => {
            let _ = std::fs::remove_file(&key_file);
            return Err(StartError::SecretKeyNotFound {
                path: key_file,
                fingerprint: stored,
            });
        }
        Err(error) => return Err(error.into()),
    };
    tracing::info!(%database, "store open");
    let sandbox_dirs =
        SandboxDirs::for_data_dir(&data_dir, config.runtime_dir.clone()).map_err(dir_error)?;
    let runtime_config = RuntimeConfig {
        runtime_dir: sandbox_dirs.runtime_dir,
        tmp_dir: sandbox_dirs.tmp_dir,
        python: None,
        sandbox_user: config.sandbox_user,
        preload: config
            .preload
            .iter()
            .filter(|m| !m.is_empty())
            .cloned()
            .collect(),
        limits: OutputLimits {
            max_log_bytes: config.max_log_bytes,
            ..OutputLimits::default()
        },
        max_warm_instances: config.max_warm_instances,
        warm_memory_mb: config.warm_memory_mb,
        build: config.build.clone(),
        reuse_pool_size: config.reuse_pool_size,
        sandbox: config.sandbox,
        egress: config.egress.clone(),
    };
    report("provisioning the Python runtime");
    let progress = |line: &str| tracing::info!("{line}");
    let runtimes = Runtimes::start(
        runtime_config,
        &config.pythons,
        config.default_runtime.as_deref(),
        &progress,
    )
    .await?;
    for runtime in runtimes.all() {
        let environment = runtime.environment();
        tracing::info!(
            runtime = runtime.name(),
            interpreter = %environment.interpreter.executable.display(),
            environment = %environment.dir.display(),
            installer = runtime.installer(),
            default = runtime.name() == runtimes.default_runtime().name(),
            "python runtime ready"
        );
    }
    let layers = runtimes.default_runtime().isolation_layers().iter();
    for layer in layers.chain(runtimes.egress_layers()) {
        if layer.active {
            tracing::info!(layer = layer.name, "isolation: {}", layer.detail);
        } else {
            tracing::warn!(
                layer = layer.name,
                "isolation layer missing: {}",
                layer.detail
            );
        }
    }
    report("starting the engine");
    let engine = Engine::start(store, Arc::new(runtimes), config.engine.clone()).await?;
    match engine
        .bootstrap(config.admin_api_key.as_deref(), &data_dir)
        .await?
    {
        Bootstrap::AlreadyDone => {}
        Bootstrap::WithGivenKey => {
            tracing::info!("team \"default\" has the configured admin key")
        }
        // The key itself is never logged: logs end up in journals and collectors.
        Bootstrap::WithGeneratedKey(_) => tracing::info!(
            "team \"default\" has an admin API key, written to {} (mode 0600)",
            data_dir.join(flowd_engine::auth::ADMIN_KEY_FILE).display()
        ),
    }
    Ok(Arc::new(AppState::new(
        Arc::new(engine),
        ServerConfig {
            max_body_bytes: config.max_body_bytes,
            max_inflight_body_bytes: config.max_inflight_body_bytes,
            shutdown_grace: config.shutdown_grace,
            connections: config.connections,
            metrics_public: config.metrics_public,
        },
    )))
}
