//! Retention: which executions `prune_executions` deletes, and the workflows' own retention.

use flowd_core::retention::{Retention, RetentionCut};
use flowd_core::workflow::ExecutionStatus;
use flowd_store::{ExecutionRecord, Store, StoreWrite, WorkflowRecord, WorkflowRetention};

use crate::common::*;

/// `count` finished executions of `workflow_id`, one per millisecond from `start_ms` (ids and
/// start times alike), oldest first.
fn series(workflow_id: &str, start_ms: u64, count: u64) -> Vec<ExecutionRecord> {
    (0..count)
        .map(|i| ExecutionRecord {
            status: ExecutionStatus::Success,
            started_at: i64::try_from(start_ms + i).unwrap(),
            fire_at: None,
            ..execution(workflow_id, id_at(start_ms + i))
        })
        .collect()
}

async fn put_all(store: &dyn Store, executions: &[ExecutionRecord]) {
    let writes: Vec<StoreWrite> = executions
        .iter()
        .cloned()
        .map(StoreWrite::PutExecution)
        .collect();
    store.commit(&writes).await.unwrap();
}

async fn stored_ids(store: &dyn Store, workflow_id: &str) -> Vec<String> {
    let query = flowd_store::ExecutionQuery {
        workflow_id: Some(workflow_id.to_string()),
        limit: 1000,
        ..Default::default()
    };
    let mut ids: Vec<String> = store
        .list_executions(&query)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.id)
        .collect();
    ids.reverse();
    ids
}

fn ids(executions: &[ExecutionRecord]) -> Vec<String> {
    executions.iter().map(|e| e.id.clone()).collect()
}

const KEEP_3: RetentionCut = RetentionCut {
    started_before: None,
    keep_newest: Some(3),
};

pub async fn prune_keeps_the_newest_executions(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let all = series(&workflow.id, 1_000, 8);
    put_all(store, &all).await;

    let deleted = store.prune_executions(&workflow.id, &KEEP_3, 100).await;

    assert_eq!(deleted.unwrap(), 5);
    assert_eq!(stored_ids(store, &workflow.id).await, ids(&all[5..]));
}

pub async fn prune_deletes_executions_started_before_the_cut(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let all = series(&workflow.id, 1_000, 6);
    put_all(store, &all).await;
    let cut = RetentionCut {
        started_before: Some(1_004),
        keep_newest: None,
    };

    assert_eq!(
        store
            .prune_executions(&workflow.id, &cut, 100)
            .await
            .unwrap(),
        4
    );
    assert_eq!(stored_ids(store, &workflow.id).await, ids(&all[4..]));
}

pub async fn prune_deletes_at_most_the_limit_oldest_first(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let all = series(&workflow.id, 1_000, 8);
    put_all(store, &all).await;

    assert_eq!(
        store
            .prune_executions(&workflow.id, &KEEP_3, 2)
            .await
            .unwrap(),
        2
    );
    assert_eq!(stored_ids(store, &workflow.id).await, ids(&all[2..]));
}

pub async fn prune_never_deletes_a_running_execution(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let old_running = running(&workflow.id, id_at(999));
    put_all(store, std::slice::from_ref(&old_running)).await;
    let all = series(&workflow.id, 1_000, 5);
    put_all(store, &all).await;
    let cut = RetentionCut {
        started_before: Some(i64::MAX),
        keep_newest: Some(1),
    };

    assert_eq!(
        store
            .prune_executions(&workflow.id, &cut, 100)
            .await
            .unwrap(),
        5
    );
    assert_eq!(stored_ids(store, &workflow.id).await, vec![old_running.id]);
}

pub async fn prune_leaves_other_workflows_alone(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    put_all(store, &series(&workflow.id, 1_000, 5)).await;
    let others = series(&other.id, 2_000, 5);
    put_all(store, &others).await;

    store
        .prune_executions(&workflow.id, &KEEP_3, 100)
        .await
        .unwrap();

    assert_eq!(stored_ids(store, &other.id).await, ids(&others));
}

pub async fn prune_within_retention_deletes_nothing(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let all = series(&workflow.id, 1_000, 3);
    put_all(store, &all).await;
    let cut = RetentionCut {
        started_before: Some(1_000),
        keep_newest: Some(3),
    };

    assert_eq!(
        store
            .prune_executions(&workflow.id, &cut, 100)
            .await
            .unwrap(),
        0
    );
    assert_eq!(stored_ids(store, &workflow.id).await, ids(&all));
}

pub async fn workflow_retentions_lists_every_workflow_with_its_own(store: &dyn Store) {
    let (_, with_own) = given_team_with_workflow(store).await;
    let other_team = given_team(store, "globex").await;
    let without = WorkflowRecord {
        retention: None,
        ..workflow(&other_team.id, "plain")
    };
    store
        .create_workflow(&without, &version(&without.id, 1), &Default::default())
        .await
        .unwrap();

    let mut listed = store.workflow_retentions().await.unwrap();
    listed.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));

    let mut expected = vec![
        WorkflowRetention {
            workflow_id: with_own.id.clone(),
            retention: Some(Retention {
                days: Some(7),
                max_executions: Some(500),
            }),
        },
        WorkflowRetention {
            workflow_id: without.id.clone(),
            retention: None,
        },
    ];
    expected.sort_by(|a, b| a.workflow_id.cmp(&b.workflow_id));
    assert_eq!(listed, expected);
}
