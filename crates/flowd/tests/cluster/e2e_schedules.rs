//! A schedule fires once per fire time across the cluster, and keeps firing when a node dies.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::Cluster;

/// A lease short enough that a killed node's runs are released within the test.
const LEASE_S: &str = "2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_three_nodes_fire_an_every_second_schedule_once_per_fire_time_even_after_one_is_killed()
{
    let flags = ["--node-lease-s", LEASE_S];
    let mut cluster = Cluster::start(1, &flags).await;
    let admin = cluster.admin(0);
    let workflow = admin
        .create_workflow(json!({
            "name": "tick",
            "mode": "pull",
            "code": "def workflow(settings):\n    return None\n",
            "schedule": {"every": "1s"},
        }))
        .await;
    let id = workflow["id"].as_str().expect("an id").to_string();
    // Started after the schedule exists, the others read it from the store at their start.
    cluster.add_node(&flags).await;
    cluster.add_node(&flags).await;

    tokio::time::sleep(Duration::from_secs(20)).await;
    cluster.kill9(0);
    let killed_at = chrono::Utc::now();
    tokio::time::sleep(Duration::from_secs(10)).await;

    let executions = cluster.admin(1).executions(&id).await;
    let mut runs_per_fire_time: HashMap<String, usize> = HashMap::new();
    for execution in &executions {
        let fire_at = execution["fire_at"]
            .as_str()
            .expect("a scheduled run's fire time");
        *runs_per_fire_time.entry(fire_at.to_string()).or_default() += 1;
    }
    let twice: Vec<_> = runs_per_fire_time
        .iter()
        .filter(|(_, runs)| **runs > 1)
        .collect();
    assert!(twice.is_empty(), "fire times run more than once: {twice:?}");
    assert!(
        runs_per_fire_time.len() >= 25,
        "only {} fire times of about 30 were claimed",
        runs_per_fire_time.len()
    );
    let succeeded_after_kill = executions
        .iter()
        .filter(|execution| execution["status"] == "success")
        .filter(|execution| started_after(execution, killed_at + chrono::Duration::seconds(3)))
        .count();
    assert!(
        succeeded_after_kill >= 4,
        "the schedule did not keep running on the live nodes after the kill: {}",
        summary(&executions)
    );
}

fn started_after(execution: &Value, moment: chrono::DateTime<chrono::Utc>) -> bool {
    execution["started_at"]
        .as_str()
        .and_then(|text| chrono::DateTime::parse_from_rfc3339(text).ok())
        .is_some_and(|started| started > moment)
}

/// Each execution's fire time and status, oldest first: what a failure shows.
fn summary(executions: &[Value]) -> String {
    executions
        .iter()
        .rev()
        .map(|execution| format!("{} {}", execution["fire_at"], execution["status"]))
        .collect::<Vec<_>>()
        .join("\n")
}
