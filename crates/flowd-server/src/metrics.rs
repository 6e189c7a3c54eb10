//! `GET /metrics`: Prometheus' text exposition format, from the `metrics` facade every crate
//! records into and `metrics-exporter-prometheus` renders. What a crate counts as it happens
//! (executions, commits, builds) is recorded where it happens; what is a level (executions in
//! flight, the admission queue, warm instances, the database's size) is read here, at each scrape.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use metrics_util::MetricKindMask;

use crate::AppState;

/// Hook calls answered, by `team`, `workflow` and HTTP status `code` (a counter). A call that
/// matched no workflow (unknown name or wrong token) is counted with empty `team` and `workflow`:
/// names from a URL nobody checked are not labels.
pub const HOOK_RESPONSES: &str = "flowd_hook_responses_total";
/// Calls waiting for an execution slot of the server (a gauge).
pub const ADMISSION_QUEUE_DEPTH: &str = "flowd_admission_queue_depth";
/// Executions holding a slot of the server (a gauge).
pub const EXECUTIONS_IN_FLIGHT: &str = "flowd_executions_in_flight";
/// Warm instances kept, by `runtime` (a gauge).
pub const WARM_INSTANCES: &str = "flowd_warm_instances";
/// The database's size in bytes (a gauge; see `Store::database_size`).
pub const DATABASE_SIZE: &str = "flowd_database_size_bytes";

/// A series not updated for this long is dropped from the output (a deleted workflow's, for
/// one); a workflow that runs again starts its series anew, which Prometheus reads as a reset.
/// Longer than a week, so that weekly schedules keep theirs.
const IDLE_SERIES_TIMEOUT: Duration = Duration::from_secs(8 * 24 * 3600);
/// How often the exporter's histograms are drained and idle series dropped between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// The longest a scrape waits for the store to say its size.
const DATABASE_SIZE_TIMEOUT: Duration = Duration::from_secs(2);

const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The process's metrics recorder, installed on first use. The recorder is process-wide (one per
/// process, like the `metrics` facade it serves): servers started in one process share it.
pub fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = builder().build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("another metrics recorder is installed: /metrics shows nothing");
        }
        let upkeep = handle.clone();
        let spawned = std::thread::Builder::new()
            .name("flowd-metrics".into())
            .spawn(move || loop {
                std::thread::sleep(UPKEEP_EVERY);
                upkeep.run_upkeep();
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start the metrics' upkeep thread: histograms are drained at scrapes only");
        }
        handle
    })
}

fn builder() -> PrometheusBuilder {
    let buckets: [(&str, &[f64]); 5] = [
        (
            flowd_engine::metrics::EXECUTION_DURATION,
            &[
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
                900.0,
            ],
        ),
        (
            flowd_engine::metrics::SCHEDULE_LATENESS,
            &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0],
        ),
        (
            flowd_runtime::metrics::ENV_BUILD_DURATION,
            &[1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0],
        ),
        (
            flowd_store::metrics::COMMIT_DURATION,
            &[
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
            ],
        ),
        (
            flowd_store::metrics::COMMIT_BATCH_SIZE,
            &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0],
        ),
    ];
    let mut builder = PrometheusBuilder::new().idle_timeout(
        MetricKindMask::COUNTER | MetricKindMask::HISTOGRAM,
        Some(IDLE_SERIES_TIMEOUT),
    );
    for (name, bounds) in buckets {
        builder = builder
            .set_buckets_for_metric(Matcher::Full(name.to_string()), bounds)
            .expect("only an empty bucket list is refused, and these are constants");
    }
    builder
}

/// Counts a hook call's answer.
pub fn hook_answered(matched: Option<(&str, &str)>, status: StatusCode) {
    let (team, workflow) = matched.unwrap_or(("", ""));
    metrics::counter!(
        HOOK_RESPONSES,
        "team" => team.to_string(),
        "workflow" => workflow.to_string(),
        "code" => status.as_u16().to_string(),
    )
    .increment(1);
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<Arc<AppState>>) -> Response {
    read_levels(&state).await;
    let handle = recorder();
    handle.run_upkeep();
    let mut response = (StatusCode::OK, handle.render()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_FORMAT));
    response
}

/// Sets the gauges that are read rather than counted.
async fn read_levels(state: &AppState) {
    let engine = &state.engine;
    metrics::gauge!(ADMISSION_QUEUE_DEPTH).set(engine.executions_queued() as f64);
    metrics::gauge!(EXECUTIONS_IN_FLIGHT).set(engine.executions_in_flight() as f64);
    for runtime in engine.runtimes().all() {
        metrics::gauge!(WARM_INSTANCES, "runtime" => runtime.name().to_string())
            .set(runtime.warm_instances() as f64);
    }
    match tokio::time::timeout(DATABASE_SIZE_TIMEOUT, engine.store().database_size()).await {
        Ok(Ok(bytes)) => metrics::gauge!(DATABASE_SIZE).set(bytes as f64),
        Ok(Err(error)) => tracing::warn!(%error, "cannot read the database's size for /metrics"),
        Err(_) => {
            tracing::warn!("the store did not say its size within 2 s; /metrics shows the last one")
        }
    }
}
