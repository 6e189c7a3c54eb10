//! Which hook requests are stored with their execution for replay, and why one is not: the
//! workflow's `store_requests`, and the server's size cap.

use flowd_store::{request_size, ExecutionRecord, RequestView, StoredRequest, WorkflowRecord};

use crate::delivery::ReceivedRequest;

/// The default of `--request-store-max-bytes`: 1 MiB.
pub const DEFAULT_REQUEST_STORE_MAX_BYTES: u64 = 1 << 20;

/// What `request_not_stored` says of a workflow with `store_requests: false`.
pub const OPTED_OUT: &str = "the workflow does not store requests (store_requests: false)";

/// The request to store with `record` (a call of `workflow` that brought `received`), or, when
/// it must not be, the record says why (`request_not_stored`) and nothing is stored.
pub(crate) fn request_to_store(
    workflow: &WorkflowRecord,
    record: &mut ExecutionRecord,
    received: &ReceivedRequest,
    max_bytes: u64,
) -> Option<StoredRequest> {
    if !workflow.store_requests {
        record.request_not_stored = Some(OPTED_OUT.into());
        return None;
    }
    let size = request_size(
        &received.query_string,
        &received.headers,
        received.raw_body.len(),
    );
    if size > max_bytes {
        record.request_not_stored = Some(format!(
            "the request ({size} bytes) is larger than the {max_bytes}-byte cap on stored requests"
        ));
        return None;
    }
    Some(StoredRequest::new(
        &record.id,
        &workflow.id,
        record.started_at,
        &RequestView {
            method: &received.method,
            path: &received.path,
            query_string: &received.query_string,
            headers: &received.headers,
            body: &received.raw_body,
        },
    ))
}
