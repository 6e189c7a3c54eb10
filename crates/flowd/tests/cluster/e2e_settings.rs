//! A workflow's settings across nodes: each run starts from the settings the database holds, and
//! its change is merged key by key in the database in commit order, so no node's change is lost.

use std::collections::BTreeSet;

use futures::future::join_all;
use serde_json::{json, Value};

use crate::support::*;

/// `POST` `body` to node `node`'s `hook_path` until it is acknowledged (`200`: run and saved);
/// refusals (`503`, with nothing of the call kept) are sent again. Answers the response body.
async fn call_until_acknowledged(
    cluster: &Cluster,
    node: usize,
    hook_path: &str,
    body: &Value,
) -> String {
    let url = format!("{}{hook_path}", cluster.node(node));
    loop {
        let answer = cluster
            .http()
            .post(&url)
            .json(body)
            .send()
            .await
            .expect("the node answers");
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap_or_default();
        match status {
            200 => return text,
            503 => continue,
            other => panic!("node {node} answered {other}: {text}"),
        }
    }
}

fn hook_path(workflow: &Value) -> String {
    workflow["hook_url"].as_str().expect("hook_url").to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_three_nodes_each_writing_their_own_keys_at_once_lose_none() {
    const CALLS_PER_NODE: usize = 30;
    let cluster = Cluster::start(3, &[]).await;
    let workflow = cluster
        .admin(0)
        .create_workflow(catch_workflow(
            "keys",
            "def workflow(_request, settings):\n    settings[_request['key']] = True\n",
            json!({"isolation": "reuse"}),
        ))
        .await;
    let hook = hook_path(&workflow);
    let calls = (0..cluster.len()).flat_map(|node| {
        let (cluster, hook) = (&cluster, &hook);
        (0..CALLS_PER_NODE).map(move |n| async move {
            let body = json!({"key": format!("node{node}-{n}")});
            call_until_acknowledged(cluster, node, hook, &body).await
        })
    });
    join_all(calls).await;

    let id = workflow["id"].as_str().expect("an id");
    let settings = cluster.admin(2).settings(id).await;
    let keys: BTreeSet<&String> = settings["settings"]
        .as_object()
        .expect("settings")
        .keys()
        .collect();
    assert_eq!(keys.len(), 3 * CALLS_PER_NODE, "{settings}");
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_thousand_calls_over_three_nodes_under_max_concurrency_1_count_to_a_thousand() {
    const CALLS: usize = 1000;
    /// Callers at once on each node.
    const CALLERS_PER_NODE: usize = 4;
    let cluster = Cluster::start(3, &[]).await;
    let workflow = cluster
        .admin(0)
        .create_workflow(catch_workflow(
            "counter",
            "def workflow(_request, settings):\n    \
             settings['count'] = settings.get('count', 0) + 1\n    \
             return {'status_code': 200, 'body': str(settings['count'])}\n",
            json!({"isolation": "reuse", "max_concurrency": 1}),
        ))
        .await;
    let hook = hook_path(&workflow);
    let callers = cluster.len() * CALLERS_PER_NODE;
    let counts = join_all((0..callers).map(|caller| {
        let (cluster, hook) = (&cluster, &hook);
        async move {
            let node = caller % cluster.len();
            let mut seen = Vec::new();
            for _ in (caller..CALLS).step_by(callers) {
                let count = call_until_acknowledged(cluster, node, hook, &json!({})).await;
                seen.push(count.parse::<usize>().expect("a count"));
            }
            seen
        }
    }))
    .await;

    // Each acknowledged call saw the one before it: every count from 1 to 1000 exactly once.
    let counts: BTreeSet<usize> = counts.into_iter().flatten().collect();
    assert_eq!(counts, (1..=CALLS).collect::<BTreeSet<_>>());
    let id = workflow["id"].as_str().expect("an id");
    let settings = cluster.admin(1).settings(id).await;
    assert_eq!(settings["settings"]["count"], CALLS, "{settings}");
}
