//! Retries of asynchronous and scheduled executions: when an attempt ends in a status its
//! workflow's `retry` policy lists and attempts remain, the next attempt is queued in the store's
//! queue (the one asynchronous calls wait in), not claimed before its backoff has passed, so a
//! waiting retry survives a restart and runs on any node. Each attempt is an execution of its
//! own, `retry_of` the first.

use flowd_core::workflow::Trigger;
use flowd_store::{AsyncCallRecord, AsyncCallState, ExecutionRecord, NextAttempt, QueueBound};
use rand::Rng;

use crate::hot::HotWorkflow;
use crate::workflows::generate_hook_token;
use crate::Engine;

/// Retries are queued whatever the queue holds: the bound is for new calls, which a sender can
/// send again.
const UNBOUNDED: QueueBound = QueueBound {
    total: u64::MAX,
    per_workflow: u64::MAX,
};

/// The attempt after `record`, an attempt of `hot` that has ended: `None` when the workflow
/// does not retry its status or no attempt is left.
pub(crate) fn next_attempt(hot: &HotWorkflow, record: &ExecutionRecord) -> Option<NextAttempt> {
    let policy = hot.record.retry.as_ref()?;
    let jitter: f64 = rand::thread_rng().gen();
    let delay = policy.next_delay(record.attempt, record.status, jitter)?;
    let finished_at = record.finished_at.unwrap_or(record.started_at);
    Some(NextAttempt {
        execution_id: uuid::Uuid::now_v7().to_string(),
        attempt: record.attempt + 1,
        not_before: finished_at
            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)),
    })
}

impl Engine {
    /// Queues the retry of `record`, a scheduled run of `hot` that has ended, if its workflow
    /// retries its status. A retry that cannot be queued is logged: the run stays as recorded.
    pub(crate) async fn queue_retry_of_scheduled_run(
        &self,
        hot: &HotWorkflow,
        record: &ExecutionRecord,
    ) {
        if record.trigger != Trigger::Pull {
            return;
        }
        let Some(next) = next_attempt(hot, record) else {
            return;
        };
        let retry = AsyncCallRecord {
            id: record.id.clone(),
            workflow_id: record.workflow_id.clone(),
            token: generate_hook_token(),
            request: Default::default(),
            enqueued_at: record.started_at,
            state: AsyncCallState::Queued,
            execution_id: next.execution_id,
            attempt: next.attempt,
            trigger: Trigger::Pull,
            not_before: Some(next.not_before),
        };
        match self.store.enqueue_async_call(&retry, UNBOUNDED).await {
            Ok(_) => {
                tracing::info!(
                    workflow = %hot.record.name,
                    retry_of = %record.id,
                    attempt = retry.attempt,
                    "a scheduled run will be retried"
                );
                self.async_queue_woken();
            }
            Err(error) => tracing::error!(
                workflow = %hot.record.name,
                execution = %record.id,
                %error,
                "the retry of a scheduled run could not be queued"
            ),
        }
    }
}
