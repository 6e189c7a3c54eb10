//! Who may do what: the roles of API keys, and the kinds of change the audit log records.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an API key may do. `Admin` acts on every team, on teams and on keys; `Developer` creates,
/// deploys, configures and runs the workflows of its team; `Viewer` reads its team's workflows,
/// code, executions and settings (secrets masked) and changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Developer,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Developer, Role::Viewer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may do what `required` may (roles are ordered viewer < developer <
    /// admin, each allowing what the ones below it allow).
    pub fn allows(self, required: Role) -> bool {
        self >= required
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Role, String> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| format!("unknown role {s:?}: admin, developer or viewer"))
    }
}

/// A kind of change the audit log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditAction {
    #[serde(rename = "workflow.created")]
    WorkflowCreated,
    /// A new version (new code or requirements).
    #[serde(rename = "workflow.deployed")]
    WorkflowDeployed,
    #[serde(rename = "workflow.patched")]
    WorkflowPatched,
    #[serde(rename = "workflow.paused")]
    WorkflowPaused,
    #[serde(rename = "workflow.resumed")]
    WorkflowResumed,
    #[serde(rename = "workflow.deleted")]
    WorkflowDeleted,
    #[serde(rename = "workflow.token_rotated")]
    TokenRotated,
    /// A run started by hand (`POST …/runs`).
    #[serde(rename = "workflow.run")]
    ManualRun,
    /// An execution run again with its recorded request (replays).
    #[serde(rename = "workflow.replayed")]
    Replayed,
    /// Settings other than secrets changed (the summary names the keys, never the values).
    #[serde(rename = "settings.changed")]
    SettingsChanged,
    #[serde(rename = "secret.set")]
    SecretSet,
    #[serde(rename = "secret.removed")]
    SecretRemoved,
    #[serde(rename = "key.created")]
    KeyCreated,
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    #[serde(rename = "team.created")]
    TeamCreated,
    #[serde(rename = "team.renamed")]
    TeamRenamed,
    #[serde(rename = "team.deleted")]
    TeamDeleted,
}

impl AuditAction {
    pub const ALL: [AuditAction; 17] = [
        AuditAction::WorkflowCreated,
        AuditAction::WorkflowDeployed,
        AuditAction::WorkflowPatched,
        AuditAction::WorkflowPaused,
        AuditAction::WorkflowResumed,
        AuditAction::WorkflowDeleted,
        AuditAction::TokenRotated,
        AuditAction::ManualRun,
        AuditAction::Replayed,
        AuditAction::SettingsChanged,
        AuditAction::SecretSet,
        AuditAction::SecretRemoved,
        AuditAction::KeyCreated,
        AuditAction::KeyRevoked,
        AuditAction::TeamCreated,
        AuditAction::TeamRenamed,
        AuditAction::TeamDeleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::WorkflowCreated => "workflow.created",
            AuditAction::WorkflowDeployed => "workflow.deployed",
            AuditAction::WorkflowPatched => "workflow.patched",
            AuditAction::WorkflowPaused => "workflow.paused",
            AuditAction::WorkflowResumed => "workflow.resumed",
            AuditAction::WorkflowDeleted => "workflow.deleted",
            AuditAction::TokenRotated => "workflow.token_rotated",
            AuditAction::ManualRun => "workflow.run",
            AuditAction::Replayed => "workflow.replayed",
            AuditAction::SettingsChanged => "settings.changed",
            AuditAction::SecretSet => "secret.set",
            AuditAction::SecretRemoved => "secret.removed",
            AuditAction::KeyCreated => "key.created",
            AuditAction::KeyRevoked => "key.revoked",
            AuditAction::TeamCreated => "team.created",
            AuditAction::TeamRenamed => "team.renamed",
            AuditAction::TeamDeleted => "team.deleted",
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AuditAction {
    type Err = String;

    fn from_str(s: &str) -> Result<AuditAction, String> {
        AuditAction::ALL
            .into_iter()
            .find(|action| action.as_str() == s)
            .ok_or_else(|| format!("unknown audit action {s:?}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_allows_what_the_roles_below_it_allow() {
        assert!(Role::Admin.allows(Role::Developer));
        assert!(Role::Developer.allows(Role::Viewer));
        assert!(Role::Viewer.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Developer));
        assert!(!Role::Developer.allows(Role::Admin));
    }

    #[test]
    fn roles_and_actions_read_back_from_their_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(serde_json::to_value(role).unwrap(), role.as_str());
        }
        for action in AuditAction::ALL {
            assert_eq!(action.as_str().parse::<AuditAction>(), Ok(action));
            assert_eq!(serde_json::to_value(action).unwrap(), action.as_str());
        }
        assert!("owner".parse::<Role>().is_err());
    }
}
