//! What is particular to the PostgreSQL backend: its schema version, its batched commit, its
//! nodes, and the changes they hear of.

use crate::common::*;
use flowd_core::settings::SettingsChange;
use flowd_store::{
    ExecutionRecord, PostgresStore, Store, StoreChange, StoreError, StoreWrite, WorkflowChange,
};
use flowd_test_postgres::{fresh_database, TestDatabase};
use sqlx::{Connection, PgConnection};

/// A store on a fresh database, with a team and a workflow, and the database.
async fn store_with_workflow() -> (PostgresStore, flowd_store::WorkflowRecord, TestDatabase) {
    let database = fresh_database().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;
    (store, workflow, database)
}

/// A finished catch execution (no fire time: any number of them can be stored).
fn catch_execution(workflow_id: &str) -> ExecutionRecord {
    ExecutionRecord {
        fire_at: None,
        ..execution(workflow_id, new_id())
    }
}

/// A settings change setting `key` to `value`.
fn set(workflow_id: &str, key: &str, value: i64) -> StoreWrite {
    StoreWrite::ApplySettingsChange {
        workflow_id: workflow_id.to_string(),
        change: SettingsChange {
            added: settings(serde_json::json!({ key: value })),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn reconnecting_keeps_the_data() {
    let (store, workflow, database) = store_with_workflow().await;
    let execution = catch_execution(&workflow.id);
    store
        .commit(&[StoreWrite::PutExecution(execution.clone())])
        .await
        .unwrap();
    store.close().await;

    let store = PostgresStore::connect(database.url()).await.unwrap();
    assert_eq!(
        store.workflow_by_id(&workflow.id).await.unwrap(),
        Some(workflow.clone())
    );
    assert_eq!(store.settings(&workflow.id).await.unwrap().len(), 2);
    assert_eq!(
        store.execution(&execution.id).await.unwrap(),
        Some(execution)
    );
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_flowd_is_refused_naming_both_versions() {
    let (store, _, database) = store_with_workflow().await;
    store.close().await;
    let mut raw = PgConnection::connect(database.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();

    match PostgresStore::connect(database.url()).await {
        Err(
            error @ StoreError::SchemaTooNew {
                database: 9999,
                binary,
            },
        ) => {
            assert!(binary >= 1);
            let message = error.to_string();
            assert!(message.contains("9999"), "{message}");
            assert!(message.contains(&format!("({binary})")), "{message}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn commits_queued_together_share_one_transaction() {
    let (store, workflow, database) = store_with_workflow().await;
    // Queued before the commit task runs (the test's runtime has one thread): one batch.
    let tickets: Vec<_> = (0..20)
        .map(|_| {
            store.submit(vec![StoreWrite::PutExecution(catch_execution(
                &workflow.id,
            ))])
        })
        .collect();
    for ticket in tickets {
        ticket.wait().await.unwrap();
    }
    // Rows written by one transaction carry its id.
    let mut raw = PgConnection::connect(database.url()).await.unwrap();
    let (rows, transactions): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), COUNT(DISTINCT xmin::TEXT) FROM executions")
            .fetch_one(&mut raw)
            .await
            .unwrap();
    assert_eq!((rows, transactions), (20, 1));
}

#[tokio::test]
async fn commits_of_one_batch_apply_in_the_order_of_their_calls() {
    let (store, workflow, _database) = store_with_workflow().await;
    let tickets: Vec<_> = (1..=20)
        .map(|n| store.submit(vec![set(&workflow.id, "n", n)]))
        .collect();
    for ticket in tickets {
        ticket.wait().await.unwrap();
    }
    assert_eq!(
        store.settings(&workflow.id).await.unwrap()["n"],
        serde_json::json!(20)
    );
}

#[tokio::test]
async fn a_failing_write_in_a_batch_fails_alone() {
    let (store, workflow, _database) = store_with_workflow().await;
    let good: Vec<_> = (0..4).map(|_| catch_execution(&workflow.id)).collect();
    let mut tickets = Vec::new();
    for (n, record) in good.iter().enumerate() {
        tickets.push(store.submit(vec![StoreWrite::PutExecution(record.clone())]));
        if n == 1 {
            tickets.push(store.submit(vec![set("no-such-workflow", "x", 1)]));
        }
    }
    let mut outcomes = Vec::new();
    for ticket in tickets {
        outcomes.push(ticket.wait().await);
    }
    assert!(
        matches!(outcomes.remove(2), Err(StoreError::NotFound(ref m)) if m.contains("no-such-workflow"))
    );
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for record in good {
        assert_eq!(store.execution(&record.id).await.unwrap(), Some(record));
    }
}

#[tokio::test]
async fn writes_queued_before_close_are_committed_by_it() {
    let (store, workflow, database) = store_with_workflow().await;
    let execution = catch_execution(&workflow.id);
    store.enqueue(vec![StoreWrite::PutExecution(execution.clone())]);
    let ticket = store.submit(vec![set(&workflow.id, "n", 1)]);
    store.close().await;
    ticket.wait().await.unwrap();
    // The pool is closed: look through a new store.
    let store = PostgresStore::connect(database.url()).await.unwrap();
    assert_eq!(
        store.execution(&execution.id).await.unwrap(),
        Some(execution)
    );
}

#[tokio::test]
async fn writes_queued_after_close_fail_as_stopped() {
    let (store, workflow, _database) = store_with_workflow().await;
    store.close().await;
    let outcome = store
        .submit(vec![StoreWrite::PutExecution(catch_execution(
            &workflow.id,
        ))])
        .wait()
        .await;
    assert!(matches!(outcome, Err(StoreError::Stopped)), "{outcome:?}");
}

#[tokio::test]
async fn a_commit_whose_connection_was_lost_is_committed_on_another() {
    let (store, workflow, database) = store_with_workflow().await;
    let first = catch_execution(&workflow.id);
    store
        .commit(&[StoreWrite::PutExecution(first)])
        .await
        .unwrap();
    // What a server restart or a proxy's idle timeout does to the store's connections.
    let mut admin = PgConnection::connect(database.url()).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!terminated.is_empty());

    let second = catch_execution(&workflow.id);
    store
        .commit(&[StoreWrite::PutExecution(second.clone())])
        .await
        .unwrap();
    assert_eq!(store.execution(&second.id).await.unwrap(), Some(second));
}

/// Node `store`'s record, its lease expiring at `lease_expires_at`.
fn node_of(store: &PostgresStore, lease_expires_at: i64) -> flowd_store::NodeRecord {
    flowd_store::NodeRecord {
        id: store.node_id().to_string(),
        address: "127.0.0.1:8080".to_string(),
        host: "node".to_string(),
        started_at: NOW,
        lease_expires_at,
    }
}

#[tokio::test]
async fn reaping_a_dead_node_leaves_the_running_executions_of_live_ones() {
    let (live, workflow, database) = store_with_workflow().await;
    let dead = PostgresStore::connect(database.url()).await.unwrap();
    live.register_node(&node_of(&live, NOW + 60_000))
        .await
        .unwrap();
    dead.register_node(&node_of(&dead, NOW + 10_000))
        .await
        .unwrap();
    let on_live = running(&workflow.id, id_at(1_000));
    let on_dead = running(&workflow.id, id_at(1_001));
    live.commit(&[StoreWrite::PutExecution(on_live.clone())])
        .await
        .unwrap();
    dead.commit(&[StoreWrite::PutExecution(on_dead.clone())])
        .await
        .unwrap();

    let reaped = live.reap_expired_nodes(NOW + 20_000).await.unwrap();
    assert_eq!(
        reaped,
        vec![flowd_store::ReapedNode {
            node_id: Some(dead.node_id().to_string()),
            interrupted: 1,
            released_slots: 0,
            released_async_calls: 0,
        }]
    );
    assert_eq!(live.execution(&on_live.id).await.unwrap(), Some(on_live));
    let interrupted = live.execution(&on_dead.id).await.unwrap().unwrap();
    assert_eq!(
        interrupted.status,
        flowd_core::workflow::ExecutionStatus::Interrupted
    );
}

#[tokio::test]
async fn reaping_a_dead_node_leaves_the_claimed_calls_of_live_ones() {
    let (live, workflow, database) = store_with_workflow().await;
    let dead = PostgresStore::connect(database.url()).await.unwrap();
    live.register_node(&node_of(&live, NOW + 60_000))
        .await
        .unwrap();
    dead.register_node(&node_of(&dead, NOW + 10_000))
        .await
        .unwrap();
    let roomy = flowd_store::QueueBound {
        total: 10,
        per_workflow: 10,
    };
    for n in 0..2 {
        let call = flowd_store::AsyncCallRecord {
            id: new_id(),
            workflow_id: workflow.id.clone(),
            token: format!("token-{n}"),
            request: flowd_store::QueuedRequest::default(),
            enqueued_at: NOW + n,
            state: flowd_store::AsyncCallState::Queued,
            execution_id: new_id(),
            attempt: 1,
            trigger: flowd_core::workflow::Trigger::Catch,
            not_before: None,
        };
        live.enqueue_async_call(&call, roomy).await.unwrap();
    }
    let on_dead = dead
        .claim_async_calls(&workflow.id, 1, NOW, NOW + 1_000_000)
        .await
        .unwrap();
    let on_live = live
        .claim_async_calls(&workflow.id, 1, NOW, NOW + 1_000_000)
        .await
        .unwrap();

    let reaped = live.reap_expired_nodes(NOW + 20_000).await.unwrap();

    assert_eq!(reaped.len(), 1);
    assert_eq!(reaped[0].released_async_calls, 1);
    let requeued = live
        .claim_async_calls(&workflow.id, 10, NOW + 20_001, NOW + 1_000_000)
        .await
        .unwrap();
    assert_eq!(
        requeued.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&on_dead[0].id]
    );
    let still_live = live.async_call_by_token(&on_live[0].token).await.unwrap();
    assert!(matches!(
        still_live.map(|call| call.state),
        Some(flowd_store::AsyncCallState::Claimed { node_id, .. }) if node_id == live.node_id()
    ));
}

#[tokio::test]
async fn a_slot_held_by_one_node_is_not_taken_by_another() {
    let (first, workflow, database) = store_with_workflow().await;
    let second = PostgresStore::connect(database.url()).await.unwrap();
    for store in [&first, &second] {
        store
            .register_node(&node_of(store, NOW + 60_000))
            .await
            .unwrap();
    }
    assert!(first.acquire_slot(&workflow.id, 1, "a", NOW).await.unwrap());
    assert!(!second
        .acquire_slot(&workflow.id, 1, "b", NOW)
        .await
        .unwrap());
    first.release_slot(&workflow.id, "a").await.unwrap();
    assert!(second
        .acquire_slot(&workflow.id, 1, "b", NOW)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_lease_renewed_before_the_reap_keeps_the_node() {
    let (reaper, _, database) = store_with_workflow().await;
    let renewing = PostgresStore::connect(database.url()).await.unwrap();
    renewing
        .register_node(&node_of(&renewing, NOW + 10_000))
        .await
        .unwrap();
    assert!(renewing.renew_node_lease(NOW + 40_000).await.unwrap());
    assert_eq!(
        reaper.reap_expired_nodes(NOW + 20_000).await.unwrap(),
        vec![]
    );
    assert_eq!(reaper.nodes().await.unwrap().len(), 1);
}

/// The feed's next change; fails after 5 s.
async fn next_change(feed: &mut flowd_store::ChangeFeed) -> Option<StoreChange> {
    tokio::time::timeout(std::time::Duration::from_secs(5), feed.next())
        .await
        .expect("the feed answers within 5 s")
}

fn published(
    workflow: &flowd_store::WorkflowRecord,
    change: WorkflowChange,
) -> Option<StoreChange> {
    Some(StoreChange::Workflow {
        workflow_id: workflow.id.clone(),
        change,
    })
}

/// A store on a fresh database, a feed of its changes taken before anything was stored, and a
/// team and workflow (whose creation the feed has heard of).
async fn store_and_feed_with_workflow() -> (
    PostgresStore,
    flowd_store::ChangeFeed,
    flowd_store::WorkflowRecord,
    TestDatabase,
) {
    let database = fresh_database().await;
    let store = PostgresStore::connect(database.url()).await.unwrap();
    let mut feed = store.changes();
    let (_, workflow) = given_team_with_workflow(&store).await;
    assert_eq!(
        next_change(&mut feed).await,
        published(&workflow, WorkflowChange::Created)
    );
    (store, feed, workflow, database)
}

#[tokio::test]
async fn a_change_committed_through_one_node_is_heard_by_another() {
    let (node_a, mut workflow, database) = store_with_workflow().await;
    let node_b = PostgresStore::connect(database.url()).await.unwrap();
    let mut feed = node_b.changes();
    workflow.hook_token = "rotated".into();
    node_a.update_workflow(&workflow).await.unwrap();
    assert_eq!(
        next_change(&mut feed).await,
        published(&workflow, WorkflowChange::Updated)
    );
}

#[tokio::test]
async fn a_change_rolled_back_is_not_published() {
    let (store, mut feed, mut workflow, _database) = store_and_feed_with_workflow().await;
    let mut twin = workflow.clone();
    twin.id = new_id();
    assert_conflict(
        store
            .create_workflow(&twin, &version(&twin.id, 1), &Default::default())
            .await,
    );
    workflow.enabled = false;
    store.update_workflow(&workflow).await.unwrap();
    assert_eq!(
        next_change(&mut feed).await,
        published(&workflow, WorkflowChange::Updated)
    );
}

#[tokio::test]
async fn a_lost_listening_connection_is_published_as_missed_changes_then_listening_resumes() {
    let (store, mut feed, mut workflow, database) = store_and_feed_with_workflow().await;
    let mut admin = PgConnection::connect(database.url()).await.unwrap();
    let terminated: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'flowd-listener'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(terminated, [true]);
    assert_eq!(next_change(&mut feed).await, Some(StoreChange::Missed));

    workflow.enabled = false;
    store.update_workflow(&workflow).await.unwrap();
    assert_eq!(
        next_change(&mut feed).await,
        published(&workflow, WorkflowChange::Updated)
    );
}
