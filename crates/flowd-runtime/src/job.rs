//! One execution to run, as the engine hands it to a [`Runtime`](crate::Runtime).

use std::sync::Arc;
use std::time::Duration;

use flowd_core::egress::EgressRule;
use flowd_core::requirements::Requirements;
use flowd_core::workflow::{Isolation, Mode, Trigger};
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
    /// What the workflow's `context` parameter holds: sent only to a version whose `workflow`
    /// declares one (the instance says so when it starts).
    pub context: Option<JobContext>,
    /// The workflow's own egress exceptions, opened for its warm instances only.
    pub egress_allow: Vec<EgressRule>,
}

/// An execution as its workflow's `context` parameter shows it (CONTRACT.md §2 "The execution
/// context").
#[derive(Debug, Clone)]
pub struct JobContext {
    /// The request's body exactly as received (hook calls; empty otherwise).
    pub raw_body: bytes::Bytes,
    /// The request's method and raw query string (hook calls).
    pub method: Option<String>,
    pub query_string: Option<String>,
    pub execution_id: String,
    /// The workflow's name.
    pub workflow: String,
    pub version: u32,
    pub trigger: Trigger,
    /// 1 for a first delivery.
    pub attempt: u32,
    /// The scheduled time the run is for (pull runs), epoch ms.
    pub fire_time_ms: Option<i64>,
    /// When the execution's time limit ends, epoch ms.
    pub deadline_ms: i64,
}

impl JobContext {
    /// The context as the runner reads it: times in Unix seconds (floats), the body as bytes.
    pub fn to_message(&self) -> flowd_core::PyValue {
        use flowd_core::PyValue;
        let seconds = |ms: i64| PyValue::Float(ms as f64 / 1000.0);
        let text = |text: &Option<String>| text.clone().map_or(PyValue::None, PyValue::Str);
        crate::protocol::message([
            ("raw_body", PyValue::Bytes(self.raw_body.to_vec())),
            ("method", text(&self.method)),
            ("query_string", text(&self.query_string)),
            ("execution_id", PyValue::Str(self.execution_id.clone())),
            ("workflow", PyValue::Str(self.workflow.clone())),
            ("version", PyValue::Int(i64::from(self.version))),
            ("trigger", PyValue::Str(self.trigger.as_str().to_string())),
            ("attempt", PyValue::Int(i64::from(self.attempt))),
            (
                "fire_time",
                self.fire_time_ms.map_or(PyValue::None, seconds),
            ),
            ("deadline", seconds(self.deadline_ms)),
        ])
    }
}
