//! Running one execution end to end: admission, the settings snapshot, the run in the Python
//! runtime, the mapping of its outcome to a response, and one commit of the execution record with
//! the settings change.

use std::sync::Arc;
use std::time::Duration;

use flowd_core::response::{self, ReturnMapping};
use flowd_core::settings::{self, Settings, SettingsChange};
use flowd_core::workflow::{ExecutionStatus, Mode, Trigger};
use flowd_core::PyValue;
use flowd_runtime::{ErrorInfo, Job, Outcome};
use flowd_store::{ExecutionError, ExecutionRecord, StoreWrite};

use crate::clock::now_ms;
use crate::hot::HotWorkflow;
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

/// A finished execution: its record, and the reply for a hook caller.
#[derive(Debug, Clone)]
pub struct Report {
    pub record: ExecutionRecord,
    pub reply: Reply,
}

impl Engine {
    /// Runs `hot` once. Refused before running (paused, saturated): a `skipped` record is
    /// kept and the reply says why.
    pub async fn execute(
        &self,
        hot: Arc<HotWorkflow>,
        trigger: Trigger,
        request: Option<PyValue>,
    ) -> Report {
        let id = uuid::Uuid::now_v7().to_string();
        if trigger == Trigger::Catch && !hot.record.enabled {
            return self
                .skip(&hot, id, trigger, "the workflow is paused", 503, "paused")
                .await;
        }
        let _workflow_slot = match &hot.limiter {
            Some(gate) => match gate.enter(|| crate::EngineError::Saturated).await {
                Ok(permit) => Some(permit),
                Err(_) => {
                    return self
                        .skip(
                            &hot,
                            id,
                            trigger,
                            "the workflow's max_concurrency slots and queue were full",
                            503,
                            "saturated",
                        )
                        .await
                }
            },
            None => None,
        };
        let _slot = match self.gate.enter(|| crate::EngineError::Saturated).await {
            Ok(permit) => permit,
            Err(_) => {
                return self
                    .skip(
                        &hot,
                        id,
                        trigger,
                        "the server's execution slots and queue were full",
                        503,
                        "saturated",
                    )
                    .await
            }
        };
        self.run_admitted(hot, id, trigger, request).await
    }

    async fn run_admitted(
        &self,
        hot: Arc<HotWorkflow>,
        id: String,
        trigger: Trigger,
        request: Option<PyValue>,
    ) -> Report {
        let started_at = now_ms();
        let (snapshot, secrets) = hot.settings.snapshot(&hot.record.secret_keys);
        let job = Job {
            version_key: hot.version_key(),
            code: hot.code.clone(),
            mode: hot.record.mode,
            request: match hot.record.mode {
                Mode::Catch => Some(request.unwrap_or(PyValue::Dict(Vec::new()))),
                Mode::Pull => None,
            },
            settings_json: serde_json::Value::Object(snapshot.clone()).to_string(),
            timeout: Duration::from_secs(u64::from(hot.record.timeout_s)),
            memory_mb: hot.record.memory_mb,
            env: Vec::new(),
        };
        let mut record = ExecutionRecord {
            id: id.clone(),
            workflow_id: hot.record.id.clone(),
            version: hot.record.version,
            trigger,
            status: ExecutionStatus::Running,
            started_at,
            finished_at: None,
            duration_ms: None,
            response_status: None,
            warnings: Vec::new(),
            error: None,
            logs: String::new(),
            logs_truncated: false,
            settings_changed: None,
            fire_at: None,
        };

        // Short executions are written once, at their end; a longer one is recorded as running
        // meanwhile, so that a crash leaves a trace (marked interrupted at the next start).
        let run = self.runtime.execute(&job);
        tokio::pin!(run);
        let execution = tokio::select! {
            execution = &mut run => execution,
            _ = tokio::time::sleep(self.config.running_record_delay) => {
                self.writer.enqueue(vec![StoreWrite::PutExecution(record.clone())]);
                run.await
            }
        };

        let finished_at = now_ms();
        record.finished_at = Some(finished_at);
        record.duration_ms = Some(finished_at - started_at);
        let logs = String::from_utf8_lossy(&execution.logs);
        record.logs = settings::mask_text(&logs, &secrets);
        record.logs_truncated = execution.logs_truncated;

        let mut change = None;
        let reply = match execution.outcome {
            Outcome::Returned {
                value,
                warning,
                settings,
            } => {
                record.status = ExecutionStatus::Success;
                match parse_settings(settings) {
                    Ok(after) => {
                        let diff = SettingsChange::between(&snapshot, &after);
                        record.settings_changed = Some(diff.clone());
                        if !diff.is_empty() {
                            change = Some(diff);
                        }
                    }
                    Err(message) => {
                        record.status = ExecutionStatus::Error;
                        record.error = Some(ExecutionError {
                            kind: "InvalidSettings".into(),
                            message: format!(
                                "{message}: nothing of this execution's settings changes was saved"
                            ),
                            traceback: None,
                        });
                    }
                }
                let mapping = match warning {
                    Some(warning) => ReturnMapping::Default {
                        warning: Some(warning),
                    },
                    None => response::map_return(&value),
                };
                match mapping {
                    ReturnMapping::Custom(custom) => Reply {
                        status: custom.status,
                        headers: custom.headers,
                        body: custom.body.into_bytes(),
                    },
                    ReturnMapping::Default { warning } => {
                        if hot.record.mode == Mode::Catch {
                            record.warnings.extend(warning);
                        }
                        Reply::json(200, response::default_success_body(&id))
                    }
                }
            }
            Outcome::Raised(error) | Outcome::InitFailed(error) | Outcome::Failed(error) => {
                record.status = ExecutionStatus::Error;
                let reply =
                    Reply::json(500, response::failure_body("error", &id, Some(&error.kind)));
                record.error = Some(recorded_error(error, &secrets));
                reply
            }
            Outcome::Timeout => {
                record.status = ExecutionStatus::Timeout;
                record.error = Some(ExecutionError {
                    kind: "Timeout".into(),
                    message: format!(
                        "the execution did not finish within its {} s time limit and was stopped",
                        hot.record.timeout_s
                    ),
                    traceback: None,
                });
                Reply::json(504, response::failure_body("timeout", &id, Some("Timeout")))
            }
            Outcome::Killed(error) => {
                record.status = ExecutionStatus::Killed;
                let reply = Reply::json(
                    500,
                    response::failure_body("killed", &id, Some(&error.kind)),
                );
                record.error = Some(recorded_error(error, &secrets));
                reply
            }
        };
        if hot.record.mode == Mode::Catch {
            record.response_status = Some(reply.status);
        }

        let ticket = match change {
            Some(change) => {
                let workflow_id = hot.record.id.clone();
                let writes = vec![
                    StoreWrite::ApplySettingsChange {
                        workflow_id,
                        change: change.clone(),
                    },
                    StoreWrite::PutExecution(record.clone()),
                ];
                hot.settings.apply(&change, || self.writer.submit(writes))
            }
            None => self
                .writer
                .submit(vec![StoreWrite::PutExecution(record.clone())]),
        };
        if let Err(error) = ticket.wait().await {
            tracing::error!(execution = %id, %error, "the execution record could not be saved");
        }
        Report { record, reply }
    }

    /// Records an execution that did not run, and the reply that says why.
    async fn skip(
        &self,
        hot: &HotWorkflow,
        id: String,
        trigger: Trigger,
        why: &str,
        status: u16,
        reason: &str,
    ) -> Report {
        let now = now_ms();
        let record = ExecutionRecord {
            id: id.clone(),
            workflow_id: hot.record.id.clone(),
            version: hot.record.version,
            trigger,
            status: ExecutionStatus::Skipped,
            started_at: now,
            finished_at: Some(now),
            duration_ms: Some(0),
            response_status: (hot.record.mode == Mode::Catch).then_some(status),
            warnings: vec![format!("not run: {why}")],
            error: None,
            logs: String::new(),
            logs_truncated: false,
            settings_changed: None,
            fire_at: None,
        };
        // Refusals are recorded without waiting: under overload, the caller must not wait on the
        // disk to be told to come back later.
        self.writer
            .enqueue(vec![StoreWrite::PutExecution(record.clone())]);
        let body = serde_json::json!({
            "status": reason,
            "execution_id": id,
            "error": {"code": if reason == "paused" { "workflow_paused" } else { "saturated" }, "message": why},
        });
        Report {
            record,
            reply: Reply::json(status, body.to_string()),
        }
    }
}

fn parse_settings(settings: Result<String, String>) -> Result<Settings, String> {
    let json = settings?;
    match serde_json::from_str::<serde_json::Value>(&json) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(_) => Err("settings are no longer a dict".to_string()),
        Err(error) => Err(format!("settings could not be read back: {error}")),
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
