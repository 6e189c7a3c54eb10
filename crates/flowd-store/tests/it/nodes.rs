//! Nodes: registration, leases, the reaping of dead nodes, and concurrency slots.

use crate::common::*;
use flowd_core::workflow::ExecutionStatus;
use flowd_store::{ExecutionRecord, NodeRecord, ReapedNode, Store, StoreError, StoreWrite};

/// This store's node, its lease expiring at `lease_expires_at`.
fn this_node(store: &dyn Store, lease_expires_at: i64) -> NodeRecord {
    NodeRecord {
        id: store.node_id().to_string(),
        address: "127.0.0.1:8080".to_string(),
        host: "node-a".to_string(),
        started_at: NOW,
        lease_expires_at,
    }
}

async fn given_node(store: &dyn Store, lease_expires_at: i64) -> NodeRecord {
    let node = this_node(store, lease_expires_at);
    store.register_node(&node).await.expect("register the node");
    node
}

async fn put_all(store: &dyn Store, executions: &[ExecutionRecord]) {
    let writes: Vec<StoreWrite> = executions
        .iter()
        .cloned()
        .map(StoreWrite::PutExecution)
        .collect();
    store.commit(&writes).await.unwrap();
}

fn reaped(node_id: Option<&str>, interrupted: u64, released_slots: u64) -> ReapedNode {
    ReapedNode {
        node_id: node_id.map(str::to_string),
        interrupted,
        released_slots,
        released_async_calls: 0,
    }
}

pub async fn a_registered_node_is_listed_with_its_lease(store: &dyn Store) {
    let node = given_node(store, NOW + 30_000).await;
    assert_eq!(store.nodes().await.unwrap(), vec![node]);
}

pub async fn registering_another_stores_node_is_a_conflict(store: &dyn Store) {
    let node = NodeRecord {
        id: new_id(),
        ..this_node(store, NOW + 30_000)
    };
    let refused = store.register_node(&node).await;
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert_eq!(store.nodes().await.unwrap(), vec![]);
}

pub async fn renewing_a_lease_moves_its_expiry(store: &dyn Store) {
    let node = given_node(store, NOW + 30_000).await;
    assert!(store.renew_node_lease(NOW + 60_000).await.unwrap());
    assert_eq!(
        store.nodes().await.unwrap(),
        vec![NodeRecord {
            lease_expires_at: NOW + 60_000,
            ..node
        }]
    );
}

pub async fn renewing_the_lease_of_an_unregistered_node_answers_false(store: &dyn Store) {
    assert!(!store.renew_node_lease(NOW + 60_000).await.unwrap());
}

pub async fn a_node_whose_lease_lasts_is_not_reaped(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let node = given_node(store, NOW + 30_000).await;
    let run = running(&workflow.id, id_at(1_000));
    put_all(store, std::slice::from_ref(&run)).await;

    assert_eq!(
        store.reap_expired_nodes(NOW + 29_999).await.unwrap(),
        vec![]
    );
    assert_eq!(store.nodes().await.unwrap(), vec![node]);
    assert_eq!(store.execution(&run.id).await.unwrap(), Some(run));
}

pub async fn reaping_a_dead_node_interrupts_its_running_executions_only(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    let node = given_node(store, NOW + 30_000).await;
    let first = running(&workflow.id, id_at(1_000));
    let second = running(&other.id, id_at(1_001));
    let done = ExecutionRecord {
        status: ExecutionStatus::Success,
        ..execution(&workflow.id, id_at(1_002))
    };
    let timed_out = ExecutionRecord {
        status: ExecutionStatus::Timeout,
        fire_at: None,
        ..execution(&workflow.id, id_at(1_003))
    };
    put_all(
        store,
        &[
            first.clone(),
            second.clone(),
            done.clone(),
            timed_out.clone(),
        ],
    )
    .await;

    let now = NOW + 42_000;
    assert_eq!(
        store.reap_expired_nodes(now).await.unwrap(),
        vec![reaped(Some(&node.id), 2, 0)]
    );
    for original in [first, second] {
        assert_eq!(
            store.execution(&original.id).await.unwrap(),
            Some(ExecutionRecord {
                status: ExecutionStatus::Interrupted,
                finished_at: Some(now),
                duration_ms: Some(now - original.started_at),
                ..original
            })
        );
    }
    assert_eq!(store.execution(&done.id).await.unwrap(), Some(done));
    assert_eq!(
        store.execution(&timed_out.id).await.unwrap(),
        Some(timed_out)
    );
}

pub async fn a_reaped_node_is_gone_and_cannot_renew_its_lease(store: &dyn Store) {
    given_node(store, NOW + 30_000).await;
    store.reap_expired_nodes(NOW + 42_000).await.unwrap();
    assert_eq!(store.nodes().await.unwrap(), vec![]);
    assert!(!store.renew_node_lease(NOW + 60_000).await.unwrap());
    assert_eq!(
        store.reap_expired_nodes(NOW + 43_000).await.unwrap(),
        vec![]
    );
}

pub async fn executions_left_running_by_no_registered_node_are_reaped(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let orphan = running(&workflow.id, id_at(1_000));
    put_all(store, std::slice::from_ref(&orphan)).await;

    let now = NOW + 5_000;
    assert_eq!(
        store.reap_expired_nodes(now).await.unwrap(),
        vec![reaped(None, 1, 0)]
    );
    let stored = store.execution(&orphan.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ExecutionStatus::Interrupted);
    assert_eq!(stored.finished_at, Some(now));
}

pub async fn concurrent_reaps_reap_a_dead_node_once(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let node = given_node(store, NOW + 30_000).await;
    put_all(store, &[running(&workflow.id, id_at(1_000))]).await;

    let reaps =
        futures::future::join_all((0..4).map(|n| store.reap_expired_nodes(NOW + 40_000 + n))).await;
    let all: Vec<ReapedNode> = reaps.into_iter().flat_map(Result::unwrap).collect();
    assert_eq!(all, vec![reaped(Some(&node.id), 1, 0)]);
}

pub async fn slots_are_taken_up_to_the_limit(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    given_node(store, NOW + 30_000).await;
    for holder in ["a", "b"] {
        assert!(store
            .acquire_slot(&workflow.id, 2, holder, NOW)
            .await
            .unwrap());
    }
    assert!(!store.acquire_slot(&workflow.id, 2, "c", NOW).await.unwrap());
}

pub async fn a_released_slot_can_be_taken_again(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    given_node(store, NOW + 30_000).await;
    assert!(store.acquire_slot(&workflow.id, 1, "a", NOW).await.unwrap());
    store.release_slot(&workflow.id, "a").await.unwrap();
    assert!(store.acquire_slot(&workflow.id, 1, "b", NOW).await.unwrap());
}

pub async fn releasing_a_slot_not_held_changes_nothing(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    given_node(store, NOW + 30_000).await;
    assert!(store.acquire_slot(&workflow.id, 1, "a", NOW).await.unwrap());
    store.release_slot(&workflow.id, "b").await.unwrap();
    assert!(!store.acquire_slot(&workflow.id, 1, "c", NOW).await.unwrap());
}

pub async fn slots_of_one_workflow_leave_another_alone(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    given_node(store, NOW + 30_000).await;
    assert!(store.acquire_slot(&workflow.id, 1, "a", NOW).await.unwrap());
    assert!(store.acquire_slot(&other.id, 1, "b", NOW).await.unwrap());
}

pub async fn a_lowered_limit_counts_the_slots_below_it(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    given_node(store, NOW + 30_000).await;
    for holder in ["a", "b", "c"] {
        assert!(store
            .acquire_slot(&workflow.id, 3, holder, NOW)
            .await
            .unwrap());
    }
    store.release_slot(&workflow.id, "a").await.unwrap();
    assert!(store.acquire_slot(&workflow.id, 1, "d", NOW).await.unwrap());
    assert!(!store.acquire_slot(&workflow.id, 1, "e", NOW).await.unwrap());
}

pub async fn concurrent_acquires_never_exceed_the_limit(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    given_node(store, NOW + 30_000).await;
    let holders: Vec<String> = (0..12).map(|n| format!("holder-{n}")).collect();
    let acquired = futures::future::join_all(
        holders
            .iter()
            .map(|holder| store.acquire_slot(&workflow.id, 3, holder, NOW)),
    )
    .await;
    let taken = acquired
        .into_iter()
        .filter(|taken| *taken.as_ref().unwrap())
        .count();
    assert_eq!(taken, 3);
}

pub async fn a_dead_nodes_slots_are_released_when_it_is_reaped(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let node = given_node(store, NOW + 30_000).await;
    assert!(store.acquire_slot(&workflow.id, 1, "a", NOW).await.unwrap());

    assert_eq!(
        store.reap_expired_nodes(NOW + 42_000).await.unwrap(),
        vec![reaped(Some(&node.id), 0, 1)]
    );
    given_node(store, NOW + 72_000).await;
    assert!(store
        .acquire_slot(&workflow.id, 1, "b", NOW + 42_000)
        .await
        .unwrap());
}

pub async fn a_slot_for_an_unregistered_node_is_not_found(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let refused = store.acquire_slot(&workflow.id, 1, "a", NOW).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
}

pub async fn a_slot_of_a_missing_workflow_is_not_found(store: &dyn Store) {
    given_node(store, NOW + 30_000).await;
    let refused = store.acquire_slot(&new_id(), 1, "a", NOW).await;
    assert!(
        matches!(refused, Err(StoreError::NotFound(_))),
        "{refused:?}"
    );
}

pub async fn a_deleted_workflow_takes_its_slots_with_it(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let node = given_node(store, NOW + 30_000).await;
    assert!(store.acquire_slot(&workflow.id, 1, "a", NOW).await.unwrap());
    assert!(store.delete_workflow(&workflow.id).await.unwrap());
    assert_eq!(
        store.reap_expired_nodes(NOW + 42_000).await.unwrap(),
        vec![reaped(Some(&node.id), 0, 0)]
    );
}
