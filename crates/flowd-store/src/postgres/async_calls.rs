//! The queue of asynchronous calls on PostgreSQL: enqueues take one advisory lock so the bound
//! holds across nodes, claims skip the rows another node is claiming (`FOR UPDATE SKIP LOCKED`).

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row};

use crate::async_call::{headers_json, AsyncCallRow};
use crate::sqlx_error::is_foreign_key_violation;
use crate::{
    AsyncCallRecord, Enqueued, NextAttempt, QueueBound, Result, StoreError, StoredResponse,
};

/// The columns read back, JSON as text.
const COLUMNS: &str = "id, workflow_id, token, request_headers::TEXT AS request_headers, \
     request_query, request_body, enqueued_at, state, lease_until, node_id, response_status, \
     response_headers::TEXT AS response_headers, response_body, finished_at, execution_id, \
     attempt, \"trigger\", not_before";

/// The key of the advisory lock enqueues take (transaction-scoped): "flowd.aq" as a number.
const ENQUEUE_LOCK: i64 = 0x666c_6f77_642e_6171;

fn call_from_row(row: &PgRow) -> Result<AsyncCallRecord> {
    AsyncCallRow {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        token: row.try_get("token")?,
        request_headers: row.try_get("request_headers")?,
        request_query: row.try_get("request_query")?,
        request_body: row.try_get("request_body")?,
        enqueued_at: row.try_get("enqueued_at")?,
        state: row.try_get("state")?,
        lease_until: row.try_get("lease_until")?,
        node_id: row.try_get("node_id")?,
        response_status: row.try_get("response_status")?,
        response_headers: row.try_get("response_headers")?,
        response_body: row.try_get("response_body")?,
        finished_at: row.try_get("finished_at")?,
        execution_id: row.try_get("execution_id")?,
        attempt: row.try_get("attempt")?,
        trigger: row.try_get("trigger")?,
        not_before: row.try_get("not_before")?,
    }
    .into_record()
}

pub(super) async fn enqueue(
    pool: &PgPool,
    call: &AsyncCallRecord,
    bound: QueueBound,
) -> Result<Enqueued> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(ENQUEUE_LOCK)
        .execute(&mut *tx)
        .await?;
    let (total, of_workflow): (i64, i64) = sqlx::query_as(
        "SELECT COUNT(*), COUNT(*) FILTER (WHERE workflow_id = $1) FROM async_calls \
         WHERE state <> 'done'",
    )
    .bind(&call.workflow_id)
    .fetch_one(&mut *tx)
    .await?;
    if total as u64 >= bound.total || of_workflow as u64 >= bound.per_workflow {
        return Ok(Enqueued::Full);
    }
    sqlx::query(
        "INSERT INTO async_calls (id, workflow_id, token, request_headers, request_query, \
         request_body, enqueued_at, state, execution_id, attempt, \"trigger\", not_before) \
         VALUES ($1, $2, $3, $4::json, $5, $6, $7, 'queued', $8, $9, $10, $11)",
    )
    .bind(&call.id)
    .bind(&call.workflow_id)
    .bind(&call.token)
    .bind(headers_json(&call.request.headers))
    .bind(&call.request.query)
    .bind(&call.request.body)
    .bind(call.enqueued_at)
    .bind(&call.execution_id)
    .bind(i64::from(call.attempt))
    .bind(call.trigger.as_str())
    .bind(call.not_before)
    .execute(&mut *tx)
    .await
    .map_err(|err| {
        if is_foreign_key_violation(&err) {
            StoreError::workflow_not_found(&call.workflow_id)
        } else {
            err.into()
        }
    })?;
    tx.commit().await?;
    Ok(Enqueued::Queued)
}

pub(super) async fn workflows_with_calls(pool: &PgPool, now: i64) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(
        "SELECT DISTINCT workflow_id FROM async_calls \
         WHERE state <> 'done' AND (state = 'queued' OR lease_until < $1) \
         AND (not_before IS NULL OR not_before <= $1)",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub(super) async fn claim(
    pool: &PgPool,
    workflow_id: &str,
    limit: u32,
    now: i64,
    lease_until: i64,
    node_id: &str,
) -> Result<Vec<AsyncCallRecord>> {
    let rows = sqlx::query(&format!(
        "UPDATE async_calls SET state = 'claimed', lease_until = $1, node_id = $5 WHERE id IN (\
           SELECT id FROM async_calls WHERE workflow_id = $2 AND state <> 'done' \
           AND (state = 'queued' OR lease_until < $3) \
           AND (not_before IS NULL OR not_before <= $3) ORDER BY enqueued_at, id LIMIT $4 \
           FOR UPDATE SKIP LOCKED) \
         RETURNING {COLUMNS}"
    ))
    .bind(lease_until)
    .bind(workflow_id)
    .bind(now)
    .bind(i64::from(limit))
    .bind(node_id)
    .fetch_all(pool)
    .await?;
    let mut calls = rows.iter().map(call_from_row).collect::<Result<Vec<_>>>()?;
    calls.sort_by(|a, b| (a.enqueued_at, &a.id).cmp(&(b.enqueued_at, &b.id)));
    Ok(calls)
}

pub(super) async fn finish(
    pool: &PgPool,
    id: &str,
    response: &StoredResponse,
    finished_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE async_calls SET state = 'done', lease_until = NULL, node_id = NULL, request_headers = NULL, \
         request_query = NULL, request_body = NULL, response_status = $1, \
         response_headers = $2::json, response_body = $3, finished_at = $4 WHERE id = $5",
    )
    .bind(i64::from(response.status))
    .bind(headers_json(&response.headers))
    .bind(&response.body)
    .bind(finished_at)
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn release(pool: &PgPool, id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE async_calls SET state = 'queued', lease_until = NULL, node_id = NULL \
         WHERE id = $1 AND state = 'claimed'",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn retry(pool: &PgPool, id: &str, next: &NextAttempt) -> Result<()> {
    sqlx::query(
        "UPDATE async_calls SET state = 'queued', lease_until = NULL, node_id = NULL, \
         execution_id = $2, attempt = $3, not_before = $4 WHERE id = $1 AND state = 'claimed'",
    )
    .bind(id)
    .bind(&next.execution_id)
    .bind(i64::from(next.attempt))
    .bind(next.not_before)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn by_token(pool: &PgPool, token: &str) -> Result<Option<AsyncCallRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM async_calls WHERE token = $1"
    ))
    .bind(token)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(call_from_row).transpose()
}

pub(super) async fn depth(pool: &PgPool, workflow_id: Option<&str>) -> Result<u64> {
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM async_calls WHERE state <> 'done' \
         AND ($1::TEXT IS NULL OR workflow_id = $1)",
    )
    .bind(workflow_id)
    .fetch_one(pool)
    .await?;
    Ok(count.max(0) as u64)
}
