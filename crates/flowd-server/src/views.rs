//! The JSON representations the API answers with. Times are RFC 3339 UTC strings; secret
//! settings are masked.

use base64::prelude::{Engine as _, BASE64_STANDARD};
use flowd_core::settings::{masked, Settings, SettingsChange, MASK};
use flowd_core::workflow::{Mode, Trigger};
use flowd_engine::clock::rfc3339;
use flowd_engine::replay::ReplayJob;
use flowd_engine::Deployment;
use flowd_store::{
    AlertDelivery, ApiKeyRecord, AuditEntry, ExecutionRecord, RequestParts, TeamRecord,
    VersionRecord, WorkflowRecord,
};
use serde_json::{json, Value};

/// The path of a catch workflow's hook URL.
pub fn hook_path(team: &str, workflow: &WorkflowRecord) -> String {
    format!(
        "/teams/{team}/{}/{}/{}",
        workflow.name, workflow.runtime, workflow.hook_token
    )
}

pub fn workflow(team: &str, record: &WorkflowRecord) -> Value {
    let schedule = record
        .schedule
        .as_deref()
        .and_then(|text| serde_json::from_str::<Value>(text).ok());
    json!({
        "id": record.id,
        "name": record.name,
        "team": team,
        "mode": record.mode,
        "runtime": record.runtime,
        "version": record.version,
        "enabled": record.enabled,
        "hook_url": (record.mode == Mode::Catch).then(|| hook_path(team, record)),
        "secrets": record.secret_keys,
        "env": record.env.iter().map(|(name, value)| {
            let shown = if record.secret_keys.contains(name) { MASK } else { value.as_str() };
            (name.clone(), json!(shown))
        }).collect::<serde_json::Map<String, Value>>(),
        "schedule": schedule,
        "next_run_at": record.next_fire_at.map(rfc3339),
        "timeout_s": record.timeout_s,
        "memory_mb": record.memory_mb,
        "max_concurrency": record.max_concurrency,
        "isolation": record.isolation,
        "retention": record.retention,
        "response": record.response,
        "retry": record.retry,
        "created_at": rfc3339(record.created_at),
        "updated_at": rfc3339(record.updated_at),
        "verify": record.verify.as_ref().map(|verify| verify.to_json()),
        "idempotency_header": record.idempotency_header,
        "egress_allow": record.egress_allow,
        "alerts": record.alerts,
        "on_failure": record.on_failure,
        "store_requests": record.store_requests,
    })
}

/// A version. Its `state` is `active` for the workflow's active version, else as stored
/// (`building`, `ready`, `failed`).
pub fn version(record: &VersionRecord, active: Option<u32>) -> Value {
    let is_active = active == Some(record.version);
    json!({
        "version": record.version,
        "state": if is_active { "active" } else { record.state.as_str() },
        "active": is_active,
        "code": record.code,
        "requirements": record.requirements,
        "environment": record.environment,
        "error": record.error,
        "build_log": record.build_log,
        "created_at": rfc3339(record.created_at),
        "settled_at": record.settled_at.map(rfc3339),
    })
}

/// How the deploy of a new version stands (in the answer to the change that made it).
pub fn deployment(deployment: &Deployment) -> Value {
    json!({
        "version": deployment.version,
        "state": if deployment.active { "active" } else { deployment.state.as_str() },
        "active": deployment.active,
        "error": deployment.error,
        "build_log": deployment.build_log,
    })
}

pub fn settings(record: &WorkflowRecord, settings: &Settings) -> Value {
    json!({
        "settings": masked(settings, &record.secret_keys),
        "secrets": record.secret_keys,
    })
}

fn changed_keys(change: &SettingsChange) -> Value {
    json!({
        "added": change.added.keys().collect::<Vec<_>>(),
        "changed": change.changed.keys().collect::<Vec<_>>(),
        "removed": change.removed,
    })
}

/// The full record of one execution.
pub fn execution(record: &ExecutionRecord) -> Value {
    let mut value = execution_summary(record);
    value["logs"] = json!(record.logs);
    value["logs_truncated"] = json!(record.logs_truncated);
    value["error"] = match &record.error {
        Some(error) => {
            json!({"type": error.kind, "message": error.message, "traceback": error.traceback})
        }
        None => Value::Null,
    };
    value
}

/// An execution in a listing: everything but the output and the traceback.
pub fn execution_summary(record: &ExecutionRecord) -> Value {
    json!({
        "id": record.id,
        "workflow_id": record.workflow_id,
        "version": record.version,
        "trigger": record.trigger,
        "status": record.status,
        "started_at": rfc3339(record.started_at),
        "finished_at": record.finished_at.map(rfc3339),
        "duration_ms": record.duration_ms,
        "response_status": record.response_status,
        "warnings": record.warnings,
        "error": record.error.as_ref().map(|e| json!({"type": e.kind, "message": e.message})),
        "logs_truncated": record.logs_truncated,
        "settings_changed": record.settings_changed.as_ref().map(changed_keys),
        "fire_at": record.fire_at.map(rfc3339),
        "attempt": record.attempt,
        "retry_of": record.retry_of,
        "replay_of": record.replay_of,
        "request_stored": request_stored(record),
        "request_not_stored": record.request_not_stored,
    })
}

/// An alert delivery, as `GET /api/v1/workflows/{id}/alerts` lists it.
pub fn alert_delivery(record: &AlertDelivery) -> Value {
    json!({
        "id": record.id,
        "at": rfc3339(record.at),
        "execution_id": record.execution_id,
        "status_code": record.status_code,
        "error": record.error,
        "attempts": record.attempts,
        "suppressed": record.suppressed,
    })
}

/// Whether the execution's request was stored (for replay): `null` for an execution that had
/// no request (scheduled, manual).
fn request_stored(record: &ExecutionRecord) -> Option<bool> {
    matches!(record.trigger, Trigger::Catch | Trigger::Replay)
        .then_some(record.request_not_stored.is_none())
}

/// A stored request, for developers: the body as text when it is UTF-8, else base64.
pub fn stored_request(execution_id: &str, request: &RequestParts) -> Value {
    let headers: Vec<Value> = request
        .headers
        .iter()
        .map(|(name, value)| json!([name, String::from_utf8_lossy(value)]))
        .collect();
    let (body, encoding) = match std::str::from_utf8(&request.body) {
        Ok(text) => (text.to_string(), "utf-8"),
        Err(_) => (BASE64_STANDARD.encode(&request.body), "base64"),
    };
    json!({
        "execution_id": execution_id,
        "method": request.method,
        "path": request.path,
        "query_string": request.query_string,
        "headers": headers,
        "body": body,
        "body_encoding": encoding,
    })
}

/// A bulk replay's progress.
pub fn replay_job(job: &ReplayJob) -> Value {
    let failed: Vec<Value> = job
        .failed
        .iter()
        .map(|(execution_id, error)| json!({"execution_id": execution_id, "error": error}))
        .collect();
    json!({
        "id": job.id,
        "workflow_id": job.workflow_id,
        "state": if job.finished_at.is_some() { "finished" } else { "running" },
        "started_at": rfc3339(job.started_at),
        "finished_at": job.finished_at.map(rfc3339),
        "matched": job.matched,
        "replayed": job.replayed,
        "failed": failed,
        "executions": job.executions,
    })
}

pub fn team(record: &TeamRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "created_at": rfc3339(record.created_at),
    })
}

/// An API key as listings show it: never the key, nor its hash.
pub fn api_key(record: &ApiKeyRecord, team: &str) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "prefix": record.prefix,
        "role": record.role,
        "team": team,
        "created_at": rfc3339(record.created_at),
        "expires_at": record.expires_at.map(rfc3339),
        "last_used_at": record.last_used_at.map(rfc3339),
    })
}

pub fn audit_entry(entry: &AuditEntry) -> Value {
    json!({
        "id": entry.id,
        "at": rfc3339(entry.at),
        "actor": {"id": entry.actor_id, "name": entry.actor_name},
        "action": entry.action,
        "team": entry.team_name,
        "workflow": entry.workflow_name,
        "workflow_id": entry.workflow_id,
        "summary": entry.summary,
    })
}
