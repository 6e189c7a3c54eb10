//! What a call brings to its execution: `_request`, the request as received (for a workflow
//! that declares a `context` parameter), and the idempotency key it claimed.

use bytes::Bytes;
use flowd_core::PyValue;

/// A hook call as received.
#[derive(Debug, Clone, Default)]
pub struct ReceivedRequest {
    /// The body exactly as received.
    pub raw_body: Bytes,
    pub method: String,
    /// The raw query string, without `?` (empty when there is none).
    pub query_string: String,
}

/// An idempotency key claimed for an execution (see [`crate::Engine::claim_delivery`]): the
/// execution runs under that id, and its response is stored with its record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedKey {
    pub key: String,
    pub execution_id: String,
}

/// The call an execution runs for.
#[derive(Debug, Clone, Default)]
pub struct CallDetails {
    /// `_request` (catch).
    pub request: Option<PyValue>,
    pub received: Option<ReceivedRequest>,
    pub claimed_key: Option<ClaimedKey>,
}
