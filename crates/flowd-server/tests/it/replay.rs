//! CONTRACT.md §2 "Replay": the request of each hook execution is stored with it, and a
//! developer runs it again as a new execution (`trigger: replay`, `replay_of`), one at a time or
//! a workflow's executions by status and time range in the background.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// Prints `_request` (body fields, headers and query fields merged) and fails when asked to.
const ECHO: &str = r#"import json


def workflow(_request, settings):
    print(json.dumps(_request, sort_keys=True))
    if _request.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}
"#;

async fn echo_workflow(app: &TestApp, name: &str) -> Value {
    app.create_catch(name, ECHO).await
}

/// Calls the hook with `body`, a query string and a header; answers the execution's id.
async fn call(app: &TestApp, workflow: &Value, body: &Value) -> String {
    let response = app
        .client
        .post(format!(
            "{}?page=2&q=caf%C3%A9",
            app.url(hook_path(workflow))
        ))
        .header("x-note", "from the sender")
        .json(body)
        .send()
        .await
        .expect("hook call");
    execution_id(&response)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let response = app
        .api(reqwest::Method::POST, path)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn replay(app: &TestApp, execution_id: &str, body: Value) -> (u16, Value) {
    post(app, &format!("/executions/{execution_id}/replay"), body).await
}

/// A key of `role` in the default team.
async fn key_of(app: &TestApp, role: &str) -> String {
    let (status, body) = post(
        app,
        "/api-keys",
        json!({"name": format!("a {role}"), "role": role, "team": "default"}),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["key"].as_str().expect("key").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_runs_the_stored_request_as_a_new_execution_linked_to_the_original() {
    let app = spawn_app().await;
    let workflow = echo_workflow(&app, "echo").await;
    let original = call(&app, &workflow, &json!({"employee": "Ana"})).await;

    let (status, replayed) = replay(&app, &original, json!({})).await;

    assert_eq!(status, 200, "{replayed}");
    assert_ne!(replayed["id"], original.as_str());
    assert_eq!(replayed["trigger"], "replay");
    assert_eq!(replayed["replay_of"], original.as_str());
    assert_eq!(replayed["status"], "success");
    let first = app.execution(&original).await;
    assert_eq!(first["request_stored"], true);
    assert_eq!(replayed["logs"], first["logs"], "the same _request");
    let logs = replayed["logs"].as_str().unwrap();
    for seen in [
        "\"employee\": \"Ana\"",
        "from the sender",
        "caf\\u00e9",
        "\"page\": \"2\"",
    ] {
        assert!(logs.contains(seen), "{seen} in {logs}");
    }
    let audit = app.get_json("/audit?workflow=echo").await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"workflow.replayed"), "{audit}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stored_request_reads_back_for_a_developer_and_not_for_a_viewer() {
    let app = spawn_app().await;
    let workflow = echo_workflow(&app, "echo").await;
    let original = call(&app, &workflow, &json!({"employee": "Ana"})).await;

    let stored = app
        .get_json(&format!("/executions/{original}/request"))
        .await;
    let viewer = app
        .client
        .get(app.url(&format!("/api/v1/executions/{original}/request")))
        .bearer_auth(key_of(&app, "viewer").await)
        .send()
        .await
        .expect("request");

    assert_eq!(stored["method"], "POST");
    assert_eq!(stored["query_string"], "page=2&q=caf%C3%A9");
    assert_eq!(stored["body"], r#"{"employee":"Ana"}"#);
    assert!(stored["headers"]
        .as_array()
        .unwrap()
        .contains(&json!(["x-note", "from the sender"])));
    assert_eq!(viewer.status(), 403);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_runs_on_a_chosen_version() {
    let app = spawn_app().await;
    let workflow = echo_workflow(&app, "echo").await;
    let original = call(&app, &workflow, &json!({})).await;
    app.patch_workflow(&workflow, json!({"code": catch_code("return {'v': 2}")}))
        .await;

    let (status, on_one) = replay(&app, &original, json!({"version": 1})).await;
    let (_, on_active) = replay(&app, &original, json!({})).await;
    let (unknown, error) = replay(&app, &original, json!({"version": 9})).await;

    assert_eq!(status, 200, "{on_one}");
    assert_eq!(on_one["version"], 1);
    assert_eq!(on_active["version"], 2);
    assert_eq!(unknown, 422, "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_of_a_signature_verifying_workflow_needs_no_signature() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "signed", "mode": "catch", "code": ECHO,
            "settings": {"SIGNING_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
            "secrets": ["SIGNING_SECRET"],
        }))
        .await;
    let original = call(&app, &workflow, &json!({"employee": "Ana"})).await;
    app.patch_workflow(
        &workflow,
        json!({"verify": {"scheme": "standard-webhooks", "secret": "SIGNING_SECRET"}}),
    )
    .await;
    let unsigned = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(unsigned.status(), 401, "the hook now checks signatures");

    let (status, replayed) = replay(&app, &original, json!({})).await;

    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed["status"], "success");
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_without_a_stored_request_are_not_replayed_and_say_why() {
    let app = spawn_app_with(|config| config.engine.request_store_max_bytes = 300).await;
    let workflow = echo_workflow(&app, "echo").await;
    let id = workflow["id"].as_str().unwrap();
    let (_, manual) = post(&app, &format!("/workflows/{id}/runs"), json!({})).await;
    let too_large = call(&app, &workflow, &json!({"text": "x".repeat(400)})).await;
    let kept_out = echo_workflow(&app, "kept-out").await;
    app.patch_workflow(&kept_out, json!({"store_requests": false}))
        .await;
    let not_kept = call(&app, &kept_out, &json!({})).await;

    for (execution, reason) in [
        (manual["id"].as_str().unwrap(), "not_a_hook_execution"),
        (too_large.as_str(), "over_size_cap"),
        (not_kept.as_str(), "store_requests_false"),
    ] {
        let (status, error) = replay(&app, execution, json!({})).await;
        assert_eq!(status, 409, "{error}");
        assert_eq!(error["error"]["code"], "no_stored_request");
        assert_eq!(error["error"]["reason"], reason, "{error}");
    }
    let record = app.execution(&too_large).await;
    assert_eq!(record["request_stored"], false);
    assert!(record["request_not_stored"]
        .as_str()
        .unwrap()
        .contains("300-byte cap"));
    let (status, _) = replay(&app, "0190a000-0000-7000-8000-000000000001", json!({})).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_cannot_replay() {
    let app = spawn_app().await;
    let workflow = echo_workflow(&app, "echo").await;
    let original = call(&app, &workflow, &json!({})).await;

    let refused = app
        .client
        .post(app.url(&format!("/api/v1/executions/{original}/replay")))
        .bearer_auth(key_of(&app, "viewer").await)
        .json(&json!({}))
        .send()
        .await
        .expect("request");

    assert_eq!(refused.status(), 403);
}

/// Waits for a bulk replay's end and answers its progress.
async fn finished_job(app: &TestApp, job: &Value) -> Value {
    let path = format!("/replays/{}", job["id"].as_str().expect("job id"));
    eventually(Duration::from_secs(30), "the bulk replay ends", || async {
        let job = app.get_json(&path).await;
        (job["state"] == "finished").then_some(job)
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bulk_replay_runs_the_oldest_matching_executions_up_to_its_limit() {
    let app = spawn_app().await;
    let workflow = echo_workflow(&app, "echo").await;
    let id = workflow["id"].as_str().unwrap().to_string();
    let mut failed = Vec::new();
    for n in 0..4 {
        call(&app, &workflow, &json!({"n": n})).await;
        failed.push(call(&app, &workflow, &json!({"fail": true, "n": n})).await);
    }
    let first_start = app.execution(&failed[1]).await["started_at"].clone();

    let (status, job) = post(
        &app,
        &format!("/workflows/{id}/replay"),
        json!({"status": ["error"], "since": first_start, "limit": 2}),
    )
    .await;

    assert_eq!(status, 202, "{job}");
    let job = finished_job(&app, &job).await;
    assert_eq!(job["matched"], 2);
    assert_eq!(job["replayed"], 2);
    assert_eq!(job["failed"], json!([]));
    let mut replayed_of = Vec::new();
    for new in job["executions"].as_array().unwrap() {
        let record = app.execution(new.as_str().unwrap()).await;
        assert_eq!(record["trigger"], "replay");
        replayed_of.push(record["replay_of"].as_str().unwrap().to_string());
    }
    assert_eq!(replayed_of, failed[1..3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_bulk_replays_are_refused_and_the_server_stays_up() {
    let app = spawn_app().await;
    let workflow = echo_workflow(&app, "echo").await;
    let path = format!(
        "/api/v1/workflows/{}/replay",
        workflow["id"].as_str().unwrap()
    );

    for (body, status) in [
        ("{not json", 400),
        (r#"{"limit": 5000}"#, 422),
        (r#"{"limit": 0}"#, 422),
        (r#"{"status": ["exploded"]}"#, 422),
        (r#"{"since": "yesterday"}"#, 422),
        (
            r#"{"since": "2026-12-02T00:00:00Z", "until": "2026-12-01T00:00:00Z"}"#,
            422,
        ),
        (r#"{"surprise": 1}"#, 422),
    ] {
        let response = app
            .api(reqwest::Method::POST, path.trim_start_matches("/api/v1"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        let answered = response.status().as_u16();
        let error: Value = response.json().await.expect("JSON error");
        assert_eq!(answered, status, "{body}: {error}");
        assert!(error["error"]["code"].is_string(), "{error}");
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
