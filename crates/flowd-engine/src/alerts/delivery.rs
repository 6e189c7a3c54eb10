//! The alerts' delivery task: for each queued alert, its workflow's error handler started, the
//! rate limit claimed in the store, and the summary POSTed with retries and recorded.

use std::sync::Arc;
use std::time::Duration;

use flowd_core::alerts::{AlertPolicy, AlertSummary};
use flowd_core::workflow::Trigger;
use flowd_core::PyValue;
use flowd_store::{AlertClaim, AlertDelivery};
use metrics::Label;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    backoff, AlertJob, AlertTransport, PostResult, ALERTS_FAILED, ALERTS_SENT, ALERTS_SUPPRESSED,
};
use crate::clock::now_ms;
use crate::Engine;

/// How a delivery is retried: at most `attempts` POSTs, each bounded by `attempt_timeout`, the
/// waits between them doubling from `base` (the defaults: 4 attempts within about 47 s).
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub base: Duration,
    pub attempt_timeout: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            base: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

pub(super) async fn run(engine: Arc<Engine>, transport: Arc<dyn AlertTransport>) {
    let Some(mut queue) = engine.alerts.take_receiver() else {
        tracing::warn!("alerts are already delivered by another task");
        return;
    };
    let slots = Arc::new(Semaphore::new(
        engine.config.alerts.concurrent_deliveries.max(1),
    ));
    while let Some(job) = queue.recv().await {
        if let Some(handler) = &job.on_failure {
            start_handler(&engine, &job, handler).await;
        }
        let Some(policy) = job.policy.clone() else {
            continue;
        };
        let min_interval_ms =
            i64::try_from(policy.min_interval_s.saturating_mul(1000)).unwrap_or(i64::MAX);
        let workflow_id = &job.ended.workflow_id;
        match engine
            .store
            .claim_alert(workflow_id, now_ms(), min_interval_ms)
            .await
        {
            Ok(AlertClaim::Send { suppressed }) => {
                let Ok(slot) = slots.clone().acquire_owned().await else {
                    return;
                };
                let delivery = Delivery {
                    engine: engine.clone(),
                    transport: transport.clone(),
                    job,
                    policy,
                    suppressed,
                };
                tokio::spawn(delivery.send(slot));
            }
            Ok(AlertClaim::Suppressed) => {
                metrics::counter!(ALERTS_SUPPRESSED, labels(&job)).increment(1);
                tracing::debug!(workflow = %job.ended.workflow_name, "alert suppressed by min_interval_s");
            }
            Err(error) => tracing::warn!(
                workflow = %job.ended.workflow_name,
                %error,
                "alert not sent: its rate limit could not be claimed in the store"
            ),
        }
    }
}

/// Starts the workflow's error handler with the alert's summary as `_request` (`trigger:
/// alert`), on a task of its own. Its summary says `suppressed: 0`: a handler runs for every
/// alert, before the rate limit.
async fn start_handler(engine: &Arc<Engine>, job: &AlertJob, handler: &str) {
    let found = engine
        .cache
        .load_by_name(engine.store.as_ref(), &job.team_name, handler)
        .await;
    let hot = match found {
        Ok(Some(hot)) if hot.record.enabled => hot,
        Ok(Some(_)) => {
            tracing::info!(workflow = %job.ended.workflow_name, handler, "the error handler is paused: not run");
            return;
        }
        Ok(None) => {
            tracing::warn!(workflow = %job.ended.workflow_name, handler, "the error handler does not exist: not run");
            return;
        }
        Err(error) => {
            tracing::warn!(workflow = %job.ended.workflow_name, handler, %error, "the error handler could not be loaded: not run");
            return;
        }
    };
    let summary = AlertSummary::of(&job.ended, &engine.config.alerts.public_url, 0);
    let request = serde_json::to_value(&summary)
        .map(|value| PyValue::from_json(&value))
        .unwrap_or(PyValue::None);
    let engine = engine.clone();
    tokio::spawn(async move {
        engine.execute(hot, Trigger::Alert, Some(request)).await;
    });
}

/// One alert to POST, the right to send it claimed.
struct Delivery {
    engine: Arc<Engine>,
    transport: Arc<dyn AlertTransport>,
    job: AlertJob,
    policy: AlertPolicy,
    suppressed: u64,
}

impl Delivery {
    /// POSTs the summary until it is delivered or the attempts run out, recording the delivery
    /// after each attempt (under one id: its record shows the latest attempt).
    async fn send(self, _slot: OwnedSemaphorePermit) {
        let config = &self.engine.config.alerts;
        let retry = config.retry;
        let summary = AlertSummary::of(&self.job.ended, &config.public_url, self.suppressed);
        // A struct of strings and numbers always serialises.
        let body = serde_json::to_vec(&summary).unwrap_or_default();
        let mut record = AlertDelivery {
            id: uuid::Uuid::now_v7().to_string(),
            workflow_id: self.job.ended.workflow_id.clone(),
            execution_id: self.job.ended.execution_id.clone(),
            at: now_ms(),
            status_code: None,
            error: None,
            attempts: 0,
            suppressed: self.suppressed,
        };
        loop {
            let answer = tokio::time::timeout(
                retry.attempt_timeout,
                self.transport.post(&self.policy.url, body.clone()),
            )
            .await
            .unwrap_or_else(|_| {
                Err(format!(
                    "no answer within {} s",
                    retry.attempt_timeout.as_secs_f64()
                ))
            });
            let delivered = is_delivered(&answer);
            record.attempts += 1;
            record.at = now_ms();
            (record.status_code, record.error) = match answer {
                Ok(code) if delivered => (Some(code), None),
                Ok(code) => (Some(code), Some(format!("the receiver answered {code}"))),
                Err(error) => (None, Some(error.replace('\0', ""))),
            };
            self.record(&record).await;
            if delivered {
                metrics::counter!(ALERTS_SENT, labels(&self.job)).increment(1);
                return;
            }
            if record.attempts >= retry.attempts.max(1) {
                metrics::counter!(ALERTS_FAILED, labels(&self.job)).increment(1);
                tracing::warn!(
                    workflow = %self.job.ended.workflow_name,
                    attempts = record.attempts,
                    error = record.error.as_deref().unwrap_or_default(),
                    "alert not delivered"
                );
                return;
            }
            tokio::time::sleep(backoff(retry.base, record.attempts)).await;
        }
    }

    async fn record(&self, record: &AlertDelivery) {
        if let Err(error) = self.engine.store.record_alert_delivery(record).await {
            tracing::warn!(workflow = %self.job.ended.workflow_name, %error, "the alert's delivery could not be recorded");
        }
    }
}

fn is_delivered(answer: &PostResult) -> bool {
    matches!(answer, Ok(code) if (200..300).contains(code))
}

fn labels(job: &AlertJob) -> Vec<Label> {
    vec![
        Label::new("team", job.team_name.clone()),
        Label::new("workflow", job.ended.workflow_name.clone()),
    ]
}
