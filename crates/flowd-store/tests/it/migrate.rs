//! `migrate::sqlite_to_postgres`: a SQLite store with every kind of record, made through the
//! `Store` API, read back record by record from the PostgreSQL database it was copied into; and
//! each input it refuses.

use std::path::{Path, PathBuf};

use crate::common::*;
use flowd_core::access::{AuditAction, Role};
use flowd_core::settings::SettingsChange;
use flowd_core::workflow::{ExecutionStatus, Mode, Trigger, VersionState};
use flowd_store::migrate::{sqlite_to_postgres, CopiedTable, MigrateError, TABLES};
use flowd_store::{
    AsyncCallRecord, AsyncCallState, Enqueued, ExecutionQuery, ExecutionRecord, IdempotencyClaim,
    IdempotencyClaimOutcome, PostgresStore, QueueBound, QueuedRequest, SqliteStore, Store,
    StoreError, StoreWrite, StoredResponse, TeamRecord, VersionOutcome, WorkflowRecord,
};
use flowd_test_postgres::fresh_database;
use serde_json::json;
use sqlx::{Connection, PgConnection, SqliteConnection};
use tempfile::TempDir;

/// What the source store holds, to compare the target with.
struct Made {
    teams: Vec<TeamRecord>,
    key_hashes: Vec<String>,
    workflows: Vec<WorkflowRecord>,
    /// (workflow id, key) of each idempotency key.
    idempotency_keys: Vec<(String, String)>,
    /// The token of each asynchronous call.
    async_call_tokens: Vec<String>,
}

/// A closed SQLite store at `<dir>/flowd.db`, made by `fill`, its secret values sealed under
/// [`secret_key`].
async fn sqlite_store<F>(dir: &TempDir, fill: F) -> (PathBuf, Made)
where
    F: AsyncFnOnce(&SqliteStore) -> Made,
{
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open_keyed(&path, Some(&secret_key()))
        .await
        .unwrap();
    let made = fill(&store).await;
    store.close().await;
    (path, made)
}

/// Two teams with keys; a pull workflow with every field set (its own retention included) and a
/// catch workflow with the optional ones unset; secret values sealed under the store's key; ready, failed and building versions; settings (secret ones included)
/// changed by executions; executions of each status, a scheduled, a running and a skipped one
/// among them, with what user code can produce (U+0000, non-ASCII) in logs and build logs; an
/// idempotency key answered (a binary response body) and one still held by its execution; a
/// stored request (binary header value and body).
async fn every_kind_of_record(store: &SqliteStore) -> Made {
    let acme = given_team(store, "acme").await;
    let globex = given_team(store, "globex ✓").await;
    let mut key_hashes = Vec::new();
    for (team, hash, role) in [
        (&acme, "a1", Role::Admin),
        (&acme, "a2", Role::Viewer),
        (&globex, "g1", Role::Developer),
    ] {
        let key = flowd_store::ApiKeyRecord {
            role,
            ..api_key(&team.id, hash)
        };
        store.create_api_key(&key).await.unwrap();
        key_hashes.push(hash.to_string());
    }

    let pull = given_workflow(store, &acme.id, "nightly-sync").await;
    for (action, at) in [
        (AuditAction::WorkflowCreated, NOW + 1),
        (AuditAction::WorkflowPaused, NOW + 2),
    ] {
        store
            .append_audit(&audit_entry(action, at, &acme, Some(&pull)))
            .await
            .unwrap();
    }
    store
        .add_version(&building_version(&pull.id, 2), NOW + 10)
        .await
        .unwrap();
    store
        .settle_version(&VersionOutcome {
            workflow_id: pull.id.clone(),
            version: 2,
            state: VersionState::Failed,
            build_log: "Traceback\u{0} ✓\nImportError".to_string(),
            error: Some("ImportError: no module named 'x\u{0}'".to_string()),
            environment: None,
            settled_at: NOW + 20,
        })
        .await
        .unwrap();
    store
        .add_version(&building_version(&pull.id, 3), NOW + 30)
        .await
        .unwrap();
    store
        .replace_settings(
            &pull.id,
            &settings(
                json!({"zeta": 1, "API_KEY": "s3cret", "alpha": {"nested": [1, 2.5, null]},
                "text": "héllo\u{0}"}),
            ),
        )
        .await
        .unwrap();

    let catch = WorkflowRecord {
        mode: Mode::Catch,
        version: None,
        secret_keys: Vec::new(),
        env: Default::default(),
        schedule: None,
        next_fire_at: None,
        max_concurrency: None,
        enabled: false,
        verify: None,
        idempotency_header: None,
        retention: None,
        egress_allow: Vec::new(),
        alerts: None,
        on_failure: None,
        ..workflow(&globex.id, "hook")
    };
    store
        .create_workflow(&catch, &building_version(&catch.id, 1), &Default::default())
        .await
        .unwrap();

    let finished = ExecutionRecord {
        logs: "out\u{0}put ✓\n".to_string(),
        ..execution(&pull.id, new_id())
    };
    let succeeded = ExecutionRecord {
        status: ExecutionStatus::Success,
        error: None,
        fire_at: None,
        trigger: Trigger::Catch,
        settings_changed: Some(SettingsChange {
            added: settings(json!({"cursor": "2026-01-01"})),
            ..Default::default()
        }),
        ..execution(&catch.id, new_id())
    };
    let skipped = ExecutionRecord {
        status: ExecutionStatus::Skipped,
        trigger: Trigger::Pull,
        fire_at: Some(NOW + 60_000),
        warnings: vec!["a run was still going".to_string()],
        ..running(&pull.id, new_id())
    };
    let still_running = running(&pull.id, new_id());
    store
        .commit(&[
            StoreWrite::PutExecution(finished),
            StoreWrite::PutExecution(succeeded.clone()),
            StoreWrite::PutStoredRequest(stored_request(
                &succeeded,
                &[
                    ("content-type", b"application/json"),
                    ("x-raw", b"\xe9\x00"),
                ],
                b"{\"name\": \"Ana\"}\x00\xff",
            )),
            StoreWrite::ApplySettingsChange {
                workflow_id: catch.id.clone(),
                change: succeeded.settings_changed.clone().unwrap(),
            },
            StoreWrite::PutExecution(skipped),
            StoreWrite::PutExecution(still_running),
            // Stored after the others: last in the workflow's order, first in the alphabet's.
            StoreWrite::ApplySettingsChange {
                workflow_id: pull.id.clone(),
                change: SettingsChange {
                    added: settings(json!({"aardvark": 1})),
                    ..Default::default()
                },
            },
        ])
        .await
        .unwrap();

    let mut idempotency_keys = Vec::new();
    for (key, execution_id) in [
        ("delivery-1", succeeded.id.clone()),
        ("delivery-2", new_id()),
    ] {
        let claim = IdempotencyClaim {
            workflow_id: catch.id.clone(),
            key: key.to_string(),
            request_digest: format!("digest of {key}"),
            execution_id,
            claimed_at: NOW + 100,
            expires_at: NOW + 86_400_000,
            stale_before: NOW,
        };
        assert_eq!(
            store.claim_idempotency_key(&claim).await.unwrap(),
            IdempotencyClaimOutcome::Claimed
        );
        idempotency_keys.push((catch.id.clone(), key.to_string()));
    }
    store
        .commit(&[StoreWrite::CompleteIdempotencyKey {
            workflow_id: catch.id.clone(),
            key: "delivery-1".to_string(),
            execution_id: succeeded.id.clone(),
            response: StoredResponse {
                status: 201,
                headers: vec![
                    (
                        "content-type".to_string(),
                        "application/octet-stream".to_string(),
                    ),
                    ("x-note".to_string(), "héllo".to_string()),
                ],
                body: vec![0, 159, 146, 150, b'\n', 255],
            },
        }])
        .await
        .unwrap();

    // An alert sent and recorded, with the rate limit's state it leaves.
    assert_eq!(
        store
            .claim_alert(&pull.id, NOW + 200, 60_000)
            .await
            .unwrap(),
        flowd_store::AlertClaim::Send { suppressed: 0 }
    );
    store
        .record_alert_delivery(&flowd_store::AlertDelivery {
            id: new_id(),
            workflow_id: pull.id.clone(),
            execution_id: new_id(),
            at: NOW + 210,
            status_code: Some(502),
            error: Some("the receiver answered 502 ✓".to_string()),
            attempts: 3,
            suppressed: 0,
        })
        .await
        .unwrap();
    let queued_call = AsyncCallRecord {
        id: new_id(),
        workflow_id: catch.id.clone(),
        token: "async-token-1".to_string(),
        request: QueuedRequest {
            headers: vec![("x-note".to_string(), "héllo".to_string())],
            query: Some("a=1".to_string()),
            body: vec![0, 159, 146, 150, b'\n', 255],
        },
        enqueued_at: NOW + 200,
        state: AsyncCallState::Queued,
        execution_id: new_id(),
        attempt: 2,
        trigger: Trigger::Pull,
        not_before: Some(NOW + 5_000),
    };
    let roomy = QueueBound {
        total: 10,
        per_workflow: 10,
    };
    assert_eq!(
        store.enqueue_async_call(&queued_call, roomy).await.unwrap(),
        Enqueued::Queued
    );

    Made {
        teams: vec![acme, globex],
        key_hashes,
        async_call_tokens: vec![queued_call.token],
        workflows: vec![pull, catch],
        idempotency_keys,
    }
}

/// Every execution of the store, newest first.
async fn all_executions(store: &dyn Store) -> Vec<ExecutionRecord> {
    store
        .list_executions(&ExecutionQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
}

/// Each record of `made` reads back the same from `target` as from `source`.
async fn assert_same_records(source: &dyn Store, target: &dyn Store, made: &Made) {
    assert_eq!(
        source.count_teams().await.unwrap(),
        target.count_teams().await.unwrap()
    );
    for team in &made.teams {
        assert_eq!(
            target.team_by_id(&team.id).await.unwrap().as_ref(),
            Some(team)
        );
        assert_eq!(
            target.list_workflows(&team.id).await.unwrap(),
            source.list_workflows(&team.id).await.unwrap()
        );
        assert_eq!(
            target.count_admin_keys(&team.id).await.unwrap(),
            source.count_admin_keys(&team.id).await.unwrap()
        );
    }
    for hash in &made.key_hashes {
        let key = target.api_key_by_hash(hash).await.unwrap();
        assert!(key.is_some(), "key {hash}");
        assert_eq!(key, source.api_key_by_hash(hash).await.unwrap());
    }
    for workflow in &made.workflows {
        assert_eq!(
            target.workflow_by_id(&workflow.id).await.unwrap(),
            source.workflow_by_id(&workflow.id).await.unwrap()
        );
        assert_eq!(
            target
                .list_alert_deliveries(&workflow.id, 100)
                .await
                .unwrap(),
            source
                .list_alert_deliveries(&workflow.id, 100)
                .await
                .unwrap()
        );
        assert_eq!(
            target.list_versions(&workflow.id).await.unwrap(),
            source.list_versions(&workflow.id).await.unwrap()
        );
        assert_eq!(
            target.settings(&workflow.id).await.unwrap(),
            source.settings(&workflow.id).await.unwrap()
        );
    }
    assert_eq!(
        target.building_versions().await.unwrap(),
        source.building_versions().await.unwrap()
    );
    let executions = all_executions(source).await;
    assert_eq!(all_executions(target).await, executions);
    for execution in &executions {
        assert_eq!(
            target.stored_request(&execution.id).await.unwrap(),
            source.stored_request(&execution.id).await.unwrap(),
            "the stored request of {}",
            execution.id
        );
    }
    assert_eq!(all_entries(target).await, all_entries(source).await);
    for (workflow_id, key) in &made.idempotency_keys {
        let copied = target.idempotency_key(workflow_id, key).await.unwrap();
        assert!(copied.is_some(), "idempotency key {key}");
        assert_eq!(
            copied,
            source.idempotency_key(workflow_id, key).await.unwrap()
        );
    }
    for token in &made.async_call_tokens {
        let copied = target.async_call_by_token(token).await.unwrap();
        assert!(copied.is_some(), "asynchronous call {token}");
        assert_eq!(copied, source.async_call_by_token(token).await.unwrap());
    }
}

/// Writes to a store file with a raw connection (what no flowd would write), closing it after.
async fn raw_sqlite(path: &Path, statement: &str) {
    let mut connection = SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    sqlx::raw_sql(statement)
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

/// The database file and what lies beside it: each file's name and content. A `-shm` file, if
/// a server left one, is SQLite's shared memory (readers mark it), not the store's content.
fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .filter(|entry| {
            !entry
                .as_ref()
                .is_ok_and(|entry| entry.file_name().to_string_lossy().ends_with("-shm"))
        })
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect();
    files.sort();
    files
}

async fn rows_in(url: &str, table: &str) -> i64 {
    let mut connection = PgConnection::connect(url).await.unwrap();
    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&mut connection)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_record_of_the_store_reads_back_the_same_from_postgres() {
    let dir = TempDir::new().unwrap();
    let (path, made) = sqlite_store(&dir, every_kind_of_record).await;
    let database = fresh_database().await;

    let copied = sqlite_to_postgres(&path, database.url()).await.unwrap();

    let counts: Vec<(&str, u64)> = copied.iter().map(|t| (t.table, t.rows)).collect();
    assert_eq!(
        counts,
        [
            ("teams", 2),
            ("api_keys", 3),
            ("workflows", 2),
            ("workflow_versions", 4),
            ("workflow_settings", 6),
            ("executions", 4),
            ("audit_log", 2),
            ("idempotency_keys", 2),
            ("alert_state", 1),
            ("alert_deliveries", 1),
            ("async_calls", 1),
            ("stored_requests", 1),
            ("secret_key_fingerprint", 1),
        ]
    );
    let source = SqliteStore::open_keyed(&path, Some(&secret_key()))
        .await
        .unwrap();
    let target = PostgresStore::connect_keyed(database.url(), Some(&secret_key()))
        .await
        .unwrap();
    assert_same_records(&source, &target, &made).await;

    // Secret values are copied as they are, sealed under the source's key: the target's nodes
    // need that key, and a node without it is refused.
    let mut raw = PgConnection::connect(database.url()).await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT value::TEXT FROM workflow_settings")
        .fetch_all(&mut raw)
        .await
        .unwrap();
    assert!(
        stored.iter().all(|value| !value.contains("s3cret")),
        "{stored:?}"
    );
    raw.close().await.unwrap();
    target.close().await;
    assert!(matches!(
        PostgresStore::connect(database.url()).await,
        Err(StoreError::SecretKeyMissing { .. })
    ));
}

#[tokio::test]
async fn a_backup_holds_every_record_of_the_store() {
    let dir = TempDir::new().unwrap();
    let (path, made) = sqlite_store(&dir, every_kind_of_record).await;
    let backup = dir.path().join("backup.db");

    flowd_store::backup_database(&path, &backup).await.unwrap();

    let source = SqliteStore::open_keyed(&path, Some(&secret_key()))
        .await
        .unwrap();
    let copy = SqliteStore::open_keyed(&backup, Some(&secret_key()))
        .await
        .unwrap();
    assert_same_records(&source, &copy, &made).await;
    let mut source_db = SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let mut copy_db = SqliteConnection::connect(&format!("sqlite:{}", backup.display()))
        .await
        .unwrap();
    for table in TABLES {
        let count = format!("SELECT COUNT(*) FROM {table}");
        let in_source: i64 = sqlx::query_scalar(&count)
            .fetch_one(&mut source_db)
            .await
            .unwrap();
        let in_copy: i64 = sqlx::query_scalar(&count)
            .fetch_one(&mut copy_db)
            .await
            .unwrap();
        assert_eq!(in_copy, in_source, "{table}");
    }
}

#[tokio::test]
async fn every_table_of_the_schema_is_copied() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;
    let database = fresh_database().await;

    let copied = sqlite_to_postgres(&path, database.url()).await.unwrap();

    let tables: Vec<&str> = copied.iter().map(|table| table.table).collect();
    assert_eq!(tables, TABLES);
    for CopiedTable { table, rows } in copied {
        assert!(
            rows > 0,
            "{table} was copied empty: the test store lacks its records"
        );
    }
}

#[tokio::test]
async fn executions_beyond_one_batch_are_all_copied() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, async |store: &SqliteStore| {
        let (team, workflow) = given_team_with_workflow(store).await;
        let writes: Vec<StoreWrite> = (0..2_500)
            .map(|n| {
                StoreWrite::PutExecution(ExecutionRecord {
                    fire_at: None,
                    ..execution(&workflow.id, id_at(n))
                })
            })
            .collect();
        store.commit(&writes).await.unwrap();
        Made {
            teams: vec![team],
            key_hashes: Vec::new(),
            workflows: vec![workflow],
            idempotency_keys: Vec::new(),
            async_call_tokens: Vec::new(),
        }
    })
    .await;
    let database = fresh_database().await;

    sqlite_to_postgres(&path, database.url()).await.unwrap();

    let source = SqliteStore::open_keyed(&path, Some(&secret_key()))
        .await
        .unwrap();
    let target = PostgresStore::connect_keyed(database.url(), Some(&secret_key()))
        .await
        .unwrap();
    let mut before_id = None;
    loop {
        let page = ExecutionQuery {
            limit: 1000,
            before_id: before_id.clone(),
            ..Default::default()
        };
        let copied = target.list_executions(&page).await.unwrap();
        assert_eq!(copied, source.list_executions(&page).await.unwrap());
        match copied.last() {
            Some(last) => before_id = Some(last.id.clone()),
            None => break,
        }
    }
    assert_eq!(rows_in(database.url(), "executions").await, 2_500);
}

#[tokio::test]
async fn settings_changed_after_the_copy_keep_merging_key_by_key() {
    let dir = TempDir::new().unwrap();
    let (path, made) = sqlite_store(&dir, every_kind_of_record).await;
    let database = fresh_database().await;
    sqlite_to_postgres(&path, database.url()).await.unwrap();
    let target = PostgresStore::connect_keyed(database.url(), Some(&secret_key()))
        .await
        .unwrap();
    let pull = &made.workflows[0];

    target
        .commit(&[StoreWrite::ApplySettingsChange {
            workflow_id: pull.id.clone(),
            change: SettingsChange {
                added: settings(json!({"new": true})),
                changed: settings(json!({"zeta": 2})),
                removed: vec!["text".to_string()],
            },
        }])
        .await
        .unwrap();

    assert_eq!(
        target.settings(&pull.id).await.unwrap(),
        settings(
            json!({"zeta": 2, "API_KEY": "s3cret", "alpha": {"nested": [1, 2.5, null]},
            "new": true, "aardvark": 1})
        )
    );
}

#[tokio::test]
async fn a_target_that_is_not_empty_is_refused_and_left_as_it_was() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;
    let database = fresh_database().await;
    let target = PostgresStore::connect(database.url()).await.unwrap();
    given_team(&target, "already-here").await;
    target.close().await;

    let error = sqlite_to_postgres(&path, database.url()).await.unwrap_err();

    assert!(
        matches!(&error, MigrateError::TargetNotEmpty { table, rows: 1 } if table == "teams"),
        "{error}"
    );
    assert_eq!(rows_in(database.url(), "teams").await, 1);
    assert_eq!(rows_in(database.url(), "workflows").await, 0);
}

#[tokio::test]
async fn a_copy_that_fails_keeps_nothing() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;
    // The last table copied holds a value the target refuses.
    raw_sqlite(&path, "UPDATE executions SET warnings = 'not JSON'").await;
    let database = fresh_database().await;

    let error = sqlite_to_postgres(&path, database.url()).await.unwrap_err();

    assert!(matches!(error, MigrateError::Target(_)), "{error}");
    for table in TABLES {
        assert_eq!(rows_in(database.url(), table).await, 0, "{table}");
    }
}

#[tokio::test]
async fn a_store_stopped_with_its_write_ahead_log_is_copied_with_it() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let open = SqliteStore::open_keyed(&path, Some(&secret_key()))
        .await
        .unwrap();
    let made = every_kind_of_record(&open).await;
    // The files as a server stopped without checkpointing leaves them: the log holds commits
    // the database file does not.
    let stopped = TempDir::new().unwrap();
    let copy = stopped.path().join("flowd.db");
    std::fs::copy(&path, &copy).unwrap();
    std::fs::copy(
        dir.path().join("flowd.db-wal"),
        stopped.path().join("flowd.db-wal"),
    )
    .unwrap();
    assert!(
        std::fs::metadata(stopped.path().join("flowd.db-wal"))
            .unwrap()
            .len()
            > 0
    );
    let database = fresh_database().await;

    sqlite_to_postgres(&copy, database.url()).await.unwrap();

    let target = PostgresStore::connect_keyed(database.url(), Some(&secret_key()))
        .await
        .unwrap();
    assert_same_records(&open, &target, &made).await;
    open.close().await;
}

#[tokio::test]
async fn the_source_is_not_written_to() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;
    let files_before = files_of(dir.path());
    let database = fresh_database().await;

    sqlite_to_postgres(&path, database.url()).await.unwrap();

    let files_after = files_of(dir.path());
    assert!(
        files_after == files_before,
        "files (name, bytes) before {:?}, after {:?}",
        sizes_of(&files_before),
        sizes_of(&files_after)
    );
}

fn sizes_of(files: &[(String, Vec<u8>)]) -> Vec<(&str, usize)> {
    files
        .iter()
        .map(|(name, bytes)| (name.as_str(), bytes.len()))
        .collect()
}

#[tokio::test]
async fn a_missing_source_file_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nothing-here.db");

    let error = sqlite_to_postgres(&path, "postgres://flowd@127.0.0.1:1/flowd")
        .await
        .unwrap_err();

    assert!(matches!(error, MigrateError::SourceMissing(_)), "{error}");
    assert!(!path.exists(), "the copy created the source");
}

#[tokio::test]
async fn a_file_that_is_not_a_store_is_refused() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(
        &path,
        "these are not the tables you are looking for\n".repeat(100),
    )
    .unwrap();

    let error = sqlite_to_postgres(&path, "postgres://flowd@127.0.0.1:1/flowd")
        .await
        .unwrap_err();

    assert!(matches!(error, MigrateError::NotAStore { .. }), "{error}");
}

#[tokio::test]
async fn a_source_migrated_by_a_newer_flowd_is_refused_naming_both_versions() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;
    raw_sqlite(
        &path,
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer flowd', TRUE, x'00', 0)",
    )
    .await;

    let error = sqlite_to_postgres(&path, "postgres://flowd@127.0.0.1:1/flowd")
        .await
        .unwrap_err();

    assert!(
        matches!(
            error,
            MigrateError::SourceSchemaTooNew { database: 9999, .. }
        ),
        "{error}"
    );
}

#[tokio::test]
async fn a_source_table_the_copy_does_not_know_is_refused() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;
    raw_sqlite(&path, "CREATE TABLE delivery_log (id TEXT PRIMARY KEY)").await;

    let error = sqlite_to_postgres(&path, "postgres://flowd@127.0.0.1:1/flowd")
        .await
        .unwrap_err();

    assert!(
        matches!(&error, MigrateError::UnlistedTable(table) if table == "delivery_log"),
        "{error}"
    );
}

#[tokio::test]
async fn a_target_migrated_by_a_newer_flowd_is_refused() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;
    let database = fresh_database().await;
    PostgresStore::connect(database.url())
        .await
        .unwrap()
        .close()
        .await;
    let mut raw = PgConnection::connect(database.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer flowd', TRUE, '\\x00', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();

    let error = sqlite_to_postgres(&path, database.url()).await.unwrap_err();

    assert!(
        matches!(
            error,
            MigrateError::TargetSchema(StoreError::SchemaTooNew { database: 9999, .. })
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_unreachable_target_is_refused_naming_it_without_its_password() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;

    let error = sqlite_to_postgres(&path, "postgres://flowd:s3cret@127.0.0.1:1/flowd")
        .await
        .unwrap_err();

    assert!(
        matches!(error, MigrateError::TargetUnreachable(..)),
        "{error}"
    );
    let message = error.to_string();
    assert!(
        message.contains("postgres://flowd:***@127.0.0.1:1/flowd"),
        "{message}"
    );
    assert!(!message.contains("s3cret"), "{message}");
}

#[tokio::test]
async fn a_malformed_target_url_is_refused() {
    let dir = TempDir::new().unwrap();
    let (path, _) = sqlite_store(&dir, every_kind_of_record).await;

    let error = sqlite_to_postgres(&path, "postgres://db:not-a-port/flowd")
        .await
        .unwrap_err();

    assert!(matches!(error, MigrateError::TargetUrl(..)), "{error}");
}

#[tokio::test]
async fn a_workflows_settings_keep_the_order_they_were_stored_in() {
    let dir = TempDir::new().unwrap();
    let (path, made) = sqlite_store(&dir, every_kind_of_record).await;
    let database = fresh_database().await;
    let pull = &made.workflows[0].id;
    let mut source = SqliteConnection::connect(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let in_source: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM workflow_settings WHERE workflow_id = ? ORDER BY rowid",
    )
    .bind(pull)
    .fetch_all(&mut source)
    .await
    .unwrap();
    source.close().await.unwrap();

    sqlite_to_postgres(&path, database.url()).await.unwrap();

    let mut target = PgConnection::connect(database.url()).await.unwrap();
    let in_target: Vec<String> = sqlx::query_scalar(
        "SELECT key FROM workflow_settings WHERE workflow_id = $1 ORDER BY position",
    )
    .bind(pull)
    .fetch_all(&mut target)
    .await
    .unwrap();
    assert_eq!(in_source, ["API_KEY", "alpha", "text", "zeta", "aardvark"]);
    assert_eq!(in_target, in_source);
}
