//! `flowd serve`: the command line and environment become a [`Config`]; the server crate does
//! the rest.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use flowd_core::alerts::AlertPolicy;
use flowd_core::egress::EgressRule;
use flowd_core::retention::RetentionDefaults;
use flowd_core::workflow::ExecutionStatus;
use flowd_engine::alerts::AlertConfig;
use flowd_engine::retention::RetentionConfig;
use flowd_engine::{EngineConfig, NodeConfig};
use flowd_runtime::{BuildConfig, EgressConfig, EgressProxy, InstallerChoice, SandboxUser};
use flowd_server::conn::fd_limit;
use flowd_server::{Config, ConnectionLimits, DatabaseUrl, DatabaseUrlError};

use crate::secret_input;

#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "FLOWD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Where flowd keeps its database, keys and runtime environments.
    #[arg(long, env = "FLOWD_DATA_DIR", default_value = "./flowd-data")]
    pub data_dir: PathBuf,
    /// The store: `sqlite:PATH`, or `postgres://user:password@host:port/database` for a
    /// PostgreSQL server [default: sqlite:<data-dir>/flowd.db].
    #[arg(long, env = "FLOWD_DATABASE_URL", hide_env_values = true, value_parser = parse_database)]
    pub database: Option<DatabaseUrl>,
    /// Where Python environments are built [default: <data-dir>/runtimes].
    #[arg(long, env = "FLOWD_RUNTIME_DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// The Python interpreters to build runtimes from, comma-separated or repeated
    /// [default: every usable python3.N found, the system's python3 first].
    #[arg(long, env = "FLOWD_PYTHON", value_delimiter = ',')]
    pub python: Vec<PathBuf>,
    /// The runtime of workflows that do not pick one, e.g. `python3.11` [default: the first found].
    #[arg(long, env = "FLOWD_DEFAULT_RUNTIME")]
    pub default_runtime: Option<String>,
    /// A file holding the admin API key to create on first start [default: $FLOWD_ADMIN_API_KEY,
    /// else generated, printed once and written to <data-dir>/admin-api-key].
    #[arg(long, env = "FLOWD_ADMIN_API_KEY_FILE", value_name = "PATH")]
    pub admin_api_key_file: Option<PathBuf>,
    /// Refused: use --admin-api-key-file or FLOWD_ADMIN_API_KEY (a key on the command line is
    /// readable by every process of the machine, the workflows included).
    #[arg(long = "admin-api-key", hide = true, value_name = "KEY")]
    pub admin_api_key_on_command_line: Option<String>,
    /// A file holding the key (64 hex characters) secret values are encrypted with at rest
    /// [default: $FLOWD_SECRET_KEY, else <data-dir>/secret-key, generated on first start].
    #[arg(long, env = "FLOWD_SECRET_KEY_FILE", value_name = "PATH")]
    pub secret_key_file: Option<PathBuf>,
    /// Refused: use --secret-key-file or FLOWD_SECRET_KEY (a key on the command line is
    /// readable by every process of the machine, the workflows included).
    #[arg(long = "secret-key", hide = true, value_name = "KEY")]
    pub secret_key_on_command_line: Option<String>,
    /// Run user code as this UID:GID (when flowd runs as root) [default: 65534:65534, nobody].
    #[arg(long, env = "FLOWD_SANDBOX_USER", value_parser = parse_user)]
    pub sandbox_user: Option<SandboxUser>,
    /// Modules the Python base process imports once for all workflows (comma-separated).
    #[arg(
        long,
        env = "FLOWD_PRELOAD",
        value_delimiter = ',',
        default_value = "requests"
    )]
    pub preload: Vec<String>,
    /// Largest hook request body, in MiB.
    #[arg(long, env = "FLOWD_MAX_BODY_MB", default_value_t = 25)]
    pub max_body_mb: usize,
    /// Hook request bodies held in memory at once, in MiB; a call that finds no room within 2 s
    /// gets `503` with `Retry-After`.
    #[arg(long, env = "FLOWD_MAX_INFLIGHT_BODY_MB", default_value_t = 256)]
    pub max_inflight_body_mb: usize,
    /// Client connections open at once; beyond, new ones wait until one closes
    /// [default: the open-file limit less 1024].
    #[arg(long, env = "FLOWD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Seconds a client may take to send a request's headers, from the connection's start or
    /// the previous response (the keep-alive idle timeout); then the connection is closed.
    #[arg(long, env = "FLOWD_HEADER_READ_TIMEOUT_S", default_value_t = 10)]
    pub header_read_timeout_s: u64,
    /// Seconds a client may send nothing while its request body is read (`408`).
    #[arg(long, env = "FLOWD_BODY_READ_TIMEOUT_S", default_value_t = 10)]
    pub body_read_timeout_s: u64,
    /// Executions running at once.
    #[arg(long, env = "FLOWD_MAX_CONCURRENCY", default_value_t = 64)]
    pub max_concurrency: usize,
    /// Calls that may wait for an execution slot before `503`.
    #[arg(long, env = "FLOWD_QUEUE_DEPTH", default_value_t = 256)]
    pub queue_depth: usize,
    /// Hours an idempotency key is remembered: a hook call repeating it within that time gets
    /// the first call's response instead of running again.
    #[arg(long, env = "FLOWD_IDEMPOTENCY_TTL_H", default_value_t = 24, value_parser = clap::value_parser!(u64).range(1..=8760))]
    pub idempotency_ttl_h: u64,
    /// Asynchronous calls (`Prefer: respond-async`) the store's queue may hold, queued or
    /// running, all nodes together; more are refused with `503` and `Retry-After`.
    #[arg(long, env = "FLOWD_QUEUE_MAX", default_value_t = 10_000)]
    pub queue_max: u64,
    /// Hook requests larger than this many bytes (headers, query string and body) are not
    /// stored for replay; their execution says so (`request_stored: false`).
    #[arg(long, env = "FLOWD_REQUEST_STORE_MAX_BYTES", default_value_t = 1 << 20)]
    pub request_store_max_bytes: u64,
    /// Upper bound of a workflow's `timeout_s`.
    #[arg(long, env = "FLOWD_MAX_TIMEOUT_S", default_value_t = 900)]
    pub max_timeout_s: u32,
    /// Upper bound of a workflow's `memory_mb`.
    #[arg(long, env = "FLOWD_MAX_MEMORY_MB", default_value_t = 4096)]
    pub max_memory_mb: u32,
    /// Captured output kept per execution, in KiB.
    #[arg(long, env = "FLOWD_MAX_LOG_KB", default_value_t = 1024)]
    pub max_log_kb: usize,
    /// Warm instances kept (the least recently used beyond are stopped).
    #[arg(long, env = "FLOWD_MAX_WARM_INSTANCES", default_value_t = 64)]
    pub max_warm_instances: usize,
    /// Memory, in MiB, that warm instances (and the base processes of requirement sets) may hold
    /// together; the least recently used beyond it are stopped.
    #[arg(long, env = "FLOWD_WARM_MEMORY_MB", default_value_t = 2048)]
    pub warm_memory_mb: u64,
    /// Longest a requirement set's environment may take to build, in seconds.
    #[arg(long, env = "FLOWD_BUILD_TIMEOUT_S", default_value_t = 600)]
    pub build_timeout_s: u64,
    /// The package index requirements are installed from [default: PyPI].
    #[arg(long, env = "FLOWD_PACKAGE_INDEX")]
    pub package_index: Option<String>,
    /// What builds environments: `auto` (uv when it can be had, else pip), `pip`, or the path of
    /// a uv binary.
    #[arg(long, env = "FLOWD_INSTALLER", default_value = "auto")]
    pub installer: String,
    /// Seconds a node's lease in the store lasts: renewed about every third of it, and once it
    /// has expired (the node died or lost the database) another node marks the node's running
    /// executions interrupted and frees its max_concurrency slots.
    #[arg(long, env = "FLOWD_NODE_LEASE_S", default_value_t = 30)]
    pub node_lease_s: u64,
    /// Seconds a shutdown waits for executions in flight.
    #[arg(long, env = "FLOWD_SHUTDOWN_GRACE_S", default_value_t = 30)]
    pub shutdown_grace_s: u64,
    /// Days the audit log keeps its entries (older ones are deleted by an hourly sweep).
    #[arg(long, env = "FLOWD_AUDIT_RETENTION_DAYS", default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub audit_retention_days: u32,
    /// `isolation: "reuse"` workflows: warm instances per version serving calls in parallel.
    #[arg(long, env = "FLOWD_REUSE_POOL_SIZE", default_value_t = 4)]
    pub reuse_pool_size: usize,
    /// Processes and threads per warm instance, with all its executions (cgroup pids).
    #[arg(long, env = "FLOWD_MAX_PROCESSES", default_value_t = 256)]
    pub max_processes: u32,
    /// Landlock (with its scoping), seccomp and the cgroups: `on`, or `off` only to measure what
    /// they cost.
    #[arg(long, env = "FLOWD_KERNEL_SANDBOX", default_value = "on", value_parser = ["on", "off"])]
    pub kernel_sandbox: String,
    /// Destinations user code may connect to although the egress policy refuses them by
    /// default (loopback, private, link-local, the host's own addresses): CIDRs, addresses,
    /// `address:port` or `host:port`; comma-separated or repeated.
    #[arg(long, env = "FLOWD_EGRESS_ALLOW", value_delimiter = ',')]
    pub egress_allow: Vec<EgressRule>,
    /// An `http://host:port` proxy all other outbound traffic of user code must go through (set
    /// for it as HTTP_PROXY/HTTPS_PROXY; a direct connection is refused).
    #[arg(long, env = "FLOWD_EGRESS_PROXY")]
    pub egress_proxy: Option<EgressProxy>,
    /// The egress policy: `on`, or `off` only to measure what it costs or where the host's
    /// firewall is managed otherwise.
    #[arg(long, env = "FLOWD_EGRESS", default_value = "on", value_parser = ["on", "off"])]
    pub egress: String,
    /// Executions older than this many days are deleted (a workflow's `retention.days` wins);
    /// 0 keeps them whatever their age.
    #[arg(long, env = "FLOWD_RETENTION_DAYS", default_value_t = 30)]
    pub retention_days: u32,
    /// Only this many of each workflow's newest executions are kept (a workflow's
    /// `retention.max_executions` wins); 0 keeps them whatever their number.
    #[arg(long, env = "FLOWD_RETENTION_PER_WORKFLOW", default_value_t = 10_000)]
    pub retention_per_workflow: u64,
    /// What a workflow's own `egress_allow` may open, for that workflow alone (the ceiling;
    /// opens nothing by itself): same forms as --egress-allow; comma-separated or repeated.
    /// Empty: workflows cannot have exceptions of their own.
    #[arg(long, env = "FLOWD_EGRESS_WORKFLOW_ALLOW", value_delimiter = ',')]
    pub egress_workflow_allow: Vec<EgressRule>,
    /// Log filter (e.g. `info`, `flowd=debug`).
    #[arg(long, env = "FLOWD_LOG", default_value = "info")]
    pub log: String,
    /// How log lines are written (to stderr): `text`, or `json` (one object per line with
    /// `timestamp`, `level`, `target`, `fields` — the message among them — and the spans).
    #[arg(long, env = "FLOWD_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Also serve `/metrics` on this address, without an API key (e.g. `127.0.0.1:9464`).
    #[arg(long, env = "FLOWD_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Serve `/metrics` on the main address without an API key.
    #[arg(long, env = "FLOWD_METRICS_PUBLIC")]
    pub metrics_public: bool,
    /// Where failure alerts of workflows without their own `alerts` are POSTed (http or https);
    /// none when unset.
    #[arg(long, env = "FLOWD_ALERT_URL", value_name = "URL", value_parser = parse_alert_url)]
    pub alert_url: Option<String>,
    /// The execution statuses that send the server's default alert, comma-separated.
    #[arg(
        long,
        env = "FLOWD_ALERT_ON",
        value_delimiter = ',',
        default_value = "error,timeout,killed",
        value_parser = parse_alert_status
    )]
    pub alert_on: Vec<ExecutionStatus>,
    /// At most one default alert per workflow per this many seconds (0: every one).
    #[arg(long, env = "FLOWD_ALERT_MIN_INTERVAL_S", default_value_t = 300)]
    pub alert_min_interval_s: u64,
    /// The URL people reach this server at, for the execution links alerts carry
    /// [default: http://<listen>].
    #[arg(long, env = "FLOWD_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

fn parse_alert_url(text: &str) -> Result<String, String> {
    flowd_core::alerts::check_alert_url(text)
        .map(|()| text.to_string())
        .map_err(|error| error.to_string())
}

fn parse_alert_status(text: &str) -> Result<ExecutionStatus, String> {
    match text.trim().parse::<ExecutionStatus>()? {
        ExecutionStatus::Running => Err("running is not a status an execution ends in".into()),
        status => Ok(status),
    }
}

fn parse_database(text: &str) -> Result<DatabaseUrl, String> {
    text.parse()
        .map_err(|err: DatabaseUrlError| err.to_string())
}

fn parse_user(text: &str) -> Result<SandboxUser, String> {
    let (uid, gid) = text.split_once(':').unwrap_or((text, text));
    let parse = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{text:?} is not UID:GID"))
    };
    Ok(SandboxUser {
        uid: parse(uid)?,
        gid: parse(gid)?,
    })
}

impl ServeArgs {
    /// The admin key given: the content of `--admin-api-key-file`, else `FLOWD_ADMIN_API_KEY`.
    fn admin_api_key(&self) -> anyhow::Result<Option<String>> {
        if self.admin_api_key_on_command_line.is_some() {
            return Err(secret_input::refused_on_command_line(
                "--admin-api-key",
                "--admin-api-key-file PATH or the environment variable FLOWD_ADMIN_API_KEY",
            ));
        }
        match &self.admin_api_key_file {
            Some(path) => secret_input::read_secret_file(path).map(Some),
            None => Ok(secret_input::from_env("FLOWD_ADMIN_API_KEY")),
        }
    }

    pub fn config(&self) -> anyhow::Result<Config> {
        let mut config = Config::new(&self.data_dir);
        config.database = self.database.clone();
        config.runtime_dir = self.runtime_dir.clone();
        config.pythons = self
            .python
            .iter()
            .filter(|path| !path.as_os_str().is_empty())
            .cloned()
            .collect();
        config.default_runtime = self.default_runtime.clone().filter(|name| !name.is_empty());
        config.admin_api_key = self.admin_api_key()?;
        if self.secret_key_on_command_line.is_some() {
            return Err(crate::secret_key::refused_on_command_line());
        }
        config.secret_key = crate::secret_key::given(self.secret_key_file.as_deref())?;
        config.sandbox_user = self.sandbox_user;
        config.preload = self.preload.clone();
        config.max_body_bytes = self.max_body_mb << 20;
        config.max_inflight_body_bytes = self.max_inflight_body_mb << 20;
        config.connections = ConnectionLimits {
            max_connections: self
                .max_connections
                .unwrap_or_else(fd_limit::current_default_max_connections),
            header_read_timeout: Duration::from_secs(self.header_read_timeout_s.max(1)),
            body_read_timeout: Duration::from_secs(self.body_read_timeout_s.max(1)),
        };
        config.max_log_bytes = self.max_log_kb << 10;
        config.max_warm_instances = self.max_warm_instances;
        config.warm_memory_mb = self.warm_memory_mb;
        config.build = BuildConfig {
            time_limit: Duration::from_secs(self.build_timeout_s.max(1)),
            index_url: self.package_index.clone().filter(|url| !url.is_empty()),
            installer: match self.installer.as_str() {
                "auto" | "" => InstallerChoice::Auto,
                "pip" => InstallerChoice::Pip,
                path => InstallerChoice::Uv(PathBuf::from(path)),
            },
        };
        config.sandbox.max_processes = self.max_processes;
        config.reuse_pool_size = self.reuse_pool_size;
        config.sandbox.kernel_layers = self.kernel_sandbox == "on";
        config.egress = EgressConfig {
            enabled: self.egress == "on",
            allow: self.egress_allow.clone(),
            proxy: self.egress_proxy.clone(),
            workflow_allow: self.egress_workflow_allow.clone(),
        };
        config.shutdown_grace = Duration::from_secs(self.shutdown_grace_s);
        config.metrics_public = self.metrics_public;
        config.engine = EngineConfig {
            max_concurrent_executions: self.max_concurrency,
            queue_depth: self.queue_depth,
            max_timeout_s: self.max_timeout_s,
            max_memory_mb: self.max_memory_mb,
            idempotency_ttl: Duration::from_secs(self.idempotency_ttl_h * 3600),
            retention: RetentionConfig {
                defaults: RetentionDefaults {
                    days: self.retention_days,
                    per_workflow: self.retention_per_workflow,
                },
                ..RetentionConfig::default()
            },
            node: NodeConfig {
                address: self.listen.clone(),
                lease: Duration::from_secs(self.node_lease_s.max(1)),
            },
            audit_retention_days: self.audit_retention_days,
            alerts: self.alert_config()?,
            async_queue_max: self.queue_max,
            request_store_max_bytes: self.request_store_max_bytes,
            ..EngineConfig::default()
        };
        Ok(config)
    }
}

impl ServeArgs {
    /// The server's default alert policy and the links' base URL.
    fn alert_config(&self) -> anyhow::Result<AlertConfig> {
        let default_policy = match self.alert_url.as_deref().filter(|url| !url.is_empty()) {
            Some(url) => {
                let policy = AlertPolicy {
                    url: url.to_string(),
                    on: self.alert_on.clone(),
                    min_interval_s: self.alert_min_interval_s,
                };
                policy
                    .check()
                    .map_err(|error| anyhow::anyhow!("--alert-url/--alert-on: {error}"))?;
                Some(policy)
            }
            None => None,
        };
        let public_url = match self.public_url.as_deref().filter(|url| !url.is_empty()) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        };
        Ok(AlertConfig {
            default_policy,
            public_url,
            ..AlertConfig::default()
        })
    }
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::logging::init(&args.log, &args.log_format)?;
    match fd_limit::raise_to_hard_limit() {
        Ok(limit) if limit.now > limit.before => tracing::info!(
            from = limit.before,
            to = limit.now,
            "raised the open-file limit to its hard limit"
        ),
        Ok(limit) => tracing::info!(open_files = limit.now, "open-file limit"),
        Err(error) => tracing::warn!(%error, "cannot read or raise the open-file limit"),
    }
    crate::memory::spawn_periodic_trim();
    let config = args.config()?;
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics_listener = match &args.metrics_listen {
        Some(address) => Some(
            tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| format!("cannot listen on {address} (--metrics-listen)"))?,
        ),
        None => None,
    };
    tracing::info!(
        max_connections = config.connections.max_connections,
        "connection cap"
    );
    tracing::info!(address = %listener.local_addr()?, "flowd is listening (starting)");
    if let Some(metrics) = &metrics_listener {
        tracing::info!(address = %metrics.local_addr()?, "/metrics is served");
    }
    flowd_server::start_and_serve(listener, metrics_listener, &config, shutdown_signal())
        .await
        .context("flowd stopped with an error")?;
    tracing::info!("flowd stopped");
    Ok(())
}

async fn shutdown_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Serve {
        #[command(flatten)]
        args: ServeArgs,
    }

    fn parse(args: &[&str]) -> Result<ServeArgs, clap::Error> {
        Serve::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .map(|serve| serve.args)
    }

    #[test]
    fn without_alert_url_there_is_no_default_alert_and_links_use_the_listen_address() {
        let config = parse(&["--listen", "127.0.0.1:9000"])
            .unwrap()
            .alert_config()
            .unwrap();
        assert_eq!(config.default_policy, None);
        assert_eq!(config.public_url, "http://127.0.0.1:9000");
    }

    #[test]
    fn alert_flags_make_the_default_policy() {
        let args = parse(&[
            "--alert-url",
            "https://chat.example/hooks/x",
            "--alert-on",
            "error,interrupted",
            "--alert-min-interval-s",
            "60",
            "--public-url",
            "https://flowd.example.com/",
        ])
        .unwrap();
        let config = args.alert_config().unwrap();
        assert_eq!(
            config.default_policy,
            Some(AlertPolicy {
                url: "https://chat.example/hooks/x".into(),
                on: vec![ExecutionStatus::Error, ExecutionStatus::Interrupted],
                min_interval_s: 60,
            })
        );
        assert_eq!(config.public_url, "https://flowd.example.com");
    }

    #[test]
    fn the_default_alert_is_on_error_timeout_and_killed() {
        let args = parse(&["--alert-url", "http://127.0.0.1:9/alerts"]).unwrap();
        let policy = args.alert_config().unwrap().default_policy.unwrap();
        assert_eq!(policy.on, flowd_core::alerts::DEFAULT_ALERT_ON);
    }

    #[test]
    fn alert_urls_other_than_http_and_statuses_no_execution_ends_in_are_refused() {
        assert!(parse(&["--alert-url", "ftp://chat.example/x"]).is_err());
        assert!(parse(&["--alert-on", "running"]).is_err());
        assert!(parse(&["--alert-on", "bogus"]).is_err());
    }
}
