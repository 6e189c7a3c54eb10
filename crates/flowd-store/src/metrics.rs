//! What the executions' commits report to the metrics recorder (the `metrics` facade: without a
//! recorder installed, nothing), alike for every backend.

use std::time::Duration;

/// How long one commit of executions' writes took, by `backend` (a histogram, seconds).
pub const COMMIT_DURATION: &str = "flowd_store_commit_duration_seconds";
/// How many calls' writes one commit held, by `backend` (a histogram; 1 for an inline commit).
pub const COMMIT_BATCH_SIZE: &str = "flowd_store_commit_batch_size";

/// Records a commit of the writes of `calls` calls.
pub(crate) fn committed(backend: &'static str, calls: usize, took: Duration) {
    metrics::histogram!(COMMIT_DURATION, "backend" => backend).record(took.as_secs_f64());
    metrics::histogram!(COMMIT_BATCH_SIZE, "backend" => backend).record(calls as f64);
}
