//! Any node answers any hook: what is changed through one node is in effect on the others within
//! a second (they hear of it from the database, with no read of the store per call), and a
//! version deployed through one node runs on another, which builds what it lacks itself.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::*;

/// How soon a change made through one node must be in effect on the others.
const PROPAGATION: Duration = Duration::from_secs(1);

/// A catch workflow answering `{body}` with the value of its setting `greeting`.
fn greeter(answer: &str) -> String {
    format!(
        "def workflow(_request, settings):\n    \
         return {{'status_code': 200, 'body': '{answer}:' + str(settings.get('greeting'))}}\n"
    )
}

/// `POST` to node `i`'s `hook_path` with an empty JSON body: the status and the body.
async fn call(cluster: &Cluster, i: usize, hook_path: &str) -> (u16, String) {
    let answer = cluster
        .http()
        .post(format!("{}{hook_path}", cluster.node(i)))
        .json(&json!({}))
        .send()
        .await
        .expect("the node answers");
    let status = answer.status().as_u16();
    (status, answer.text().await.unwrap_or_default())
}

/// Waits at most [`PROPAGATION`] until node `i` answers `hook_path` with `status` and `body`
/// (any body when `None`).
async fn answers_within_a_second(
    cluster: &Cluster,
    i: usize,
    hook_path: &str,
    status: u16,
    body: Option<&str>,
    after: &str,
) {
    let what = format!("after {after}, node {i} answers {status} {body:?} at {hook_path}");
    eventually(PROPAGATION, &what, || async {
        let (got_status, got_body) = call(cluster, i, hook_path).await;
        (got_status == status && body.is_none_or(|body| got_body == body)).then_some(())
    })
    .await;
}

fn hook_path(workflow: &Value) -> String {
    workflow["hook_url"].as_str().expect("hook_url").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_changes_made_through_one_node_are_in_effect_on_another_within_a_second() {
    let cluster = Cluster::start(2, &[]).await;
    let (a, b) = (cluster.admin(0), 1);
    let created = a
        .create_workflow(catch_workflow(
            "greeter",
            &greeter("v1"),
            json!({"settings": {"greeting": "hello"}, "isolation": "reuse"}),
        ))
        .await;
    let id = created["id"].as_str().expect("an id").to_string();
    let hook = hook_path(&created);
    answers_within_a_second(&cluster, b, &hook, 200, Some("v1:hello"), "create").await;

    a.patch_workflow(&id, json!({"code": greeter("v2")})).await;
    answers_within_a_second(&cluster, b, &hook, 200, Some("v2:hello"), "a deploy").await;

    let (status, _) = a
        .call(
            reqwest::Method::PUT,
            &format!("/workflows/{id}/settings"),
            Some(json!({"greeting": "hi"})),
        )
        .await;
    assert_eq!(status, 200);
    answers_within_a_second(&cluster, b, &hook, 200, Some("v2:hi"), "a settings PUT").await;

    a.patch_workflow(&id, json!({"enabled": false})).await;
    answers_within_a_second(&cluster, b, &hook, 503, None, "a pause").await;
    a.patch_workflow(&id, json!({"enabled": true})).await;
    answers_within_a_second(&cluster, b, &hook, 200, Some("v2:hi"), "a resume").await;

    let (status, rotated) = a
        .call(
            reqwest::Method::POST,
            &format!("/workflows/{id}/rotate-token"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_hook = hook_path(&rotated);
    assert_ne!(new_hook, hook);
    answers_within_a_second(&cluster, b, &hook, 404, None, "a token rotation (old URL)").await;
    answers_within_a_second(
        &cluster,
        b,
        &new_hook,
        200,
        None,
        "a token rotation (new URL)",
    )
    .await;

    let (status, _) = a
        .call(reqwest::Method::DELETE, &format!("/workflows/{id}"), None)
        .await;
    assert_eq!(status, 204);
    answers_within_a_second(&cluster, b, &new_hook, 404, None, "a delete").await;
}

/// A runtime dir for one node with environments of its own: everything else of the shared one
/// (the provisioned base environment, the installer and its cache) is linked, to spare the node a
/// provisioning, but its `envs` is empty.
fn runtime_dir_with_envs_of_its_own() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("flowd-cluster-runtime-")
        .tempdir()
        .expect("a temp dir");
    // The sandbox user reaches the environments through it.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("a reachable runtime dir");
    let shared = shared_runtime_dir();
    for entry in std::fs::read_dir(&shared).expect("the shared runtime dir") {
        let entry = entry.expect("an entry of the shared runtime dir");
        let name = entry.file_name();
        if name != "envs" && entry.path().is_dir() {
            std::os::unix::fs::symlink(entry.path(), dir.path().join(&name))
                .expect("a link to the shared runtime dir");
        }
    }
    dir
}

/// The environments built in `runtime_dir`.
fn environments(runtime_dir: &std::path::Path) -> usize {
    std::fs::read_dir(runtime_dir.join("envs"))
        .map(|entries| entries.flatten().filter(|e| e.path().is_dir()).count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_version_deployed_through_one_node_runs_on_another_that_builds_its_environment() {
    // Node 0 provisions the shared runtime dir (if no test did yet); node 1 has environments of
    // its own, so it cannot use the one node 0 builds.
    let mut cluster = Cluster::start(1, &[]).await;
    let runtime_dir = runtime_dir_with_envs_of_its_own();
    let own_runtime_dir = runtime_dir.path().to_str().expect("a UTF-8 path");
    let b = cluster.add_node(&["--runtime-dir", own_runtime_dir]).await;
    let code = "import dateutil\n\
                def workflow(_request, settings):\n    \
                return {'status_code': 200, 'body': dateutil.__version__}\n";
    let created = cluster
        .admin(0)
        .create_workflow(catch_workflow(
            "dated",
            code,
            json!({"requirements": ["python-dateutil==2.8.2"]}),
        ))
        .await;
    assert_eq!(environments(runtime_dir.path()), 0);

    let (status, body) = call(&cluster, b, &hook_path(&created)).await;
    assert_eq!((status, body.as_str()), (200, "2.8.2"));
    assert_eq!(environments(runtime_dir.path()), 1);
    // Its nodes stop before their runtime dir goes.
    drop(cluster);
}
