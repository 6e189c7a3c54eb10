//! flowd on PostgreSQL (`Config::database`): the same API and hooks, its state in the server's
//! database rather than the data dir.

use std::time::Duration;

use flowd_store::DatabaseUrl;
use serde_json::json;

use crate::api_support::id;
use crate::support::*;

/// A server on `database`, given its secret key as nodes sharing a database are (the data dir
/// is the test's own).
async fn spawn_app_on(database: &flowd_test_postgres::TestDatabase) -> TestApp {
    let url: DatabaseUrl = database.url().parse().expect("a database URL");
    let key = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"
        .parse()
        .expect("a secret key");
    spawn_app_with(|config| {
        config.database = Some(url);
        config.secret_key = Some(key);
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hook_on_postgres_keeps_its_execution_and_settings_change() {
    let database = flowd_test_postgres::fresh_database().await;
    let app = spawn_app_on(&database).await;
    let workflow = app
        .create_workflow(json!({
            "name": "counter", "mode": "catch",
            "code": catch_code(
                "settings['count'] = settings.get('count', 0) + 1\n\
                 return {'status_code': 201, 'body': str(settings['count'])}"
            ),
        }))
        .await;
    for expected in ["1", "2"] {
        let response = app.call_hook_json(&workflow, &json!({})).await;
        assert_eq!(response.status(), 201);
        let execution = execution_id(&response);
        assert_eq!(response.text().await.unwrap(), expected);
        assert_eq!(app.execution(&execution).await["status"], "success");
    }
    assert_eq!(app.settings(&workflow).await, json!({"count": 2}));
    assert!(!app.data_dir.path().join("data").join("flowd.db").exists());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_on_the_same_postgres_database_finds_its_workflows() {
    let database = flowd_test_postgres::fresh_database().await;
    let first = spawn_app_on(&database).await;
    let workflow = first
        .create_catch(
            "kept",
            &catch_code("return {'status_code': 200, 'body': 'still here'}"),
        )
        .await;
    first.stop().await;

    // Another data dir: nothing of the first start is left but the database.
    let second = spawn_app_on(&database).await;
    let found = second
        .get_json(&format!("/workflows/{}", id(&workflow)))
        .await;
    assert_eq!(found["name"], "kept", "{found}");
    let response = second.call_hook_json(&found, &json!({})).await;
    assert_eq!(response.text().await.unwrap(), "still here");
    second.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_idempotency_key_sent_to_two_nodes_of_one_database_runs_once() {
    let database = flowd_test_postgres::fresh_database().await;
    let node_a = spawn_app_on(&database).await;
    let node_b = spawn_app_on(&database).await;
    let workflow = node_a
        .create_workflow(json!({
            "name": "once", "mode": "catch",
            "code": catch_code(
                "import time\ntime.sleep(1)\n\
                 settings['runs'] = settings.get('runs', 0) + 1\n\
                 return {'status_code': 201, 'body': str(settings['runs'])}"
            ),
        }))
        .await;
    let deliver = |node: &TestApp| {
        node.hook(&workflow)
            .header("idempotency-key", "delivery-7")
            .json(&json!({"candidate": 7}))
            .send()
    };
    let calls = [
        deliver(&node_a),
        deliver(&node_b),
        deliver(&node_a),
        deliver(&node_b),
    ];
    let responses: Vec<reqwest::Response> = futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|response| response.expect("hook call"))
        .collect();
    let first = execution_id(&responses[0]);
    for response in responses {
        assert_eq!(execution_id(&response), first);
        assert_eq!(response.status(), 201);
        assert_eq!(response.text().await.unwrap(), "1");
    }
    assert_eq!(node_b.settings(&workflow).await, json!({"runs": 1}));
    assert_eq!(node_a.executions(&workflow).await.len(), 1);
    node_a.stop().await;
    node_b.stop().await;
}

/// How soon a change made through one server must be in effect on the others of its database.
const PROPAGATION: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread")]
async fn a_pause_through_one_server_is_in_effect_on_another_of_its_database_within_a_second() {
    let database = flowd_test_postgres::fresh_database().await;
    let (a, b) = (spawn_app_on(&database).await, spawn_app_on(&database).await);
    let workflow = a
        .create_catch("paused", &catch_code("return {'status_code': 200}"))
        .await;
    // Node b caches the workflow as it serves it.
    assert_eq!(b.call_hook_json(&workflow, &json!({})).await.status(), 200);

    a.patch_workflow(&workflow, json!({"enabled": false})).await;
    eventually(PROPAGATION, "b refuses the paused workflow", || async {
        let status = b.call_hook_json(&workflow, &json!({})).await.status();
        (status == 503).then_some(())
    })
    .await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_alternating_between_servers_of_one_database_each_start_from_the_last_ones_settings()
{
    let database = flowd_test_postgres::fresh_database().await;
    let servers = [spawn_app_on(&database).await, spawn_app_on(&database).await];
    let workflow = servers[0]
        .create_workflow(json!({
            "name": "counter", "mode": "catch", "isolation": "reuse",
            "code": catch_code(
                "settings['count'] = settings.get('count', 0) + 1\n\
                 return {'status_code': 200, 'body': str(settings['count'])}"
            ),
        }))
        .await;
    for count in 1..=6 {
        let app = &servers[count % servers.len()];
        let response = app.call_hook_json(&workflow, &json!({})).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), count.to_string());
    }
    assert_eq!(servers[1].settings(&workflow).await, json!({"count": 6}));
    for app in servers {
        app.stop().await;
    }
}
