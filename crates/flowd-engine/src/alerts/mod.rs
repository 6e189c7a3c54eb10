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
use flowd_store::{AlertDelivery, ExecutionRecord};

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
        if let Some(job) = alert_job(hot, record, self.config.alerts.default_policy.as_ref()) {
            self.alerts.push(job, &hot.team_name, &hot.record.name);
        }
    }

    /// Delivers queued alerts until the engine is dropped: to be spawned once, by the server.
    /// Answers at once if another task already took the queue.
    pub async fn deliver_alerts(self: Arc<Self>, transport: Arc<dyn AlertTransport>) {
        delivery::run(self, transport).await;
    }

    /// Alerts dropped so far because the queue was full.
    pub fn alerts_dropped(&self) -> u64 {
        self.alerts.dropped()
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
    hot: &HotWorkflow,
    record: &ExecutionRecord,
    default_policy: Option<&AlertPolicy>,
) -> Option<AlertJob> {
    let policy = hot.record.alerts.as_ref().or(default_policy);
    let alerting = match policy {
        Some(policy) => policy.alerts_on(record.status),
        None => DEFAULT_ALERT_ON.contains(&record.status),
    };
    if !alerting {
        return None;
    }
    let on_failure = hot
        .record
        .on_failure
        .clone()
        .filter(|_| record.trigger != Trigger::Alert);
    if policy.is_none() && on_failure.is_none() {
        return None;
    }
    Some(AlertJob {
        ended: EndedExecution {
            workflow_id: hot.record.id.clone(),
            workflow_name: hot.record.name.clone(),
            execution_id: record.id.clone(),
            status: record.status,
            trigger: record.trigger.as_str().to_string(),
            error_type: record.error.as_ref().map(|error| error.kind.clone()),
            error_message: record.error.as_ref().map(|error| error.message.clone()),
            started_at: record.started_at,
        },
        team_name: hot.team_name.clone(),
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
