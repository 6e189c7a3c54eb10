//! Executions: group commits, upserts, fire-time claims and listings.

use crate::common::*;
use flowd_core::settings::SettingsChange;
use flowd_core::workflow::{ExecutionStatus, Trigger};
use flowd_store::{ExecutionQuery, ExecutionRecord, Store, StoreWrite};
use serde_json::json;

fn put(execution: &ExecutionRecord) -> StoreWrite {
    StoreWrite::PutExecution(execution.clone())
}

async fn put_all(store: &dyn Store, executions: &[ExecutionRecord]) {
    let writes: Vec<StoreWrite> = executions.iter().map(put).collect();
    store.commit(&writes).await.unwrap();
}

fn ids(executions: &[ExecutionRecord]) -> Vec<String> {
    executions.iter().map(|e| e.id.clone()).collect()
}

/// `count` executions of `workflow_id`, one per millisecond from `start_ms`, oldest first.
fn series(workflow_id: &str, start_ms: u64, count: u64) -> Vec<ExecutionRecord> {
    (0..count)
        .map(|n| running(workflow_id, id_at(start_ms + n)))
        .collect()
}

async fn list(store: &dyn Store, query: ExecutionQuery) -> Vec<ExecutionRecord> {
    store.list_executions(&query).await.unwrap()
}

pub async fn puts_and_reads_back_every_field_of_an_execution(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let execution = execution(&workflow.id, new_id());
    put_all(store, std::slice::from_ref(&execution)).await;
    assert_eq!(
        store.execution(&execution.id).await.unwrap(),
        Some(execution.clone())
    );
    assert_eq!(
        list(store, ExecutionQuery::default()).await,
        vec![execution]
    );
}

pub async fn puts_and_reads_back_an_execution_without_optional_fields(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let execution = running(&workflow.id, new_id());
    put_all(store, std::slice::from_ref(&execution)).await;
    assert_eq!(
        store.execution(&execution.id).await.unwrap(),
        Some(execution)
    );
}

/// What user code printed, raised or stored comes back character for character, U+0000 included.
pub async fn an_execution_keeps_every_character_its_workflow_produced(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let text = "nul \u{0} tab \t quote \" backslash \\ ✓ \u{10FFFF}";
    let mut execution = execution(&workflow.id, new_id());
    execution.logs = text.to_string();
    execution.warnings = vec![text.to_string()];
    if let Some(error) = &mut execution.error {
        error.message = text.to_string();
        error.traceback = Some(text.to_string());
    }
    execution.settings_changed = Some(SettingsChange {
        added: settings(json!({"text": text, "nested": {"z": 1, "a": [text]}})),
        ..Default::default()
    });
    put_all(store, std::slice::from_ref(&execution)).await;
    assert_eq!(
        store.execution(&execution.id).await.unwrap(),
        Some(execution)
    );
}

pub async fn unknown_execution_reads_as_none(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    put_all(store, &[running(&workflow.id, new_id())]).await;
    assert_eq!(store.execution(&new_id()).await.unwrap(), None);
}

pub async fn put_execution_upsert_finishes_a_running_row(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let id = new_id();
    let mut started = running(&workflow.id, id.clone());
    started.fire_at = Some(NOW);
    put_all(store, &[started]).await;
    let finished = ExecutionRecord {
        trigger: Trigger::Manual,
        status: ExecutionStatus::Success,
        fire_at: Some(NOW),
        ..execution(&workflow.id, id.clone())
    };
    put_all(store, std::slice::from_ref(&finished)).await;
    assert_eq!(store.execution(&id).await.unwrap(), Some(finished.clone()));
    assert_eq!(list(store, ExecutionQuery::default()).await, vec![finished]);
}

pub async fn commit_stores_an_execution_and_its_settings_change_together(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let change = SettingsChange {
        changed: settings(json!({"a": 2})),
        ..Default::default()
    };
    let execution = ExecutionRecord {
        status: ExecutionStatus::Success,
        settings_changed: Some(change.clone()),
        ..execution(&workflow.id, new_id())
    };
    store
        .commit(&[
            put(&execution),
            StoreWrite::ApplySettingsChange {
                workflow_id: workflow.id.clone(),
                change,
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        store.execution(&execution.id).await.unwrap(),
        Some(execution)
    );
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": 2, "b": 2}))
    );
}

pub async fn commit_applies_writes_in_order(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let id = new_id();
    let set_a = |value: i64| StoreWrite::ApplySettingsChange {
        workflow_id: workflow.id.clone(),
        change: SettingsChange {
            changed: settings(json!({ "a": value })),
            ..Default::default()
        },
    };
    let finished = ExecutionRecord {
        status: ExecutionStatus::Success,
        ..execution(&workflow.id, id.clone())
    };
    store
        .commit(&[
            put(&running(&workflow.id, id.clone())),
            set_a(10),
            put(&finished),
            set_a(20),
            StoreWrite::ApplySettingsChange {
                workflow_id: workflow.id.clone(),
                change: SettingsChange {
                    removed: vec!["b".to_string()],
                    ..Default::default()
                },
            },
        ])
        .await
        .unwrap();
    assert_eq!(store.execution(&id).await.unwrap(), Some(finished));
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": 20}))
    );
}

pub async fn empty_commit_is_a_no_op(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    store.commit(&[]).await.unwrap();
    assert!(list(store, ExecutionQuery::default()).await.is_empty());
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": 1, "b": 2}))
    );
}

pub async fn commit_with_a_failing_write_leaves_nothing_of_the_batch(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let claimed = ExecutionRecord {
        fire_at: Some(NOW),
        ..running(&workflow.id, new_id())
    };
    put_all(store, std::slice::from_ref(&claimed)).await;

    let first = execution(&workflow.id, new_id());
    let change = StoreWrite::ApplySettingsChange {
        workflow_id: workflow.id.clone(),
        change: SettingsChange {
            added: settings(json!({"c": 3})),
            changed: settings(json!({"a": 100})),
            removed: vec!["b".to_string()],
        },
    };
    let finishing_claimed = ExecutionRecord {
        status: ExecutionStatus::Success,
        ..claimed.clone()
    };
    let clashing = ExecutionRecord {
        fire_at: Some(NOW),
        ..running(&workflow.id, new_id())
    };
    let after = running(&workflow.id, new_id());
    let result = store
        .commit(&[
            put(&first),
            change,
            put(&finishing_claimed),
            put(&clashing),
            put(&after),
        ])
        .await;
    assert_conflict(result);

    assert_eq!(list(store, ExecutionQuery::default()).await, vec![claimed]);
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": 1, "b": 2}))
    );
}

pub async fn claimed_fire_time_is_a_conflict(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let claim = |id: String| ExecutionRecord {
        trigger: Trigger::Pull,
        fire_at: Some(NOW + 60_000),
        ..running(&workflow.id, id)
    };
    let first = claim(new_id());
    put_all(store, std::slice::from_ref(&first)).await;
    let second = claim(new_id());
    assert_conflict(store.commit(&[put(&second)]).await);
    assert_eq!(store.execution(&second.id).await.unwrap(), None);
    assert_eq!(store.execution(&first.id).await.unwrap(), Some(first));
}

pub async fn executions_without_fire_time_do_not_collide(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let executions = series(&workflow.id, 1_000, 3);
    assert!(executions.iter().all(|e| e.fire_at.is_none()));
    put_all(store, &executions).await;
    assert_eq!(list(store, ExecutionQuery::default()).await.len(), 3);
}

pub async fn same_fire_time_in_another_workflow_is_allowed(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    let claim = |workflow_id: &str| ExecutionRecord {
        fire_at: Some(NOW),
        ..running(workflow_id, new_id())
    };
    put_all(store, &[claim(&workflow.id), claim(&other.id)]).await;
    assert_eq!(list(store, ExecutionQuery::default()).await.len(), 2);
}

pub async fn put_execution_of_a_missing_workflow_is_not_found(store: &dyn Store) {
    given_team_with_workflow(store).await;
    let orphan = running(&new_id(), new_id());
    assert_not_found(store.commit(&[put(&orphan)]).await);
    assert_eq!(store.execution(&orphan.id).await.unwrap(), None);
}

pub async fn list_is_newest_first(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let mut executions = series(&workflow.id, 1_000, 5);
    // Stored out of order: the listing sorts.
    executions.swap(0, 3);
    put_all(store, &executions).await;
    let mut expected = ids(&executions);
    expected.sort();
    expected.reverse();
    assert_eq!(ids(&list(store, ExecutionQuery::default()).await), expected);
}

pub async fn list_filters_by_workflow(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    let mine = series(&workflow.id, 1_000, 3);
    let theirs = series(&other.id, 1_500, 2);
    put_all(store, &mine).await;
    put_all(store, &theirs).await;
    let listed = list(
        store,
        ExecutionQuery {
            workflow_id: Some(other.id.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&listed),
        vec![theirs[1].id.clone(), theirs[0].id.clone()]
    );
    let all = list(store, ExecutionQuery::default()).await;
    assert_eq!(all.len(), 5);
}

pub async fn list_filters_by_status(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    let mut executions = series(&workflow.id, 1_000, 4);
    executions[1].status = ExecutionStatus::Success;
    executions[3].status = ExecutionStatus::Success;
    let mut elsewhere = running(&other.id, id_at(2_000));
    elsewhere.status = ExecutionStatus::Success;
    executions.push(elsewhere.clone());
    put_all(store, &executions).await;

    let succeeded = list(
        store,
        ExecutionQuery {
            status: Some(ExecutionStatus::Success),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&succeeded),
        vec![
            elsewhere.id.clone(),
            executions[3].id.clone(),
            executions[1].id.clone()
        ]
    );
    let succeeded_here = list(
        store,
        ExecutionQuery {
            workflow_id: Some(workflow.id.clone()),
            status: Some(ExecutionStatus::Success),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        ids(&succeeded_here),
        vec![executions[3].id.clone(), executions[1].id.clone()]
    );
    let timed_out = list(
        store,
        ExecutionQuery {
            status: Some(ExecutionStatus::Timeout),
            ..Default::default()
        },
    )
    .await;
    assert!(timed_out.is_empty());
}

pub async fn list_pages_with_before_id(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let executions = series(&workflow.id, 1_000, 7);
    put_all(store, &executions).await;
    let mut expected = ids(&executions);
    expected.reverse();

    let mut pages = Vec::new();
    let mut before_id = None;
    loop {
        let page = list(
            store,
            ExecutionQuery {
                workflow_id: Some(workflow.id.clone()),
                before_id: before_id.clone(),
                limit: 3,
                ..Default::default()
            },
        )
        .await;
        if page.is_empty() {
            break;
        }
        before_id = page.last().map(|e| e.id.clone());
        pages.push(ids(&page));
    }
    assert_eq!(
        pages,
        vec![
            expected[0..3].to_vec(),
            expected[3..6].to_vec(),
            expected[6..7].to_vec()
        ]
    );
}

pub async fn list_limit_is_capped_at_1000(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let executions = series(&workflow.id, 1_000, 1_005);
    put_all(store, &executions).await;
    let listed = list(
        store,
        ExecutionQuery {
            limit: 5_000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(listed.len(), 1_000);
    assert_eq!(listed[0].id, executions[1_004].id);
    let exact = list(
        store,
        ExecutionQuery {
            limit: 1_000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(exact.len(), 1_000);
}

pub async fn list_limit_zero_means_50(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    put_all(store, &series(&workflow.id, 1_000, 60)).await;
    assert_eq!(list(store, ExecutionQuery::default()).await.len(), 50);
    let few = list(
        store,
        ExecutionQuery {
            limit: 7,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(few.len(), 7);
}
