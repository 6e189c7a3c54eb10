//! `/api/v1/workflows`: deploy, list, read, change, delete; versions; refused code; bad input.

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::{
    call, call_raw, create_pull, hook_answer, id, is_rfc3339_utc, patch_ok, run_now,
};
use crate::support::*;

async fn workflows(app: &TestApp) -> Vec<Value> {
    app.get_json("/workflows").await["workflows"]
        .as_array()
        .expect("a list of workflows")
        .clone()
}

async fn post_workflow(app: &TestApp, body: Value) -> crate::api_support::Answer {
    call(app, Method::POST, "/workflows", Some(&body)).await
}

/// A valid catch workflow's creation body, with `extra` merged in.
fn catch_body(name: &str, extra: Value) -> Value {
    let mut body = json!({"name": name, "mode": "catch", "code": catch_code("return None")});
    for (key, value) in extra.as_object().expect("an object") {
        body[key] = value.clone();
    }
    body
}

// --- create ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn create_catch_answers_201_with_the_workflow() {
    let app = spawn_app().await;
    let created = app.create_catch("greet", &catch_code("return None")).await;
    assert!(!id(&created).is_empty());
    assert_eq!(created["name"], "greet");
    assert_eq!(created["mode"], "catch");
    assert!(created["runtime"]
        .as_str()
        .is_some_and(|r| r.starts_with("python3.")));
    assert_eq!(created["version"], 1);
    assert_eq!(created["enabled"], true);
    assert!(is_rfc3339_utc(&created["created_at"]), "{created}");
    assert!(is_rfc3339_utc(&created["updated_at"]), "{created}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_catch_gives_a_hook_url_with_team_name_runtime_and_a_long_token() {
    let app = spawn_app().await;
    let created = app.create_catch("greet", &catch_code("return None")).await;
    let url = created["hook_url"].as_str().expect("hook_url");
    let parts: Vec<&str> = url.split('/').collect();
    assert_eq!(parts.len(), 6, "{url}");
    assert_eq!(
        &parts[..5],
        [
            "",
            "teams",
            "default",
            "greet",
            created["runtime"].as_str().unwrap()
        ]
    );
    let token = parts[5];
    // At least 128 bits of randomness, in hex.
    assert!(
        token.len() >= 32 && token.chars().all(|c| c.is_ascii_hexdigit()),
        "{token}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_gives_each_workflow_its_own_token() {
    let app = spawn_app().await;
    let a = app.create_catch("a", &catch_code("return None")).await;
    let b = app.create_catch("b", &catch_code("return None")).await;
    let token = |w: &Value| {
        w["hook_url"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string()
    };
    assert_ne!(token(&a), token(&b));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_pull_has_no_hook_url_and_keeps_its_schedule() {
    let app = spawn_app().await;
    let created = app
        .create_workflow(json!({
            "name": "nightly", "mode": "pull", "code": pull_code("return None"),
            "schedule": {"every": "1h"}, "enabled": false,
        }))
        .await;
    assert_eq!(created["mode"], "pull");
    assert!(created["hook_url"].is_null(), "{created}");
    assert_eq!(created["schedule"], json!({"every": "1h"}));
    assert_eq!(created["enabled"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_keeps_the_limits_given() {
    let app = spawn_app().await;
    let created = app
        .create_workflow(catch_body(
            "limited",
            json!({"timeout_s": 5, "memory_mb": 256, "max_concurrency": 2}),
        ))
        .await;
    assert_eq!(created["timeout_s"], 5);
    assert_eq!(created["memory_mb"], 256);
    assert_eq!(created["max_concurrency"], 2);
    let shown = app.get_json(&format!("/workflows/{}", id(&created))).await;
    assert_eq!(shown["timeout_s"], 5);
    assert_eq!(shown["memory_mb"], 256);
    assert_eq!(shown["max_concurrency"], 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_an_explicit_runtime_accepts_the_servers_runtime() {
    let app = spawn_app().await;
    let first = app.create_catch("first", &catch_code("return None")).await;
    let runtime = first["runtime"].clone();
    let created = app
        .create_workflow(catch_body("second", json!({"runtime": runtime})))
        .await;
    assert_eq!(created["runtime"], runtime);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_a_name_taken_in_the_team_is_409() {
    let app = spawn_app().await;
    app.create_catch("twice", &catch_code("return None")).await;
    let answer = post_workflow(&app, catch_body("twice", json!({}))).await;
    answer.assert_error(409, "conflict");
    assert_eq!(workflows(&app).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_a_name_taken_by_a_pull_workflow_is_409() {
    let app = spawn_app().await;
    create_pull(&app, "shared", &pull_code("return None")).await;
    let answer = post_workflow(&app, catch_body("shared", json!({}))).await;
    answer.assert_error(409, "conflict");
    app.stop().await;
}

// --- refused code -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn create_with_a_syntax_error_is_422_naming_line_and_column() {
    let app = spawn_app().await;
    let code = "import json\n\ndef workflow(_request, settings):\n    return 1 $ 2\n";
    let answer = post_workflow(
        &app,
        json!({"name": "broken", "mode": "catch", "code": code}),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    assert_eq!(answer.body["error"]["line"], 4, "{}", answer.body);
    assert_eq!(answer.body["error"]["column"], 14, "{}", answer.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_refused_code_stores_nothing() {
    let app = spawn_app().await;
    let answer = post_workflow(
        &app,
        json!({"name": "broken", "mode": "catch", "code": "def workflow(:\n"}),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    assert!(workflows(&app).await.is_empty());
    // The name is still free.
    app.create_catch("broken", &catch_code("return None")).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_without_a_workflow_function_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(
        &app,
        json!({"name": "nofn", "mode": "catch", "code": "def handler(_request, settings):\n    return None\n"}),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("workflow"), "{message}");
    assert!(answer.body["error"]["line"].is_number());
    assert!(answer.body["error"]["column"].is_number());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_workflow_not_a_function_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(
        &app,
        json!({"name": "notfn", "mode": "pull", "code": "workflow = 3\n", "schedule": {"every": "1h"}}),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_catch_with_one_parameter_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(
        &app,
        json!({"name": "arity", "mode": "catch", "code": pull_code("return None")}),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    assert_eq!(answer.body["error"]["line"], 1, "{}", answer.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_pull_with_two_parameters_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(
        &app,
        json!({"name": "arity", "mode": "pull", "code": catch_code("return None"), "schedule": {"every": "1h"}}),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    app.stop().await;
}

// --- bad input on create ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn create_with_invalid_json_is_400() {
    let app = spawn_app().await;
    let answer = call_raw(&app, Method::POST, "/workflows", "{\"name\": ").await;
    answer.assert_error(400, "bad_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_a_field_of_the_wrong_type_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("typed", json!({"timeout_s": "ten"}))).await;
    answer.assert_error(422, "invalid_request");
    let answer = post_workflow(&app, json!({"name": 5, "mode": "catch", "code": "x"})).await;
    answer.assert_error(422, "invalid_request");
    let answer = post_workflow(&app, catch_body("typed", json!({"secrets": "API_KEY"}))).await;
    answer.assert_error(422, "invalid_request");
    assert!(workflows(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_an_unknown_field_is_422_naming_it() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("extra", json!({"colour": "blue"}))).await;
    answer.assert_error(422, "invalid_request");
    let message = answer.body["error"]["message"].as_str().unwrap();
    assert!(message.contains("colour"), "{message}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_without_a_required_field_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, json!({"name": "nocode", "mode": "catch"})).await;
    answer.assert_error(422, "invalid_request");
    let answer = post_workflow(&app, json!({})).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_a_json_array_body_is_422() {
    let app = spawn_app().await;
    let answer = call_raw(&app, Method::POST, "/workflows", "[1, 2]").await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_an_unknown_mode_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("moded", json!({"mode": "push"}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_a_bad_name_is_422() {
    let app = spawn_app().await;
    for name in ["a/b", "", "-dash", "a b", "é", &"x".repeat(65)] {
        let answer = post_workflow(&app, catch_body(name, json!({}))).await;
        answer.assert_error(422, "invalid_request");
    }
    assert!(workflows(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_an_unknown_runtime_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("rt", json!({"runtime": "python2.7"}))).await;
    answer.assert_error(422, "invalid_request");
    let answer = post_workflow(&app, catch_body("rt", json!({"runtime": ""}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_timeout_zero_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("t", json!({"timeout_s": 0}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_timeout_above_the_maximum_is_422() {
    let app = spawn_app_with(|c| c.engine.max_timeout_s = 30).await;
    let answer = post_workflow(&app, catch_body("t", json!({"timeout_s": 31}))).await;
    answer.assert_error(422, "invalid_request");
    let answer = post_workflow(&app, catch_body("t", json!({"timeout_s": -1}))).await;
    answer.assert_error(422, "invalid_request");
    let created = app
        .create_workflow(catch_body("t", json!({"timeout_s": 30})))
        .await;
    assert_eq!(created["timeout_s"], 30);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_without_timeout_takes_the_default_within_the_maximum() {
    let app = spawn_app_with(|c| c.engine.max_timeout_s = 30).await;
    let created = app.create_catch("t", &catch_code("return None")).await;
    assert_eq!(created["timeout_s"], 30);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_memory_out_of_bounds_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("m", json!({"memory_mb": 1}))).await;
    answer.assert_error(422, "invalid_request");
    let answer = post_workflow(&app, catch_body("m", json!({"memory_mb": 1_000_000}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_max_concurrency_zero_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("c", json!({"max_concurrency": 0}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_catch_with_a_schedule_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("s", json!({"schedule": {"every": "1h"}}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_an_empty_secret_key_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("s", json!({"secrets": [""]}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn create_with_settings_that_are_not_an_object_is_422() {
    let app = spawn_app().await;
    let answer = post_workflow(&app, catch_body("s", json!({"settings": [1, 2]}))).await;
    answer.assert_error(422, "invalid_request");
    app.stop().await;
}

// --- list and show --------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn list_answers_every_workflow_of_the_team() {
    let app = spawn_app().await;
    assert!(workflows(&app).await.is_empty());
    app.create_catch("one", &catch_code("return None")).await;
    create_pull(&app, "two", &pull_code("return None")).await;
    let mut names: Vec<String> = workflows(&app)
        .await
        .iter()
        .map(|w| w["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["one", "two"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn show_answers_what_create_answered() {
    let app = spawn_app().await;
    let created = app.create_catch("same", &catch_code("return None")).await;
    let shown = app.get_json(&format!("/workflows/{}", id(&created))).await;
    assert_eq!(shown, without_deployment(&created));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn show_of_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let answer = call(
        &app,
        Method::GET,
        "/workflows/0190f3d0-0000-7000-8000-000000000000",
        None,
    )
    .await;
    answer.assert_error(404, "not_found");
    let answer = call(&app, Method::GET, "/workflows/not-an-id", None).await;
    answer.assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_api_route_is_404_json() {
    let app = spawn_app().await;
    let answer = call(&app, Method::GET, "/nothing-here", None).await;
    answer.assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_method_a_route_does_not_have_is_405_json() {
    let app = spawn_app().await;
    let created = app.create_catch("m", &catch_code("return None")).await;
    let answer = call(
        &app,
        Method::PUT,
        &format!("/workflows/{}", id(&created)),
        Some(&json!({})),
    )
    .await;
    answer.assert_error(405, "method_not_allowed");
    assert!(answer.header("allow").is_some(), "{:?}", answer.headers);
    app.stop().await;
}

// --- update ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn patch_changes_the_fields_given_and_keeps_the_others() {
    let app = spawn_app().await;
    let created = app
        .create_workflow(catch_body("before", json!({"timeout_s": 7})))
        .await;
    let patched = patch_ok(&app, &created, &json!({"name": "after", "enabled": false})).await;
    assert_eq!(patched["name"], "after");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["timeout_s"], 7);
    assert_eq!(patched["version"], 1);
    assert_eq!(patched["created_at"], created["created_at"]);
    let shown = app.get_json(&format!("/workflows/{}", id(&created))).await;
    assert_eq!(shown, patched);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_moves_updated_at_forward() {
    let app = spawn_app().await;
    let created = app.create_catch("later", &catch_code("return None")).await;
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let created_at = time(&created["updated_at"]);
    // Times are kept to the millisecond: a patch in the same one could not move it.
    let now_ms = || chrono::Utc::now().timestamp_millis();
    let a_later_millisecond = || async { (now_ms() > created_at.timestamp_millis()).then_some(()) };
    let within = std::time::Duration::from_secs(1);
    eventually(within, "a later millisecond", a_later_millisecond).await;
    let patched = patch_ok(&app, &created, &json!({"timeout_s": 9})).await;
    assert!(time(&patched["updated_at"]) > created_at);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_renaming_moves_the_hook_url() {
    let app = spawn_app().await;
    let created = app
        .create_catch(
            "old-name",
            &catch_code("return {'status_code': 200, 'body': 'ok'}"),
        )
        .await;
    let patched = patch_ok(&app, &created, &json!({"name": "new-name"})).await;
    assert!(patched["hook_url"].as_str().unwrap().contains("/new-name/"));
    assert_eq!(hook_answer(&app, &created, &json!({})).await.status, 404);
    let answer = hook_answer(&app, &patched, &json!({})).await;
    assert_eq!(answer.status, 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_with_code_makes_a_new_version() {
    let app = spawn_app().await;
    let created = app
        .create_catch("versioned", &catch_code("return None"))
        .await;
    let code2 = catch_code("return {'status_code': 200, 'body': 'two'}");
    let patched = patch_ok(&app, &created, &json!({"code": code2})).await;
    assert_eq!(patched["version"], 2);
    let versions = app
        .get_json(&format!("/workflows/{}/versions", id(&created)))
        .await["versions"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(versions.len(), 2, "{versions:?}");
    let v2 = versions
        .iter()
        .find(|v| v["version"] == 2)
        .expect("version 2");
    let v1 = versions
        .iter()
        .find(|v| v["version"] == 1)
        .expect("version 1");
    assert_eq!(v2["code"], code2);
    assert_eq!(v2["active"], true);
    assert_eq!(v1["code"], catch_code("return None"));
    assert_eq!(v1["active"], false);
    assert!(is_rfc3339_utc(&v1["created_at"]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_without_code_keeps_the_version() {
    let app = spawn_app().await;
    let created = app.create_catch("stable", &catch_code("return None")).await;
    patch_ok(&app, &created, &json!({"timeout_s": 3})).await;
    let versions = app
        .get_json(&format!("/workflows/{}/versions", id(&created)))
        .await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_with_refused_code_is_422_and_changes_nothing() {
    let app = spawn_app().await;
    let created = app.create_catch("kept", &catch_code("return None")).await;
    let answer = call(
        &app,
        Method::PATCH,
        &format!("/workflows/{}", id(&created)),
        Some(&json!({"code": "def workflow(:\n", "name": "renamed", "timeout_s": 3})),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    assert_eq!(answer.body["error"]["line"], 1);
    let shown = app.get_json(&format!("/workflows/{}", id(&created))).await;
    assert_eq!(shown, without_deployment(&created));
    let versions = app
        .get_json(&format!("/workflows/{}/versions", id(&created)))
        .await;
    assert_eq!(versions["versions"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_with_code_of_the_other_mode_is_422() {
    let app = spawn_app().await;
    let created = app.create_catch("modal", &catch_code("return None")).await;
    let answer = call(
        &app,
        Method::PATCH,
        &format!("/workflows/{}", id(&created)),
        Some(&json!({"code": pull_code("return None")})),
    )
    .await;
    answer.assert_error(422, "invalid_code");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_to_a_name_taken_is_409() {
    let app = spawn_app().await;
    app.create_catch("taken", &catch_code("return None")).await;
    let other = app.create_catch("other", &catch_code("return None")).await;
    let answer = call(
        &app,
        Method::PATCH,
        &format!("/workflows/{}", id(&other)),
        Some(&json!({"name": "taken"})),
    )
    .await;
    answer.assert_error(409, "conflict");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_with_bad_input_is_refused() {
    let app = spawn_app().await;
    let created = app.create_catch("strict", &catch_code("return None")).await;
    let path = format!("/workflows/{}", id(&created));
    call_raw(&app, Method::PATCH, &path, "{nope")
        .await
        .assert_error(400, "bad_request");
    for body in [
        json!({"colour": "blue"}),
        json!({"name": 3}),
        json!({"name": "a/b"}),
        json!({"name": ""}),
        json!({"runtime": "python2.7"}),
        json!({"timeout_s": 0}),
        json!({"timeout_s": 100_000}),
        json!({"memory_mb": 1}),
        json!({"max_concurrency": 0}),
        json!({"enabled": "yes"}),
        json!({"mode": "pull"}),
        json!({"schedule": {"every": "1h"}}),
    ] {
        let answer = call(&app, Method::PATCH, &path, Some(&body)).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
        assert_eq!(
            answer.body["error"]["code"], "invalid_request",
            "{body}: {}",
            answer.body
        );
    }
    let shown = app.get_json(&path).await;
    assert_eq!(shown, without_deployment(&created));
    app.stop().await;
}

/// The workflow as `GET` shows it: the answer to a create also says how its deploy went.
fn without_deployment(created: &Value) -> Value {
    let mut workflow = created.clone();
    if let Some(fields) = workflow.as_object_mut() {
        fields.remove("deployment");
    }
    workflow
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_of_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let answer = call(
        &app,
        Method::PATCH,
        "/workflows/unknown",
        Some(&json!({"enabled": false})),
    )
    .await;
    answer.assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_max_concurrency_null_removes_the_limit() {
    let app = spawn_app().await;
    let created = app
        .create_workflow(catch_body("unlimited", json!({"max_concurrency": 1})))
        .await;
    let patched = patch_ok(&app, &created, &json!({"max_concurrency": null})).await;
    assert!(patched["max_concurrency"].is_null(), "{patched}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pausing_a_catch_workflow_makes_its_hook_answer_503() {
    let app = spawn_app().await;
    let created = app
        .create_catch(
            "pausable",
            &catch_code("return {'status_code': 200, 'body': 'ran'}"),
        )
        .await;
    patch_ok(&app, &created, &json!({"enabled": false})).await;
    let answer = hook_answer(&app, &created, &json!({})).await;
    assert_eq!(answer.status, 503);
    assert!(answer.header("retry-after").is_some());
    patch_ok(&app, &created, &json!({"enabled": true})).await;
    let answer = hook_answer(&app, &created, &json!({})).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "ran");
    app.stop().await;
}

// --- versions -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn versions_of_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let answer = call(&app, Method::GET, "/workflows/unknown/versions", None).await;
    answer.assert_error(404, "not_found");
    app.stop().await;
}

// --- delete ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn delete_answers_204_and_the_workflow_is_gone() {
    let app = spawn_app().await;
    let created = app
        .create_catch(
            "doomed",
            &catch_code("return {'status_code': 200, 'body': 'x'}"),
        )
        .await;
    let answer = call(
        &app,
        Method::DELETE,
        &format!("/workflows/{}", id(&created)),
        None,
    )
    .await;
    assert_eq!(answer.status, 204);
    let answer = call(
        &app,
        Method::GET,
        &format!("/workflows/{}", id(&created)),
        None,
    )
    .await;
    answer.assert_error(404, "not_found");
    assert!(workflows(&app).await.is_empty());
    assert_eq!(hook_answer(&app, &created, &json!({})).await.status, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_frees_the_name() {
    let app = spawn_app().await;
    let created = app.create_catch("reused", &catch_code("return None")).await;
    call(
        &app,
        Method::DELETE,
        &format!("/workflows/{}", id(&created)),
        None,
    )
    .await;
    let again = app.create_catch("reused", &catch_code("return None")).await;
    assert_ne!(id(&again), id(&created));
    assert_eq!(again["version"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_removes_the_executions() {
    let app = spawn_app().await;
    let created = create_pull(&app, "history", &pull_code("return None")).await;
    let execution = run_now(&app, &created, &json!({})).await;
    call(
        &app,
        Method::DELETE,
        &format!("/workflows/{}", id(&created)),
        None,
    )
    .await;
    let answer = call(
        &app,
        Method::GET,
        &format!("/executions/{}", id(&execution)),
        None,
    )
    .await;
    answer.assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_of_an_unknown_id_is_404() {
    let app = spawn_app().await;
    let answer = call(&app, Method::DELETE, "/workflows/unknown", None).await;
    answer.assert_error(404, "not_found");
    app.stop().await;
}

// --- sizes and tokens -----------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn create_with_code_over_the_size_limit_is_422() {
    let app = spawn_app_with(|c| c.engine.max_code_bytes = 200).await;
    let code = catch_code(&format!("# {}\nreturn None", "x".repeat(300)));
    let answer = post_workflow(&app, json!({"name": "big", "mode": "catch", "code": code})).await;
    answer.assert_error(422, "invalid_request");
    assert!(workflows(&app).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_body_over_8_mib_is_413() {
    let app = spawn_app().await;
    let code = format!("# {}\n", "x".repeat(9 << 20));
    let answer = post_workflow(&app, json!({"name": "huge", "mode": "catch", "code": code})).await;
    answer.assert_error(413, "payload_too_large");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotating_the_token_moves_the_hook_url() {
    let app = spawn_app().await;
    let created = app
        .create_catch(
            "rotated",
            &catch_code("return {'status_code': 200, 'body': 'ok'}"),
        )
        .await;
    let answer = call(
        &app,
        Method::POST,
        &format!("/workflows/{}/rotate-token", id(&created)),
        None,
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_ne!(answer.body["hook_url"], created["hook_url"]);
    assert_eq!(hook_answer(&app, &created, &json!({})).await.status, 404);
    assert_eq!(
        hook_answer(&app, &answer.body, &json!({})).await.status,
        200
    );
    app.stop().await;
}
