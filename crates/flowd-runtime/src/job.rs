//! One execution to run, as the engine hands it to a [`Runtime`](crate::Runtime).

use std::sync::Arc;
use std::time::Duration;

use flowd_core::egress::EgressRule;
use flowd_core::requirements::Requirements;
use flowd_core::workflow::{Isolation, Mode};
use flowd_core::PyValue;

/// One execution to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Identifies the code version: executions with the same key share a warm instance.
    pub version_key: String,
    pub code: Arc<str>,
    /// The version's requirement set (`None`: the runtime's base environment).
    pub requirements: Option<Arc<Requirements>>,
    pub mode: Mode,
    /// `_request` (catch mode).
    pub request: Option<PyValue>,
    /// The settings snapshot, as a JSON object.
    pub settings_json: String,
    pub timeout: Duration,
    pub memory_mb: u32,
    /// Environment variables of the workflow's processes.
    pub env: Vec<(String, String)>,
    /// A fork per execution, or executions inside the warm instance.
    pub isolation: Isolation,
    /// The workflow's own egress exceptions, opened for its warm instances only.
    pub egress_allow: Vec<EgressRule>,
}
