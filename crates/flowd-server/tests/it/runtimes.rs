//! Runtimes: the interpreters flowd found and provisioned, the one a workflow picks, the default.

use serde_json::json;

use crate::support::*;

fn code() -> String {
    catch_code("import sys\nreturn {'status_code': 200, 'body': '%d.%d' % sys.version_info[:2]}")
}

#[tokio::test(flavor = "multi_thread")]
async fn runtimes_lists_each_interpreter_with_its_version_packages_and_installer() {
    let app = spawn_app().await;
    let runtimes = app.get_json("/runtimes").await["runtimes"].clone();
    let runtimes = runtimes.as_array().unwrap();
    assert!(!runtimes.is_empty());
    let first = &runtimes[0];
    assert_eq!(first["default"], true, "the default comes first");
    let name = first["name"].as_str().unwrap();
    let version = first["version"].as_str().unwrap();
    assert!(
        name.starts_with("python3.") && version.starts_with("3."),
        "{first}"
    );
    assert!(first["packages"]["requests"].is_string(), "{first}");
    assert!(first["packages"]["hrflow"].is_string(), "{first}");
    assert!(!first["installer"].as_str().unwrap().is_empty(), "{first}");
    assert_eq!(
        runtimes.iter().filter(|r| r["default"] == true).count(),
        1,
        "one default"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_runs_on_the_runtime_it_picks() {
    let app = spawn_app().await;
    let runtime = app.get_json("/runtimes").await["runtimes"][0].clone();
    let name = runtime["name"].as_str().unwrap();
    let workflow = app
        .create_workflow(json!({"name": "picky", "mode": "catch", "code": code(), "runtime": name}))
        .await;
    assert_eq!(workflow["runtime"], name);
    assert!(workflow["hook_url"].as_str().unwrap().contains(name));
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(
        format!("python{}", response.text().await.unwrap()),
        name,
        "the interpreter that ran it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_default_runtime_is_configurable() {
    let probe = spawn_app().await;
    let name = probe.get_json("/runtimes").await["runtimes"][0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    probe.stop().await;
    let app = spawn_app_with(|config| config.default_runtime = Some(name.clone())).await;
    let workflow = app
        .create_workflow(json!({"name": "plain", "mode": "catch", "code": code()}))
        .await;
    assert_eq!(workflow["runtime"], name.as_str());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_default_runtime_stops_the_start_naming_the_interpreters_found() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = flowd_server::Config::new(data_dir.path().join("data"));
    config.runtime_dir = Some(shared_runtime_dir());
    config.default_runtime = Some("python2.7".to_string());
    let error = match flowd_server::start(&config).await {
        Ok(_) => panic!("started with an unknown default runtime"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("python2.7"), "{error}");
    assert!(error.contains("python3."), "names what was found: {error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_paths_to_one_interpreter_are_one_runtime() {
    let probe = spawn_app().await;
    let interpreter = probe.get_json("/runtimes").await["runtimes"][0]["interpreter"]
        .as_str()
        .unwrap()
        .to_string();
    probe.stop().await;
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("python3-link");
    std::os::unix::fs::symlink(&interpreter, &link).unwrap();
    let app = spawn_app_with(|config| {
        config.pythons = vec![interpreter.clone().into(), link.clone()];
    })
    .await;
    let runtimes = app.get_json("/runtimes").await["runtimes"].clone();
    assert_eq!(runtimes.as_array().unwrap().len(), 1, "{runtimes}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_interpreter_stops_the_start_naming_it() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = flowd_server::Config::new(data_dir.path().join("data"));
    config.runtime_dir = Some(shared_runtime_dir());
    config.pythons = vec!["/opt/no-such-python/bin/python3.99".into()];
    let error = match flowd_server::start(&config).await {
        Ok(_) => panic!("started without its interpreter"),
        Err(error) => error.to_string(),
    };
    assert!(
        error.contains("/opt/no-such-python/bin/python3.99"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn moving_a_workflow_to_another_runtime_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({"name": "stay", "mode": "catch", "code": code()}))
        .await;
    let id = workflow["id"].as_str().unwrap();
    let response = app
        .api(reqwest::Method::PATCH, &format!("/workflows/{id}"))
        .json(&json!({"runtime": "python3.99"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runtime"),
        "{body}"
    );
    let shown = app.get_json(&format!("/workflows/{id}")).await;
    assert_eq!(shown["runtime"], workflow["runtime"]);
    // The same runtime is no change at all.
    let same = app
        .patch_workflow(&workflow, json!({"runtime": workflow["runtime"]}))
        .await;
    assert_eq!(same["version"], 1);
}
