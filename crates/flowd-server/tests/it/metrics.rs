//! `/metrics`: scraped over HTTP and read with a Prometheus exposition-format parser.
//!
//! The metrics recorder is one per process: the tests of this binary share it, so each counts
//! what its own workflow (a name no other test uses) did.

use prometheus_parse::{Sample, Scrape, Value as MetricValue};
use serde_json::json;

use crate::support::*;

/// `/metrics` read by the parser.
async fn scrape(app: &TestApp) -> Scrape {
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = response.text().await.expect("text");
    Scrape::parse(text.lines().map(|line| Ok(line.to_string()))).expect("exposition format")
}

fn samples<'a>(scrape: &'a Scrape, name: &str, workflow: &str) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && s.labels.get("workflow") == Some(workflow))
        .collect()
}

fn counter(sample: &Sample) -> f64 {
    match sample.value {
        MetricValue::Counter(value) | MetricValue::Untyped(value) => value,
        ref other => panic!("{} is not a counter: {other:?}", sample.metric),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_are_counted_by_workflow_mode_and_status() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "metrics-counted",
            &catch_code(
                "if _request.get('fail'):\n    raise ValueError('no')\nreturn {'status_code': 200}",
            ),
        )
        .await;
    for fail in [false, false, false, true] {
        app.call_hook_json(&workflow, &json!({"fail": fail})).await;
    }
    let scrape = scrape(&app).await;
    let executions = samples(&scrape, "flowd_executions_total", "metrics-counted");
    let by_status = |status: &str| {
        executions
            .iter()
            .find(|s| s.labels.get("status") == Some(status))
            .map(|s| counter(s))
    };
    assert_eq!(by_status("success"), Some(3.0));
    assert_eq!(by_status("error"), Some(1.0));
    assert!(executions
        .iter()
        .all(|s| s.labels.get("mode") == Some("catch") && s.labels.get("team") == Some("default")));
}

#[tokio::test(flavor = "multi_thread")]
async fn execution_durations_are_a_histogram() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch("metrics-timed", &catch_code("return {'status_code': 200}"))
        .await;
    app.call_hook_json(&workflow, &json!({})).await;
    app.call_hook_json(&workflow, &json!({})).await;
    let scrape = scrape(&app).await;
    let histogram = samples(&scrape, "flowd_execution_duration_seconds", "metrics-timed");
    let [sample] = histogram.as_slice() else {
        panic!("one histogram: {histogram:?}");
    };
    let MetricValue::Histogram(buckets) = &sample.value else {
        panic!("not a histogram: {sample:?}");
    };
    let infinite = buckets
        .iter()
        .find(|bucket| bucket.less_than.is_infinite())
        .expect("the +Inf bucket");
    assert_eq!(infinite.count, 2.0);
    assert!(buckets.len() > 5, "buckets: {buckets:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn hook_responses_are_counted_by_status_code_and_unknown_hooks_get_no_names() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "metrics-hooked",
            &catch_code("return {'status_code': 202, 'body': 'accepted'}"),
        )
        .await;
    app.call_hook_json(&workflow, &json!({})).await;
    let forged = hook_path(&workflow).replace("metrics-hooked", "metrics-made-up");
    let response = app
        .client
        .post(app.url(&forged))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let scrape = scrape(&app).await;
    let answered = samples(&scrape, "flowd_hook_responses_total", "metrics-hooked");
    let [sample] = answered.as_slice() else {
        panic!("one series: {answered:?}");
    };
    assert_eq!(sample.labels.get("code"), Some("202"));
    assert_eq!(counter(sample), 1.0);
    assert!(
        !scrape
            .samples
            .iter()
            .any(|s| s.labels.values().any(|v| v.contains("made-up"))),
        "a name from an unmatched URL became a label"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn levels_are_read_at_each_scrape() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch("metrics-levels", &catch_code("return {'status_code': 200}"))
        .await;
    app.call_hook_json(&workflow, &json!({})).await;
    let scrape = scrape(&app).await;
    let value = |name: &str| {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name)
            .map(|s| match s.value {
                MetricValue::Gauge(value) | MetricValue::Untyped(value) => value,
                ref other => panic!("{name} is not a gauge: {other:?}"),
            })
            .unwrap_or_else(|| panic!("{name} is missing"))
    };
    assert!(value("flowd_database_size_bytes") > 0.0);
    assert!(value("flowd_warm_instances") >= 1.0);
    assert!(value("flowd_executions_in_flight") >= 0.0);
    assert!(value("flowd_admission_queue_depth") >= 0.0);
    for name in [
        "flowd_warm_instance_starts_total",
        "flowd_store_commit_duration_seconds",
        "flowd_store_commit_batch_size",
    ] {
        assert!(
            scrape.samples.iter().any(|s| s.metric == name),
            "{name} is missing"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_need_an_api_key_on_the_main_address() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    let response = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("not-a-key")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_public_serves_them_without_a_key() {
    let app = spawn_app_with(|config| config.metrics_public = true).await;
    let response = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_runs_record_their_lateness() {
    let app = spawn_app().await;
    app.create_workflow(json!({
        "name": "metrics-scheduled",
        "mode": "pull",
        "code": pull_code("pass"),
        "schedule": {"every": "1s"},
    }))
    .await;
    let lateness = eventually(
        std::time::Duration::from_secs(20),
        "a scheduled run's lateness is recorded",
        || async {
            let scrape = scrape(&app).await;
            samples(
                &scrape,
                "flowd_schedule_lateness_seconds",
                "metrics-scheduled",
            )
            .first()
            .map(|sample| sample.value.clone())
        },
    )
    .await;
    let MetricValue::Histogram(buckets) = lateness else {
        panic!("not a histogram: {lateness:?}");
    };
    assert!(
        buckets.iter().any(|bucket| bucket.count >= 1.0),
        "{buckets:?}"
    );
}
