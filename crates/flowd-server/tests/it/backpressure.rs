//! Back-pressure: beyond `max_concurrent_executions` + `queue_depth`, calls are refused at once
//! with `503` and `Retry-After`, never left hanging.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::{call, create_pull, hook_answer, id, Answer};
use crate::support::*;

/// A catch workflow that sleeps `_request["sleep"]` seconds (default 0).
async fn sleeper(app: &TestApp) -> Value {
    app.create_catch(
        "sleeper",
        &catch_code("import time\ntime.sleep(_request.get('sleep', 0))\nreturn {'status_code': 200, 'body': 'done'}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_call_beyond_capacity_gets_503_with_retry_after_at_once() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 0;
    })
    .await;
    let workflow = sleeper(&app).await;
    let (long, short) = (json!({"sleep": 2}), json!({}));
    let busy = hook_answer(&app, &workflow, &long);
    let refused = async {
        app.wait_in_flight(1).await;
        let started = Instant::now();
        let answer = hook_answer(&app, &workflow, &short).await;
        (answer, started.elapsed())
    };
    let (busy, (refused, waited)) = tokio::join!(busy, refused);
    assert_eq!(busy.status, 200);
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.header("retry-after").is_some());
    assert!(waited < Duration::from_secs(1), "answered in {waited:?}");
    assert_eq!(refused.body["status"], "saturated", "{}", refused.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_hook_call_is_recorded_as_skipped() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 0;
    })
    .await;
    let workflow = sleeper(&app).await;
    let (long, short) = (json!({"sleep": 1}), json!({}));
    let busy = hook_answer(&app, &workflow, &long);
    let refused = async {
        app.wait_in_flight(1).await;
        hook_answer(&app, &workflow, &short).await
    };
    let (_, refused) = tokio::join!(busy, refused);
    let execution_id = refused.header("x-execution-id").expect("X-Execution-Id");
    assert_eq!(refused.body["execution_id"], execution_id);
    app.state.engine.flush().await;
    let record = app.execution(execution_id).await;
    assert_eq!(record["status"], "skipped", "{record}");
    assert_eq!(record["response_status"], 503);
    assert_eq!(record["warnings"].as_array().unwrap().len(), 1, "{record}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_call_that_fits_in_the_queue_waits_and_runs() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 1;
    })
    .await;
    let workflow = sleeper(&app).await;
    let (long, short) = (json!({"sleep": 1}), json!({}));
    let busy = hook_answer(&app, &workflow, &long);
    let queued = async {
        app.wait_in_flight(1).await;
        hook_answer(&app, &workflow, &short).await
    };
    let (busy, queued) = tokio::join!(busy, queued);
    assert_eq!(busy.status, 200);
    assert_eq!(queued.status, 200, "{}", queued.body);
    assert_eq!(queued.body, "done");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_call_beyond_the_queue_gets_503() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 1;
    })
    .await;
    let workflow = sleeper(&app).await;
    let (long, short) = (json!({"sleep": 1.5}), json!({}));
    let busy = hook_answer(&app, &workflow, &long);
    let queued = async {
        app.wait_in_flight(1).await;
        hook_answer(&app, &workflow, &short).await
    };
    let refused = async {
        app.wait_in_flight(1).await;
        eventually(
            Duration::from_secs(10),
            "a call waits in the queue's one place",
            || async { (app.state.engine.executions_queued() == 1).then_some(()) },
        )
        .await;
        hook_answer(&app, &workflow, &short).await
    };
    let (_, queued, refused) = tokio::join!(busy, queued, refused);
    assert_eq!(queued.status, 200, "{}", queued.body);
    assert_eq!(refused.status, 503, "{}", refused.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_queued_hook_call_gets_503_when_its_wait_is_too_long() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 1;
        c.engine.queue_timeout = Duration::from_millis(300);
    })
    .await;
    let workflow = sleeper(&app).await;
    let (long, short) = (json!({"sleep": 3}), json!({}));
    let busy = hook_answer(&app, &workflow, &long);
    let queued = async {
        app.wait_in_flight(1).await;
        let started = Instant::now();
        (
            hook_answer(&app, &workflow, &short).await,
            started.elapsed(),
        )
    };
    let (_, (queued, waited)) = tokio::join!(busy, queued);
    assert_eq!(queued.status, 503, "{}", queued.body);
    assert!(queued.header("retry-after").is_some());
    assert!(waited < Duration::from_secs(2), "answered in {waited:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_run_again_once_the_load_has_passed() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 0;
    })
    .await;
    let workflow = sleeper(&app).await;
    let (long, short) = (json!({"sleep": 1}), json!({}));
    let busy = hook_answer(&app, &workflow, &long);
    let refused = async {
        app.wait_in_flight(1).await;
        hook_answer(&app, &workflow, &short).await
    };
    let (_, refused) = tokio::join!(busy, refused);
    assert_eq!(refused.status, 503);
    let answer = hook_answer(&app, &workflow, &short).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_burst_of_hook_calls_is_answered_in_full_without_hanging() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 2;
        c.engine.queue_depth = 2;
    })
    .await;
    let workflow = sleeper(&app).await;
    let body = json!({"sleep": 0.5});
    let started = Instant::now();
    let answers: Vec<Answer> = tokio::time::timeout(
        Duration::from_secs(20),
        futures::future::join_all((0..20).map(|_| hook_answer(&app, &workflow, &body))),
    )
    .await
    .expect("every call answered");
    let ok = answers.iter().filter(|a| a.status == 200).count();
    let refused = answers.iter().filter(|a| a.status == 503).count();
    assert_eq!(ok + refused, 20, "only 200 and 503");
    assert!(ok >= 4, "the slots and the queue were used: {ok} ran");
    assert!(refused >= 1, "the rest was refused");
    assert!(started.elapsed() < Duration::from_secs(10));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manual_run_beyond_capacity_gets_503_with_retry_after() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 0;
    })
    .await;
    let workflow = sleeper(&app).await;
    let pull = create_pull(&app, "p", &pull_code("return None")).await;
    let long = json!({"sleep": 1.5});
    let busy = hook_answer(&app, &workflow, &long);
    let refused = async {
        app.wait_in_flight(1).await;
        call(
            &app,
            Method::POST,
            &format!("/workflows/{}/runs", id(&pull)),
            Some(&json!({})),
        )
        .await
    };
    let (_, refused) = tokio::join!(busy, refused);
    refused.assert_error(503, "saturated");
    assert!(refused.header("retry-after").is_some());
    let execution_id = refused.body["error"]["execution_id"]
        .as_str()
        .expect("the skipped execution's id");
    app.state.engine.flush().await;
    assert_eq!(app.execution(execution_id).await["status"], "skipped");
    app.stop().await;
}
