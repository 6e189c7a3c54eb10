//! Asynchronous hook calls: a call is committed to the store's queue before its caller is told
//! `202`, and a dispatcher on every node claims the queued calls (with a lease), runs them in
//! order per workflow within the workflow's `max_concurrency` and the server's slots, and records
//! the response each produced for its status URL.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flowd_core::request::{build_request, IncomingRequest};
use flowd_core::workflow::{ExecutionStatus, Trigger};
use flowd_store::{
    AsyncCallRecord, AsyncCallState, Enqueued, ExecutionRecord, QueueBound, QueuedRequest,
    StoreWrite, StoredResponse,
};
use tokio::sync::Notify;

use crate::clock::now_ms;
use crate::delivery::{CallDetails, ClaimedKey, ReceivedRequest};
use crate::executor::{QueuedExecution, Reply, Report};
use crate::hot::HotWorkflow;
use crate::refusal::Refusal;
use crate::retry;
use crate::workflows::generate_hook_token;
use crate::{Engine, Result};

/// How often the dispatcher looks at the store for calls without being woken: calls enqueued on
/// other nodes, leases that ended, and retries whose backoff has passed.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long a claim lasts beyond the workflow's time limit: the wait for a slot, the commit.
const LEASE_MARGIN_MS: i64 = 120_000;

/// What a node knows of the calls it runs.
#[derive(Default)]
pub(crate) struct AsyncQueue {
    /// Wakes the dispatcher: a call was enqueued or finished here.
    wake: Notify,
    /// Calls claimed by this node and not finished, per workflow.
    in_flight: Mutex<HashMap<String, u32>>,
}

/// A call accepted into the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    /// The id its execution will have.
    pub execution_id: String,
    /// The secret last segment of its status URL.
    pub token: String,
}

impl AsyncQueue {
    fn in_flight(&self, workflow_id: &str) -> u32 {
        self.lock().get(workflow_id).copied().unwrap_or(0)
    }

    fn total_in_flight(&self) -> u32 {
        self.lock().values().sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        // A panic while counting leaves the counts as they were: still usable.
        self.in_flight.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn started(&self, workflow_id: &str) {
        *self.lock().entry(workflow_id.to_string()).or_default() += 1;
    }

    fn ended(&self, workflow_id: &str) {
        let mut counts = self.lock();
        if let Some(count) = counts.get_mut(workflow_id) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(workflow_id);
            }
        }
        drop(counts);
        self.wake.notify_one();
    }
}

impl Engine {
    /// Commits `request` to the queue of `hot`'s calls: `None` when the queue is full (nothing
    /// was written). A call that `claimed` an idempotency key is queued as the key's execution
    /// (see [`Engine::acknowledge_delivery`]); a full queue releases the key, so the sender's
    /// retry is queued when there is room.
    pub async fn enqueue_async(
        &self,
        hot: &HotWorkflow,
        request: QueuedRequest,
        claimed: Option<&ClaimedKey>,
    ) -> Result<Option<Accepted>> {
        let id = claimed.map_or_else(
            || uuid::Uuid::now_v7().to_string(),
            |claimed| claimed.execution_id.clone(),
        );
        let call = AsyncCallRecord {
            execution_id: id.clone(),
            id,
            workflow_id: hot.record.id.clone(),
            token: generate_hook_token(),
            request,
            enqueued_at: now_ms(),
            state: AsyncCallState::Queued,
            attempt: 1,
            trigger: Trigger::Catch,
            not_before: None,
        };
        let bound = QueueBound {
            total: self.config.async_queue_max,
            per_workflow: self.config.async_queue_max,
        };
        let enqueued = self.store.enqueue_async_call(&call, bound).await;
        if let (Some(claimed), Ok(Enqueued::Full) | Err(_)) = (claimed, &enqueued) {
            self.release_key(&hot.record.id, claimed);
        }
        match enqueued? {
            Enqueued::Full => Ok(None),
            Enqueued::Queued => {
                self.async_queue.wake.notify_one();
                Ok(Some(Accepted {
                    execution_id: call.id,
                    token: call.token,
                }))
            }
        }
    }

    /// Stores `acknowledgement` (the `202` a queued call was answered) as the response of the
    /// idempotency key it `claimed`: a repeat of the call is answered the same `202`, with the
    /// same status URL, and queues nothing. Until this commits, a repeat waits as for a running
    /// call.
    pub async fn acknowledge_delivery(
        &self,
        hot: &HotWorkflow,
        claimed: &ClaimedKey,
        acknowledgement: &Reply,
    ) -> Result<()> {
        self.writer
            .commit(vec![StoreWrite::CompleteIdempotencyKey {
                workflow_id: hot.record.id.clone(),
                key: claimed.key.clone(),
                execution_id: claimed.execution_id.clone(),
                response: crate::idempotency::stored_response(acknowledgement),
            }])
            .await?;
        Ok(())
    }

    /// Wakes this node's dispatcher: something was queued.
    pub(crate) fn async_queue_woken(&self) {
        self.async_queue.wake.notify_one();
    }

    /// The asynchronous call whose status URL ends with `token`.
    pub async fn async_call(&self, token: &str) -> Result<Option<AsyncCallRecord>> {
        Ok(self.store.async_call_by_token(token).await?)
    }

    /// Calls queued or running, of one workflow or of all.
    pub async fn async_queue_depth(&self, workflow_id: Option<&str>) -> Result<u64> {
        Ok(self.store.async_queue_depth(workflow_id).await?)
    }

    /// Claims and runs queued calls until `stop` completes.
    pub async fn dispatch_async_calls(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            if let Err(error) = self.dispatch_once().await {
                tracing::warn!(%error, "the queue of asynchronous calls could not be read");
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = self.async_queue.wake.notified() => {}
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    }

    /// Claims what this node has room for, workflow by workflow, and starts each call.
    async fn dispatch_once(self: &Arc<Self>) -> Result<()> {
        let now = now_ms();
        for workflow_id in self.store.workflows_with_async_calls(now).await? {
            let server_room = (self.config.max_concurrent_executions as u32)
                .saturating_sub(self.async_queue.total_in_flight());
            if server_room == 0 {
                return Ok(());
            }
            let hot = match self
                .cache
                .load_by_id(self.store.as_ref(), &workflow_id)
                .await
            {
                Ok(hot) => hot,
                Err(error) => {
                    tracing::warn!(workflow = %workflow_id, %error, "asynchronous calls not run");
                    continue;
                }
            };
            let limit = hot.record.max_concurrency.unwrap_or(u32::MAX);
            let room = limit
                .saturating_sub(self.async_queue.in_flight(&workflow_id))
                .min(server_room);
            if room == 0 {
                continue;
            }
            let lease_until = now + i64::from(hot.record.timeout_s) * 1000 + LEASE_MARGIN_MS;
            let calls = self
                .store
                .claim_async_calls(&workflow_id, room, now, lease_until)
                .await?;
            for call in calls {
                self.async_queue.started(&workflow_id);
                let engine = self.clone();
                let hot = hot.clone();
                tokio::spawn(async move {
                    engine.run_async_call(hot, call).await;
                });
            }
        }
        Ok(())
    }

    /// Runs one claimed call and records its response, or queues its next attempt when its
    /// workflow retries the status it ended in; a call refused for lack of a slot goes back to
    /// the queue.
    async fn run_async_call(self: Arc<Self>, hot: Arc<HotWorkflow>, call: AsyncCallRecord) {
        let workflow_id = call.workflow_id.clone();
        let recorded = match self.store.execution(&call.execution_id).await {
            Ok(recorded) => recorded.filter(|record| has_ended(record.status)),
            Err(error) => {
                // The claim's lease runs out and the call is taken again.
                tracing::warn!(call = %call.id, %error, "an asynchronous call waits for the store");
                self.async_queue.ended(&workflow_id);
                return;
            }
        };
        let end = match recorded {
            // Its execution was committed but not what followed (its node stopped in between):
            // it is not run twice.
            Some(record) => AttemptEnd::Ran(summary_of(&record), Box::new(record)),
            None => self.run_call_request(hot.clone(), &call).await,
        };
        let next = match &end {
            AttemptEnd::Ran(_, record) => retry::next_attempt(&hot, record),
            _ => None,
        };
        let saved = match (end, next) {
            (_, Some(next)) => self.store.retry_async_call(&call.id, &next).await,
            (AttemptEnd::Ran(response, _) | AttemptEnd::Unrunnable(response), None) => {
                self.store
                    .finish_async_call(&call.id, &response, now_ms())
                    .await
            }
            (AttemptEnd::Saturated, None) => self.store.release_async_call(&call.id).await,
        };
        if let Err(error) = saved {
            // The claim's lease runs out and the call is taken again.
            tracing::error!(call = %call.id, %error, "an asynchronous call's end was not recorded");
        }
        self.async_queue.ended(&workflow_id);
    }

    /// Runs the call's current attempt.
    async fn run_call_request(&self, hot: Arc<HotWorkflow>, call: &AsyncCallRecord) -> AttemptEnd {
        let queued = QueuedExecution {
            execution_id: call.execution_id.clone(),
            trigger: call.trigger,
            attempt: call.attempt,
            retry_of: (call.attempt > 1).then(|| call.id.clone()),
        };
        let details = match call.trigger {
            Trigger::Catch => match rebuild_request(&call.request) {
                Ok(request) => CallDetails {
                    request: Some(request),
                    received: Some(received_request(&call.request)),
                    claimed_key: None,
                    replay: None,
                },
                Err(message) => {
                    return AttemptEnd::Unrunnable(json_response(
                        400,
                        serde_json::json!({
                            "status": "error",
                            "execution_id": call.execution_id,
                            "error": {"code": "malformed_body", "message": message},
                        }),
                    ))
                }
            },
            // A retry of a scheduled run: no request.
            _ => CallDetails::default(),
        };
        let report = self.execute_queued(hot, queued, details).await;
        match response_of(&report) {
            Some(response) => AttemptEnd::Ran(response, Box::new(report.record)),
            None => AttemptEnd::Saturated,
        }
    }
}

/// How a claimed call's attempt ended.
enum AttemptEnd {
    /// It ran (or had run before its node stopped): what it answered, and its execution.
    Ran(StoredResponse, Box<ExecutionRecord>),
    /// Its stored request no longer builds a `_request`: answered `400`, nothing ran.
    Unrunnable(StoredResponse),
    /// Refused for lack of a slot: it goes back to the queue.
    Saturated,
}

/// Whether an execution's record is its last: it ran to an end that was committed.
fn has_ended(status: ExecutionStatus) -> bool {
    matches!(
        status,
        ExecutionStatus::Success
            | ExecutionStatus::Error
            | ExecutionStatus::Timeout
            | ExecutionStatus::Killed
    )
}

/// The response of a call known only by its execution's record: its status code, and the
/// summary a default response gives.
fn summary_of(record: &ExecutionRecord) -> StoredResponse {
    json_response(
        record.response_status.unwrap_or(200),
        serde_json::json!({"status": record.status.as_str(), "execution_id": record.id}),
    )
}

fn json_response(status: u16, body: serde_json::Value) -> StoredResponse {
    StoredResponse {
        status,
        headers: json_headers(),
        body: body.to_string().into_bytes(),
    }
}

/// `_request` of a stored request, as the hook built it when the call came in.
fn rebuild_request(request: &QueuedRequest) -> std::result::Result<flowd_core::PyValue, String> {
    let headers = request
        .headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_bytes()))
        .collect();
    build_request(&IncomingRequest {
        headers,
        query: request.query.as_deref(),
        body: bytes::Bytes::copy_from_slice(&request.body),
    })
    .map_err(|error| error.to_string())
}

/// The request as the hook received it, for a workflow's `context` and for replay (stored with
/// the execution like a synchronous call's). The queue keeps no path: it is left empty.
fn received_request(request: &QueuedRequest) -> ReceivedRequest {
    ReceivedRequest {
        raw_body: bytes::Bytes::copy_from_slice(&request.body),
        method: "POST".to_string(),
        query_string: request.query.clone().unwrap_or_default(),
        path: String::new(),
        headers: request
            .headers
            .iter()
            .map(|(name, value)| (name.clone(), value.as_bytes().to_vec()))
            .collect(),
    }
}

/// What the status URL answers once the call has run; `None` for a call refused for lack of a
/// slot, which is queued again.
fn response_of(report: &Report) -> Option<StoredResponse> {
    match &report.reply {
        Ok(Reply {
            status,
            headers,
            body,
        }) => Some(StoredResponse {
            status: *status,
            headers: headers.clone(),
            body: body.clone(),
        }),
        Err(Refusal::Saturated(_)) => None,
        Err(refusal) => Some(json_response(
            flowd_core::response::REFUSED_STATUS,
            serde_json::json!({
                "status": refusal.status_word(),
                "execution_id": report.record.id,
                "error": {"code": refusal.code(), "message": refusal.to_string()},
            }),
        )),
    }
}

fn json_headers() -> Vec<(String, String)> {
    vec![("Content-Type".into(), "application/json".into())]
}
