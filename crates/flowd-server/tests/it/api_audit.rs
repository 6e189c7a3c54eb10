//! The audit log over HTTP: an entry for every kind of change, naming the key that made it, and
//! none for reads.

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::{id, Answer};
use crate::support::*;

async fn call_as(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let mut request = app
        .client
        .request(method, app.url(&format!("/api/v1{path}")))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// `method path` with `key`, which must succeed (2xx).
async fn change(app: &TestApp, key: &str, method: Method, path: &str, body: Value) -> Value {
    let answer = call_as(app, key, method.clone(), path, Some(&body)).await;
    assert!(
        answer.status.is_success(),
        "{method} {path}: {} {}",
        answer.status,
        answer.body
    );
    answer.body
}

/// The log's entries, oldest first.
async fn entries(app: &TestApp, query: &str) -> Vec<Value> {
    let mut entries = app.get_json(&format!("/audit{query}")).await["entries"]
        .as_array()
        .expect("entries")
        .clone();
    entries.reverse();
    entries
}

fn actions(entries: &[Value]) -> Vec<&str> {
    entries
        .iter()
        .map(|entry| entry["action"].as_str().expect("action"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_change_of_a_workflow_is_recorded_with_the_key_that_made_it() {
    let app = spawn_app().await;
    let created = change(
        &app,
        ADMIN_KEY,
        Method::POST,
        "/api-keys",
        json!({"name": "ci", "role": "developer"}),
    )
    .await;
    let (ci, ci_id) = (
        created["key"].as_str().unwrap().to_string(),
        id(&created).to_string(),
    );
    let workflow = change(
        &app,
        &ci,
        Method::POST,
        "/workflows",
        json!({"name": "greet", "mode": "catch", "code": catch_code("return {}")}),
    )
    .await;
    let path = format!("/workflows/{}", id(&workflow));
    change(&app, &ci, Method::PATCH, &path, json!({"timeout_s": 5})).await;
    change(&app, &ci, Method::PATCH, &path, json!({"enabled": false})).await;
    change(&app, &ci, Method::PATCH, &path, json!({"enabled": true})).await;
    change(
        &app,
        &ci,
        Method::PATCH,
        &path,
        json!({"code": catch_code("return {'v': 2}")}),
    )
    .await;
    change(
        &app,
        &ci,
        Method::POST,
        &format!("{path}/rotate-token"),
        json!({}),
    )
    .await;
    change(
        &app,
        &ci,
        Method::PATCH,
        &path,
        json!({"secrets": ["token"]}),
    )
    .await;
    let settings = format!("{path}/settings");
    change(&app, &ci, Method::PATCH, &settings, json!({"region": "eu"})).await;
    change(
        &app,
        &ci,
        Method::PATCH,
        &settings,
        json!({"token": "s3cret"}),
    )
    .await;
    change(&app, &ci, Method::PATCH, &settings, json!({"token": null})).await;
    change(&app, &ci, Method::POST, &format!("{path}/runs"), json!({})).await;
    change(&app, &ci, Method::DELETE, &path, json!({})).await;

    let log = entries(&app, "?workflow=greet").await;
    assert_eq!(
        actions(&log),
        [
            "workflow.created",
            "workflow.patched",
            "workflow.paused",
            "workflow.resumed",
            "workflow.deployed",
            "workflow.token_rotated",
            "workflow.patched",
            "settings.changed",
            "secret.set",
            "secret.removed",
            "workflow.run",
            "workflow.deleted",
        ]
    );
    for entry in &log {
        assert_eq!(
            entry["actor"],
            json!({"id": ci_id, "name": "ci"}),
            "{entry}"
        );
        assert_eq!(entry["team"], "default", "{entry}");
        assert_eq!(entry["workflow_id"], workflow["id"], "{entry}");
    }
    assert!(
        !log.iter().any(|entry| entry.to_string().contains("s3cret")),
        "a secret's value is never recorded"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn team_and_key_changes_are_recorded() {
    let app = spawn_app().await;
    change(
        &app,
        ADMIN_KEY,
        Method::POST,
        "/teams",
        json!({"name": "payroll"}),
    )
    .await;
    change(
        &app,
        ADMIN_KEY,
        Method::PATCH,
        "/teams/payroll",
        json!({"name": "payroll-eu"}),
    )
    .await;
    let key = change(
        &app,
        ADMIN_KEY,
        Method::POST,
        "/api-keys",
        json!({"name": "ci", "role": "viewer", "team": "payroll-eu"}),
    )
    .await;
    change(
        &app,
        ADMIN_KEY,
        Method::DELETE,
        &format!("/api-keys/{}", id(&key)),
        json!({}),
    )
    .await;
    change(
        &app,
        ADMIN_KEY,
        Method::DELETE,
        "/teams/payroll-eu",
        json!({}),
    )
    .await;
    let log = entries(&app, "").await;
    assert_eq!(
        actions(&log),
        [
            "team.created",
            "team.renamed",
            "key.created",
            "key.revoked",
            "team.deleted",
        ]
    );
    for entry in &log {
        assert_eq!(entry["actor"]["name"], "admin", "{entry}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_record_nothing() {
    let app = spawn_app().await;
    let workflow = app.create_catch("greet", &catch_code("return {}")).await;
    let before = entries(&app, "").await;
    let path = format!("/workflows/{}", id(&workflow));
    for read in [
        "/workflows".to_string(),
        path.clone(),
        format!("{path}/versions"),
        format!("{path}/versions/1"),
        format!("{path}/settings"),
        format!("{path}/executions"),
        format!("{path}/stats"),
        "/executions".into(),
        "/workflow-stats".into(),
        "/teams".into(),
        "/api-keys".into(),
        "/whoami".into(),
        "/system".into(),
        "/audit".into(),
    ] {
        app.get_json(&read).await;
    }
    app.client
        .post(app.url(hook_path(&workflow)))
        .json(&json!({}))
        .send()
        .await
        .expect("hook call");
    assert_eq!(entries(&app, "").await, before);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_log_filters_by_actor_and_time() {
    let app = spawn_app().await;
    change(
        &app,
        ADMIN_KEY,
        Method::POST,
        "/teams",
        json!({"name": "payroll"}),
    )
    .await;
    let all = entries(&app, "").await;
    assert_eq!(entries(&app, "?actor=admin").await, all);
    assert_eq!(entries(&app, "?actor=nobody").await, Vec::<Value>::new());
    assert_eq!(
        entries(&app, "?since=2099-01-01T00:00:00Z").await,
        Vec::<Value>::new()
    );
    let answer = call_as(&app, ADMIN_KEY, Method::GET, "/audit?since=yesterday", None).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}
