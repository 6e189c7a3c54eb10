//! Why the runtime could not do what it was asked: start, warm a version up, accept code.

use std::path::PathBuf;

use crate::envs::BuildError;
use crate::instance::InitFailure;
use crate::protocol::ProtocolError;
use crate::provision::ProvisionError;
use crate::zygote::StartError;

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error("the Python base process could not start ({attempts} tries): {source}")]
    BaseProcess {
        attempts: u32,
        #[source]
        source: StartError,
    },
    #[error("the Python base process is down: every try to start it failed, the last because {last_error}")]
    BaseProcessFailed { last_error: String },
    #[error("the Python base process failed: {0}")]
    Zygote(#[source] ProtocolError),
    #[error("the warm instance failed while starting: {0}")]
    Instance(#[source] ProtocolError),
    #[error("the version's pool of reuse instances is closed")]
    PoolClosed,
    #[error("the runtime environment {dir} is not reachable by uid {uid}, which user code runs as: give every directory above it the x bit for others, or set FLOWD_RUNTIME_DIR to a directory that is (e.g. under /var/lib)")]
    Unreachable { dir: PathBuf, uid: u32 },
    #[error("I/O error in the Python runtime: {0}")]
    Io(#[from] std::io::Error),
    #[error("the default runtime {name:?} is not among the interpreters found: {available} (give its interpreter with --python)")]
    UnknownDefault { name: String, available: String },
    #[error(transparent)]
    Egress(#[from] crate::egress::EgressError),
    #[error("the environment of the workflow's requirements could not be built: {0}")]
    Build(#[source] BuildError),
    #[error("the workflow's egress exceptions could not be opened for its warm instance: {0}")]
    EgressExceptions(#[source] crate::egress::NftError),
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
