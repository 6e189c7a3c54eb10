//! The audit log: the entries the changes made through the API record (built here, written by
//! the store in the change's own transaction), reading them back, and their retention.

use std::sync::Arc;
use std::time::Duration;

use flowd_core::access::{AuditAction, Role};
use flowd_core::settings::SettingsChange;
use flowd_store::{AuditEntry, AuditQuery, WorkflowRecord};

use crate::auth::Principal;
use crate::clock::now_ms;
use crate::error::{EngineError, Result};
use crate::Engine;

/// How often the retention sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 24 * 3600 * 1000;

/// The team an entry is filed under.
#[derive(Debug, Clone)]
pub(crate) struct TeamRef {
    pub id: String,
    pub name: String,
}

/// A filter of the audit log as the API takes it.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// A team's name (an admin's filter; other keys see their own team's entries only).
    pub team: Option<String>,
    /// A workflow's id or name.
    pub workflow: Option<String>,
    /// A key's id or name.
    pub actor: Option<String>,
    /// Epoch ms.
    pub since: Option<i64>,
    pub before_id: Option<String>,
    pub limit: u32,
}

impl Principal {
    /// An entry recording `action` by this principal, now.
    pub(crate) fn audit(
        &self,
        action: AuditAction,
        team: Option<&TeamRef>,
        workflow: Option<&WorkflowRecord>,
        summary: impl Into<String>,
    ) -> AuditEntry {
        AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            at: now_ms(),
            actor_id: self.key_id.clone(),
            actor_name: self.key_name.clone(),
            action,
            team_id: team.map(|team| team.id.clone()),
            team_name: team.map(|team| team.name.clone()),
            workflow_id: workflow.map(|workflow| workflow.id.clone()),
            workflow_name: workflow.map(|workflow| workflow.name.clone()),
            summary: summary.into(),
        }
    }
}

/// The entries a settings change records: one for the secrets it set, one for those it
/// removed, one for the other keys; keys only, never values. None for an empty change.
pub(crate) fn settings_entries(
    principal: &Principal,
    team: &TeamRef,
    workflow: &WorkflowRecord,
    change: &SettingsChange,
) -> Vec<AuditEntry> {
    let is_secret = |key: &String| workflow.secret_keys.contains(key);
    let set: Vec<&String> = change.added.keys().chain(change.changed.keys()).collect();
    let secrets_set: Vec<&String> = set.iter().copied().filter(|k| is_secret(k)).collect();
    let secrets_removed: Vec<&String> = change.removed.iter().filter(|k| is_secret(k)).collect();
    let others_set: Vec<&String> = set.iter().copied().filter(|k| !is_secret(k)).collect();
    let others_removed: Vec<&String> = change.removed.iter().filter(|k| !is_secret(k)).collect();
    let mut entries = Vec::new();
    let mut entry = |action, summary: String| {
        entries.push(principal.audit(action, Some(team), Some(workflow), summary));
    };
    if !secrets_set.is_empty() {
        entry(
            AuditAction::SecretSet,
            format!("set {}", key_list(&secrets_set)),
        );
    }
    if !secrets_removed.is_empty() {
        entry(
            AuditAction::SecretRemoved,
            format!("removed {}", key_list(&secrets_removed)),
        );
    }
    let mut parts = Vec::new();
    if !others_set.is_empty() {
        parts.push(format!("set {}", key_list(&others_set)));
    }
    if !others_removed.is_empty() {
        parts.push(format!("removed {}", key_list(&others_removed)));
    }
    if !parts.is_empty() {
        entry(AuditAction::SettingsChanged, parts.join("; "));
    }
    entries
}

fn key_list(keys: &[&String]) -> String {
    keys.iter()
        .map(|key| format!("{key:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Engine {
    /// The team of a workflow, as an entry names it.
    pub(crate) async fn team_ref(&self, principal: &Principal, team_id: &str) -> Result<TeamRef> {
        if team_id == principal.team_id {
            return Ok(TeamRef {
                id: principal.team_id.clone(),
                name: principal.team_name.clone(),
            });
        }
        let team = self
            .store
            .team_by_id(team_id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("team {team_id}")))?;
        Ok(TeamRef {
            id: team.id,
            name: team.name,
        })
    }

    /// Entries of the audit log, newest first: an admin's of every team (or of the team its
    /// filter names), a developer's of its own team; a viewer reads none.
    pub async fn audit_log(
        &self,
        principal: &Principal,
        filter: AuditFilter,
    ) -> Result<Vec<AuditEntry>> {
        principal.require(Role::Developer)?;
        let mut query = AuditQuery {
            team_id: None,
            team_name: filter.team,
            workflow: filter.workflow,
            actor: filter.actor,
            since: filter.since,
            before_id: filter.before_id,
            limit: filter.limit,
        };
        if !principal.is_admin() {
            query.team_id = Some(principal.team_id.clone());
        }
        Ok(self.store.audit_entries(&query).await?)
    }

    /// Deletes the audit entries older than the retention, answering how many went.
    pub async fn sweep_audit_log(&self) -> Result<u64> {
        let retention_days = i64::from(self.config.audit_retention_days);
        Ok(self
            .store
            .delete_audit_before(now_ms() - retention_days * DAY_MS)
            .await?)
    }

    /// Sweeps the audit log now and then every hour, for as long as the task runs.
    pub async fn keep_audit_retention(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            ticks.tick().await;
            match self.sweep_audit_log().await {
                Ok(0) => {}
                Ok(deleted) => {
                    tracing::info!(deleted, "audit entries past their retention deleted")
                }
                Err(error) => tracing::warn!(%error, "the audit log's retention sweep failed"),
            }
        }
    }
}
