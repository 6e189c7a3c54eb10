//! Workflows and their code versions.

use crate::common::*;
use flowd_core::workflow::{Isolation, Mode, ResponseMode, VersionState};
use flowd_store::{
    ExecutionQuery, Store, StoreWrite, VersionOutcome, VersionRecord, WorkflowRecord,
};
use serde_json::json;

pub async fn creates_and_reads_back_every_field_of_a_workflow(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let workflow = workflow(&team.id, "sync");
    let first = version(&workflow.id, 1);
    store
        .create_workflow(&workflow, &first, &settings(json!({"a": 1})))
        .await
        .unwrap();
    assert_eq!(
        store.workflow_by_id(&workflow.id).await.unwrap(),
        Some(workflow.clone())
    );
    assert_eq!(
        store.workflow_by_name(&team.id, "sync").await.unwrap(),
        Some(workflow.clone())
    );
    assert_eq!(store.version(&workflow.id, 1).await.unwrap(), Some(first));
}

pub async fn creates_and_reads_back_a_workflow_without_optional_fields(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let workflow = WorkflowRecord {
        mode: Mode::Catch,
        enabled: false,
        secret_keys: Vec::new(),
        schedule: None,
        next_fire_at: None,
        max_concurrency: None,
        isolation: Isolation::Fork,
        verify: None,
        idempotency_header: None,
        egress_allow: Vec::new(),
        retention: None,
        alerts: None,
        on_failure: None,
        response: ResponseMode::Sync,
        ..workflow(&team.id, "hook")
    };
    store
        .create_workflow(&workflow, &version(&workflow.id, 1), &Default::default())
        .await
        .unwrap();
    assert_eq!(
        store.workflow_by_id(&workflow.id).await.unwrap(),
        Some(workflow)
    );
}

pub async fn workflow_name_taken_in_the_team_is_a_conflict(store: &dyn Store) {
    let (team, _) = given_team_with_workflow(store).await;
    let again = workflow(&team.id, "sync");
    let message = assert_conflict(
        store
            .create_workflow(&again, &version(&again.id, 1), &Default::default())
            .await,
    );
    assert_eq!(
        message,
        "a workflow named \"sync\" already exists in this team"
    );
}

pub async fn same_workflow_name_in_another_team_is_allowed(store: &dyn Store) {
    let (_, first) = given_team_with_workflow(store).await;
    let other_team = given_team(store, "globex").await;
    let second = given_workflow(store, &other_team.id, "sync").await;
    assert_eq!(
        store
            .workflow_by_name(&other_team.id, "sync")
            .await
            .unwrap(),
        Some(second)
    );
    assert_eq!(
        store
            .workflow_by_name(&first.team_id, "sync")
            .await
            .unwrap(),
        Some(first)
    );
}

pub async fn failed_create_leaves_no_version_or_settings(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let workflow = workflow(&team.id, "sync");
    // The first version is stored after the workflow row: make it fail.
    let mut orphan_version = version(&workflow.id, 1);
    orphan_version.workflow_id = new_id();
    let result = store
        .create_workflow(&workflow, &orphan_version, &settings(json!({"a": 1})))
        .await;
    assert!(result.is_err(), "{result:?}");
    assert_eq!(store.workflow_by_id(&workflow.id).await.unwrap(), None);
    assert!(store.settings(&workflow.id).await.unwrap().is_empty());
    assert!(store.list_versions(&workflow.id).await.unwrap().is_empty());
}

pub async fn workflow_of_unknown_team_is_not_found(store: &dyn Store) {
    let workflow = workflow(&new_id(), "sync");
    assert_not_found(
        store
            .create_workflow(&workflow, &version(&workflow.id, 1), &Default::default())
            .await,
    );
}

pub async fn unknown_workflow_reads_as_none(store: &dyn Store) {
    let (team, _) = given_team_with_workflow(store).await;
    assert_eq!(store.workflow_by_id(&new_id()).await.unwrap(), None);
    assert_eq!(
        store.workflow_by_name(&team.id, "other").await.unwrap(),
        None
    );
    assert_eq!(
        store.workflow_by_name(&new_id(), "sync").await.unwrap(),
        None
    );
}

pub async fn lists_a_teams_workflows_by_name(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let other_team = given_team(store, "globex").await;
    let c = given_workflow(store, &team.id, "c").await;
    let a = given_workflow(store, &team.id, "a").await;
    given_workflow(store, &other_team.id, "b").await;
    let b = given_workflow(store, &team.id, "b").await;
    assert_eq!(store.list_workflows(&team.id).await.unwrap(), vec![a, b, c]);
    assert!(store.list_workflows(&new_id()).await.unwrap().is_empty());
}

pub async fn update_replaces_every_column_but_id_team_created_at_and_version(store: &dyn Store) {
    let (team, original) = given_team_with_workflow(store).await;
    let other_team = given_team(store, "globex").await;
    let updated = WorkflowRecord {
        id: original.id.clone(),
        team_id: other_team.id.clone(),
        name: "renamed".to_string(),
        mode: Mode::Catch,
        runtime: "python3.12".to_string(),
        version: Some(7),
        enabled: false,
        hook_token: "new-token".to_string(),
        secret_keys: vec!["TOKEN".to_string()],
        env: [("MODE".to_string(), "prod".to_string())].into(),
        schedule: None,
        next_fire_at: None,
        timeout_s: 90,
        memory_mb: 1024,
        max_concurrency: None,
        isolation: Isolation::Fork,
        response: ResponseMode::Sync,
        created_at: 1,
        updated_at: NOW + 1000,
        verify: Some(
            flowd_core::verify::Verification::from_json(
                &json!({"scheme": "stripe", "secret": "STRIPE", "tolerance_s": 60}),
            )
            .unwrap(),
        ),
        idempotency_header: None,
        egress_allow: vec!["10.9.8.7:6543".parse().unwrap()],
        retention: Some(flowd_core::retention::Retention {
            days: None,
            max_executions: Some(3),
        }),
        alerts: Some(flowd_core::alerts::AlertPolicy {
            url: "http://alerts.internal/flowd".to_string(),
            on: vec![flowd_core::workflow::ExecutionStatus::Killed],
            min_interval_s: 0,
        }),
        on_failure: Some("handler".to_string()),
        retry: None,
        store_requests: true,
    };
    store.update_workflow(&updated).await.unwrap();
    let expected = WorkflowRecord {
        team_id: team.id.clone(),
        created_at: original.created_at,
        version: original.version,
        ..updated
    };
    assert_eq!(
        store.workflow_by_id(&original.id).await.unwrap(),
        Some(expected.clone())
    );
    assert_eq!(
        store.workflow_by_name(&team.id, "renamed").await.unwrap(),
        Some(expected)
    );
    assert_eq!(
        store.workflow_by_name(&team.id, "sync").await.unwrap(),
        None
    );
}

pub async fn rename_to_a_taken_name_is_a_conflict(store: &dyn Store) {
    let (team, first) = given_team_with_workflow(store).await;
    let second = given_workflow(store, &team.id, "other").await;
    let renamed = WorkflowRecord {
        name: "sync".to_string(),
        ..second.clone()
    };
    let message = assert_conflict(store.update_workflow(&renamed).await);
    assert!(message.contains("\"sync\""), "{message}");
    assert_eq!(
        store.workflow_by_id(&second.id).await.unwrap(),
        Some(second)
    );
    assert_eq!(store.workflow_by_id(&first.id).await.unwrap(), Some(first));
}

pub async fn update_of_a_missing_workflow_is_not_found(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    assert_not_found(store.update_workflow(&workflow(&team.id, "ghost")).await);
    assert!(store.list_workflows(&team.id).await.unwrap().is_empty());
}

pub async fn add_version_keeps_the_active_version(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let second = building_version(&workflow.id, 2);
    store.add_version(&second, NOW + 5000).await.unwrap();
    let stored = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(
        stored,
        WorkflowRecord {
            version: Some(1),
            updated_at: NOW + 5000,
            ..workflow.clone()
        }
    );
    assert_eq!(store.version(&workflow.id, 2).await.unwrap(), Some(second));
}

fn outcome(version: &VersionRecord, state: VersionState, at: i64) -> VersionOutcome {
    VersionOutcome {
        workflow_id: version.workflow_id.clone(),
        version: version.version,
        state,
        build_log: "Installed 1 package".to_string(),
        error: (state == VersionState::Failed).then(|| "the import failed".to_string()),
        environment: Some("python3.11-abcdef012345".to_string()),
        settled_at: at,
    }
}

pub async fn a_ready_version_becomes_active(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let second = building_version(&workflow.id, 2);
    store.add_version(&second, NOW + 5000).await.unwrap();
    let activated = store
        .settle_version(&outcome(&second, VersionState::Ready, NOW + 6000))
        .await
        .unwrap();
    assert!(activated);
    let stored = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.updated_at), (Some(2), NOW + 6000));
    let settled = store.version(&workflow.id, 2).await.unwrap().unwrap();
    assert_eq!(
        settled,
        VersionRecord {
            state: VersionState::Ready,
            build_log: "Installed 1 package".to_string(),
            environment: Some("python3.11-abcdef012345".to_string()),
            settled_at: Some(NOW + 6000),
            ..second
        }
    );
}

pub async fn a_failed_version_leaves_the_active_one(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let second = building_version(&workflow.id, 2);
    store.add_version(&second, NOW + 5000).await.unwrap();
    let activated = store
        .settle_version(&outcome(&second, VersionState::Failed, NOW + 6000))
        .await
        .unwrap();
    assert!(!activated);
    let stored = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(stored.version, Some(1));
    let settled = store.version(&workflow.id, 2).await.unwrap().unwrap();
    assert_eq!(settled.state, VersionState::Failed);
    assert_eq!(settled.error.as_deref(), Some("the import failed"));
}

/// What the import check printed (the module's top level is user code) comes back character for
/// character, U+0000 included.
pub async fn a_settled_version_keeps_every_character_of_its_build_log(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let second = building_version(&workflow.id, 2);
    store.add_version(&second, NOW + 5000).await.unwrap();
    let printed = "nul \u{0} quote \" ✓\n".to_string();
    let failed = VersionOutcome {
        build_log: printed.clone(),
        error: Some(printed.clone()),
        ..outcome(&second, VersionState::Failed, NOW + 6000)
    };
    store.settle_version(&failed).await.unwrap();
    let settled = store.version(&workflow.id, 2).await.unwrap().unwrap();
    assert_eq!(settled.build_log, printed);
    assert_eq!(settled.error, Some(printed));
}

pub async fn a_workflow_created_building_has_no_active_version(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let workflow = WorkflowRecord {
        version: None,
        ..self::workflow(&team.id, "fresh")
    };
    let first = building_version(&workflow.id, 1);
    store
        .create_workflow(&workflow, &first, &Default::default())
        .await
        .unwrap();
    let stored = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(stored.version, None);
    assert_eq!(
        store.building_versions().await.unwrap(),
        vec![first.clone()]
    );
    assert!(store
        .settle_version(&outcome(&first, VersionState::Ready, NOW + 1))
        .await
        .unwrap());
    let stored = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(stored.version, Some(1));
    assert!(store.building_versions().await.unwrap().is_empty());
}

pub async fn an_older_version_ready_late_does_not_replace_a_newer_active_one(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let second = building_version(&workflow.id, 2);
    let third = building_version(&workflow.id, 3);
    store.add_version(&second, NOW).await.unwrap();
    store.add_version(&third, NOW).await.unwrap();
    assert!(store
        .settle_version(&outcome(&third, VersionState::Ready, NOW + 1))
        .await
        .unwrap());
    assert!(!store
        .settle_version(&outcome(&second, VersionState::Ready, NOW + 2))
        .await
        .unwrap());
    let stored = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(stored.version, Some(3));
    let second = store.version(&workflow.id, 2).await.unwrap().unwrap();
    assert_eq!(second.state, VersionState::Ready);
}

pub async fn settling_twice_is_a_conflict(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let second = building_version(&workflow.id, 2);
    store.add_version(&second, NOW).await.unwrap();
    store
        .settle_version(&outcome(&second, VersionState::Failed, NOW + 1))
        .await
        .unwrap();
    assert_conflict(
        store
            .settle_version(&outcome(&second, VersionState::Ready, NOW + 2))
            .await,
    );
    let stored = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(stored.version, Some(1));
}

pub async fn settling_an_unknown_version_is_not_found(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let ghost = building_version(&workflow.id, 9);
    assert_not_found(
        store
            .settle_version(&outcome(&ghost, VersionState::Ready, NOW))
            .await,
    );
}

pub async fn building_versions_lists_only_builds_going(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    let a = building_version(&workflow.id, 2);
    let b = building_version(&other.id, 2);
    store.add_version(&a, NOW).await.unwrap();
    store.add_version(&b, NOW).await.unwrap();
    let building = store.building_versions().await.unwrap();
    assert_eq!(building.len(), 2);
    assert!(building.contains(&a) && building.contains(&b));
}

pub async fn duplicate_version_is_a_conflict_and_changes_nothing(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let mut again = version(&workflow.id, 1);
    again.code = "def workflow(settings):\n    return 'other'\n".to_string();
    assert_conflict(store.add_version(&again, NOW + 5000).await);
    assert_eq!(
        store.workflow_by_id(&workflow.id).await.unwrap(),
        Some(workflow.clone())
    );
    assert_eq!(
        store.version(&workflow.id, 1).await.unwrap(),
        Some(version(&workflow.id, 1))
    );
}

pub async fn add_version_to_a_missing_workflow_is_not_found(store: &dyn Store) {
    let ghost = new_id();
    assert_not_found(store.add_version(&version(&ghost, 2), NOW).await);
    assert!(store.list_versions(&ghost).await.unwrap().is_empty());
}

pub async fn versions_are_listed_newest_first(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    for number in [2, 3, 10] {
        store
            .add_version(&version(&workflow.id, number), NOW)
            .await
            .unwrap();
    }
    let numbers: Vec<u32> = store
        .list_versions(&workflow.id)
        .await
        .unwrap()
        .iter()
        .map(|v| v.version)
        .collect();
    assert_eq!(numbers, vec![10, 3, 2, 1]);
    assert_eq!(
        store.list_versions(&other.id).await.unwrap(),
        vec![version(&other.id, 1)]
    );
}

pub async fn unknown_version_reads_as_none(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    assert_eq!(store.version(&workflow.id, 2).await.unwrap(), None);
    assert_eq!(store.version(&new_id(), 1).await.unwrap(), None);
}

pub async fn delete_cascades_to_versions_settings_and_executions(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    store
        .add_version(&version(&workflow.id, 2), NOW)
        .await
        .unwrap();
    let execution_id = new_id();
    store
        .commit(&[StoreWrite::PutExecution(running(
            &workflow.id,
            execution_id.clone(),
        ))])
        .await
        .unwrap();

    assert!(store.delete_workflow(&workflow.id).await.unwrap());

    assert_eq!(store.workflow_by_id(&workflow.id).await.unwrap(), None);
    assert!(store.list_workflows(&team.id).await.unwrap().is_empty());
    assert!(store.list_versions(&workflow.id).await.unwrap().is_empty());
    assert!(store.settings(&workflow.id).await.unwrap().is_empty());
    assert_eq!(store.execution(&execution_id).await.unwrap(), None);
    let all = store
        .list_executions(&ExecutionQuery::default())
        .await
        .unwrap();
    assert!(all.is_empty());
    // The name is free again.
    given_workflow(store, &team.id, "sync").await;
}

pub async fn delete_returns_false_the_second_time(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    assert!(store.delete_workflow(&workflow.id).await.unwrap());
    assert!(!store.delete_workflow(&workflow.id).await.unwrap());
}

pub async fn delete_leaves_other_workflows_alone(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let other = given_workflow(store, &team.id, "other").await;
    let execution_id = new_id();
    store
        .commit(&[StoreWrite::PutExecution(running(
            &other.id,
            execution_id.clone(),
        ))])
        .await
        .unwrap();
    store.delete_workflow(&workflow.id).await.unwrap();
    assert_eq!(
        store.workflow_by_id(&other.id).await.unwrap(),
        Some(other.clone())
    );
    assert_eq!(store.list_versions(&other.id).await.unwrap().len(), 1);
    assert_eq!(
        store.settings(&other.id).await.unwrap(),
        settings(json!({"a": 1, "b": 2}))
    );
    assert!(store.execution(&execution_id).await.unwrap().is_some());
}
