//! Nodes, their leases and their concurrency slots on PostgreSQL. A reap locks the expired
//! nodes' rows (`FOR UPDATE SKIP LOCKED`): a node another reaper holds is left to it, and a lease
//! renewed meanwhile is seen renewed, so one node reaps each dead one.

use sqlx::{PgConnection, PgPool, Row};

use crate::sqlx_error::is_foreign_key_violation;
use crate::{NodeRecord, ReapedNode, Result, StoreError};

pub(super) async fn register(pool: &PgPool, node: &NodeRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (id, address, host, started_at, lease_expires_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, host = excluded.host, \
         started_at = excluded.started_at, lease_expires_at = excluded.lease_expires_at",
    )
    .bind(&node.id)
    .bind(&node.address)
    .bind(&node.host)
    .bind(node.started_at)
    .bind(node.lease_expires_at)
    .execute(pool)
    .await?;
    Ok(())
}

pub(super) async fn renew(pool: &PgPool, node_id: &str, lease_expires_at: i64) -> Result<bool> {
    let renewed = sqlx::query("UPDATE nodes SET lease_expires_at = $2 WHERE id = $1")
        .bind(node_id)
        .bind(lease_expires_at)
        .execute(pool)
        .await?;
    Ok(renewed.rows_affected() == 1)
}

pub(super) async fn reap_expired(pool: &PgPool, now: i64) -> Result<Vec<ReapedNode>> {
    let mut tx = pool.begin().await?;
    let dead: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM nodes WHERE lease_expires_at < $1 ORDER BY id FOR UPDATE SKIP LOCKED",
    )
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let mut reaped = Vec::with_capacity(dead.len() + 1);
    for node_id in dead {
        let released_slots = sqlx::query("DELETE FROM concurrency_slots WHERE node_id = $1")
            .bind(&node_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let interrupted = interrupt(&mut tx, now, "node_id = $2", Some(&node_id)).await?;
        let released_async_calls =
            requeue_claimed_async_calls(&mut tx, "node_id = $1", Some(&node_id)).await?;
        sqlx::query("DELETE FROM nodes WHERE id = $1")
            .bind(&node_id)
            .execute(&mut *tx)
            .await?;
        reaped.push(ReapedNode {
            node_id: Some(node_id),
            interrupted,
            released_slots,
            released_async_calls,
        });
    }
    let orphan_calls = requeue_claimed_async_calls(
        &mut tx,
        "(node_id IS NULL OR NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.id = async_calls.node_id))",
        None,
    )
    .await?;
    let orphans = interrupt(
        &mut tx,
        now,
        "(node_id IS NULL OR NOT EXISTS (SELECT 1 FROM nodes WHERE nodes.id = executions.node_id))",
        None,
    )
    .await?;
    if orphans > 0 || orphan_calls > 0 {
        reaped.push(ReapedNode {
            node_id: None,
            interrupted: orphans,
            released_slots: 0,
            released_async_calls: orphan_calls,
        });
    }
    tx.commit().await?;
    Ok(reaped)
}

/// Marks the `running` executions matching `condition` (which may use `$2`, bound to `node_id`)
/// `interrupted` at `now`; answers how many.
async fn interrupt(
    conn: &mut PgConnection,
    now: i64,
    condition: &str,
    node_id: Option<&str>,
) -> Result<u64> {
    let sql = format!(
        "UPDATE executions SET status = 'interrupted', finished_at = $1, \
         duration_ms = GREATEST($1 - started_at, 0) WHERE status = 'running' AND {condition}"
    );
    let mut query = sqlx::query(&sql).bind(now);
    if let Some(node_id) = node_id {
        query = query.bind(node_id);
    }
    Ok(query.execute(conn).await?.rows_affected())
}

pub(super) async fn list(pool: &PgPool) -> Result<Vec<NodeRecord>> {
    let rows = sqlx::query(
        "SELECT id, address, host, started_at, lease_expires_at FROM nodes ORDER BY id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(NodeRecord {
                id: row.try_get("id")?,
                address: row.try_get("address")?,
                host: row.try_get("host")?,
                started_at: row.try_get("started_at")?,
                lease_expires_at: row.try_get("lease_expires_at")?,
            })
        })
        .collect()
}

/// Inserts the first free slot below `limit`; a slot another node took at the same moment
/// (`ON CONFLICT DO NOTHING`) is tried again as long as the count says one is free.
pub(super) async fn acquire_slot(
    pool: &PgPool,
    node_id: &str,
    workflow_id: &str,
    limit: u32,
    holder: &str,
    now: i64,
) -> Result<bool> {
    let limit = i64::from(limit);
    for _ in 0..=limit {
        let taken = sqlx::query(
            "INSERT INTO concurrency_slots (workflow_id, slot, node_id, holder, acquired_at) \
             SELECT $1, s, $2, $3, $4 FROM generate_series(0::BIGINT, $5 - 1) AS s \
             WHERE NOT EXISTS (SELECT 1 FROM concurrency_slots c \
                               WHERE c.workflow_id = $1 AND c.slot = s) \
             ORDER BY s LIMIT 1 \
             ON CONFLICT DO NOTHING",
        )
        .bind(workflow_id)
        .bind(node_id)
        .bind(holder)
        .bind(now)
        .bind(limit)
        .execute(pool)
        .await
        .map_err(|err| {
            if is_foreign_key_violation(&err) {
                StoreError::slot_owner_missing(workflow_id, node_id)
            } else {
                err.into()
            }
        })?;
        if taken.rows_affected() == 1 {
            return Ok(true);
        }
        let held: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM concurrency_slots WHERE workflow_id = $1 AND slot < $2",
        )
        .bind(workflow_id)
        .bind(limit)
        .fetch_one(pool)
        .await?;
        if held >= limit {
            return Ok(false);
        }
    }
    Ok(false)
}

pub(super) async fn release_slot(pool: &PgPool, workflow_id: &str, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM concurrency_slots WHERE workflow_id = $1 AND holder = $2")
        .bind(workflow_id)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// Puts the claimed asynchronous calls matching `condition` (which may use `$1`, bound to
/// `node_id`) back in the queue; answers how many.
async fn requeue_claimed_async_calls(
    conn: &mut PgConnection,
    condition: &str,
    node_id: Option<&str>,
) -> Result<u64> {
    let sql = format!(
        "UPDATE async_calls SET state = 'queued', lease_until = NULL, node_id = NULL \
         WHERE state = 'claimed' AND {condition}"
    );
    let mut query = sqlx::query(&sql);
    if let Some(node_id) = node_id {
        query = query.bind(node_id);
    }
    Ok(query.execute(conn).await?.rows_affected())
}
