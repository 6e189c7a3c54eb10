//! Idempotency keys of hook calls: claimed once per workflow and key, answered with the stored
//! response of the execution that claimed them, expired and swept.

use flowd_store::{
    IdempotencyClaim, IdempotencyClaimOutcome, IdempotencyRecord, Store, StoreError, StoreWrite,
    StoredResponse,
};

use crate::common::*;

const DAY_MS: i64 = 86_400_000;

fn claim(workflow_id: &str, key: &str, execution_id: &str) -> IdempotencyClaim {
    IdempotencyClaim {
        workflow_id: workflow_id.to_string(),
        key: key.to_string(),
        request_digest: "digest-a".to_string(),
        execution_id: execution_id.to_string(),
        claimed_at: NOW,
        expires_at: NOW + DAY_MS,
        stale_before: NOW - 60_000,
    }
}

fn response() -> StoredResponse {
    StoredResponse {
        status: 201,
        headers: vec![
            ("Content-Type".to_string(), "text/csv".to_string()),
            ("X-Row".to_string(), "José".to_string()),
        ],
        body: b"id,name\n\x001,\xff\n".to_vec(),
    }
}

fn completion(workflow_id: &str, key: &str, execution_id: &str) -> StoreWrite {
    StoreWrite::CompleteIdempotencyKey {
        workflow_id: workflow_id.to_string(),
        key: key.to_string(),
        execution_id: execution_id.to_string(),
        response: response(),
    }
}

async fn held(store: &dyn Store, claim: &IdempotencyClaim) -> IdempotencyRecord {
    match store.claim_idempotency_key(claim).await.unwrap() {
        IdempotencyClaimOutcome::Held(record) => record,
        IdempotencyClaimOutcome::Claimed => panic!("the key was claimed again"),
    }
}

pub async fn a_free_key_is_claimed(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let first = claim(&workflow.id, "delivery-1", "e1");
    assert_eq!(
        store.claim_idempotency_key(&first).await.unwrap(),
        IdempotencyClaimOutcome::Claimed
    );
    let stored = store
        .idempotency_key(&workflow.id, "delivery-1")
        .await
        .unwrap()
        .expect("the claimed key");
    assert_eq!(stored.execution_id, "e1");
    assert_eq!(stored.request_digest, "digest-a");
    assert_eq!(stored.expires_at, NOW + DAY_MS);
    assert_eq!(stored.response, None);
}

pub async fn a_held_key_answers_its_holder_and_keeps_it(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    let repeat = IdempotencyClaim {
        request_digest: "digest-b".to_string(),
        claimed_at: NOW + 1000,
        ..claim(&workflow.id, "k", "e2")
    };
    let holder = held(store, &repeat).await;
    assert_eq!(holder.execution_id, "e1");
    assert_eq!(holder.request_digest, "digest-a");
}

pub async fn a_response_committed_with_its_execution_is_stored(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let execution_id = new_id();
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", &execution_id))
        .await
        .unwrap();
    store
        .commit(&[
            StoreWrite::PutExecution(execution(&workflow.id, execution_id.clone())),
            completion(&workflow.id, "k", &execution_id),
        ])
        .await
        .unwrap();
    let holder = held(store, &claim(&workflow.id, "k", "e2")).await;
    assert_eq!(holder.execution_id, execution_id);
    assert_eq!(holder.response, Some(response()));
}

pub async fn a_response_whose_commit_fails_is_not_stored(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    let orphan = execution("no-such-workflow", new_id());
    let result = store
        .commit(&[
            completion(&workflow.id, "k", "e1"),
            StoreWrite::PutExecution(orphan),
        ])
        .await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
    let stored = store.idempotency_key(&workflow.id, "k").await.unwrap();
    assert_eq!(stored.expect("the key").response, None);
}

pub async fn an_expired_key_is_claimed_again_without_its_response(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    store
        .commit(&[completion(&workflow.id, "k", "e1")])
        .await
        .unwrap();
    let later = IdempotencyClaim {
        request_digest: "digest-b".to_string(),
        claimed_at: NOW + DAY_MS,
        expires_at: NOW + 2 * DAY_MS,
        stale_before: NOW + DAY_MS - 60_000,
        ..claim(&workflow.id, "k", "e2")
    };
    assert_eq!(
        store.claim_idempotency_key(&later).await.unwrap(),
        IdempotencyClaimOutcome::Claimed
    );
    let stored = store.idempotency_key(&workflow.id, "k").await.unwrap();
    let stored = stored.expect("the key");
    assert_eq!(stored.execution_id, "e2");
    assert_eq!(stored.request_digest, "digest-b");
    assert_eq!(stored.response, None);
}

pub async fn a_stale_key_without_response_is_taken_over(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    let after_a_crash = IdempotencyClaim {
        claimed_at: NOW + 120_000,
        stale_before: NOW + 1,
        ..claim(&workflow.id, "k", "e2")
    };
    assert_eq!(
        store.claim_idempotency_key(&after_a_crash).await.unwrap(),
        IdempotencyClaimOutcome::Claimed
    );
}

pub async fn a_running_key_not_yet_stale_is_not_taken_over(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    let soon_after = IdempotencyClaim {
        claimed_at: NOW + 1000,
        stale_before: NOW,
        ..claim(&workflow.id, "k", "e2")
    };
    assert_eq!(held(store, &soon_after).await.execution_id, "e1");
}

pub async fn concurrent_claims_of_one_key_claim_it_once(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let claims: Vec<IdempotencyClaim> = (0..8)
        .map(|n| claim(&workflow.id, "k", &format!("e{n}")))
        .collect();
    let outcomes =
        futures::future::join_all(claims.iter().map(|c| store.claim_idempotency_key(c))).await;
    let claimed = outcomes
        .into_iter()
        .map(Result::unwrap)
        .filter(|outcome| *outcome == IdempotencyClaimOutcome::Claimed)
        .count();
    assert_eq!(claimed, 1);
}

pub async fn a_response_for_a_key_taken_over_changes_nothing(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    let takeover = IdempotencyClaim {
        claimed_at: NOW + DAY_MS,
        expires_at: NOW + 2 * DAY_MS,
        ..claim(&workflow.id, "k", "e2")
    };
    store.claim_idempotency_key(&takeover).await.unwrap();
    store
        .commit(&[completion(&workflow.id, "k", "e1")])
        .await
        .unwrap();
    let stored = store.idempotency_key(&workflow.id, "k").await.unwrap();
    let stored = stored.expect("the key");
    assert_eq!(stored.execution_id, "e2");
    assert_eq!(stored.response, None);
}

pub async fn release_gives_back_a_key_without_response(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    assert!(store
        .release_idempotency_key(&workflow.id, "k", "e1")
        .await
        .unwrap());
    assert_eq!(
        store
            .claim_idempotency_key(&claim(&workflow.id, "k", "e2"))
            .await
            .unwrap(),
        IdempotencyClaimOutcome::Claimed
    );
}

pub async fn release_keeps_a_completed_key_and_another_executions_key(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    for key in ["done", "running"] {
        store
            .claim_idempotency_key(&claim(&workflow.id, key, "e1"))
            .await
            .unwrap();
    }
    store
        .commit(&[completion(&workflow.id, "done", "e1")])
        .await
        .unwrap();
    assert!(!store
        .release_idempotency_key(&workflow.id, "done", "e1")
        .await
        .unwrap());
    assert!(!store
        .release_idempotency_key(&workflow.id, "running", "e9")
        .await
        .unwrap());
    for key in ["done", "running"] {
        assert!(store
            .idempotency_key(&workflow.id, key)
            .await
            .unwrap()
            .is_some());
    }
}

pub async fn delete_expired_removes_only_expired_keys(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    for (key, expires_at) in [("old", NOW + 10), ("edge", NOW + 20), ("new", NOW + 30)] {
        let claim = IdempotencyClaim {
            expires_at,
            ..claim(&workflow.id, key, "e1")
        };
        store.claim_idempotency_key(&claim).await.unwrap();
    }
    assert_eq!(
        store
            .delete_expired_idempotency_keys(NOW + 20)
            .await
            .unwrap(),
        2
    );
    assert!(store
        .idempotency_key(&workflow.id, "old")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .idempotency_key(&workflow.id, "edge")
        .await
        .unwrap()
        .is_none());
    assert!(store
        .idempotency_key(&workflow.id, "new")
        .await
        .unwrap()
        .is_some());
}

pub async fn claim_for_a_missing_workflow_is_not_found(store: &dyn Store) {
    let result = store
        .claim_idempotency_key(&claim("no-such-workflow", "k", "e1"))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
}

pub async fn keys_go_with_their_workflow(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    store.delete_workflow(&workflow.id).await.unwrap();
    assert!(store
        .idempotency_key(&workflow.id, "k")
        .await
        .unwrap()
        .is_none());
}

pub async fn keys_of_another_workflow_are_apart(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    store
        .claim_idempotency_key(&claim(&workflow.id, "k", "e1"))
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_idempotency_key(&claim(&other.id, "k", "e2"))
            .await
            .unwrap(),
        IdempotencyClaimOutcome::Claimed
    );
}
