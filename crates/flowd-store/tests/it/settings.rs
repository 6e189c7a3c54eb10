//! A workflow's settings: replaced whole, or changed key by key by executions.

use crate::common::*;
use flowd_core::settings::SettingsChange;
use flowd_store::{Store, StoreWrite};
use serde_json::json;

fn apply(workflow_id: &str, change: SettingsChange) -> StoreWrite {
    StoreWrite::ApplySettingsChange {
        workflow_id: workflow_id.to_string(),
        change,
    }
}

pub async fn created_workflow_has_its_initial_settings(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": 1, "b": 2}))
    );
}

pub async fn settings_of_an_unknown_workflow_are_empty(store: &dyn Store) {
    given_team_with_workflow(store).await;
    assert!(store.settings(&new_id()).await.unwrap().is_empty());
}

pub async fn settings_keep_json_values_exactly(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let values = settings(json!({
        "null": null,
        "bools": [true, false],
        "big": u64::MAX,
        "negative": i64::MIN,
        "float": 0.1,
        "text": "héllo \"quoted\" ✓\n\u{0}",
        "empty": {},
        "nested": {"list": [1, "two", {"three": [3.5]}], "deep": {"x": {"y": {}}}},
        "clé ✓ \"quoted\"": "",
    }));
    store.replace_settings(&workflow.id, &values).await.unwrap();
    assert_eq!(store.settings(&workflow.id).await.unwrap(), values);
}

pub async fn replace_settings_replaces_every_key(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let replacement = settings(json!({"b": "two", "c": [3]}));
    store
        .replace_settings(&workflow.id, &replacement)
        .await
        .unwrap();
    assert_eq!(store.settings(&workflow.id).await.unwrap(), replacement);
    store
        .replace_settings(&workflow.id, &Default::default())
        .await
        .unwrap();
    assert!(store.settings(&workflow.id).await.unwrap().is_empty());
}

pub async fn replace_settings_of_a_missing_workflow_is_not_found(store: &dyn Store) {
    let ghost = new_id();
    assert_not_found(store.replace_settings(&ghost, &Default::default()).await);
    assert_not_found(
        store
            .replace_settings(&ghost, &settings(json!({"a": 1})))
            .await,
    );
    assert!(store.settings(&ghost).await.unwrap().is_empty());
}

pub async fn change_upserts_added_and_changed_keys(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let change = SettingsChange {
        added: settings(json!({"c": {"new": true}})),
        changed: settings(json!({"a": "one"})),
        removed: Vec::new(),
    };
    store.commit(&[apply(&workflow.id, change)]).await.unwrap();
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": "one", "b": 2, "c": {"new": true}}))
    );
}

pub async fn change_deletes_removed_keys(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let change = SettingsChange {
        // Removing a key that is already gone is no error.
        removed: vec!["a".to_string(), "never-there".to_string()],
        ..Default::default()
    };
    store.commit(&[apply(&workflow.id, change)]).await.unwrap();
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"b": 2}))
    );
}

pub async fn change_keeps_untouched_keys(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    // Someone changed "b" since the execution took its snapshot.
    store
        .replace_settings(&workflow.id, &settings(json!({"a": 1, "b": "fresh"})))
        .await
        .unwrap();
    let change = SettingsChange {
        changed: settings(json!({"a": 10})),
        ..Default::default()
    };
    store.commit(&[apply(&workflow.id, change)]).await.unwrap();
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": 10, "b": "fresh"}))
    );
}

pub async fn changes_to_different_keys_both_survive(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let snapshot = store.settings(&workflow.id).await.unwrap();
    let first = SettingsChange::between(&snapshot, &settings(json!({"a": 100, "b": 2})));
    let second = SettingsChange::between(&snapshot, &settings(json!({"a": 1, "c": 3})));
    store.commit(&[apply(&workflow.id, first)]).await.unwrap();
    store.commit(&[apply(&workflow.id, second)]).await.unwrap();
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": 100, "c": 3}))
    );
}

pub async fn on_the_same_key_the_later_change_wins(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let snapshot = store.settings(&workflow.id).await.unwrap();
    let first = SettingsChange::between(&snapshot, &settings(json!({"a": "first", "b": 2})));
    let second = SettingsChange::between(&snapshot, &settings(json!({"a": "second", "b": 2})));
    store.commit(&[apply(&workflow.id, first)]).await.unwrap();
    store.commit(&[apply(&workflow.id, second)]).await.unwrap();
    assert_eq!(
        store.settings(&workflow.id).await.unwrap(),
        settings(json!({"a": "second", "b": 2}))
    );
}

pub async fn concurrent_commits_to_different_keys_all_persist(store: &dyn Store) {
    let (_, workflow) = given_team_with_workflow(store).await;
    let set = |key: &str| {
        let change = SettingsChange {
            added: settings(json!({ key: key })),
            ..Default::default()
        };
        let writes = vec![
            StoreWrite::PutExecution(running(&workflow.id, new_id())),
            apply(&workflow.id, change),
        ];
        async move { store.commit(&writes).await }
    };
    let results = tokio::join!(
        set("k1"),
        set("k2"),
        set("k3"),
        set("k4"),
        set("k5"),
        set("k6"),
        set("k7"),
        set("k8"),
    );
    for result in [
        results.0, results.1, results.2, results.3, results.4, results.5, results.6, results.7,
    ] {
        result.unwrap();
    }
    let stored = store.settings(&workflow.id).await.unwrap();
    for key in ["a", "b", "k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"] {
        assert!(stored.contains_key(key), "{key} missing from {stored:?}");
    }
}

pub async fn change_to_a_missing_workflow_is_not_found(store: &dyn Store) {
    let ghost = new_id();
    let upsert = SettingsChange {
        added: settings(json!({"a": 1})),
        ..Default::default()
    };
    let removal = SettingsChange {
        removed: vec!["a".to_string()],
        ..Default::default()
    };
    assert_not_found(store.commit(&[apply(&ghost, upsert)]).await);
    assert_not_found(store.commit(&[apply(&ghost, removal)]).await);
}
