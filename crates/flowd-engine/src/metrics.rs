//! What the engine reports to the metrics recorder (the `metrics` facade; the server installs the
//! Prometheus exporter, and without a recorder every call here costs nothing). Labels are names,
//! never ids or tokens: `team` and `workflow` are bounded by the workflows that exist (the
//! exporter drops a series left idle, such as a deleted workflow's).

use flowd_store::ExecutionRecord;
use metrics::Label;

use crate::hot::HotWorkflow;

/// Executions ended, by `team`, `workflow`, `mode` and `status` (a counter).
pub const EXECUTIONS: &str = "flowd_executions_total";
/// How long executions ran, by `team`, `workflow` and `mode` (a histogram, seconds).
pub const EXECUTION_DURATION: &str = "flowd_execution_duration_seconds";
/// From a scheduled run's fire time to its start, by `team` and `workflow` (a histogram, seconds).
pub const SCHEDULE_LATENESS: &str = "flowd_schedule_lateness_seconds";

/// Counts an ended execution (run, refused or failed) and, when it ran, how long it took.
pub(crate) fn execution_ended(hot: &HotWorkflow, record: &ExecutionRecord) {
    let labels = workflow_labels(hot);
    let mut with_status = labels.clone();
    with_status.push(Label::new("status", record.status.as_str()));
    metrics::counter!(EXECUTIONS, with_status).increment(1);
    if let Some(duration_ms) = record.duration_ms {
        metrics::histogram!(EXECUTION_DURATION, labels).record(duration_ms as f64 / 1000.0);
    }
}

/// Records how late a scheduled run starts after its fire time.
pub(crate) fn scheduled_run_started(hot: &HotWorkflow, fire_at_ms: i64, started_at_ms: i64) {
    let lateness_ms = started_at_ms.saturating_sub(fire_at_ms).max(0);
    let mut labels = workflow_labels(hot);
    labels.truncate(2);
    metrics::histogram!(SCHEDULE_LATENESS, labels).record(lateness_ms as f64 / 1000.0);
}

/// `team`, `workflow` and `mode`.
fn workflow_labels(hot: &HotWorkflow) -> Vec<Label> {
    vec![
        Label::new("team", hot.team_name.clone()),
        Label::new("workflow", hot.record.name.clone()),
        Label::new("mode", hot.record.mode.as_str()),
    ]
}
