//! Failure alerts, off the execution path: an execution that ends in a status its workflow's
//! policy (or the server's default) alerts on is put on a bounded in-process queue
//! ([`AlertQueue`]); one delivery task ([`Engine::deliver_alerts`]) starts its workflow's
//! `on_failure` handler, claims the workflow's rate limit in the store (so that one node of a
//! cluster sends) and POSTs the summary through an [`AlertTransport`], with retries
//! (`delivery`). A full queue drops the alert, counted and logged: an execution never waits for
//! an alert.

mod delivery;
mod queue;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use flowd_core::access::Role;
use flowd_core::alerts::{AlertPolicy, EndedExecution, DEFAULT_ALERT_ON};
use flowd_core::workflow::Trigger;
use flowd_store::{AlertDelivery, ExecutionRecord, WorkflowRecord};

use crate::auth::Principal;
use crate::error::Result;
use crate::hot::HotWorkflow;
use crate::Engine;

pub use delivery::RetryPolicy;
pub use queue::AlertQueue;

/// Alerts sent (the receiver answered 2xx), by `team` and `workflow` (a counter).
pub const ALERTS_SENT: &str = "flowd_alerts_sent_total";
/// Alerts given up on after every attempt, by `team` and `workflow` (a counter).
pub const ALERTS_FAILED: &str = "flowd_alerts_failed_total";
/// Alerts not sent because of their workflow's `min_interval_s`, by `team` and `workflow`.
pub const ALERTS_SUPPRESSED: &str = "flowd_alerts_suppressed_total";
/// Alerts dropped because the queue to the delivery task was full (a counter).
pub const ALERTS_DROPPED: &str = "flowd_alerts_dropped_total";

/// The server's side of alerts.
#[derive(Debug, Clone)]
pub struct AlertConfig {
    /// The policy of workflows without their own (`--alert-url`, `--alert-on`,
    /// `--alert-min-interval-s`).
    pub default_policy: Option<AlertPolicy>,
    /// The base of the execution links alerts carry (`--public-url`, else the listen address).
    pub public_url: String,
    /// Alerts waiting for the delivery task; more are dropped.
    pub queue_capacity: usize,
    /// Deliveries (each with its retries) going on at once.
    pub concurrent_deliveries: usize,
    pub retry: RetryPolicy,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            default_policy: None,
            public_url: "http://127.0.0.1:8080".into(),
            queue_capacity: 1024,
            concurrent_deliveries: 8,
            retry: RetryPolicy::default(),
        }
    }
}

/// What a receiver answered: its HTTP status, or why nothing came back.
pub type PostResult = std::result::Result<u16, String>;

/// Sends an alert's JSON body to its URL: the server provides the HTTP client (the engine knows
/// nothing about HTTP).
pub trait AlertTransport: Send + Sync + 'static {
    fn post<'a>(
        &'a self,
        url: &'a str,
        body: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = PostResult> + Send + 'a>>;
}

/// An ended execution to alert about, as queued.
#[derive(Debug, Clone)]
pub(crate) struct AlertJob {
    pub ended: EndedExecution,
    pub team_name: String,
    /// The policy to send by (`None`: only a handler runs).
    pub policy: Option<AlertPolicy>,
    /// The error handler to run, by name in the workflow's team.
    pub on_failure: Option<String>,
}

impl Engine {
    /// Queues an alert about `record` when its status is one its policy alerts on. Never waits.
    pub(crate) fn alert_if_failed(&self, hot: &HotWorkflow, record: &ExecutionRecord) {
        let default_policy = self.config.alerts.default_policy.as_ref();
        if let Some(job) = alert_job(&hot.record, &hot.team_name, record, default_policy) {
            self.alerts.push(job, &hot.team_name, &hot.record.name);
        }
    }

    /// Delivers queued alerts until the engine is dropped: to be spawned once, by the server.
    /// Answers at once if another task already took the queue.
    pub async fn deliver_alerts(self: Arc<Self>, transport: Arc<dyn AlertTransport>) {
        delivery::run(self, transport).await;
    }

    /// The workflow's most recent alert deliveries, newest first (at most `limit`).
    pub async fn alert_deliveries(
        &self,
        principal: &Principal,
        workflow_id: &str,
        limit: u32,
    ) -> Result<Vec<AlertDelivery>> {
        principal.require(Role::Viewer)?;
        let workflow = self.workflow(principal, workflow_id).await?;
        Ok(self
            .store
            .list_alert_deliveries(&workflow.id, limit)
            .await?)
    }
}

/// The alert `record` calls for, if any: its workflow's policy (else `default_policy`) lists its
/// status, or its workflow has an `on_failure` handler and the status is one the policy (or, with
/// no policy, the default `error`, `timeout`, `killed`) alerts on. A handler's own execution
/// (`trigger: alert`) never starts another handler.
fn alert_job(
    workflow: &WorkflowRecord,
    team_name: &str,
    record: &ExecutionRecord,
    default_policy: Option<&AlertPolicy>,
) -> Option<AlertJob> {
    let policy = workflow.alerts.as_ref().or(default_policy);
    let alerting = match policy {
        Some(policy) => policy.alerts_on(record.status),
        None => DEFAULT_ALERT_ON.contains(&record.status),
    };
    if !alerting {
        return None;
    }
    let on_failure = workflow
        .on_failure
        .clone()
        .filter(|_| record.trigger != Trigger::Alert);
    if policy.is_none() && on_failure.is_none() {
        return None;
    }
    Some(AlertJob {
        ended: EndedExecution {
            workflow_id: workflow.id.clone(),
            workflow_name: workflow.name.clone(),
            execution_id: record.id.clone(),
            status: record.status,
            trigger: record.trigger.as_str().to_string(),
            error_type: record.error.as_ref().map(|error| error.kind.clone()),
            error_message: record.error.as_ref().map(|error| error.message.clone()),
            started_at: record.started_at,
        },
        team_name: team_name.to_string(),
        policy: policy.cloned(),
        on_failure,
    })
}

/// How long to wait before retry `attempt` (1-based: the wait after the first failure is
/// `base`), doubling each time.
fn backoff(base: Duration, attempt: u32) -> Duration {
    base.saturating_mul(1 << attempt.saturating_sub(1).min(16))
}

#[cfg(test)]
mod tests {
    use super::*;
    use flowd_core::workflow::{ExecutionStatus, Isolation, Mode};
    use flowd_store::ExecutionError;

    fn workflow(alerts: Option<AlertPolicy>, on_failure: Option<&str>) -> WorkflowRecord {
        WorkflowRecord {
            id: "w1".into(),
            team_id: "t1".into(),
            name: "payroll".into(),
            mode: Mode::Catch,
            runtime: "python3.11".into(),
            version: Some(1),
            enabled: true,
            hook_token: "token".into(),
            secret_keys: Vec::new(),
            env: Default::default(),
            schedule: None,
            next_fire_at: None,
            timeout_s: 60,
            memory_mb: 512,
            max_concurrency: None,
            isolation: Isolation::Fork,
            created_at: 0,
            updated_at: 0,
            verify: None,
            idempotency_header: None,
            retention: None,
            egress_allow: Vec::new(),
            alerts,
            on_failure: on_failure.map(str::to_string),
            response: flowd_core::workflow::ResponseMode::Sync,
            retry: None,
            store_requests: true,
        }
    }

    fn ended(status: ExecutionStatus, trigger: Trigger) -> ExecutionRecord {
        ExecutionRecord {
            id: "e1".into(),
            workflow_id: "w1".into(),
            version: 1,
            trigger,
            status,
            started_at: 1,
            finished_at: Some(2),
            duration_ms: Some(1),
            response_status: Some(500),
            warnings: Vec::new(),
            error: Some(ExecutionError {
                kind: "KeyError".into(),
                message: "'id'".into(),
                traceback: None,
            }),
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

    fn policy(url: &str, on: &[ExecutionStatus]) -> AlertPolicy {
        AlertPolicy {
            url: url.into(),
            on: on.to_vec(),
            min_interval_s: 0,
        }
    }

    fn job_for(
        workflow: &WorkflowRecord,
        status: ExecutionStatus,
        trigger: Trigger,
        default_policy: Option<&AlertPolicy>,
    ) -> Option<AlertJob> {
        alert_job(workflow, "acme", &ended(status, trigger), default_policy)
    }

    #[test]
    fn a_status_the_policy_lists_queues_an_alert_with_the_executions_facts() {
        let own = policy("http://own", &[ExecutionStatus::Error]);
        let job = job_for(
            &workflow(Some(own.clone()), None),
            ExecutionStatus::Error,
            Trigger::Catch,
            None,
        )
        .expect("an alert");
        assert_eq!(job.policy, Some(own));
        assert_eq!(job.team_name, "acme");
        assert_eq!(job.ended.execution_id, "e1");
        assert_eq!(job.ended.error_type.as_deref(), Some("KeyError"));
    }

    #[test]
    fn a_status_the_policy_does_not_list_queues_nothing() {
        let own = policy("http://own", &[ExecutionStatus::Timeout]);
        let workflow = workflow(Some(own), Some("handler"));
        assert!(job_for(&workflow, ExecutionStatus::Error, Trigger::Catch, None).is_none());
        assert!(job_for(&workflow, ExecutionStatus::Success, Trigger::Catch, None).is_none());
    }

    #[test]
    fn the_server_default_applies_to_a_workflow_without_a_policy() {
        let default = policy("http://default", &[ExecutionStatus::Killed]);
        let job = job_for(
            &workflow(None, None),
            ExecutionStatus::Killed,
            Trigger::Pull,
            Some(&default),
        );
        assert_eq!(job.expect("an alert").policy, Some(default));
    }

    #[test]
    fn a_workflows_own_policy_wins_over_the_default() {
        let own = policy("http://own", &[ExecutionStatus::Timeout]);
        let default = policy("http://default", &[ExecutionStatus::Error]);
        let workflow = workflow(Some(own), None);
        assert!(job_for(
            &workflow,
            ExecutionStatus::Error,
            Trigger::Catch,
            Some(&default)
        )
        .is_none());
    }

    #[test]
    fn without_any_policy_nothing_is_queued_unless_there_is_a_handler() {
        assert!(job_for(
            &workflow(None, None),
            ExecutionStatus::Error,
            Trigger::Catch,
            None
        )
        .is_none());
        let job = job_for(
            &workflow(None, Some("handler")),
            ExecutionStatus::Error,
            Trigger::Catch,
            None,
        )
        .expect("the handler runs");
        assert_eq!(job.policy, None);
        assert_eq!(job.on_failure.as_deref(), Some("handler"));
    }

    #[test]
    fn a_handler_alone_runs_on_the_default_statuses_only() {
        let workflow = workflow(None, Some("handler"));
        assert!(job_for(&workflow, ExecutionStatus::Timeout, Trigger::Catch, None).is_some());
        assert!(job_for(&workflow, ExecutionStatus::Skipped, Trigger::Catch, None).is_none());
    }

    #[test]
    fn a_handlers_own_failure_starts_no_handler() {
        let with_policy = workflow(
            Some(policy("http://own", &[ExecutionStatus::Error])),
            Some("other"),
        );
        let job = job_for(&with_policy, ExecutionStatus::Error, Trigger::Alert, None)
            .expect("its alert is still sent");
        assert_eq!(job.on_failure, None);
        let handler_only = workflow(None, Some("other"));
        assert!(job_for(&handler_only, ExecutionStatus::Error, Trigger::Alert, None).is_none());
    }

    #[test]
    fn backoff_doubles_from_its_base() {
        let base = Duration::from_millis(100);
        let waits: Vec<Duration> = (1..=4).map(|attempt| backoff(base, attempt)).collect();
        assert_eq!(
            waits,
            [100, 200, 400, 800].map(Duration::from_millis).to_vec()
        );
    }
}
