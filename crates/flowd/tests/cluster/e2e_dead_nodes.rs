//! A node killed with SIGKILL under load: every execution acknowledged to a caller is in the
//! store with its settings change, and the node's running executions become `interrupted` once
//! its lease has expired.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{catch_workflow, eventually, Cluster};

const LEASE_S: &str = "2";

/// Sets the key `k<n>` of the settings to `n`, after sleeping `_request["sleep"]` seconds.
const COUNTING_CODE: &str = "\
import time

def workflow(_request, settings):
    time.sleep(_request.get('sleep', 0))
    settings['k%d' % _request['n']] = _request['n']
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_node_killed_under_load_loses_no_acknowledged_execution_and_its_runs_are_interrupted()
{
    // Nodes 0 and 1 take the load; node 2, which never ran the workflow, reads what was kept.
    let cluster = Cluster::start(3, &["--node-lease-s", LEASE_S]).await;
    let admin = cluster.admin(0);
    let workflow = admin
        .create_workflow(catch_workflow("counted", COUNTING_CODE, json!({})))
        .await;
    let id = workflow["id"].as_str().expect("an id").to_string();
    let hook = workflow["hook_url"]
        .as_str()
        .expect("a hook URL")
        .to_string();
    // A run that is going when the node dies: of a workflow of its own, to be found by it.
    let long = admin
        .create_workflow(catch_workflow(
            "long",
            COUNTING_CODE,
            json!({"timeout_s": 120}),
        ))
        .await;
    let long_id = long["id"].as_str().expect("an id").to_string();
    let long_hook = long["hook_url"].as_str().expect("a hook URL").to_string();
    let reader = cluster.admin(2);

    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let acknowledged: Mutex<Vec<(u64, String)>> = Mutex::new(Vec::new());
    let load = futures::future::join_all((0..6).map(|caller| {
        let url = format!("{}{hook}", cluster.node(caller % 2));
        let (http, next, stop, acknowledged) = (cluster.http(), &next, &stop, &acknowledged);
        async move {
            while !stop.load(Ordering::Relaxed) {
                let n = next.fetch_add(1, Ordering::Relaxed);
                let Ok(answer) = http.post(&url).json(&json!({"n": n})).send().await else {
                    // The node is gone: its callers pause between attempts rather than spin.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                if answer.status() != 200 {
                    continue;
                }
                let body: Value = answer.json().await.unwrap_or(Value::Null);
                if let Some(execution) = body["execution_id"].as_str() {
                    acknowledged
                        .lock()
                        .unwrap()
                        .push((n, execution.to_string()));
                }
            }
        }
    }));
    let kill = async {
        let long_call = cluster
            .http()
            .post(format!("{}{long_hook}", cluster.node(0)))
            .json(&json!({"n": 0, "sleep": 60}))
            .send();
        let long_run = tokio::select! {
            _ = long_call => panic!("the long run answered before its node was killed"),
            long_run = running_execution(&reader, &long_id) => long_run,
        };
        cluster.kill9(0);
        tokio::time::sleep(Duration::from_secs(1)).await;
        stop.store(true, Ordering::Relaxed);
        long_run
    };
    let (_, long_run) = tokio::join!(load, kill);

    let acknowledged = acknowledged.into_inner().unwrap();
    assert!(
        acknowledged.len() >= 20,
        "too little load: {} calls acknowledged",
        acknowledged.len()
    );
    let settings = reader.settings(&id).await;
    for (n, execution) in &acknowledged {
        assert_eq!(
            reader.execution(execution).await["status"],
            "success",
            "acknowledged execution {execution}"
        );
        assert_eq!(
            settings["settings"][format!("k{n}")],
            json!(n),
            "the settings change of acknowledged execution {execution}: {settings}"
        );
    }
    let long_run_id = long_run["id"]
        .as_str()
        .expect("an execution id")
        .to_string();
    eventually(
        Duration::from_secs(20),
        "the killed node's running execution is marked interrupted",
        || {
            let (reader, long_run_id) = (reader.clone(), long_run_id.clone());
            async move {
                (reader.execution(&long_run_id).await["status"] == "interrupted").then_some(())
            }
        },
    )
    .await;
}

/// The workflow's execution recorded `running` (a run longer than the record delay).
async fn running_execution(admin: &crate::support::Admin, workflow_id: &str) -> Value {
    eventually(Duration::from_secs(30), "a run is recorded running", || {
        let (admin, workflow_id) = (admin.clone(), workflow_id.to_string());
        async move {
            admin
                .executions(&workflow_id)
                .await
                .into_iter()
                .find(|execution| execution["status"] == "running")
        }
    })
    .await
}
