//! A key revoked through one node is refused on every node at once: each node keeps the keys it
//! looked up in memory, and drops them when the database announces a key or team change.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

/// `GET /api/v1/workflows` on node `i` with `key`: the status.
async fn listing_with(cluster: &Cluster, i: usize, key: &str) -> u16 {
    cluster
        .http()
        .get(format!("{}/api/v1/workflows", cluster.node(i)))
        .bearer_auth(key)
        .send()
        .await
        .expect("the node answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_a_key_revoked_through_one_node_is_refused_on_another_within_a_second() {
    let cluster = Cluster::start(2, &[]).await;
    let (status, created) = cluster
        .admin(0)
        .call(
            reqwest::Method::POST,
            "/api-keys",
            Some(json!({"name": "ci", "role": "viewer", "team": "default"})),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"]
        .as_str()
        .expect("the key's secret")
        .to_string();
    let id = created["id"].as_str().expect("the key's id").to_string();
    // Node 1 looks the key up and keeps it.
    assert_eq!(listing_with(&cluster, 1, &key).await, 200);

    let (status, answer) = cluster
        .admin(0)
        .call(reqwest::Method::DELETE, &format!("/api-keys/{id}"), None)
        .await;
    assert!((200..300).contains(&status), "{status} {answer}");
    eventually(
        Duration::from_secs(1),
        "node 1 refuses the key revoked through node 0",
        || async { (listing_with(&cluster, 1, &key).await == 401).then_some(()) },
    )
    .await;
}
