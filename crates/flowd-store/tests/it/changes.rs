//! Conformance: the changes to workflows a store publishes to the nodes sharing it. A shared
//! store (`is_shared`) publishes each one once committed; a store only one node uses publishes
//! nothing (its feed ends at once).

use std::time::Duration;

use flowd_core::workflow::{Trigger, VersionState};
use flowd_store::WorkflowChange::{self, Created, Deleted, Updated};
use flowd_store::{
    ChangeFeed, ExecutionRecord, FireAdvance, RunClaim, Store, StoreChange, VersionOutcome,
};

use crate::common::*;

/// How long a published change may take to reach a feed.
const DELIVERY: Duration = Duration::from_secs(5);

/// The feed's next change, or `None` once it ended; fails after [`DELIVERY`].
async fn next_change(feed: &mut ChangeFeed) -> Option<StoreChange> {
    tokio::time::timeout(DELIVERY, feed.next())
        .await
        .expect("the feed answers within 5 s")
}

/// Asserts that the feed's next changes are `changes`, in order, on a shared store, and that it
/// has ended on any other.
async fn assert_published(
    store: &dyn Store,
    feed: &mut ChangeFeed,
    workflow_id: &str,
    changes: &[WorkflowChange],
) {
    if !store.is_shared() {
        assert_eq!(next_change(feed).await, None);
        return;
    }
    for &change in changes {
        let expected = StoreChange::Workflow {
            workflow_id: workflow_id.to_string(),
            change,
        };
        assert_eq!(next_change(feed).await, Some(expected));
    }
}

pub async fn a_created_workflow_is_published(store: &dyn Store) {
    let mut feed = store.changes();
    let (_, workflow) = given_team_with_workflow(store).await;
    assert_published(store, &mut feed, &workflow.id, &[Created]).await;
}

pub async fn an_updated_workflow_is_published(store: &dyn Store) {
    let mut feed = store.changes();
    let (_, mut workflow) = given_team_with_workflow(store).await;
    workflow.enabled = false;
    store.update_workflow(&workflow).await.unwrap();
    assert_published(store, &mut feed, &workflow.id, &[Created, Updated]).await;
}

pub async fn a_new_version_and_its_outcome_are_published_as_updates(store: &dyn Store) {
    let mut feed = store.changes();
    let (_, workflow) = given_team_with_workflow(store).await;
    store
        .add_version(&building_version(&workflow.id, 2), NOW + 10)
        .await
        .unwrap();
    let outcome = VersionOutcome {
        workflow_id: workflow.id.clone(),
        version: 2,
        state: VersionState::Failed,
        build_log: String::new(),
        error: Some("ModuleNotFoundError".into()),
        environment: None,
        settled_at: NOW + 20,
    };
    store.settle_version(&outcome).await.unwrap();
    assert_published(store, &mut feed, &workflow.id, &[Created, Updated, Updated]).await;
}

pub async fn a_deleted_workflow_is_published(store: &dyn Store) {
    let mut feed = store.changes();
    let (_, workflow) = given_team_with_workflow(store).await;
    store.delete_workflow(&workflow.id).await.unwrap();
    assert_published(store, &mut feed, &workflow.id, &[Created, Deleted]).await;
}

pub async fn a_claimed_fire_time_is_not_published(store: &dyn Store) {
    let mut feed = store.changes();
    let (_, mut workflow) = given_team_with_workflow(store).await;
    let fire_at = workflow.next_fire_at.expect("a scheduled workflow");
    let claim = RunClaim {
        execution: ExecutionRecord {
            trigger: Trigger::Pull,
            fire_at: Some(fire_at),
            ..running(&workflow.id, new_id())
        },
        advance: Some(FireAdvance {
            fire_at,
            next_fire_at: Some(fire_at + 300_000),
        }),
        skip_warning: None,
    };
    store.claim_run(&claim).await.unwrap();
    // The claim published nothing if the change heard after the creation is this update.
    workflow.enabled = false;
    workflow.next_fire_at = None;
    store.update_workflow(&workflow).await.unwrap();
    assert_published(store, &mut feed, &workflow.id, &[Created, Updated]).await;
}
