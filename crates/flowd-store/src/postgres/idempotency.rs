//! The idempotency keys of hook calls on PostgreSQL (see [`crate::IdempotencyClaim`]); the
//! responses are stored by the executions' writes (`writes`).

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use super::rows::from_json;
use crate::sqlx_error::is_foreign_key_violation;
use crate::{
    IdempotencyClaim, IdempotencyClaimOutcome, IdempotencyRecord, Result, StoreError,
    StoredResponse,
};

/// Takes a key nobody holds, or one whose holder expired or went stale; else changes nothing.
/// The primary key's unique index makes two nodes claiming at once take turns.
const CLAIM: &str = "INSERT INTO idempotency_keys \
         (workflow_id, key, request_digest, execution_id, claimed_at, expires_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (workflow_id, key) DO UPDATE SET \
         request_digest = excluded.request_digest, \
         execution_id = excluded.execution_id, \
         claimed_at = excluded.claimed_at, \
         expires_at = excluded.expires_at, \
         response_status = NULL, \
         response_headers = NULL, \
         response_body = NULL \
     WHERE idempotency_keys.expires_at <= excluded.claimed_at \
        OR (idempotency_keys.response_status IS NULL AND idempotency_keys.claimed_at < $7)";

const COLUMNS: &str = "workflow_id, key, request_digest, execution_id, claimed_at, expires_at, \
     response_status, response_headers::TEXT AS response_headers, response_body";

/// How many times a claim is tried when the key it found held is gone before it is read (the
/// sweep deleted it in between).
const CLAIM_TRIES: usize = 3;

pub(super) async fn claim(
    pool: &PgPool,
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
            .execute(pool)
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
        if let Some(held) = read(pool, &claim.workflow_id, &claim.key).await? {
            return Ok(IdempotencyClaimOutcome::Held(held));
        }
    }
    Err(StoreError::Conflict(format!(
        "the idempotency key {:?} kept changing hands while it was claimed",
        claim.key
    )))
}

pub(super) async fn read(
    pool: &PgPool,
    workflow_id: &str,
    key: &str,
) -> Result<Option<IdempotencyRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM idempotency_keys WHERE workflow_id = $1 AND key = $2"
    ))
    .bind(workflow_id)
    .bind(key)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(record_from_row).transpose()
}

pub(super) async fn release(
    pool: &PgPool,
    workflow_id: &str,
    key: &str,
    execution_id: &str,
) -> Result<bool> {
    let deleted = sqlx::query(
        "DELETE FROM idempotency_keys WHERE workflow_id = $1 AND key = $2 \
         AND execution_id = $3 AND response_status IS NULL",
    )
    .bind(workflow_id)
    .bind(key)
    .bind(execution_id)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected() > 0)
}

pub(super) async fn delete_expired(pool: &PgPool, now: i64) -> Result<u64> {
    let deleted = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(now)
        .execute(pool)
        .await?;
    Ok(deleted.rows_affected())
}

fn record_from_row(row: &PgRow) -> Result<IdempotencyRecord> {
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
