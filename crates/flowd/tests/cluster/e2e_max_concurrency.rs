//! `max_concurrency` holds across the cluster: with a limit of 1, no two executions of the
//! workflow run at once on any node, and a node that dies holding the slot gives it back when its
//! lease expires.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{catch_workflow, eventually, Cluster};

/// A lease short enough that a killed node's slot comes back within the test.
const LEASE_S: &str = "2";

/// Sleeps `_request["sleep"]` seconds (0.02 by default) and answers when it started and ended.
const TIMED_CODE: &str = "\
import json, time

def workflow(_request, settings):
    start = time.time()
    time.sleep(_request.get('sleep', 0.02))
    return {'status_code': 200, 'body': json.dumps({'start': start, 'end': time.time()})}
";

async fn limited_workflow(cluster: &Cluster) -> Value {
    cluster
        .admin(0)
        .create_workflow(catch_workflow(
            "limited",
            TIMED_CODE,
            json!({"max_concurrency": 1, "timeout_s": 120}),
        ))
        .await
}

/// Calls the hook of `workflow` on node `node` with `body`: the status and the answer's body.
async fn call(cluster: &Cluster, node: usize, workflow: &Value, body: Value) -> (u16, String) {
    let url = format!(
        "{}{}",
        cluster.node(node),
        workflow["hook_url"].as_str().expect("a hook URL")
    );
    match cluster.http().post(url).json(&body).send().await {
        Ok(answer) => {
            let status = answer.status().as_u16();
            (status, answer.text().await.unwrap_or_default())
        }
        Err(error) => (0, error.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_limit_of_one_never_has_two_executions_running_at_once_across_three_nodes() {
    let cluster = Cluster::start(3, &["--node-lease-s", LEASE_S]).await;
    let workflow = limited_workflow(&cluster).await;

    const CALLERS: usize = 9;
    const CALLS_EACH: usize = 6;
    let callers = (0..CALLERS).map(|caller| {
        let cluster = &cluster;
        let workflow = &workflow;
        async move {
            let mut runs = Vec::new();
            for _ in 0..CALLS_EACH {
                let (status, body) = call(cluster, caller % 3, workflow, json!({})).await;
                assert_eq!(
                    status,
                    200,
                    "caller {caller} on node {}: {body}",
                    caller % 3
                );
                let times: Value = serde_json::from_str(&body).expect("the run's times");
                runs.push((
                    times["start"].as_f64().expect("a start"),
                    times["end"].as_f64().expect("an end"),
                ));
            }
            runs
        }
    });
    let mut runs: Vec<(f64, f64)> = futures::future::join_all(callers).await.concat();
    assert_eq!(runs.len(), CALLERS * CALLS_EACH);

    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    for pair in runs.windows(2) {
        let (earlier, later) = (pair[0], pair[1]);
        assert!(
            later.0 >= earlier.1,
            "two executions overlapped: one ran {earlier:?}, another started at {}",
            later.0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_the_slot_of_a_killed_node_comes_back_when_its_lease_expires() {
    let cluster = Cluster::start(2, &["--node-lease-s", LEASE_S]).await;
    let workflow = limited_workflow(&cluster).await;
    let id = workflow["id"].as_str().expect("an id").to_string();
    let admin = cluster.admin(1);

    let holder = tokio::spawn({
        let http = cluster.http().clone();
        let url = format!(
            "{}{}",
            cluster.node(0),
            workflow["hook_url"].as_str().unwrap()
        );
        async move { http.post(url).json(&json!({"sleep": 60})).send().await }
    });
    let running = eventually(
        Duration::from_secs(30),
        "the long run is recorded running",
        || {
            let admin = admin.clone();
            let id = id.clone();
            async move {
                let executions = admin.executions(&id).await;
                executions
                    .into_iter()
                    .find(|execution| execution["status"] == "running")
            }
        },
    )
    .await;
    cluster.kill9(0);
    let _ = holder.await;

    let asked = Instant::now();
    let (status, body) = call(&cluster, 1, &workflow, json!({})).await;
    assert_eq!(
        status, 200,
        "the call waiting for the dead node's slot: {body}"
    );
    assert!(
        asked.elapsed() < Duration::from_secs(20),
        "the slot came back only after {:?}",
        asked.elapsed()
    );
    let running_id = running["id"].as_str().expect("an execution id");
    assert_eq!(admin.execution(running_id).await["status"], "interrupted");
}
