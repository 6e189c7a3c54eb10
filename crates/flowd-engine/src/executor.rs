//! Running one execution end to end: admission, the settings snapshot, the run in the Python
//! runtime, the mapping of its outcome to a response, and one commit of the execution record with
//! the settings change.

use std::sync::Arc;
use std::time::Duration;

use flowd_core::response::{self, ReturnMapping, REFUSED_STATUS};
use flowd_core::settings::{self, Settings, SettingsChange};
use flowd_core::workflow::{ExecutionStatus, Mode, Trigger};
use flowd_core::PyValue;
use flowd_runtime::{ErrorInfo, Job, JobContext, Outcome, SettingsError};
use flowd_store::{ExecutionError, ExecutionRecord, StoreWrite, StoredRequest, WorkflowRecord};

use tracing::Instrument;

use crate::clock::now_ms;
use crate::delivery::CallDetails;
use crate::detached::{Caller, CALLER_LEFT_WARNING};
use crate::hot::{ActiveVersion, HotWorkflow, WORKFLOW_QUEUE_TIMEOUT};
use crate::metrics;
use crate::refusal::{Refusal, Saturation};
use crate::settings_cell::NotSaved;
use crate::workflow_limit::LimitedWorkflow;
use crate::Engine;

/// What the caller of a hook gets.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    fn json(status: u16, body: String) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
        }
    }
}

/// A finished execution: its record, and the reply for a hook caller — or, for an execution
/// that was not run or not saved, why.
#[derive(Debug, Clone)]
pub struct Report {
    pub record: ExecutionRecord,
    pub reply: Result<Reply, Refusal>,
}

impl Engine {
    /// Runs `hot` once. Refused before running (paused, saturated): a `skipped` record is
    /// kept and the report carries the refusal. Its reply is `Ok` only once its record and
    /// settings change are committed; else the report carries [`Refusal::NotSaved`].
    pub async fn execute(
        &self,
        hot: Arc<HotWorkflow>,
        trigger: Trigger,
        request: Option<PyValue>,
    ) -> Report {
        let call = CallDetails {
            request,
            ..CallDetails::default()
        };
        self.execute_for(hot, trigger, call, &Caller::default())
            .await
    }

    /// [`Engine::execute`] for a call with `details`, for `caller`: its record says whether the
    /// caller left before the end. An idempotency key the call claimed is released when its
    /// execution is refused or not saved (the sender's retry then runs).
    pub(crate) async fn execute_for(
        &self,
        hot: Arc<HotWorkflow>,
        trigger: Trigger,
        details: CallDetails,
        caller: &Caller,
    ) -> Report {
        let mut record = new_record(&hot, trigger);
        if let Some(claimed) = &details.claimed_key {
            record.id = claimed.execution_id.clone();
        }
        self.execute_record(hot, record, details, caller).await
    }

    /// [`Engine::execute`] of an execution taken from the store's queue (an asynchronous call,
    /// or a retry), as the execution and attempt it was given when it was queued; nobody waits
    /// for its answer. A paused workflow's is refused, whatever its trigger.
    pub(crate) async fn execute_queued(
        &self,
        hot: Arc<HotWorkflow>,
        queued: QueuedExecution,
        details: CallDetails,
    ) -> Report {
        let record = ExecutionRecord {
            id: queued.execution_id,
            attempt: queued.attempt,
            retry_of: queued.retry_of,
            ..new_record(&hot, queued.trigger)
        };
        let caller = Caller::default();
        if !hot.record.enabled {
            let report = self
                .skip(&hot, record, None, Refusal::Paused, &caller)
                .await;
            metrics::execution_ended(&hot, &report.record);
            return report;
        }
        self.execute_record(hot, record, details, &caller).await
    }

    /// Runs the new execution `record` for a call with `details` (refused at once when its
    /// hook's workflow is paused), recording its metrics.
    async fn execute_record(
        &self,
        hot: Arc<HotWorkflow>,
        mut record: ExecutionRecord,
        details: CallDetails,
        caller: &Caller,
    ) -> Report {
        let trigger = record.trigger;
        let claimed = details.claimed_key.clone();
        if let Some(replay) = &details.replay {
            record.replay_of = Some(replay.of.clone());
            if let Some(version) = &replay.version {
                record.version = version.number;
            }
        }
        // Stored in the commit of the record (or with the record of its refusal).
        let stored = details.received.as_ref().and_then(|received| {
            crate::stored_requests::request_to_store(
                &hot.record,
                &mut record,
                received,
                self.config.request_store_max_bytes,
            )
        });
        let span = execution_span(&hot, &record);
        let report = if trigger == Trigger::Catch && !hot.record.enabled {
            self.skip(&hot, record, stored, Refusal::Paused, caller)
                .instrument(span)
                .await
        } else {
            self.admit_and_run(hot.clone(), record, details, stored, false, caller)
                .instrument(span)
                .await
        };
        metrics::execution_ended(&hot, &report.record);
        self.alert_if_failed(&hot, &report.record);
        if let (Some(claimed), Err(_)) = (&claimed, &report.reply) {
            self.release_key(&hot.record.id, claimed);
        }
        report
    }

    /// Runs an execution whose `running` record the store already holds (a claimed pull run).
    pub async fn run_claimed(&self, hot: Arc<HotWorkflow>, record: ExecutionRecord) -> Report {
        self.run_claimed_for(hot, record, &Caller::default()).await
    }

    /// [`Engine::run_claimed`], for `caller`.
    pub(crate) async fn run_claimed_for(
        &self,
        hot: Arc<HotWorkflow>,
        record: ExecutionRecord,
        caller: &Caller,
    ) -> Report {
        let span = execution_span(&hot, &record);
        let report = self
            .admit_and_run(
                hot.clone(),
                record,
                CallDetails::default(),
                None,
                true,
                caller,
            )
            .instrument(span)
            .await;
        metrics::execution_ended(&hot, &report.record);
        self.alert_if_failed(&hot, &report.record);
        report
    }

    /// Takes an execution slot (the workflow's — across the cluster, see [`LimitedWorkflow`] —
    /// then the server's), then runs.
    async fn admit_and_run(
        &self,
        hot: Arc<HotWorkflow>,
        record: ExecutionRecord,
        details: CallDetails,
        stored: Option<StoredRequest>,
        recorded: bool,
        caller: &Caller,
    ) -> Report {
        let version = details
            .replay
            .as_ref()
            .and_then(|replay| replay.version.clone());
        let active = match (version, &hot.active) {
            (Some(version), _) => version,
            (None, Ok(active)) => active.clone(),
            (None, Err(none)) => {
                let why = none.why.clone();
                let refusal = Refusal::NoActiveVersion(why);
                return self.skip(&hot, record, stored, refusal, caller).await;
            }
        };
        let _workflow_permit = match (&hot.limiter, hot.record.max_concurrency) {
            (Some(gate), Some(limit)) => {
                let limited = LimitedWorkflow {
                    gate,
                    workflow_id: &hot.record.id,
                    limit,
                };
                let deadline = tokio::time::Instant::now() + WORKFLOW_QUEUE_TIMEOUT;
                match limited.enter(&self.store, &record.id, deadline).await {
                    Some(permit) => Some(permit),
                    None => {
                        let refusal = Refusal::Saturated(Saturation::Workflow);
                        return self.skip(&hot, record, stored, refusal, caller).await;
                    }
                }
            }
            _ => None,
        };
        let Some(_slot) = self.gate.enter().await else {
            let refusal = Refusal::Saturated(Saturation::Server);
            return self.skip(&hot, record, stored, refusal, caller).await;
        };
        let execution = Admitted { record, stored };
        self.run_admitted(hot, active, execution, details, recorded, caller)
            .await
    }

    async fn run_admitted(
        &self,
        hot: Arc<HotWorkflow>,
        active: Arc<ActiveVersion>,
        execution: Admitted,
        mut details: CallDetails,
        recorded: bool,
        caller: &Caller,
    ) -> Report {
        let Admitted { mut record, stored } = execution;
        let id = record.id.clone();
        if !recorded {
            // Time spent waiting for a slot is not part of the run.
            record.started_at = now_ms();
        }
        let started_at = record.started_at;
        let snapshot = match hot
            .settings
            .snapshot(
                self.store.as_ref(),
                &hot.record.secret_keys,
                &hot.record.env,
            )
            .await
        {
            Ok(snapshot) => snapshot,
            Err(error) => {
                let refusal = Refusal::SettingsUnreadable(error.to_string());
                return self.skip(&hot, record, stored, refusal, caller).await;
            }
        };
        let mut job = job_for(
            &hot,
            &active,
            details.request.take(),
            // A map of JSON values always serialises; no copy of the snapshot is made for it.
            serde_json::to_string(&snapshot.settings).unwrap_or_else(|_| "{}".to_string()),
        );
        job.context = Some(job_context(&hot, &record, &details));

        // Short executions are written once, at their end; a longer one is recorded as running
        // meanwhile, so that a crash leaves a trace (marked interrupted at the next start).
        let runtime = self.runtimes.get(&hot.record.runtime).cloned();
        let run = async {
            match runtime {
                Some(runtime) => runtime.execute(&job).await,
                None => self.runtime_missing(&hot.record.runtime),
            }
        };
        tokio::pin!(run);
        let execution = tokio::select! {
            execution = &mut run => execution,
            _ = tokio::time::sleep(self.config.running_record_delay), if !recorded => {
                self.writer.enqueue(vec![StoreWrite::PutExecution(record.clone())]);
                run.await
            }
        };

        let finished_at = now_ms();
        record.finished_at = Some(finished_at);
        record.duration_ms = Some(finished_at - started_at);
        let conclusion = conclude(
            execution,
            &Context {
                execution_id: &id,
                mode: hot.record.mode,
                timeout_s: hot.record.timeout_s,
                snapshot: &snapshot.settings,
                secrets: &snapshot.secrets,
            },
        );
        record.status = conclusion.status;
        record.warnings = conclusion.warnings;
        record.error = conclusion.error;
        record.logs = conclusion.logs;
        record.logs_truncated = conclusion.logs_truncated;
        // Secret settings' new values are masked in the record, as wherever it is shown: only
        // the settings themselves keep them (sealed at rest).
        record.settings_changed = conclusion
            .settings_changed
            .map(|change| change.masked(&hot.record.secret_keys));
        record.response_status = conclusion.response_status;
        if caller.has_left() {
            record.warnings.push(CALLER_LEFT_WARNING.into());
        }
        let reply = conclusion.reply;
        tracing::debug!(status = %record.status, duration_ms = record.duration_ms, "execution ran");
        // A call that claimed an idempotency key stores its response with its record.
        let completion = details
            .claimed_key
            .filter(|_| hot.record.mode == Mode::Catch)
            .map(|claimed| StoreWrite::CompleteIdempotencyKey {
                workflow_id: hot.record.id.clone(),
                key: claimed.key,
                execution_id: id.clone(),
                response: crate::idempotency::stored_response(&reply),
            });
        // After the record, which it belongs to.
        let stored = stored.map(StoreWrite::PutStoredRequest);

        let saved = match conclusion.persist {
            Some(change) => {
                // The record (its output up to a MiB) is copied before the cell is locked.
                let put_record = StoreWrite::PutExecution(record.clone());
                let workflow_id = hot.record.id.clone();
                let writes = move |change: &SettingsChange| {
                    let mut writes = vec![
                        StoreWrite::ApplySettingsChange {
                            workflow_id,
                            change: change.clone(),
                        },
                        put_record,
                    ];
                    writes.extend(stored);
                    writes.extend(completion);
                    writes
                };
                hot.settings
                    .commit_change(&self.writer, &snapshot, change, writes)
                    .await
            }
            None => {
                let mut writes = vec![StoreWrite::PutExecution(record.clone())];
                writes.extend(stored);
                writes.extend(completion);
                self.writer.commit(writes).await.map_err(NotSaved::Store)
            }
        };
        match saved {
            Ok(()) => Report {
                record,
                reply: Ok(reply),
            },
            Err(not_saved) if not_saved.workflow_gone() => {
                // The workflow was deleted while it ran: its records went with it.
                tracing::warn!(
                    execution = %id,
                    error = %not_saved,
                    "the execution record was not saved: its workflow is gone"
                );
                Report {
                    record,
                    reply: Ok(reply),
                }
            }
            Err(not_saved) => self.not_saved(hot.record.mode, record, not_saved),
        }
    }

    /// An execution whose record and settings change the store could not commit: the caller is
    /// told so instead of the execution's answer, and a record saying what happened is queued
    /// (without the settings change), to be kept if the store takes it. A successful execution
    /// becomes an error (`NotSaved`); a failed one keeps its own error, with a warning.
    fn not_saved(&self, mode: Mode, mut record: ExecutionRecord, not_saved: NotSaved) -> Report {
        tracing::error!(
            execution = %record.id,
            error = %not_saved,
            "the execution record could not be saved; the caller is answered store_unavailable"
        );
        let refusal = Refusal::NotSaved(not_saved.to_string());
        let message = format!("{refusal}; nothing of its settings changes was saved");
        if record.status == ExecutionStatus::Success {
            record.status = ExecutionStatus::Error;
            record.error = Some(ExecutionError {
                kind: "NotSaved".into(),
                message,
                traceback: None,
            });
        } else {
            record.warnings.push(message);
        }
        record.settings_changed = None;
        record.response_status = (mode == Mode::Catch).then_some(REFUSED_STATUS);
        self.writer
            .enqueue(vec![StoreWrite::PutExecution(record.clone())]);
        Report {
            record,
            reply: Err(refusal),
        }
    }

    /// Starts the warm instance of a workflow's current version ahead of a run, reserved for
    /// that run (see [`flowd_runtime::Runtime::prewarm`]).
    pub async fn prewarm(&self, hot: &HotWorkflow, reservation: flowd_runtime::Reservation) {
        if let (Ok(active), Some(runtime)) = (&hot.active, self.runtimes.get(&hot.record.runtime)) {
            runtime
                .prewarm(&job_for(hot, active, None, "{}".to_string()), reservation)
                .await;
        }
    }

    /// The execution of a workflow whose runtime this server does not have (any more).
    fn runtime_missing(&self, name: &str) -> flowd_runtime::Execution {
        flowd_runtime::Execution {
            outcome: Outcome::Failed(ErrorInfo::new(
                "RuntimeUnavailable",
                format!(
                    "the workflow's runtime {name} is not available on this server (it has {})",
                    self.runtimes.names()
                ),
            )),
            logs: Vec::new(),
            logs_truncated: false,
            duration: Duration::ZERO,
        }
    }

    /// Records an execution that did not run, and reports why.
    async fn skip(
        &self,
        hot: &HotWorkflow,
        mut record: ExecutionRecord,
        stored: Option<StoredRequest>,
        refusal: Refusal,
        caller: &Caller,
    ) -> Report {
        let now = now_ms();
        record.status = ExecutionStatus::Skipped;
        record.finished_at = Some(now);
        record.duration_ms = Some(now - record.started_at);
        record.response_status = (hot.record.mode == Mode::Catch).then_some(REFUSED_STATUS);
        record.warnings.push(format!("not run: {refusal}"));
        if caller.has_left() {
            record.warnings.push(CALLER_LEFT_WARNING.into());
        }
        // Refusals are recorded without waiting: under overload, the caller must not wait on the
        // disk to be told to come back later. The request goes with it: a refused call can be
        // replayed.
        let mut writes = vec![StoreWrite::PutExecution(record.clone())];
        writes.extend(stored.map(StoreWrite::PutStoredRequest));
        self.writer.enqueue(writes);
        Report {
            record,
            reply: Err(refusal),
        }
    }
}

/// An execution that has its slot: its record, and the request to store with it.
struct Admitted {
    record: ExecutionRecord,
    stored: Option<StoredRequest>,
}

/// What [`conclude`] needs to know about the execution besides its outcome.
pub struct Context<'a> {
    pub execution_id: &'a str,
    pub mode: Mode,
    pub timeout_s: u32,
    /// The settings the execution started from.
    pub snapshot: &'a Settings,
    /// Texts to mask in output and errors.
    pub secrets: &'a [String],
}

/// How an execution ended, in the contract's terms.
#[derive(Debug, Clone)]
pub struct Conclusion {
    pub status: ExecutionStatus,
    pub reply: Reply,
    /// The HTTP status sent (catch mode).
    pub response_status: Option<u16>,
    pub warnings: Vec<String>,
    pub error: Option<ExecutionError>,
    /// Captured output, secrets masked.
    pub logs: String,
    pub logs_truncated: bool,
    /// What the execution changed in its copy of the settings (success only).
    pub settings_changed: Option<SettingsChange>,
    /// The change to persist: non-empty, and only for an execution that returned with valid
    /// settings.
    pub persist: Option<SettingsChange>,
}

/// Applies the contract to what the runtime reports: the status, the reply to the caller, the
/// warnings and error to record, the settings change to persist. The server's executions and
/// `flowd run` share it, so a local run answers exactly what the server would.
pub fn conclude(execution: flowd_runtime::Execution, context: &Context<'_>) -> Conclusion {
    let id = context.execution_id;
    let logs = String::from_utf8_lossy(&execution.logs);
    let mut conclusion = Conclusion {
        status: ExecutionStatus::Success,
        reply: Reply::json(200, response::default_success_body(id)),
        response_status: None,
        warnings: Vec::new(),
        error: None,
        logs: settings::mask_text(&logs, context.secrets),
        logs_truncated: execution.logs_truncated,
        settings_changed: None,
        persist: None,
    };
    match execution.outcome {
        Outcome::Returned {
            value,
            warning,
            settings,
        } => {
            match parse_settings(settings) {
                Ok(after) => {
                    let diff = SettingsChange::between(context.snapshot, &after);
                    conclusion.settings_changed = Some(diff.clone());
                    if !diff.is_empty() {
                        conclusion.persist = Some(diff);
                    }
                }
                Err(invalid) => {
                    conclusion.status = ExecutionStatus::Error;
                    conclusion.error = Some(ExecutionError {
                        kind: "InvalidSettings".into(),
                        message: format!(
                            "{invalid}: nothing of this execution's settings changes was saved"
                        ),
                        traceback: None,
                    });
                }
            }
            let mapping = match warning {
                Some(warning) => ReturnMapping::Default {
                    warning: Some(warning),
                },
                None if context.mode == Mode::Catch => response::map_return(&value),
                None => ReturnMapping::Default { warning: None },
            };
            match mapping {
                ReturnMapping::Custom(custom) => {
                    conclusion.warnings.extend(custom.warning);
                    conclusion.reply = Reply {
                        status: custom.status,
                        headers: custom.headers,
                        body: custom.body.into_bytes(),
                    }
                }
                ReturnMapping::Default { warning } => {
                    if context.mode == Mode::Catch {
                        conclusion.warnings.extend(warning);
                    }
                }
            }
        }
        Outcome::Raised(error) | Outcome::InitFailed(error) | Outcome::Failed(error) => {
            conclusion.status = ExecutionStatus::Error;
            conclusion.reply =
                Reply::json(500, response::failure_body("error", id, Some(&error.kind)));
            conclusion.error = Some(recorded_error(error, context.secrets));
        }
        Outcome::Timeout => {
            conclusion.status = ExecutionStatus::Timeout;
            conclusion.error = Some(ExecutionError {
                kind: "Timeout".into(),
                message: format!(
                    "the execution did not finish within its {} s time limit and was stopped",
                    context.timeout_s
                ),
                traceback: None,
            });
            conclusion.reply =
                Reply::json(504, response::failure_body("timeout", id, Some("Timeout")));
        }
        Outcome::Killed(error) => {
            conclusion.status = ExecutionStatus::Killed;
            conclusion.reply =
                Reply::json(500, response::failure_body("killed", id, Some(&error.kind)));
            conclusion.error = Some(recorded_error(error, context.secrets));
        }
    }
    if context.mode == Mode::Catch {
        conclusion.response_status = Some(conclusion.reply.status);
    }
    conclusion
}

/// The runtime's job for one execution of the active version of `hot`.
fn job_for(
    hot: &HotWorkflow,
    active: &ActiveVersion,
    request: Option<PyValue>,
    settings_json: String,
) -> Job {
    version_job(
        &hot.record,
        active.version_key.clone(),
        active.code.clone(),
        active.requirements.clone(),
        request,
        settings_json,
    )
}

/// What the workflow's `context` parameter shows of the execution `record` of `hot`.
fn job_context(hot: &HotWorkflow, record: &ExecutionRecord, details: &CallDetails) -> JobContext {
    let received = details.received.as_ref();
    JobContext {
        raw_body: received.map(|r| r.raw_body.clone()).unwrap_or_default(),
        method: received.map(|r| r.method.clone()),
        query_string: received.map(|r| r.query_string.clone()),
        execution_id: record.id.clone(),
        workflow: hot.record.name.clone(),
        version: record.version,
        trigger: record.trigger,
        attempt: record.attempt,
        fire_time_ms: record.fire_at,
        deadline_ms: record.started_at + i64::from(hot.record.timeout_s) * 1000,
    }
}

/// The runtime's job for a version of `workflow`.
pub fn version_job(
    workflow: &WorkflowRecord,
    version_key: String,
    code: Arc<str>,
    requirements: Option<Arc<flowd_core::requirements::Requirements>>,
    request: Option<PyValue>,
    settings_json: String,
) -> Job {
    Job {
        version_key,
        code,
        requirements,
        mode: workflow.mode,
        request: match workflow.mode {
            Mode::Catch => Some(request.unwrap_or(PyValue::Dict(Vec::new()))),
            Mode::Pull => None,
        },
        settings_json,
        timeout: Duration::from_secs(u64::from(workflow.timeout_s)),
        memory_mb: workflow.memory_mb,
        env: workflow
            .env
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
        isolation: workflow.isolation,
        context: None,
        egress_allow: workflow.egress_allow.clone(),
    }
}

/// A new execution record, `running`, started now.
/// The span an execution runs in, from the engine down through the runtime: what every line it
/// logs is about.
fn execution_span(hot: &HotWorkflow, record: &ExecutionRecord) -> tracing::Span {
    tracing::info_span!(
        "execution",
        execution_id = %record.id,
        team = %hot.team_name,
        workflow = %hot.record.name,
        version = record.version,
    )
}

fn new_record(hot: &HotWorkflow, trigger: Trigger) -> ExecutionRecord {
    ExecutionRecord {
        id: uuid::Uuid::now_v7().to_string(),
        workflow_id: hot.record.id.clone(),
        version: hot.version_number(),
        trigger,
        status: ExecutionStatus::Running,
        started_at: now_ms(),
        finished_at: None,
        duration_ms: None,
        response_status: None,
        warnings: Vec::new(),
        error: None,
        logs: String::new(),
        logs_truncated: false,
        settings_changed: None,
        fire_at: None,
        attempt: 1,
        retry_of: None,
        replay_of: None,
        request_not_stored: None,
    }
}

/// What a queued execution runs as: its id, attempt and trigger.
pub(crate) struct QueuedExecution {
    pub execution_id: String,
    pub trigger: Trigger,
    pub attempt: u32,
    /// The first attempt's id, for a retry.
    pub retry_of: Option<String>,
}

/// A new `running` record for a run of `hot`, to be claimed in the store first.
pub fn claimable_record(
    hot: &HotWorkflow,
    trigger: Trigger,
    fire_at: Option<i64>,
) -> ExecutionRecord {
    ExecutionRecord {
        fire_at,
        ..new_record(hot, trigger)
    }
}

/// Why the settings an execution left are not persisted.
#[derive(Debug, thiserror::Error)]
enum InvalidSettings {
    /// The runner could not send them.
    #[error(transparent)]
    Runner(#[from] SettingsError),
    #[error("settings are no longer a dict")]
    NotAnObject,
    #[error("settings could not be read back: {0}")]
    Unreadable(#[source] serde_json::Error),
}

fn parse_settings(settings: Result<String, SettingsError>) -> Result<Settings, InvalidSettings> {
    let json = settings?;
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err(InvalidSettings::NotAnObject),
        Err(error) => Err(InvalidSettings::Unreadable(error)),
    }
}

/// The error as recorded: its message and traceback may quote secret values.
fn recorded_error(error: ErrorInfo, secrets: &[String]) -> ExecutionError {
    ExecutionError {
        kind: error.kind,
        message: settings::mask_text(&error.message, secrets),
        traceback: error.traceback.map(|t| settings::mask_text(&t, secrets)),
    }
}
