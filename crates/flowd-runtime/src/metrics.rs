//! What the runtime reports to the metrics recorder (the `metrics` facade: without a recorder
//! installed, nothing). Labels are the runtime's name (`python3.11`), never a version key.

use std::time::Duration;

/// Warm instances started, by `runtime` (a counter).
pub const WARM_STARTS: &str = "flowd_warm_instance_starts_total";
/// Warm instances stopped by the LRU (count or memory budget), by `runtime` (a counter).
pub const WARM_EVICTIONS: &str = "flowd_warm_instance_evictions_total";
/// Environments of requirement sets built, by `runtime` and `outcome` (`ok`, `failed`; a counter).
pub const ENV_BUILDS: &str = "flowd_environment_builds_total";
/// How long an environment's build took, by `runtime` (a histogram, seconds).
pub const ENV_BUILD_DURATION: &str = "flowd_environment_build_duration_seconds";

pub(crate) fn warm_instance_started(runtime: &str) {
    metrics::counter!(WARM_STARTS, "runtime" => runtime.to_string()).increment(1);
}

pub(crate) fn warm_instances_evicted(runtime: &str, count: usize) {
    if count > 0 {
        metrics::counter!(WARM_EVICTIONS, "runtime" => runtime.to_string()).increment(count as u64);
    }
}

/// Records a build that ran (an environment found built is not a build).
pub(crate) fn environment_built(runtime: &str, succeeded: bool, took: Duration) {
    let outcome = if succeeded { "ok" } else { "failed" };
    metrics::counter!(ENV_BUILDS, "runtime" => runtime.to_string(), "outcome" => outcome)
        .increment(1);
    metrics::histogram!(ENV_BUILD_DURATION, "runtime" => runtime.to_string())
        .record(took.as_secs_f64());
}
