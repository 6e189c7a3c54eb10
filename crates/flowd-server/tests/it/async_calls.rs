//! Asynchronous hook calls: `Prefer: respond-async` → `202` once the call is queued in the
//! store, and its status URL, polled without an API key, until the workflow's own response.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// POSTs `body` to the workflow's hook URL asking for an asynchronous answer.
async fn call_async(app: &TestApp, workflow: &Value, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(hook_path(workflow)))
        .header("Prefer", "respond-async")
        .json(body)
        .send()
        .await
        .expect("hook request")
}

/// The status URL of a `202`, after checking the answer's shape.
async fn accepted(response: reqwest::Response) -> (String, String) {
    assert_eq!(response.status(), 202);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    assert_eq!(response.headers()["preference-applied"], "respond-async");
    let header_id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status_url"], location.as_str());
    assert_eq!(body["execution_id"], header_id.as_str());
    (location, header_id)
}

/// Polls a status URL (no API key) until the call has run: its final response.
async fn final_response(app: &TestApp, status_url: &str) -> reqwest::Response {
    eventually(
        Duration::from_secs(30),
        "the asynchronous call has run",
        || async {
            let response = app.client.get(app.url(status_url)).send().await.unwrap();
            if response.status() == 202 {
                let pending = response.headers()["x-execution-status"].to_str().unwrap();
                assert!(["queued", "running"].contains(&pending), "{pending}");
                return None;
            }
            Some(response)
        },
    )
    .await
}

#[tokio::test]
async fn an_async_call_answers_202_and_its_status_url_gives_the_workflow_s_response() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "later",
            &catch_code(
                "return {'status_code': 201, 'headers': {'X-Made': _request['name']}, \
                 'body': 'made ' + _request['name']}",
            ),
        )
        .await;
    let (status_url, id) =
        accepted(call_async(&app, &workflow, &json!({"name": "ada"})).await).await;
    assert!(status_url.starts_with("/async/"), "{status_url}");

    let response = final_response(&app, &status_url).await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["x-made"], "ada");
    assert_eq!(response.headers()["x-execution-status"], "success");
    assert_eq!(execution_id(&response), id);
    assert_eq!(response.text().await.unwrap(), "made ada");
    assert_eq!(app.execution(&id).await["status"], "success");
    app.stop().await;
}

#[tokio::test]
async fn a_failing_async_call_s_status_url_answers_its_500_with_its_status() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch("fails", &catch_code("raise ValueError('no')"))
        .await;
    let (status_url, _) = accepted(call_async(&app, &workflow, &json!({})).await).await;
    let response = final_response(&app, &status_url).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.headers()["x-execution-status"], "error");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "ValueError");
    app.stop().await;
}

#[tokio::test]
async fn an_unknown_status_token_is_404() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/async/0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn async_calls_of_a_workflow_run_one_at_a_time_in_the_order_they_came() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "ordered",
            "mode": "catch",
            "max_concurrency": 1,
            "settings": {"order": []},
            "code": catch_code("settings['order'] = settings['order'] + [_request['n']]"),
        }))
        .await;
    let mut status_urls = Vec::new();
    for n in 0..5 {
        let (status_url, _) = accepted(call_async(&app, &workflow, &json!({"n": n})).await).await;
        status_urls.push(status_url);
    }
    for status_url in &status_urls {
        assert_eq!(final_response(&app, status_url).await.status(), 200);
    }
    assert_eq!(
        app.settings(&workflow).await["order"],
        json!([0, 1, 2, 3, 4])
    );
    app.stop().await;
}

#[tokio::test]
async fn a_full_queue_answers_503_with_retry_after_and_its_depth_is_in_the_api() {
    let app = spawn_app_with(|config| config.engine.async_queue_max = 1).await;
    let workflow = app
        .create_workflow(json!({
            "name": "slow",
            "mode": "catch",
            "code": "import time\n\ndef workflow(_request, settings):\n    time.sleep(2)\n",
        }))
        .await;
    let (status_url, _) = accepted(call_async(&app, &workflow, &json!({})).await).await;
    let id = workflow["id"].as_str().unwrap();
    assert_eq!(
        app.get_json(&format!("/workflows/{id}/queue")).await["depth"],
        1
    );
    assert_eq!(app.get_json("/system").await["async_queue"]["depth"], 1);

    let refused = call_async(&app, &workflow, &json!({})).await;
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "queue_full");

    assert_eq!(final_response(&app, &status_url).await.status(), 200);
    assert_eq!(
        app.get_json(&format!("/workflows/{id}/queue")).await["depth"],
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_call_to_a_paused_workflow_is_refused_at_once_even_when_asked_async() {
    let app = spawn_app().await;
    let workflow = app.create_catch("paused", &catch_code("return None")).await;
    app.patch_workflow(&workflow, json!({"enabled": false}))
        .await;
    let response = call_async(&app, &workflow, &json!({})).await;
    assert_eq!(response.status(), 503);
    app.stop().await;
}

#[tokio::test]
async fn a_malformed_body_is_400_before_anything_is_queued() {
    let app = spawn_app().await;
    let workflow = app.create_catch("strict", &catch_code("return None")).await;
    let response = app
        .client
        .post(app.url(hook_path(&workflow)))
        .header("Prefer", "respond-async")
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let id = workflow["id"].as_str().unwrap();
    assert_eq!(
        app.get_json(&format!("/workflows/{id}/queue")).await["depth"],
        0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_workflow_whose_response_is_async_answers_every_call_with_202_until_patched_back() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "always-later",
            "mode": "catch",
            "response": "async",
            "code": catch_code("return {'status_code': 200, 'body': 'done'}"),
        }))
        .await;
    assert_eq!(workflow["response"], "async");
    let (status_url, _) = accepted(app.call_hook_json(&workflow, &json!({})).await).await;
    let response = final_response(&app, &status_url).await;
    assert_eq!(response.text().await.unwrap(), "done");

    let patched = app
        .patch_workflow(&workflow, json!({"response": "sync"}))
        .await;
    assert_eq!(patched["response"], "sync");
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "done");
    app.stop().await;
}

/// POSTs `body` asking for an asynchronous answer, with an `Idempotency-Key`.
async fn call_async_with_key(
    app: &TestApp,
    workflow: &Value,
    body: &Value,
    key: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(hook_path(workflow)))
        .header("Prefer", "respond-async")
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .expect("hook request")
}

#[tokio::test]
async fn a_repeated_async_call_with_its_idempotency_key_gets_the_same_202_and_runs_once() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "counted",
            &catch_code(
                "settings['calls'] = settings.get('calls', 0) + 1\n\
                 return {'status_code': 200, 'body': str(settings['calls'])}",
            ),
        )
        .await;
    let first = call_async_with_key(&app, &workflow, &json!({"n": 1}), "delivery-1").await;
    let (status_url, id) = accepted(first).await;

    let repeat = call_async_with_key(&app, &workflow, &json!({"n": 1}), "delivery-1").await;
    assert_eq!(repeat.headers()["idempotent-replayed"], "true");
    let (repeat_url, repeat_id) = accepted(repeat).await;

    assert_eq!(
        (repeat_url.as_str(), repeat_id.as_str()),
        (status_url.as_str(), id.as_str())
    );
    assert_eq!(
        final_response(&app, &status_url)
            .await
            .text()
            .await
            .unwrap(),
        "1"
    );
    let workflow_id = workflow["id"].as_str().unwrap();
    let executions = app
        .get_json(&format!("/workflows/{workflow_id}/executions"))
        .await;
    assert_eq!(executions["executions"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_async_call_refused_for_a_full_queue_leaves_its_idempotency_key_free() {
    let app = spawn_app_with(|config| config.engine.async_queue_max = 1).await;
    let workflow = app
        .create_workflow(json!({
            "name": "slow",
            "mode": "catch",
            "code": "import time\n\ndef workflow(_request, settings):\n    time.sleep(1)\n",
        }))
        .await;
    let (status_url, _) = accepted(call_async(&app, &workflow, &json!({})).await).await;

    let refused = call_async_with_key(&app, &workflow, &json!({}), "delivery-2").await;
    assert_eq!(refused.status(), 503);
    final_response(&app, &status_url).await;

    let retried = call_async_with_key(&app, &workflow, &json!({}), "delivery-2").await;
    assert!(!retried.headers().contains_key("idempotent-replayed"));
    let (retried_url, _) = accepted(retried).await;
    assert_eq!(final_response(&app, &retried_url).await.status(), 200);
    app.stop().await;
}
