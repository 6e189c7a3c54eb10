//! PostgreSQL's errors as the store's: constraint violations become `Conflict` and `NotFound`
//! with messages naming what was in the way.

use sqlx::error::ErrorKind;

use crate::{ExecutionRecord, StoreError};

/// The constraint a uniqueness violation broke (`teams_name_key`, …), or `None` if `err` is not
/// one.
pub(super) fn unique_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            Some(db.constraint().unwrap_or_default())
        }
        _ => None,
    }
}

pub(super) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == ErrorKind::ForeignKeyViolation)
}

pub(super) fn workflow_not_found(workflow_id: &str) -> StoreError {
    StoreError::NotFound(format!("workflow {workflow_id}"))
}

/// The unique violation of an execution upsert: the id conflict is the upsert's, so only
/// (workflow_id, fire_at) can be left.
pub(super) fn fire_time_taken(execution: &ExecutionRecord) -> StoreError {
    StoreError::Conflict(format!(
        "workflow {} already has an execution for the fire time {} (execution {})",
        execution.workflow_id,
        execution.fire_at.unwrap_or_default(),
        execution.id
    ))
}

pub(super) fn execution_workflow_missing(execution: &ExecutionRecord) -> StoreError {
    StoreError::NotFound(format!(
        "workflow {} (of execution {})",
        execution.workflow_id, execution.id
    ))
}
