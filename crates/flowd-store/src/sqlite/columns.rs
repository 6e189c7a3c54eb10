//! How records are written into columns: JSON text for structured values, and the upsert of an
//! execution shared by the API's connection and the group commit.

use crate::error::Result;
use crate::model::ExecutionRecord;

/// The upsert of an execution record (a `running` row is replaced when the execution ends). The
/// sixteenth parameter is the node writing it, kept from the insert on (the node that started it).
pub(crate) const PUT_EXECUTION: &str =
    "INSERT INTO executions (id, workflow_id, version, \"trigger\", status, started_at, \
         finished_at, duration_ms, response_status, warnings, error, logs, logs_truncated, \
         settings_changed, fire_at, node_id, attempt, retry_of, \
         replay_of, request_not_stored) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
         ?, ?) \
     ON CONFLICT (id) DO UPDATE SET \
         workflow_id = excluded.workflow_id, \
         version = excluded.version, \
         \"trigger\" = excluded.\"trigger\", \
         status = excluded.status, \
         started_at = excluded.started_at, \
         finished_at = excluded.finished_at, \
         duration_ms = excluded.duration_ms, \
         response_status = excluded.response_status, \
         warnings = excluded.warnings, \
         error = excluded.error, \
         logs = excluded.logs, \
         logs_truncated = excluded.logs_truncated, \
         settings_changed = excluded.settings_changed, \
         fire_at = excluded.fire_at, \
         attempt = excluded.attempt, \
         retry_of = excluded.retry_of, \
         replay_of = excluded.replay_of, \
         request_not_stored = excluded.request_not_stored";

/// Stores a request with its execution (a replace: an execution has one).
pub(crate) const PUT_STORED_REQUEST: &str =
    "INSERT OR REPLACE INTO stored_requests (execution_id, workflow_id, stored_at, size, payload) \
     VALUES (?, ?, ?, ?, ?)";

pub(super) use crate::json_column::{from_json, optional_to_json, to_json};

/// The JSON columns of an execution record, encoded.
pub(super) struct ExecutionColumns {
    pub warnings: String,
    pub error: Option<String>,
    pub settings_changed: Option<String>,
}

impl ExecutionColumns {
    pub(super) fn of(execution: &ExecutionRecord) -> Result<ExecutionColumns> {
        Ok(ExecutionColumns {
            warnings: to_json(&execution.warnings, "the execution's warnings")?,
            error: execution
                .error
                .as_ref()
                .map(|error| to_json(error, "the execution's error"))
                .transpose()?,
            settings_changed: execution
                .settings_changed
                .as_ref()
                .map(|change| to_json(change, "the execution's settings change"))
                .transpose()?,
        })
    }
}
