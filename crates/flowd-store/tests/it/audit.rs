//! The audit log: entries written with the change they record (and only if it is made), read
//! back with their filters, and deleted past their retention.

use crate::common::*;
use flowd_core::access::AuditAction;
use flowd_core::settings::SettingsChange;
use flowd_core::workflow::ExecutionStatus;
use flowd_store::{AuditEntry, AuditQuery, ExecutionRecord, Store, StoreWrite, WorkflowRecord};
use serde_json::json;

pub async fn creating_a_workflow_audited_records_its_entry(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let workflow = workflow(&team.id, "sync");
    let entry = audit_entry(AuditAction::WorkflowCreated, NOW, &team, Some(&workflow));
    store
        .create_workflow_audited(
            &workflow,
            &version(&workflow.id, 1),
            &settings(json!({})),
            Some(&entry),
        )
        .await
        .unwrap();
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn a_workflow_not_created_records_no_entry(store: &dyn Store) {
    let (team, taken) = given_team_with_workflow(store).await;
    let again = workflow(&team.id, &taken.name);
    let entry = audit_entry(AuditAction::WorkflowCreated, NOW, &team, Some(&again));
    assert_conflict(
        store
            .create_workflow_audited(
                &again,
                &version(&again.id, 1),
                &settings(json!({})),
                Some(&entry),
            )
            .await,
    );
    assert_eq!(all_entries(store).await, vec![]);
}

pub async fn an_update_records_each_of_its_entries(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let paused = WorkflowRecord {
        enabled: false,
        ..workflow.clone()
    };
    let entries = vec![
        audit_entry(AuditAction::WorkflowPaused, NOW, &team, Some(&workflow)),
        audit_entry(
            AuditAction::WorkflowPatched,
            NOW + 1,
            &team,
            Some(&workflow),
        ),
    ];
    store
        .update_workflow_audited(&paused, &entries)
        .await
        .unwrap();
    assert!(
        !store
            .workflow_by_id(&workflow.id)
            .await
            .unwrap()
            .unwrap()
            .enabled
    );
    let mut newest_first = entries;
    newest_first.reverse();
    assert_eq!(all_entries(store).await, newest_first);
}

pub async fn an_update_of_a_missing_workflow_records_nothing(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let ghost = workflow(&team.id, "ghost");
    let entry = audit_entry(AuditAction::WorkflowPatched, NOW, &team, Some(&ghost));
    assert_not_found(store.update_workflow_audited(&ghost, &[entry]).await);
    assert_eq!(all_entries(store).await, vec![]);
}

pub async fn a_new_version_audited_records_its_entry(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let entry = audit_entry(AuditAction::WorkflowDeployed, NOW, &team, Some(&workflow));
    store
        .add_version_audited(&building_version(&workflow.id, 2), NOW, Some(&entry))
        .await
        .unwrap();
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn a_duplicate_version_records_no_entry(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let entry = audit_entry(AuditAction::WorkflowDeployed, NOW, &team, Some(&workflow));
    assert_conflict(
        store
            .add_version_audited(&building_version(&workflow.id, 1), NOW, Some(&entry))
            .await,
    );
    assert_eq!(all_entries(store).await, vec![]);
}

pub async fn a_delete_audited_records_its_entry_once(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let entry = audit_entry(AuditAction::WorkflowDeleted, NOW, &team, Some(&workflow));
    assert!(store
        .delete_workflow_audited(&workflow.id, Some(&entry))
        .await
        .unwrap());
    let again = audit_entry(
        AuditAction::WorkflowDeleted,
        NOW + 1,
        &team,
        Some(&workflow),
    );
    assert!(!store
        .delete_workflow_audited(&workflow.id, Some(&again))
        .await
        .unwrap());
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn an_entry_commits_with_the_settings_change_it_records(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let entry = audit_entry(AuditAction::SettingsChanged, NOW, &team, Some(&workflow));
    store
        .commit(&[
            StoreWrite::ApplySettingsChange {
                workflow_id: workflow.id.clone(),
                change: SettingsChange {
                    added: settings(json!({"c": 3})),
                    ..SettingsChange::default()
                },
            },
            StoreWrite::AppendAudit(entry.clone()),
        ])
        .await
        .unwrap();
    assert_eq!(store.settings(&workflow.id).await.unwrap()["c"], json!(3));
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn an_entry_of_a_failed_commit_is_not_kept(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let claimed = ExecutionRecord {
        fire_at: Some(NOW),
        ..running(&workflow.id, new_id())
    };
    store
        .commit(&[StoreWrite::PutExecution(claimed)])
        .await
        .unwrap();
    let clashing = ExecutionRecord {
        fire_at: Some(NOW),
        status: ExecutionStatus::Success,
        ..execution(&workflow.id, new_id())
    };
    let entry = audit_entry(AuditAction::SettingsChanged, NOW, &team, Some(&workflow));
    let result = store
        .commit(&[
            StoreWrite::AppendAudit(entry),
            StoreWrite::PutExecution(clashing),
        ])
        .await;
    assert_conflict(result);
    assert_eq!(all_entries(store).await, vec![]);
}

/// Entries of two teams, two workflows and two keys, a minute apart, oldest first.
async fn given_entries(store: &dyn Store) -> Vec<AuditEntry> {
    let (acme, sync) = given_team_with_workflow(store).await;
    let other = given_team(store, "other").await;
    let report = given_workflow(store, &other.id, "report").await;
    let mut entries = vec![
        audit_entry(AuditAction::WorkflowCreated, NOW, &acme, Some(&sync)),
        audit_entry(
            AuditAction::WorkflowCreated,
            NOW + 60_000,
            &other,
            Some(&report),
        ),
        AuditEntry {
            actor_id: "key-admin".into(),
            actor_name: "admin".into(),
            ..audit_entry(AuditAction::TeamRenamed, NOW + 120_000, &other, None)
        },
        audit_entry(AuditAction::SecretSet, NOW + 180_000, &acme, Some(&sync)),
    ];
    for entry in &entries {
        store.append_audit(entry).await.unwrap();
    }
    entries.reverse();
    entries
}

async fn entries(store: &dyn Store, query: AuditQuery) -> Vec<AuditEntry> {
    store.audit_entries(&query).await.unwrap()
}

pub async fn entries_are_listed_newest_first(store: &dyn Store) {
    let all = given_entries(store).await;
    assert_eq!(all_entries(store).await, all);
}

pub async fn entries_filter_by_team(store: &dyn Store) {
    let all = given_entries(store).await;
    let acme_id = all[0].team_id.clone();
    let by_id = entries(
        store,
        AuditQuery {
            team_id: acme_id,
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(by_id, vec![all[0].clone(), all[3].clone()]);
    let by_name = entries(
        store,
        AuditQuery {
            team_name: Some("other".into()),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(by_name, vec![all[1].clone(), all[2].clone()]);
}

pub async fn entries_filter_by_workflow_id_or_name(store: &dyn Store) {
    let all = given_entries(store).await;
    for workflow in [all[0].workflow_id.clone(), all[0].workflow_name.clone()] {
        let found = entries(
            store,
            AuditQuery {
                workflow,
                ..AuditQuery::default()
            },
        )
        .await;
        assert_eq!(found, vec![all[0].clone(), all[3].clone()]);
    }
}

pub async fn entries_filter_by_actor_id_or_name(store: &dyn Store) {
    let all = given_entries(store).await;
    for actor in ["key-admin", "admin"] {
        let found = entries(
            store,
            AuditQuery {
                actor: Some(actor.into()),
                ..AuditQuery::default()
            },
        )
        .await;
        assert_eq!(found, vec![all[1].clone()]);
    }
}

pub async fn entries_filter_by_time_and_page_by_id(store: &dyn Store) {
    let all = given_entries(store).await;
    let since = entries(
        store,
        AuditQuery {
            since: Some(NOW + 120_000),
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(since, vec![all[0].clone(), all[1].clone()]);
    let page = entries(
        store,
        AuditQuery {
            before_id: Some(all[1].id.clone()),
            limit: 1,
            ..AuditQuery::default()
        },
    )
    .await;
    assert_eq!(page, vec![all[2].clone()]);
}

pub async fn the_retention_deletes_only_older_entries(store: &dyn Store) {
    let all = given_entries(store).await;
    assert_eq!(store.delete_audit_before(NOW + 120_000).await.unwrap(), 2);
    assert_eq!(all_entries(store).await, all[..2].to_vec());
}

pub async fn entries_outlive_what_they_name(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let entry = audit_entry(AuditAction::WorkflowDeleted, NOW, &team, Some(&workflow));
    store
        .delete_workflow_audited(&workflow.id, Some(&entry))
        .await
        .unwrap();
    let gone = audit_entry(AuditAction::TeamDeleted, NOW + 1, &team, None);
    store.delete_team(&team.id, &gone).await.unwrap();
    assert_eq!(all_entries(store).await, vec![gone, entry]);
}
