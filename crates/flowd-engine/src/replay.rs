//! Replays of stored requests: one execution's request run again as a new execution
//! (`trigger: replay`, `replay_of` its original), on the active version or a chosen one; and
//! bulk replays of a workflow's executions by status and time range, run in the background one
//! at a time with a pause between, their progress kept in memory.
//!
//! A replay is made by a developer of the workflow's team: the signature check and idempotency
//! keys, which authenticate and deduplicate a sender's deliveries, do not apply, and its response
//! is recorded only (the original sender is never called).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use flowd_core::access::{AuditAction, Role};
use flowd_core::request::{build_request, IncomingRequest};
use flowd_core::workflow::{ExecutionStatus, Trigger, VersionState};
use flowd_store::{ExecutionQuery, ExecutionRecord, RequestParts, WorkflowRecord};

use crate::auth::Principal;
use crate::clock::now_ms;
use crate::delivery::{CallDetails, ReceivedRequest, Replay};
use crate::error::{EngineError, Result};
use crate::hot::{version_key, version_requirements, ActiveVersion};
use crate::{Engine, Report};

/// The most executions one bulk replay runs, and how many when it does not say.
pub const MAX_BULK_REPLAY: u32 = 1000;
pub const DEFAULT_BULK_REPLAY: u32 = 100;
/// The pause between two replays of a bulk replay (which runs one at a time), so that it never
/// floods the workflow.
pub const BULK_REPLAY_PAUSE: Duration = Duration::from_millis(50);
/// Bulk replays kept in memory: the oldest finished one goes when another starts beyond this.
const KEPT_JOBS: usize = 100;

/// Why an execution has no stored request to replay.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoStoredRequest {
    #[error("execution {0} is not a hook execution ({1}): only hook calls have a stored request")]
    NotAHookCall(String, Trigger),
    #[error("the request of execution {0} was not stored: {1}")]
    NotStored(String, String),
    #[error(
        "the request of execution {0} is not kept (recorded before requests were stored, or removed)"
    )]
    NotKept(String),
}

impl NoStoredRequest {
    /// The reason, as a stable word.
    pub fn reason(&self) -> &'static str {
        match self {
            NoStoredRequest::NotAHookCall(..) => "not_a_hook_execution",
            NoStoredRequest::NotStored(_, why) if why == crate::stored_requests::OPTED_OUT => {
                "store_requests_false"
            }
            NoStoredRequest::NotStored(..) => "over_size_cap",
            NoStoredRequest::NotKept(_) => "not_kept",
        }
    }
}

/// What a bulk replay replays: a workflow's executions with one of `statuses` (all when empty),
/// started in `[since, until)`, oldest first, at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct BulkReplay {
    pub statuses: Vec<ExecutionStatus>,
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: Option<u32>,
    pub version: Option<u32>,
}

/// A bulk replay's progress.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplayJob {
    pub id: String,
    pub team_id: String,
    pub workflow_id: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    /// Executions matching the request.
    pub matched: u32,
    pub replayed: u32,
    /// Originals that could not be replayed (no stored request, …), each with why.
    pub failed: Vec<(String, String)>,
    /// The new executions, in the order of their originals.
    pub executions: Vec<String>,
}

/// The bulk replays of this node, in memory: a restart forgets them (the replays they made are
/// executions like any other).
#[derive(Default)]
pub struct ReplayJobs {
    jobs: Mutex<VecDeque<Arc<Mutex<ReplayJob>>>>,
}

impl ReplayJobs {
    fn add(&self, job: ReplayJob) -> Arc<Mutex<ReplayJob>> {
        let job = Arc::new(Mutex::new(job));
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        if jobs.len() >= KEPT_JOBS {
            let finished = jobs.iter().position(|job| lock(job).finished_at.is_some());
            if let Some(index) = finished {
                jobs.remove(index);
            }
        }
        jobs.push_back(job.clone());
        job
    }

    fn get(&self, id: &str) -> Option<ReplayJob> {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.iter()
            .map(|job| lock(job).clone())
            .find(|job| job.id == id)
    }
}

fn lock(job: &Mutex<ReplayJob>) -> std::sync::MutexGuard<'_, ReplayJob> {
    job.lock().unwrap_or_else(|p| p.into_inner())
}

impl Engine {
    /// The request stored with an execution of the principal's team (developer role: it is
    /// the personal data a workflow received).
    pub async fn stored_request(
        &self,
        principal: &Principal,
        execution_id: &str,
    ) -> Result<(ExecutionRecord, RequestParts)> {
        principal.require(Role::Developer)?;
        let (record, _) = self.execution(principal, execution_id).await?;
        let request = self.request_of(&record).await?;
        Ok((record, request))
    }

    /// Runs the request stored with an execution of the principal's team again, as a new
    /// execution, on the active version or `version`; waits for its end.
    pub async fn replay(
        self: &Arc<Self>,
        principal: &Principal,
        execution_id: &str,
        version: Option<u32>,
    ) -> Result<Report> {
        principal.require(Role::Developer)?;
        let (original, workflow) = self.execution(principal, execution_id).await?;
        let request = self.request_of(&original).await?;
        let version = self.replay_version(&workflow, version).await?;
        let team = self.team_ref(principal, &workflow.team_id).await?;
        let entry = principal.audit(
            AuditAction::Replayed,
            Some(&team),
            Some(&workflow),
            format!("replayed execution {}", original.id),
        );
        self.store.append_audit(&entry).await?;
        self.run_replay(&workflow, &original, request, version)
            .await
    }

    /// Starts a bulk replay of a workflow of the principal's team in the background.
    pub async fn start_bulk_replay(
        self: &Arc<Self>,
        principal: &Principal,
        workflow_id: &str,
        bulk: BulkReplay,
    ) -> Result<ReplayJob> {
        principal.require(Role::Developer)?;
        let workflow = self.workflow(principal, workflow_id).await?;
        let limit = bulk.limit.unwrap_or(DEFAULT_BULK_REPLAY);
        if !(1..=MAX_BULK_REPLAY).contains(&limit) {
            return Err(EngineError::Invalid(format!(
                "limit must be from 1 to {MAX_BULK_REPLAY}, not {limit}"
            )));
        }
        if let (Some(since), Some(until)) = (bulk.since, bulk.until) {
            if since >= until {
                return Err(EngineError::Invalid(
                    "since must be before until".to_string(),
                ));
            }
        }
        let version = self.replay_version(&workflow, bulk.version).await?;
        let matched = self.matching_executions(&workflow, &bulk, limit).await?;
        let team = self.team_ref(principal, &workflow.team_id).await?;
        let entry = principal.audit(
            AuditAction::Replayed,
            Some(&team),
            Some(&workflow),
            format!("bulk replay of {} executions", matched.len()),
        );
        self.store.append_audit(&entry).await?;
        let job = ReplayJob {
            id: uuid::Uuid::now_v7().to_string(),
            team_id: workflow.team_id.clone(),
            workflow_id: workflow.id.clone(),
            started_at: now_ms(),
            finished_at: None,
            matched: matched.len() as u32,
            replayed: 0,
            failed: Vec::new(),
            executions: Vec::new(),
        };
        let shared = self.replays.add(job.clone());
        let engine = self.clone();
        tokio::spawn(async move {
            engine.run_bulk(&workflow, matched, version, &shared).await;
            lock(&shared).finished_at = Some(now_ms());
        });
        Ok(job)
    }

    /// A bulk replay of the principal's team, as it is now.
    pub fn replay_job(&self, principal: &Principal, id: &str) -> Result<ReplayJob> {
        self.replays
            .get(id)
            .filter(|job| principal.sees_team(&job.team_id))
            .ok_or_else(|| EngineError::NotFound(format!("replay {id}")))
    }

    async fn run_bulk(
        self: &Arc<Self>,
        workflow: &WorkflowRecord,
        originals: Vec<ExecutionRecord>,
        version: Option<Arc<ActiveVersion>>,
        job: &Mutex<ReplayJob>,
    ) {
        for (index, original) in originals.iter().enumerate() {
            if index > 0 {
                tokio::time::sleep(BULK_REPLAY_PAUSE).await;
            }
            let outcome = match self.request_of(original).await {
                Ok(request) => {
                    self.run_replay(workflow, original, request, version.clone())
                        .await
                }
                Err(error) => Err(error),
            };
            let mut job = lock(job);
            match outcome {
                // A refused replay is an execution too (`skipped`, with why).
                Ok(report) => {
                    job.replayed += 1;
                    job.executions.push(report.record.id);
                }
                Err(error) => job.failed.push((original.id.clone(), error.to_string())),
            }
        }
    }

    /// The workflow's executions a bulk replay runs again, oldest first.
    async fn matching_executions(
        &self,
        workflow: &WorkflowRecord,
        bulk: &BulkReplay,
        limit: u32,
    ) -> Result<Vec<ExecutionRecord>> {
        let statuses: Vec<Option<ExecutionStatus>> = if bulk.statuses.is_empty() {
            vec![None]
        } else {
            bulk.statuses.iter().copied().map(Some).collect()
        };
        let mut matched = Vec::new();
        for status in statuses {
            let query = ExecutionQuery {
                workflow_id: Some(workflow.id.clone()),
                status,
                limit,
                started_since: bulk.since,
                started_before: bulk.until,
                oldest_first: true,
                ..ExecutionQuery::default()
            };
            matched.extend(self.store.list_executions(&query).await?);
        }
        matched.sort_by(|a, b| a.id.cmp(&b.id));
        matched.dedup_by(|a, b| a.id == b.id);
        matched.truncate(limit as usize);
        Ok(matched)
    }

    /// The request stored with `record`, or why there is none.
    async fn request_of(&self, record: &ExecutionRecord) -> Result<RequestParts> {
        if !matches!(record.trigger, Trigger::Catch | Trigger::Replay) {
            return Err(NoStoredRequest::NotAHookCall(record.id.clone(), record.trigger).into());
        }
        if let Some(why) = &record.request_not_stored {
            return Err(NoStoredRequest::NotStored(record.id.clone(), why.clone()).into());
        }
        self.store
            .stored_request(&record.id)
            .await?
            .ok_or_else(|| NoStoredRequest::NotKept(record.id.clone()).into())
    }

    /// The version a replay runs: `None` for the active one; else that version, ready.
    async fn replay_version(
        &self,
        workflow: &WorkflowRecord,
        version: Option<u32>,
    ) -> Result<Option<Arc<ActiveVersion>>> {
        let Some(number) = version else {
            return Ok(None);
        };
        let record = self
            .store
            .version(&workflow.id, number)
            .await?
            .ok_or_else(|| {
                EngineError::Invalid(format!(
                    "version: workflow {} has no version {number}",
                    workflow.name
                ))
            })?;
        if record.state != VersionState::Ready {
            return Err(EngineError::Invalid(format!(
                "version: version {number} of workflow {} is {}, not ready",
                workflow.name, record.state
            )));
        }
        Ok(Some(Arc::new(ActiveVersion {
            number,
            code: Arc::from(record.code.as_str()),
            requirements: version_requirements(&record)?,
            version_key: version_key(workflow, number),
        })))
    }

    /// Runs `request` (stored with `original`) as a new execution of `workflow`.
    async fn run_replay(
        self: &Arc<Self>,
        workflow: &WorkflowRecord,
        original: &ExecutionRecord,
        request: RequestParts,
        version: Option<Arc<ActiveVersion>>,
    ) -> Result<Report> {
        let hot = self
            .cache
            .load_by_id(self.store.as_ref(), &workflow.id)
            .await?;
        let body = Bytes::from(request.body);
        let value = build_request(&IncomingRequest {
            headers: request
                .headers
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_slice()))
                .collect(),
            query: Some(request.query_string.as_str()).filter(|query| !query.is_empty()),
            body: body.clone(),
        })
        .map_err(|error| {
            EngineError::Invalid(format!(
                "the stored request of execution {} cannot be run: {error}",
                original.id
            ))
        })?;
        let details = CallDetails {
            request: Some(value),
            received: Some(ReceivedRequest {
                raw_body: body,
                method: request.method,
                query_string: request.query_string,
                path: request.path,
                headers: request.headers,
            }),
            claimed_key: None,
            replay: Some(Replay {
                of: original.id.clone(),
                version,
            }),
        };
        self.execute_call_detached(hot, Trigger::Replay, details, ())
            .report()
            .await
    }
}
