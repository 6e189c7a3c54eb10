//! Idempotency keys of hook calls: a call carrying a key claims it in the store (one row per
//! workflow and key, so that one delivery runs once even across nodes sharing the store), and
//! the response of the execution it ran is stored in the commit of that execution, for the
//! repeats of the call to be answered with.

/// A key being claimed by [`crate::Store::claim_idempotency_key`].
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyClaim {
    pub workflow_id: String,
    pub key: String,
    /// What identifies the request the key was first sent with (a digest of its body and query
    /// string): the same key with another request is refused.
    pub request_digest: String,
    /// The execution the claim runs.
    pub execution_id: String,
    pub claimed_at: i64,
    /// When the key may be used again for another request (and is swept).
    pub expires_at: i64,
    /// A claim without a response made before this time is taken over: its execution cannot be
    /// running any more (its node stopped before completing it).
    pub stale_before: i64,
}

/// A claimed key, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub workflow_id: String,
    pub key: String,
    pub request_digest: String,
    pub execution_id: String,
    pub claimed_at: i64,
    pub expires_at: i64,
    /// The response of the execution, once it is committed (`None` while it runs).
    pub response: Option<StoredResponse>,
}

/// An execution's HTTP response as its caller got it (without `X-Execution-Id`, which the
/// record's execution id gives back).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What [`crate::Store::claim_idempotency_key`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum IdempotencyClaimOutcome {
    /// The key is the claim's: run the execution.
    Claimed,
    /// The key is held (its execution running or done) and not expired: this is a repeat.
    Held(IdempotencyRecord),
}
