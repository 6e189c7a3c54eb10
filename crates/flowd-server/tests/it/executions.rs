//! Executions (CONTRACT §5): runs started by hand, the execution record, listings, and executions
//! a previous process left running.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::{
    call, call_raw, create_pull, hook_answer, id, is_rfc3339_utc, patch_ok, run_now, Answer,
};
use crate::support::*;

async fn run_answer(app: &TestApp, workflow: &Value, body: &Value) -> Answer {
    call(
        app,
        Method::POST,
        &format!("/workflows/{}/runs", id(workflow)),
        Some(body),
    )
    .await
}

async fn list(app: &TestApp, workflow: &Value, query: &str) -> Answer {
    call(
        app,
        Method::GET,
        &format!("/workflows/{}/executions{query}", id(workflow)),
        None,
    )
    .await
}

fn ids(answer: &Answer) -> Vec<String> {
    answer.body["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .map(|e| id(e).to_string())
        .collect()
}

// --- run now ------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn run_now_answers_the_finished_record_with_trigger_manual() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("print('ran')")).await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["trigger"], "manual");
    assert_eq!(record["status"], "success");
    assert_eq!(record["workflow_id"], workflow["id"]);
    assert_eq!(record["logs"], "ran\n");
    // The answer is the stored record.
    assert_eq!(app.execution(id(&record)).await, record);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_accepts_an_empty_body() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    let answer = app
        .api(Method::POST, &format!("/workflows/{}/runs", id(&workflow)))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_of_a_catch_workflow_passes_the_request_as_request() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "c",
            &catch_code("print(_request['name'], _request['n'] + 1)\nreturn {'status_code': 202, 'body': 'ok'}"),
        )
        .await;
    let record = run_now(
        &app,
        &workflow,
        &json!({"request": {"name": "ada", "n": 41}}),
    )
    .await;
    assert_eq!(record["status"], "success", "{record}");
    assert_eq!(record["logs"], "ada 42\n");
    assert_eq!(record["trigger"], "manual");
    assert_eq!(record["response_status"], 202);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_of_a_catch_workflow_without_request_gets_an_empty_dict() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "c",
            &catch_code("print(type(_request).__name__, len(_request))"),
        )
        .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["logs"], "dict 0\n");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_of_a_pull_workflow_with_a_request_is_422() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    let answer = run_answer(&app, &workflow, &json!({"request": {"a": 1}})).await;
    answer.assert_error(422, "invalid_request");
    assert!(app.executions(&workflow).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_with_bad_bodies_is_refused() {
    let app = spawn_app().await;
    let workflow = app.create_catch("c", &catch_code("return None")).await;
    let path = format!("/workflows/{}/runs", id(&workflow));
    call_raw(&app, Method::POST, &path, "{\"request\": ")
        .await
        .assert_error(400, "bad_request");
    for body in [
        json!({"request": [1]}),
        json!({"request": "x"}),
        json!({"other": 1}),
    ] {
        run_answer(&app, &workflow, &body)
            .await
            .assert_error(422, "invalid_request");
    }
    assert!(app.executions(&workflow).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_of_an_unknown_workflow_is_404() {
    let app = spawn_app().await;
    call(
        &app,
        Method::POST,
        "/workflows/unknown/runs",
        Some(&json!({})),
    )
    .await
    .assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_of_a_workflow_without_an_active_version_is_503_no_active_version() {
    let app = spawn_app().await;
    let failed = create_pull(
        &app,
        "p",
        &format!("import does_not_exist\n\n{}", pull_code("pass")),
    )
    .await;
    assert_eq!(failed["deployment"]["state"], "failed", "{failed}");
    let refused = run_answer(&app, &failed, &json!({})).await;
    refused.assert_error(503, "no_active_version");
    assert_eq!(refused.header("retry-after"), Some("1"));
    let execution_id = refused.body["error"]["execution_id"]
        .as_str()
        .expect("the skipped execution's id");
    app.state.engine.flush().await;
    assert_eq!(app.execution(execution_id).await["status"], "skipped");
    app.stop().await;
}

// --- the record -----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_record_has_every_field() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch("c", &catch_code("return {'status_code': 200, 'body': 'x'}"))
        .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    let record = app
        .execution(answer.header("x-execution-id").unwrap())
        .await;
    for field in [
        "id",
        "workflow_id",
        "version",
        "trigger",
        "status",
        "started_at",
        "finished_at",
        "duration_ms",
        "response_status",
        "warnings",
        "error",
        "logs",
        "logs_truncated",
        "settings_changed",
    ] {
        assert!(record.get(field).is_some(), "{field} missing: {record}");
    }
    assert_eq!(record["trigger"], "catch");
    assert_eq!(record["version"], 1);
    assert_eq!(record["response_status"], 200);
    assert_eq!(record["warnings"], json!([]));
    assert!(record["error"].is_null());
    assert_eq!(record["logs_truncated"], false);
    assert_eq!(
        record["settings_changed"],
        json!({"added": [], "changed": [], "removed": []})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_times_are_rfc3339_utc_and_cover_the_run() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("import time\ntime.sleep(0.3)")).await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert!(is_rfc3339_utc(&record["started_at"]), "{record}");
    assert!(is_rfc3339_utc(&record["finished_at"]), "{record}");
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    let span = time(&record["finished_at"]) - time(&record["started_at"]);
    assert!(span >= chrono::Duration::milliseconds(300), "{record}");
    let duration = record["duration_ms"].as_i64().unwrap();
    assert!((300..10_000).contains(&duration), "{record}");
    assert_eq!(duration, span.num_milliseconds());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_captures_print_stdout_and_stderr() {
    let app = spawn_app().await;
    let workflow = create_pull(
        &app,
        "p",
        &pull_code(
            "import sys\nprint('one')\nsys.stdout.write('two\\n')\nsys.stderr.write('three\\n')",
        ),
    )
    .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["logs"], "one\ntwo\nthree\n");
    assert_eq!(record["logs_truncated"], false);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_captures_the_output_of_an_execution_that_raised() {
    let app = spawn_app().await;
    let workflow = create_pull(
        &app,
        "p",
        &pull_code("print('before')\nraise ValueError('x')"),
    )
    .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["status"], "error");
    assert!(
        record["logs"].as_str().unwrap().contains("before"),
        "{record}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn output_beyond_the_cap_is_dropped_and_marked_truncated() {
    let app = spawn_app_with(|c| c.max_log_bytes = 1000).await;
    let workflow = create_pull(
        &app,
        "p",
        &pull_code("for i in range(100):\n    print('x' * 99)"),
    )
    .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["status"], "success");
    assert_eq!(record["logs_truncated"], true);
    let logs = record["logs"].as_str().unwrap();
    assert!(logs.len() <= 1000 + 200, "{} bytes", logs.len());
    assert!(logs.starts_with(&"x".repeat(99)), "{logs}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn output_under_the_cap_is_not_marked_truncated() {
    let app = spawn_app_with(|c| c.max_log_bytes = 1000).await;
    let workflow = create_pull(&app, "p", &pull_code("print('x' * 500)")).await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["logs_truncated"], false);
    assert_eq!(record["logs"].as_str().unwrap().len(), 501);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_of_an_execution_that_raised_has_type_message_and_traceback() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch("c", &catch_code("x = 1\nraise KeyError('missing-field')"))
        .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.status, 500);
    let record = app
        .execution(answer.header("x-execution-id").unwrap())
        .await;
    assert_eq!(record["status"], "error");
    assert_eq!(record["response_status"], 500);
    assert_eq!(record["error"]["type"], "KeyError");
    assert!(record["error"]["message"]
        .as_str()
        .unwrap()
        .contains("missing-field"));
    let traceback = record["error"]["traceback"].as_str().expect("a traceback");
    assert!(traceback.contains("line 3"), "{traceback}");
    assert!(traceback.contains("KeyError"), "{traceback}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_of_an_execution_that_timed_out_says_timeout() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "slow", "mode": "pull", "timeout_s": 1, "schedule": {"every": "24h"},
            "code": pull_code("import time\nprint('started')\ntime.sleep(30)"),
        }))
        .await;
    let record = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(record["status"], "timeout");
    assert_eq!(record["error"]["type"], "Timeout");
    let duration = record["duration_ms"].as_i64().unwrap();
    assert!((1000..10_000).contains(&duration), "{record}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_return_value_that_is_not_a_response_is_a_warning_of_a_success() {
    let app = spawn_app().await;
    let workflow = app.create_catch("c", &catch_code("return [1, 2]")).await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.status, 200);
    let record = app
        .execution(answer.header("x-execution-id").unwrap())
        .await;
    assert_eq!(record["status"], "success");
    let warnings = record["warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1, "{record}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_record_holds_the_version_that_ran() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "v",
            &catch_code("return {'status_code': 200, 'body': 'one'}"),
        )
        .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.body, "one");
    let first = app
        .execution(answer.header("x-execution-id").unwrap())
        .await;
    assert_eq!(first["version"], 1);
    patch_ok(
        &app,
        &workflow,
        &json!({"code": catch_code("return {'status_code': 200, 'body': 'two'}")}),
    )
    .await;
    let answer = hook_answer(&app, &workflow, &json!({})).await;
    assert_eq!(answer.body, "two");
    let second = app
        .execution(answer.header("x-execution-id").unwrap())
        .await;
    assert_eq!(second["version"], 2);
    // The first record still says version 1.
    assert_eq!(app.execution(id(&first)).await["version"], 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn module_globals_changed_by_one_execution_are_not_seen_by_the_next() {
    let app = spawn_app().await;
    let code = "seen = []\n\ndef workflow(_request, settings):\n    seen.append(1)\n    return {'status_code': 200, 'body': str(len(seen))}\n";
    let workflow = app.create_catch("g", code).await;
    for _ in 0..3 {
        assert_eq!(hook_answer(&app, &workflow, &json!({})).await.body, 1);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn show_of_an_unknown_execution_is_404() {
    let app = spawn_app().await;
    call(
        &app,
        Method::GET,
        "/executions/0190f3d0-0000-7000-8000-000000000000",
        None,
    )
    .await
    .assert_error(404, "not_found");
    app.stop().await;
}

// --- listings -------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn list_answers_executions_newest_first() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(id(&run_now(&app, &workflow, &json!({})).await).to_string());
    }
    let answer = list(&app, &workflow, "").await;
    assert_eq!(answer.status, 200);
    made.reverse();
    assert_eq!(ids(&answer), made);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_entries_are_summaries_without_logs() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("print('long output')")).await;
    run_now(&app, &workflow, &json!({})).await;
    let answer = list(&app, &workflow, "").await;
    let entry = &answer.body["executions"][0];
    assert_eq!(entry["status"], "success");
    assert_eq!(entry["trigger"], "manual");
    assert!(entry.get("logs").is_none(), "{entry}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_only_holds_the_workflows_own_executions() {
    let app = spawn_app().await;
    let mine = create_pull(&app, "mine", &pull_code("return None")).await;
    let other = create_pull(&app, "other", &pull_code("return None")).await;
    let record = run_now(&app, &mine, &json!({})).await;
    run_now(&app, &other, &json!({})).await;
    assert_eq!(ids(&list(&app, &mine, "").await), [id(&record)]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_limit_answers_the_newest_n() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(id(&run_now(&app, &workflow, &json!({})).await).to_string());
    }
    let answer = list(&app, &workflow, "?limit=2").await;
    assert_eq!(ids(&answer), [made[2].clone(), made[1].clone()]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_before_answers_the_next_page() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(id(&run_now(&app, &workflow, &json!({})).await).to_string());
    }
    let answer = list(&app, &workflow, &format!("?limit=1&before={}", made[2])).await;
    assert_eq!(ids(&answer), [made[1].clone()]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_status_filters_by_status() {
    let app = spawn_app().await;
    let workflow = create_pull(
        &app,
        "p",
        &pull_code("if settings.get('fail'):\n    raise ValueError('x')"),
    )
    .await;
    let ok = run_now(&app, &workflow, &json!({})).await;
    call(
        &app,
        Method::PATCH,
        &format!("/workflows/{}/settings", id(&workflow)),
        Some(&json!({"settings": {"fail": true}})),
    )
    .await;
    let failed = run_now(&app, &workflow, &json!({})).await;
    assert_eq!(
        ids(&list(&app, &workflow, "?status=error").await),
        [id(&failed)]
    );
    assert_eq!(
        ids(&list(&app, &workflow, "?status=success").await),
        [id(&ok)]
    );
    assert!(ids(&list(&app, &workflow, "?status=timeout").await).is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_with_a_bad_limit_is_422() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    for query in [
        "?limit=0",
        "?limit=-1",
        "?limit=abc",
        "?limit=1001",
        "?limit=1.5",
        "?limit=",
    ] {
        let answer = list(&app, &workflow, query).await;
        assert_eq!(answer.status, 422, "{query}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], "invalid_request", "{query}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_with_a_bad_status_is_422() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    for query in ["?status=done", "?status=SUCCESS", "?status="] {
        let answer = list(&app, &workflow, query).await;
        assert_eq!(answer.status, 422, "{query}: {}", answer.body);
        assert_eq!(answer.body["error"]["code"], "invalid_request", "{query}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_with_a_query_given_twice_is_422() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("return None")).await;
    list(&app, &workflow, "?limit=1&limit=2")
        .await
        .assert_error(422, "invalid_request");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn list_of_an_unknown_workflow_is_404() {
    let app = spawn_app().await;
    call(&app, Method::GET, "/workflows/unknown/executions", None)
        .await
        .assert_error(404, "not_found");
    app.stop().await;
}

// --- executions a previous process left running ------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_left_running_is_interrupted_at_the_next_start() {
    use flowd_core::workflow::{ExecutionStatus, Trigger};
    use flowd_store::{ExecutionRecord, SqliteStore, Store, StoreWrite};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = spawn_app_with(|c| c.data_dir = data.clone()).await;
    let workflow = create_pull(&first, "p", &pull_code("return None")).await;
    first.stop().await;

    // What a crash mid-execution leaves behind: a `running` record.
    let started_at = chrono::Utc::now().timestamp_millis() - 5_000;
    let key: flowd_store::SecretKey = std::fs::read_to_string(data.join("secret-key"))
        .unwrap()
        .parse()
        .unwrap();
    let store = SqliteStore::open_keyed(&data.join("flowd.db"), Some(&key))
        .await
        .unwrap();
    let execution_id = uuid::Uuid::now_v7().to_string();
    store
        .commit(&[StoreWrite::PutExecution(ExecutionRecord {
            id: execution_id.clone(),
            workflow_id: id(&workflow).to_string(),
            version: 1,
            trigger: Trigger::Manual,
            status: ExecutionStatus::Running,
            started_at,
            finished_at: None,
            duration_ms: None,
            response_status: None,
            warnings: Vec::new(),
            error: None,
            logs: String::new(),
            logs_truncated: false,
            settings_changed: None,
            fire_at: None,
            attempt: 1,
            retry_of: None,
            replay_of: None,
            request_not_stored: None,
        })])
        .await
        .unwrap();
    store.close().await;

    let second = spawn_app_with(|c| c.data_dir = data.clone()).await;
    let record = second.execution(&execution_id).await;
    assert_eq!(record["status"], "interrupted", "{record}");
    assert!(is_rfc3339_utc(&record["finished_at"]), "{record}");
    assert!(record["duration_ms"].as_i64().unwrap() >= 5_000, "{record}");
    assert!(second
        .executions(&workflow)
        .await
        .iter()
        .all(|e| e["status"] != "running"));
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_execution_is_listed_as_running_while_it_runs() {
    let app = spawn_app().await;
    let workflow = create_pull(&app, "p", &pull_code("import time\ntime.sleep(1.5)")).await;
    let empty = json!({});
    let run = run_now(&app, &workflow, &empty);
    let watch = async {
        eventually(
            Duration::from_secs(5),
            "the run is listed as running",
            || async {
                let listed = app.executions(&workflow).await;
                listed.first().filter(|e| e["status"] == "running").cloned()
            },
        )
        .await
    };
    let (record, running) = tokio::join!(run, watch);
    assert_eq!(id(&running), id(&record));
    assert!(running["finished_at"].is_null(), "{running}");
    assert_eq!(record["status"], "success");
    app.stop().await;
}
