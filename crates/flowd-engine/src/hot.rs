//! What the hot path needs of a workflow, kept in memory: the record, the active code, its
//! concurrency limit and where its settings are. Writes through the engine invalidate the cached
//! record, and so do the changes other nodes publish (see `follow`); a record read while an
//! invalidation happened is not kept, as it may be older than the change. Settings kept in memory
//! (a store only this node writes) live in their own cells, which survive invalidation (an
//! execution finishing after a redeploy still merges its changes into the one current copy).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use flowd_core::requirements::Requirements;
use flowd_core::workflow::VersionState;
use flowd_store::{Store, VersionRecord, WorkflowRecord};

use crate::admission::Gate;
use crate::error::{EngineError, Result};
use crate::settings_cell::SettingsCell;
use crate::workflow_settings::WorkflowSettings;

/// A workflow ready to run.
pub struct HotWorkflow {
    pub record: WorkflowRecord,
    pub team_name: String,
    /// What its hook and schedule run, or why nothing can run yet.
    pub active: Result<Arc<ActiveVersion>, NoActiveVersion>,
    /// `max_concurrency`, when set: one gate per workflow, shared by every cached copy of it.
    pub limiter: Option<Arc<Gate>>,
    pub settings: WorkflowSettings,
}

/// The active version of a workflow, as the runtime needs it.
pub struct ActiveVersion {
    pub number: u32,
    pub code: Arc<str>,
    /// Its requirement set (`None`: the runtime's base environment).
    pub requirements: Option<Arc<Requirements>>,
    /// Computed once, when the record is loaded: the hot path only clones it.
    pub version_key: String,
}

/// Why a workflow has no active version: its first version is being built, or failed.
#[derive(Debug, Clone)]
pub struct NoActiveVersion {
    /// The newest version (the one executions are recorded against when refused).
    pub latest: u32,
    pub why: String,
}

impl HotWorkflow {
    /// The version an execution is recorded against: the active one, else the newest.
    pub fn version_number(&self) -> u32 {
        match &self.active {
            Ok(active) => active.number,
            Err(none) => none.latest,
        }
    }
}

/// The requirement set of a version, parsed (`None` when it has none).
pub fn version_requirements(version: &VersionRecord) -> Result<Option<Arc<Requirements>>> {
    if version.requirements.is_empty() {
        return Ok(None);
    }
    Requirements::parse_lines(&version.requirements)
        .map(|requirements| Some(Arc::new(requirements)))
        .map_err(|error| EngineError::CorruptData {
            what: format!(
                "the stored requirements of version {} of workflow {} are invalid",
                version.version, version.workflow_id
            ),
            source: Box::new(error),
        })
}

/// Identifies the running code: executions with the same key share a warm instance. Everything
/// the instance is made from is in it (the version's code and requirements; the environment
/// variables, set before the module runs; the workflow's own egress exceptions, opened for the
/// instance when it starts).
pub fn version_key(record: &WorkflowRecord, version: u32) -> String {
    use sha2::Digest;
    let mut env = sha2::Sha256::new();
    for (name, value) in &record.env {
        env.update(name.as_bytes());
        env.update([0]);
        env.update(value.as_bytes());
        env.update([0]);
    }
    let env = hex::encode(env.finalize());
    let key = format!(
        "{}:{}:{}:{}:{}",
        record.id,
        version,
        record.memory_mb,
        record.isolation,
        &env[..16]
    );
    if record.egress_allow.is_empty() {
        return key;
    }
    let mut egress = sha2::Sha256::new();
    for rule in &record.egress_allow {
        egress.update(rule.to_string().as_bytes());
        egress.update([0]);
    }
    format!("{key}:egress-{}", &hex::encode(egress.finalize())[..16])
}

/// Whether `key` is a [`version_key`] of the workflow `workflow_id` (of any version, any
/// settings).
pub fn is_version_key_of(key: &str, workflow_id: &str) -> bool {
    key.strip_prefix(workflow_id)
        .is_some_and(|rest| rest.starts_with(':'))
}

/// Why a workflow without an active version has none, from its newest version.
async fn no_active_version(store: &dyn Store, workflow_id: &str) -> Result<NoActiveVersion> {
    let versions = store.list_versions(workflow_id).await?;
    let Some(latest) = versions.first() else {
        return Ok(NoActiveVersion {
            latest: 0,
            why: "the workflow has no version".into(),
        });
    };
    let why = match latest.state {
        VersionState::Building => format!(
            "the workflow has no active version yet: version {} is being built",
            latest.version
        ),
        _ => format!(
            "the workflow has no active version: version {} failed to deploy ({})",
            latest.version,
            latest.error.as_deref().unwrap_or("see its build log")
        ),
    };
    Ok(NoActiveVersion {
        latest: latest.version,
        why,
    })
}

/// The cache of hot workflows.
#[derive(Default)]
pub struct HotCache {
    /// Settings are read from the store at each run's start rather than kept in cells (other
    /// nodes write them too).
    settings_in_store: bool,
    /// Moves on at each invalidation, under `by_id`'s lock: a record read from the store before
    /// it moved is not cached.
    invalidations: AtomicU64,
    by_id: RwLock<HashMap<String, Arc<HotWorkflow>>>,
    /// (team name, workflow name) → id
    by_name: RwLock<HashMap<(String, String), String>>,
    settings: Mutex<HashMap<String, Arc<SettingsCell>>>,
    /// Per workflow: its `max_concurrency` and the gate enforcing it. Like the settings, it
    /// outlives a reload of the record, so that calls racing a first load or a redeploy share it.
    limiters: Mutex<HashMap<String, (u32, Arc<Gate>)>>,
    teams: RwLock<HashMap<String, String>>,
}

/// How long a caller may wait for a slot under a workflow's `max_concurrency`.
pub const WORKFLOW_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

impl HotCache {
    /// An empty cache. `settings_in_store`: see [`WorkflowSettings`].
    pub fn new(settings_in_store: bool) -> HotCache {
        HotCache {
            settings_in_store,
            ..HotCache::default()
        }
    }

    pub fn by_id(&self, id: &str) -> Option<Arc<HotWorkflow>> {
        self.by_id.read().ok()?.get(id).cloned()
    }

    pub async fn load_by_id(&self, store: &dyn Store, id: &str) -> Result<Arc<HotWorkflow>> {
        if let Some(hot) = self.by_id(id) {
            return Ok(hot);
        }
        let seen = self.invalidations();
        let record = store
            .workflow_by_id(id)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("workflow {id}")))?;
        self.fill(store, record, seen).await
    }

    /// The workflow a hook URL names, if it exists.
    pub async fn load_by_name(
        &self,
        store: &dyn Store,
        team_name: &str,
        name: &str,
    ) -> Result<Option<Arc<HotWorkflow>>> {
        let key = (team_name.to_string(), name.to_string());
        let seen = self.invalidations();
        let cached_id = self.by_name.read().ok().and_then(|m| m.get(&key).cloned());
        if let Some(hot) = cached_id.and_then(|id| self.by_id(&id)) {
            return Ok(Some(hot));
        }
        let Some(team_id) = self.team_id(store, team_name).await? else {
            return Ok(None);
        };
        match store.workflow_by_name(&team_id, name).await? {
            Some(record) => Ok(Some(self.fill(store, record, seen).await?)),
            None => Ok(None),
        }
    }

    async fn team_id(&self, store: &dyn Store, team_name: &str) -> Result<Option<String>> {
        if let Some(id) = self
            .teams
            .read()
            .ok()
            .and_then(|t| t.get(team_name).cloned())
        {
            return Ok(Some(id));
        }
        let team = store.team_by_name(team_name).await?;
        if let (Some(team), Ok(mut teams)) = (&team, self.teams.write()) {
            teams.insert(team.name.clone(), team.id.clone());
        }
        Ok(team.map(|t| t.id))
    }

    fn invalidations(&self) -> u64 {
        self.invalidations.load(Ordering::Acquire)
    }

    /// Completes a record read after `seen` invalidations into a hot workflow, and caches it
    /// unless an invalidation happened since (the record may be older than what it invalidated).
    async fn fill(
        &self,
        store: &dyn Store,
        record: WorkflowRecord,
        seen: u64,
    ) -> Result<Arc<HotWorkflow>> {
        let active = match record.version {
            Some(number) => {
                let version = store.version(&record.id, number).await?.ok_or_else(|| {
                    EngineError::NotFound(format!("version {number} of workflow {}", record.id))
                })?;
                Ok(Arc::new(ActiveVersion {
                    number,
                    code: Arc::from(version.code.as_str()),
                    requirements: version_requirements(&version)?,
                    version_key: version_key(&record, number),
                }))
            }
            None => Err(no_active_version(store, &record.id).await?),
        };
        let team_name = store
            .team_by_id(&record.team_id)
            .await?
            .map(|t| t.name)
            .unwrap_or_default();
        let settings = self.workflow_settings(store, &record.id).await?;
        let hot = Arc::new(HotWorkflow {
            limiter: self.limiter(&record),
            active,
            team_name: team_name.clone(),
            settings,
            record,
        });
        let Ok(mut by_id) = self.by_id.write() else {
            return Ok(hot);
        };
        if self.invalidations() != seen {
            return Ok(hot);
        }
        by_id.insert(hot.record.id.clone(), hot.clone());
        if let Ok(mut by_name) = self.by_name.write() {
            by_name.insert((team_name, hot.record.name.clone()), hot.record.id.clone());
        }
        Ok(hot)
    }

    /// The gate of a workflow's `max_concurrency`: the same one as long as the limit is the same.
    fn limiter(&self, record: &WorkflowRecord) -> Option<Arc<Gate>> {
        let mut limiters = match self.limiters.lock() {
            Ok(limiters) => limiters,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Some(limit) = record.max_concurrency else {
            limiters.remove(&record.id);
            return None;
        };
        match limiters.get(&record.id) {
            Some((current, gate)) if *current == limit => Some(gate.clone()),
            _ => {
                let gate = Arc::new(Gate::new(limit as usize, 1024, WORKFLOW_QUEUE_TIMEOUT));
                limiters.insert(record.id.clone(), (limit, gate.clone()));
                Some(gate)
            }
        }
    }

    /// Where a workflow's settings are: in the store, or in its cell (loaded on first use).
    pub async fn workflow_settings(
        &self,
        store: &dyn Store,
        workflow_id: &str,
    ) -> Result<WorkflowSettings> {
        let workflow_id = workflow_id.to_string();
        if self.settings_in_store {
            return Ok(WorkflowSettings::in_store(workflow_id));
        }
        let cell = self.settings_cell(store, &workflow_id).await?;
        Ok(WorkflowSettings::in_memory(workflow_id, cell))
    }

    /// The settings cell of a workflow, loaded from the store on first use.
    async fn settings_cell(
        &self,
        store: &dyn Store,
        workflow_id: &str,
    ) -> Result<Arc<SettingsCell>> {
        if let Some(cell) = self
            .settings
            .lock()
            .ok()
            .and_then(|m| m.get(workflow_id).cloned())
        {
            return Ok(cell);
        }
        let loaded = store.settings(workflow_id).await?;
        let mut cells = match self.settings.lock() {
            Ok(cells) => cells,
            Err(poisoned) => poisoned.into_inner(),
        };
        Ok(cells
            .entry(workflow_id.to_string())
            .or_insert_with(|| Arc::new(SettingsCell::new(loaded)))
            .clone())
    }

    /// Drops the cached record (after an update): the next call reloads it.
    pub fn invalidate(&self, id: &str) {
        let removed = self.by_id.write().ok().and_then(|mut by_id| {
            self.invalidations.fetch_add(1, Ordering::AcqRel);
            by_id.remove(id)
        });
        if let (Some(hot), Ok(mut by_name)) = (removed, self.by_name.write()) {
            by_name.remove(&(hot.team_name.clone(), hot.record.name.clone()));
        }
    }

    /// Drops every cached record and team name (changes may have been missed, or a team was
    /// renamed or deleted: any of them may be stale); the next calls reload them. The limiters
    /// and settings cells stay, shared by the calls going on (cells exist only for a store no
    /// other node writes, whose changes are all this node's).
    pub fn invalidate_all(&self) {
        if let Ok(mut by_id) = self.by_id.write() {
            self.invalidations.fetch_add(1, Ordering::AcqRel);
            by_id.clear();
        }
        if let Ok(mut by_name) = self.by_name.write() {
            by_name.clear();
        }
        if let Ok(mut teams) = self.teams.write() {
            teams.clear();
        }
    }

    /// Forgets everything about a deleted workflow.
    pub fn remove(&self, id: &str) {
        self.invalidate(id);
        if let Ok(mut cells) = self.settings.lock() {
            cells.remove(id);
        }
        if let Ok(mut limiters) = self.limiters.lock() {
            limiters.remove(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_key_belongs_to_its_workflow_only() {
        let id = "01a22bec-7f25-710b-9d83-4be1f302aed0";

        assert!(is_version_key_of(
            &format!("{id}:3:512:fork:0123456789abcdef"),
            id
        ));
        assert!(!is_version_key_of(
            &format!("{id}0:3:512:fork:0123456789abcdef"),
            id
        ));
        assert!(!is_version_key_of("local-1", id));
    }
}
