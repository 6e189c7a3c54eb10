//! CONTRACT.md §2 "The HTTP response" and the hook endpoint's refusals, over real HTTP with real
//! Python: custom responses, the default response and its warnings, errors, time limits, and
//! every bad input (404, 405, 415, 413, 400) — which run nothing and leave the server answering.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

/// A catch workflow whose function body is `return <expr>`.
fn returning(expr: &str) -> String {
    catch_code(&format!("return {expr}"))
}

async fn app_with(code: &str) -> (TestApp, Value) {
    let app = spawn_app().await;
    let workflow = app.create_catch("under-test", code).await;
    (app, workflow)
}

async fn call(app: &TestApp, workflow: &Value) -> reqwest::Response {
    app.call_hook_json(workflow, &json!({"n": 1})).await
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response
        .headers()
        .get(name)
        .map(|v| v.to_str().expect("ASCII header"))
}

/// Checks the default response (`200`, JSON `{"status": "success", "execution_id"}` naming the
/// execution in `X-Execution-Id`) and returns the execution's record.
async fn assert_default_response(app: &TestApp, response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let id = execution_id(&response);
    let body: Value = response.json().await.expect("JSON body");
    assert_eq!(body, json!({"status": "success", "execution_id": id}));
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "success", "{record}");
    assert_eq!(record["response_status"], 200);
    record
}

/// The record's warnings, as strings.
fn warnings(record: &Value) -> Vec<String> {
    record["warnings"]
        .as_array()
        .expect("warnings")
        .iter()
        .map(|w| w.as_str().expect("str").to_string())
        .collect()
}

/// Checks a default response with exactly one warning that contains every word of `why`.
async fn assert_default_with_warning(app: &TestApp, workflow: &Value, why: &[&str]) {
    let record = assert_default_response(app, call(app, workflow).await).await;
    let warnings = warnings(&record);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    for word in why {
        assert!(
            warnings[0].contains(word),
            "{:?} lacks {word:?}",
            warnings[0]
        );
    }
}

// --- a valid return value is the response ----------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn returned_status_body_and_headers_are_sent_as_they_are() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 201, 'body': '<ok>créé ✓</ok>', 'headers': {'Content-Type': 'application/xml', 'X-Trace': 'abc'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "content-type"), Some("application/xml"));
    assert_eq!(header(&response, "x-trace"), Some("abc"));
    let id = execution_id(&response);
    assert_eq!(response.text().await.unwrap(), "<ok>créé ✓</ok>");
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "success");
    assert_eq!(record["response_status"], 201);
    assert_eq!(warnings(&record), Vec::<String>::new());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn response_without_content_type_is_sent_as_text_plain_utf8() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': 'ok', 'headers': {'X-A': '1'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        header(&response, "content-type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(response.text().await.unwrap(), "ok");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn content_type_given_in_any_case_replaces_the_default() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': '{}', 'headers': {'content-TYPE': 'application/json'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    let content_types: Vec<_> = response.headers().get_all("content-type").iter().collect();
    assert_eq!(content_types, ["application/json"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_other_than_status_code_body_and_headers_are_ignored() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 202, 'body': 'ok', 'statusCode': 500, 'isBase64Encoded': True, 'cookies': object(), 'extra': {1, 2}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 202);
    let id = execution_id(&response);
    assert_eq!(response.text().await.unwrap(), "ok");
    assert_eq!(warnings(&app.execution(&id).await), Vec::<String>::new());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_is_dropped_for_204() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 204, 'body': 'must not be sent'}",
    ))
    .await;
    let response = app
        .raw_request(format!(
            "POST {} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}",
            hook_path(&workflow)
        ).as_bytes())
        .await;
    assert_eq!(response.status, 204);
    assert!(response.header("x-execution-id").is_some());
    assert!(
        response.header("content-length").is_none_or(|v| v == b"0"),
        "{response:?}"
    );
    // A client that reads on after the head gets nothing more.
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 204);
    assert_eq!(response.bytes().await.unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_is_dropped_for_304() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 304, 'body': 'must not be sent', 'headers': {'ETag': '\"v1\"'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 304);
    assert_eq!(header(&response, "etag"), Some("\"v1\""));
    assert!(response.headers().contains_key("x-execution-id"));
    assert_eq!(response.bytes().await.unwrap().len(), 0);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_owned_headers_are_not_taken_from_the_function() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': 'hello', 'headers': {'Content-Length': '999', 'transfer-encoding': 'chunked', 'Connection': 'close', 'X-Kept': 'yes'}}",
    ))
    .await;
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}",
        hook_path(&workflow)
    );
    let response = app.raw_request(request.as_bytes()).await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello");
    assert_eq!(response.header_all("content-length"), [b"5"]);
    assert_eq!(response.header("transfer-encoding"), None);
    assert_ne!(response.header("connection"), Some(&b"close"[..]));
    assert_eq!(response.header("x-kept"), Some(&b"yes"[..]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_value_with_latin1_characters_is_sent_as_latin1_bytes() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': 'ok', 'headers': {'X-Name': 'Jos\\u00e9'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers().get("x-name").map(|v| v.as_bytes()),
        Some(&b"Jos\xe9"[..])
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn function_cannot_set_its_own_execution_id_header() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': 'ok', 'headers': {'X-Execution-Id': 'forged'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    let ids: Vec<_> = response
        .headers()
        .get_all("x-execution-id")
        .iter()
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = execution_id(&response);
    assert_ne!(id, "forged");
    assert_eq!(app.execution(&id).await["id"], id);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn returned_503_is_sent_with_the_function_s_own_retry_after() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 503, 'body': 'later', 'headers': {'Retry-After': '120'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 503);
    let values: Vec<_> = response.headers().get_all("retry-after").iter().collect();
    assert_eq!(values, ["120"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn returned_503_gets_no_header_the_function_did_not_give() {
    let (app, workflow) = app_with(&returning("{'status_code': 503, 'body': 'later'}")).await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "retry-after"), None);
    assert!(response.headers().contains_key("x-execution-id"));
    app.stop().await;
}

// --- anything else gets the default response, with a warning ---------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn none_gives_the_default_response_without_warning() {
    let (app, workflow) = app_with(&catch_code("x = 1")).await;
    let record = assert_default_response(&app, call(&app, &workflow).await).await;
    assert_eq!(warnings(&record), Vec::<String>::new());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn explicit_none_gives_the_default_response_without_warning() {
    let (app, workflow) = app_with(&returning("None")).await;
    let record = assert_default_response(&app, call(&app, &workflow).await).await;
    assert_eq!(warnings(&record), Vec::<String>::new());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("[200, 'ok']")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "list"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn str_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("'ok'")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "str"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn object_gives_the_default_response_with_a_warning_naming_its_type() {
    let (app, workflow) = app_with(&catch_code(
        "class Response:\n    status_code = 200\n    body = 'ok'\nreturn Response()",
    ))
    .await;
    assert_default_with_warning(&app, &workflow, &["not used", "Response"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dict_without_body_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': 201}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "body"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dict_without_status_code_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'body': 'ok'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "status_code"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bool_status_code_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': True, 'body': 'ok'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "status_code", "bool"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn string_status_code_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': '200', 'body': 'ok'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "status_code", "str"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_code_above_599_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': 600, 'body': 'ok'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "600", "200-599"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn status_code_below_200_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': 101, 'body': 'ok'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "101", "200-599"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn huge_int_status_code_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': 2**70, 'body': 'ok'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "200-599"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_body_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': 200, 'body': b'ok'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "body", "bytes"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dict_body_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': 200, 'body': {'a': 1}}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "body", "dict"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_header_name_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 201, 'body': 'ok', 'headers': {'X-Good': '1', 'Bad Name': '1'}}",
    ))
    .await;
    assert_default_with_warning(&app, &workflow, &["not used", "Bad Name"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_value_with_a_line_break_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 201, 'body': 'ok', 'headers': {'X-A': 'a\\r\\nSet-Cookie: session=evil'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert!(!response.headers().contains_key("set-cookie"));
    assert!(!response.headers().contains_key("x-a"));
    let record = assert_default_response(&app, response).await;
    let warnings = warnings(&record);
    assert!(
        warnings.len() == 1 && warnings[0].contains("X-A") && warnings[0].contains("line break"),
        "{warnings:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_value_beyond_latin1_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 201, 'body': 'ok', 'headers': {'X-A': 'ok \\u2713'}}",
    ))
    .await;
    assert_default_with_warning(&app, &workflow, &["not used", "X-A"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn non_str_header_value_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 201, 'body': 'ok', 'headers': {'X-Count': 3}}",
    ))
    .await;
    assert_default_with_warning(&app, &workflow, &["not used", "X-Count", "int"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn headers_that_are_not_a_dict_give_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 201, 'body': 'ok', 'headers': [('X-A', '1')]}",
    ))
    .await;
    assert_default_with_warning(&app, &workflow, &["not used", "headers", "list"]).await;
    app.stop().await;
}

// --- the function raised, ran out of time, could not even load -------------------------------

const FAKE_SECRET: &str = "sk-live-FAKE0SECRET0d41d8cd98f00b204e98";

#[tokio::test(flavor = "multi_thread")]
async fn exception_gives_500_with_its_type_and_never_its_message() {
    let (app, workflow) = app_with(&catch_code(&format!(
        "api_key = '{FAKE_SECRET}'\nraise ValueError('upstream refused api_key=' + api_key)"
    )))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 500);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let id = execution_id(&response);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(FAKE_SECRET),
        "the body leaks the message: {text}"
    );
    assert!(
        !text.contains("Traceback"),
        "the body leaks the traceback: {text}"
    );
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        body,
        json!({"status": "error", "execution_id": id, "error": "ValueError"})
    );
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "error");
    assert_eq!(record["response_status"], 500);
    assert_eq!(record["error"]["type"], "ValueError");
    let message = record["error"]["message"].as_str().unwrap();
    assert!(message.contains(FAKE_SECRET), "{message}");
    let traceback = record["error"]["traceback"].as_str().unwrap();
    assert!(
        traceback.contains(FAKE_SECRET) && traceback.contains("workflow.py"),
        "{traceback}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn user_defined_exception_is_named_alike_in_the_body_and_the_record() {
    let (app, workflow) = app_with(
        "class HookRejected(Exception):\n    pass\n\n\ndef workflow(_request, settings):\n    raise HookRejected('secret detail')\n",
    )
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 500);
    let id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    let record = app.execution(&id).await;
    let kind = record["error"]["type"].as_str().unwrap();
    assert!(kind.ends_with("HookRejected"), "{kind}");
    assert_eq!(
        body,
        json!({"status": "error", "execution_id": id, "error": kind})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn time_limit_exceeded_gives_504_with_status_timeout_promptly() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "sleeper",
            "mode": "catch",
            "code": catch_code("import time\ntime.sleep(30)\nreturn {'status_code': 200, 'body': 'late'}"),
            "timeout_s": 1,
        }))
        .await;
    let started = Instant::now();
    let response = call(&app, &workflow).await;
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 504);
    assert!(
        elapsed < Duration::from_secs(6),
        "answered after {elapsed:?}"
    );
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "timeout");
    assert_eq!(body["execution_id"], id);
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert!(
        keys.iter()
            .all(|k| ["status", "execution_id", "error"].contains(&k.as_str())),
        "{body}"
    );
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "timeout");
    assert_eq!(record["response_status"], 504);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_limit_exceeded_gives_500_with_status_killed() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "hog",
            "mode": "catch",
            "code": catch_code("hog = bytearray(1024 * 1024 * 1024)\nreturn {'status_code': 200, 'body': str(len(hog))}"),
            "memory_mb": 64,
        }))
        .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 500);
    let id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "killed", "{body}");
    assert_eq!(body["execution_id"], id);
    assert_eq!(app.execution(&id).await["status"], "killed");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn module_top_level_that_raises_fails_the_first_deploy_and_the_hook_answers_503() {
    let (app, workflow) = app_with(&format!(
        "import does_not_exist\n\n{}",
        returning("{'status_code': 200, 'body': 'never'}")
    ))
    .await;
    assert_eq!(workflow["deployment"]["state"], "failed");
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 503);
    let id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "unavailable", "{body}");
    assert_eq!(body["error"]["code"], "no_active_version", "{body}");
    app.state.engine.flush().await;
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "skipped");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn module_top_level_that_raises_after_an_env_change_gives_500_with_its_error_type() {
    // The import check passed at deploy; a new environment variable makes the top level fail
    // when the instance starts again.
    let (app, workflow) = app_with(&format!(
        "import os\nif os.environ.get('BREAK'):\n    import does_not_exist\n\n{}",
        returning("{'status_code': 200, 'body': 'fine'}")
    ))
    .await;
    assert_eq!(call(&app, &workflow).await.status(), 200);
    app.patch_workflow(&workflow, json!({"env": {"BREAK": "1"}}))
        .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 500);
    let id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "error", "execution_id": id, "error": "ModuleNotFoundError"})
    );
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "error");
    assert_eq!(record["error"]["type"], "ModuleNotFoundError");
    assert!(record["error"]["message"]
        .as_str()
        .unwrap()
        .contains("does_not_exist"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn module_globals_changed_by_one_execution_are_not_seen_by_the_next() {
    let (app, workflow) = app_with(
        "seen = []\ncounter = 0\n\n\ndef workflow(_request, settings):\n    global counter\n    counter += 1\n    seen.append(_request['who'])\n    return {'status_code': 200, 'body': repr((counter, seen))}\n",
    )
    .await;
    let mut bodies = Vec::new();
    for who in ["alice", "bob", "carol"] {
        let response = app.call_hook_json(&workflow, &json!({"who": who})).await;
        assert_eq!(response.status(), 200);
        bodies.push(response.text().await.unwrap());
    }
    assert_eq!(bodies, ["(1, ['alice'])", "(1, ['bob'])", "(1, ['carol'])"]);
    app.stop().await;
}

// --- refusals: nothing runs, no X-Execution-Id -----------------------------------------------

/// Checks an error answer of the hook endpoint: `status`, a JSON error body with `code`, no
/// `X-Execution-Id`; returns the body.
async fn assert_refused(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status(), status);
    assert!(
        !response.headers().contains_key("x-execution-id"),
        "a {status} carries X-Execution-Id"
    );
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// Checks that `workflow` has never run.
async fn assert_not_run(app: &TestApp, workflow: &Value) {
    assert_eq!(app.executions(workflow).await, Vec::<Value>::new());
}

/// `path` with its segment `index` (0: `teams`, 1: team, 2: workflow, 3: runtime, 4: token)
/// replaced by `value`.
fn with_segment(path: &str, index: usize, value: &str) -> String {
    let mut segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    assert_eq!(segments.len(), 5, "{path}");
    segments[index] = value;
    format!("/{}", segments.join("/"))
}

async fn post_json_to(app: &TestApp, path: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .json(&json!({"n": 1}))
        .send()
        .await
        .expect("request")
}

async fn answering_app() -> (TestApp, Value) {
    app_with(&returning("{'status_code': 200, 'body': 'ran'}")).await
}

#[tokio::test(flavor = "multi_thread")]
async fn hook_url_has_a_token_of_at_least_128_bits() {
    let (app, workflow) = answering_app().await;
    let path = hook_path(&workflow);
    let token = path.rsplit('/').next().unwrap();
    assert!(
        token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    assert_eq!(
        with_segment(path, 3, workflow["runtime"].as_str().unwrap()),
        path
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_team_gives_404() {
    let (app, workflow) = answering_app().await;
    let path = with_segment(hook_path(&workflow), 1, "no-such-team");
    assert_refused(post_json_to(&app, &path).await, 404, "not_found").await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_workflow_gives_404() {
    let (app, workflow) = answering_app().await;
    let path = with_segment(hook_path(&workflow), 2, "no-such-workflow");
    assert_refused(post_json_to(&app, &path).await, 404, "not_found").await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_token_gives_404() {
    let (app, workflow) = answering_app().await;
    let path = hook_path(&workflow);
    let token = path.rsplit('/').next().unwrap();
    let mut flipped = token.to_string();
    let last = if token.ends_with('0') { "1" } else { "0" };
    flipped.replace_range(token.len() - 1.., last);
    for wrong in [flipped.as_str(), &token[..token.len() - 1], "", "x"] {
        let response = post_json_to(&app, &with_segment(path, 4, wrong)).await;
        assert_refused(response, 404, "not_found").await;
    }
    let longer = format!("{token}0");
    let response = post_json_to(&app, &with_segment(path, 4, &longer)).await;
    assert_refused(response, 404, "not_found").await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn runtime_segment_other_than_the_workflow_s_runtime_gives_404() {
    let (app, workflow) = answering_app().await;
    let path = hook_path(&workflow);
    let runtime = workflow["runtime"].as_str().unwrap();
    for wrong in ["python3.0", "python", &runtime.to_uppercase()] {
        let response = post_json_to(&app, &with_segment(path, 3, wrong)).await;
        assert_refused(response, 404, "not_found").await;
    }
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_workflow_has_no_hook_url_and_its_would_be_url_gives_404() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "puller",
            "mode": "pull",
            "code": pull_code("return 1"),
            "schedule": {"every": "1h"},
        }))
        .await;
    assert_eq!(workflow["hook_url"], Value::Null);
    // The URL it would have, with the secret it holds internally.
    let hot = app
        .state
        .engine
        .hook_target(workflow["team"].as_str().unwrap(), "puller")
        .await
        .unwrap()
        .expect("the pull workflow is found by name");
    let path = format!(
        "/teams/{}/puller/{}/{}",
        workflow["team"].as_str().unwrap(),
        hot.record.runtime,
        hot.record.hook_token
    );
    assert_refused(post_json_to(&app, &path).await, 404, "not_found").await;
    let executions = app.executions(&workflow).await;
    assert!(
        executions.iter().all(|e| e["trigger"] != "catch"),
        "{executions:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rotated_token_retires_the_old_hook_url() {
    let (app, workflow) = answering_app().await;
    let id = workflow["id"].as_str().unwrap();
    let response = app
        .api(
            reqwest::Method::POST,
            &format!("/workflows/{id}/rotate-token"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let rotated: Value = response.json().await.unwrap();
    let new_path = rotated["hook_url"].as_str().expect("new hook_url");
    assert_ne!(new_path, hook_path(&workflow));
    assert_refused(
        post_json_to(&app, hook_path(&workflow)).await,
        404,
        "not_found",
    )
    .await;
    let response = post_json_to(&app, new_path).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ran");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn methods_other_than_post_give_405_with_allow_post() {
    let (app, workflow) = answering_app().await;
    let url = app.url(hook_path(&workflow));
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
        reqwest::Method::PATCH,
        reqwest::Method::OPTIONS,
    ] {
        let response = app
            .client
            .request(method.clone(), &url)
            .json(&json!({"n": 1}))
            .send()
            .await
            .unwrap();
        assert_eq!(header(&response, "allow"), Some("POST"), "{method}");
        assert_refused(response, 405, "method_not_allowed").await;
    }
    let response = app.client.head(&url).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), Some("POST"));
    assert!(!response.headers().contains_key("x-execution-id"));
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

/// Checks a 415 answer: its JSON body names the three accepted media types.
async fn assert_unsupported(response: reqwest::Response) {
    let body = assert_refused(response, 415, "unsupported_media_type").await;
    assert_eq!(
        body["error"]["accepted"],
        json!([
            "application/json",
            "multipart/form-data",
            "application/x-www-form-urlencoded"
        ])
    );
    let message = body["error"]["message"].as_str().unwrap();
    for accepted in [
        "application/json",
        "multipart/form-data",
        "application/x-www-form-urlencoded",
    ] {
        assert!(message.contains(accepted), "{message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn text_plain_gives_415_naming_the_accepted_types() {
    let (app, workflow) = answering_app().await;
    let response = app
        .hook(&workflow)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_unsupported(response).await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_content_type_gives_415_naming_the_accepted_types() {
    let (app, workflow) = answering_app().await;
    let response = app.hook(&workflow).body("{}").send().await.unwrap();
    assert_unsupported(response).await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn look_alike_media_types_give_415() {
    let (app, workflow) = answering_app().await;
    for content_type in [
        "application/jsonx",
        "application/json-patch+json",
        "application/problem+json",
        "text/json",
        "multipart/mixed; boundary=x",
        "application/xml",
        "",
        "application",
    ] {
        let response = app
            .hook(&workflow)
            .header("Content-Type", content_type)
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 415, "{content_type:?}");
        assert_unsupported(response).await;
    }
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

async fn small_limit_app() -> (TestApp, Value) {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    let workflow = app
        .create_catch(
            "under-test",
            &returning("{'status_code': 200, 'body': str(len(_request['pad']))}"),
        )
        .await;
    (app, workflow)
}

/// A JSON body of exactly `size` bytes: `{"pad": "xxx…"}`.
fn json_of_size(size: usize) -> String {
    format!("{{\"pad\": \"{}\"}}", "x".repeat(size - 11))
}

#[tokio::test(flavor = "multi_thread")]
async fn body_over_the_limit_gives_413() {
    let (app, workflow) = small_limit_app().await;
    let response = app
        .hook(&workflow)
        .header("Content-Type", "application/json")
        .body(json_of_size(1025))
        .send()
        .await
        .expect("a 413, not a broken connection");
    assert_refused(response, 413, "payload_too_large").await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn body_at_the_limit_is_accepted() {
    let (app, workflow) = small_limit_app().await;
    let response = app
        .hook(&workflow)
        .header("Content-Type", "application/json")
        .body(json_of_size(1024))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), (1024 - 11).to_string());
    app.stop().await;
}

/// A chunked request of `total` bytes of JSON in chunks of at most 100 bytes, without
/// `Content-Length`.
fn chunked_request(path: &str, total: usize) -> Vec<u8> {
    let body = json_of_size(total);
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.as_bytes().chunks(100) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_body_over_the_limit_without_content_length_gives_413() {
    let (app, workflow) = small_limit_app().await;
    let response = app
        .raw_request(&chunked_request(hook_path(&workflow), 4096))
        .await;
    assert_eq!(response.status, 413);
    assert_eq!(response.header("x-execution-id"), None);
    assert_eq!(response.json()["error"]["code"], "payload_too_large");
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn chunked_body_within_the_limit_is_accepted() {
    let (app, workflow) = small_limit_app().await;
    let response = app
        .raw_request(&chunked_request(hook_path(&workflow), 1000))
        .await;
    assert_eq!(response.status, 200);
    assert_eq!(response.body, (1000 - 11).to_string().as_bytes());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_length_over_the_limit_gives_413_before_the_body_is_sent() {
    let (app, workflow) = small_limit_app().await;
    // Only the head is sent: the server must not wait for 10 MB that may never come.
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n",
        hook_path(&workflow)
    );
    let response = app.raw_request(request.as_bytes()).await;
    assert_eq!(response.status, 413);
    assert_eq!(response.header("x-execution-id"), None);
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_expecting_100_continue_gets_the_413_instead() {
    let (app, workflow) = small_limit_app().await;
    for _ in 0..20 {
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2048\r\nExpect: 100-continue\r\n\r\n",
            hook_path(&workflow)
        );
        let response = app.raw_request(request.as_bytes()).await;
        assert_eq!(response.status, 413, "{response:?}");
    }
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn default_body_limit_is_25_mib() {
    let (app, workflow) = answering_app().await;
    assert_eq!(app.state.config.max_body_bytes, 25 * 1024 * 1024);
    let response = app
        .hook(&workflow)
        .header("Content-Type", "application/json")
        .body(json_of_size(25 * 1024 * 1024 + 1))
        .send()
        .await
        .expect("a 413, not a broken connection");
    assert_refused(response, 413, "payload_too_large").await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

/// Sends `body` with `content_type` (and `query` appended to the hook URL), and checks the 400.
async fn assert_malformed(
    app: &TestApp,
    workflow: &Value,
    query: &str,
    content_type: &str,
    body: &[u8],
    says: &str,
) {
    let response = app
        .client
        .post(app.url(&format!("{}{query}", hook_path(workflow))))
        .header("Content-Type", content_type)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    let body = assert_refused(response, 400, "malformed_body").await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains(says), "{message:?} does not say {says:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_json_gives_400_saying_what_is_wrong() {
    let (app, workflow) = answering_app().await;
    for body in [
        &b"{\"a\": "[..],
        b"{'a': 1}",
        b"[1, 2",
        b"\xff\xfe",
        b"{} {}",
        b"NaN",
    ] {
        assert_malformed(
            &app,
            &workflow,
            "",
            "application/json",
            body,
            "invalid JSON",
        )
        .await;
    }
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_multipart_gives_400_saying_what_is_wrong() {
    let (app, workflow) = answering_app().await;
    let content_type = "multipart/form-data; boundary=XyZ";
    let unclosed = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n";
    let cut_headers = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"";
    let wrong_boundary =
        b"--Other\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--Other--\r\n";
    for body in [&unclosed[..], cut_headers, wrong_boundary, b"", b"garbage"] {
        assert_malformed(&app, &workflow, "", content_type, body, "multipart").await;
    }
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_without_boundary_gives_400() {
    let (app, workflow) = answering_app().await;
    let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--XyZ--\r\n";
    assert_malformed(&app, &workflow, "", "multipart/form-data", body, "boundary").await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_percent_encoding_in_form_gives_400() {
    let (app, workflow) = answering_app().await;
    let form = "application/x-www-form-urlencoded";
    for body in ["a=100%zz", "a=%4", "a=1%", "na%g1me=1"] {
        assert_malformed(
            &app,
            &workflow,
            "",
            form,
            body.as_bytes(),
            "percent-encoding",
        )
        .await;
    }
    assert_malformed(&app, &workflow, "", form, b"a=%FF", "UTF-8").await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_percent_encoding_in_query_gives_400() {
    let (app, workflow) = answering_app().await;
    for query in ["?token=%%41", "?a=%G1", "?a=1%"] {
        assert_malformed(&app, &workflow, query, "application/json", b"{}", "query").await;
    }
    assert_malformed(
        &app,
        &workflow,
        "?q=%E9",
        "application/json",
        b"{}",
        "UTF-8",
    )
    .await;
    assert_not_run(&app, &workflow).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn server_keeps_answering_after_each_bad_input() {
    let (app, workflow) = app_with(&returning("{'status_code': 200, 'body': 'still here'}")).await;
    let path = hook_path(&workflow).to_string();
    let good = |app: &TestApp| {
        let request = app.hook(&workflow).json(&json!({"n": 1}));
        async move {
            let response = request.send().await.expect("the server answers");
            assert_eq!(response.status(), 200);
            assert_eq!(response.text().await.unwrap(), "still here");
        }
    };
    let bad_requests: Vec<Vec<u8>> = vec![
        // 404, 405, 415
        format!("POST {} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}", with_segment(&path, 4, "nope")).into_bytes(),
        format!("GET {path} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes(),
        format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi").into_bytes(),
        // 400s
        format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 3\r\n\r\n{{x}}").into_bytes(),
        format!("POST {path}?a=%zz HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}").into_bytes(),
        format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 5\r\n\r\n--b\r\n").into_bytes(),
        format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=%").into_bytes(),
        // Not HTTP at all; a broken chunked body.
        b"\x00\x01GARBAGE\r\n\r\n".to_vec(),
        format!("POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").into_bytes(),
    ];
    good(&app).await;
    for request in &bad_requests {
        let response = app.raw_request(request).await;
        assert!(
            (400..500).contains(&response.status),
            "{:?} → {}",
            String::from_utf8_lossy(request),
            response.status
        );
        assert_eq!(response.header("x-execution-id"), None);
        good(&app).await;
    }
    // A client that sends half its declared body and goes away.
    {
        use tokio::io::AsyncWriteExt;
        let mut stream = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
            .await
            .unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"a\""
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        drop(stream);
    }
    good(&app).await;
    let executions = app.executions(&workflow).await;
    assert_eq!(
        executions.len(),
        bad_requests.len() + 2,
        "only the good calls ran"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_sending_a_large_body_over_the_limit_reads_the_413() {
    let (app, workflow) = small_limit_app().await;
    // An HTTP library that writes the whole body before it reads the answer: the server must
    // not close the connection under it.
    let body = json_of_size(8 << 20);
    for attempt in 0..10 {
        let response = app
            .hook(&workflow)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("attempt {attempt}: {e:?}"));
        assert_refused(response, 413, "payload_too_large").await;
    }
    let response = app
        .hook(&workflow)
        .header("Content-Type", "application/json")
        .body(json_of_size(100))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn client_sending_a_large_body_to_a_wrong_token_reads_the_404() {
    let (app, workflow) = answering_app().await;
    let path = with_segment(hook_path(&workflow), 4, "0123456789abcdef0123456789abcdef");
    let body = json_of_size(8 << 20);
    for attempt in 0..5 {
        let response = app
            .client
            .post(app.url(&path))
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("attempt {attempt}: {e:?}"));
        assert_refused(response, 404, "not_found").await;
    }
    app.stop().await;
}

// --- paused, saturated -----------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn paused_workflow_gives_503_with_retry_after() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "pausable",
            &catch_code("open('ran', 'w').close()\nreturn {'status_code': 200, 'body': 'ran'}"),
        )
        .await;
    let paused = app
        .patch_workflow(&workflow, json!({"enabled": false}))
        .await;
    assert_eq!(paused["enabled"], false);
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 503);
    assert!(header(&response, "retry-after").is_some_and(|v| v.parse::<u32>().is_ok()));
    let id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "paused", "{body}");
    assert_eq!(body["execution_id"], id);
    // Refusals are recorded after the answer, not before.
    let record = app.wait_for_execution(&id).await;
    assert_eq!(record["status"], "skipped");
    assert_eq!(record["response_status"], 503);

    app.patch_workflow(&workflow, json!({"enabled": true}))
        .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ran");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn saturated_server_gives_503_with_retry_after_without_waiting() {
    let app = spawn_app_with(|c| {
        c.engine.max_concurrent_executions = 1;
        c.engine.queue_depth = 0;
    })
    .await;
    let slow = app
        .create_catch(
            "slow",
            &catch_code("import time\ntime.sleep(3)\nreturn {'status_code': 200, 'body': 'slow'}"),
        )
        .await;
    let fast = app
        .create_catch("fast", &returning("{'status_code': 200, 'body': 'fast'}"))
        .await;
    let busy = tokio::spawn({
        let request = app.hook(&slow).json(&json!({}));
        async move { request.send().await.unwrap().status() }
    });
    // The slow execution holds the only slot.
    app.wait_in_flight(1).await;
    let started = Instant::now();
    let response = call(&app, &fast).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(response.status(), 503);
    assert!(header(&response, "retry-after").is_some_and(|v| v.parse::<u32>().is_ok()));
    let id = execution_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "saturated", "{body}");
    assert_eq!(app.wait_for_execution(&id).await["status"], "skipped");
    assert_eq!(busy.await.unwrap(), 200);
    let response = call(&app, &fast).await;
    assert_eq!(response.status(), 200);
    app.stop().await;
}

// --- X-Execution-Id on every response that ran something ------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn every_response_of_an_execution_carries_its_execution_id() {
    let app = spawn_app().await;
    let cases = [
        (
            "custom",
            returning("{'status_code': 418, 'body': 'teapot'}"),
            418,
        ),
        ("default", returning("None"), 200),
        ("unused", returning("[1]"), 200),
        ("raises", catch_code("raise KeyError('x')"), 500),
        ("empty", returning("{'status_code': 204, 'body': ''}"), 204),
        (
            "initfail",
            "import does_not_exist\n".to_string() + &returning("None"),
            503,
        ),
    ];
    let mut ids = Vec::new();
    for (name, code, status) in &cases {
        let workflow = app.create_catch(name, code).await;
        let response = call(&app, &workflow).await;
        assert_eq!(response.status(), *status, "{name}");
        let id = execution_id(&response);
        let record = app.execution(&id).await;
        assert_eq!(record["workflow_id"], workflow["id"], "{name}");
        assert_eq!(record["response_status"], *status, "{name}");
        ids.push(id);
    }
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), cases.len(), "execution ids are unique");
    app.stop().await;
}

// --- response headers over the caps ---------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_headers_are_cut_to_sixty_four_with_a_warning() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': 'ok', 'headers': {'X-H%d' % i: 'v' for i in range(10000)}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 200);
    let from_the_function = response
        .headers()
        .keys()
        .filter(|name| name.as_str().starts_with("x-h"))
        .count();
    assert_eq!(from_the_function, 64);
    let record = app.execution(&execution_id(&response)).await;
    let warnings = warnings(&record);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("9936 response header(s) not sent"),
        "{warnings:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_megabyte_header_is_not_sent_and_the_others_are() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': 'ok', 'headers': {'X-Big': 'v' * (1 << 20), 'X-Small': '1'}}",
    ))
    .await;
    let response = call(&app, &workflow).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-big"), None);
    assert_eq!(header(&response, "x-small"), Some("1"));
    let record = app.execution(&execution_id(&response)).await;
    let warnings = warnings(&record);
    assert!(warnings[0].contains("\"X-Big\""), "{warnings:?}");
    app.stop().await;
}

// --- return values Python holds but HTTP cannot carry ----------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn body_with_a_lone_surrogate_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning("{'status_code': 200, 'body': 'a\\ud800b'}")).await;
    assert_default_with_warning(&app, &workflow, &["not used", "body"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn header_value_with_a_lone_surrogate_gives_the_default_response_with_a_warning() {
    let (app, workflow) = app_with(&returning(
        "{'status_code': 200, 'body': 'ok', 'headers': {'X-A': '\\udcff'}}",
    ))
    .await;
    assert_default_with_warning(&app, &workflow, &["not used", "X-A"]).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_with_a_lone_surrogate_are_not_saved_and_the_run_is_an_error() {
    let code =
        catch_code("settings['bad'] = 'a\\ud800'\nreturn {'status_code': 200, 'body': 'ok'}");
    let app = spawn_app().await;
    let workflow = app.create_catch("surrogate-settings", &code).await;
    let response = app.call_hook_json(&workflow, &serde_json::json!({})).await;
    assert_eq!(response.status(), 200);
    let record = app.execution(&execution_id(&response)).await;
    assert_eq!(record["status"], "error");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("surrogate"),
        "{record}"
    );
    assert!(app.settings(&workflow).await.get("bad").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_settings_key_with_a_lone_surrogate_gives_the_response_and_invalid_settings() {
    let code = catch_code(
        "settings['\\ud800'] = 1\nreturn {'status_code': 201, 'body': 'the function answered'}",
    );
    let app = spawn_app().await;
    let workflow = app.create_catch("surrogate-key", &code).await;
    let response = app.call_hook_json(&workflow, &serde_json::json!({})).await;
    assert_eq!(response.status(), 201);
    let id = execution_id(&response);
    assert_eq!(response.text().await.unwrap(), "the function answered");
    let record = app.execution(&id).await;
    assert_eq!(record["status"], "error", "{record}");
    assert_eq!(record["error"]["type"], "InvalidSettings", "{record}");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("lone surrogate"),
        "{record}"
    );
    assert!(app
        .settings(&workflow)
        .await
        .as_object()
        .unwrap()
        .is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exception_message_with_a_lone_surrogate_is_recorded_escaped() {
    let code = catch_code("raise ValueError('bad \\udcff value')");
    let app = spawn_app().await;
    let workflow = app.create_catch("surrogate-error", &code).await;
    let response = app.call_hook_json(&workflow, &serde_json::json!({})).await;
    assert_eq!(response.status(), 500);
    let record = app.execution(&execution_id(&response)).await;
    assert_eq!(record["status"], "error");
    assert_eq!(record["error"]["type"], "ValueError");
    assert!(
        record["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\\udcff"),
        "{record}"
    );
}
