//! What a [`Runtime`](crate::Runtime) is started with: where it keeps its environments and
//! temporary directories, how many warm instances it keeps, and the limits executions run under.

use std::path::PathBuf;

use crate::egress::EgressConfig;
use crate::envs::BuildConfig;
use crate::sandbox::SandboxUser;

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
    /// Where user code may connect.
    pub egress: EgressConfig,
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
