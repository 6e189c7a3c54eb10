//! Secret values at rest, on each backend: sealed in the database, the key's fingerprint checked
//! at open, a store from before the key sealed at its first keyed open, and key rotation.

use std::path::PathBuf;

use flowd_core::settings::SettingsChange;
use flowd_store::{DatabaseUrl, SecretKey, Store, StoreError, StoreWrite};
use serde_json::json;
use sqlx::Connection;
use tempfile::TempDir;

use crate::common::*;

const ENV_VALUE: &str = "env-value-7f3a91c2d4";
const SETTING_VALUE: &str = "setting-value-5be08d17aa";
const CHANGED_VALUE: &str = "changed-value-c61f2e9b30";
const REQUEST_VALUE: &str = "request-value-0d93b1f6e2";

/// A database of one backend, to open several times.
struct Database {
    url: DatabaseUrl,
    _dir: Option<TempDir>,
    _database: Option<flowd_test_postgres::TestDatabase>,
}

impl Database {
    fn sqlite() -> Database {
        let dir = TempDir::new().unwrap();
        Database {
            url: DatabaseUrl::Sqlite(dir.path().join("flowd.db")),
            _dir: Some(dir),
            _database: None,
        }
    }

    async fn postgres() -> Database {
        let database = flowd_test_postgres::fresh_database().await;
        Database {
            url: DatabaseUrl::Postgres(database.url().to_string()),
            _dir: None,
            _database: Some(database),
        }
    }

    async fn open(&self, key: Option<&SecretKey>) -> Result<std::sync::Arc<dyn Store>, StoreError> {
        self.url.open_keyed(key).await
    }

    /// Everything the database holds, as bytes: the SQLite file and its WAL, or the text of every
    /// PostgreSQL column a secret value could be in.
    async fn raw_bytes(&self) -> Vec<u8> {
        match &self.url {
            DatabaseUrl::Sqlite(path) => {
                let mut bytes = std::fs::read(path).unwrap();
                let wal = PathBuf::from(format!("{}-wal", path.display()));
                bytes.extend(std::fs::read(wal).unwrap_or_default());
                bytes
            }
            DatabaseUrl::Postgres(url) => {
                let mut raw = sqlx::PgConnection::connect(url).await.unwrap();
                let text: String = sqlx::query_scalar(
                    "SELECT COALESCE((SELECT string_agg(env::TEXT, '') FROM workflows), '') \
                     || COALESCE((SELECT string_agg(value::TEXT, '') FROM workflow_settings), '') \
                     || COALESCE((SELECT string_agg(settings_changed::TEXT, '') FROM executions), '') \
                     || COALESCE((SELECT string_agg(encode(payload, 'escape'), '') \
                                  FROM stored_requests), '')",
                )
                .fetch_one(&mut raw)
                .await
                .unwrap();
                text.into_bytes()
            }
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

fn other_key() -> SecretKey {
    "0000000000000000000000000000000000000000000000000000000000000001"
        .parse()
        .unwrap()
}

/// A workflow with an environment variable and a setting holding secret values, and a settings
/// change committed as an execution's, with the request of that execution stored.
async fn store_secrets(store: &dyn Store) -> flowd_store::WorkflowRecord {
    let team = given_team(store, "acme").await;
    let workflow = flowd_store::WorkflowRecord {
        env: [("TOKEN".to_string(), ENV_VALUE.to_string())].into(),
        ..workflow(&team.id, "sync")
    };
    store
        .create_workflow(
            &workflow,
            &version(&workflow.id, 1),
            &settings(json!({"API_KEY": SETTING_VALUE})),
        )
        .await
        .unwrap();
    let change = SettingsChange {
        added: settings(json!({"PASSWORD": CHANGED_VALUE})),
        ..SettingsChange::default()
    };
    let execution = execution(&workflow.id, format!("{}-e", workflow.id));
    store
        .commit(&[
            StoreWrite::ApplySettingsChange {
                workflow_id: workflow.id.clone(),
                change,
            },
            StoreWrite::PutExecution(execution.clone()),
            StoreWrite::PutStoredRequest(stored_request(
                &execution,
                &[("x-token", REQUEST_VALUE.as_bytes())],
                REQUEST_VALUE.as_bytes(),
            )),
        ])
        .await
        .unwrap();
    workflow
}

async fn assert_secrets_read_back(store: &dyn Store, workflow_id: &str) {
    let stored = store.workflow_by_id(workflow_id).await.unwrap().unwrap();
    assert_eq!(stored.env["TOKEN"], ENV_VALUE);
    assert_eq!(
        store.settings(workflow_id).await.unwrap(),
        settings(json!({"API_KEY": SETTING_VALUE, "PASSWORD": CHANGED_VALUE}))
    );
    let request = store
        .stored_request(&format!("{workflow_id}-e"))
        .await
        .unwrap()
        .expect("the stored request");
    assert_eq!(request.body, REQUEST_VALUE.as_bytes());
}

fn assert_no_secret_in(bytes: &[u8]) {
    for value in [ENV_VALUE, SETTING_VALUE, CHANGED_VALUE, REQUEST_VALUE] {
        assert!(!contains(bytes, value), "{value} is stored in clear");
    }
}

async fn secret_values_are_sealed_at_rest(database: Database) {
    let store = database.open(Some(&secret_key())).await.unwrap();
    let workflow = store_secrets(&*store).await;

    assert_secrets_read_back(&*store, &workflow.id).await;
    assert_no_secret_in(&database.raw_bytes().await);
}

async fn a_store_opened_with_another_key_is_refused(database: Database) {
    let store = database.open(Some(&secret_key())).await.unwrap();
    store_secrets(&*store).await;

    let refused = database.open(Some(&other_key())).await.err();

    assert!(
        matches!(refused, Some(StoreError::WrongSecretKey { .. })),
        "{refused:?}"
    );
}

async fn a_sealed_store_opened_without_a_key_is_refused(database: Database) {
    let store = database.open(Some(&secret_key())).await.unwrap();
    store_secrets(&*store).await;

    let refused = database.open(None).await.err();

    assert!(
        matches!(refused, Some(StoreError::SecretKeyMissing { .. })),
        "{refused:?}"
    );
}

async fn a_store_kept_in_clear_is_sealed_at_its_first_open_with_a_key(database: Database) {
    let clear = database.open(None).await.unwrap();
    let workflow = store_secrets(&*clear).await;
    drop(clear);

    let sealed = database.open(Some(&secret_key())).await.unwrap();

    assert_secrets_read_back(&*sealed, &workflow.id).await;
    assert_no_secret_in(&database.raw_bytes().await);
    let reopened = database.open(Some(&secret_key())).await.unwrap();
    assert_secrets_read_back(&*reopened, &workflow.id).await;
}

async fn rotation_reseals_every_value_under_the_new_key(database: Database) {
    let store = database.open(Some(&secret_key())).await.unwrap();
    let workflow = store_secrets(&*store).await;
    drop(store);

    database
        .url
        .rotate_secret_key(&secret_key(), &other_key())
        .await
        .unwrap();

    let rotated = database.open(Some(&other_key())).await.unwrap();
    assert_secrets_read_back(&*rotated, &workflow.id).await;
    assert!(matches!(
        database.open(Some(&secret_key())).await.err(),
        Some(StoreError::WrongSecretKey { .. })
    ));
}

async fn rotation_from_a_key_that_is_not_the_stores_changes_nothing(database: Database) {
    let store = database.open(Some(&secret_key())).await.unwrap();
    let workflow = store_secrets(&*store).await;
    drop(store);
    let third: SecretKey = "0000000000000000000000000000000000000000000000000000000000000002"
        .parse()
        .unwrap();

    let refused = database.url.rotate_secret_key(&other_key(), &third).await;

    assert!(matches!(refused, Err(StoreError::WrongSecretKey { .. })));
    let store = database.open(Some(&secret_key())).await.unwrap();
    assert_secrets_read_back(&*store, &workflow.id).await;
}

macro_rules! on_each_backend {
    ($($test:ident),* $(,)?) => {
        mod sqlite_file {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Database::sqlite()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $test() {
                    super::$test(super::Database::postgres().await).await;
                }
            )*
        }
    };
}

on_each_backend!(
    secret_values_are_sealed_at_rest,
    a_store_opened_with_another_key_is_refused,
    a_sealed_store_opened_without_a_key_is_refused,
    a_store_kept_in_clear_is_sealed_at_its_first_open_with_a_key,
    rotation_reseals_every_value_under_the_new_key,
    rotation_from_a_key_that_is_not_the_stores_changes_nothing,
);
