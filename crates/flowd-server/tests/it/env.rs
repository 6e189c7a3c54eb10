//! Environment variables per workflow: set before the module's top level runs, secret values
//! masked in API answers, names checked.

use serde_json::json;

use crate::support::*;

const SHOW_ENV: &str = "import os\nAT_IMPORT = os.environ.get('HRFLOW_CONNECTORS_STORE')\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': '%s %s %s' % (AT_IMPORT, os.environ.get('API_TOKEN'), os.environ.get('FLOWD_ADMIN_API_KEY'))}\n";

#[tokio::test(flavor = "multi_thread")]
async fn env_variables_reach_the_module_at_import_and_secrets_are_masked_in_answers() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "envy", "mode": "catch", "code": SHOW_ENV,
            "env": {"HRFLOW_CONNECTORS_STORE": "local", "API_TOKEN": "tok-123456"},
            "secrets": ["API_TOKEN"],
        }))
        .await;
    assert_eq!(
        workflow["env"],
        json!({"HRFLOW_CONNECTORS_STORE": "local", "API_TOKEN": "****"})
    );
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.text().await.unwrap(), "local tok-123456 None");
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_env_applies_to_the_next_call() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({"name": "envy", "mode": "catch", "code": SHOW_ENV, "env": {"HRFLOW_CONNECTORS_STORE": "local"}}))
        .await;
    assert!(app
        .call_hook_json(&workflow, &json!({}))
        .await
        .text()
        .await
        .unwrap()
        .starts_with("local "));
    let updated = app
        .patch_workflow(&workflow, json!({"env": {"HRFLOW_CONNECTORS_STORE": "s3"}}))
        .await;
    assert_eq!(updated["env"]["HRFLOW_CONNECTORS_STORE"], "s3");
    let body = app
        .call_hook_json(&workflow, &json!({}))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("s3 "), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_env_names_and_values_are_refused() {
    let app = spawn_app().await;
    for env in [
        json!({"1ABC": "x"}),
        json!({"A-B": "x"}),
        json!({"": "x"}),
        json!({"A": "x\u{0}y"}),
        json!({"A": 1}),
    ] {
        let response = app
            .api(reqwest::Method::POST, "/workflows")
            .json(&json!({"name": "bad-env", "mode": "catch", "code": SHOW_ENV, "env": env}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{env}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"].as_str().unwrap().contains("env"),
            "{body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_environment_over_64_kib_is_refused() {
    let app = spawn_app().await;
    let response = app
        .api(reqwest::Method::POST, "/workflows")
        .json(&json!({"name": "big-env", "mode": "catch", "code": SHOW_ENV, "env": {"BIG": "x".repeat(70_000)}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("limit"),
        "{body}"
    );
}

const SECRET_ENV_VALUE: &str = "env-secret-8f3a2c";

/// A workflow with the secret variable `API_TOKEN`, running `body`, and the record of one call.
async fn record_of_a_call_with_a_secret_env(body: &str) -> serde_json::Value {
    let app = spawn_app().await;
    let code = format!("import os\ndef workflow(_request, settings):\n    {body}\n");
    let workflow = app
        .create_workflow(json!({
            "name": "secret-env", "mode": "catch", "code": code,
            "env": {"API_TOKEN": SECRET_ENV_VALUE}, "secrets": ["API_TOKEN"],
        }))
        .await;
    let response = app.call_hook_json(&workflow, &json!({})).await;
    let record = app.wait_for_execution(&execution_id(&response)).await;
    app.stop().await;
    record
}

#[tokio::test(flavor = "multi_thread")]
async fn a_printed_secret_env_value_is_masked_in_the_logs() {
    let record =
        record_of_a_call_with_a_secret_env("print('token=' + os.environ['API_TOKEN'])").await;
    let logs = record["logs"].as_str().expect("logs");
    assert!(!logs.contains(SECRET_ENV_VALUE), "{logs}");
    assert!(logs.contains("token=****"), "{logs}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_env_value_in_an_exception_is_masked_in_the_error_message() {
    let record =
        record_of_a_call_with_a_secret_env("raise ValueError('token=' + os.environ['API_TOKEN'])")
            .await;
    let message = record["error"]["message"].as_str().expect("message");
    assert!(!message.contains(SECRET_ENV_VALUE), "{message}");
    assert!(message.contains("token=****"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_env_value_in_an_exception_is_masked_in_the_traceback() {
    let record =
        record_of_a_call_with_a_secret_env("raise ValueError('token=' + os.environ['API_TOKEN'])")
            .await;
    let traceback = record["error"]["traceback"].as_str().expect("traceback");
    assert!(!traceback.contains(SECRET_ENV_VALUE), "{traceback}");
    assert!(traceback.contains("token=****"), "{traceback}");
}
