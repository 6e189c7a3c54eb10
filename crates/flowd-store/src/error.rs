//! The store's errors, the same for every backend: what a caller can do about a failure is told
//! by the variant, and the backend's own error is kept as the source.

use crate::model::ExecutionRecord;

/// A backend's own error, kept as the source of a [`StoreError`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness rule was broken (a workflow name already taken in the team, …).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The row to update or delete does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// Stored data that cannot be read back (a corrupt JSON column, an unknown enum value, a
    /// database file the backend reports damaged).
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The store cannot take reads or writes now, for a reason outside the request (disk full,
    /// an I/O error, a lock held past the backend's bound, the connection lost): the same request
    /// may succeed later.
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The backend failed in a way no retry cures (a statement it refused, a type it could not
    /// convert): a bug rather than a condition.
    #[error("database error: {0}")]
    Backend(#[source] BoxError),
    /// The store was closed: nothing more is written.
    #[error("the store's writer has stopped")]
    Stopped,
    /// The schema could not be brought up to date at open.
    #[error("database migration failed: {0}")]
    Migration(#[source] BoxError),
    /// The database was migrated by a newer flowd: this binary does not know its schema.
    #[error(
        "the database's schema is version {database}, newer than this flowd's ({binary}): \
         run the flowd that migrated it, or a newer one"
    )]
    SchemaTooNew { database: i64, binary: i64 },
    /// The store's secret values are sealed under another key than the one given.
    #[error(
        "the secret key given is not the one this store's secrets are encrypted with (its \
         fingerprint is {stored}, the given key's {given}): give the store's key \
         (FLOWD_SECRET_KEY, --secret-key-file or <data dir>/secret-key)"
    )]
    WrongSecretKey { stored: String, given: String },
    /// The store's secret values are sealed, and no key was given to open them.
    #[error(
        "this store's secrets are encrypted (key fingerprint {stored}) and no secret key was given"
    )]
    SecretKeyMissing { stored: String },
}

impl StoreError {
    /// Whether the failure is the store's condition rather than the request's: answered "try
    /// again later", not "internal error".
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Stopped)
    }
}

/// What a backend's error means for its caller, whatever the backend: how the backends sort
/// their own errors before wrapping them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Condition {
    /// See [`StoreError::Unavailable`].
    Unavailable,
    /// See [`StoreError::Corrupt`].
    Corrupt,
    /// See [`StoreError::Backend`].
    Failed,
}

impl StoreError {
    /// The backend's `error`, wrapped as its condition says.
    pub(crate) fn from_backend(condition: Condition, error: BoxError) -> StoreError {
        match condition {
            Condition::Unavailable => StoreError::Unavailable(error),
            Condition::Corrupt => StoreError::Corrupt(error.to_string()),
            Condition::Failed => StoreError::Backend(error),
        }
    }
}

/// The errors every backend reports alike, worded once.
impl StoreError {
    pub(crate) fn workflow_not_found(workflow_id: &str) -> StoreError {
        StoreError::NotFound(format!("workflow {workflow_id}"))
    }

    /// The unique violation of an execution upsert: the id conflict is the upsert's, so only
    /// (workflow_id, fire_at) can be left.
    pub(crate) fn fire_time_taken(execution: &ExecutionRecord) -> StoreError {
        StoreError::Conflict(format!(
            "workflow {} already has an execution for the fire time {} (execution {})",
            execution.workflow_id,
            execution.fire_at.unwrap_or_default(),
            execution.id
        ))
    }

    /// A team is deleted only once it has no workflows.
    pub(crate) fn team_has_workflows(team_id: &str, workflows: i64) -> StoreError {
        StoreError::Conflict(format!(
            "team {team_id} still has {workflows} workflow(s): delete or move them first"
        ))
    }

    pub(crate) fn execution_workflow_missing(execution: &ExecutionRecord) -> StoreError {
        StoreError::NotFound(format!(
            "workflow {} (of execution {})",
            execution.workflow_id, execution.id
        ))
    }

    /// A slot taken for a workflow that does not exist, or by a node that is not registered (it
    /// was found dead and reaped).
    pub(crate) fn slot_owner_missing(workflow_id: &str, node_id: &str) -> StoreError {
        StoreError::NotFound(format!(
            "workflow {workflow_id}, or node {node_id}, which must be registered to hold a slot"
        ))
    }

    /// A node registered through a store that writes for another one.
    pub(crate) fn not_this_node(given: &str, own: &str) -> StoreError {
        StoreError::Conflict(format!(
            "node {given} cannot be registered through the store of node {own}"
        ))
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
