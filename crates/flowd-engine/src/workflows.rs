//! Deploying and managing workflows: validation at the edge, versions, settings, tokens.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flowd_core::access::{AuditAction, Role};
use flowd_core::alerts::AlertPolicy;
use flowd_core::egress::ceiling::check_workflow_exceptions;
use flowd_core::egress::EgressRule;
use flowd_core::requirements::Requirements;
use flowd_core::retention::Retention;
use flowd_core::retry::RetryPolicy;
use flowd_core::schedule::Schedule;
use flowd_core::settings::{Settings, SettingsChange};
use flowd_core::workflow::{
    limits, ExecutionStatus, Isolation, Mode, Name, ResponseMode, Trigger, VersionState,
};
use flowd_core::PyValue;
use flowd_store::{
    ClaimOutcome, ExecutionQuery, ExecutionRecord, RunClaim, StoreError, VersionRecord,
    WorkflowRecord,
};
use rand::RngCore;
use serde::Deserialize;

use crate::audit::{settings_entries, TeamRef};
use crate::auth::Principal;
use crate::clock::now_ms;
use crate::deploy::Deployment;
use crate::error::{EngineError, Result};
use crate::executor::{claimable_record, Report};
use crate::idempotency::check_idempotency_header;
use crate::signed::check_verify;
use crate::Engine;

/// A new workflow, as sent to `POST /api/v1/workflows`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWorkflow {
    pub name: String,
    pub mode: Mode,
    pub code: String,
    pub runtime: Option<String>,
    pub settings: Option<Settings>,
    pub secrets: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub requirements: Option<RequirementsInput>,
    pub schedule: Option<serde_json::Value>,
    pub timeout_s: Option<u32>,
    pub memory_mb: Option<u32>,
    pub max_concurrency: Option<u32>,
    pub enabled: Option<bool>,
    pub isolation: Option<Isolation>,
    /// How the hook's callers sign their deliveries (catch).
    pub verify: Option<serde_json::Value>,
    /// The header identifying a delivery, instead of `Idempotency-Key` (catch).
    pub idempotency_header: Option<String>,
    /// The team's name: an admin key's choice (default `default`); another key may only name
    /// its own team.
    pub team: Option<String>,
    /// Destinations this workflow alone may connect to (within the server's ceiling).
    pub egress_allow: Option<Vec<String>>,
    /// The workflow's own retention of its executions (the server's when left out).
    pub retention: Option<Retention>,
    /// Where alerts about its failed executions go (the server's default when left out).
    pub alerts: Option<AlertPolicy>,
    /// A catch workflow of the same team run with each alert's summary as `_request`.
    pub on_failure: Option<String>,
    pub response: Option<ResponseMode>,
    /// How asynchronous and scheduled executions are retried (none when left out).
    pub retry: Option<RetryPolicy>,
    /// Whether its hook requests are stored for replay (default `true`).
    pub store_requests: Option<bool>,
}

/// Changes to a workflow, as sent to `PATCH /api/v1/workflows/{id}`. A field left out keeps its
/// value; `max_concurrency: null` and `schedule: null` remove them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowPatch {
    pub name: Option<String>,
    pub code: Option<String>,
    pub runtime: Option<String>,
    pub secrets: Option<Vec<String>>,
    /// Replaces all environment variables.
    pub env: Option<BTreeMap<String, String>>,
    /// A new requirement set: deploys a new version (with the new `code`, or the latest one's).
    pub requirements: Option<RequirementsInput>,
    #[serde(default, deserialize_with = "present")]
    pub schedule: Option<Option<serde_json::Value>>,
    pub timeout_s: Option<u32>,
    pub memory_mb: Option<u32>,
    #[serde(default, deserialize_with = "present")]
    pub max_concurrency: Option<Option<u32>>,
    pub enabled: Option<bool>,
    pub isolation: Option<Isolation>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "present")]
    pub verify: Option<Option<serde_json::Value>>,
    /// `null` goes back to `Idempotency-Key`.
    #[serde(default, deserialize_with = "present")]
    pub idempotency_header: Option<Option<String>>,
    /// `null` gives the workflow the server's retention again.
    #[serde(default, deserialize_with = "present")]
    pub retention: Option<Option<Retention>>,
    /// Replaces the workflow's own egress exceptions (`[]` removes them).
    pub egress_allow: Option<Vec<String>>,
    /// `null` gives the workflow the server's default alerts again.
    #[serde(default, deserialize_with = "present")]
    pub alerts: Option<Option<AlertPolicy>>,
    /// `null` removes the error handler.
    #[serde(default, deserialize_with = "present")]
    pub on_failure: Option<Option<String>>,
    pub response: Option<ResponseMode>,
    /// Replaced as a whole; `null` stops retrying.
    #[serde(default, deserialize_with = "present")]
    pub retry: Option<Option<RetryPolicy>>,
    /// Whether its hook requests are stored for replay.
    pub store_requests: Option<bool>,
}

/// `requirements` as sent: a list of requirement lines, or the text of a `requirements.txt`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RequirementsInput {
    Lines(Vec<String>),
    Text(String),
}

impl RequirementsInput {
    fn parse(&self) -> Result<Requirements> {
        match self {
            RequirementsInput::Lines(lines) => Requirements::parse_lines(lines),
            RequirementsInput::Text(text) => Requirements::parse_text(text),
        }
        .map_err(|error| EngineError::Invalid(format!("requirements: {error}")))
    }
}

/// Distinguishes a field set to `null` (`Some(None)`) from a missing one (`None`).
fn present<'de, D, T>(deserializer: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// A 192-bit random token, hex encoded: the secret last segment of a hook URL.
pub fn generate_hook_token() -> String {
    let mut bytes = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

impl Engine {
    /// Stores a new workflow with its first version, and deploys that version: waits at most
    /// `wait` for its build and import check to end.
    pub async fn create_workflow(
        &self,
        principal: &Principal,
        new: NewWorkflow,
        wait: Duration,
    ) -> Result<(WorkflowRecord, Deployment)> {
        principal.require(Role::Developer)?;
        let team = self
            .team_of_new_workflow(principal, new.team.as_deref())
            .await?;
        let name = parse_name(&new.name)?;
        let runtime = self.check_runtime(new.runtime.as_deref())?;
        let timeout_s = self.check_timeout(new.timeout_s)?;
        let memory_mb = self.check_memory(new.memory_mb)?;
        check_max_concurrency(new.max_concurrency)?;
        check_isolation(new.isolation)?;
        let verify = check_verify(new.mode, new.verify.as_ref())?;
        let idempotency_header =
            check_idempotency_header(new.mode, new.idempotency_header.as_deref())?;
        check_retention(new.retention.as_ref())?;
        check_alerts(new.alerts.as_ref())?;
        let on_failure = self
            .check_on_failure(&team.id, name.as_str(), new.on_failure.as_deref())
            .await?;
        check_retry(new.retry.as_ref())?;
        let schedule = check_schedule(new.mode, new.schedule.as_ref())?;
        let enabled = new.enabled.unwrap_or(true);
        let secrets = check_secrets(new.secrets.unwrap_or_default())?;
        let env = check_env(new.env.unwrap_or_default())?;
        let egress_allow =
            self.check_egress_allow(new.egress_allow.as_deref().unwrap_or_default())?;
        let requirements = match &new.requirements {
            Some(input) => input.parse()?,
            None => Requirements::default(),
        };
        let settings = new.settings.unwrap_or_default();
        self.check_code(&runtime, &new.code, new.mode).await?;
        let now = now_ms();
        let record = WorkflowRecord {
            id: uuid::Uuid::now_v7().to_string(),
            team_id: team.id.clone(),
            name: name.as_str().to_string(),
            mode: new.mode,
            runtime,
            // Active once built and imported.
            version: None,
            enabled,
            hook_token: generate_hook_token(),
            secret_keys: secrets,
            env,
            next_fire_at: first_fire_time(schedule.as_ref(), enabled, now),
            schedule: schedule.map(|s| s.to_json().to_string()),
            timeout_s,
            memory_mb,
            max_concurrency: new.max_concurrency,
            isolation: new.isolation.unwrap_or(Isolation::Fork),
            response: new.response.unwrap_or(ResponseMode::Sync),
            retry: new.retry,
            created_at: now,
            updated_at: now,
            verify,
            idempotency_header,
            egress_allow,
            retention: new.retention,
            alerts: new.alerts,
            on_failure,
            store_requests: new.store_requests.unwrap_or(true),
        };
        let version = building_version(&record.id, 1, new.code, &requirements, now);
        let entry = principal.audit(
            AuditAction::WorkflowCreated,
            Some(&team),
            Some(&record),
            format!("{} workflow created with version 1", record.mode),
        );
        self.store
            .create_workflow_audited(&record, &version, &settings, Some(&entry))
            .await?;
        self.deployer.start(record.clone(), version);
        let deployment = self.deployer.wait(&record.id, 1, wait).await;
        let record = self
            .store
            .workflow_by_id(&record.id)
            .await?
            .unwrap_or(record);
        self.schedule_changed.notify_one();
        Ok((record, deployment))
    }

    /// Changes a workflow. New `code` or `requirements` deploy a new version: waits at most
    /// `wait` for its build and import check (the previous version serves meanwhile).
    pub async fn update_workflow(
        &self,
        principal: &Principal,
        id: &str,
        patch: WorkflowPatch,
        wait: Duration,
    ) -> Result<(WorkflowRecord, Option<Deployment>)> {
        principal.require(Role::Developer)?;
        let mut record = self.workflow(principal, id).await?;
        let team = self.team_ref(principal, &record.team_id).await?;
        let entries = patch_entries(principal, &team, &record, &patch);
        let deploy_summary = deploy_summary(&patch);
        // The instances running with the exceptions a change removes are stopped below.
        let previous_egress = record.egress_allow.clone();
        if let Some(name) = &patch.name {
            record.name = parse_name(name)?.as_str().to_string();
        }
        if let Some(runtime) = &patch.runtime {
            if *runtime != record.runtime {
                return Err(EngineError::Invalid(format!(
                    "runtime: a workflow keeps the runtime it was created with ({}; it is part of its hook URL): create a new workflow to move it to {runtime}",
                    record.runtime
                )));
            }
        }
        if let Some(secrets) = patch.secrets {
            record.secret_keys = check_secrets(secrets)?;
        }
        if let Some(env) = patch.env {
            record.env = check_env(env)?;
        }
        let was_enabled = record.enabled;
        let mut reschedule = false;
        if let Some(schedule) = &patch.schedule {
            let schedule = check_schedule(record.mode, schedule.as_ref())?;
            record.schedule = schedule.map(|s| s.to_json().to_string());
            reschedule = true;
        }
        if patch.timeout_s.is_some() {
            record.timeout_s = self.check_timeout(patch.timeout_s)?;
        }
        if patch.memory_mb.is_some() {
            record.memory_mb = self.check_memory(patch.memory_mb)?;
        }
        if let Some(max_concurrency) = patch.max_concurrency {
            check_max_concurrency(max_concurrency)?;
            record.max_concurrency = max_concurrency;
        }
        if let Some(isolation) = patch.isolation {
            check_isolation(Some(isolation))?;
            record.isolation = isolation;
        }
        if let Some(retry) = patch.retry {
            check_retry(retry.as_ref())?;
            record.retry = retry;
        }
        if let Some(response) = patch.response {
            record.response = response;
        }
        if let Some(enabled) = patch.enabled {
            record.enabled = enabled;
        }
        if let Some(verify) = &patch.verify {
            record.verify = check_verify(record.mode, verify.as_ref())?;
        }
        if let Some(header) = &patch.idempotency_header {
            record.idempotency_header = check_idempotency_header(record.mode, header.as_deref())?;
        }
        if let Some(retention) = patch.retention {
            check_retention(retention.as_ref())?;
            record.retention = retention;
        }
        if let Some(egress_allow) = &patch.egress_allow {
            record.egress_allow = self.check_egress_allow(egress_allow)?;
        }
        if let Some(alerts) = patch.alerts {
            check_alerts(alerts.as_ref())?;
            record.alerts = alerts;
        }
        if let Some(on_failure) = &patch.on_failure {
            record.on_failure = self
                .check_on_failure(&record.team_id, &record.name, on_failure.as_deref())
                .await?;
        }
        if let Some(store_requests) = patch.store_requests {
            record.store_requests = store_requests;
        }
        let now = now_ms();
        record.updated_at = now;
        // Pausing stops the ticks; resuming or a new schedule starts again from now.
        if !record.enabled {
            record.next_fire_at = None;
        } else if reschedule || !was_enabled || record.next_fire_at.is_none() {
            record.next_fire_at = first_fire_time(stored_schedule(&record).as_ref(), true, now);
        }
        if let Some(code) = &patch.code {
            self.check_code(&record.runtime, code, record.mode).await?;
        }
        let new_requirements = patch
            .requirements
            .as_ref()
            .map(RequirementsInput::parse)
            .transpose()?;
        self.store
            .update_workflow_audited(&record, &entries)
            .await?;
        self.cache.invalidate(&record.id);
        self.schedule_changed.notify_one();
        if previous_egress != record.egress_allow {
            self.stop_instances_of(&record);
        }
        if patch.code.is_none() && new_requirements.is_none() {
            return Ok((record, None));
        }
        // A new version: what was not sent is the latest version's. Two changes at once may pick
        // the same number: the one that loses takes the next.
        let mut attempts = 0;
        let version = loop {
            let latest = self.store.list_versions(&record.id).await?;
            let latest = latest.first();
            let code = match (&patch.code, latest) {
                (Some(code), _) => code.clone(),
                (None, Some(latest)) => latest.code.clone(),
                (None, None) => {
                    return Err(EngineError::Invalid(
                        "code: the workflow has no version yet".into(),
                    ))
                }
            };
            let requirements = match (&new_requirements, latest) {
                (Some(requirements), _) => requirements.clone(),
                (None, Some(latest)) => {
                    Requirements::parse_lines(&latest.requirements).unwrap_or_default()
                }
                (None, None) => Requirements::default(),
            };
            let number = latest.map_or(1, |v| v.version + 1);
            let version = building_version(&record.id, number, code, &requirements, now);
            let entry = principal.audit(
                AuditAction::WorkflowDeployed,
                Some(&team),
                Some(&record),
                format!("version {number} deployed ({deploy_summary})"),
            );
            match self
                .store
                .add_version_audited(&version, now, Some(&entry))
                .await
            {
                Ok(()) => break version,
                Err(StoreError::Conflict(_)) if attempts < 8 => attempts += 1,
                Err(error) => return Err(error.into()),
            }
        };
        let number = version.version;
        self.deployer.start(record.clone(), version);
        let deployment = self.deployer.wait(&record.id, number, wait).await;
        let record = self
            .store
            .workflow_by_id(&record.id)
            .await?
            .unwrap_or(record);
        Ok((record, Some(deployment)))
    }

    /// How the deploy of a version stands, waiting at most `wait` for its end.
    pub async fn deployment(
        &self,
        principal: &Principal,
        id: &str,
        version: u32,
        wait: Duration,
    ) -> Result<Deployment> {
        let record = self.workflow(principal, id).await?;
        if self.store.version(&record.id, version).await?.is_none() {
            return Err(EngineError::NotFound(format!(
                "version {version} of workflow {id}"
            )));
        }
        Ok(self.deployer.wait(&record.id, version, wait).await)
    }

    pub async fn delete_workflow(&self, principal: &Principal, id: &str) -> Result<()> {
        principal.require(Role::Developer)?;
        let record = self.workflow(principal, id).await?;
        let team = self.team_ref(principal, &record.team_id).await?;
        let entry = principal.audit(
            AuditAction::WorkflowDeleted,
            Some(&team),
            Some(&record),
            "workflow deleted with its versions, settings and executions",
        );
        self.store
            .delete_workflow_audited(&record.id, Some(&entry))
            .await?;
        self.cache.remove(&record.id);
        self.schedule_changed.notify_one();
        Ok(())
    }

    /// A workflow the principal may see: of its team, or of any team for an admin. Another
    /// team's workflow is `NotFound`, like one that does not exist.
    pub async fn workflow(&self, principal: &Principal, id: &str) -> Result<WorkflowRecord> {
        match self.store.workflow_by_id(id).await? {
            Some(record) if principal.sees_team(&record.team_id) => Ok(record),
            _ => Err(EngineError::NotFound(format!("workflow {id}"))),
        }
    }

    /// The workflows of the principal's team, by name; an admin's: of every team, by team.
    pub async fn list_workflows(&self, principal: &Principal) -> Result<Vec<WorkflowRecord>> {
        if !principal.is_admin() {
            return Ok(self.store.list_workflows(&principal.team_id).await?);
        }
        let mut all = Vec::new();
        for team in self.store.list_teams().await? {
            all.extend(self.store.list_workflows(&team.id).await?);
        }
        Ok(all)
    }

    /// The name of a workflow's team (in its hook URL).
    pub async fn team_name_of(
        &self,
        principal: &Principal,
        record: &WorkflowRecord,
    ) -> Result<String> {
        Ok(self.team_ref(principal, &record.team_id).await?.name)
    }

    /// The team a new workflow goes to: the one its body names (an admin's choice, `default`
    /// when it names none), else the key's own. Another team named by a non-admin key is
    /// `NotFound`, as that team is invisible to it.
    async fn team_of_new_workflow(
        &self,
        principal: &Principal,
        named: Option<&str>,
    ) -> Result<TeamRef> {
        let own = || TeamRef {
            id: principal.team_id.clone(),
            name: principal.team_name.clone(),
        };
        let named = match (named, principal.is_admin()) {
            (None, false) => return Ok(own()),
            (None, true) => crate::auth::DEFAULT_TEAM,
            (Some(name), _) => name,
        };
        if named == principal.team_name {
            return Ok(own());
        }
        match self.store.team_by_name(named).await? {
            Some(team) if principal.is_admin() => Ok(TeamRef {
                id: team.id,
                name: team.name,
            }),
            _ => Err(EngineError::NotFound(format!("team {named}"))),
        }
    }

    pub async fn versions(&self, principal: &Principal, id: &str) -> Result<Vec<VersionRecord>> {
        let record = self.workflow(principal, id).await?;
        Ok(self.store.list_versions(&record.id).await?)
    }

    /// Gives the workflow a new hook token: the old URL stops working at once.
    pub async fn rotate_hook_token(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<WorkflowRecord> {
        principal.require(Role::Developer)?;
        let mut record = self.workflow(principal, id).await?;
        let team = self.team_ref(principal, &record.team_id).await?;
        record.hook_token = generate_hook_token();
        record.updated_at = now_ms();
        let entry = principal.audit(
            AuditAction::TokenRotated,
            Some(&team),
            Some(&record),
            "hook token rotated: the old hook URL stops working",
        );
        self.store
            .update_workflow_audited(&record, &[entry])
            .await?;
        self.cache.invalidate(&record.id);
        Ok(record)
    }

    /// The current settings (unmasked: the caller masks what it shows).
    pub async fn settings(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(WorkflowRecord, Settings)> {
        let record = self.workflow(principal, id).await?;
        let settings = self
            .cache
            .workflow_settings(self.store.as_ref(), &record.id)
            .await?;
        let current = settings.current(self.store.as_ref()).await?;
        Ok((record, current))
    }

    /// Replaces all settings. A secret key sent with the mask (`****`, as every answer shows it)
    /// keeps its current value, so that settings read, edited and written back keep their secrets.
    pub async fn replace_settings(
        &self,
        principal: &Principal,
        id: &str,
        mut settings: Settings,
    ) -> Result<(WorkflowRecord, Settings)> {
        principal.require(Role::Developer)?;
        let record = self.workflow(principal, id).await?;
        let team = self.team_ref(principal, &record.team_id).await?;
        let stored = self
            .cache
            .workflow_settings(self.store.as_ref(), &record.id)
            .await?;
        let current = stored.current(self.store.as_ref()).await?;
        for key in &record.secret_keys {
            if let (Some(sent), Some(kept)) = (settings.get_mut(key), current.get(key)) {
                if is_mask(sent) {
                    *sent = kept.clone();
                }
            }
        }
        let after = stored
            .replace(self.store.as_ref(), &self.writer, settings, |change| {
                settings_entries(principal, &team, &record, change)
            })
            .await?;
        Ok((record, after))
    }

    /// Merges settings: keys with a `null` value are deleted, the others set; a secret key sent
    /// with the mask (`****`) is left as it is.
    pub async fn patch_settings(
        &self,
        principal: &Principal,
        id: &str,
        patch: Settings,
    ) -> Result<(WorkflowRecord, Settings)> {
        principal.require(Role::Developer)?;
        let record = self.workflow(principal, id).await?;
        let team = self.team_ref(principal, &record.team_id).await?;
        let stored = self
            .cache
            .workflow_settings(self.store.as_ref(), &record.id)
            .await?;
        let mut change = SettingsChange::default();
        for (key, value) in patch {
            if is_mask(&value) && record.secret_keys.contains(&key) {
                continue;
            }
            if value.is_null() {
                change.removed.push(key);
            } else {
                change.changed.insert(key, value);
            }
        }
        let after = stored
            .patch(self.store.as_ref(), &self.writer, change, |change| {
                settings_entries(principal, &team, &record, change)
            })
            .await?;
        Ok((record, after))
    }

    pub async fn executions(
        &self,
        principal: &Principal,
        workflow_id: &str,
        status: Option<ExecutionStatus>,
        limit: u32,
        before_id: Option<String>,
    ) -> Result<Vec<ExecutionRecord>> {
        let record = self.workflow(principal, workflow_id).await?;
        Ok(self
            .store
            .list_executions(&ExecutionQuery {
                workflow_id: Some(record.id),
                status,
                before_id,
                limit,
                ..ExecutionQuery::default()
            })
            .await?)
    }

    /// One execution of the principal's team, with its workflow.
    pub async fn execution(
        &self,
        principal: &Principal,
        id: &str,
    ) -> Result<(ExecutionRecord, WorkflowRecord)> {
        let not_found = || EngineError::NotFound(format!("execution {id}"));
        let record = match self.store.execution(id).await? {
            Some(record) => record,
            // A refusal is answered before its record is committed (under overload the caller
            // must not wait on the disk): an id just handed out is there once the queue is.
            None => {
                self.flush().await;
                self.store.execution(id).await?.ok_or_else(not_found)?
            }
        };
        let workflow = self
            .workflow(principal, &record.workflow_id)
            .await
            .map_err(|_| not_found())?;
        Ok((record, workflow))
    }

    /// Runs a workflow now (`trigger: manual`); for catch, `request` becomes `_request` (a pull
    /// workflow takes none). The run goes on to its end if the caller stops waiting.
    pub async fn run_now(
        self: &Arc<Self>,
        principal: &Principal,
        id: &str,
        request: Option<PyValue>,
    ) -> Result<(Report, WorkflowRecord)> {
        principal.require(Role::Developer)?;
        let record = self.workflow(principal, id).await?;
        if record.mode == Mode::Pull && request.is_some() {
            return Err(EngineError::Invalid(
                "request: a pull workflow is called as workflow(settings), without a request"
                    .into(),
            ));
        }
        // A run changes no stored state but its execution record, written when it ends: the
        // request to run is recorded as it is made.
        let team = self.team_ref(principal, &record.team_id).await?;
        let entry = principal.audit(
            AuditAction::ManualRun,
            Some(&team),
            Some(&record),
            "run started by hand",
        );
        self.store.append_audit(&entry).await?;
        let hot = self
            .cache
            .load_by_id(self.store.as_ref(), &record.id)
            .await?;
        if record.mode == Mode::Pull {
            // Runs of a pull workflow never overlap, whoever starts them.
            let execution = claimable_record(&hot, Trigger::Manual, None);
            let claim = RunClaim {
                execution: execution.clone(),
                advance: None,
                skip_warning: None,
            };
            return match self.store.claim_run(&claim).await? {
                ClaimOutcome::Started => {
                    let run = self.run_claimed_detached(hot.clone(), execution);
                    let report = run.report().await?;
                    Ok((report, hot.record.clone()))
                }
                _ => Err(EngineError::Busy(
                    "a run of this workflow is going: runs of a pull workflow never overlap".into(),
                )),
            };
        }
        let run = self.execute_detached(hot.clone(), Trigger::Manual, request, ());
        let report = run.report().await?;
        Ok((report, hot.record.clone()))
    }

    async fn check_code(&self, runtime: &str, code: &str, mode: Mode) -> Result<()> {
        if code.len() > self.config.max_code_bytes {
            return Err(EngineError::Invalid(format!(
                "code is larger than the {}-byte limit",
                self.config.max_code_bytes
            )));
        }
        let runtime = self
            .runtimes
            .get(runtime)
            .unwrap_or_else(|| self.runtimes.default_runtime());
        match runtime.validate(code, mode).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(EngineError::InvalidCode {
                message: error.message,
                line: error.line,
                column: error.column,
            }),
            Err(error) => Err(EngineError::Runtime(error.to_string())),
        }
    }

    fn check_runtime(&self, runtime: Option<&str>) -> Result<String> {
        match runtime {
            None => Ok(self.runtimes.default_runtime().name().to_string()),
            Some(name) if self.runtimes.get(name).is_some() => Ok(name.to_string()),
            Some(name) => Err(EngineError::Invalid(format!(
                "runtime: unknown runtime {name:?}: this server has {}",
                self.runtimes.names()
            ))),
        }
    }

    fn check_timeout(&self, timeout_s: Option<u32>) -> Result<u32> {
        let value = timeout_s.unwrap_or(limits::DEFAULT_TIMEOUT_S.min(self.config.max_timeout_s));
        if value == 0 || value > self.config.max_timeout_s {
            return Err(EngineError::Invalid(format!(
                "timeout_s must be between 1 and {} (the server's maximum)",
                self.config.max_timeout_s
            )));
        }
        Ok(value)
    }

    /// A workflow's own egress exceptions, parsed and checked against what this server lets a
    /// workflow open.
    /// The error handler named by `on_failure`: a catch workflow of the team `team_id` other
    /// than the workflow `own_name` itself.
    async fn check_on_failure(
        &self,
        team_id: &str,
        own_name: &str,
        on_failure: Option<&str>,
    ) -> Result<Option<String>> {
        let Some(name) = on_failure else {
            return Ok(None);
        };
        if name == own_name {
            return Err(EngineError::Invalid(
                "on_failure: a workflow cannot be its own error handler".into(),
            ));
        }
        let handler = self
            .store
            .workflow_by_name(team_id, name)
            .await?
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "on_failure: no workflow named {name:?} in this team"
                ))
            })?;
        if handler.mode != Mode::Catch {
            return Err(EngineError::Invalid(format!(
                "on_failure: {name:?} is a pull workflow; an error handler takes the alert as _request, so it must be a catch workflow"
            )));
        }
        Ok(Some(handler.name))
    }

    fn check_egress_allow(&self, entries: &[String]) -> Result<Vec<EgressRule>> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let ceiling = self.runtimes.workflow_egress_ceiling().map_err(|why| {
            EngineError::Invalid(format!(
                "egress_allow: this server cannot keep an egress exception to one workflow ({why})"
            ))
        })?;
        check_workflow_exceptions(entries, ceiling)
            .map_err(|error| EngineError::Invalid(format!("egress_allow: {error}")))
    }

    /// Stops every warm instance of `workflow` (a version being built has one too, its import
    /// check's): the next execution starts a fresh one.
    fn stop_instances_of(&self, workflow: &WorkflowRecord) {
        if let Some(runtime) = self.runtimes.get(&workflow.runtime) {
            runtime.forget_where(|key| crate::hot::is_version_key_of(key, &workflow.id));
        }
    }

    fn check_memory(&self, memory_mb: Option<u32>) -> Result<u32> {
        let value = memory_mb.unwrap_or(limits::DEFAULT_MEMORY_MB.min(self.config.max_memory_mb));
        if value < limits::MIN_MEMORY_MB || value > self.config.max_memory_mb {
            return Err(EngineError::Invalid(format!(
                "memory_mb must be between {} and {} (the server's maximum)",
                limits::MIN_MEMORY_MB,
                self.config.max_memory_mb
            )));
        }
        Ok(value)
    }

    /// The workflow a hook URL names, for the hot path.
    pub async fn hook_target(
        &self,
        team: &str,
        workflow: &str,
    ) -> Result<Option<Arc<crate::hot::HotWorkflow>>> {
        self.cache
            .load_by_name(self.store.as_ref(), team, workflow)
            .await
    }
}

/// The entries a patch records besides a deploy: paused or resumed, and the other fields it
/// sets (by name; values are not recorded, they may be secret). `before` is the record as it was.
fn patch_entries(
    principal: &Principal,
    team: &TeamRef,
    before: &WorkflowRecord,
    patch: &WorkflowPatch,
) -> Vec<flowd_store::AuditEntry> {
    let mut entries = Vec::new();
    match patch.enabled {
        Some(false) if before.enabled => entries.push(principal.audit(
            AuditAction::WorkflowPaused,
            Some(team),
            Some(before),
            "paused",
        )),
        Some(true) if !before.enabled => entries.push(principal.audit(
            AuditAction::WorkflowResumed,
            Some(team),
            Some(before),
            "resumed",
        )),
        _ => {}
    }
    let fields: Vec<&str> = [
        ("name", patch.name.is_some()),
        ("secrets", patch.secrets.is_some()),
        ("env", patch.env.is_some()),
        ("schedule", patch.schedule.is_some()),
        ("timeout_s", patch.timeout_s.is_some()),
        ("memory_mb", patch.memory_mb.is_some()),
        ("max_concurrency", patch.max_concurrency.is_some()),
        ("isolation", patch.isolation.is_some()),
        ("verify", patch.verify.is_some()),
        ("idempotency_header", patch.idempotency_header.is_some()),
        ("alerts", patch.alerts.is_some()),
        ("on_failure", patch.on_failure.is_some()),
        ("response", patch.response.is_some()),
        ("retry", patch.retry.is_some()),
        ("store_requests", patch.store_requests.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, sent)| sent.then_some(field))
    .collect();
    if !fields.is_empty() {
        entries.push(principal.audit(
            AuditAction::WorkflowPatched,
            Some(team),
            Some(before),
            format!("changed {}", fields.join(", ")),
        ));
    }
    entries
}

/// What a deploy brought, for its entry.
fn deploy_summary(patch: &WorkflowPatch) -> &'static str {
    match (patch.code.is_some(), patch.requirements.is_some()) {
        (true, true) => "new code and requirements",
        (true, false) => "new code",
        _ => "new requirements",
    }
}

/// A new version, stored as `building` until its environment is built and its module imported.
fn building_version(
    workflow_id: &str,
    number: u32,
    code: String,
    requirements: &Requirements,
    now: i64,
) -> VersionRecord {
    VersionRecord {
        workflow_id: workflow_id.to_string(),
        version: number,
        code,
        requirements: requirements.lines().to_vec(),
        state: VersionState::Building,
        build_log: String::new(),
        error: None,
        environment: None,
        created_at: now,
        settled_at: None,
    }
}

/// Whether a settings value sent to the API is the mask that API answers show for a secret.
fn is_mask(value: &serde_json::Value) -> bool {
    value.as_str() == Some(flowd_core::settings::MASK)
}

fn parse_name(name: &str) -> Result<Name> {
    Name::parse(name).map_err(|e| EngineError::Invalid(e.to_string()))
}

fn check_alerts(alerts: Option<&AlertPolicy>) -> Result<()> {
    match alerts {
        Some(policy) => policy
            .check()
            .map_err(|error| EngineError::Invalid(error.to_string())),
        None => Ok(()),
    }
}

fn check_retention(retention: Option<&Retention>) -> Result<()> {
    match retention {
        Some(retention) => retention
            .check()
            .map_err(|error| EngineError::Invalid(error.to_string())),
        None => Ok(()),
    }
}

fn check_retry(retry: Option<&RetryPolicy>) -> Result<()> {
    match retry {
        Some(retry) => retry
            .check()
            .map_err(|error| EngineError::Invalid(error.to_string())),
        None => Ok(()),
    }
}

fn check_max_concurrency(max: Option<u32>) -> Result<()> {
    match max {
        Some(0) => Err(EngineError::Invalid(
            "max_concurrency must be at least 1 (leave it out for no limit)".into(),
        )),
        _ => Ok(()),
    }
}

fn check_isolation(_isolation: Option<Isolation>) -> Result<()> {
    // Both modes are available: a fork per execution, or executions inside the warm instance.
    Ok(())
}

/// Largest environment (names and values) a workflow may set.
const MAX_ENV_BYTES: usize = 64 << 10;

/// Environment variable names are `[A-Za-z_][A-Za-z0-9_]*`; values hold no NUL.
fn check_env(env: BTreeMap<String, String>) -> Result<BTreeMap<String, String>> {
    let mut size = 0;
    for (name, value) in &env {
        let valid_name = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(EngineError::Invalid(format!(
                "env: {name:?} is not a valid environment variable name (letters, digits and _, not starting with a digit)"
            )));
        }
        if value.contains('\0') {
            return Err(EngineError::Invalid(format!(
                "env: the value of {name} holds a NUL character"
            )));
        }
        size += name.len() + value.len();
    }
    if size > MAX_ENV_BYTES {
        return Err(EngineError::Invalid(format!(
            "env: {size} bytes is over the {MAX_ENV_BYTES}-byte limit"
        )));
    }
    Ok(env)
}

fn check_secrets(secrets: Vec<String>) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for key in secrets {
        if key.is_empty() {
            return Err(EngineError::Invalid("secrets holds an empty key".into()));
        }
        if !out.contains(&key) {
            out.push(key);
        }
    }
    Ok(out)
}

/// Parses the schedule at the edge: a pull workflow needs one, a catch workflow has none.
fn check_schedule(mode: Mode, schedule: Option<&serde_json::Value>) -> Result<Option<Schedule>> {
    match (mode, schedule) {
        (Mode::Catch, Some(_)) => Err(EngineError::Invalid(
            "schedule: a catch workflow runs on its hook URL and has no schedule".into(),
        )),
        (Mode::Catch, None) => Ok(None),
        (Mode::Pull, None) => Err(EngineError::Invalid(
            "schedule: a pull workflow needs a schedule, {\"every\": \"5m\"} or {\"cron\": \"*/5 * * * *\", \"timezone\": \"Europe/Paris\"}".into(),
        )),
        (Mode::Pull, Some(value)) => Schedule::parse(value)
            .map(Some)
            .map_err(|error| EngineError::Invalid(format!("schedule: {error}"))),
    }
}

/// The schedule a workflow record holds (stored in its canonical form).
pub fn stored_schedule(record: &WorkflowRecord) -> Option<Schedule> {
    let value: serde_json::Value = serde_json::from_str(record.schedule.as_deref()?).ok()?;
    Schedule::parse(&value).ok()
}

/// When a schedule set (or resumed) at `now` first fires.
fn first_fire_time(schedule: Option<&Schedule>, enabled: bool, now: i64) -> Option<i64> {
    match schedule {
        Some(schedule) if enabled => schedule.next_after(now, now),
        _ => None,
    }
}
