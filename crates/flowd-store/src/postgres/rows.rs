//! Rows read back as records. The queries select the columns listed here, JSON columns as text
//! (`::TEXT`), so that decoding them is serde's job and a bad document reads as `Corrupt`.

use std::str::FromStr;

use flowd_core::settings::SettingsChange;
use serde::de::DeserializeOwned;
use sqlx::postgres::PgRow;
use sqlx::Row;

use crate::secrets::Secrets;
use crate::{
    ApiKeyRecord, ExecutionError, ExecutionRecord, Result, StoreError, TeamRecord, VersionRecord,
    WorkflowRecord,
};

pub(super) const TEAM_COLUMNS: &str = "id, name, created_at";
pub(super) const API_KEY_COLUMNS: &str =
    "id, team_id, name, key_hash, prefix, role, created_at, expires_at, last_used_at";
pub(super) const WORKFLOW_COLUMNS: &str = "id, team_id, name, mode, runtime, version, enabled, \
     hook_token, secret_keys::TEXT AS secret_keys, env::TEXT AS env, schedule, next_fire_at, \
     timeout_s, memory_mb, max_concurrency, isolation, created_at, updated_at, verify, \
     idempotency_header, egress_allow::TEXT AS egress_allow, retention::TEXT AS retention, \
     alerts::TEXT AS alerts, on_failure, response, retry::TEXT AS retry, store_requests";
pub(super) const VERSION_COLUMNS: &str = "workflow_id, version, code, \
     requirements::TEXT AS requirements, state, build_log, error, environment, created_at, \
     settled_at";
pub(super) const EXECUTION_COLUMNS: &str = "id, workflow_id, version, \"trigger\", status, \
     started_at, finished_at, duration_ms, response_status, warnings::TEXT AS warnings, \
     error::TEXT AS error, logs, logs_truncated, settings_changed::TEXT AS settings_changed, \
     fire_at, attempt, retry_of, \
     replay_of, request_not_stored";

pub(super) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|err| StoreError::Corrupt(format!("{what} is not valid JSON: {err}")))
}

fn json_column<T: DeserializeOwned>(row: &PgRow, table: &str, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    from_json(&text, &format!("{table}.{column}"))
}

fn optional_json_column<T: DeserializeOwned>(
    row: &PgRow,
    table: &str,
    column: &str,
) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| from_json(&text, &format!("{table}.{column}")))
        .transpose()
}

/// A BYTEA column holding UTF-8 text.
fn utf8_column(row: &PgRow, table: &str, column: &str) -> Result<String> {
    let bytes: Vec<u8> = row.try_get(column)?;
    String::from_utf8(bytes)
        .map_err(|_| StoreError::Corrupt(format!("{table}.{column} is not UTF-8")))
}

fn optional_utf8_column(row: &PgRow, table: &str, column: &str) -> Result<Option<String>> {
    let bytes: Option<Vec<u8>> = row.try_get(column)?;
    bytes
        .map(|bytes| {
            String::from_utf8(bytes)
                .map_err(|_| StoreError::Corrupt(format!("{table}.{column} is not UTF-8")))
        })
        .transpose()
}

fn enum_column<T: FromStr<Err = String>>(row: &PgRow, table: &str, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|err| StoreError::Corrupt(format!("{table}.{column}: {err}")))
}

fn int_column<T: TryFrom<i64>>(row: &PgRow, table: &str, column: &str) -> Result<T> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{table}.{column} = {value} is out of range")))
}

fn optional_int_column<T: TryFrom<i64>>(
    row: &PgRow,
    table: &str,
    column: &str,
) -> Result<Option<T>> {
    let value: Option<i64> = row.try_get(column)?;
    value
        .map(|value| {
            T::try_from(value).map_err(|_| {
                StoreError::Corrupt(format!("{table}.{column} = {value} is out of range"))
            })
        })
        .transpose()
}

pub(super) fn team_from_row(row: &PgRow) -> Result<TeamRecord> {
    Ok(TeamRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

pub(super) fn api_key_from_row(row: &PgRow) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        team_id: row.try_get("team_id")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        prefix: row.try_get("prefix")?,
        role: enum_column(row, "api_keys", "role")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

pub(super) fn workflow_from_row(row: &PgRow, secrets: &Secrets) -> Result<WorkflowRecord> {
    const T: &str = "workflows";
    let id: String = row.try_get("id")?;
    Ok(WorkflowRecord {
        id: id.clone(),
        team_id: row.try_get("team_id")?,
        name: row.try_get("name")?,
        mode: enum_column(row, T, "mode")?,
        runtime: row.try_get("runtime")?,
        // 0: no active version yet.
        version: Some(int_column::<u32>(row, T, "version")?).filter(|v| *v > 0),
        enabled: row.try_get("enabled")?,
        hook_token: row.try_get("hook_token")?,
        secret_keys: json_column(row, T, "secret_keys")?,
        env: secrets.open_env(&id, json_column(row, T, "env")?)?,
        schedule: row.try_get("schedule")?,
        next_fire_at: row.try_get("next_fire_at")?,
        timeout_s: int_column(row, T, "timeout_s")?,
        memory_mb: int_column(row, T, "memory_mb")?,
        max_concurrency: optional_int_column(row, T, "max_concurrency")?,
        isolation: enum_column(row, T, "isolation")?,
        response: enum_column(row, T, "response")?,
        retry: optional_json_column(row, T, "retry")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        verify: verify_column(row, T)?,
        idempotency_header: row.try_get("idempotency_header")?,
        egress_allow: json_column(row, T, "egress_allow")?,
        retention: optional_json_column(row, T, "retention")?,
        alerts: optional_json_column(row, T, "alerts")?,
        on_failure: row.try_get("on_failure")?,
        store_requests: row.try_get("store_requests")?,
    })
}

/// The workflow's `verify` object, checked as the API checks it.
fn verify_column(row: &PgRow, table: &str) -> Result<Option<flowd_core::verify::Verification>> {
    let value: Option<serde_json::Value> = optional_json_column(row, table, "verify")?;
    value
        .map(|value| {
            flowd_core::verify::Verification::from_json(&value)
                .map_err(|err| StoreError::Corrupt(format!("{table}.verify: {err}")))
        })
        .transpose()
}

pub(super) fn version_from_row(row: &PgRow) -> Result<VersionRecord> {
    const T: &str = "workflow_versions";
    Ok(VersionRecord {
        workflow_id: row.try_get("workflow_id")?,
        version: int_column(row, T, "version")?,
        code: row.try_get("code")?,
        requirements: json_column(row, T, "requirements")?,
        state: enum_column(row, T, "state")?,
        build_log: utf8_column(row, T, "build_log")?,
        error: optional_utf8_column(row, T, "error")?,
        environment: row.try_get("environment")?,
        created_at: row.try_get("created_at")?,
        settled_at: row.try_get("settled_at")?,
    })
}

pub(super) fn execution_from_row(row: &PgRow) -> Result<ExecutionRecord> {
    const T: &str = "executions";
    Ok(ExecutionRecord {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        version: int_column(row, T, "version")?,
        trigger: enum_column(row, T, "trigger")?,
        status: enum_column(row, T, "status")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
        response_status: optional_int_column(row, T, "response_status")?,
        warnings: json_column(row, T, "warnings")?,
        error: optional_json_column::<ExecutionError>(row, T, "error")?,
        logs: utf8_column(row, T, "logs")?,
        logs_truncated: row.try_get("logs_truncated")?,
        settings_changed: optional_json_column::<SettingsChange>(row, T, "settings_changed")?,
        fire_at: row.try_get("fire_at")?,
        attempt: int_column(row, T, "attempt")?,
        retry_of: row.try_get("retry_of")?,
        replay_of: row.try_get("replay_of")?,
        request_not_stored: row.try_get("request_not_stored")?,
    })
}
