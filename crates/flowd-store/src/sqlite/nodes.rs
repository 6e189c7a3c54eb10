//! Nodes, their leases and their concurrency slots on SQLite: one node at a time uses a database
//! file, so registering ends every other node's lease. The callers run what reads before it
//! writes in a write transaction (`BEGIN IMMEDIATE`): SQLite's single writer does the rest.

use sqlx::{Row, SqliteConnection, SqlitePool};

use crate::sqlx_error::is_foreign_key_violation;
use crate::{NodeRecord, ReapedNode, Result, StoreError};

/// The lease expiry of a node whose lease was ended: before any time a reap is given.
const LEASE_ENDED: i64 = i64::MIN;

/// Records `node` and ends the lease of every other node (they are reaped next).
pub(super) async fn register_alone(conn: &mut SqliteConnection, node: &NodeRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO nodes (id, address, host, started_at, lease_expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (id) DO UPDATE SET address = excluded.address, host = excluded.host, \
         started_at = excluded.started_at, lease_expires_at = excluded.lease_expires_at",
    )
    .bind(&node.id)
    .bind(&node.address)
    .bind(&node.host)
    .bind(node.started_at)
    .bind(node.lease_expires_at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("UPDATE nodes SET lease_expires_at = ?2 WHERE id <> ?1")
        .bind(&node.id)
        .bind(LEASE_ENDED)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub(super) async fn renew(pool: &SqlitePool, node_id: &str, lease_expires_at: i64) -> Result<bool> {
    let renewed = sqlx::query("UPDATE nodes SET lease_expires_at = ?2 WHERE id = ?1")
        .bind(node_id)
        .bind(lease_expires_at)
        .execute(pool)
        .await?;
    Ok(renewed.rows_affected() == 1)
}

pub(super) async fn reap_expired(conn: &mut SqliteConnection, now: i64) -> Result<Vec<ReapedNode>> {
    let dead: Vec<String> =
        sqlx::query_scalar("SELECT id FROM nodes WHERE lease_expires_at < ?1 ORDER BY id")
            .bind(now)
            .fetch_all(&mut *conn)
            .await?;
    let mut reaped = Vec::with_capacity(dead.len() + 1);
    for node_id in dead {
        let released_slots = sqlx::query("DELETE FROM concurrency_slots WHERE node_id = ?1")
            .bind(&node_id)
            .execute(&mut *conn)
            .await?
            .rows_affected();
        let interrupted = interrupt(&mut *conn, now, "node_id = ?2", Some(&node_id)).await?;
        let released_async_calls =
            requeue_claimed_async_calls(&mut *conn, "node_id = ?1", Some(&node_id)).await?;
        sqlx::query("DELETE FROM nodes WHERE id = ?1")
            .bind(&node_id)
            .execute(&mut *conn)
            .await?;
        reaped.push(ReapedNode {
            node_id: Some(node_id),
            interrupted,
            released_slots,
            released_async_calls,
        });
    }
    let orphan_calls = requeue_claimed_async_calls(
        &mut *conn,
        "(node_id IS NULL OR node_id NOT IN (SELECT id FROM nodes))",
        None,
    )
    .await?;
    let orphans = interrupt(
        conn,
        now,
        "(node_id IS NULL OR node_id NOT IN (SELECT id FROM nodes))",
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
    Ok(reaped)
}

/// Marks the `running` executions matching `condition` (which may use `?2`, bound to `node_id`)
/// `interrupted` at `now`; answers how many. The status is written out in the query: SQLite uses
/// the partial indexes on running rows only for terms that imply their condition.
async fn interrupt(
    conn: &mut SqliteConnection,
    now: i64,
    condition: &str,
    node_id: Option<&str>,
) -> Result<u64> {
    let sql = format!(
        "UPDATE executions SET status = 'interrupted', finished_at = ?1, \
         duration_ms = MAX(?1 - started_at, 0) WHERE status = 'running' AND {condition}"
    );
    let mut query = sqlx::query(&sql).bind(now);
    if let Some(node_id) = node_id {
        query = query.bind(node_id);
    }
    Ok(query.execute(conn).await?.rows_affected())
}

pub(super) async fn list(pool: &SqlitePool) -> Result<Vec<NodeRecord>> {
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

/// Takes the first free slot below `limit`, if any.
pub(super) async fn acquire_slot(
    conn: &mut SqliteConnection,
    node_id: &str,
    workflow_id: &str,
    limit: u32,
    holder: &str,
    now: i64,
) -> Result<bool> {
    let taken: Vec<i64> = sqlx::query_scalar(
        "SELECT slot FROM concurrency_slots WHERE workflow_id = ?1 AND slot < ?2 ORDER BY slot",
    )
    .bind(workflow_id)
    .bind(i64::from(limit))
    .fetch_all(&mut *conn)
    .await?;
    let Some(free) = (0..i64::from(limit)).find(|slot| taken.binary_search(slot).is_err()) else {
        return Ok(false);
    };
    sqlx::query(
        "INSERT INTO concurrency_slots (workflow_id, slot, node_id, holder, acquired_at) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .bind(workflow_id)
    .bind(free)
    .bind(node_id)
    .bind(holder)
    .bind(now)
    .execute(conn)
    .await
    .map_err(|err| {
        if is_foreign_key_violation(&err) {
            StoreError::slot_owner_missing(workflow_id, node_id)
        } else {
            err.into()
        }
    })?;
    Ok(true)
}

pub(super) async fn release_slot(pool: &SqlitePool, workflow_id: &str, holder: &str) -> Result<()> {
    sqlx::query("DELETE FROM concurrency_slots WHERE workflow_id = ?1 AND holder = ?2")
        .bind(workflow_id)
        .bind(holder)
        .execute(pool)
        .await?;
    Ok(())
}

/// Puts the claimed asynchronous calls matching `condition` (which may use `?1`, bound to
/// `node_id`) back in the queue; answers how many.
async fn requeue_claimed_async_calls(
    conn: &mut SqliteConnection,
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
