//! API keys: the first start's bootstrap (team `default` and an admin key) and key checks.
//! Keys are stored as their SHA-256 digest only.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use flowd_store::{ApiKeyRecord, TeamRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::now_ms;
use crate::error::{EngineError, Result};
use crate::Engine;

/// The team created on first start.
pub const DEFAULT_TEAM: &str = "default";
/// Where a generated admin key is written, in the data dir.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";

/// Who is calling the API.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub team_id: String,
    pub team_name: String,
    pub is_admin: bool,
}

/// What the bootstrap did.
#[derive(Debug, Clone, PartialEq)]
pub enum Bootstrap {
    /// The store already had a team: nothing to do.
    AlreadyDone,
    /// Created the default team with the admin key from the environment.
    WithGivenKey,
    /// Created the default team with a generated key (shown once, and written to the key file).
    WithGeneratedKey(String),
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A new random API key (256 bits).
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("flowd_{}", hex::encode(bytes))
}

impl Engine {
    /// On first start with an empty store: the team `default` and an admin key, `given` if set,
    /// otherwise generated and written to `<data_dir>/admin-api-key` (mode 0600).
    pub async fn bootstrap(&self, given: Option<&str>, data_dir: &Path) -> Result<Bootstrap> {
        if self.store.count_teams().await? > 0 {
            return Ok(Bootstrap::AlreadyDone);
        }
        if let Some(key) = given {
            if key.trim().len() < 16 {
                return Err(EngineError::Invalid(
                    "FLOWD_ADMIN_API_KEY must be at least 16 characters".into(),
                ));
            }
        }
        let now = now_ms();
        let team = TeamRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: DEFAULT_TEAM.into(),
            created_at: now,
        };
        let key = given.map(str::to_string).unwrap_or_else(generate_key);
        self.store.create_team(&team).await?;
        self.store
            .create_api_key(&ApiKeyRecord {
                id: uuid::Uuid::now_v7().to_string(),
                team_id: team.id.clone(),
                name: "admin".into(),
                key_hash: hash_key(key.trim()),
                is_admin: true,
                created_at: now,
            })
            .await?;
        if given.is_some() {
            return Ok(Bootstrap::WithGivenKey);
        }
        write_secret_file(&data_dir.join(ADMIN_KEY_FILE), &key).map_err(|error| {
            EngineError::Invalid(format!("cannot write the admin key file: {error}"))
        })?;
        Ok(Bootstrap::WithGeneratedKey(key))
    }

    /// The principal an API key stands for, if it is a valid key.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Principal>> {
        let Some(record) = self.store.api_key_by_hash(&hash_key(key)).await? else {
            return Ok(None);
        };
        let team = self
            .store
            .team_by_id(&record.team_id)
            .await?
            .ok_or_else(|| EngineError::NotFound("the key's team".into()))?;
        Ok(Some(Principal {
            team_id: team.id,
            team_name: team.name,
            is_admin: record.is_admin,
        }))
    }
}

fn write_secret_file(path: &Path, content: &str) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{content}")
}
