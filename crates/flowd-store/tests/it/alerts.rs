//! Failure alerts: the rate limit claimed once per interval per workflow whichever node claims,
//! the count of the suppressed ones, and the deliveries' records.

use flowd_core::workflow::ExecutionStatus;
use flowd_store::{AlertClaim, AlertDelivery, ExecutionRecord, Store, StoreError, StoreWrite};

use crate::common::*;

const MINUTE_MS: i64 = 60_000;

fn delivery(workflow_id: &str, execution_id: &str, at: i64) -> AlertDelivery {
    AlertDelivery {
        id: new_id(),
        workflow_id: workflow_id.to_string(),
        execution_id: execution_id.to_string(),
        at,
        status_code: Some(200),
        error: None,
        attempts: 1,
        suppressed: 0,
    }
}

pub async fn the_first_alert_is_sent_with_nothing_suppressed(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    assert_eq!(
        store
            .claim_alert(&workflow.id, NOW, MINUTE_MS)
            .await
            .unwrap(),
        AlertClaim::Send { suppressed: 0 }
    );
}

pub async fn alerts_inside_the_interval_are_suppressed_and_counted_by_the_next_sent(
    store: &dyn Store,
) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_alert(&workflow.id, NOW, MINUTE_MS)
        .await
        .unwrap();

    for at in [NOW + 1, NOW + MINUTE_MS - 1] {
        assert_eq!(
            store
                .claim_alert(&workflow.id, at, MINUTE_MS)
                .await
                .unwrap(),
            AlertClaim::Suppressed
        );
    }
    assert_eq!(
        store
            .claim_alert(&workflow.id, NOW + MINUTE_MS, MINUTE_MS)
            .await
            .unwrap(),
        AlertClaim::Send { suppressed: 2 }
    );
    assert_eq!(
        store
            .claim_alert(&workflow.id, NOW + 3 * MINUTE_MS, MINUTE_MS)
            .await
            .unwrap(),
        AlertClaim::Send { suppressed: 0 }
    );
}

pub async fn a_zero_interval_sends_every_alert(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    for _ in 0..3 {
        assert_eq!(
            store.claim_alert(&workflow.id, NOW, 0).await.unwrap(),
            AlertClaim::Send { suppressed: 0 }
        );
    }
}

pub async fn concurrent_claims_inside_one_interval_send_one_alert(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let claims = (0..8).map(|_| store.claim_alert(&workflow.id, NOW, MINUTE_MS));
    let outcomes = futures::future::join_all(claims).await;
    let sent = outcomes
        .into_iter()
        .map(Result::unwrap)
        .filter(|claim| matches!(claim, AlertClaim::Send { .. }))
        .count();
    assert_eq!(sent, 1);
    assert_eq!(
        store
            .claim_alert(&workflow.id, NOW + MINUTE_MS, MINUTE_MS)
            .await
            .unwrap(),
        AlertClaim::Send { suppressed: 7 }
    );
}

pub async fn the_rate_limits_of_two_workflows_are_apart(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    store
        .claim_alert(&workflow.id, NOW, MINUTE_MS)
        .await
        .unwrap();
    assert_eq!(
        store.claim_alert(&other.id, NOW, MINUTE_MS).await.unwrap(),
        AlertClaim::Send { suppressed: 0 }
    );
}

pub async fn claiming_an_alert_of_a_missing_workflow_is_not_found(store: &dyn Store) {
    let result = store.claim_alert("no-such-workflow", NOW, MINUTE_MS).await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
}

pub async fn deliveries_read_back_newest_first(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let older = delivery(&workflow.id, "e1", NOW);
    let newer = AlertDelivery {
        status_code: None,
        error: Some("connection refused ✓".to_string()),
        attempts: 4,
        suppressed: 3,
        ..delivery(&workflow.id, "e2", NOW + 10)
    };
    store.record_alert_delivery(&older).await.unwrap();
    store.record_alert_delivery(&newer).await.unwrap();

    assert_eq!(
        store.list_alert_deliveries(&workflow.id, 10).await.unwrap(),
        vec![newer.clone(), older]
    );
    assert_eq!(
        store.list_alert_deliveries(&workflow.id, 1).await.unwrap(),
        vec![newer]
    );
}

pub async fn a_delivery_recorded_again_is_updated_to_its_latest_attempt(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let first = AlertDelivery {
        status_code: Some(503),
        error: Some("the receiver answered 503".to_string()),
        ..delivery(&workflow.id, "e1", NOW)
    };
    store.record_alert_delivery(&first).await.unwrap();
    let second = AlertDelivery {
        at: NOW + 1_000,
        status_code: Some(200),
        error: None,
        attempts: 2,
        ..first.clone()
    };

    store.record_alert_delivery(&second).await.unwrap();

    assert_eq!(
        store.list_alert_deliveries(&workflow.id, 10).await.unwrap(),
        vec![second]
    );
}

pub async fn recording_a_delivery_of_a_missing_workflow_is_not_found(store: &dyn Store) {
    let result = store
        .record_alert_delivery(&delivery("no-such-workflow", "e1", NOW))
        .await;
    assert!(matches!(result, Err(StoreError::NotFound(_))), "{result:?}");
}

pub async fn deliveries_go_with_their_workflow(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .claim_alert(&workflow.id, NOW, MINUTE_MS)
        .await
        .unwrap();
    store
        .record_alert_delivery(&delivery(&workflow.id, "e1", NOW))
        .await
        .unwrap();
    store.delete_workflow(&workflow.id).await.unwrap();
    assert!(store
        .list_alert_deliveries(&workflow.id, 10)
        .await
        .unwrap()
        .is_empty());
}

pub async fn deliveries_go_with_their_pruned_execution(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let [old, new] = [1_000, 2_000].map(|ms| ExecutionRecord {
        status: ExecutionStatus::Error,
        started_at: ms as i64,
        fire_at: None,
        ..execution(&workflow.id, id_at(ms))
    });
    store
        .commit(&[
            StoreWrite::PutExecution(old.clone()),
            StoreWrite::PutExecution(new.clone()),
        ])
        .await
        .unwrap();
    let kept = delivery(&workflow.id, &new.id, NOW + 1);
    store
        .record_alert_delivery(&delivery(&workflow.id, &old.id, NOW))
        .await
        .unwrap();
    store.record_alert_delivery(&kept).await.unwrap();

    let cut = flowd_core::retention::RetentionCut {
        started_before: None,
        keep_newest: Some(1),
    };
    assert_eq!(
        store
            .prune_executions(&workflow.id, &cut, 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store.list_alert_deliveries(&workflow.id, 10).await.unwrap(),
        vec![kept]
    );
}
