//! Python processes killed under a running server (SIGKILL from the test): calls end within their
//! `timeout_s` and the margin, bystanders keep answering, the dead process is replaced, and
//! `/readyz` and `GET /api/v1/system` say what happened.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use crate::support::*;

/// Slack on top of a deadline for a loaded 2-core machine: a bound, not a timing measurement.
const SLACK: Duration = Duration::from_secs(5);

/// Answers the pid of its warm instance (the parent of the fork it runs in).
fn instance_pid_code() -> String {
    catch_code(
        "import os, time\ntime.sleep(0.1)\nreturn {'status_code': 200, 'body': str(os.getppid())}",
    )
}

/// The default runtime's own base process, as `GET /api/v1/system` shows it.
async fn base_process(app: &TestApp) -> Value {
    app.get_json("/system").await["runtimes"][0]["base_processes"][0].clone()
}

fn sigkill(pid: u64) {
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).expect("the process is killed");
}

async fn readyz(app: &TestApp) -> (u16, Value) {
    let response = app
        .client
        .get(app.url("/readyz"))
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.expect("json"))
}

async fn assert_bystander_answers(app: &TestApp, bystander: &Value) {
    for _ in 0..3 {
        let response = app.call_hook_json(bystander, &json!({})).await;
        assert_eq!(response.status(), 200, "the bystander answers");
    }
}

/// Calls `workflow` `calls` times from each of `callers` tasks; answers each call's status and time.
fn load(
    app: &Arc<TestApp>,
    workflow: &Value,
    callers: usize,
    calls: usize,
) -> Vec<tokio::task::JoinHandle<Vec<(u16, Duration)>>> {
    (0..callers)
        .map(|_| {
            let app = app.clone();
            let workflow = workflow.clone();
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for _ in 0..calls {
                    let started = Instant::now();
                    let response = app.call_hook_json(&workflow, &json!({})).await;
                    seen.push((response.status().as_u16(), started.elapsed()));
                }
                seen
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_200_when_the_base_processes_are_up_and_system_shows_them() {
    let app = spawn_app().await;
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 200, "{body}");
    let base = base_process(&app).await;
    assert_eq!(base["state"], "up", "{base}");
    assert!(base["pid"].as_u64().is_some(), "{base}");
    assert_eq!(base["restarts"], 0, "{base}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_process_killed_under_load_is_replaced_while_calls_and_a_bystander_keep_answering() {
    let app = Arc::new(spawn_app().await);
    let loaded = app.create_catch("loaded", &instance_pid_code()).await;
    let bystander = app
        .create_catch("bystander", &catch_code("return 'ok'"))
        .await;
    let old = base_process(&app).await["pid"].as_u64().expect("a pid");
    let callers = load(&app, &loaded, 4, 10);
    sigkill(old);
    assert_bystander_answers(&app, &bystander).await;
    for caller in callers {
        for (status, took) in caller.await.expect("caller") {
            assert_eq!(status, 200, "the warm instance outlives its base process");
            assert!(
                took < Duration::from_secs(10) + SLACK,
                "a call took {took:?}"
            );
        }
    }
    let base = eventually(Duration::from_secs(30), "a new base process is up", || {
        let app = app.clone();
        async move {
            let base = base_process(&app).await;
            (base["state"] == "up" && base["pid"].as_u64() != Some(old)).then_some(base)
        }
    })
    .await;
    assert!(base["restarts"].as_u64() >= Some(1), "{base}");
    assert!(
        base["last_error"]
            .as_str()
            .unwrap_or("")
            .contains("SIGKILL"),
        "{base}"
    );
    // A deploy needs the base process (validation, the new version's warm instance).
    let later = app
        .create_catch("later", &catch_code("return 'later'"))
        .await;
    assert_eq!(app.call_hook_json(&later, &json!({})).await.status(), 200);
    assert_eq!(readyz(&app).await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_instance_killed_under_load_ends_every_call_within_its_timeout_and_is_replaced() {
    let app = Arc::new(spawn_app().await);
    let loaded = app
        .create_workflow(json!({"name": "loaded", "mode": "catch", "code": instance_pid_code(), "timeout_s": 10}))
        .await;
    let bystander = app
        .create_catch("bystander", &catch_code("return 'ok'"))
        .await;
    let first = app.call_hook_json(&loaded, &json!({})).await;
    let instance: u64 = first.text().await.expect("body").parse().expect("a pid");
    let callers = load(&app, &loaded, 4, 10);
    sigkill(instance);
    assert_bystander_answers(&app, &bystander).await;
    for caller in callers {
        for (status, took) in caller.await.expect("caller") {
            assert!(
                took < Duration::from_secs(10) + flowd_runtime::CALL_MARGIN + SLACK,
                "a call answered {status} after {took:?}"
            );
        }
    }
    let next = app.call_hook_json(&loaded, &json!({})).await;
    assert_eq!(next.status(), 200);
    let replaced: u64 = next.text().await.expect("body").parse().expect("a pid");
    assert_ne!(replaced, instance);
    let executions = app.executions(&loaded).await;
    assert!(
        executions
            .iter()
            .all(|execution| execution["status"] != "running"),
        "every execution is recorded as ended"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_503_with_the_reason_while_the_base_process_cannot_be_started() {
    let flag = std::env::temp_dir().join(format!("flowd-test-base-dies-{}", std::process::id()));
    let module = "flowd_test_dies_when_flagged";
    let app = spawn_app_with(|config| config.preload = vec![module.to_string()]).await;
    // Installed after the start, so that only the restarts import it (a missing preload is
    // only logged).
    install_preload_module(
        &app,
        module,
        &format!(
            "import os\nif os.path.exists({:?}):\n    os._exit(3)\n",
            flag.display().to_string()
        ),
    )
    .await;
    std::fs::write(&flag, b"").expect("flag set");
    let old = base_process(&app).await["pid"].as_u64().expect("a pid");
    sigkill(old);
    let (status, body) = eventually(Duration::from_secs(60), "/readyz says not ready", || {
        let app = &app;
        async move {
            let (status, body) = readyz(app).await;
            (status == 503 && body["reason"].as_str().unwrap_or("").contains("failed"))
                .then_some((status, body))
        }
    })
    .await;
    let _ = std::fs::remove_file(&flag);
    assert_eq!(status, 503);
    let reason = body["reason"].as_str().unwrap_or("");
    assert!(reason.contains("exited with code 3"), "{body}");
    assert_eq!(base_process(&app).await["state"], "failed");
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .expect("request")
            .status(),
        200,
        "the server is alive"
    );
}

/// Writes a module the base process can preload into the default runtime's site-packages.
async fn install_preload_module(app: &TestApp, name: &str, source: &str) {
    let runtime = app.get_json("/runtimes").await["runtimes"][0].clone();
    let lib = std::path::Path::new(runtime["environment"].as_str().expect("dir")).join("lib");
    let site = std::fs::read_dir(&lib)
        .expect("the environment's lib dir")
        .flatten()
        .map(|entry| entry.path().join("site-packages"))
        .find(|path| path.is_dir())
        .expect("site-packages");
    let staging = site.join(format!(".{name}-{}.tmp", std::process::id()));
    std::fs::write(&staging, source).expect("module written");
    std::fs::rename(&staging, site.join(format!("{name}.py"))).expect("module in place");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_whose_top_level_exits_fails_its_deploy_as_an_init_failure_not_a_base_process_one(
) {
    let app = spawn_app().await;
    let workflow = app.create_catch("steady", &catch_code("return 'v1'")).await;
    let exits = "import os\nos._exit(3)\ndef workflow(_request, settings):\n    return 'v2'\n";
    let updated = app.patch_workflow(&workflow, json!({"code": exits})).await;
    let deployment = &updated["deployment"];
    assert_eq!(deployment["state"], "failed", "{deployment}");
    let error = deployment["error"].as_str().unwrap_or("");
    assert!(error.contains("InitExited"), "{deployment}");
    assert!(!error.contains("base process"), "{deployment}");
    assert_eq!(base_process(&app).await["restarts"], 0);
    assert_eq!(
        app.call_hook_json(&workflow, &json!({})).await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn readyz_answers_503_once_a_shutdown_has_begun() {
    let app = spawn_app().await;
    assert_eq!(readyz(&app).await.0, 200);
    app.state.begin_shutdown();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503);
    assert_eq!(body["reason"], "shutting down");
}
