//! The deletion of executions that fell out of their workflow's retention.
//!
//! Each call finds a bounded batch with a read (which may scan a workflow's executions, without
//! the write lock), then deletes it by key with one statement on the write connection: the group
//! commit waits for SQLite's lock at most as long as deleting one batch takes. The pages freed go
//! to the file's free list and are reused by the executions written after, so a store kept to a
//! bounded history stops growing.

use flowd_core::retention::RetentionCut;
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use super::{optional_json_column, IS_RUNNING};
use crate::error::Result;
use crate::store::WorkflowRetention;

pub(super) async fn workflow_retentions(pool: &SqlitePool) -> Result<Vec<WorkflowRetention>> {
    sqlx::query("SELECT id, retention FROM workflows ORDER BY id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            Ok(WorkflowRetention {
                workflow_id: row.try_get("id")?,
                retention: optional_json_column(row, "workflows", "retention")?,
            })
        })
        .collect()
}

/// See [`crate::Store::prune_executions`]: the batch is found on the read pool, and deleted on
/// the `writer`.
pub(super) async fn prune_executions(
    pool: &SqlitePool,
    writer: &SqlitePool,
    workflow_id: &str,
    cut: &RetentionCut,
    limit: u32,
) -> Result<u64> {
    if cut.keeps_everything() || limit == 0 {
        return Ok(0);
    }
    let newest_beyond_kept: Option<String> =
        match cut.keep_newest {
            Some(keep) => sqlx::query_scalar(
                "SELECT id FROM executions WHERE workflow_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?",
            )
            .bind(workflow_id)
            .bind(i64::try_from(keep).unwrap_or(i64::MAX))
            .fetch_optional(pool)
            .await?,
            None => None,
        };
    if newest_beyond_kept.is_none() && cut.started_before.is_none() {
        return Ok(0);
    }
    // Executions written since the read above only move the cut by count further up: deleting
    // up to the id read then never deletes one of the newest kept.
    let batch: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT id FROM executions \
         WHERE workflow_id = ?1 AND NOT ({IS_RUNNING}) AND (id <= ?2 OR started_at < ?3) \
         ORDER BY id LIMIT ?4"
    ))
    .bind(workflow_id)
    .bind(newest_beyond_kept)
    .bind(cut.started_before)
    .bind(i64::from(limit))
    .fetch_all(pool)
    .await?;
    if batch.is_empty() {
        return Ok(0);
    }
    // A finished execution never runs again; the condition only keeps the rule in one place.
    let mut delete = QueryBuilder::<Sqlite>::new(format!(
        "DELETE FROM executions WHERE NOT ({IS_RUNNING}) AND id IN ("
    ));
    let mut ids = delete.separated(", ");
    for id in &batch {
        ids.push_bind(id);
    }
    delete.push(")");
    let deleted = delete.build().execute(writer).await?;
    Ok(deleted.rows_affected())
}
