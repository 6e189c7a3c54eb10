//! Where a workflow's settings live for the engine, which depends on who else writes the store.
//!
//! - A store only this node writes (SQLite): in memory, ahead of the store, in a
//!   [`SettingsCell`] — a run starts from memory, with no store read, and changes commit in the
//!   order memory saw them.
//! - A store other nodes write too (PostgreSQL): in the store only. A run reads them at its
//!   start, and its change (keys set, keys deleted) is merged key by key in the store, in the
//!   transaction that commits its record: changes from every node apply in commit order and none
//!   is lost. Nothing is kept in memory that another node could make stale.

use std::collections::BTreeMap;
use std::sync::Arc;

use flowd_core::settings::{Settings, SettingsChange};
use flowd_store::{AuditEntry, Store, StoreError, StoreWrite};

use crate::settings_cell::{NotSaved, SettingsCell, Snapshot};
use crate::writer::Writer;

/// A workflow's settings, kept in memory or read from the store.
pub struct WorkflowSettings {
    workflow_id: String,
    kept: Kept,
}

enum Kept {
    InMemory(Arc<SettingsCell>),
    InStore,
}

impl WorkflowSettings {
    /// Settings kept in `cell`, ahead of the store.
    pub fn in_memory(workflow_id: String, cell: Arc<SettingsCell>) -> WorkflowSettings {
        WorkflowSettings {
            workflow_id,
            kept: Kept::InMemory(cell),
        }
    }

    /// Settings kept in the store only.
    pub fn in_store(workflow_id: String) -> WorkflowSettings {
        WorkflowSettings {
            workflow_id,
            kept: Kept::InStore,
        }
    }

    /// The settings a run starts from, and the secret texts to mask in its output: the secret
    /// settings' values and those of the secret variables of `env`.
    pub async fn snapshot(
        &self,
        store: &dyn Store,
        secret_keys: &[String],
        env: &BTreeMap<String, String>,
    ) -> Result<Snapshot, StoreError> {
        match &self.kept {
            Kept::InMemory(cell) => Ok(cell.snapshot(secret_keys, env)),
            Kept::InStore => Ok(Snapshot::stored(
                store.settings(&self.workflow_id).await?,
                secret_keys,
                env,
            )),
        }
    }

    /// The current settings.
    pub async fn current(&self, store: &dyn Store) -> Result<Settings, StoreError> {
        match &self.kept {
            Kept::InMemory(cell) => Ok(cell.current()),
            Kept::InStore => store.settings(&self.workflow_id).await,
        }
    }

    /// The value of one key, as [`WorkflowSettings::current`] has it (read from the store when
    /// the settings live there).
    pub async fn value(
        &self,
        store: &dyn Store,
        key: &str,
    ) -> Result<Option<serde_json::Value>, StoreError> {
        match &self.kept {
            Kept::InMemory(cell) => Ok(cell.value(key)),
            Kept::InStore => Ok(store.settings(&self.workflow_id).await?.remove(key)),
        }
    }

    /// Commits `change`, made by a run from `basis`, with the writes `writes` builds from it, and
    /// waits for the commit.
    pub async fn commit_change(
        &self,
        writer: &Writer,
        basis: &Snapshot,
        change: SettingsChange,
        writes: impl FnOnce(&SettingsChange) -> Vec<StoreWrite>,
    ) -> Result<(), NotSaved> {
        match &self.kept {
            Kept::InMemory(cell) => {
                cell.commit_change(writer, basis, change, writes)?
                    .wait()
                    .await
            }
            Kept::InStore => writer
                .commit(writes(&change))
                .await
                .map_err(NotSaved::Store),
        }
    }

    /// Applies `change` (an API patch: keys set, keys deleted) to the current settings, commits
    /// it with what `audit` records of it, and answers the settings after it.
    pub async fn patch(
        &self,
        store: &dyn Store,
        writer: &Writer,
        change: SettingsChange,
        audit: impl FnOnce(&SettingsChange) -> Vec<AuditEntry>,
    ) -> Result<Settings, NotSaved> {
        match &self.kept {
            Kept::InMemory(cell) => {
                cell.commit_patch(writer, change, |change| self.apply(change, audit(change)))
                    .wait()
                    .await?;
                Ok(cell.current())
            }
            Kept::InStore => {
                let entries = audit(&change);
                writer
                    .commit(self.apply(&change, entries))
                    .await
                    .map_err(NotSaved::Store)?;
                store
                    .settings(&self.workflow_id)
                    .await
                    .map_err(NotSaved::Store)
            }
        }
    }

    /// Replaces the settings with `new`, with what `audit` records of the change, and answers
    /// the settings after it. In the store, the replacement is one transaction: keys another
    /// node adds meanwhile are replaced too, or merged after it.
    pub async fn replace(
        &self,
        store: &dyn Store,
        writer: &Writer,
        new: Settings,
        audit: impl FnOnce(&SettingsChange) -> Vec<AuditEntry>,
    ) -> Result<Settings, NotSaved> {
        match &self.kept {
            Kept::InMemory(cell) => {
                cell.commit_replacement(writer, new, |change| self.apply(change, audit(change)))
                    .wait()
                    .await?;
                Ok(cell.current())
            }
            Kept::InStore => {
                let before = store
                    .settings(&self.workflow_id)
                    .await
                    .map_err(NotSaved::Store)?;
                let entries = audit(&SettingsChange::between(&before, &new));
                store
                    .replace_settings_audited(&self.workflow_id, &new, &entries)
                    .await
                    .map_err(NotSaved::Store)?;
                store
                    .settings(&self.workflow_id)
                    .await
                    .map_err(NotSaved::Store)
            }
        }
    }

    /// The write merging `change` into the stored settings, and the audit entries recording it.
    fn apply(&self, change: &SettingsChange, audit: Vec<AuditEntry>) -> Vec<StoreWrite> {
        let mut writes = vec![StoreWrite::ApplySettingsChange {
            workflow_id: self.workflow_id.clone(),
            change: change.clone(),
        }];
        writes.extend(audit.into_iter().map(StoreWrite::AppendAudit));
        writes
    }
}
