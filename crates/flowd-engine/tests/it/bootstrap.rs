//! The first start's bootstrap, and its recovery from a first start interrupted between steps:
//! each test makes the data dir such an interruption leaves, then starts the engine on it.

use std::path::Path;

use flowd_engine::auth::{ADMIN_KEY_FILE, DEFAULT_TEAM};
use flowd_engine::Bootstrap;
use flowd_store::{SqliteStore, Store, TeamRecord};

use crate::support::open_engine;

const GIVEN_KEY: &str = "bootstrap-test-admin-key";

fn data_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("flowd-bootstrap-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("tmp")
}

/// The state a kill between creating the team and storing its key left behind.
async fn given_a_team_without_a_key(dir: &Path) {
    let store = SqliteStore::open(&dir.join("flowd.db"))
        .await
        .expect("store");
    store
        .create_team(&TeamRecord {
            id: uuid::Uuid::now_v7().to_string(),
            name: DEFAULT_TEAM.into(),
            created_at: 1,
        })
        .await
        .expect("team");
    store.close().await;
}

async fn team_count(dir: &Path) -> u64 {
    let store = SqliteStore::open(&dir.join("flowd.db"))
        .await
        .expect("store");
    let count = store.count_teams().await.expect("count");
    store.close().await;
    count
}

fn key_in_file(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(ADMIN_KEY_FILE))
        .expect("the key file")
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_left_without_a_key_gets_the_configured_key_at_the_next_start() {
    let dir = data_dir();
    given_a_team_without_a_key(dir.path()).await;
    let engine = open_engine(dir.path()).await;
    let outcome = engine.bootstrap(Some(GIVEN_KEY), dir.path()).await.unwrap();
    assert_eq!(outcome, Bootstrap::WithGivenKey);
    let principal = engine.authenticate(GIVEN_KEY).await.unwrap();
    assert!(principal.is_some_and(|p| p.is_admin() && p.team_name == DEFAULT_TEAM));
    assert_eq!(team_count(dir.path()).await, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_left_without_a_key_gets_a_generated_key_in_the_key_file_at_the_next_start() {
    let dir = data_dir();
    given_a_team_without_a_key(dir.path()).await;
    let engine = open_engine(dir.path()).await;
    let outcome = engine.bootstrap(None, dir.path()).await.unwrap();
    let key = key_in_file(dir.path());
    assert_eq!(outcome, Bootstrap::WithGeneratedKey(key.clone()));
    let principal = engine.authenticate(&key).await.unwrap();
    assert!(principal.is_some_and(|p| p.is_admin()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_written_before_a_kill_is_the_key_stored_at_the_next_start() {
    let dir = data_dir();
    let written = "flowd_a-key-written-by-an-interrupted-start";
    std::fs::write(dir.path().join(ADMIN_KEY_FILE), format!("{written}\n")).unwrap();
    let engine = open_engine(dir.path()).await;
    let outcome = engine.bootstrap(None, dir.path()).await.unwrap();
    assert_eq!(outcome, Bootstrap::WithGeneratedKey(written.to_string()));
    assert!(engine.authenticate(written).await.unwrap().is_some());
    assert_eq!(key_in_file(dir.path()), written);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_key_file_that_cannot_be_written_stores_no_team_and_no_key() {
    let dir = data_dir();
    let engine = open_engine(dir.path()).await;
    let missing = dir.path().join("no-such-dir");
    let error = engine.bootstrap(None, &missing).await.unwrap_err();
    assert!(error.to_string().contains(ADMIN_KEY_FILE), "{error}");
    assert_eq!(team_count(dir.path()).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_after_a_complete_bootstrap_changes_nothing() {
    let dir = data_dir();
    let engine = open_engine(dir.path()).await;
    engine.bootstrap(None, dir.path()).await.unwrap();
    let key = key_in_file(dir.path());
    let again = engine.bootstrap(Some(GIVEN_KEY), dir.path()).await.unwrap();
    assert_eq!(again, Bootstrap::AlreadyDone);
    assert!(engine.authenticate(GIVEN_KEY).await.unwrap().is_none());
    assert_eq!(key_in_file(dir.path()), key);
}
