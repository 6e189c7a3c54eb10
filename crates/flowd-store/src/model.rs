//! The records the store keeps.

use flowd_core::access::{AuditAction, Role};
use flowd_core::settings::SettingsChange;
use flowd_core::workflow::{ExecutionStatus, Isolation, Mode, ResponseMode, Trigger, VersionState};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq)]
pub struct TeamRecord {
    pub id: String,
    pub name: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRecord {
    pub id: String,
    pub team_id: String,
    /// A label for people ("admin", "ci").
    pub name: String,
    /// SHA-256 of the key, lower-case hex. The key itself is never stored.
    pub key_hash: String,
    /// The first characters of the key, to tell keys apart in listings.
    pub prefix: String,
    pub role: Role,
    pub created_at: i64,
    /// After this the key is refused (`None`: never expires).
    pub expires_at: Option<i64>,
    /// When it was last used, to the minute or so (the engine records it at most once a minute).
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRecord {
    pub id: String,
    pub team_id: String,
    pub name: String,
    pub mode: Mode,
    /// The interpreter, named like `python3.11`.
    pub runtime: String,
    /// The active version: the one its hook and schedule run. `None` until a first version is
    /// ready (its build or import check is going, or failed).
    pub version: Option<u32>,
    pub enabled: bool,
    /// The secret last segment of the hook URL.
    pub hook_token: String,
    /// Settings keys (and environment variable names) whose values are secret.
    pub secret_keys: Vec<String>,
    /// Environment variables of the workflow's Python processes, set before its module runs.
    pub env: std::collections::BTreeMap<String, String>,
    /// The schedule as given by the user (pull mode), as JSON text.
    pub schedule: Option<String>,
    /// When the scheduler next fires this workflow (pull mode, enabled).
    pub next_fire_at: Option<i64>,
    pub timeout_s: u32,
    pub memory_mb: u32,
    /// At most this many executions at once (`None`: no per-workflow limit).
    pub max_concurrency: Option<u32>,
    pub isolation: Isolation,
    pub created_at: i64,
    pub updated_at: i64,
    /// How the hook's callers sign their deliveries (`None`: calls are not checked).
    pub verify: Option<flowd_core::verify::Verification>,
    /// The header whose value identifies a delivery, instead of `Idempotency-Key` (lower-case).
    pub idempotency_header: Option<String>,
    /// The workflow's own retention of its executions (`None`: the server's).
    pub retention: Option<flowd_core::retention::Retention>,
    /// Destinations this workflow's processes alone may connect to although the egress policy
    /// refuses them, within the server's ceiling (`flowd_core::egress::ceiling`).
    pub egress_allow: Vec<flowd_core::egress::EgressRule>,
    /// Where alerts about its failed executions go (`None`: the server's default, if any).
    pub alerts: Option<flowd_core::alerts::AlertPolicy>,
    /// The name of a workflow of the same team run with the alert's summary as `_request`
    /// whenever an alert is triggered.
    pub on_failure: Option<String>,
    /// How its hook calls are answered.
    pub response: ResponseMode,
    /// How its asynchronous and scheduled executions are retried (`None`: they are not).
    pub retry: Option<flowd_core::retry::RetryPolicy>,
    /// Whether the requests of its hook executions are stored, for replay (`false`: the data
    /// must not be kept).
    pub store_requests: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VersionRecord {
    pub workflow_id: String,
    pub version: u32,
    pub code: String,
    /// The requirement lines the version declared (empty: the base environment only).
    pub requirements: Vec<String>,
    pub state: VersionState,
    /// What building its environment printed, and the import check's output or traceback.
    pub build_log: String,
    /// Why it failed, in one line (`failed` versions).
    pub error: Option<String>,
    /// The environment it runs in (its content address), once built.
    pub environment: Option<String>,
    pub created_at: i64,
    /// When its build and import check ended.
    pub settled_at: Option<i64>,
}

/// How the build and import check of a version ended, recorded by [`crate::Store::settle_version`].
#[derive(Debug, Clone, PartialEq)]
pub struct VersionOutcome {
    pub workflow_id: String,
    pub version: u32,
    /// `Ready` or `Failed`.
    pub state: VersionState,
    pub build_log: String,
    pub error: Option<String>,
    pub environment: Option<String>,
    pub settled_at: i64,
}

/// Why an execution failed, as recorded (never sent to the hook's caller beyond `type`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExecutionError {
    /// The exception type (`KeyError`, `requests.exceptions.HTTPError`) or a flowd reason
    /// (`Timeout`, `MemoryLimit`, `InvalidSettings`, …).
    #[serde(rename = "type")]
    pub kind: String,
    pub message: String,
    pub traceback: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExecutionRecord {
    pub id: String,
    pub workflow_id: String,
    pub version: u32,
    pub trigger: Trigger,
    pub status: ExecutionStatus,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub duration_ms: Option<i64>,
    /// The HTTP status sent to the caller (catch).
    pub response_status: Option<u16>,
    pub warnings: Vec<String>,
    pub error: Option<ExecutionError>,
    /// Captured stdout and stderr (already capped and secret-masked).
    pub logs: String,
    pub logs_truncated: bool,
    /// What the execution changed in the settings (persisted or, for a failed run, what it would
    /// have changed: `None` when nothing is known).
    pub settings_changed: Option<SettingsChange>,
    /// For scheduled runs: the fire time this execution claims. `(workflow_id, fire_at)` is
    /// unique, so that one fire time is run once.
    pub fire_at: Option<i64>,
    /// Which attempt this is (1-based): above 1, a retry of the execution `retry_of`.
    pub attempt: u32,
    /// For a retry: the id of the first attempt.
    pub retry_of: Option<String>,
    /// For a replay: the execution whose stored request it ran again.
    pub replay_of: Option<String>,
    /// Why the request of this hook execution was not stored (`None`: stored, or not a hook
    /// execution).
    pub request_not_stored: Option<String>,
}

/// One change recorded in the audit log: who did it (the API key, by id and name, as they were),
/// what, when, in which team and on which workflow. Entries outlive what they name.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor_id: String,
    pub actor_name: String,
    pub action: AuditAction,
    pub team_id: Option<String>,
    pub team_name: Option<String>,
    pub workflow_id: Option<String>,
    pub workflow_name: Option<String>,
    /// What changed, in words (settings keys, never values).
    pub summary: String,
}

/// A filter of the audit log. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only entries of this team (by id).
    pub team_id: Option<String>,
    /// Only entries of the team of this name (as it was named at the time).
    pub team_name: Option<String>,
    /// Only entries about this workflow, by id or name.
    pub workflow: Option<String>,
    /// Only entries of this API key, by id or name.
    pub actor: Option<String>,
    /// Only entries at or after this time (epoch ms).
    pub since: Option<i64>,
    /// Only entries older than this one (by id): the next page.
    pub before_id: Option<String>,
    /// At most this many (the backend caps it at 1000; 0 means 50).
    pub limit: u32,
}

/// One alert about an execution, as of its latest attempt: what its receiver answered, after how
/// many attempts. Listed newest first; deleted with its execution by the retention.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertDelivery {
    pub id: String,
    pub workflow_id: String,
    pub execution_id: String,
    /// When its latest attempt ended (epoch ms).
    pub at: i64,
    /// The receiver's HTTP status at the latest attempt, if it answered.
    pub status_code: Option<u16>,
    /// Why the latest attempt failed (no answer, or a status that is not 2xx).
    pub error: Option<String>,
    pub attempts: u32,
    /// The alerts of the workflow suppressed before this one (its `min_interval_s`).
    pub suppressed: u64,
}

/// What [`crate::Store::claim_alert`] decided for one alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertClaim {
    /// Send it, saying this many alerts were suppressed since the previous one.
    Send { suppressed: u64 },
    /// Another alert of the workflow was sent less than the interval ago: counted, not sent.
    Suppressed,
}
