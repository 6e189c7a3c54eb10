//! The idempotency keys of hook calls on SQLite (see [`crate::IdempotencyClaim`]).

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use super::columns::from_json;
use crate::error::{Result, StoreError};
use crate::sqlx_error::is_foreign_key_violation;
use crate::{IdempotencyClaim, IdempotencyClaimOutcome, IdempotencyRecord, StoredResponse};

/// Takes a key nobody holds, or one whose holder expired or went stale; else changes nothing.
const CLAIM: &str = "INSERT INTO idempotency_keys \
         (workflow_id, key, request_digest, execution_id, claimed_at, expires_at) \
     VALUES (?, ?, ?, ?, ?, ?) \
     ON CONFLICT (workflow_id, key) DO UPDATE SET \
         request_digest = excluded.request_digest, \
         execution_id = excluded.execution_id, \
         claimed_at = excluded.claimed_at, \
         expires_at = excluded.expires_at, \
         response_status = NULL, \
         response_headers = NULL, \
         response_body = NULL \
     WHERE idempotency_keys.expires_at <= excluded.claimed_at \
        OR (idempotency_keys.response_status IS NULL AND idempotency_keys.claimed_at < ?)";

/// The group commit's write of a response (`CompleteIdempotencyKey`).
pub(super) const COMPLETE_IDEMPOTENCY_KEY: &str = "UPDATE idempotency_keys SET \
         response_status = ?, response_headers = ?, response_body = ? \
     WHERE workflow_id = ? AND key = ? AND execution_id = ?";

const COLUMNS: &str = "workflow_id, key, request_digest, execution_id, claimed_at, expires_at, \
     response_status, response_headers, response_body";

/// How many times a claim is tried when the key it found held is gone before it is read (the
/// sweep deleted it in between).
const CLAIM_TRIES: usize = 3;

pub(super) async fn claim(
    writer: &SqlitePool,
    claim: &IdempotencyClaim,
) -> Result<IdempotencyClaimOutcome> {
    for _ in 0..CLAIM_TRIES {
        let claimed = sqlx::query(CLAIM)
            .bind(&claim.workflow_id)
            .bind(&claim.key)
            .bind(&claim.request_digest)
            .bind(&claim.execution_id)
            .bind(claim.claimed_at)
            .bind(claim.expires_at)
            .bind(claim.stale_before)
            .execute(writer)
            .await
            .map_err(|err| {
                if is_foreign_key_violation(&err) {
                    StoreError::workflow_not_found(&claim.workflow_id)
                } else {
                    err.into()
                }
            })?;
        if claimed.rows_affected() > 0 {
            return Ok(IdempotencyClaimOutcome::Claimed);
        }
        if let Some(held) = read(writer, &claim.workflow_id, &claim.key).await? {
            return Ok(IdempotencyClaimOutcome::Held(held));
        }
    }
    Err(StoreError::Conflict(format!(
        "the idempotency key {:?} kept changing hands while it was claimed",
        claim.key
    )))
}

pub(super) async fn read(
    pool: &SqlitePool,
    workflow_id: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM idempotency_keys WHERE workflow_id = ? AND key = ?"
    ))
    .bind(workflow_id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(record_from_row).transpose()
}

pub(super) async fn release(
    writer: &SqlitePool,
    workflow_id: &str,
    key: &str,
    execution_id: &str,
) -> Result<bool> {
    let deleted = sqlx::query(
        "DELETE FROM idempotency_keys WHERE workflow_id = ? AND key = ? AND execution_id = ? \
         AND response_status IS NULL",
    )
    .bind(workflow_id)
    .bind(key)
    .bind(execution_id)
    .execute(writer)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

pub(super) async fn delete_expired(writer: &SqlitePool, now: i64) -> Result<u64> {
    let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= ?")
        .bind(now)
        .execute(writer)
        .await?;
    Ok(deleted.rows_affected())
}

fn record_from_row(row: &SqliteRow) -> Result<IdempotencyRecord> {
    let status: Option<i64> = row.try_get("response_status")?;
    let response = match status {
        Some(status) => {
            let headers: Option<String> = row.try_get("response_headers")?;
            let body: Option<Vec<u8>> = row.try_get("response_body")?;
            Some(StoredResponse {
                status: u16::try_from(status).map_err(|_| {
                    StoreError::Corrupt(format!("a stored response has the status {status}"))
                })?,
                headers: from_json(
                    headers.as_deref().unwrap_or("[]"),
                    "a stored response's headers",
                )?,
                body: body.unwrap_or_default(),
            })
        }
        None => None,
    };
    Ok(IdempotencyRecord {
        workflow_id: row.try_get("workflow_id")?,
        key: row.try_get("key")?,
        request_digest: row.try_get("request_digest")?,
        execution_id: row.try_get("execution_id")?,
        claimed_at: row.try_get("claimed_at")?,
        expires_at: row.try_get("expires_at")?,
        response,
    })
}
