//! Settings (CONTRACT §4): the settings API, what executions persist and when, merges between
//! concurrent executions, values JSON cannot hold, and secrets.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::{call, call_raw, create_pull, hook_answer, id, run_now, Answer};
use crate::support::*;

fn settings_path(workflow: &Value) -> String {
    format!("/workflows/{}/settings", id(workflow))
}

async fn put_settings(app: &TestApp, workflow: &Value, body: &Value) -> Answer {
    call(app, Method::PUT, &settings_path(workflow), Some(body)).await
}

async fn patch_settings(app: &TestApp, workflow: &Value, body: &Value) -> Answer {
    call(app, Method::PATCH, &settings_path(workflow), Some(body)).await
}

/// A catch workflow with `settings` (and `secrets`) running `body`.
async fn catch_with(
    app: &TestApp,
    name: &str,
    body: &str,
    settings: Value,
    secrets: Value,
) -> Value {
    app.create_workflow(json!({
        "name": name, "mode": "catch", "code": catch_code(body),
        "settings": settings, "secrets": secrets,
    }))
    .await
}

/// The record of the execution a hook answer names.
async fn record_of(app: &TestApp, answer: &Answer) -> Value {
    let id = answer
        .header("x-execution-id")
        .expect("X-Execution-Id")
        .to_string();
    app.execution(&id).await
}

// --- the settings API ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn get_settings_answers_the_settings_given_at_create() {
    let app = spawn_app().await;
    let settings = json!({"url": "https://example.com", "retries": 3, "nested": {"a": [1, 2]}});
    let workflow = catch_with(&app, "s", "return None", settings.clone(), json!([])).await;
    let answer = app.get_json(&settings_path(&workflow)).await;
    assert_eq!(answer["settings"], settings);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn get_settings_masks_secret_values() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return None",
        json!({"API_KEY": "sk-live-123456", "url": "https://example.com"}),
        json!(["API_KEY"]),
    )
    .await;
    let answer = app.get_json(&settings_path(&workflow)).await;
    assert_eq!(
        answer["settings"],
        json!({"API_KEY": "****", "url": "https://example.com"})
    );
    assert!(!answer.to_string().contains("sk-live-123456"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn workflow_answers_never_hold_secret_values() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return None",
        json!({"API_KEY": "sk-live-123456"}),
        json!(["API_KEY"]),
    )
    .await;
    assert!(!workflow.to_string().contains("sk-live-123456"));
    let shown = app.get_json(&format!("/workflows/{}", id(&workflow))).await;
    assert!(!shown.to_string().contains("sk-live-123456"));
    assert_eq!(shown["secrets"], json!(["API_KEY"]));
    let listed = app.get_json("/workflows").await;
    assert!(!listed.to_string().contains("sk-live-123456"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn put_settings_replaces_all_of_them() {
    let app = spawn_app().await;
    let workflow = catch_with(&app, "s", "return None", json!({"a": 1, "b": 2}), json!([])).await;
    let answer = put_settings(&app, &workflow, &json!({"settings": {"b": 20, "c": 30}})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["settings"], json!({"b": 20, "c": 30}));
    assert_eq!(app.settings(&workflow).await, json!({"b": 20, "c": 30}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_settings_merges_and_null_deletes() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return None",
        json!({"a": 1, "b": 2, "c": 3}),
        json!([]),
    )
    .await;
    let answer = patch_settings(
        &app,
        &workflow,
        &json!({"settings": {"a": 10, "b": null, "d": 4}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["settings"], json!({"a": 10, "c": 3, "d": 4}));
    assert_eq!(
        app.settings(&workflow).await,
        json!({"a": 10, "c": 3, "d": 4})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn put_and_patch_settings_answers_mask_secrets() {
    let app = spawn_app().await;
    let workflow = catch_with(&app, "s", "return None", json!({}), json!(["TOKEN"])).await;
    let answer = put_settings(
        &app,
        &workflow,
        &json!({"settings": {"TOKEN": "tok-abcdef"}}),
    )
    .await;
    assert_eq!(answer.body["settings"], json!({"TOKEN": "****"}));
    let answer = patch_settings(
        &app,
        &workflow,
        &json!({"settings": {"TOKEN": "tok-ghijkl"}}),
    )
    .await;
    assert_eq!(answer.body["settings"], json!({"TOKEN": "****"}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn put_back_of_masked_settings_keeps_the_secret_values() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return {'status_code': 200, 'body': settings['TOKEN']}",
        json!({"TOKEN": "tok-abcdef", "url": "a"}),
        json!(["TOKEN"]),
    )
    .await;
    // A client reads the settings (masked), changes one key and writes them all back.
    let mut settings = app.settings(&workflow).await;
    settings["url"] = json!("b");
    let answer = put_settings(&app, &workflow, &json!({ "settings": settings })).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.body, "tok-abcdef");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn patch_of_a_secret_with_the_mask_keeps_its_value() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return {'status_code': 200, 'body': settings['TOKEN'] + ' ' + settings['url']}",
        json!({"TOKEN": "tok-abcdef", "url": "a"}),
        json!(["TOKEN"]),
    )
    .await;
    let answer = patch_settings(
        &app,
        &workflow,
        &json!({"settings": {"TOKEN": "****", "url": "b"}}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.body, "tok-abcdef b");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn put_settings_with_a_key_named_settings_beside_others_keeps_them_all() {
    let app = spawn_app().await;
    let workflow = catch_with(&app, "s", "return None", json!({}), json!([])).await;
    // Not the `{"settings": {...}}` envelope: a bare object holding a key named "settings".
    let body = json!({"settings": {"x": 1}, "other": 2});
    let answer = put_settings(&app, &workflow, &body).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.settings(&workflow).await, body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_routes_of_an_unknown_id_are_404() {
    let app = spawn_app().await;
    call(&app, Method::GET, "/workflows/unknown/settings", None)
        .await
        .assert_error(404, "not_found");
    call(
        &app,
        Method::PUT,
        "/workflows/unknown/settings",
        Some(&json!({"settings": {}})),
    )
    .await
    .assert_error(404, "not_found");
    call(
        &app,
        Method::PATCH,
        "/workflows/unknown/settings",
        Some(&json!({"settings": {}})),
    )
    .await
    .assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_bodies_that_are_not_json_are_400() {
    let app = spawn_app().await;
    let workflow = catch_with(&app, "s", "return None", json!({"a": 1}), json!([])).await;
    for method in [Method::PUT, Method::PATCH] {
        call_raw(&app, method, &settings_path(&workflow), "{\"a\": ")
            .await
            .assert_error(400, "bad_request");
    }
    assert_eq!(app.settings(&workflow).await, json!({"a": 1}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_bodies_that_are_not_objects_are_422() {
    let app = spawn_app().await;
    let workflow = catch_with(&app, "s", "return None", json!({"a": 1}), json!([])).await;
    for method in [Method::PUT, Method::PATCH] {
        for body in ["[1, 2]", "3", "\"text\""] {
            call_raw(&app, method.clone(), &settings_path(&workflow), body)
                .await
                .assert_error(422, "invalid_request");
        }
    }
    assert_eq!(app.settings(&workflow).await, json!({"a": 1}));
    app.stop().await;
}

// --- what executions persist --------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_sees_the_current_settings() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return {'status_code': 200, 'body': settings['greeting'] + ' ' + str(settings['n'])}",
        json!({"greeting": "hello", "n": 1}),
        json!([]),
    )
    .await;
    assert_eq!(
        hook_answer(&app, &workflow, &json!({})).await.body,
        "hello 1"
    );
    patch_settings(&app, &workflow, &json!({"settings": {"n": 2}})).await;
    assert_eq!(
        hook_answer(&app, &workflow, &json!({})).await.body,
        "hello 2"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_of_a_successful_catch_execution_persist() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "settings['count'] = settings.get('count', 0) + 1\nreturn None",
        json!({}),
        json!([]),
    )
    .await;
    hook_answer(&app, &workflow, &json!({})).await;
    hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(app.settings(&workflow).await, json!({"count": 2}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_of_a_successful_pull_execution_persist() {
    let app = spawn_app().await;
    let workflow = create_pull(
        &app,
        "p",
        &pull_code("settings['cursor'] = 'page-2'\nsettings['seen'] = [1, 2]"),
    )
    .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["status"], "success", "{record}");
    assert_eq!(
        app.settings(&workflow).await,
        json!({"cursor": "page-2", "seen": [1, 2]})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_execution_records_which_keys_it_added_changed_and_removed() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "settings['a'] = 10\ndel settings['b']\nsettings['c'] = 3\nreturn None",
        json!({"a": 1, "b": 2, "k": "same"}),
        json!([]),
    )
    .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    let record = record_of(&app, &answer).await;
    assert_eq!(
        record["settings_changed"],
        json!({"added": ["c"], "changed": ["a"], "removed": ["b"]})
    );
    assert_eq!(
        app.settings(&workflow).await,
        json!({"a": 10, "c": 3, "k": "same"})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_to_nested_values_persist() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "settings['state']['ids'].append(3)\nreturn None",
        json!({"state": {"ids": [1, 2]}}),
        json!([]),
    )
    .await;
    hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(
        app.settings(&workflow).await,
        json!({"state": {"ids": [1, 2, 3]}})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_that_raised_persists_nothing() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "settings['a'] = 2\nsettings['b'] = 'new'\nraise RuntimeError('boom')",
        json!({"a": 1}),
        json!([]),
    )
    .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.status, 500);
    assert_eq!(record_of(&app, &answer).await["status"], "error");
    assert_eq!(app.settings(&workflow).await, json!({"a": 1}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_execution_that_raised_persists_nothing() {
    let app = spawn_app().await;
    let workflow = create_pull(
        &app,
        "p",
        &pull_code("settings['a'] = 2\nraise KeyError('x')"),
    )
    .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["status"], "error");
    assert_eq!(app.settings(&workflow).await, json!({}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_that_timed_out_persists_nothing() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "slow", "mode": "catch", "timeout_s": 1, "settings": {"a": 1},
            "code": catch_code("import time\nsettings['a'] = 2\ntime.sleep(30)\nreturn None"),
        }))
        .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.status, 504);
    assert_eq!(record_of(&app, &answer).await["status"], "timeout");
    assert_eq!(app.settings(&workflow).await, json!({"a": 1}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn each_execution_gets_its_own_copy_of_the_settings() {
    let app = spawn_app().await;
    // The first call changes its copy, then raises: the second call must not see the change.
    let workflow = catch_with(
        &app,
        "s",
        "seen = settings['items'][:]\nsettings['items'].append('x')\nif _request.get('fail'):\n    raise ValueError('no')\nreturn {'status_code': 200, 'body': ','.join(seen)}",
        json!({"items": ["a"]}),
        json!([]),
    )
    .await;
    assert_eq!(
        hook_answer(&app, &workflow, &json!({"fail": true}))
            .await
            .status,
        500
    );
    assert_eq!(hook_answer(&app, &workflow, &json!({})).await.body, "a");
    app.stop().await;
}

// --- concurrent executions ----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_executions_changing_different_keys_both_persist() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "merge",
        "import time\nseen = sorted(settings)\ntime.sleep(1)\nsettings[_request['key']] = _request['value']\nreturn {'status_code': 200, 'body': ','.join(seen)}",
        json!({"base": 0}),
        json!([]),
    )
    .await;
    let (body_a, body_b) = (
        json!({"key": "a", "value": 1}),
        json!({"key": "b", "value": 2}),
    );
    let (a, b) = tokio::join!(
        hook_answer(&app, &workflow, &body_a),
        hook_answer(&app, &workflow, &body_b),
    );
    // Both started from the same settings: neither saw the other's key.
    assert_eq!(a.body, "base");
    assert_eq!(b.body, "base");
    assert_eq!(
        app.settings(&workflow).await,
        json!({"base": 0, "a": 1, "b": 2})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_executions_changing_the_same_key_keep_the_last_to_finish() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "race",
        "import time\ntime.sleep(_request['sleep'])\nsettings['k'] = _request['value']\nreturn None",
        json!({}),
        json!([]),
    )
    .await;
    let (slow, fast) = (
        json!({"sleep": 1.5, "value": "slow"}),
        json!({"sleep": 0.1, "value": "fast"}),
    );
    tokio::join!(
        hook_answer(&app, &workflow, &slow),
        hook_answer(&app, &workflow, &fast),
    );
    assert_eq!(app.settings(&workflow).await, json!({"k": "slow"}));
    app.stop().await;
}

/// A catch workflow with `max_concurrency: 1` doing a slow read-modify-write of `n`.
async fn serial_counter(app: &TestApp) -> Value {
    app.create_workflow(json!({
        "name": "counter", "mode": "catch", "max_concurrency": 1,
        "code": catch_code("import time\nn = settings.get('n', 0)\ntime.sleep(0.2)\nsettings['n'] = n + 1\nreturn None"),
    }))
    .await
}

/// Calls `workflow`'s hook `count` times at once; asserts they all answered 200 and took at least
/// as long as one after the other.
async fn call_at_once(app: &TestApp, workflow: &Value, count: usize) {
    let empty = json!({});
    let started = Instant::now();
    let answers =
        futures::future::join_all((0..count).map(|_| hook_answer(app, workflow, &empty))).await;
    let elapsed = started.elapsed();
    for answer in &answers {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert!(
        elapsed >= Duration::from_millis(200 * count as u64),
        "ran one at a time: {elapsed:?}, settings {}",
        app.settings(workflow).await
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrency_one_serialises_read_modify_write() {
    let app = spawn_app().await;
    let workflow = serial_counter(&app).await;
    // One call first, so that the workflow is loaded (see the test below).
    hook_answer(&app, &workflow, &json!({})).await;
    call_at_once(&app, &workflow, 4).await;
    assert_eq!(app.settings(&workflow).await, json!({"n": 5}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrency_one_serialises_the_first_calls_after_deploy() {
    let app = spawn_app().await;
    let workflow = serial_counter(&app).await;
    call_at_once(&app, &workflow, 4).await;
    assert_eq!(app.settings(&workflow).await, json!({"n": 4}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn max_concurrency_one_holds_across_a_patch() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "counter", "mode": "catch", "max_concurrency": 1,
            "code": catch_code("import time\nn = settings.get('n', 0)\ntime.sleep(1)\nsettings['n'] = n + 1\nreturn None"),
        }))
        .await;
    hook_answer(&app, &workflow, &json!({})).await;
    let (empty, patch) = (json!({}), json!({"timeout_s": 30}));
    let first = hook_answer(&app, &workflow, &empty);
    let second = async {
        app.wait_in_flight(1).await;
        crate::api_support::patch_ok(&app, &workflow, &patch).await;
        hook_answer(&app, &workflow, &empty).await
    };
    tokio::join!(first, second);
    assert_eq!(app.settings(&workflow).await, json!({"n": 3}));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_api_change_during_an_execution_merges_with_its_changes() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "merge-api",
        "import time\ntime.sleep(1)\nsettings['from_code'] = 1\nreturn None",
        json!({"keep": "x"}),
        json!([]),
    )
    .await;
    let (empty, patch) = (json!({}), json!({"settings": {"from_api": 2}}));
    let call = hook_answer(&app, &workflow, &empty);
    let change = async {
        // Listed as running: past its snapshot of the settings.
        eventually(Duration::from_secs(10), "the execution runs", || async {
            let listed = app.executions(&workflow).await;
            listed.first().filter(|e| e["status"] == "running").cloned()
        })
        .await;
        patch_settings(&app, &workflow, &patch).await
    };
    let (answer, _) = tokio::join!(call, change);
    assert_eq!(answer.status, 200);
    assert_eq!(
        app.settings(&workflow).await,
        json!({"keep": "x", "from_code": 1, "from_api": 2})
    );
    app.stop().await;
}

// --- values JSON cannot hold --------------------------------------------------------------------

/// Runs a catch workflow that sets `ok` and then does `statement`, answering 201: asserts that the
/// caller got 201, that nothing was persisted, and answers the execution's error message.
async fn refused_settings_error(statement: &str) -> String {
    let app = spawn_app().await;
    let body = format!(
        "import datetime, math\nsettings['ok'] = 1\n{statement}\nreturn {{'status_code': 201, 'body': 'done'}}"
    );
    let workflow = catch_with(
        &app,
        "bad-settings",
        &body,
        json!({"before": true}),
        json!([]),
    )
    .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(
        answer.status, 201,
        "the caller gets the function's response"
    );
    assert_eq!(answer.body, "done");
    let record = record_of(&app, &answer).await;
    assert_eq!(record["status"], "error", "{record}");
    assert_eq!(record["error"]["type"], "InvalidSettings", "{record}");
    assert_eq!(app.settings(&workflow).await, json!({"before": true}));
    let message = record["error"]["message"].as_str().unwrap().to_string();
    app.stop().await;
    message
}

#[tokio::test(flavor = "multi_thread")]
async fn a_datetime_in_settings_persists_nothing_and_names_key_and_type() {
    let message = refused_settings_error("settings['when'] = datetime.datetime.now()").await;
    assert!(
        message.contains("when") && message.contains("datetime"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_set_in_settings_persists_nothing_and_names_key_and_type() {
    let message = refused_settings_error("settings['tags'] = {'a', 'b'}").await;
    assert!(
        message.contains("tags") && message.contains("set"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_in_settings_persist_nothing_and_name_key_and_type() {
    let message = refused_settings_error("settings['blob'] = b'raw'").await;
    assert!(
        message.contains("blob") && message.contains("bytes"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn nan_in_settings_persists_nothing_and_names_the_key() {
    let message = refused_settings_error("settings['ratio'] = math.nan").await;
    assert!(
        message.contains("ratio") && message.contains("nan"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_int_key_in_settings_persists_nothing_and_names_it() {
    let message = refused_settings_error("settings[42] = 'x'").await;
    assert!(
        message.contains("42") && message.contains("int"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nested_int_key_in_settings_persists_nothing_and_names_it() {
    let message = refused_settings_error("settings['map'] = {1: 'one'}").await;
    assert!(
        message.contains("map") && message.contains("int"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_nested_in_a_list_persists_nothing_and_names_its_path() {
    let message =
        refused_settings_error("settings['rows'] = [1, {'at': datetime.date(2024, 1, 1)}]").await;
    assert!(
        message.contains("rows") && message.contains("at") && message.contains("date"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_execution_with_a_bad_settings_value_is_an_error_and_persists_nothing() {
    let app = spawn_app().await;
    let workflow = create_pull(
        &app,
        "p",
        &pull_code("settings['ok'] = 1\nsettings['s'] = {1, 2}"),
    )
    .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["status"], "error", "{record}");
    assert_eq!(record["error"]["type"], "InvalidSettings");
    assert_eq!(app.settings(&workflow).await, json!({}));
    app.stop().await;
}

// --- secrets --------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_reaches_the_code_unmasked() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return {'status_code': 200, 'body': settings['API_KEY']}",
        json!({"API_KEY": "sk-live-123456"}),
        json!(["API_KEY"]),
    )
    .await;
    assert_eq!(
        hook_answer(&app, &workflow, &json!({})).await.body,
        "sk-live-123456"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_printed_secret_is_masked_in_the_logs() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "import sys\nprint(settings['API_KEY'])\nprint('key=' + settings['API_KEY'], file=sys.stderr)\nreturn None",
        json!({"API_KEY": "sk-live-123456"}),
        json!(["API_KEY"]),
    )
    .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    let record = record_of(&app, &answer).await;
    let logs = record["logs"].as_str().unwrap();
    assert!(!logs.contains("sk-live-123456"), "{logs}");
    assert!(logs.contains("****"), "{logs}");
    assert!(logs.contains("key=****"), "{logs}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_in_an_exception_is_masked_in_the_record() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "raise ValueError('bad key ' + settings['API_KEY'])",
        json!({"API_KEY": "sk-live-123456"}),
        json!(["API_KEY"]),
    )
    .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.status, 500);
    assert!(!answer.body.to_string().contains("sk-live-123456"));
    let record = record_of(&app, &answer).await;
    assert!(!record.to_string().contains("sk-live-123456"), "{record}");
    assert!(record["error"]["message"]
        .as_str()
        .unwrap()
        .contains("****"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_secret_set_by_the_code_is_masked_in_the_api_and_later_logs() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "if _request.get('set'):\n    settings['TOKEN'] = 'tok-rotated-999'\nelse:\n    print(settings['TOKEN'])\nreturn None",
        json!({"TOKEN": "tok-original-1"}),
        json!(["TOKEN"]),
    )
    .await;
    hook_answer(&app, &workflow, &json!({"set": true})).await;
    assert_eq!(app.settings(&workflow).await, json!({"TOKEN": "****"}));
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    let record = record_of(&app, &answer).await;
    let logs = record["logs"].as_str().unwrap();
    assert!(!logs.contains("tok-rotated-999"), "{logs}");
    assert!(logs.contains("****"), "{logs}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn marking_a_key_secret_later_masks_it_from_then_on() {
    let app = spawn_app().await;
    let workflow = catch_with(
        &app,
        "s",
        "return None",
        json!({"PASSWORD": "hunter2-long"}),
        json!([]),
    )
    .await;
    assert_eq!(
        app.settings(&workflow).await,
        json!({"PASSWORD": "hunter2-long"})
    );
    let answer = call(
        &app,
        Method::PATCH,
        &format!("/workflows/{}", id(&workflow)),
        Some(&json!({"secrets": ["PASSWORD"]})),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.settings(&workflow).await, json!({"PASSWORD": "****"}));
    app.stop().await;
}
