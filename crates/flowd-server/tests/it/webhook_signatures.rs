//! CONTRACT.md §2 "Signed deliveries": calls of a workflow with `verify` are checked against the
//! secret its settings hold before anything runs; a refused one is answered `401` and recorded
//! `skipped` with the reason. Deliveries are signed here as their senders sign them.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::support::*;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const BODY: &str = r#"{"type": "candidate.hired", "id": 42}"#;

fn hmac_sha256(key: &[u8], content: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(content);
    mac.finalize().into_bytes().to_vec()
}

fn now_s() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `webhook-signature` for `body` sent as message `id` at `timestamp`, as the Standard Webhooks
/// specification signs it.
fn standard_signature(id: &str, timestamp: i64, body: &str) -> String {
    let key = base64::engine::general_purpose::STANDARD
        .decode(SECRET.trim_start_matches("whsec_"))
        .expect("base64 secret");
    let signed = format!("{id}.{timestamp}.{body}");
    let signature =
        base64::engine::general_purpose::STANDARD.encode(hmac_sha256(&key, signed.as_bytes()));
    format!("v1,{signature}")
}

const ANSWER: &str = "def workflow(_request, settings):\n    return {'status_code': 200, 'body': 'ran ' + str(_request['id'])}\n";

async fn signed_workflow(app: &TestApp, verify: Value) -> Value {
    app.create_workflow(json!({
        "name": "signed", "mode": "catch", "code": ANSWER,
        "settings": {"SIGNING_SECRET": SECRET}, "secrets": ["SIGNING_SECRET"],
        "verify": verify,
    }))
    .await
}

async fn standard_workflow(app: &TestApp) -> Value {
    signed_workflow(
        app,
        json!({"scheme": "standard-webhooks", "secret": "SIGNING_SECRET"}),
    )
    .await
}

async fn send_standard(
    app: &TestApp,
    workflow: &Value,
    timestamp: i64,
    signature: &str,
) -> reqwest::Response {
    app.hook(workflow)
        .header("content-type", "application/json")
        .header("webhook-id", "msg_1")
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(BODY)
        .send()
        .await
        .expect("hook call")
}

/// Checks a `401` naming its recorded `skipped` execution, whose warning contains `reason`.
async fn assert_refused(app: &TestApp, response: reqwest::Response, reason: &str) {
    assert_eq!(response.status(), 401);
    let id = execution_id(&response);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body["status"], "unauthorized");
    assert_eq!(body["execution_id"], id.as_str());
    assert_eq!(body["error"]["code"], "signature_invalid");
    let record = app.wait_for_execution(&id).await;
    assert_eq!(record["status"], "skipped", "{record}");
    assert_eq!(record["response_status"], 401);
    let warnings = record["warnings"].to_string();
    assert!(
        warnings.contains(reason),
        "{warnings} does not say {reason:?}"
    );
    assert!(
        !warnings.contains("candidate.hired"),
        "nothing of the request is stored"
    );
}

#[tokio::test]
async fn standard_webhooks_signed_call_runs() {
    let app = spawn_app().await;
    let workflow = standard_workflow(&app).await;
    let now = now_s();
    let response = send_standard(
        &app,
        &workflow,
        now,
        &standard_signature("msg_1", now, BODY),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), "ran 42");
}

#[tokio::test]
async fn a_signature_among_several_while_the_sender_rotates_is_enough() {
    let app = spawn_app().await;
    let workflow = standard_workflow(&app).await;
    let now = now_s();
    let rotating = format!(
        "v1,b2xkIHNpZ25hdHVyZQ== {}",
        standard_signature("msg_1", now, BODY)
    );
    assert_eq!(
        send_standard(&app, &workflow, now, &rotating)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn forged_signature_is_401_and_recorded_skipped() {
    let app = spawn_app().await;
    let workflow = standard_workflow(&app).await;
    let now = now_s();
    let forged = standard_signature("msg_2", now, BODY);
    let response = send_standard(&app, &workflow, now, &forged).await;
    assert_refused(&app, response, "the signature does not match").await;
}

#[tokio::test]
async fn stale_timestamp_is_401() {
    let app = spawn_app().await;
    let workflow = standard_workflow(&app).await;
    let then = now_s() - 301;
    let response = send_standard(
        &app,
        &workflow,
        then,
        &standard_signature("msg_1", then, BODY),
    )
    .await;
    assert_refused(&app, response, "tolerance").await;
}

#[tokio::test]
async fn missing_signature_is_401() {
    let app = spawn_app().await;
    let workflow = standard_workflow(&app).await;
    let response = app.call_hook_json(&workflow, &json!({"id": 1})).await;
    assert_refused(&app, response, "header is missing").await;
}

#[tokio::test]
async fn missing_secret_setting_refuses_every_call() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({"name": "nosecret", "mode": "catch", "code": ANSWER,
            "verify": {"scheme": "github", "secret": "GITHUB_SECRET"}}))
        .await;
    let response = app.call_hook_json(&workflow, &json!({"id": 1})).await;
    assert_refused(&app, response, "GITHUB_SECRET").await;
}

#[tokio::test]
async fn github_signed_call_runs() {
    let app = spawn_app().await;
    let workflow = signed_workflow(
        &app,
        json!({"scheme": "github", "secret": "SIGNING_SECRET"}),
    )
    .await;
    let signature = hex::encode(hmac_sha256(SECRET.as_bytes(), BODY.as_bytes()));
    let response = app
        .hook(&workflow)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", format!("sha256={signature}"))
        .body(BODY)
        .send()
        .await
        .expect("hook call");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn verify_is_shown_with_its_defaults_and_removed_with_null() {
    let app = spawn_app().await;
    let workflow = standard_workflow(&app).await;
    assert_eq!(
        workflow["verify"],
        json!({"scheme": "standard-webhooks", "secret": "SIGNING_SECRET", "tolerance_s": 300})
    );
    let patched = app.patch_workflow(&workflow, json!({"verify": null})).await;
    assert_eq!(patched["verify"], Value::Null);
    let response = app.call_hook_json(&workflow, &json!({"id": 7})).await;
    assert_eq!(response.status(), 200, "calls are no longer checked");
}

async fn refused_create(app: &TestApp, verify: Value) -> String {
    let response = app
        .api(reqwest::Method::POST, "/workflows")
        .json(&json!({"name": "bad", "mode": "catch", "code": ANSWER, "verify": verify}))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("json");
    body["error"]["message"]
        .as_str()
        .expect("message")
        .to_string()
}

#[tokio::test]
async fn unknown_scheme_is_422_naming_the_schemes() {
    let app = spawn_app().await;
    let message = refused_create(&app, json!({"scheme": "paypal", "secret": "S"})).await;
    assert!(message.contains("unknown scheme \"paypal\""), "{message}");
}

#[tokio::test]
async fn verify_without_its_secret_key_is_422() {
    let app = spawn_app().await;
    let message = refused_create(&app, json!({"scheme": "slack"})).await;
    assert!(message.contains("secret is missing"), "{message}");
}
