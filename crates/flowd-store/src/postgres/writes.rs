//! The executions' writes ([`StoreWrite`]) as PostgreSQL applies them: encoded for the schema's
//! `flowd_apply_writes(writes JSON, log_bytes BYTEA[], documents TEXT[])`, which applies them in
//! order — the settings change's key-level merge included — in the caller's transaction, in one
//! round trip. What user code produced (logs, JSON documents) travels in the two arrays, `writes`
//! holding its index there (see the migration). Audit entries are not the function's: they are
//! inserted beside it, in the same transaction.

use serde::Serialize;
use sqlx::{Connection, PgConnection};

use super::audit;
use super::errors::unique_violation;
use crate::sqlx_error::is_foreign_key_violation;
use crate::{AuditEntry, ExecutionRecord, Result, StoreError, StoreWrite};

const APPLY_WRITES: &str = "SELECT flowd_apply_writes($1::JSONB, $2, $3)";
/// The same, with responses stored for idempotency keys (`CompleteIdempotencyKey`): one
/// statement still, so in the same transaction as the executions' records.
const APPLY_WRITES_AND_COMPLETIONS: &str = "SELECT flowd_apply_writes($1::JSONB, $2, $3), \
     flowd_complete_idempotency_keys($4::JSONB, $3, $5)";

/// One element of the function's `writes`.
#[derive(Serialize)]
#[serde(rename_all = "snake_case")]
enum EncodedWrite<'a> {
    Execution(EncodedExecution<'a>),
    Settings(EncodedSettingsChange<'a>),
    Request(EncodedRequest<'a>),
}

#[derive(Serialize)]
struct EncodedRequest<'a> {
    execution_id: &'a str,
    workflow_id: &'a str,
    stored_at: i64,
    size: u64,
    /// The 1-based index of its payload in `log_bytes`.
    payload: usize,
}

#[derive(Serialize)]
struct EncodedExecution<'a> {
    id: &'a str,
    workflow_id: &'a str,
    version: u32,
    trigger: &'a str,
    status: &'a str,
    started_at: i64,
    finished_at: Option<i64>,
    duration_ms: Option<i64>,
    response_status: Option<u16>,
    /// This and the other JSON columns: 1-based indexes in `documents`.
    warnings: usize,
    error: Option<usize>,
    /// The 1-based index of its logs in `log_bytes`.
    logs: usize,
    logs_truncated: bool,
    settings_changed: Option<usize>,
    fire_at: Option<i64>,
    attempt: u32,
    retry_of: Option<&'a str>,
    replay_of: Option<&'a str>,
    request_not_stored: Option<&'a str>,
}

#[derive(Serialize)]
struct EncodedSettingsChange<'a> {
    workflow_id: &'a str,
    /// `[key, index of the value in documents]` pairs, in the change's order.
    upserts: Vec<(&'a String, usize)>,
    removed: &'a [String],
}

/// One element of `flowd_complete_idempotency_keys`'s `completions`.
#[derive(Serialize)]
struct EncodedCompletion<'a> {
    workflow_id: &'a str,
    key: &'a str,
    execution_id: &'a str,
    status: u16,
    /// 1-based index of the headers (a JSON array of pairs) in `documents`.
    headers: usize,
    /// 1-based index of the body in `bodies`.
    body: usize,
}

/// The function's arguments for `writes`.
struct Encoded<'a> {
    writes: String,
    log_bytes: Vec<&'a [u8]>,
    documents: Vec<String>,
    /// Responses for idempotency keys (often none).
    completions: Vec<EncodedCompletion<'a>>,
    bodies: Vec<&'a [u8]>,
}

impl Encoded<'_> {
    /// Adds `value` to `documents`, answering its 1-based index.
    fn document<T: Serialize + ?Sized>(&mut self, value: &T, what: &str) -> Result<usize> {
        let text = serde_json::to_string(value)
            .map_err(|err| StoreError::Corrupt(format!("cannot encode {what} as JSON: {err}")))?;
        self.documents.push(text);
        Ok(self.documents.len())
    }
}

fn encode<'a>(writes: impl Iterator<Item = &'a StoreWrite>) -> Result<Encoded<'a>> {
    let mut out = Encoded {
        writes: String::new(),
        log_bytes: Vec::new(),
        documents: Vec::new(),
        completions: Vec::new(),
        bodies: Vec::new(),
    };
    let mut encoded = Vec::new();
    for write in writes {
        if let StoreWrite::CompleteIdempotencyKey {
            workflow_id,
            key,
            execution_id,
            response,
        } = write
        {
            let headers = out.document(&response.headers, "a stored response's headers")?;
            out.bodies.push(&response.body);
            out.completions.push(EncodedCompletion {
                workflow_id,
                key,
                execution_id,
                status: response.status,
                headers,
                body: out.bodies.len(),
            });
            continue;
        }
        encoded.push(match write {
            StoreWrite::PutExecution(execution) => {
                out.log_bytes.push(execution.logs.as_bytes());
                EncodedWrite::Execution(EncodedExecution {
                    id: &execution.id,
                    workflow_id: &execution.workflow_id,
                    version: execution.version,
                    trigger: execution.trigger.as_str(),
                    status: execution.status.as_str(),
                    started_at: execution.started_at,
                    finished_at: execution.finished_at,
                    duration_ms: execution.duration_ms,
                    response_status: execution.response_status,
                    warnings: out.document(&execution.warnings, "the execution's warnings")?,
                    error: execution
                        .error
                        .as_ref()
                        .map(|error| out.document(error, "the execution's error"))
                        .transpose()?,
                    logs: out.log_bytes.len(),
                    logs_truncated: execution.logs_truncated,
                    settings_changed: execution
                        .settings_changed
                        .as_ref()
                        .map(|change| out.document(change, "the execution's settings change"))
                        .transpose()?,
                    fire_at: execution.fire_at,
                    attempt: execution.attempt,
                    retry_of: execution.retry_of.as_deref(),
                    replay_of: execution.replay_of.as_deref(),
                    request_not_stored: execution.request_not_stored.as_deref(),
                })
            }
            StoreWrite::ApplySettingsChange {
                workflow_id,
                change,
            } => EncodedWrite::Settings(EncodedSettingsChange {
                workflow_id,
                upserts: change
                    .upserts()
                    .map(|(key, value)| Ok((key, out.document(value, "a settings value")?)))
                    .collect::<Result<_>>()?,
                removed: &change.removed,
            }),
            StoreWrite::PutStoredRequest(request) => {
                out.log_bytes.push(&request.payload);
                EncodedWrite::Request(EncodedRequest {
                    execution_id: &request.execution_id,
                    workflow_id: &request.workflow_id,
                    stored_at: request.stored_at,
                    size: request.size,
                    payload: out.log_bytes.len(),
                })
            }
            StoreWrite::CompleteIdempotencyKey { .. } => continue,
            // Inserted by the callers of `encode`, beside the function's call.
            StoreWrite::AppendAudit(_) => continue,
        });
    }
    out.writes = serde_json::to_string(&encoded)
        .map_err(|err| StoreError::Corrupt(format!("cannot encode store writes: {err}")))?;
    Ok(out)
}

/// Applies `writes` in order on `conn`: in one statement, so atomically even outside a
/// transaction. A failure is the database's, not yet tied to the write that caused it (see
/// [`apply_each`]).
pub(super) async fn apply_all(conn: &mut PgConnection, writes: &[&StoreWrite]) -> Result<()> {
    let entries: Vec<&AuditEntry> = writes
        .iter()
        .filter_map(|write| match write {
            StoreWrite::AppendAudit(entry) => Some(entry),
            _ => None,
        })
        .collect();
    let encoded = encode(writes.iter().copied())?;
    if entries.is_empty() {
        execute(conn, encoded).await?;
        return Ok(());
    }
    // Entries in the transaction of the changes they record: rare (a change made through the
    // API), so the executions' batches stay one statement without a transaction.
    let mut tx = conn.begin().await?;
    execute(&mut tx, encoded).await?;
    audit::insert_entries(&mut tx, entries).await?;
    tx.commit().await?;
    Ok(())
}

async fn execute(conn: &mut PgConnection, encoded: Encoded<'_>) -> sqlx::Result<()> {
    if encoded.completions.is_empty() {
        sqlx::query(APPLY_WRITES)
            .bind(encoded.writes)
            .bind(encoded.log_bytes)
            .bind(encoded.documents)
            .execute(conn)
            .await?;
        return Ok(());
    }
    let completions = serde_json::to_string(&encoded.completions)
        .map_err(|err| sqlx::Error::Encode(Box::new(err)))?;
    sqlx::query(APPLY_WRITES_AND_COMPLETIONS)
        .bind(encoded.writes)
        .bind(encoded.log_bytes)
        .bind(encoded.documents)
        .bind(completions)
        .bind(encoded.bodies)
        .execute(conn)
        .await?;
    Ok(())
}

/// Applies `writes` in order in the caller's transaction, one statement each, so that a failure
/// names the write that failed: a fire time already claimed is `Conflict`, a workflow that does
/// not exist `NotFound`.
pub(super) async fn apply_each(conn: &mut PgConnection, writes: &[StoreWrite]) -> Result<()> {
    for write in writes {
        if let StoreWrite::AppendAudit(entry) = write {
            audit::insert_entries(conn, [entry]).await?;
            continue;
        }
        let encoded = encode(std::iter::once(write))?;
        execute(conn, encoded)
            .await
            .map_err(|err| explained(err, write))?;
    }
    Ok(())
}

/// `err`, from applying `write` alone, in the terms of the store.
fn explained(err: sqlx::Error, write: &StoreWrite) -> StoreError {
    match write {
        StoreWrite::PutExecution(execution) if unique_violation(&err).is_some() => {
            StoreError::fire_time_taken(execution)
        }
        StoreWrite::PutExecution(execution) if is_foreign_key_violation(&err) => {
            StoreError::execution_workflow_missing(execution)
        }
        StoreWrite::ApplySettingsChange { workflow_id, .. } if is_foreign_key_violation(&err) => {
            StoreError::workflow_not_found(workflow_id)
        }
        _ => err.into(),
    }
}

/// Puts one execution record (inserted, or replacing the row with its id).
pub(super) async fn put_execution(
    conn: &mut PgConnection,
    execution: &ExecutionRecord,
) -> Result<()> {
    apply_each(conn, &[StoreWrite::PutExecution(execution.clone())]).await
}
