//! Teams and API keys.

use crate::common::*;
use flowd_core::access::{AuditAction, Role};
use flowd_store::{ApiKeyRecord, Store};

pub async fn creates_and_reads_back_a_team(store: &dyn Store) {
    let team = team("acme");
    store.create_team(&team).await.unwrap();
    assert_eq!(
        store.team_by_id(&team.id).await.unwrap(),
        Some(team.clone())
    );
    assert_eq!(store.team_by_name("acme").await.unwrap(), Some(team));
}

pub async fn unknown_team_reads_as_none(store: &dyn Store) {
    given_team(store, "acme").await;
    assert_eq!(store.team_by_id(&new_id()).await.unwrap(), None);
    assert_eq!(store.team_by_name("other").await.unwrap(), None);
}

pub async fn team_name_taken_is_a_conflict(store: &dyn Store) {
    given_team(store, "acme").await;
    let message = assert_conflict(store.create_team(&team("acme")).await);
    assert!(message.contains("\"acme\""), "{message}");
    assert_eq!(store.count_teams().await.unwrap(), 1);
}

pub async fn counts_teams(store: &dyn Store) {
    assert_eq!(store.count_teams().await.unwrap(), 0);
    given_team(store, "a").await;
    given_team(store, "b").await;
    assert_eq!(store.count_teams().await.unwrap(), 2);
}

pub async fn creates_and_finds_an_api_key_by_hash(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let key = api_key(&team.id, &"ab".repeat(32));
    let other = ApiKeyRecord {
        role: Role::Developer,
        name: "other".to_string(),
        ..api_key(&team.id, &"cd".repeat(32))
    };
    store.create_api_key(&key).await.unwrap();
    store.create_api_key(&other).await.unwrap();
    assert_eq!(
        store.api_key_by_hash(&key.key_hash).await.unwrap(),
        Some(key)
    );
    assert_eq!(
        store.api_key_by_hash(&other.key_hash).await.unwrap(),
        Some(other)
    );
}

pub async fn counts_the_admin_keys_of_a_team(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let other_team = given_team(store, "other").await;
    assert_eq!(store.count_admin_keys(&team.id).await.unwrap(), 0);
    store
        .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
        .await
        .unwrap();
    store
        .create_api_key(&ApiKeyRecord {
            role: Role::Developer,
            ..api_key(&team.id, &"cd".repeat(32))
        })
        .await
        .unwrap();
    assert_eq!(store.count_admin_keys(&team.id).await.unwrap(), 1);
    assert_eq!(store.count_admin_keys(&other_team.id).await.unwrap(), 0);
}

pub async fn unknown_api_key_hash_reads_as_none(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    store
        .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
        .await
        .unwrap();
    assert_eq!(store.api_key_by_hash(&"ef".repeat(32)).await.unwrap(), None);
}

pub async fn api_key_hash_taken_is_a_conflict(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    store
        .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
        .await
        .unwrap();
    assert_conflict(
        store
            .create_api_key(&api_key(&team.id, &"ab".repeat(32)))
            .await,
    );
}

pub async fn api_key_of_unknown_team_is_not_found(store: &dyn Store) {
    assert_not_found(
        store
            .create_api_key(&api_key(&new_id(), &"ab".repeat(32)))
            .await,
    );
}

pub async fn lists_teams_by_name(store: &dyn Store) {
    let b = given_team(store, "b").await;
    let a = given_team(store, "a").await;
    assert_eq!(store.list_teams().await.unwrap(), vec![a, b]);
}

pub async fn creating_a_team_audited_records_its_entry(store: &dyn Store) {
    let team = team("acme");
    let entry = audit_entry(AuditAction::TeamCreated, NOW, &team, None);
    store
        .create_team_audited(&team, Some(&entry))
        .await
        .unwrap();
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn a_team_not_created_records_no_entry(store: &dyn Store) {
    given_team(store, "acme").await;
    let again = team("acme");
    let entry = audit_entry(AuditAction::TeamCreated, NOW, &again, None);
    assert_conflict(store.create_team_audited(&again, Some(&entry)).await);
    assert_eq!(all_entries(store).await, vec![]);
}

pub async fn renames_a_team_and_records_the_entry(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let entry = audit_entry(AuditAction::TeamRenamed, NOW, &team, None);
    store
        .rename_team(&team.id, "acme-eu", &entry)
        .await
        .unwrap();
    let renamed = store.team_by_id(&team.id).await.unwrap().unwrap();
    assert_eq!(renamed.name, "acme-eu");
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn renaming_a_team_to_a_taken_name_is_a_conflict_and_records_nothing(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    given_team(store, "other").await;
    let entry = audit_entry(AuditAction::TeamRenamed, NOW, &team, None);
    assert_conflict(store.rename_team(&team.id, "other", &entry).await);
    assert_eq!(all_entries(store).await, vec![]);
}

pub async fn renaming_an_unknown_team_is_not_found(store: &dyn Store) {
    let ghost = team("ghost");
    let entry = audit_entry(AuditAction::TeamRenamed, NOW, &ghost, None);
    assert_not_found(store.rename_team(&ghost.id, "x", &entry).await);
}

pub async fn deletes_a_team_with_its_keys_and_records_the_entry(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let key = api_key(&team.id, &"ab".repeat(32));
    store.create_api_key(&key).await.unwrap();
    let entry = audit_entry(AuditAction::TeamDeleted, NOW, &team, None);
    store.delete_team(&team.id, &entry).await.unwrap();
    assert_eq!(store.team_by_id(&team.id).await.unwrap(), None);
    assert_eq!(store.api_key_by_id(&key.id).await.unwrap(), None);
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn a_team_with_workflows_is_not_deleted(store: &dyn Store) {
    let (team, workflow) = given_team_with_workflow(store).await;
    let entry = audit_entry(AuditAction::TeamDeleted, NOW, &team, None);
    let message = assert_conflict(store.delete_team(&team.id, &entry).await);
    assert!(message.contains("workflow"), "{message}");
    assert!(store.workflow_by_id(&workflow.id).await.unwrap().is_some());
    assert_eq!(all_entries(store).await, vec![]);
}

pub async fn deleting_an_unknown_team_is_not_found(store: &dyn Store) {
    let ghost = team("ghost");
    let entry = audit_entry(AuditAction::TeamDeleted, NOW, &ghost, None);
    assert_not_found(store.delete_team(&ghost.id, &entry).await);
}

pub async fn a_key_reads_back_with_its_role_prefix_expiry_and_last_use(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let key = ApiKeyRecord {
        role: Role::Viewer,
        last_used_at: Some(NOW + 5),
        ..api_key(&team.id, &"ab".repeat(32))
    };
    store.create_api_key(&key).await.unwrap();
    assert_eq!(store.api_key_by_id(&key.id).await.unwrap(), Some(key));
}

pub async fn lists_the_keys_of_a_team_or_of_every_team(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let other = given_team(store, "other").await;
    let first = api_key(&team.id, &"ab".repeat(32));
    let second = ApiKeyRecord {
        created_at: NOW + 2,
        ..api_key(&other.id, &"cd".repeat(32))
    };
    store.create_api_key(&second).await.unwrap();
    store.create_api_key(&first).await.unwrap();
    assert_eq!(
        store.list_api_keys(Some(&team.id)).await.unwrap(),
        vec![first.clone()]
    );
    assert_eq!(
        store.list_api_keys(None).await.unwrap(),
        vec![first, second]
    );
}

pub async fn creating_a_key_audited_records_its_entry(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let key = api_key(&team.id, &"ab".repeat(32));
    let entry = audit_entry(AuditAction::KeyCreated, NOW, &team, None);
    store
        .create_api_key_audited(&key, Some(&entry))
        .await
        .unwrap();
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn revoking_a_key_deletes_it_and_records_the_entry(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let key = api_key(&team.id, &"ab".repeat(32));
    store.create_api_key(&key).await.unwrap();
    let entry = audit_entry(AuditAction::KeyRevoked, NOW, &team, None);
    assert!(store.revoke_api_key(&key.id, &entry).await.unwrap());
    assert_eq!(store.api_key_by_hash(&key.key_hash).await.unwrap(), None);
    assert_eq!(all_entries(store).await, vec![entry]);
}

pub async fn revoking_an_unknown_key_answers_false_and_records_nothing(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let entry = audit_entry(AuditAction::KeyRevoked, NOW, &team, None);
    assert!(!store.revoke_api_key(&new_id(), &entry).await.unwrap());
    assert_eq!(all_entries(store).await, vec![]);
}

pub async fn touching_a_key_records_its_last_use(store: &dyn Store) {
    let team = given_team(store, "acme").await;
    let key = api_key(&team.id, &"ab".repeat(32));
    store.create_api_key(&key).await.unwrap();
    store.touch_api_key(&key.id, NOW + 60_000).await.unwrap();
    let touched = store.api_key_by_id(&key.id).await.unwrap().unwrap();
    assert_eq!(touched.last_used_at, Some(NOW + 60_000));
}
