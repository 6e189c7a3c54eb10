//! Teams and API keys, managed through the API by admin keys; each change is recorded in the
//! audit log in its own transaction.

use flowd_core::access::{AuditAction, Role};
use flowd_core::workflow::Name;
use flowd_store::{ApiKeyRecord, TeamRecord};

use crate::audit::TeamRef;
use crate::auth::{generate_key, hash_key, key_prefix, Principal, DEFAULT_TEAM};
use crate::clock::now_ms;
use crate::error::{EngineError, Result};
use crate::Engine;

/// A new API key, as `POST /api/v1/api-keys` describes it.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub name: String,
    pub role: Role,
    /// The team's name (default `default`).
    pub team: Option<String>,
    /// Epoch ms after which the key is refused (`None`: never).
    pub expires_at: Option<i64>,
}

/// A key just created: its record and the key itself, shown this once.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    pub record: ApiKeyRecord,
    pub team_name: String,
    pub key: String,
}

/// Longest key name accepted.
const MAX_KEY_NAME_LEN: usize = 100;

fn parse_team_name(name: &str) -> Result<Name> {
    Name::parse(name).map_err(|error| EngineError::Invalid(format!("name: {error}")))
}

fn team_ref(team: &TeamRecord) -> TeamRef {
    TeamRef {
        id: team.id.clone(),
        name: team.name.clone(),
    }
}

impl Engine {
    pub async fn list_teams(&self, principal: &Principal) -> Result<Vec<TeamRecord>> {
        principal.require(Role::Admin)?;
        Ok(self.store.list_teams().await?)
    }

    pub async fn create_team(&self, principal: &Principal, name: &str) -> Result<TeamRecord> {
        principal.require(Role::Admin)?;
        let name = parse_team_name(name)?;
        let team = TeamRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: name.as_str().to_string(),
            created_at: now_ms(),
        };
        let entry = principal.audit(
            AuditAction::TeamCreated,
            Some(&team_ref(&team)),
            None,
            format!("team {:?} created", team.name),
        );
        self.store.create_team_audited(&team, Some(&entry)).await?;
        Ok(team)
    }

    /// A team by name, for an admin.
    pub async fn team(&self, principal: &Principal, name: &str) -> Result<TeamRecord> {
        principal.require(Role::Admin)?;
        self.store
            .team_by_name(name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("team {name}")))
    }

    /// Renames a team: its hook URLs change with it.
    pub async fn rename_team(
        &self,
        principal: &Principal,
        name: &str,
        new_name: &str,
    ) -> Result<TeamRecord> {
        let team = self.team(principal, name).await?;
        let new_name = parse_team_name(new_name)?;
        let renamed = TeamRecord {
            name: new_name.as_str().to_string(),
            ..team.clone()
        };
        let entry = principal.audit(
            AuditAction::TeamRenamed,
            Some(&team_ref(&renamed)),
            None,
            format!("team {:?} renamed to {:?}", team.name, renamed.name),
        );
        self.store
            .rename_team(&team.id, &renamed.name, &entry)
            .await?;
        // Hook URLs and the keys in memory carry the team's name.
        self.cache.invalidate_all();
        self.keys.invalidate();
        Ok(renamed)
    }

    /// Deletes a team with its keys; refused (`Conflict`) while it has workflows, and for the
    /// admin's own team.
    pub async fn delete_team(&self, principal: &Principal, name: &str) -> Result<()> {
        let team = self.team(principal, name).await?;
        if team.id == principal.team_id {
            return Err(EngineError::Conflict(
                "a key cannot delete its own team: use an admin key of another team".into(),
            ));
        }
        let entry = principal.audit(
            AuditAction::TeamDeleted,
            Some(&team_ref(&team)),
            None,
            format!("team {:?} deleted", team.name),
        );
        self.store.delete_team(&team.id, &entry).await?;
        self.cache.invalidate_all();
        self.keys.invalidate();
        Ok(())
    }

    /// The teams' names by id, for views of records of several teams.
    pub async fn team_names(&self) -> Result<std::collections::HashMap<String, String>> {
        Ok(self
            .store
            .list_teams()
            .await?
            .into_iter()
            .map(|team| (team.id, team.name))
            .collect())
    }

    pub async fn create_api_key(
        &self,
        principal: &Principal,
        new: NewApiKey,
    ) -> Result<CreatedKey> {
        principal.require(Role::Admin)?;
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > MAX_KEY_NAME_LEN {
            return Err(EngineError::Invalid(format!(
                "name: a key's name has 1 to {MAX_KEY_NAME_LEN} characters"
            )));
        }
        let now = now_ms();
        if new.expires_at.is_some_and(|at| at <= now) {
            return Err(EngineError::Invalid(
                "expires_at: the expiry is in the past".into(),
            ));
        }
        let team_name = new.team.as_deref().unwrap_or(DEFAULT_TEAM);
        let team = self
            .store
            .team_by_name(team_name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("team {team_name}")))?;
        let key = generate_key();
        let record = ApiKeyRecord {
            id: uuid::Uuid::now_v7().to_string(),
            team_id: team.id.clone(),
            name: name.to_string(),
            key_hash: hash_key(&key),
            prefix: key_prefix(&key),
            role: new.role,
            created_at: now,
            expires_at: new.expires_at,
            last_used_at: None,
        };
        let entry = principal.audit(
            AuditAction::KeyCreated,
            Some(&team_ref(&team)),
            None,
            format!(
                "{} key {:?} ({}) created",
                record.role, record.name, record.id
            ),
        );
        self.store
            .create_api_key_audited(&record, Some(&entry))
            .await?;
        Ok(CreatedKey {
            record,
            team_name: team.name,
            key,
        })
    }

    pub async fn list_api_keys(&self, principal: &Principal) -> Result<Vec<ApiKeyRecord>> {
        principal.require(Role::Admin)?;
        Ok(self.store.list_api_keys(None).await?)
    }

    /// Revokes a key: refused from the next request on, here at once and on other nodes within
    /// [`crate::key_cache::KEY_CACHE_TTL`] (or at once with a cross-node notification). A key
    /// does not revoke itself (`Conflict`).
    pub async fn revoke_api_key(&self, principal: &Principal, id: &str) -> Result<()> {
        principal.require(Role::Admin)?;
        if id == principal.key_id {
            return Err(EngineError::Conflict(
                "a key cannot revoke itself (an admin could lock itself out): use another admin key"
                    .into(),
            ));
        }
        let not_found = || EngineError::NotFound(format!("API key {id}"));
        let record = self.store.api_key_by_id(id).await?.ok_or_else(not_found)?;
        let team = self.team_ref(principal, &record.team_id).await?;
        let entry = principal.audit(
            AuditAction::KeyRevoked,
            Some(&team),
            None,
            format!(
                "{} key {:?} ({}) revoked",
                record.role, record.name, record.id
            ),
        );
        if !self.store.revoke_api_key(id, &entry).await? {
            return Err(not_found());
        }
        self.keys.invalidate();
        Ok(())
    }
}
