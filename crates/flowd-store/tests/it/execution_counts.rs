//! Execution counts by status since a time: the console's per-workflow statistics.

use crate::common::*;
use flowd_core::workflow::ExecutionStatus;
use flowd_store::{ExecutionRecord, Store, StoreWrite};

fn at(workflow_id: &str, started_at: i64, status: ExecutionStatus) -> ExecutionRecord {
    ExecutionRecord {
        status,
        started_at,
        ..running(workflow_id, new_id())
    }
}

async fn put_all(store: &dyn Store, executions: Vec<ExecutionRecord>) {
    let writes: Vec<StoreWrite> = executions
        .into_iter()
        .map(StoreWrite::PutExecution)
        .collect();
    store.commit(&writes).await.unwrap();
}

pub async fn counts_by_status_in_status_order(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    use ExecutionStatus::*;
    put_all(
        store,
        vec![
            at(&workflow.id, NOW, Timeout),
            at(&workflow.id, NOW, Success),
            at(&workflow.id, NOW + 1, Error),
            at(&workflow.id, NOW + 2, Success),
            at(&workflow.id, NOW + 3, Running),
            at(&workflow.id, NOW + 4, Success),
        ],
    )
    .await;
    assert_eq!(
        store.count_executions(&workflow.id, NOW).await.unwrap(),
        vec![(Running, 1), (Success, 3), (Error, 1), (Timeout, 1)]
    );
}

pub async fn counts_only_executions_started_since(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    use ExecutionStatus::*;
    put_all(
        store,
        vec![
            at(&workflow.id, NOW - 1, Error),
            at(&workflow.id, NOW, Error),
            at(&workflow.id, NOW + 10, Success),
        ],
    )
    .await;
    assert_eq!(
        store.count_executions(&workflow.id, NOW).await.unwrap(),
        vec![(Success, 1), (Error, 1)]
    );
    assert_eq!(
        store
            .count_executions(&workflow.id, NOW + 11)
            .await
            .unwrap(),
        vec![]
    );
}

pub async fn counts_only_the_workflows_executions(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    put_all(
        store,
        vec![
            at(&workflow.id, NOW, ExecutionStatus::Success),
            at(&other.id, NOW, ExecutionStatus::Error),
            at(&other.id, NOW, ExecutionStatus::Error),
        ],
    )
    .await;
    assert_eq!(
        store.count_executions(&workflow.id, NOW).await.unwrap(),
        vec![(ExecutionStatus::Success, 1)]
    );
    assert_eq!(
        store.count_executions(&new_id(), 0).await.unwrap(),
        vec![],
        "an unknown workflow has no executions"
    );
}
