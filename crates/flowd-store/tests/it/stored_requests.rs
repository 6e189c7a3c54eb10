//! The requests of hook executions, stored for replay: written with their execution, read back
//! as received, deleted with it.

use flowd_core::retention::RetentionCut;
use flowd_core::workflow::ExecutionStatus;
use flowd_store::{ExecutionQuery, ExecutionRecord, RequestParts, Store, StoreWrite};

use crate::common::*;

const BODY: &[u8] = b"{\"name\": \"Ana\"}\x00\xff";

async fn given_execution_with_its_request(store: &dyn Store) -> (String, ExecutionRecord) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let execution = execution(&workflow.id, new_id());
    store
        .commit(&[
            StoreWrite::PutExecution(execution.clone()),
            StoreWrite::PutStoredRequest(stored_request(
                &execution,
                &[
                    ("content-type", b"application/json"),
                    ("x-raw", b"\xe9\x00z"),
                ],
                BODY,
            )),
        ])
        .await
        .unwrap();
    (workflow.id, execution)
}

pub async fn a_stored_request_reads_back_as_received(store: &dyn Store) {
    let (_, execution) = given_execution_with_its_request(store).await;

    let request = store.stored_request(&execution.id).await.unwrap();

    assert_eq!(
        request,
        Some(RequestParts {
            method: "POST".into(),
            path: "/teams/acme/hook/python3.11/token".into(),
            query_string: "page=2&q=caf%C3%A9".into(),
            headers: vec![
                ("content-type".into(), b"application/json".to_vec()),
                ("x-raw".into(), b"\xe9\x00z".to_vec()),
            ],
            body: BODY.to_vec(),
        })
    );
}

pub async fn an_execution_without_a_stored_request_reads_none(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let execution = execution(&workflow.id, new_id());
    store
        .commit(&[StoreWrite::PutExecution(execution.clone())])
        .await
        .unwrap();

    assert_eq!(store.stored_request(&execution.id).await.unwrap(), None);
    assert_eq!(
        store.stored_request("no-such-execution").await.unwrap(),
        None
    );
}

pub async fn a_request_without_its_execution_is_refused_and_not_kept(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let missing = execution(&workflow.id, new_id());

    let refused = store
        .commit(&[StoreWrite::PutStoredRequest(stored_request(
            &missing,
            &[],
            b"x",
        ))])
        .await;

    assert!(refused.is_err());
    assert_eq!(store.stored_request(&missing.id).await.unwrap(), None);
}

pub async fn a_stored_request_is_deleted_with_its_execution_by_retention(store: &dyn Store) {
    let (workflow_id, execution) = given_execution_with_its_request(store).await;
    let cut = RetentionCut {
        started_before: Some(execution.started_at + 1),
        keep_newest: None,
    };

    let deleted = store
        .prune_executions(&workflow_id, &cut, 100)
        .await
        .unwrap();

    assert_eq!(deleted, 1);
    assert_eq!(store.stored_request(&execution.id).await.unwrap(), None);
}

pub async fn a_stored_request_is_deleted_with_its_workflow(store: &dyn Store) {
    let (workflow_id, execution) = given_execution_with_its_request(store).await;

    assert!(store.delete_workflow(&workflow_id).await.unwrap());

    assert_eq!(store.stored_request(&execution.id).await.unwrap(), None);
}

pub async fn executions_list_oldest_first_within_a_time_range(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let all: Vec<ExecutionRecord> = (0..5u64)
        .map(|i| ExecutionRecord {
            status: ExecutionStatus::Error,
            started_at: i64::try_from(1_000 + i).unwrap(),
            fire_at: None,
            ..execution(&workflow.id, id_at(1_000 + i))
        })
        .collect();
    let writes: Vec<StoreWrite> = all.iter().cloned().map(StoreWrite::PutExecution).collect();
    store.commit(&writes).await.unwrap();

    let listed = store
        .list_executions(&ExecutionQuery {
            workflow_id: Some(workflow.id.clone()),
            status: Some(ExecutionStatus::Error),
            limit: 2,
            started_since: Some(1_001),
            started_before: Some(1_004),
            oldest_first: true,
            ..ExecutionQuery::default()
        })
        .await
        .unwrap();

    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, [all[1].id.as_str(), all[2].id.as_str()]);
}
