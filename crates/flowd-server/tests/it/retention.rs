//! Retention: a workflow's own `retention` through the API, and the background task keeping each
//! workflow's history within it.

use std::time::Duration;

use flowd_engine::retention::RetentionConfig;
use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::call;
use crate::support::*;

fn body(name: &str, retention: Value) -> Value {
    json!({
        "name": name, "mode": "catch", "code": catch_code("return None"),
        "retention": retention,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_keeps_the_retention_it_is_created_with() {
    let app = spawn_app().await;
    let retention = json!({"days": 7, "max_executions": 500});

    let created = app.create_workflow(body("kept", retention.clone())).await;

    assert_eq!(created["retention"], retention);
    let id = created["id"].as_str().unwrap();
    let shown = app.get_json(&format!("/workflows/{id}")).await;
    assert_eq!(shown["retention"], retention);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_without_retention_shows_null_the_servers() {
    let app = spawn_app().await;
    let created = app.create_catch("plain", &catch_code("return None")).await;
    assert!(created["retention"].is_null(), "{created}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patching_retention_replaces_it_and_null_gives_back_the_servers() {
    let app = spawn_app().await;
    let created = app
        .create_workflow(body("changing", json!({"days": 7})))
        .await;

    let patched = app
        .patch_workflow(&created, json!({"retention": {"max_executions": 20}}))
        .await;
    assert_eq!(patched["retention"], json!({"max_executions": 20}));

    let reset = app
        .patch_workflow(&created, json!({"retention": null}))
        .await;
    assert!(reset["retention"].is_null(), "{reset}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retention_of_zero_or_with_unknown_fields_is_refused() {
    let app = spawn_app().await;
    for retention in [
        json!({"days": 0}),
        json!({"max_executions": 0}),
        json!({"weeks": 2}),
    ] {
        let answer = call(
            &app,
            Method::POST,
            "/workflows",
            Some(&body("refused", retention.clone())),
        )
        .await;
        assert!(
            answer.status.is_client_error(),
            "{retention}: {} {}",
            answer.status,
            answer.body
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_background_task_keeps_only_a_workflows_newest_executions() {
    let app = spawn_app_with(|config| {
        config.engine.retention = RetentionConfig {
            interval: Duration::from_millis(50),
            ..RetentionConfig::default()
        };
    })
    .await;
    let workflow = app
        .create_workflow(body("bounded", json!({"max_executions": 3})))
        .await;
    let mut ids = Vec::new();
    for _ in 0..6 {
        let response = app.call_hook_json(&workflow, &json!({})).await;
        assert_eq!(response.status(), 200);
        ids.push(execution_id(&response));
    }

    let newest: Vec<String> = ids[3..].iter().rev().cloned().collect();
    eventually(
        Duration::from_secs(10),
        "only the 3 newest are kept",
        || async {
            let kept: Vec<String> = app
                .executions(&workflow)
                .await
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect();
            (kept == newest).then_some(())
        },
    )
    .await;
    app.stop().await;
}
