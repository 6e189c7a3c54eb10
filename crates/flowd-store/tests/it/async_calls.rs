//! The durable queue of asynchronous calls.

use crate::common::*;
use flowd_core::workflow::Trigger;
use flowd_store::{
    AsyncCallRecord, AsyncCallState, Enqueued, NextAttempt, NodeRecord, QueueBound, QueuedRequest,
    ReapedNode, Store, StoredResponse,
};

const ROOMY: QueueBound = QueueBound {
    total: 100,
    per_workflow: 100,
};

fn call(workflow_id: &str, enqueued_at: i64) -> AsyncCallRecord {
    let id = new_id();
    AsyncCallRecord {
        token: format!("token-{id}"),
        execution_id: id.clone(),
        attempt: 1,
        trigger: Trigger::Catch,
        not_before: None,
        id,
        workflow_id: workflow_id.to_string(),
        request: QueuedRequest {
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-Name".into(), "Jos\u{e9}".into()),
            ],
            query: Some("a=1&a=2".into()),
            body: b"{\"n\": 1}\0\xff".to_vec(),
        },
        enqueued_at,
        state: AsyncCallState::Queued,
    }
}

async fn enqueued(store: &dyn Store, workflow_id: &str, enqueued_at: i64) -> AsyncCallRecord {
    let call = call(workflow_id, enqueued_at);
    assert_eq!(
        store.enqueue_async_call(&call, ROOMY).await.unwrap(),
        Enqueued::Queued
    );
    call
}

fn ids(calls: &[AsyncCallRecord]) -> Vec<&str> {
    calls.iter().map(|call| call.id.as_str()).collect()
}

pub async fn an_enqueued_call_reads_back_by_its_token(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    assert_eq!(
        store.async_call_by_token(&call.token).await.unwrap(),
        Some(call)
    );
    assert_eq!(store.async_call_by_token("nope").await.unwrap(), None);
}

pub async fn a_full_queue_refuses_and_writes_nothing(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &workflow.team_id, "other").await;
    let bound = QueueBound {
        total: 3,
        per_workflow: 2,
    };
    for _ in 0..2 {
        let call = call(&workflow.id, NOW);
        assert_eq!(
            store.enqueue_async_call(&call, bound).await.unwrap(),
            Enqueued::Queued
        );
    }
    let third = call(&workflow.id, NOW);
    assert_eq!(
        store.enqueue_async_call(&third, bound).await.unwrap(),
        Enqueued::Full
    );
    assert_eq!(store.async_call_by_token(&third.token).await.unwrap(), None);
    let of_other = call(&other.id, NOW);
    assert_eq!(
        store.enqueue_async_call(&of_other, bound).await.unwrap(),
        Enqueued::Queued
    );
    assert_eq!(
        store
            .enqueue_async_call(&call(&other.id, NOW), bound)
            .await
            .unwrap(),
        Enqueued::Full
    );
    assert_eq!(store.async_queue_depth(None).await.unwrap(), 3);
    assert_eq!(
        store.async_queue_depth(Some(&workflow.id)).await.unwrap(),
        2
    );
}

pub async fn claims_take_a_workflows_calls_oldest_first(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &workflow.team_id, "other").await;
    let second = enqueued(store, &workflow.id, NOW + 1).await;
    let first = enqueued(store, &workflow.id, NOW).await;
    let third = enqueued(store, &workflow.id, NOW + 2).await;
    enqueued(store, &other.id, NOW).await;
    let claimed = store
        .claim_async_calls(&workflow.id, 2, NOW + 10, NOW + 1000)
        .await
        .unwrap();
    assert_eq!(ids(&claimed), [first.id.as_str(), second.id.as_str()]);
    assert_eq!(
        claimed[0].state,
        AsyncCallState::Claimed {
            lease_until: NOW + 1000,
            node_id: store.node_id().to_string(),
        }
    );
    let rest = store
        .claim_async_calls(&workflow.id, 10, NOW + 10, NOW + 1000)
        .await
        .unwrap();
    assert_eq!(ids(&rest), [third.id.as_str()]);
}

pub async fn a_claim_whose_lease_ended_is_claimed_again(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    store
        .claim_async_calls(&workflow.id, 1, NOW, NOW + 100)
        .await
        .unwrap();
    assert!(store
        .claim_async_calls(&workflow.id, 1, NOW + 99, NOW + 200)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.workflows_with_async_calls(NOW + 99).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        store.workflows_with_async_calls(NOW + 101).await.unwrap(),
        vec![workflow.id.clone()]
    );
    let again = store
        .claim_async_calls(&workflow.id, 1, NOW + 101, NOW + 300)
        .await
        .unwrap();
    assert_eq!(ids(&again), [call.id.as_str()]);
}

pub async fn a_finished_call_keeps_its_response_and_leaves_the_queue(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    store
        .claim_async_calls(&workflow.id, 1, NOW, NOW + 100)
        .await
        .unwrap();
    let response = StoredResponse {
        status: 201,
        headers: vec![("X-Out".into(), "\u{ff}".into())],
        body: b"made\0".to_vec(),
    };
    store
        .finish_async_call(&call.id, &response, NOW + 5)
        .await
        .unwrap();
    let done = store
        .async_call_by_token(&call.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        done.state,
        AsyncCallState::Done {
            response,
            finished_at: NOW + 5
        }
    );
    assert_eq!(done.request, QueuedRequest::default());
    assert_eq!(store.async_queue_depth(None).await.unwrap(), 0);
    assert!(store
        .workflows_with_async_calls(NOW + 1000)
        .await
        .unwrap()
        .is_empty());
}

pub async fn released_calls_are_queued_again(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let one = enqueued(store, &workflow.id, NOW).await;
    enqueued(store, &workflow.id, NOW + 1).await;
    store
        .claim_async_calls(&workflow.id, 2, NOW, NOW + 100)
        .await
        .unwrap();
    store.release_async_call(&one.id).await.unwrap();
    assert_eq!(
        ids(&store
            .claim_async_calls(&workflow.id, 2, NOW, NOW + 100)
            .await
            .unwrap()),
        [one.id.as_str()]
    );
}

pub async fn a_call_of_a_missing_workflow_is_not_found(store: &dyn Store) {
    assert_not_found(store.enqueue_async_call(&call("missing", NOW), ROOMY).await);
}

pub async fn deleting_a_workflow_deletes_its_calls(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    assert!(store.delete_workflow(&workflow.id).await.unwrap());
    assert_eq!(store.async_call_by_token(&call.token).await.unwrap(), None);
    assert_eq!(store.async_queue_depth(None).await.unwrap(), 0);
}

/// Registers this store's node, its lease expiring at `lease_expires_at`.
async fn given_node(store: &dyn Store, lease_expires_at: i64) {
    let node = NodeRecord {
        id: store.node_id().to_string(),
        address: "127.0.0.1:8080".to_string(),
        host: "node-a".to_string(),
        started_at: NOW,
        lease_expires_at,
    };
    store.register_node(&node).await.expect("register the node");
}

/// A claim of `workflow_id`'s calls at `now` whose lease lasts far beyond any reap of the test.
async fn claim_all(store: &dyn Store, workflow_id: &str, now: i64) -> Vec<AsyncCallRecord> {
    store
        .claim_async_calls(workflow_id, 10, now, now + 10_000_000)
        .await
        .unwrap()
}

fn state_of(calls: Option<AsyncCallRecord>) -> Option<AsyncCallState> {
    calls.map(|call| call.state)
}

pub async fn a_claimed_call_carries_the_claiming_node(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    given_node(store, NOW + 30_000).await;
    claim_all(store, &workflow.id, NOW).await;
    assert_eq!(
        state_of(store.async_call_by_token(&call.token).await.unwrap()),
        Some(AsyncCallState::Claimed {
            lease_until: NOW + 10_000_000,
            node_id: store.node_id().to_string(),
        })
    );
}

pub async fn reaping_a_dead_node_queues_its_claimed_calls_again(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    given_node(store, NOW + 30_000).await;
    claim_all(store, &workflow.id, NOW).await;

    let reaped = store.reap_expired_nodes(NOW + 42_000).await.unwrap();

    assert_eq!(
        reaped,
        vec![ReapedNode {
            node_id: Some(store.node_id().to_string()),
            interrupted: 0,
            released_slots: 0,
            released_async_calls: 1,
        }]
    );
    assert_eq!(
        state_of(store.async_call_by_token(&call.token).await.unwrap()),
        Some(AsyncCallState::Queued)
    );
    assert_eq!(
        ids(&claim_all(store, &workflow.id, NOW + 42_001).await),
        [call.id.as_str()]
    );
}

pub async fn a_reap_leaves_the_claimed_calls_of_a_live_node(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    enqueued(store, &workflow.id, NOW).await;
    given_node(store, NOW + 30_000).await;
    claim_all(store, &workflow.id, NOW).await;

    assert_eq!(
        store.reap_expired_nodes(NOW + 29_999).await.unwrap(),
        vec![]
    );

    assert!(claim_all(store, &workflow.id, NOW + 29_999)
        .await
        .is_empty());
}

pub async fn calls_claimed_by_no_registered_node_are_queued_again_by_a_reap(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    claim_all(store, &workflow.id, NOW).await;

    let reaped = store.reap_expired_nodes(NOW + 1_000).await.unwrap();

    assert_eq!(
        reaped,
        vec![ReapedNode {
            node_id: None,
            interrupted: 0,
            released_slots: 0,
            released_async_calls: 1,
        }]
    );
    assert_eq!(
        ids(&claim_all(store, &workflow.id, NOW + 1_001).await),
        [call.id.as_str()]
    );
}

/// A retry of a scheduled run of `workflow_id`, waiting until `not_before`.
async fn waiting_retry(
    store: &dyn Store,
    workflow_id: &str,
    enqueued_at: i64,
    not_before: i64,
) -> AsyncCallRecord {
    let retry = AsyncCallRecord {
        execution_id: new_id(),
        attempt: 2,
        trigger: Trigger::Pull,
        not_before: Some(not_before),
        request: QueuedRequest::default(),
        ..call(workflow_id, enqueued_at)
    };
    assert_eq!(
        store.enqueue_async_call(&retry, ROOMY).await.unwrap(),
        Enqueued::Queued
    );
    retry
}

pub async fn a_call_is_not_claimed_before_its_not_before(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let retry = waiting_retry(store, &workflow.id, NOW, NOW + 500).await;

    assert!(store
        .workflows_with_async_calls(NOW + 499)
        .await
        .unwrap()
        .is_empty());
    assert!(claim_all(store, &workflow.id, NOW + 499).await.is_empty());
    assert_eq!(
        store.workflows_with_async_calls(NOW + 500).await.unwrap(),
        vec![workflow.id.clone()]
    );
    let claimed = claim_all(store, &workflow.id, NOW + 500).await;
    assert_eq!(ids(&claimed), [retry.id.as_str()]);
    assert_eq!(
        (
            claimed[0].execution_id.as_str(),
            claimed[0].attempt,
            claimed[0].trigger
        ),
        (retry.execution_id.as_str(), 2, Trigger::Pull)
    );
}

pub async fn a_waiting_retry_does_not_hold_back_the_calls_after_it(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    waiting_retry(store, &workflow.id, NOW, NOW + 10_000).await;
    let later = enqueued(store, &workflow.id, NOW + 1).await;

    let claimed = claim_all(store, &workflow.id, NOW + 2).await;

    assert_eq!(ids(&claimed), [later.id.as_str()]);
}

pub async fn a_retried_call_is_queued_as_its_next_attempt(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let call = enqueued(store, &workflow.id, NOW).await;
    claim_all(store, &workflow.id, NOW).await;
    let next = NextAttempt {
        execution_id: new_id(),
        attempt: 2,
        not_before: NOW + 300,
    };

    store.retry_async_call(&call.id, &next).await.unwrap();

    let waiting = store
        .async_call_by_token(&call.token)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(waiting.state, AsyncCallState::Queued);
    assert_eq!(
        (
            waiting.execution_id.as_str(),
            waiting.attempt,
            waiting.not_before
        ),
        (next.execution_id.as_str(), 2, Some(NOW + 300))
    );
    assert_eq!(waiting.request, call.request);
    assert!(claim_all(store, &workflow.id, NOW + 299).await.is_empty());
    assert_eq!(
        ids(&claim_all(store, &workflow.id, NOW + 300).await),
        [call.id.as_str()]
    );
}
