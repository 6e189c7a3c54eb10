//! Roles and teams over HTTP: every route of openapi.json × each role (allowed, or `403
//! forbidden`), one team's key seeing nothing of another team (`404`), and revocation holding
//! from the very next request.

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::{id, Answer};
use crate::support::*;

/// A call with `key` (not the admin key of [`TestApp::api`]).
async fn call_as(
    app: &TestApp,
    key: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Answer {
    let mut request = app
        .client
        .request(method, app.url(&format!("/api/v1{path}")))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("body");
    Answer {
        status,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
    }
}

/// A new key of `role` in `team` (created with the admin key); answers the key.
async fn key_of(app: &TestApp, role: &str, team: &str) -> String {
    let answer = call_as(
        app,
        ADMIN_KEY,
        Method::POST,
        "/api-keys",
        Some(&json!({"name": format!("{role}-of-{team}"), "role": role, "team": team})),
    )
    .await;
    assert_eq!(answer.status, 201, "key created: {}", answer.body);
    answer.body["key"].as_str().expect("the key").to_string()
}

async fn given_team(app: &TestApp, name: &str) {
    let answer = call_as(
        app,
        ADMIN_KEY,
        Method::POST,
        "/teams",
        Some(&json!({"name": name})),
    )
    .await;
    assert_eq!(answer.status, 201, "team created: {}", answer.body);
}

const ROLES: [&str; 3] = ["admin", "developer", "viewer"];

fn rank(role: &str) -> usize {
    ROLES.len() - ROLES.iter().position(|r| *r == role).expect("a role")
}

/// The least role an operation needs: its `x-flowd-role`, else the server's rule for routes that
/// do not say (reads for viewers, the rest for developers).
fn required_role(method: &str, operation: &Value) -> String {
    match operation["x-flowd-role"].as_str() {
        Some(role) => role.to_string(),
        None if method == "get" => "viewer".into(),
        None => "developer".into(),
    }
}

/// A concrete path for a route template: ids that name nothing, so that no call changes state.
fn concrete(path: &str) -> String {
    path.trim_start_matches("/api/v1")
        .replace("{id}", "00000000-0000-7000-8000-000000000000")
        .replace("{version}", "1")
        .replace("{name}", "no-such-team")
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "x".to_string()
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_api_route_answers_each_role_as_openapi_json_says() {
    let app = spawn_app().await;
    let keys = [
        ("admin", ADMIN_KEY.to_string()),
        ("developer", key_of(&app, "developer", "default").await),
        ("viewer", key_of(&app, "viewer", "default").await),
    ];
    let spec = app.get_json("/openapi.json").await;
    let mut checked = 0;
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (method, operation) in operations.as_object().expect("operations") {
            let required = required_role(method, operation);
            for (role, key) in &keys {
                let answer = call_as(
                    &app,
                    key,
                    method.to_uppercase().parse().expect("method"),
                    &concrete(path),
                    Some(&json!({})),
                )
                .await;
                let what = format!("{method} {path} with a {role} key (needs {required})");
                if rank(role) >= rank(&required) {
                    assert!(
                        ![401, 403].contains(&answer.status.as_u16()),
                        "{what}: refused: {}",
                        answer.body
                    );
                } else {
                    assert_eq!(answer.status, 403, "{what}: {}", answer.body);
                    assert_eq!(answer.body["error"]["code"], "forbidden", "{what}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 3 * 25, "only {checked} calls checked");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn every_api_operation_declares_its_role() {
    let app = spawn_app().await;
    let spec = app.get_json("/openapi.json").await;
    for (path, operations) in spec["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (method, operation) in operations.as_object().expect("operations") {
            let role = operation["x-flowd-role"].as_str();
            assert!(
                role.is_some_and(|role| ROLES.contains(&role)),
                "{method} {path}: x-flowd-role is {role:?}"
            );
        }
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn another_teams_workflow_answers_404_to_every_route() {
    let app = spawn_app().await;
    given_team(&app, "payroll").await;
    let outsider = key_of(&app, "developer", "payroll").await;
    let workflow = app
        .create_catch("greet", &catch_code("return {'ok': True}"))
        .await;
    let workflow_id = id(&workflow);
    let execution = crate::api_support::run_now(&app, &workflow, &json!({})).await;
    let routes = [
        (Method::GET, format!("/workflows/{workflow_id}")),
        (Method::PATCH, format!("/workflows/{workflow_id}")),
        (Method::DELETE, format!("/workflows/{workflow_id}")),
        (Method::GET, format!("/workflows/{workflow_id}/versions")),
        (Method::GET, format!("/workflows/{workflow_id}/versions/1")),
        (
            Method::POST,
            format!("/workflows/{workflow_id}/rotate-token"),
        ),
        (Method::GET, format!("/workflows/{workflow_id}/settings")),
        (Method::PUT, format!("/workflows/{workflow_id}/settings")),
        (Method::PATCH, format!("/workflows/{workflow_id}/settings")),
        (Method::GET, format!("/workflows/{workflow_id}/executions")),
        (Method::POST, format!("/workflows/{workflow_id}/runs")),
        (Method::GET, format!("/workflows/{workflow_id}/stats")),
        (Method::GET, format!("/workflows/{workflow_id}/queue")),
        (Method::GET, format!("/executions/{}", id(&execution))),
    ];
    for (method, path) in routes {
        let answer = call_as(&app, &outsider, method.clone(), &path, Some(&json!({}))).await;
        assert_eq!(answer.status, 404, "{method} {path}: {}", answer.body);
    }
    // Still there, its hook URL (token) unchanged.
    let shown = app.get_json(&format!("/workflows/{workflow_id}")).await;
    assert_eq!(shown["hook_url"], workflow["hook_url"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn listings_show_nothing_of_another_team() {
    let app = spawn_app().await;
    given_team(&app, "payroll").await;
    let outsider = key_of(&app, "developer", "payroll").await;
    let workflow = app
        .create_catch("greet", &catch_code("return {'ok': True}"))
        .await;
    crate::api_support::run_now(&app, &workflow, &json!({})).await;
    for (path, field) in [
        ("/workflows", "workflows"),
        ("/executions", "executions"),
        ("/workflow-stats", "stats"),
    ] {
        let answer = call_as(&app, &outsider, Method::GET, path, None).await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(answer.body[field], json!([]), "{path}");
    }
    // Its own team's entries only (the team's creation, its key's): none of `default`'s.
    let audit = call_as(&app, &outsider, Method::GET, "/audit", None).await;
    let entries = audit.body["entries"].as_array().expect("entries");
    assert!(!entries.is_empty());
    assert!(
        entries.iter().all(|entry| entry["team"] == "payroll"),
        "{entries:?}"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_belongs_to_the_team_of_the_key_that_created_it() {
    let app = spawn_app().await;
    given_team(&app, "payroll").await;
    let developer = key_of(&app, "developer", "payroll").await;
    let body = json!({"name": "greet", "mode": "catch", "code": catch_code("return {}")});
    let created = call_as(&app, &developer, Method::POST, "/workflows", Some(&body)).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["team"], "payroll");
    assert!(created.body["hook_url"]
        .as_str()
        .is_some_and(|url| url.starts_with("/teams/payroll/greet/")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_names_the_team_of_a_new_workflow() {
    let app = spawn_app().await;
    given_team(&app, "payroll").await;
    let workflow = app
        .create_workflow(json!({
            "name": "greet", "mode": "catch", "code": catch_code("return {}"), "team": "payroll",
        }))
        .await;
    assert_eq!(workflow["team"], "payroll");
    let listed = app.get_json("/workflows").await;
    assert_eq!(listed["workflows"][0]["team"], "payroll");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_developer_cannot_create_in_another_team() {
    let app = spawn_app().await;
    given_team(&app, "payroll").await;
    let developer = key_of(&app, "developer", "payroll").await;
    let body = json!({
        "name": "greet", "mode": "catch", "code": catch_code("return {}"), "team": "default",
    });
    let answer = call_as(&app, &developer, Method::POST, "/workflows", Some(&body)).await;
    answer.assert_error(404, "not_found");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_revoked_key_is_refused_at_its_next_request() {
    let app = spawn_app().await;
    let key = key_of(&app, "viewer", "default").await;
    let whoami = call_as(&app, &key, Method::GET, "/whoami", None).await;
    assert_eq!(whoami.status, 200);
    let revoked = call_as(
        &app,
        ADMIN_KEY,
        Method::DELETE,
        &format!("/api-keys/{}", id(&whoami.body)),
        None,
    )
    .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    call_as(&app, &key, Method::GET, "/workflows", None)
        .await
        .assert_error(401, "unauthorized");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_is_listed_without_its_secret_and_shown_once() {
    let app = spawn_app().await;
    let created = call_as(
        &app,
        ADMIN_KEY,
        Method::POST,
        "/api-keys",
        Some(&json!({"name": "ci", "role": "developer", "expires_at": "2099-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key = created.body["key"].as_str().expect("the key");
    assert!(key.starts_with(created.body["prefix"].as_str().expect("prefix")));
    let listed = app.get_json("/api-keys").await;
    let ci = listed["api_keys"]
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "ci")
        .expect("ci listed")
        .clone();
    assert_eq!(ci["role"], "developer");
    assert_eq!(ci["team"], "default");
    assert_eq!(ci["expires_at"], "2099-01-01T00:00:00.000Z");
    assert!(ci.get("key").is_none() && !ci.to_string().contains(key));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewer_reads_settings_with_secrets_masked() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "greet", "mode": "catch", "code": catch_code("return {}"),
            "settings": {"token": "s3cret", "region": "eu"}, "secrets": ["token"],
        }))
        .await;
    let viewer = key_of(&app, "viewer", "default").await;
    let answer = call_as(
        &app,
        &viewer,
        Method::GET,
        &format!("/workflows/{}/settings", id(&workflow)),
        None,
    )
    .await;
    assert_eq!(answer.status, 200);
    assert_eq!(
        answer.body["settings"],
        json!({"token": "****", "region": "eu"})
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_with_workflows_is_not_deleted() {
    let app = spawn_app().await;
    given_team(&app, "payroll").await;
    app.create_workflow(json!({
        "name": "greet", "mode": "catch", "code": catch_code("return {}"), "team": "payroll",
    }))
    .await;
    call_as(&app, ADMIN_KEY, Method::DELETE, "/teams/payroll", None)
        .await
        .assert_error(409, "conflict");
    app.stop().await;
}
