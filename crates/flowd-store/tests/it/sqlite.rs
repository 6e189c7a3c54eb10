//! What is particular to the SQLite backend: its file, and its being one node's.

use crate::common::*;
use flowd_store::{ExecutionRecord, SqliteStore, Store, StoreError, StoreWrite};
use sqlx::sqlite::SqliteConnectOptions;
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
async fn an_egress_exception_that_does_not_parse_reads_as_corrupt() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;
    sqlx::query("UPDATE workflows SET egress_allow = '[\"10.0.0.1/8\"]' WHERE id = ?")
        .bind(&workflow.id)
        .execute(&mut raw(&path).await)
        .await
        .unwrap();
    match store.workflow_by_id(&workflow.id).await {
        Err(StoreError::Corrupt(message)) => {
            assert!(message.contains("egress_allow"), "{message}")
        }
        other => panic!("expected corrupt data, got {other:?}"),
    }
}

#[tokio::test]
async fn opening_in_a_missing_directory_fails() {
    let dir = TempDir::new().unwrap();
    let result = SqliteStore::open(&dir.path().join("missing").join("flowd.db")).await;
    assert!(result.is_err());
}

/// The query plan SQLite picks for `sql`, one line per step.
async fn query_plan(conn: &mut SqliteConnection, sql: &str) -> String {
    let rows: Vec<(i64, i64, i64, String)> = sqlx::query_as(&format!("EXPLAIN QUERY PLAN {sql}"))
        .fetch_all(conn)
        .await
        .unwrap();
    rows.into_iter()
        .map(|(_, _, _, detail)| detail)
        .collect::<Vec<_>>()
        .join("\n")
}

/// A file store in a fresh directory, with a team and a workflow.
struct FileStore {
    dir: TempDir,
    path: std::path::PathBuf,
    store: SqliteStore,
    workflow: flowd_store::WorkflowRecord,
}

async fn file_store_with_workflow() -> FileStore {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;
    FileStore {
        dir,
        path,
        store,
        workflow,
    }
}

/// Another connection holding SQLite's write lock until it commits.
async fn write_lock_held(path: &Path) -> SqliteConnection {
    let mut holder = raw(path).await;
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    holder
}

#[tokio::test]
async fn looking_for_running_executions_reads_only_the_index_of_running_rows() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.close().await;
    let mut conn = raw(&path).await;
    let claim = "SELECT 1 FROM executions WHERE workflow_id = 'w' AND status = 'running' LIMIT 1";
    let plan = query_plan(&mut conn, claim).await;
    assert!(plan.contains("INDEX executions_running"), "{plan}");
    let reap = "UPDATE executions SET status = 'interrupted' \
                WHERE status = 'running' AND node_id = 'n'";
    assert!(query_plan(&mut conn, reap)
        .await
        .contains("executions_running_node"));
}

#[tokio::test]
async fn an_execution_row_is_written_to_one_index_unless_scheduled_or_running() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    let mut conn = raw(&path).await;
    let indexes: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'executions' \
         ORDER BY name",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let described: Vec<(&str, bool)> = indexes
        .iter()
        .map(|(name, sql)| {
            let partial = sql.as_deref().is_some_and(|sql| sql.contains(" WHERE "));
            (name.as_str(), partial)
        })
        .collect();
    // The primary key's own index, the listing by workflow, and partial ones.
    assert_eq!(
        described,
        [
            ("executions_fire_time", true),
            ("executions_running", true),
            ("executions_running_node", true),
            ("executions_workflow_id", false),
            ("sqlite_autoindex_executions_1", false),
        ]
    );
}

#[tokio::test]
async fn writes_queued_after_close_fail_as_stopped() {
    let dir = TempDir::new().unwrap();
    let store = SqliteStore::open(&dir.path().join("flowd.db"))
        .await
        .unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;
    store.close().await;
    let error = store
        .commit(&[StoreWrite::PutExecution(execution(&workflow.id, new_id()))])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Stopped), "{error:?}");
}

#[tokio::test]
async fn writes_queued_before_close_are_committed_by_it() {
    let FileStore {
        dir: _dir,
        path,
        store,
        workflow,
    } = file_store_with_workflow().await;
    let records: Vec<_> = (0..50)
        .map(|_| ExecutionRecord {
            fire_at: None,
            ..execution(&workflow.id, new_id())
        })
        .collect();
    let tickets: Vec<_> = records
        .iter()
        .map(|record| store.submit(vec![StoreWrite::PutExecution(record.clone())]))
        .collect();
    store.close().await;
    for ticket in tickets {
        ticket.wait().await.unwrap();
    }
    let store = SqliteStore::open(&path).await.unwrap();
    for record in records {
        assert_eq!(store.execution(&record.id).await.unwrap(), Some(record));
    }
}

#[tokio::test]
async fn executions_stored_before_the_index_migration_are_kept() {
    // The database as the schema before migration 0004 left it: migrations 1 to 3 applied (the
    // executions table with its table-level UNIQUE (workflow_id, fire_at)) and a row in it.
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let mut conn = SqliteConnection::connect_with(
        &SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true),
    )
    .await
    .unwrap();
    let all = sqlx::migrate::Migrator::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite"),
    )
    .await
    .unwrap();
    let before_0004 = sqlx::migrate::Migrator {
        migrations: all
            .iter()
            .filter(|migration| migration.version < 4)
            .cloned()
            .collect::<Vec<_>>()
            .into(),
        ..sqlx::migrate::Migrator::DEFAULT
    };
    before_0004.run(&mut conn).await.unwrap();
    let workflow_id = new_id();
    for (statement, binds) in [
        (
            "INSERT INTO teams (id, name, created_at) VALUES ('t1', 'default', 1)",
            vec![],
        ),
        (
            "INSERT INTO workflows (id, team_id, name, mode, runtime, version, enabled, \
             hook_token, timeout_s, memory_mb, isolation, created_at, updated_at) \
             VALUES (?, 't1', 'old', 'pull', 'python3', 1, 1, 'tok', 30, 256, 'fork', 1, 1)",
            vec![workflow_id.clone()],
        ),
    ] {
        let mut query = sqlx::query(statement);
        for bind in binds {
            query = query.bind(bind);
        }
        query.execute(&mut conn).await.unwrap();
    }
    let old_id = new_id();
    sqlx::query(
        "INSERT INTO executions (id, workflow_id, version, \"trigger\", status, started_at, \
         fire_at, logs) VALUES (?, ?, 1, 'pull', 'success', 5, 7, 'kept')",
    )
    .bind(&old_id)
    .bind(&workflow_id)
    .execute(&mut conn)
    .await
    .unwrap();
    drop(conn);

    let store = SqliteStore::open(&path).await.unwrap();
    let kept = store.execution(&old_id).await.unwrap().unwrap();
    assert_eq!((kept.logs.as_str(), kept.fire_at), ("kept", Some(7)));
    let mut again = execution(&workflow_id, new_id());
    again.fire_at = Some(7);
    let error = store
        .commit(&[StoreWrite::PutExecution(again)])
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Conflict(_)), "{error:?}");
}

/// A settings change setting `key` to `value`.
fn set(workflow_id: &str, key: &str, value: i64) -> StoreWrite {
    StoreWrite::ApplySettingsChange {
        workflow_id: workflow_id.to_string(),
        change: flowd_core::settings::SettingsChange {
            added: settings(serde_json::json!({ key: value })),
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn writes_meeting_another_connections_write_lock_wait_for_it_and_commit_in_order() {
    let FileStore {
        dir: _dir,
        path,
        store,
        workflow,
    } = file_store_with_workflow().await;
    let mut holder = write_lock_held(&path).await;

    // Queued behind the lock (not committed inline), then released together, in order.
    let tickets: Vec<_> = (1..=20)
        .map(|n| store.submit(vec![set(&workflow.id, "n", n)]))
        .collect();
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    for ticket in tickets {
        ticket.wait().await.unwrap();
    }
    assert_eq!(
        store.settings(&workflow.id).await.unwrap()["n"],
        serde_json::json!(20)
    );
}

#[tokio::test]
async fn a_failing_write_in_a_batch_fails_alone() {
    let FileStore {
        dir: _dir,
        path,
        store,
        workflow,
    } = file_store_with_workflow().await;
    let mut holder = write_lock_held(&path).await;
    let good: Vec<_> = (0..4)
        .map(|_| ExecutionRecord {
            fire_at: None,
            ..execution(&workflow.id, new_id())
        })
        .collect();
    let mut tickets = Vec::new();
    for (n, record) in good.iter().enumerate() {
        tickets.push(store.submit(vec![StoreWrite::PutExecution(record.clone())]));
        if n == 1 {
            tickets.push(store.submit(vec![set("no-such-workflow", "x", 1)]));
        }
    }
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    let mut outcomes = Vec::new();
    for ticket in tickets {
        outcomes.push(ticket.wait().await);
    }
    assert!(
        matches!(outcomes.remove(2), Err(StoreError::NotFound(ref m)) if m.contains("no-such-workflow"))
    );
    assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
    for record in good {
        assert_eq!(store.execution(&record.id).await.unwrap(), Some(record));
    }
}

#[tokio::test]
async fn the_wal_is_checkpointed_and_reused_as_executions_are_committed() {
    let FileStore {
        dir: _dir,
        path,
        store,
        workflow,
    } = file_store_with_workflow().await;
    // One commit at a time, as at low load: each is committed by its caller, none by the thread,
    // which must still checkpoint in the background.
    let commits = 3000;
    for _ in 0..commits {
        let record = ExecutionRecord {
            fire_at: None,
            ..execution(&workflow.id, new_id())
        };
        store
            .commit(&[StoreWrite::PutExecution(record)])
            .await
            .unwrap();
    }
    // Each commit writes at least three pages (the row, the key, the workflow index): without
    // checkpoints the WAL would hold them all (over 36 MB); checkpointed, it starts over.
    let wal_bytes = std::fs::metadata(path.with_extension("db-wal"))
        .unwrap()
        .len();
    let unbounded = commits * 3 * 4096;
    assert!(wal_bytes < unbounded / 2, "WAL of {wal_bytes} bytes");
}

/// A connection holding the file's write lock, as another process writing would.
async fn write_lock(path: &Path) -> SqliteConnection {
    let mut connection = raw(path).await;
    sqlx::raw_sql("BEGIN IMMEDIATE")
        .execute(&mut connection)
        .await
        .unwrap();
    connection
}

#[tokio::test]
async fn a_commit_finding_the_file_locked_past_the_busy_timeout_is_unavailable() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;
    let _lock = write_lock(&path).await;

    let error = store
        .commit(&[StoreWrite::PutExecution(execution(&workflow.id, new_id()))])
        .await
        .unwrap_err();

    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
    assert!(error.is_unavailable());
}

#[tokio::test]
async fn an_api_write_finding_the_file_locked_past_the_busy_timeout_is_unavailable() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let _lock = write_lock(&path).await;

    let error = store.create_team(&team("late")).await.unwrap_err();

    assert!(matches!(error, StoreError::Unavailable(_)), "{error:?}");
}

#[tokio::test]
async fn a_database_migrated_by_a_newer_flowd_is_refused_naming_both_versions() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    SqliteStore::open(&path).await.unwrap().close().await;
    let mut conn = raw(&path).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer flowd', TRUE, X'00', 0)",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn.close().await.unwrap();

    match SqliteStore::open(&path).await {
        Err(error @ StoreError::SchemaTooNew { database: 9999, .. }) => {
            assert!(error.to_string().contains("9999"), "{error}");
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn a_restarted_process_queues_again_the_calls_the_one_before_it_claimed() {
    let FileStore {
        dir: _dir,
        path,
        store: before,
        workflow,
    } = file_store_with_workflow().await;
    let node = |store: &SqliteStore| flowd_store::NodeRecord {
        id: store.node_id().to_string(),
        address: "127.0.0.1:8080".to_string(),
        host: "node".to_string(),
        started_at: NOW,
        lease_expires_at: NOW + 60_000,
    };
    before.register_node(&node(&before)).await.unwrap();
    let call = flowd_store::AsyncCallRecord {
        id: new_id(),
        workflow_id: workflow.id.clone(),
        token: "token".to_string(),
        request: flowd_store::QueuedRequest::default(),
        enqueued_at: NOW,
        state: flowd_store::AsyncCallState::Queued,
        execution_id: new_id(),
        attempt: 1,
        trigger: flowd_core::workflow::Trigger::Catch,
        not_before: None,
    };
    let roomy = flowd_store::QueueBound {
        total: 10,
        per_workflow: 10,
    };
    before.enqueue_async_call(&call, roomy).await.unwrap();
    before
        .claim_async_calls(&workflow.id, 1, NOW, NOW + 1_000_000)
        .await
        .unwrap();
    before.close().await;

    let after = SqliteStore::open(&path).await.unwrap();
    after.register_node(&node(&after)).await.unwrap();
    let reaped = after.reap_expired_nodes(NOW + 1_000).await.unwrap();

    assert_eq!(
        reaped,
        vec![flowd_store::ReapedNode {
            node_id: Some(before.node_id().to_string()),
            interrupted: 0,
            released_slots: 0,
            released_async_calls: 1,
        }]
    );
    let claimed = after
        .claim_async_calls(&workflow.id, 1, NOW + 1_000, NOW + 1_000_000)
        .await
        .unwrap();
    assert_eq!(
        claimed.iter().map(|c| &c.id).collect::<Vec<_>>(),
        [&call.id]
    );
}

#[tokio::test]
async fn a_node_that_registers_ends_the_lease_of_the_one_before_it() {
    let FileStore {
        dir: _dir,
        path,
        store: before,
        workflow,
    } = file_store_with_workflow().await;
    let node = |store: &SqliteStore| flowd_store::NodeRecord {
        id: store.node_id().to_string(),
        address: "127.0.0.1:8080".to_string(),
        host: "node".to_string(),
        started_at: NOW,
        lease_expires_at: NOW + 60_000,
    };
    before.register_node(&node(&before)).await.unwrap();
    let left_running = running(&workflow.id, id_at(1_000));
    before
        .commit(&[StoreWrite::PutExecution(left_running.clone())])
        .await
        .unwrap();
    before.close().await;

    let after = SqliteStore::open(&path).await.unwrap();
    after.register_node(&node(&after)).await.unwrap();
    let reaped = after.reap_expired_nodes(NOW + 1_000).await.unwrap();
    assert_eq!(
        reaped,
        vec![flowd_store::ReapedNode {
            node_id: Some(before.node_id().to_string()),
            interrupted: 1,
            released_slots: 0,
            released_async_calls: 0,
        }]
    );
    let stored = after.execution(&left_running.id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        flowd_core::workflow::ExecutionStatus::Interrupted
    );
}

#[tokio::test]
async fn a_sqlite_store_is_not_shared_and_publishes_no_changes() {
    let store = SqliteStore::open_in_memory().await.unwrap();
    assert!(!store.is_shared());
    assert!(store.changes().next().await.is_none());
}
