//! Deploys: a version becomes active only once its environment is built and its module imported in
//! the sandbox; a failed build or import leaves the previous version serving and says why.
//! Requirements are real packages from PyPI (built with uv, cached between tests).

use serde_json::{json, Value};

use crate::support::*;

/// Returns the version of `dateutil` the workflow imports.
const DATEUTIL_VERSION: &str = "import dateutil\nimport requests\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': dateutil.__version__}\n";

fn returning(text: &str) -> String {
    catch_code(&format!("return {{'status_code': 200, 'body': {text:?}}}"))
}

async fn hook_text(app: &TestApp, workflow: &Value) -> (u16, String) {
    let response = app.call_hook_json(workflow, &json!({})).await;
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn versions(app: &TestApp, workflow: &Value) -> Vec<Value> {
    let id = workflow["id"].as_str().unwrap();
    app.get_json(&format!("/workflows/{id}/versions")).await["versions"]
        .as_array()
        .cloned()
        .unwrap()
}

/// Sends a change and returns the status and body, whatever they are.
async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
    let response = app.api(method, path).json(&body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A requirement name no index has, different on every run (so no cache can answer for it).
fn unknown_package() -> String {
    format!("flowd-no-such-package-{}", uuid::Uuid::now_v7().simple())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_requirement_is_what_the_workflow_imports() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "dates", "mode": "catch", "code": DATEUTIL_VERSION,
            "requirements": ["python-dateutil==2.8.2"],
        }))
        .await;
    assert_eq!(workflow["version"], 1);
    assert_eq!(workflow["deployment"]["state"], "active", "{workflow}");
    assert_eq!(hook_text(&app, &workflow).await, (200, "2.8.2".to_string()));
    let listed = versions(&app, &workflow).await;
    assert_eq!(listed[0]["state"], "active");
    assert_eq!(listed[0]["requirements"], json!(["python-dateutil==2.8.2"]));
    assert!(listed[0]["environment"]
        .as_str()
        .unwrap()
        .starts_with("python3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_workflows_pinning_different_versions_run_side_by_side() {
    let app = spawn_app().await;
    let old = app
        .create_workflow(json!({
            "name": "old-dates", "mode": "catch", "code": DATEUTIL_VERSION,
            "requirements": "python-dateutil==2.8.2\n",
        }))
        .await;
    let new = app
        .create_workflow(json!({
            "name": "new-dates", "mode": "catch", "code": DATEUTIL_VERSION,
            "requirements": "# the newest\npython-dateutil==2.9.0.post0  # pinned\n",
        }))
        .await;
    for _ in 0..2 {
        assert_eq!(hook_text(&app, &old).await, (200, "2.8.2".to_string()));
        assert_eq!(
            hook_text(&app, &new).await,
            (200, "2.9.0.post0".to_string())
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_package_fails_the_first_deploy_and_the_hook_answers_503() {
    let app = spawn_app().await;
    let package = unknown_package();
    let workflow = app
        .create_workflow(json!({
            "name": "nothing", "mode": "catch", "code": returning("never"),
            "requirements": [package],
        }))
        .await;
    assert_eq!(workflow["version"], Value::Null);
    let deployment = &workflow["deployment"];
    assert_eq!(deployment["state"], "failed", "{workflow}");
    let error = deployment["error"].as_str().unwrap();
    assert!(error.contains(&package), "{error}");

    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("x-execution-id"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_active_version", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("failed"),
        "{body}"
    );

    let listed = versions(&app, &workflow).await;
    assert_eq!(listed[0]["state"], "failed");
    assert!(!listed[0]["build_log"].as_str().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_pins_are_a_failed_build_naming_the_conflict() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "conflict", "mode": "catch", "code": returning("never"),
            "requirements": ["python-dateutil==2.8.2", "python-dateutil==2.9.0.post0"],
        }))
        .await;
    let deployment = &workflow["deployment"];
    assert_eq!(deployment["state"], "failed", "{workflow}");
    let error = deployment["error"].as_str().unwrap().to_lowercase();
    assert!(error.contains("conflict"), "{error}");
    assert!(error.contains("python-dateutil"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_that_fails_to_build_is_a_failed_build_naming_it() {
    let app = spawn_app().await;
    // `sklearn` on PyPI is a deprecated source distribution whose build always fails.
    let workflow = app
        .create_workflow(json!({
            "name": "unbuildable", "mode": "catch", "code": returning("never"),
            "requirements": ["sklearn"],
        }))
        .await;
    let deployment = &workflow["deployment"];
    assert_eq!(deployment["state"], "failed", "{workflow}");
    let error = deployment["error"].as_str().unwrap();
    assert!(
        error.contains("sklearn") && error.contains("build"),
        "{error}"
    );
    assert!(
        deployment["build_log"]
            .as_str()
            .unwrap()
            .contains("scikit-learn"),
        "the build's own output explains it: {deployment}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_version_whose_import_fails_leaves_the_old_one_serving() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({"name": "steady", "mode": "catch", "code": returning("v1")}))
        .await;
    assert_eq!(hook_text(&app, &workflow).await, (200, "v1".to_string()));
    let broken =
        "import no_such_module_anywhere\ndef workflow(_request, settings):\n    return 'v2'\n";
    let updated = app.patch_workflow(&workflow, json!({"code": broken})).await;
    assert_eq!(updated["version"], 1, "{updated}");
    let deployment = &updated["deployment"];
    assert_eq!(deployment["version"], 2);
    assert_eq!(deployment["state"], "failed");
    assert!(
        deployment["error"]
            .as_str()
            .unwrap()
            .contains("ModuleNotFoundError"),
        "{deployment}"
    );
    assert!(
        deployment["build_log"]
            .as_str()
            .unwrap()
            .contains("Traceback"),
        "{deployment}"
    );
    assert_eq!(hook_text(&app, &workflow).await, (200, "v1".to_string()));
    let listed = versions(&app, &workflow).await;
    assert_eq!(
        listed
            .iter()
            .map(|v| (v["version"].as_u64().unwrap(), v["state"].as_str().unwrap()))
            .collect::<Vec<_>>(),
        vec![(2, "failed"), (1, "active")]
    );

    let fixed = app
        .patch_workflow(&workflow, json!({"code": returning("v3")}))
        .await;
    assert_eq!(fixed["version"], 3);
    assert_eq!(hook_text(&app, &workflow).await, (200, "v3".to_string()));
    assert_eq!(versions(&app, &workflow).await[2]["state"], "ready");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_requirement_set_leaves_the_old_one_serving_and_a_good_one_replaces_it() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "dates", "mode": "catch", "code": DATEUTIL_VERSION,
            "requirements": ["python-dateutil==2.8.2"],
        }))
        .await;
    let failed = app
        .patch_workflow(
            &workflow,
            json!({"requirements": ["python-dateutil==2.8.2", unknown_package()]}),
        )
        .await;
    assert_eq!(failed["deployment"]["state"], "failed");
    assert_eq!(hook_text(&app, &workflow).await, (200, "2.8.2".to_string()));

    let upgraded = app
        .patch_workflow(
            &workflow,
            json!({"requirements": ["python-dateutil==2.9.0.post0"]}),
        )
        .await;
    assert_eq!(upgraded["deployment"]["state"], "active", "{upgraded}");
    assert_eq!(upgraded["version"], 3);
    assert_eq!(
        hook_text(&app, &workflow).await,
        (200, "2.9.0.post0".to_string())
    );
    // The code was carried over from the latest version.
    assert_eq!(versions(&app, &workflow).await[0]["code"], DATEUTIL_VERSION);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_deploy_not_waited_for_answers_202_and_can_be_followed() {
    let app = spawn_app().await;
    let (status, created) = send(
        &app,
        reqwest::Method::POST,
        "/workflows?wait=false",
        json!({"name": "later", "mode": "catch", "code": returning("done")}),
    )
    .await;
    assert!(status == 202 || status == 201, "{status} {created}");
    assert!(
        ["building", "active"].contains(&created["deployment"]["state"].as_str().unwrap()),
        "{created}"
    );
    let id = created["id"].as_str().unwrap();
    let version = app
        .get_json(&format!("/workflows/{id}/versions/1?wait=true"))
        .await;
    assert_eq!(version["state"], "active", "{version}");
    assert_eq!(hook_text(&app, &created).await, (200, "done".to_string()));
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_requirements_are_refused_before_anything_is_stored() {
    let app = spawn_app().await;
    for requirements in [
        json!(["-r /etc/passwd"]),
        json!(["--index-url https://evil.example/simple"]),
        json!(["./local-package"]),
        json!(["pkg @ file:///etc/passwd"]),
        json!("python-dateutil==2.8.2\n-e git+https://example.com/x.git\n"),
        json!([1]),
        json!({"python-dateutil": "2.8.2"}),
    ] {
        let (status, body) = send(
            &app,
            reqwest::Method::POST,
            "/workflows",
            json!({"name": "refused", "mode": "catch", "code": returning("x"), "requirements": requirements}),
        )
        .await;
        assert_eq!(status, 422, "{requirements}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("requirements"),
            "{body}"
        );
    }
    assert_eq!(
        app.get_json("/workflows").await["workflows"],
        json!([]),
        "nothing was stored"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_package_index_is_a_clear_failed_build() {
    let app = spawn_app_with(|config| {
        config.build.index_url = Some("http://127.0.0.1:9/simple".to_string());
    })
    .await;
    let started = std::time::Instant::now();
    let workflow = app
        .create_workflow(json!({
            "name": "offline", "mode": "catch", "code": returning("never"),
            "requirements": [unknown_package()],
        }))
        .await;
    let deployment = &workflow["deployment"];
    assert_eq!(deployment["state"], "failed", "{workflow}");
    let error = deployment["error"].as_str().unwrap();
    assert!(error.contains("127.0.0.1:9"), "{error}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "a dead index must not hang the deploy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_query_that_is_not_understood_is_refused() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({"name": "q", "mode": "catch", "code": returning("x")}))
        .await;
    let id = workflow["id"].as_str().unwrap();
    for path in [
        format!("/workflows/{id}/versions/one"),
        format!("/workflows/{id}/versions/1?wait=maybe"),
    ] {
        let response = app.api(reqwest::Method::GET, &path).send().await.unwrap();
        assert!(
            [404, 422].contains(&response.status().as_u16()),
            "{path}: {}",
            response.status()
        );
    }
    let response = app
        .api(reqwest::Method::GET, &format!("/workflows/{id}/versions/9"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}
