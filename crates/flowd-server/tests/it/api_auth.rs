//! Authentication of the REST API and the first start's bootstrap (team `default`, admin key).

use std::os::unix::fs::PermissionsExt;

use reqwest::Method;
use serde_json::Value;

use crate::api_support::{id, Answer};
use crate::support::*;

async fn get_workflows_with(app: &TestApp, authorization: Option<&str>) -> Answer {
    let mut request = app.client.get(app.url("/api/v1/workflows"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let body: Value = response.json().await.expect("a JSON body");
    Answer {
        status,
        headers,
        body,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_200_without_a_key() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_call_without_a_key_is_401_json() {
    let app = spawn_app().await;
    let answer = get_workflows_with(&app, None).await;
    answer.assert_error(401, "unauthorized");
    assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_call_with_a_wrong_key_is_401_json() {
    let app = spawn_app().await;
    let answer = get_workflows_with(&app, Some("Bearer not-the-admin-key-at-all")).await;
    answer.assert_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_call_with_the_key_under_another_scheme_is_401() {
    let app = spawn_app().await;
    let answer = get_workflows_with(&app, Some(&format!("Basic {ADMIN_KEY}"))).await;
    answer.assert_error(401, "unauthorized");
    let answer = get_workflows_with(&app, Some(ADMIN_KEY)).await;
    answer.assert_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_call_with_the_admin_key_is_accepted() {
    let app = spawn_app().await;
    let answer = get_workflows_with(&app, Some(&format!("Bearer {ADMIN_KEY}"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["workflows"], serde_json::json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_api_route_needs_a_key() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch("guarded", &catch_code("return None"))
        .await;
    let wid = id(&workflow);
    let routes = [
        (Method::GET, "/api/v1/workflows".to_string()),
        (Method::POST, "/api/v1/workflows".to_string()),
        (Method::GET, format!("/api/v1/workflows/{wid}")),
        (Method::PATCH, format!("/api/v1/workflows/{wid}")),
        (Method::DELETE, format!("/api/v1/workflows/{wid}")),
        (Method::GET, format!("/api/v1/workflows/{wid}/versions")),
        (Method::GET, format!("/api/v1/workflows/{wid}/settings")),
        (Method::PUT, format!("/api/v1/workflows/{wid}/settings")),
        (Method::PATCH, format!("/api/v1/workflows/{wid}/settings")),
        (Method::GET, format!("/api/v1/workflows/{wid}/executions")),
        (Method::POST, format!("/api/v1/workflows/{wid}/runs")),
        (Method::GET, "/api/v1/executions/some-id".to_string()),
    ];
    for (method, path) in routes {
        let response = app
            .client
            .request(method.clone(), app.url(&path))
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "unauthorized", "{method} {path}");
    }
    // Nothing was changed by the refused calls.
    let shown = app.get_json(&format!("/workflows/{wid}")).await;
    assert_eq!(shown["version"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_without_a_configured_key_writes_a_generated_key_file_0600() {
    let app = spawn_app_with(|c| c.admin_api_key = None).await;
    let path = app.data_dir.path().join("data").join("admin-api-key");
    let mode = std::fs::metadata(&path)
        .expect("the key file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    let key = std::fs::read_to_string(&path).unwrap().trim().to_string();
    assert!(key.len() >= 32, "a long key: {key:?}");
    let answer = get_workflows_with(&app, Some(&format!("Bearer {key}"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = get_workflows_with(&app, Some(&format!("Bearer {ADMIN_KEY}"))).await;
    answer.assert_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn first_start_with_a_configured_key_writes_no_key_file() {
    let app = spawn_app().await;
    assert!(!app
        .data_dir
        .path()
        .join("data")
        .join("admin-api-key")
        .exists());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_are_stored_hashed() {
    let app = spawn_app().await;
    // Make sure the key rows are in the files (WAL included) before reading them.
    app.state.engine.flush().await;
    let dir = app.data_dir.path().join("data");
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("flowd.db") {
            stored.extend(std::fs::read(&path).unwrap());
        }
    }
    let contains = |needle: &[u8]| stored.windows(needle.len()).any(|w| w == needle);
    assert!(
        !contains(ADMIN_KEY.as_bytes()),
        "the key is stored in clear"
    );
    let digest = flowd_engine::auth::hash_key(ADMIN_KEY);
    assert!(contains(digest.as_bytes()), "the key's digest is stored");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_later_start_keeps_the_first_admin_key_and_ignores_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = spawn_app_with(|c| c.data_dir = data.clone()).await;
    first.stop().await;
    let second = spawn_app_with(|c| {
        c.data_dir = data.clone();
        c.admin_api_key = Some("another-admin-key-0123456789".into());
    })
    .await;
    let answer = get_workflows_with(&second, Some(&format!("Bearer {ADMIN_KEY}"))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = get_workflows_with(&second, Some("Bearer another-admin-key-0123456789")).await;
    answer.assert_error(401, "unauthorized");
    second.stop().await;
}
