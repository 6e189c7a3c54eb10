//! The published API description matches the server: every documented route exists.

use serde_json::Value;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_route_exists() {
    let app = spawn_app().await;
    let spec = app.get_json("/openapi.json").await;
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().expect("paths");
    assert!(paths.len() >= 12);
    for (path, operations) in paths {
        for method in operations.as_object().unwrap().keys() {
            let concrete = path
                .replace("{id}", "00000000-0000-7000-8000-000000000000")
                .replace("{team}", "default")
                .replace("{workflow}", "nope")
                .replace("{runtime}", "python3.11")
                .replace("{token}", "x");
            let request = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .bearer_auth(ADMIN_KEY)
                .header("content-type", "application/json")
                .body("{}");
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            // A route that does not exist answers the fallback's 404 "route not found" or a 405.
            assert_ne!(status, 405, "{method} {path} is not routed");
            assert!(
                !(status == 404 && body["error"]["message"] == "route not found"),
                "{method} {path} is not routed"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_description_needs_a_key_like_every_api_route() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

// --- openapi.json and the server agree where they once disagreed -------------------------------

/// The published description, as the server serves it.
async fn spec(app: &TestApp) -> Value {
    app.get_json("/openapi.json").await
}

fn schema<'a>(spec: &'a Value, name: &str) -> &'a Value {
    &spec["components"]["schemas"][name]
}

/// The status of `method path` with `body` sent with the admin key.
async fn status_of(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> u16 {
    app.api(method, path)
        .json(&body)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

fn a_pull_workflow(name: &str, schedule: Value) -> Value {
    serde_json::json!({
        "name": name, "mode": "pull", "code": pull_code("return None"), "schedule": schedule,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_limit_is_refused_as_the_spec_types_it_an_integer() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let limit = &spec["paths"]["/api/v1/executions"]["get"]["parameters"][0];
    assert_eq!(limit["name"], "limit");
    assert_eq!(limit["schema"]["type"], "integer");
    let status = status_of(
        &app,
        reqwest::Method::GET,
        "/executions?limit=",
        Value::Null,
    )
    .await;
    assert_eq!(status, 422);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_null_timezone_is_accepted_as_the_spec_allows() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let timezone = &schema(&spec, "Schedule")["oneOf"][1]["properties"]["timezone"];
    assert_eq!(timezone["type"], serde_json::json!(["string", "null"]));
    let body = a_pull_workflow(
        "null-zone",
        serde_json::json!({"cron": "0 8 * * *", "timezone": null}),
    );
    assert_eq!(
        status_of(&app, reqwest::Method::POST, "/workflows", body).await,
        201
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_number_past_the_spec_maximum_is_refused() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let version =
        &spec["paths"]["/api/v1/workflows/{id}/versions/{version}"]["get"]["parameters"][1];
    assert_eq!(version["name"], "version");
    let maximum = version["schema"]["maximum"].as_u64().expect("a maximum");
    let workflow = app
        .create_catch("versioned", &catch_code("return None"))
        .await;
    let id = workflow["id"].as_str().unwrap();
    let at_most = format!("/workflows/{id}/versions/{maximum}");
    assert_eq!(
        status_of(&app, reqwest::Method::GET, &at_most, Value::Null).await,
        404
    );
    let past = format!("/workflows/{id}/versions/{}", maximum + 1);
    assert_eq!(
        status_of(&app, reqwest::Method::GET, &past, Value::Null).await,
        422
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_cron_is_refused_as_the_spec_requires_one_character() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let cron = &schema(&spec, "Schedule")["oneOf"][1]["properties"]["cron"];
    assert_eq!(cron["minLength"], 1);
    let body = a_pull_workflow("empty-cron", serde_json::json!({"cron": ""}));
    assert_eq!(
        status_of(&app, reqwest::Method::POST, "/workflows", body).await,
        422
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn empty_code_is_refused_as_the_spec_requires_one_character() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    assert_eq!(
        schema(&spec, "NewWorkflow")["properties"]["code"]["minLength"],
        1
    );
    assert_eq!(
        schema(&spec, "WorkflowPatch")["properties"]["code"]["minLength"],
        1
    );
    let body = serde_json::json!({"name": "no-code", "mode": "catch", "code": ""});
    assert_eq!(
        status_of(&app, reqwest::Method::POST, "/workflows", body).await,
        422
    );
    let workflow = app
        .create_catch("has-code", &catch_code("return None"))
        .await;
    let path = format!("/workflows/{}", workflow["id"].as_str().unwrap());
    let patch = serde_json::json!({"code": ""});
    assert_eq!(
        status_of(&app, reqwest::Method::PATCH, &path, patch).await,
        422
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_limit_under_the_spec_minimum_is_refused_by_a_patch() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let minimum = schema(&spec, "WorkflowPatch")["properties"]["memory_mb"]["minimum"]
        .as_i64()
        .expect("a minimum");
    let workflow = app.create_catch("memory", &catch_code("return None")).await;
    let path = format!("/workflows/{}", workflow["id"].as_str().unwrap());
    for refused in [-1, minimum - 1] {
        let patch = serde_json::json!({ "memory_mb": refused });
        assert_eq!(
            status_of(&app, reqwest::Method::PATCH, &path, patch).await,
            422,
            "memory_mb {refused}"
        );
    }
    let patch = serde_json::json!({ "memory_mb": minimum });
    assert_eq!(
        status_of(&app, reqwest::Method::PATCH, &path, patch).await,
        200
    );
    app.stop().await;
}
