//! The durable queue of asynchronous hook calls: what a call that was answered `202` keeps in the
//! store until it has run, and what it answered once it has.

use crate::StoredResponse;

/// A hook request as it was received, enough to build its `_request` again.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueuedRequest {
    /// Header names as received, values as `_request` reads them (UTF-8, else Latin-1), in
    /// order; a header sent several times appears several times.
    pub headers: Vec<(String, String)>,
    /// The raw query string, without the leading `?`.
    pub query: Option<String>,
    pub body: Vec<u8>,
}

/// Where an asynchronous call is.
#[derive(Debug, Clone, PartialEq)]
pub enum AsyncCallState {
    /// Waiting to be claimed.
    Queued,
    /// Taken by the node `node_id`, which runs it before `lease_until` (epoch ms); past that, or
    /// once that node is reaped, any node may claim it again.
    Claimed { lease_until: i64, node_id: String },
    /// Run: what it answered.
    Done {
        response: StoredResponse,
        finished_at: i64,
    },
}

impl AsyncCallState {
    /// The word stored in the `state` column.
    pub fn as_str(&self) -> &'static str {
        match self {
            AsyncCallState::Queued => "queued",
            AsyncCallState::Claimed { .. } => "claimed",
            AsyncCallState::Done { .. } => "done",
        }
    }
}

/// An execution queued in the store: a call answered `202` (its execution id, the token of its
/// status URL, its request), or the retry of a scheduled run.
#[derive(Debug, Clone, PartialEq)]
pub struct AsyncCallRecord {
    /// The id of its first attempt's execution (a retry's `retry_of`).
    pub id: String,
    pub workflow_id: String,
    /// The secret last segment of its status URL.
    pub token: String,
    pub request: QueuedRequest,
    pub enqueued_at: i64,
    pub state: AsyncCallState,
    /// The execution id of its current attempt (`id` for the first).
    pub execution_id: String,
    /// Its current attempt, 1-based.
    pub attempt: u32,
    /// What started its first attempt: a hook call (`catch`) or a scheduled run (`pull`).
    pub trigger: flowd_core::workflow::Trigger,
    /// Not claimed before this time (epoch ms): a retry's backoff.
    pub not_before: Option<i64>,
}

/// The next attempt of a queued execution whose attempt ended in a status its workflow retries.
#[derive(Debug, Clone, PartialEq)]
pub struct NextAttempt {
    pub execution_id: String,
    pub attempt: u32,
    /// Not claimed before this time (epoch ms).
    pub not_before: i64,
}

/// How many calls the queue may hold (not yet done): in all, and per workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBound {
    pub total: u64,
    pub per_workflow: u64,
}

/// What [`crate::Store::enqueue_async_call`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Committed: the call will run.
    Queued,
    /// The queue (all of it, or the workflow's share) is full: nothing was written.
    Full,
}

/// The columns of an `async_calls` row as both backends read them; [`AsyncCallRow::into_record`]
/// checks them.
pub(crate) struct AsyncCallRow {
    pub id: String,
    pub workflow_id: String,
    pub token: String,
    pub request_headers: Option<String>,
    pub request_query: Option<String>,
    pub request_body: Option<Vec<u8>>,
    pub enqueued_at: i64,
    pub state: String,
    pub lease_until: Option<i64>,
    pub node_id: Option<String>,
    pub response_status: Option<i64>,
    pub response_headers: Option<String>,
    pub response_body: Option<Vec<u8>>,
    pub finished_at: Option<i64>,
    pub execution_id: Option<String>,
    pub attempt: i64,
    pub trigger: String,
    pub not_before: Option<i64>,
}

/// The columns [`AsyncCallRow`] reads, in the order both backends select them.
pub(crate) const ASYNC_CALL_COLUMNS: &str = "id, workflow_id, token, request_headers, \
     request_query, request_body, enqueued_at, state, lease_until, node_id, response_status, \
     response_headers, response_body, finished_at, execution_id, attempt, \"trigger\", not_before";

impl AsyncCallRow {
    pub(crate) fn into_record(self) -> crate::Result<AsyncCallRecord> {
        let corrupt =
            |what: &str| crate::StoreError::Corrupt(format!("async_calls row {}: {what}", self.id));
        let headers = |text: &Option<String>, what: &str| -> crate::Result<Vec<(String, String)>> {
            match text {
                Some(text) => serde_json::from_str(text)
                    .map_err(|err| corrupt(&format!("{what} is not valid JSON: {err}"))),
                None => Ok(Vec::new()),
            }
        };
        let state = match self.state.as_str() {
            "queued" => AsyncCallState::Queued,
            "claimed" => AsyncCallState::Claimed {
                lease_until: self
                    .lease_until
                    .ok_or_else(|| corrupt("claimed without a lease"))?,
                node_id: self
                    .node_id
                    .clone()
                    .ok_or_else(|| corrupt("claimed without a node"))?,
            },
            "done" => AsyncCallState::Done {
                response: StoredResponse {
                    status: self
                        .response_status
                        .and_then(|status| u16::try_from(status).ok())
                        .ok_or_else(|| corrupt("done without a valid response status"))?,
                    headers: headers(&self.response_headers, "response_headers")?,
                    body: self.response_body.clone().unwrap_or_default(),
                },
                finished_at: self
                    .finished_at
                    .ok_or_else(|| corrupt("done without finished_at"))?,
            },
            other => return Err(corrupt(&format!("unknown state {other:?}"))),
        };
        let attempt = u32::try_from(self.attempt)
            .ok()
            .filter(|attempt| *attempt >= 1)
            .ok_or_else(|| {
                corrupt(&format!(
                    "attempt {} is not a positive number",
                    self.attempt
                ))
            })?;
        let trigger = self
            .trigger
            .parse()
            .map_err(|err: String| corrupt(&format!("trigger: {err}")))?;
        Ok(AsyncCallRecord {
            execution_id: self.execution_id.unwrap_or_else(|| self.id.clone()),
            attempt,
            trigger,
            not_before: self.not_before,
            request: QueuedRequest {
                headers: headers(&self.request_headers, "request_headers")?,
                query: self.request_query,
                body: self.request_body.unwrap_or_default(),
            },
            id: self.id,
            workflow_id: self.workflow_id,
            token: self.token,
            enqueued_at: self.enqueued_at,
            state,
        })
    }
}

/// Header pairs as the JSON the `*_headers` columns hold.
pub(crate) fn headers_json(headers: &[(String, String)]) -> String {
    // An array of pairs of strings always serialises.
    serde_json::to_string(headers).unwrap_or_else(|_| "[]".to_string())
}
