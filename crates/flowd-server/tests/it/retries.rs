//! Retries of asynchronous calls: a workflow's `retry` policy queues the next attempt of a call
//! whose attempt ended in a status it lists, each attempt an execution of its own linked to the
//! first (`attempt`, `retry_of`); the status URL answers the last attempt's response.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::{call, id};
use crate::support::*;

/// A catch workflow whose attempts before `succeeding_attempt` raise, and whose attempt
/// `succeeding_attempt` answers `attempt n`; `context.attempt` tells them apart.
fn code_succeeding_at(succeeding_attempt: u32) -> String {
    format!(
        "def workflow(_request, settings, context):\n    \
         if context.attempt < {succeeding_attempt}:\n        \
         raise ValueError('attempt %d fails' % context.attempt)\n    \
         return {{'status_code': 200, 'body': 'attempt %d' % context.attempt}}\n"
    )
}

async fn create_retrying(app: &TestApp, name: &str, code: &str, retry: Value) -> Value {
    app.create_workflow(json!({"name": name, "mode": "catch", "code": code, "retry": retry}))
        .await
}

/// Calls the workflow asynchronously and polls its status URL until its last attempt has run.
async fn last_response(app: &TestApp, workflow: &Value) -> reqwest::Response {
    let accepted = app
        .client
        .post(app.url(hook_path(workflow)))
        .header("Prefer", "respond-async")
        .json(&json!({}))
        .send()
        .await
        .expect("hook request");
    assert_eq!(accepted.status(), 202);
    let status_url = accepted.headers()["location"].to_str().unwrap().to_string();
    eventually(
        Duration::from_secs(60),
        "the last attempt has run",
        || async {
            let response = app.client.get(app.url(&status_url)).send().await.unwrap();
            (response.status() != 202).then_some(response)
        },
    )
    .await
}

/// The workflow's executions, oldest first, as (attempt, status, retry_of).
async fn attempts(app: &TestApp, workflow: &Value) -> Vec<(u64, String, Value)> {
    let mut executions = app.executions(workflow).await;
    executions.reverse();
    executions
        .iter()
        .map(|execution| {
            (
                execution["attempt"].as_u64().expect("attempt"),
                execution["status"].as_str().expect("status").to_string(),
                execution["retry_of"].clone(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_failing_twice_then_succeeding_gives_three_executions_linked_to_the_first() {
    let app = spawn_app().await;
    let workflow = create_retrying(
        &app,
        "flaky",
        &code_succeeding_at(3),
        json!({"max_attempts": 3, "backoff_s": 0.1, "on": ["error"]}),
    )
    .await;

    let response = last_response(&app, &workflow).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-execution-status"], "success");
    let last_id = execution_id(&response);
    assert_eq!(response.text().await.unwrap(), "attempt 3");
    let executions = attempts(&app, &workflow).await;
    let first = app.executions(&workflow).await.last().expect("a first")["id"].clone();
    assert_eq!(
        executions,
        vec![
            (1, "error".to_string(), Value::Null),
            (2, "error".to_string(), first.clone()),
            (3, "success".to_string(), first),
        ]
    );
    let detail = app.execution(&last_id).await;
    assert_eq!(
        (detail["attempt"].as_u64(), detail["status"].as_str()),
        (Some(3), Some("success"))
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_status_not_in_on_is_not_retried() {
    let app = spawn_app().await;
    let workflow = create_retrying(
        &app,
        "timeouts-only",
        &code_succeeding_at(2),
        json!({"max_attempts": 3, "backoff_s": 0.1, "on": ["timeout"]}),
    )
    .await;

    let response = last_response(&app, &workflow).await;

    assert_eq!(response.headers()["x-execution-status"], "error");
    assert_eq!(
        attempts(&app, &workflow).await,
        vec![(1, "error".to_string(), Value::Null)]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn retries_stop_when_the_attempts_are_spent() {
    let app = spawn_app().await;
    let workflow = create_retrying(
        &app,
        "hopeless",
        &code_succeeding_at(99),
        json!({"max_attempts": 2, "backoff_s": 0.1}),
    )
    .await;

    let response = last_response(&app, &workflow).await;

    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-execution-status"], "error");
    let executions = attempts(&app, &workflow).await;
    assert_eq!(
        executions
            .iter()
            .map(|(n, status, _)| (*n, status.as_str()))
            .collect::<Vec<_>>(),
        [(1, "error"), (2, "error")]
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_shows_its_retry_policy_and_patch_null_removes_it() {
    let app = spawn_app().await;
    let workflow = create_retrying(
        &app,
        "shown",
        &catch_code("return 1"),
        json!({"max_attempts": 4, "backoff_s": 2.5, "on": ["error", "killed"]}),
    )
    .await;
    assert_eq!(
        workflow["retry"],
        json!({"max_attempts": 4, "backoff_s": 2.5, "on": ["error", "killed"]})
    );

    let patched = app.patch_workflow(&workflow, json!({"retry": null})).await;

    assert_eq!(patched["retry"], Value::Null);
    assert_eq!(
        app.get_json(&format!("/workflows/{}", id(&workflow))).await["retry"],
        Value::Null
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_invalid_retry_policy_is_422_naming_the_field() {
    let app = spawn_app().await;
    for (retry, field) in [
        (json!({"max_attempts": 0}), "retry.max_attempts"),
        (json!({"max_attempts": 11}), "retry.max_attempts"),
        (
            json!({"max_attempts": 3, "backoff_s": 0.05}),
            "retry.backoff_s",
        ),
        (json!({"max_attempts": 3, "on": []}), "retry.on"),
        (json!({"max_attempts": 3, "on": ["success"]}), "retry.on"),
        (json!({"max_attempts": 3, "on": ["sometimes"]}), "retry.on"),
    ] {
        let body =
            json!({"name": "bad", "mode": "catch", "code": catch_code("return 1"), "retry": retry});
        let answer = call(&app, Method::POST, "/workflows", Some(&body)).await;
        assert_eq!(answer.status, 422, "{retry}: {}", answer.body);
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{retry}: {message}");
    }
    app.stop().await;
}
