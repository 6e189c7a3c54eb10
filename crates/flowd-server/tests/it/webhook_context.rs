//! CONTRACT.md §2 "The execution context": a workflow declaring `context` learns the request as
//! received and its execution; one that does not is called as before.

use serde_json::{json, Value};

use crate::support::*;

/// The JSON the workflow answered with (its body).
async fn answered(response: reqwest::Response) -> (String, Value) {
    assert_eq!(response.status(), 200);
    let id = execution_id(&response);
    let body: Value = response.json().await.expect("a JSON body");
    (id, body)
}

const ECHO_CONTEXT: &str = r#"import json
def workflow(_request, settings, context):
    return {"status_code": 200, "headers": {"Content-Type": "application/json"}, "body": json.dumps({
        "raw_body": context.raw_body.decode("latin-1"), "raw_type": type(context.raw_body).__name__,
        "method": context.method, "query_string": context.query_string,
        "execution_id": context.execution_id, "workflow": context.workflow,
        "version": context.version, "trigger": context.trigger, "attempt": context.attempt,
        "fire_time": context.fire_time, "deadline": context.deadline,
        "remaining_s": context.remaining_s(), "name": _request.get("name")})}
"#;

#[tokio::test]
async fn declared_context_holds_the_body_exactly_as_received() {
    let app = spawn_app().await;
    let workflow = app.create_catch("ctx", ECHO_CONTEXT).await;
    let raw = "{ \"name\" :\t\"Ada\" ,\n \"z\": 1.50 }";
    let response = app
        .client
        .post(app.url(&format!("{}?b=2&a=1", hook_path(&workflow))))
        .header("content-type", "application/json")
        .body(raw)
        .send()
        .await
        .expect("hook call");
    let (_, body) = answered(response).await;
    assert_eq!(body["raw_body"], raw);
    assert_eq!(body["raw_type"], "bytes");
    assert_eq!(body["method"], "POST");
    assert_eq!(body["query_string"], "b=2&a=1");
    assert_eq!(body["name"], "Ada", "_request is built as before");
}

#[tokio::test]
async fn declared_context_names_the_execution_workflow_version_and_trigger() {
    let app = spawn_app().await;
    let workflow = app.create_catch("ctx", ECHO_CONTEXT).await;
    let (id, body) = answered(app.call_hook_json(&workflow, &json!({})).await).await;
    assert_eq!(body["execution_id"], id.as_str());
    assert_eq!(body["workflow"], "ctx");
    assert_eq!(body["version"], 1);
    assert_eq!(body["trigger"], "catch");
    assert_eq!(body["attempt"], 1);
    assert_eq!(body["fire_time"], Value::Null);
}

#[tokio::test]
async fn declared_context_tells_the_time_left_before_the_deadline() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(
            json!({"name": "ctx", "mode": "catch", "code": ECHO_CONTEXT, "timeout_s": 30}),
        )
        .await;
    let before = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
    let (_, body) = answered(app.call_hook_json(&workflow, &json!({})).await).await;
    let deadline = body["deadline"].as_f64().expect("deadline");
    let remaining = body["remaining_s"].as_f64().expect("remaining_s");
    assert!(
        deadline > before + 25.0 && deadline <= before + 31.0,
        "{deadline} vs {before}"
    );
    assert!(remaining > 25.0 && remaining <= 30.0, "{remaining}");
}

#[tokio::test]
async fn keyword_only_context_is_given_too() {
    let app = spawn_app().await;
    let code = "def workflow(_request, settings, *, context):\n    return {'status_code': 200, 'body': context.trigger}\n";
    let workflow = app.create_catch("kw", code).await;
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "catch");
}

#[tokio::test]
async fn positional_only_context_is_given_too() {
    let app = spawn_app().await;
    let code = "def workflow(_request, settings, context, /):\n    return {'status_code': 200, 'body': context.workflow}\n";
    let workflow = app.create_catch("positional", code).await;
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "positional");
}

#[tokio::test]
async fn workflow_without_context_is_called_with_its_two_parameters() {
    let app = spawn_app().await;
    let code = "def workflow(_request, settings, *rest):\n    return {'status_code': 200, 'body': str(len(rest))}\n";
    let workflow = app.create_catch("plain", code).await;
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.text().await.expect("body"), "0");
}

#[tokio::test]
async fn manual_pull_run_gets_its_trigger_and_no_fire_time() {
    let app = spawn_app().await;
    let code = "def workflow(settings, context):\n    settings['seen'] = [context.trigger, context.fire_time, context.method, len(context.raw_body)]\n";
    let workflow = app
        .create_workflow(
            json!({"name": "sync", "mode": "pull", "code": code, "schedule": {"every": "1h"}}),
        )
        .await;
    let id = workflow["id"].as_str().expect("id");
    let run = app
        .api(reqwest::Method::POST, &format!("/workflows/{id}/runs"))
        .send()
        .await
        .expect("run now");
    assert!(run.status().is_success(), "{}", run.status());
    assert_eq!(
        app.settings(&workflow).await["seen"],
        json!(["manual", null, null, 0])
    );
}

#[tokio::test]
async fn scheduled_pull_run_gets_the_fire_time_it_runs_for() {
    let app = spawn_app().await;
    let code = "def workflow(settings, context):\n    settings['fire_time'] = context.fire_time\n";
    let workflow = app
        .create_workflow(
            json!({"name": "tick", "mode": "pull", "code": code, "schedule": {"every": "1s"}}),
        )
        .await;
    let run = eventually(
        std::time::Duration::from_secs(15),
        "a scheduled run succeeded",
        || async {
            app.executions(&workflow)
                .await
                .into_iter()
                .find(|e| e["trigger"] == "pull" && e["status"] == "success")
        },
    )
    .await;
    let fire_at = chrono::DateTime::parse_from_rfc3339(run["fire_at"].as_str().expect("fire_at"))
        .expect("RFC 3339")
        .timestamp_millis();
    let seen = app.settings(&workflow).await["fire_time"]
        .as_f64()
        .expect("a fire time");
    // Later runs may have overwritten it: each is a fire time on the same 1 s grid.
    assert_eq!((seen * 1000.0).round() as i64 % 1000, fire_at % 1000);
}

#[tokio::test]
async fn a_third_required_parameter_not_named_context_is_still_refused() {
    let app = spawn_app().await;
    let code = "def workflow(_request, settings, ctx):\n    return None\n";
    let response = app
        .api(reqwest::Method::POST, "/workflows")
        .json(&json!({"name": "bad", "mode": "catch", "code": code}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["error"]["code"], "invalid_code", "{body}");
}
