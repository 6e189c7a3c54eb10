//! API keys: the first start's bootstrap (team `default` and an admin key) and key checks.
//! Keys are stored as their SHA-256 digest only; a key found is kept in memory a few seconds
//! ([`crate::key_cache`]).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use flowd_core::access::Role;
use flowd_store::{ApiKeyRecord, TeamRecord};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::clock::now_ms;
use crate::error::{EngineError, Result};
use crate::key_cache::CachedKey;
use crate::Engine;

/// The team created on first start.
pub const DEFAULT_TEAM: &str = "default";
/// Where a generated admin key is written, in the data dir.
pub const ADMIN_KEY_FILE: &str = "admin-api-key";

/// Who is calling the API: a key, its team and its role.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    pub team_id: String,
    pub team_name: String,
    pub role: Role,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// `Forbidden` unless the role allows what `required` may do.
    pub fn require(&self, required: Role) -> Result<()> {
        if self.role.allows(required) {
            return Ok(());
        }
        Err(EngineError::Forbidden(format!(
            "this needs a key with the {required} role; this key ({}) is a {} key",
            self.key_name, self.role
        )))
    }

    /// Whether the principal may see what belongs to the team `team_id`: its own team, or any
    /// team for an admin.
    pub fn sees_team(&self, team_id: &str) -> bool {
        self.is_admin() || self.team_id == team_id
    }
}

/// What the bootstrap did.
#[derive(Debug, Clone, PartialEq)]
pub enum Bootstrap {
    /// The store already had a team with an admin key: nothing to do.
    AlreadyDone,
    /// Gave the default team the admin key from the configuration.
    WithGivenKey,
    /// Gave the default team the key of the key file (shown once, and in the key file): generated
    /// now, or by an earlier start that was interrupted before the key was stored.
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

/// How many characters of a key its listings show.
const PREFIX_LEN: usize = 12;

/// The first characters of a key, kept to tell keys apart in listings (48 random bits of a
/// generated key: nothing to guess the rest from).
pub fn key_prefix(key: &str) -> String {
    key.chars().take(PREFIX_LEN).collect()
}

impl Engine {
    /// Makes sure the team `default` exists with an admin key: on first start, and on a start
    /// after a first start that was interrupted (a team without a key). The key is `given` if
    /// set, else the one in `<data_dir>/admin-api-key`, else a generated one, which is written to
    /// that file (mode 0600, durably) before it is stored, so no stored key lacks its file.
    pub async fn bootstrap(&self, given: Option<&str>, data_dir: &Path) -> Result<Bootstrap> {
        let team = match self.store.team_by_name(DEFAULT_TEAM).await? {
            Some(team) if self.store.count_admin_keys(&team.id).await? > 0 => {
                return Ok(Bootstrap::AlreadyDone)
            }
            Some(team) => Some(team),
            None if self.store.count_teams().await? > 0 => return Ok(Bootstrap::AlreadyDone),
            None => None,
        };
        let (key, outcome) = match given {
            Some(key) => (checked_given_key(key)?, Bootstrap::WithGivenKey),
            None => {
                let key = generated_key_file(&data_dir.join(ADMIN_KEY_FILE))?;
                (key.clone(), Bootstrap::WithGeneratedKey(key))
            }
        };
        let now = now_ms();
        let team = match team {
            Some(team) => team,
            None => {
                let team = TeamRecord {
                    id: uuid::Uuid::now_v7().to_string(),
                    name: DEFAULT_TEAM.into(),
                    created_at: now,
                };
                self.store.create_team(&team).await?;
                team
            }
        };
        self.store
            .create_api_key(&ApiKeyRecord {
                id: uuid::Uuid::now_v7().to_string(),
                team_id: team.id,
                name: "admin".into(),
                key_hash: hash_key(&key),
                prefix: key_prefix(&key),
                role: Role::Admin,
                created_at: now,
                expires_at: None,
                last_used_at: None,
            })
            .await?;
        Ok(outcome)
    }

    /// The principal an API key stands for, if it is a valid key that has not expired. Its use
    /// is recorded (`last_used_at`) at most once a minute, without waiting for the write.
    pub async fn authenticate(&self, key: &str) -> Result<Option<Principal>> {
        let key_hash = hash_key(key);
        let found = match self.keys.get(&key_hash) {
            Some(found) => Some(found),
            None => self.look_up_key(&key_hash).await?,
        };
        let Some(found) = found else {
            return Ok(None);
        };
        let now = now_ms();
        if found.expires_at.is_some_and(|expires_at| expires_at <= now) {
            return Ok(None);
        }
        if self.keys.should_record_use(&found.principal.key_id) {
            let store = self.store.clone();
            let key_id = found.principal.key_id.clone();
            tokio::spawn(async move {
                if let Err(error) = store.touch_api_key(&key_id, now).await {
                    tracing::warn!(%error, key = %key_id, "recording a key's use failed");
                }
            });
        }
        Ok(Some(found.principal))
    }

    /// The key of this hash as the store has it, kept in memory for the next requests.
    async fn look_up_key(&self, key_hash: &str) -> Result<Option<CachedKey>> {
        let Some(record) = self.store.api_key_by_hash(key_hash).await? else {
            return Ok(None);
        };
        let team = self
            .store
            .team_by_id(&record.team_id)
            .await?
            .ok_or_else(|| EngineError::NotFound("the key's team".into()))?;
        let found = CachedKey {
            principal: Principal {
                key_id: record.id,
                key_name: record.name,
                team_id: team.id,
                team_name: team.name,
                role: record.role,
            },
            expires_at: record.expires_at,
        };
        self.keys.put(key_hash.to_string(), found.clone());
        Ok(Some(found))
    }

    /// Forgets the API keys kept in memory, so that the next request of each key reads it from
    /// the store again: the hook for a change made on another node (a key revoked, a team
    /// renamed). Without it, such a change holds here within [`crate::key_cache::KEY_CACHE_TTL`].
    pub fn invalidate_api_keys(&self) {
        self.keys.invalidate();
    }
}

/// The configured admin key, trimmed, if it is long enough.
fn checked_given_key(key: &str) -> Result<String> {
    let key = key.trim();
    if key.len() < MIN_GIVEN_KEY_LEN {
        return Err(EngineError::Invalid(format!(
            "the admin API key must be at least {MIN_GIVEN_KEY_LEN} characters"
        )));
    }
    Ok(key.to_string())
}

const MIN_GIVEN_KEY_LEN: usize = 16;

/// The key in the key file at `path`, or a new one written there first.
fn generated_key_file(path: &Path) -> Result<String> {
    let file_error = |source| EngineError::AdminKeyFile {
        path: path.to_path_buf(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(content) => {
            let key = content.trim();
            if key.len() < MIN_GIVEN_KEY_LEN {
                return Err(file_error(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "holds no key: remove it to have a new one generated",
                )));
            }
            Ok(key.to_string())
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let key = generate_key();
            write_secret_file_durably(path, &key).map_err(file_error)?;
            Ok(key)
        }
        Err(error) => Err(file_error(error)),
    }
}

/// Writes `content` to `path` (mode 0600) so that after a crash the file is either absent or
/// complete: a temporary file, synced, renamed into place, and the directory synced. The admin
/// key's file and the secret key's are written this way.
pub fn write_secret_file_durably(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut staging = path.as_os_str().to_owned();
    staging.push(".tmp");
    let staging = std::path::PathBuf::from(staging);
    match std::fs::remove_file(&staging) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&staging)?;
    writeln!(file, "{content}")?;
    file.sync_all()?;
    std::fs::rename(&staging, path)?;
    std::fs::File::open(dir)?.sync_all()
}
