//! Backends to run the suite against, and records to store.

use flowd_core::access::{AuditAction, Role};
use flowd_core::retention::Retention;
use flowd_core::settings::{Settings, SettingsChange};
use flowd_core::workflow::{ExecutionStatus, Isolation, Mode, ResponseMode, Trigger, VersionState};
use flowd_store::{
    ApiKeyRecord, AuditEntry, ExecutionError, ExecutionRecord, PostgresStore, SecretKey,
    SqliteStore, Store, StoreError, TeamRecord, VersionRecord, WorkflowRecord,
};
use serde_json::Value;
use tempfile::TempDir;
use uuid::{NoContext, Timestamp, Uuid};

/// A store under test, with whatever must live as long as it.
pub struct Backend {
    store: Box<dyn Store>,
    _dir: Option<TempDir>,
    _database: Option<flowd_test_postgres::TestDatabase>,
}

impl Backend {
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }
}

/// The key the conformance suite's stores seal their secret values with.
pub fn secret_key() -> SecretKey {
    "f0e1d2c3b4a5968778695a4b3c2d1e0f00112233445566778899aabbccddeeff"
        .parse()
        .expect("a key")
}

/// A SQLite store in a file of a fresh temporary directory.
pub async fn sqlite_file() -> Backend {
    let dir = TempDir::new().expect("temp dir");
    let store = SqliteStore::open_keyed(&dir.path().join("flowd.db"), Some(&secret_key()))
        .await
        .expect("open the store");
    Backend {
        store: Box::new(store),
        _dir: Some(dir),
        _database: None,
    }
}

/// A SQLite store in memory.
pub async fn sqlite_memory() -> Backend {
    let store = SqliteStore::open_in_memory_keyed(Some(&secret_key()))
        .await
        .expect("open the store");
    Backend {
        store: Box::new(store),
        _dir: None,
        _database: None,
    }
}

/// A PostgreSQL store in a fresh database of the test server (see [`flowd_test_postgres`]).
pub async fn postgres() -> Backend {
    let database = flowd_test_postgres::fresh_database().await;
    let store = PostgresStore::connect_keyed(database.url(), Some(&secret_key()))
        .await
        .expect("open the store");
    Backend {
        store: Box::new(store),
        _dir: None,
        _database: Some(database),
    }
}

/// A fresh UUIDv7.
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// A UUIDv7 of the time `ms` (epoch milliseconds): ids of later times sort after.
pub fn id_at(ms: u64) -> String {
    let ts = Timestamp::from_unix(NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
    Uuid::new_v7(ts).to_string()
}

/// Epoch ms used as "now" by the tests.
pub const NOW: i64 = 1_750_000_000_000;

pub fn settings(value: Value) -> Settings {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

pub fn team(name: &str) -> TeamRecord {
    TeamRecord {
        id: new_id(),
        name: name.to_string(),
        created_at: NOW,
    }
}

pub async fn given_team(store: &dyn Store, name: &str) -> TeamRecord {
    let team = team(name);
    store.create_team(&team).await.expect("create team");
    team
}

pub fn api_key(team_id: &str, key_hash: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: new_id(),
        team_id: team_id.to_string(),
        name: "ci".to_string(),
        key_hash: key_hash.to_string(),
        prefix: key_hash.chars().take(12).collect(),
        role: Role::Admin,
        created_at: NOW + 1,
        expires_at: Some(NOW + 86_400_000),
        last_used_at: None,
    }
}

/// An audit entry of `action` by the key `ci`, at `at`, about `workflow` (if any) of `team`.
pub fn audit_entry(
    action: AuditAction,
    at: i64,
    team: &TeamRecord,
    workflow: Option<&WorkflowRecord>,
) -> AuditEntry {
    AuditEntry {
        id: id_at(at as u64),
        at,
        actor_id: "key-ci".to_string(),
        actor_name: "ci".to_string(),
        action,
        team_id: Some(team.id.clone()),
        team_name: Some(team.name.clone()),
        workflow_id: workflow.map(|w| w.id.clone()),
        workflow_name: workflow.map(|w| w.name.clone()),
        summary: format!("{action} at {at}"),
    }
}

/// Every entry of the log, newest first.
pub async fn all_entries(store: &dyn Store) -> Vec<AuditEntry> {
    store
        .audit_entries(&flowd_store::AuditQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .expect("audit entries")
}

/// A workflow with every optional field set and no field at its default.
pub fn workflow(team_id: &str, name: &str) -> WorkflowRecord {
    WorkflowRecord {
        id: new_id(),
        team_id: team_id.to_string(),
        name: name.to_string(),
        mode: Mode::Pull,
        runtime: "python3.11".to_string(),
        version: Some(1),
        enabled: true,
        hook_token: format!("token-{name}"),
        secret_keys: vec!["API_KEY".to_string(), "PASSWORD".to_string()],
        env: [("HRFLOW_CONNECTORS_STORE".to_string(), "local".to_string())].into(),
        schedule: Some(r#"{"every":"5m"}"#.to_string()),
        next_fire_at: Some(NOW + 300_000),
        timeout_s: 30,
        memory_mb: 256,
        max_concurrency: Some(1),
        isolation: Isolation::Reuse,
        response: ResponseMode::Async,
        created_at: NOW,
        updated_at: NOW + 2,
        verify: Some(
            flowd_core::verify::Verification::from_json(&serde_json::json!({
                "scheme": "hmac", "secret": "SIGNING_KEY", "header": "Signature",
                "algorithm": "sha1", "encoding": "base64", "prefix": "sha1="
            }))
            .expect("a valid verify object"),
        ),
        idempotency_header: Some("x-github-delivery".to_string()),
        egress_allow: vec![
            "10.200.0.0/24".parse().unwrap(),
            "[fd00::1]:443".parse().unwrap(),
            "db.internal:5432".parse().unwrap(),
        ],
        retention: Some(Retention {
            days: Some(7),
            max_executions: Some(500),
        }),
        alerts: Some(flowd_core::alerts::AlertPolicy {
            url: "https://chat.example/hooks/abc".to_string(),
            on: vec![
                flowd_core::workflow::ExecutionStatus::Error,
                flowd_core::workflow::ExecutionStatus::Timeout,
            ],
            min_interval_s: 300,
        }),
        on_failure: Some("page-the-team".to_string()),
        retry: Some(flowd_core::retry::RetryPolicy {
            max_attempts: 4,
            backoff_s: 0.25,
            on: vec![ExecutionStatus::Error, ExecutionStatus::Timeout],
        }),
        store_requests: false,
    }
}

pub fn version(workflow_id: &str, version: u32) -> VersionRecord {
    VersionRecord {
        workflow_id: workflow_id.to_string(),
        version,
        code: format!("def workflow(settings):\n    return {version}\n"),
        requirements: vec!["python-dateutil==2.8.2".to_string()],
        state: VersionState::Ready,
        build_log: format!("installed python-dateutil for version {version}"),
        error: None,
        environment: Some("python3.11-0123456789ab".to_string()),
        created_at: NOW + i64::from(version),
        settled_at: Some(NOW + i64::from(version) + 500),
    }
}

/// A version whose build is going.
pub fn building_version(workflow_id: &str, version: u32) -> VersionRecord {
    VersionRecord {
        state: VersionState::Building,
        build_log: String::new(),
        environment: None,
        settled_at: None,
        ..self::version(workflow_id, version)
    }
}

/// Creates `workflow(team_id, name)` with version 1 and the settings `{"a": 1, "b": 2}`.
pub async fn given_workflow(store: &dyn Store, team_id: &str, name: &str) -> WorkflowRecord {
    let workflow = workflow(team_id, name);
    store
        .create_workflow(
            &workflow,
            &version(&workflow.id, 1),
            &settings(serde_json::json!({"a": 1, "b": 2})),
        )
        .await
        .expect("create workflow");
    workflow
}

/// A team with one workflow.
pub async fn given_team_with_workflow(store: &dyn Store) -> (TeamRecord, WorkflowRecord) {
    let team = given_team(store, "acme").await;
    let workflow = given_workflow(store, &team.id, "sync").await;
    (team, workflow)
}

/// A finished execution with every optional field set.
pub fn execution(workflow_id: &str, id: String) -> ExecutionRecord {
    ExecutionRecord {
        retry_of: Some(format!("{id}-first")),
        id,
        workflow_id: workflow_id.to_string(),
        version: 1,
        trigger: Trigger::Catch,
        status: ExecutionStatus::Error,
        started_at: NOW,
        finished_at: Some(NOW + 1500),
        duration_ms: Some(1500),
        response_status: Some(500),
        warnings: vec!["settings key \"x\" is large".to_string(), "w2".to_string()],
        error: Some(ExecutionError {
            kind: "KeyError".to_string(),
            message: "'missing'".to_string(),
            traceback: Some("Traceback (most recent call last):\n  ...".to_string()),
        }),
        logs: "hello\nwörld ✓\n".to_string(),
        logs_truncated: true,
        settings_changed: Some(SettingsChange {
            added: settings(serde_json::json!({"new": [1, 2]})),
            changed: settings(serde_json::json!({"a": {"x": null}})),
            removed: vec!["b".to_string()],
        }),
        fire_at: Some(NOW - 10),
        attempt: 2,
        replay_of: Some("0190a000-0000-7000-8000-000000000001".to_string()),
        request_not_stored: Some("the request is larger than the cap".to_string()),
    }
}

/// The request of `execution`, with `headers` and `body`, to store with it.
pub fn stored_request(
    execution: &ExecutionRecord,
    headers: &[(&str, &[u8])],
    body: &[u8],
) -> flowd_store::StoredRequest {
    let headers: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_vec()))
        .collect();
    flowd_store::StoredRequest::new(
        &execution.id,
        &execution.workflow_id,
        execution.started_at,
        &flowd_store::RequestView {
            method: "POST",
            path: "/teams/acme/hook/python3.11/token",
            query_string: "page=2&q=caf%C3%A9",
            headers: &headers,
            body,
        },
    )
}

/// A `running` execution, as recorded when it starts.
pub fn running(workflow_id: &str, id: String) -> ExecutionRecord {
    ExecutionRecord {
        id,
        workflow_id: workflow_id.to_string(),
        version: 1,
        trigger: Trigger::Manual,
        status: ExecutionStatus::Running,
        started_at: NOW,
        finished_at: None,
        duration_ms: None,
        response_status: None,
        warnings: Vec::new(),
        error: None,
        logs: String::new(),
        logs_truncated: false,
        settings_changed: None,
        fire_at: None,
        attempt: 1,
        retry_of: None,
        replay_of: None,
        request_not_stored: None,
    }
}

#[track_caller]
pub fn assert_conflict<T: std::fmt::Debug>(result: Result<T, StoreError>) -> String {
    match result {
        Err(StoreError::Conflict(message)) => message,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[track_caller]
pub fn assert_not_found<T: std::fmt::Debug>(result: Result<T, StoreError>) {
    match result {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected not found, got {other:?}"),
    }
}
