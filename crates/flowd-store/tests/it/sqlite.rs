//! What is particular to the SQLite backend: its file.

use crate::common::*;
use flowd_store::{SqliteStore, Store, StoreError, StoreWrite};
use sqlx::{Connection, SqliteConnection};
use std::path::Path;
use tempfile::TempDir;

/// A connection to the store's file that bypasses the store, to look at or spoil its contents.
async fn raw(path: &Path) -> SqliteConnection {
    SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap()
}

#[tokio::test]
async fn reopening_a_file_store_keeps_the_data() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (team, workflow) = given_team_with_workflow(&store).await;
    let key = api_key(&team.id, &"ab".repeat(32));
    store.create_api_key(&key).await.unwrap();
    let execution = execution(&workflow.id, new_id());
    store
        .commit(&[StoreWrite::PutExecution(execution.clone())])
        .await
        .unwrap();
    store.close().await;
    drop(store);

    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.team_by_id(&team.id).await.unwrap(), Some(team));
    assert_eq!(
        store.api_key_by_hash(&key.key_hash).await.unwrap(),
        Some(key)
    );
    assert_eq!(
        store.workflow_by_id(&workflow.id).await.unwrap(),
        Some(workflow.clone())
    );
    assert_eq!(store.list_versions(&workflow.id).await.unwrap().len(), 1);
    assert_eq!(store.settings(&workflow.id).await.unwrap().len(), 2);
    assert_eq!(
        store.execution(&execution.id).await.unwrap(),
        Some(execution)
    );
}

#[tokio::test]
async fn database_file_is_readable_by_its_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    given_team_with_workflow(&store).await;
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    // SQLite gives its WAL and shared-memory files the database file's mode.
    assert_eq!(mode(&dir.path().join("flowd.db-wal")), 0o600);
    assert_eq!(mode(&dir.path().join("flowd.db-shm")), 0o600);
}

#[tokio::test]
async fn database_is_in_wal_mode() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let _store = SqliteStore::open(&path).await.unwrap();
    let mut conn = raw(&path).await;
    let journal_mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(journal_mode, "wal");
}

#[tokio::test]
async fn unknown_enum_value_reads_as_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;
    sqlx::query("UPDATE workflows SET mode = 'sometimes' WHERE id = ?")
        .bind(&workflow.id)
        .execute(&mut raw(&path).await)
        .await
        .unwrap();
    match store.workflow_by_id(&workflow.id).await {
        Err(StoreError::Corrupt(message)) => assert!(message.contains("mode"), "{message}"),
        other => panic!("expected corrupt data, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_json_reads_as_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;
    sqlx::query("UPDATE workflow_settings SET value = '{not json' WHERE workflow_id = ?")
        .bind(&workflow.id)
        .execute(&mut raw(&path).await)
        .await
        .unwrap();
    assert!(matches!(
        store.settings(&workflow.id).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn opening_in_a_missing_directory_fails() {
    let dir = TempDir::new().unwrap();
    let result = SqliteStore::open(&dir.path().join("missing").join("flowd.db")).await;
    assert!(result.is_err());
}
