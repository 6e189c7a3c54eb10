//! User code runs as an unprivileged user that cannot read the server's files.

use serde_json::json;

use crate::support::*;

async fn run_catch(app: &TestApp, name: &str, body: &str) -> String {
    let workflow = app.create_catch(name, &catch_code(body)).await;
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.status(), 200);
    response.text().await.expect("body")
}

#[tokio::test(flavor = "multi_thread")]
async fn user_code_runs_under_an_unprivileged_uid() {
    let app = spawn_app().await;
    let uid = run_catch(
        &app,
        "whoami",
        "import os\nreturn {'status_code': 200, 'body': str(os.getuid())}",
    )
    .await;
    let server_uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    if server_uid == 0 {
        assert_ne!(uid, "0", "user code must not run as root");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn user_code_cannot_read_the_database_nor_the_data_dir() {
    let app = spawn_app().await;
    let server_uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    if server_uid != 0 {
        return; // without root there is no user switch to test
    }
    let data_dir = app.data_dir.path().join("data");
    let db = data_dir.join("flowd.db");
    let body = format!(
        "results = []\nfor action in ('read_db', 'list_dir'):\n    try:\n        if action == 'read_db':\n            open({db:?}, 'rb').read(16)\n        else:\n            import os; os.listdir({dir:?})\n        results.append(action + ':allowed')\n    except PermissionError:\n        results.append(action + ':denied')\nreturn {{'status_code': 200, 'body': ' '.join(results)}}",
        db = db.display().to_string(),
        dir = data_dir.display().to_string()
    );
    let outcome = run_catch(&app, "snoop", &body).await;
    assert_eq!(outcome, "read_db:denied list_dir:denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn user_code_can_write_in_its_private_temporary_directory() {
    let app = spawn_app().await;
    let body = "import tempfile, os\nwith tempfile.NamedTemporaryFile('w', delete=False) as f:\n    f.write('x')\nreturn {'status_code': 200, 'body': str(os.path.exists(f.name))}";
    assert_eq!(run_catch(&app, "tmpwriter", body).await, "True");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reuse_workflow_keeps_its_module_globals_between_calls() {
    let app = spawn_app().await;
    let code = "calls = 0\ndef workflow(_request, settings):\n    global calls\n    calls += 1\n    return {'status_code': 200, 'body': str(calls)}\n";
    let workflow = app
        .create_workflow(
            json!({"name": "container", "mode": "catch", "code": code, "isolation": "reuse"}),
        )
        .await;
    assert_eq!(workflow["isolation"], "reuse");
    let mut bodies = Vec::new();
    for _ in 0..3 {
        let response = app.call_hook_json(&workflow, &json!({})).await;
        assert_eq!(response.status(), 200);
        bodies.push(response.text().await.unwrap());
    }
    assert_eq!(bodies, ["1", "2", "3"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_workflow_never_sees_another_calls_globals() {
    let app = spawn_app().await;
    let code = "calls = 0\ndef workflow(_request, settings):\n    global calls\n    calls += 1\n    return {'status_code': 200, 'body': str(calls)}\n";
    let workflow = app.create_catch("forked", code).await;
    for _ in 0..3 {
        let response = app.call_hook_json(&workflow, &json!({})).await;
        assert_eq!(response.text().await.unwrap(), "1");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_data_dir_the_sandbox_user_cannot_reach_still_runs_workflows() {
    let server_uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    if server_uid != 0 {
        return; // only root switches users
    }
    let private = tempfile::Builder::new()
        .prefix("flowd-private-")
        .tempdir_in(std::env::temp_dir())
        .unwrap();
    std::fs::set_permissions(
        private.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let data_dir = private.path().join("data");
    let app = spawn_app_with(|config| config.data_dir = data_dir.clone()).await;
    let workflow = app
        .create_catch(
            "private",
            &catch_code("import os\nreturn {'status_code': 200, 'body': os.getcwd()}"),
        )
        .await;
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.status(), 200);
    let cwd = response.text().await.unwrap();
    assert!(
        cwd.starts_with("/var/lib/flowd/"),
        "the instance works in {cwd}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_system_report_names_every_cgroup_layer_and_why_one_is_missing() {
    let app = spawn_app().await;
    let layers = app.get_json("/system").await["isolation"]["layers"].clone();
    for name in ["pids_cgroup", "memory_cgroup", "cpu_cgroup"] {
        let layer = layers
            .as_array()
            .and_then(|all| all.iter().find(|l| l["name"] == name))
            .unwrap_or_else(|| panic!("{name} is reported: {layers}"));
        assert!(layer["active"].is_boolean(), "{layer}");
        assert!(
            !layer["detail"].as_str().unwrap_or_default().is_empty(),
            "{layer}"
        );
    }
}
