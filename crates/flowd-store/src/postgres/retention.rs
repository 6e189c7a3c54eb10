//! The deletion of executions that fell out of their workflow's retention: a bounded batch per
//! call, one statement (its own short transaction). The space of the rows deleted is reused by
//! later rows once autovacuum has passed over the table.

use flowd_core::retention::RetentionCut;
use sqlx::{PgPool, Row};

use super::rows::from_json;
use crate::error::Result;
use crate::store::WorkflowRetention;

pub(super) async fn workflow_retentions(pool: &PgPool) -> Result<Vec<WorkflowRetention>> {
    sqlx::query("SELECT id, retention::TEXT AS retention FROM workflows ORDER BY id")
        .fetch_all(pool)
        .await?
        .iter()
        .map(|row| {
            let retention: Option<String> = row.try_get("retention")?;
            Ok(WorkflowRetention {
                workflow_id: row.try_get("id")?,
                retention: retention
                    .map(|text| from_json(&text, "workflows.retention"))
                    .transpose()?,
            })
        })
        .collect()
}

/// See [`crate::Store::prune_executions`].
pub(super) async fn prune_executions(
    pool: &PgPool,
    workflow_id: &str,
    cut: &RetentionCut,
    limit: u32,
) -> Result<u64> {
    if cut.keeps_everything() || limit == 0 {
        return Ok(0);
    }
    let newest_beyond_kept: Option<String> = match cut.keep_newest {
        Some(keep) => {
            sqlx::query_scalar(
                "SELECT id FROM executions WHERE workflow_id = $1 \
                 ORDER BY id DESC LIMIT 1 OFFSET $2",
            )
            .bind(workflow_id)
            .bind(i64::try_from(keep).unwrap_or(i64::MAX))
            .fetch_optional(pool)
            .await?
        }
        None => None,
    };
    if newest_beyond_kept.is_none() && cut.started_before.is_none() {
        return Ok(0);
    }
    // Executions written since the read above only move the cut by count further up: deleting
    // up to the id read then never deletes one of the newest kept.
    let deleted = sqlx::query(
        "DELETE FROM executions WHERE id IN (SELECT id FROM executions \
         WHERE workflow_id = $1 AND status <> 'running' AND (id <= $2 OR started_at < $3) \
         ORDER BY id LIMIT $4)",
    )
    .bind(workflow_id)
    .bind(newest_beyond_kept)
    .bind(cut.started_before)
    .bind(i64::from(limit))
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}
