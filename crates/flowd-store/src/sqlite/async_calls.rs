//! The queue of asynchronous calls on SQLite. Its writes go through the store's write connection
//! (`BEGIN IMMEDIATE`), so a bound checked in a transaction holds when it commits.

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};

use crate::async_call::{headers_json, AsyncCallRow, ASYNC_CALL_COLUMNS};
use crate::error::{Result, StoreError};
use crate::sqlx_error::is_foreign_key_violation;
use crate::{AsyncCallRecord, Enqueued, NextAttempt, QueueBound, StoredResponse};

use super::BEGIN_WRITE;

/// The condition of the partial index `async_calls_pending`, written out (see `IS_RUNNING`).
const IS_PENDING: &str = "state != 'done'";

fn call_from_row(row: &SqliteRow) -> Result<AsyncCallRecord> {
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
    writer: &SqlitePool,
    call: &AsyncCallRecord,
    bound: QueueBound,
) -> Result<Enqueued> {
    let mut tx = writer.begin_with(BEGIN_WRITE).await?;
    let (total, of_workflow): (i64, i64) = sqlx::query_as(&format!(
        "SELECT COUNT(*), COALESCE(SUM(workflow_id = ?), 0) FROM async_calls WHERE {IS_PENDING}"
    ))
    .bind(&call.workflow_id)
    .fetch_one(&mut *tx)
    .await?;
    if total as u64 >= bound.total || of_workflow as u64 >= bound.per_workflow {
        return Ok(Enqueued::Full);
    }
    sqlx::query(
        "INSERT INTO async_calls (id, workflow_id, token, request_headers, request_query, \
         request_body, enqueued_at, state, execution_id, attempt, \"trigger\", not_before) \
         VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)",
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

pub(super) async fn workflows_with_calls(pool: &SqlitePool, now: i64) -> Result<Vec<String>> {
    let rows: Vec<(String,)> = sqlx::query_as(&format!(
        "SELECT DISTINCT workflow_id FROM async_calls \
         WHERE {IS_PENDING} AND (state = 'queued' OR lease_until < ?1) \
         AND (not_before IS NULL OR not_before <= ?1)"
    ))
    .bind(now)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

pub(super) async fn claim(
    writer: &SqlitePool,
    workflow_id: &str,
    limit: u32,
    now: i64,
    lease_until: i64,
    node_id: &str,
) -> Result<Vec<AsyncCallRecord>> {
    let rows = sqlx::query(&format!(
        "UPDATE async_calls SET state = 'claimed', lease_until = ?1, node_id = ?2 WHERE id IN (\
           SELECT id FROM async_calls WHERE workflow_id = ?3 AND {IS_PENDING} \
           AND (state = 'queued' OR lease_until < ?4) \
           AND (not_before IS NULL OR not_before <= ?4) ORDER BY enqueued_at, id LIMIT ?5) \
         RETURNING {ASYNC_CALL_COLUMNS}"
    ))
    .bind(lease_until)
    .bind(node_id)
    .bind(workflow_id)
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(writer)
    .await?;
    let mut calls = rows.iter().map(call_from_row).collect::<Result<Vec<_>>>()?;
    calls.sort_by(|a, b| (a.enqueued_at, &a.id).cmp(&(b.enqueued_at, &b.id)));
    Ok(calls)
}

pub(super) async fn finish(
    writer: &SqlitePool,
    id: &str,
    response: &StoredResponse,
    finished_at: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE async_calls SET state = 'done', lease_until = NULL, node_id = NULL, request_headers = NULL, \
         request_query = NULL, request_body = NULL, response_status = ?, response_headers = ?, \
         response_body = ?, finished_at = ? WHERE id = ?",
    )
    .bind(i64::from(response.status))
    .bind(headers_json(&response.headers))
    .bind(&response.body)
    .bind(finished_at)
    .bind(id)
    .execute(writer)
    .await?;
    Ok(())
}

pub(super) async fn release(writer: &SqlitePool, id: &str) -> Result<()> {
    sqlx::query(
        "UPDATE async_calls SET state = 'queued', lease_until = NULL, node_id = NULL \
         WHERE id = ? AND state = 'claimed'",
    )
    .bind(id)
    .execute(writer)
    .await?;
    Ok(())
}

pub(super) async fn retry(writer: &SqlitePool, id: &str, next: &NextAttempt) -> Result<()> {
    sqlx::query(
        "UPDATE async_calls SET state = 'queued', lease_until = NULL, node_id = NULL, \
         execution_id = ?2, attempt = ?3, not_before = ?4 WHERE id = ?1 AND state = 'claimed'",
    )
    .bind(id)
    .bind(&next.execution_id)
    .bind(i64::from(next.attempt))
    .bind(next.not_before)
    .execute(writer)
    .await?;
    Ok(())
}

pub(super) async fn by_token(pool: &SqlitePool, token: &str) -> Result<Option<AsyncCallRecord>> {
    let row = sqlx::query(&format!(
        "SELECT {ASYNC_CALL_COLUMNS} FROM async_calls WHERE token = ?"
    ))
    .bind(token)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(call_from_row).transpose()
}

pub(super) async fn depth(pool: &SqlitePool, workflow_id: Option<&str>) -> Result<u64> {
    let (count,): (i64,) = match workflow_id {
        Some(workflow_id) => {
            sqlx::query_as(&format!(
                "SELECT COUNT(*) FROM async_calls WHERE workflow_id = ? AND {IS_PENDING}"
            ))
            .bind(workflow_id)
            .fetch_one(pool)
            .await?
        }
        None => {
            sqlx::query_as(&format!(
                "SELECT COUNT(*) FROM async_calls WHERE {IS_PENDING}"
            ))
            .fetch_one(pool)
            .await?
        }
    };
    Ok(count.max(0) as u64)
}
