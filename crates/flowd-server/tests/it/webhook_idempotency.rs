//! CONTRACT.md §2 "Idempotent deliveries": a call repeating an idempotency key gets the first
//! execution's response without running again — after it, or while it still runs — the same key
//! with another body is refused, and keys expire.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// Counts its runs in the settings and answers with a custom status, header and body.
const COUNTING: &str = "import time\ndef workflow(_request, settings):\n    time.sleep(_request.get('sleep', 0))\n    settings['runs'] = settings.get('runs', 0) + 1\n    return {'status_code': 201, 'headers': {'X-Run': str(settings['runs'])}, 'body': 'run %d' % settings['runs']}\n";

async fn counting(app: &TestApp) -> Value {
    app.create_catch("counting", COUNTING).await
}

async fn deliver(app: &TestApp, workflow: &Value, key: &str, body: &Value) -> reqwest::Response {
    app.hook(workflow)
        .header("idempotency-key", key)
        .json(body)
        .send()
        .await
        .expect("hook call")
}

fn header(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .map(|value| value.to_str().expect("ASCII").to_string())
}

#[tokio::test]
async fn repeated_key_gets_the_first_response_without_running_again() {
    let app = spawn_app().await;
    let workflow = counting(&app).await;
    let first = deliver(&app, &workflow, "delivery-1", &json!({})).await;
    let first_id = execution_id(&first);
    assert_eq!(first.status(), 201);
    assert_eq!(header(&first, "idempotent-replayed"), None);
    let repeat = deliver(&app, &workflow, "delivery-1", &json!({})).await;
    assert_eq!(repeat.status(), 201);
    assert_eq!(execution_id(&repeat), first_id);
    assert_eq!(header(&repeat, "x-run").as_deref(), Some("1"));
    assert_eq!(
        header(&repeat, "idempotent-replayed").as_deref(),
        Some("true")
    );
    assert_eq!(repeat.text().await.expect("body"), "run 1");
    assert_eq!(app.settings(&workflow).await["runs"], 1);
    assert_eq!(app.executions(&workflow).await.len(), 1);
}

#[tokio::test]
async fn another_key_runs_again() {
    let app = spawn_app().await;
    let workflow = counting(&app).await;
    deliver(&app, &workflow, "a", &json!({})).await;
    let second = deliver(&app, &workflow, "b", &json!({})).await;
    assert_eq!(second.text().await.expect("body"), "run 2");
}

#[tokio::test]
async fn concurrent_repeats_wait_for_the_one_execution() {
    let app = spawn_app().await;
    let workflow = counting(&app).await;
    let body = json!({"sleep": 1});
    let calls = (0..4).map(|_| deliver(&app, &workflow, "same", &body));
    let responses = futures::future::join_all(calls).await;
    let ids: Vec<String> = responses.iter().map(execution_id).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    for response in responses {
        assert_eq!(response.status(), 201);
        assert_eq!(response.text().await.expect("body"), "run 1");
    }
    assert_eq!(app.executions(&workflow).await.len(), 1);
}

#[tokio::test]
async fn same_key_with_another_body_is_422() {
    let app = spawn_app().await;
    let workflow = counting(&app).await;
    let first = deliver(&app, &workflow, "k", &json!({"n": 1})).await;
    let first_id = execution_id(&first);
    let other = deliver(&app, &workflow, "k", &json!({"n": 2})).await;
    assert_eq!(other.status(), 422);
    let body: Value = other.json().await.expect("json");
    assert_eq!(body["error"]["code"], "idempotency_key_reused");
    assert_eq!(body["error"]["execution_id"], first_id.as_str());
    assert_eq!(app.settings(&workflow).await["runs"], 1);
}

#[tokio::test]
async fn expired_key_runs_again() {
    let app = spawn_app_with(|config| config.engine.idempotency_ttl = Duration::from_secs(1)).await;
    let workflow = counting(&app).await;
    let first_id = execution_id(&deliver(&app, &workflow, "k", &json!({})).await);
    let later = eventually(Duration::from_secs(10), "the key expired", || async {
        let response = deliver(&app, &workflow, "k", &json!({})).await;
        (execution_id(&response) != first_id).then_some(response)
    })
    .await;
    assert_eq!(later.text().await.expect("body"), "run 2");
}

#[tokio::test]
async fn workflow_named_header_carries_the_key() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({"name": "gh", "mode": "catch", "code": COUNTING,
            "idempotency_header": "X-GitHub-Delivery"}))
        .await;
    assert_eq!(workflow["idempotency_header"], "x-github-delivery");
    for _ in 0..2 {
        let response = app
            .hook(&workflow)
            .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
            .json(&json!({}))
            .send()
            .await
            .expect("hook call");
        assert_eq!(response.text().await.expect("body"), "run 1");
    }
}

#[tokio::test]
async fn refused_call_does_not_keep_its_key() {
    let app = spawn_app().await;
    let workflow = counting(&app).await;
    app.patch_workflow(&workflow, json!({"enabled": false}))
        .await;
    let refused = deliver(&app, &workflow, "k", &json!({})).await;
    assert_eq!(refused.status(), 503);
    app.patch_workflow(&workflow, json!({"enabled": true}))
        .await;
    let retried = eventually(Duration::from_secs(10), "the key was released", || async {
        let response = deliver(&app, &workflow, "k", &json!({})).await;
        (response.status() == 201).then_some(response)
    })
    .await;
    assert_eq!(retried.text().await.expect("body"), "run 1");
}

#[tokio::test]
async fn calls_without_a_key_all_run() {
    let app = spawn_app().await;
    let workflow = counting(&app).await;
    for _ in 0..2 {
        app.call_hook_json(&workflow, &json!({})).await;
    }
    assert_eq!(app.settings(&workflow).await["runs"], 2);
}
