//! What a call brings to its execution: `_request`, the request as received (for a workflow
//! that declares a `context` parameter, and stored for replay), the idempotency key it claimed,
//! and for a replay the execution it replays and the version it runs.

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
    /// The path as received.
    pub path: String,
    /// The headers as received, in order.
    pub headers: Vec<(String, Vec<u8>)>,
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
    /// For a replay: what it replays, and on which version.
    pub replay: Option<Replay>,
}

/// A replay of a stored request: the execution it came with, and the version to run (`None`:
/// the active one).
#[derive(Clone)]
pub struct Replay {
    pub of: String,
    pub version: Option<std::sync::Arc<crate::hot::ActiveVersion>>,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("of", &self.of)
            .field("version", &self.version.as_ref().map(|v| v.number))
            .finish()
    }
}
