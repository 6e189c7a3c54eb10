//! The SQLite backend: one database file in the data dir, WAL mode, a small connection pool.
//!
//! Write transactions start with `BEGIN IMMEDIATE`, so that a transaction which reads before it
//! writes takes the write lock up front and waits (busy timeout) instead of failing when another
//! connection wrote in between.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flowd_core::access::Role;
use flowd_core::retention::RetentionCut;
use flowd_core::settings::{Settings, SettingsChange};
use flowd_core::verify::Verification;
use flowd_core::workflow::{ExecutionStatus, VersionState};
use serde::de::DeserializeOwned;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};

mod alerts;
mod async_calls;
mod audit;
pub(crate) mod backup;
mod columns;
pub(crate) mod errors;
mod group_commit;
mod idempotency;
mod nodes;
mod retention;
mod secret_key;

use self::columns::{from_json, optional_to_json, to_json, ExecutionColumns, PUT_EXECUTION};
use self::errors::unique_violation;
pub(crate) use self::group_commit::file_uri;
use self::group_commit::GroupCommit;
use crate::commit::CommitTicket;
use crate::error::{Result, StoreError};
use crate::model::{
    ApiKeyRecord, AuditEntry, AuditQuery, ExecutionError, ExecutionRecord, TeamRecord,
    VersionOutcome, VersionRecord, WorkflowRecord,
};
use crate::node::{NodeRecord, ReapedNode};
use crate::secrets::{SecretKey, Secrets};
use crate::sqlx_error::is_foreign_key_violation;
use crate::store::{ClaimOutcome, ExecutionQuery, RunClaim, Store, StoreWrite, WorkflowRetention};
use crate::{AsyncCallRecord, Enqueued, NextAttempt, QueueBound, StoredResponse};
use crate::{IdempotencyClaim, IdempotencyClaimOutcome, IdempotencyRecord, RequestParts};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Connections of a file-backed store's pool.
const POOL_SIZE: u32 = 4;
/// How long a statement waits for a lock held by another connection before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// `list_executions` returns at most this many rows…
const MAX_LIST_LIMIT: u32 = 1000;
/// …and this many when the query asks for 0.
const DEFAULT_LIST_LIMIT: u32 = 50;

/// How write transactions begin (see the module doc).
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

const TEAM_COLUMNS: &str = "id, name, created_at";
const API_KEY_COLUMNS: &str =
    "id, team_id, name, key_hash, prefix, role, created_at, expires_at, last_used_at";
const WORKFLOW_COLUMNS: &str = "id, team_id, name, mode, runtime, version, enabled, hook_token, \
     secret_keys, schedule, next_fire_at, timeout_s, memory_mb, max_concurrency, isolation, \
     created_at, updated_at, env, verify, idempotency_header, \
     egress_allow, retention, \
     alerts, on_failure, response, retry, store_requests";
const VERSION_COLUMNS: &str = "workflow_id, version, code, requirements, state, build_log, error, \
     environment, created_at, settled_at";
const EXECUTION_COLUMNS: &str = "id, workflow_id, version, \"trigger\", status, started_at, \
     finished_at, duration_ms, response_status, warnings, error, logs, logs_truncated, \
     settings_changed, fire_at, attempt, retry_of, \
     replay_of, request_not_stored";

/// The condition of the partial index `executions_running`, written out: SQLite uses a partial
/// index only for a query whose terms imply its condition, which a bound parameter does not.
const IS_RUNNING: &str = "status = 'running'";

/// The SQLite implementation of [`Store`].
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// One long-lived connection for the API's writes and the scheduler's run claims: its page
    /// cache stays warm (a pooled connection would re-read what another one's writes
    /// invalidated) and these writes never wait on each other's busy timeout.
    writer: SqlitePool,
    /// The executions' records and settings changes: a thread of its own with its own
    /// connection (see [`group_commit`]).
    commits: Arc<GroupCommit>,
    /// How environment variables and settings values are sealed (see [`crate::secrets`]).
    secrets: Secrets,
    /// See [`Store::node_id`].
    node_id: Arc<str>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if missing, with mode 0600) the database file at `path` and brings its
    /// schema up to date. The parent directory must exist. Secret values are kept in clear.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        SqliteStore::open_keyed(path, None).await
    }

    /// [`SqliteStore::open`], with secret values sealed under `secret_key` (a store from before
    /// the key has its clear values sealed now). `WrongSecretKey` when the store's values are
    /// sealed under another key, `SecretKeyMissing` when they are sealed and no key is given.
    pub async fn open_keyed(path: &Path, secret_key: Option<&SecretKey>) -> Result<SqliteStore> {
        create_private_file(path)?;
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_SIZE)
            .connect_with(options.clone())
            .await?;
        let secrets = secrets_for(secret_key);
        let store = SqliteStore::migrated(pool.clone(), pool, &file_uri(path), secrets).await?;
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            // A file opened by this process: nothing to probe before each write (a probe is one
            // more round trip to SQLite's worker thread per group commit).
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        Ok(SqliteStore { writer, ..store })
    }

    /// A store in memory, for tests: SQLite's `memdb` database of a name of its own, shared by
    /// one pooled connection (kept for the life of the store) and the group commit's. Secret
    /// values are kept in clear.
    pub async fn open_in_memory() -> Result<SqliteStore> {
        SqliteStore::open_in_memory_keyed(None).await
    }

    /// [`SqliteStore::open_in_memory`], with secret values sealed under `secret_key`.
    pub async fn open_in_memory_keyed(secret_key: Option<&SecretKey>) -> Result<SqliteStore> {
        static STORES: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "/flowd-memory-{}-{}",
            std::process::id(),
            STORES.fetch_add(1, Ordering::Relaxed)
        );
        let options = SqliteConnectOptions::new()
            .filename(&name)
            .vfs("memdb")
            .create_if_missing(true)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(options)
            .await?;
        let uri = format!("file:{name}?vfs=memdb");
        SqliteStore::migrated(pool.clone(), pool, &uri, secrets_for(secret_key)).await
    }

    /// Brings the schema up to date and checks (or applies) `secrets`' key, then starts the
    /// group commit on `uri` (the same database).
    async fn migrated(
        pool: SqlitePool,
        writer: SqlitePool,
        uri: &str,
        secrets: Secrets,
    ) -> Result<SqliteStore> {
        crate::schema_version::refuse_newer(&MIGRATOR, applied_schema_version(&pool).await?)?;
        MIGRATOR.run(&pool).await?;
        secret_key::settle(&pool, &secrets).await?;
        let node_id: Arc<str> = uuid::Uuid::now_v7().to_string().into();
        let commits = Arc::new(GroupCommit::start(uri, BUSY_TIMEOUT, node_id.clone())?);
        Ok(SqliteStore {
            pool,
            writer,
            commits,
            secrets,
            node_id,
        })
    }

    /// Reseals every secret value under `new_key`, in one transaction, then closes the store:
    /// a store opened with another key must not write any more. Nothing else may be writing
    /// to the database meanwhile (its server stopped): what it sealed under the old key would
    /// no longer open.
    pub async fn rotate_secret_key(self, new_key: &SecretKey) -> Result<()> {
        let rotated =
            secret_key::rotate(&self.pool, &self.secrets, &Secrets::sealed(new_key)).await;
        self.close().await;
        rotated
    }

    /// Commits what is queued, then closes the connections (checkpointing the WAL); the store is
    /// unusable afterwards.
    pub async fn close(&self) {
        self.commits.stop().await;
        close_pool(&self.writer).await;
        close_pool(&self.pool).await;
    }
}

/// Closes every connection of `pool`. sqlx's `close` waits for the connections in use, but one
/// it was opening meanwhile (to keep `min_connections`) can arrive after that wait and stay
/// idle; closing again closes it, so no connection outlives the store (and the last one to
/// close deletes the WAL).
async fn close_pool(pool: &SqlitePool) {
    for _ in 0..3 {
        pool.close().await;
        if pool.size() == 0 {
            return;
        }
    }
    tracing::warn!(
        connections = pool.size(),
        "SQLite connections still open after the store was closed"
    );
}

fn secrets_for(secret_key: Option<&SecretKey>) -> Secrets {
    secret_key.map_or_else(Secrets::clear, Secrets::sealed)
}

/// The schema version this binary migrates SQLite stores to: its newest migration.
pub(crate) fn schema_version() -> i64 {
    MIGRATOR
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0)
}

/// The newest migration applied to the database (`None`: never migrated).
async fn applied_schema_version(pool: &SqlitePool) -> Result<Option<i64>> {
    let migrated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
         AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await?;
    if !migrated {
        return Ok(None);
    }
    Ok(
        sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await?,
    )
}

/// Creates `path` as an empty file readable by its owner only, unless it exists: SQLite would
/// create it with the umask's permissions, and the database holds secrets.
fn create_private_file(path: &Path) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(StoreError::from(sqlx::Error::Io(err))),
    }
}

// --- encoding and decoding ---

fn json_column<T: DeserializeOwned>(row: &SqliteRow, table: &str, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    from_json(&text, &format!("{table}.{column}"))
}

fn optional_json_column<T: DeserializeOwned>(
    row: &SqliteRow,
    table: &str,
    column: &str,
) -> Result<Option<T>> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|text| from_json(&text, &format!("{table}.{column}")))
        .transpose()
}

fn enum_column<T: FromStr<Err = String>>(row: &SqliteRow, table: &str, column: &str) -> Result<T> {
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|err| StoreError::Corrupt(format!("{table}.{column}: {err}")))
}

fn int_column<T: TryFrom<i64>>(row: &SqliteRow, table: &str, column: &str) -> Result<T> {
    let value: i64 = row.try_get(column)?;
    T::try_from(value)
        .map_err(|_| StoreError::Corrupt(format!("{table}.{column} = {value} is out of range")))
}

fn optional_int_column<T: TryFrom<i64>>(
    row: &SqliteRow,
    table: &str,
    column: &str,
) -> Result<Option<T>> {
    let value: Option<i64> = row.try_get(column)?;
    value
        .map(|value| {
            T::try_from(value).map_err(|_| {
                StoreError::Corrupt(format!("{table}.{column} = {value} is out of range"))
            })
        })
        .transpose()
}

fn team_from_row(row: &SqliteRow) -> Result<TeamRecord> {
    Ok(TeamRecord {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        created_at: row.try_get("created_at")?,
    })
}

fn api_key_from_row(row: &SqliteRow) -> Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: row.try_get("id")?,
        team_id: row.try_get("team_id")?,
        name: row.try_get("name")?,
        key_hash: row.try_get("key_hash")?,
        prefix: row.try_get("prefix")?,
        role: enum_column(row, "api_keys", "role")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}

fn workflow_from_row(row: &SqliteRow, secrets: &Secrets) -> Result<WorkflowRecord> {
    const T: &str = "workflows";
    let id: String = row.try_get("id")?;
    Ok(WorkflowRecord {
        id: id.clone(),
        team_id: row.try_get("team_id")?,
        name: row.try_get("name")?,
        mode: enum_column(row, T, "mode")?,
        runtime: row.try_get("runtime")?,
        // 0: no active version yet.
        version: Some(int_column::<u32>(row, T, "version")?).filter(|v| *v > 0),
        enabled: row.try_get("enabled")?,
        hook_token: row.try_get("hook_token")?,
        secret_keys: json_column(row, T, "secret_keys")?,
        env: secrets.open_env(&id, json_column(row, T, "env")?)?,
        schedule: row.try_get("schedule")?,
        next_fire_at: row.try_get("next_fire_at")?,
        timeout_s: int_column(row, T, "timeout_s")?,
        memory_mb: int_column(row, T, "memory_mb")?,
        max_concurrency: optional_int_column(row, T, "max_concurrency")?,
        isolation: enum_column(row, T, "isolation")?,
        response: enum_column(row, T, "response")?,
        retry: optional_json_column(row, T, "retry")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        verify: verify_column(row, T)?,
        idempotency_header: row.try_get("idempotency_header")?,
        egress_allow: json_column(row, T, "egress_allow")?,
        retention: optional_json_column(row, T, "retention")?,
        alerts: optional_json_column(row, T, "alerts")?,
        on_failure: row.try_get("on_failure")?,
        store_requests: row.try_get("store_requests")?,
    })
}

/// The workflow's `verify` object, checked as the API checks it.
fn verify_column(row: &SqliteRow, table: &str) -> Result<Option<Verification>> {
    let text: Option<String> = row.try_get("verify")?;
    text.map(|text| {
        let value: serde_json::Value = from_json(&text, "a workflow's verify")?;
        Verification::from_json(&value)
            .map_err(|err| StoreError::Corrupt(format!("{table}.verify: {err}")))
    })
    .transpose()
}

fn version_from_row(row: &SqliteRow) -> Result<VersionRecord> {
    const T: &str = "workflow_versions";
    Ok(VersionRecord {
        workflow_id: row.try_get("workflow_id")?,
        version: int_column(row, T, "version")?,
        code: row.try_get("code")?,
        requirements: json_column(row, T, "requirements")?,
        state: enum_column(row, T, "state")?,
        build_log: row.try_get("build_log")?,
        error: row.try_get("error")?,
        environment: row.try_get("environment")?,
        created_at: row.try_get("created_at")?,
        settled_at: row.try_get("settled_at")?,
    })
}

fn execution_from_row(row: &SqliteRow) -> Result<ExecutionRecord> {
    const T: &str = "executions";
    Ok(ExecutionRecord {
        id: row.try_get("id")?,
        workflow_id: row.try_get("workflow_id")?,
        version: int_column(row, T, "version")?,
        trigger: enum_column(row, T, "trigger")?,
        status: enum_column(row, T, "status")?,
        started_at: row.try_get("started_at")?,
        finished_at: row.try_get("finished_at")?,
        duration_ms: row.try_get("duration_ms")?,
        response_status: optional_int_column(row, T, "response_status")?,
        warnings: json_column(row, T, "warnings")?,
        error: optional_json_column::<ExecutionError>(row, T, "error")?,
        logs: row.try_get("logs")?,
        logs_truncated: row.try_get("logs_truncated")?,
        settings_changed: optional_json_column::<SettingsChange>(row, T, "settings_changed")?,
        fire_at: row.try_get("fire_at")?,
        attempt: int_column(row, T, "attempt")?,
        retry_of: row.try_get("retry_of")?,
        replay_of: row.try_get("replay_of")?,
        request_not_stored: row.try_get("request_not_stored")?,
    })
}

// --- writes shared by several operations ---

async fn workflow_exists(conn: &mut SqliteConnection, workflow_id: &str) -> Result<bool> {
    let found = sqlx::query("SELECT 1 FROM workflows WHERE id = ?")
        .bind(workflow_id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

async fn insert_version(conn: &mut SqliteConnection, version: &VersionRecord) -> Result<()> {
    sqlx::query(&format!(
        "INSERT INTO workflow_versions ({VERSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))
    .bind(&version.workflow_id)
    .bind(i64::from(version.version))
    .bind(&version.code)
    .bind(to_json(&version.requirements, "the requirements")?)
    .bind(version.state.as_str())
    .bind(&version.build_log)
    .bind(&version.error)
    .bind(&version.environment)
    .bind(version.created_at)
    .bind(version.settled_at)
    .execute(conn)
    .await
    .map_err(|err| {
        if unique_violation(&err).is_some() {
            StoreError::Conflict(format!(
                "version {} of workflow {} already exists",
                version.version, version.workflow_id
            ))
        } else if is_foreign_key_violation(&err) {
            StoreError::workflow_not_found(&version.workflow_id)
        } else {
            err.into()
        }
    })?;
    Ok(())
}

async fn upsert_setting(
    conn: &mut SqliteConnection,
    workflow_id: &str,
    key: &str,
    value: &serde_json::Value,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_settings (workflow_id, key, value) VALUES (?, ?, ?) \
         ON CONFLICT (workflow_id, key) DO UPDATE SET value = excluded.value",
    )
    .bind(workflow_id)
    .bind(key)
    .bind(value.to_string())
    .execute(conn)
    .await
    .map_err(|err| {
        if is_foreign_key_violation(&err) {
            StoreError::workflow_not_found(workflow_id)
        } else {
            err.into()
        }
    })?;
    Ok(())
}

/// The columns of a workflow that an update replaces (all but `id`, `team_id`, `created_at` and
/// the active `version`, which only `settle_version` moves), in the order [`bind_mutable_columns`]
/// binds them.
const MUTABLE_WORKFLOW_COLUMNS: &str = "name, mode, runtime, enabled, hook_token, \
     secret_keys, schedule, next_fire_at, timeout_s, memory_mb, max_concurrency, isolation, \
     updated_at, env, verify, idempotency_header, \
     egress_allow, retention, \
     alerts, on_failure, response, retry, store_requests";
const MUTABLE_WORKFLOW_PLACEHOLDERS: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, \
     ?, ?, \
     ?, ?, ?, ?, ?";

type SqliteQuery<'q> = sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>>;

/// Binds [`MUTABLE_WORKFLOW_COLUMNS`], in order: one list for the insert and the update.
fn bind_mutable_columns<'q>(
    query: SqliteQuery<'q>,
    workflow: &'q WorkflowRecord,
    secrets: &Secrets,
) -> Result<SqliteQuery<'q>> {
    Ok(query
        .bind(&workflow.name)
        .bind(workflow.mode.as_str())
        .bind(&workflow.runtime)
        .bind(workflow.enabled)
        .bind(&workflow.hook_token)
        .bind(to_json(&workflow.secret_keys, "the secret keys")?)
        .bind(&workflow.schedule)
        .bind(workflow.next_fire_at)
        .bind(i64::from(workflow.timeout_s))
        .bind(i64::from(workflow.memory_mb))
        .bind(workflow.max_concurrency.map(i64::from))
        .bind(workflow.isolation.as_str())
        .bind(workflow.updated_at)
        .bind(to_json(
            &secrets.seal_env(&workflow.id, &workflow.env),
            "the environment variables",
        )?)
        .bind(workflow.verify.as_ref().map(|v| v.to_json().to_string()))
        .bind(&workflow.idempotency_header)
        .bind(to_json(&workflow.egress_allow, "the egress exceptions")?)
        .bind(optional_to_json(
            workflow.retention.as_ref(),
            "the retention",
        )?)
        .bind(optional_to_json(
            workflow.alerts.as_ref(),
            "the alert policy",
        )?)
        .bind(&workflow.on_failure)
        .bind(workflow.response.as_str())
        .bind(optional_to_json(
            workflow.retry.as_ref(),
            "the retry policy",
        )?)
        .bind(workflow.store_requests))
}

/// One claim of [`Store::claim_run`] inside the caller's transaction. `AlreadyClaimed` may leave
/// a write behind (the schedule moved on before the fire time turned out to be recorded): the
/// caller rolls back.
async fn claim_in(
    conn: &mut SqliteConnection,
    node_id: &str,
    claim: &RunClaim,
) -> Result<ClaimOutcome> {
    let workflow_id = &claim.execution.workflow_id;
    if let Some(advance) = claim.advance {
        let moved =
            sqlx::query("UPDATE workflows SET next_fire_at = ? WHERE id = ? AND next_fire_at = ?")
                .bind(advance.next_fire_at)
                .bind(workflow_id)
                .bind(advance.fire_at)
                .execute(&mut *conn)
                .await?;
        if moved.rows_affected() == 0 {
            return Ok(ClaimOutcome::AlreadyClaimed);
        }
    }
    let running: Option<(i64,)> = sqlx::query_as(&format!(
        "SELECT 1 FROM executions WHERE workflow_id = ? AND {IS_RUNNING} LIMIT 1"
    ))
    .bind(workflow_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (outcome, record) = claimed_record(claim, running.is_some());
    if let Some(record) = record {
        match put_execution(conn, node_id, &record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(ClaimOutcome::AlreadyClaimed),
            Err(error) => return Err(error),
        }
    }
    Ok(outcome)
}

/// One claim of [`Store::claim_runs`] in a savepoint of the batch's transaction: a claim found
/// already made leaves nothing behind, and the others are kept.
async fn claim_in_savepoint(
    conn: &mut SqliteConnection,
    node_id: &str,
    claim: &RunClaim,
) -> Result<ClaimOutcome> {
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    let outcome = claim_in(&mut savepoint, node_id, claim).await?;
    if outcome == ClaimOutcome::AlreadyClaimed {
        savepoint.rollback().await?;
    } else {
        savepoint.commit().await?;
    }
    Ok(outcome)
}

/// What a claim records: its execution `running`, or (when a run of the workflow is going)
/// `skipped` with the claim's warning, or nothing.
fn claimed_record(claim: &RunClaim, run_going: bool) -> (ClaimOutcome, Option<ExecutionRecord>) {
    let mut record = claim.execution.clone();
    match (run_going, &claim.skip_warning) {
        (false, _) => {
            record.status = ExecutionStatus::Running;
            (ClaimOutcome::Started, Some(record))
        }
        (true, Some(warning)) => {
            record.status = ExecutionStatus::Skipped;
            record.finished_at = Some(record.started_at);
            record.duration_ms = Some(0);
            record.warnings.push(warning.clone());
            (ClaimOutcome::Overlapped, Some(record))
        }
        (true, None) => (ClaimOutcome::Overlapped, None),
    }
}

async fn put_execution(
    conn: &mut SqliteConnection,
    node_id: &str,
    execution: &ExecutionRecord,
) -> Result<()> {
    let columns = ExecutionColumns::of(execution)?;
    sqlx::query(PUT_EXECUTION)
        .bind(&execution.id)
        .bind(&execution.workflow_id)
        .bind(i64::from(execution.version))
        .bind(execution.trigger.as_str())
        .bind(execution.status.as_str())
        .bind(execution.started_at)
        .bind(execution.finished_at)
        .bind(execution.duration_ms)
        .bind(execution.response_status.map(i64::from))
        .bind(columns.warnings)
        .bind(columns.error)
        .bind(&execution.logs)
        .bind(execution.logs_truncated)
        .bind(columns.settings_changed)
        .bind(execution.fire_at)
        .bind(node_id)
        .bind(i64::from(execution.attempt))
        .bind(&execution.retry_of)
        .bind(&execution.replay_of)
        .bind(&execution.request_not_stored)
        .execute(conn)
        .await
        .map_err(|err| {
            if unique_violation(&err).is_some() {
                StoreError::fire_time_taken(execution)
            } else if is_foreign_key_violation(&err) {
                StoreError::execution_workflow_missing(execution)
            } else {
                err.into()
            }
        })?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
    // --- teams and API keys ---

    async fn create_team_audited(
        &self,
        team: &TeamRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query("INSERT INTO teams (id, name, created_at) VALUES (?, ?, ?)")
            .bind(&team.id)
            .bind(&team.name)
            .bind(team.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|err| match unique_violation(&err) {
                Some(what) if what.contains("teams.name") => {
                    StoreError::Conflict(format!("a team named {:?} already exists", team.name))
                }
                Some(_) => {
                    StoreError::Conflict(format!("a team with id {} already exists", team.id))
                }
                None => err.into(),
            })?;
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn list_teams(&self) -> Result<Vec<TeamRecord>> {
        sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams ORDER BY name"))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(team_from_row)
            .collect()
    }

    async fn rename_team(&self, id: &str, name: &str, audit: &AuditEntry) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let result = sqlx::query("UPDATE teams SET name = ? WHERE id = ?")
            .bind(name)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|err| match unique_violation(&err) {
                Some(_) => StoreError::Conflict(format!("a team named {name:?} already exists")),
                None => err.into(),
            })?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("team {id}")));
        }
        audit::insert_entries(&mut tx, [audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_team(&self, id: &str, audit: &AuditEntry) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let workflows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM workflows WHERE team_id = ?")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        if workflows > 0 {
            return Err(StoreError::team_has_workflows(id, workflows));
        }
        // Its keys go with it: ON DELETE CASCADE.
        let result = sqlx::query("DELETE FROM teams WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("team {id}")));
        }
        audit::insert_entries(&mut tx, [audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn team_by_name(&self, name: &str) -> Result<Option<TeamRecord>> {
        sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = ?"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(team_from_row)
            .transpose()
    }

    async fn team_by_id(&self, id: &str) -> Result<Option<TeamRecord>> {
        sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(team_from_row)
            .transpose()
    }

    async fn count_teams(&self) -> Result<u64> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM teams")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(count)
            .map_err(|_| StoreError::Corrupt(format!("negative team count {count}")))
    }

    async fn database_size(&self) -> Result<u64> {
        let bytes: i64 = sqlx::query_scalar(
            "SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()",
        )
        .fetch_one(&self.pool)
        .await?;
        u64::try_from(bytes)
            .map_err(|_| StoreError::Corrupt(format!("negative database size {bytes}")))
    }

    async fn create_api_key_audited(
        &self,
        key: &ApiKeyRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        sqlx::query(&format!(
            "INSERT INTO api_keys ({API_KEY_COLUMNS}, is_admin) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(&key.id)
        .bind(&key.team_id)
        .bind(&key.name)
        .bind(&key.key_hash)
        .bind(&key.prefix)
        .bind(key.role.as_str())
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.last_used_at)
        .bind(key.role == Role::Admin)
        .execute(&mut *tx)
        .await
        .map_err(|err| match unique_violation(&err) {
            Some(what) if what.contains("api_keys.key_hash") => {
                StoreError::Conflict("an API key with the same hash already exists".to_string())
            }
            Some(_) => {
                StoreError::Conflict(format!("an API key with id {} already exists", key.id))
            }
            None if is_foreign_key_violation(&err) => {
                StoreError::NotFound(format!("team {}", key.team_id))
            }
            None => err.into(),
        })?;
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn api_key_by_id(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(api_key_from_row)
        .transpose()
    }

    async fn list_api_keys(&self, team_id: Option<&str>) -> Result<Vec<ApiKeyRecord>> {
        sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE ? IS NULL OR team_id = ? \
             ORDER BY created_at, id"
        ))
        .bind(team_id)
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(api_key_from_row)
        .collect()
    }

    async fn revoke_api_key(&self, id: &str, audit: &AuditEntry) -> Result<bool> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let result = sqlx::query("DELETE FROM api_keys WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        audit::insert_entries(&mut tx, [audit]).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn touch_api_key(&self, id: &str, at: i64) -> Result<()> {
        sqlx::query("UPDATE api_keys SET last_used_at = ? WHERE id = ?")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = ?"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(api_key_from_row)
        .transpose()
    }

    async fn count_admin_keys(&self, team_id: &str) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE team_id = ? AND is_admin")
                .bind(team_id)
                .fetch_one(&self.pool)
                .await?;
        u64::try_from(count)
            .map_err(|_| StoreError::Corrupt(format!("negative admin key count {count}")))
    }

    // --- workflows ---

    async fn create_workflow_audited(
        &self,
        workflow: &WorkflowRecord,
        first_version: &VersionRecord,
        settings: &Settings,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let insert = format!(
            "INSERT INTO workflows (id, team_id, created_at, version, {MUTABLE_WORKFLOW_COLUMNS}) \
             VALUES (?, ?, ?, ?, {MUTABLE_WORKFLOW_PLACEHOLDERS})"
        );
        let query = sqlx::query(&insert)
            .bind(&workflow.id)
            .bind(&workflow.team_id)
            .bind(workflow.created_at)
            .bind(i64::from(workflow.version.unwrap_or(0)));
        bind_mutable_columns(query, workflow, &self.secrets)?
            .execute(&mut *tx)
            .await
            .map_err(|err| match unique_violation(&err) {
                Some(what) if what.contains("workflows.name") => StoreError::Conflict(format!(
                    "a workflow named {:?} already exists in this team",
                    workflow.name
                )),
                Some(_) => StoreError::Conflict(format!(
                    "a workflow with id {} already exists",
                    workflow.id
                )),
                None if is_foreign_key_violation(&err) => {
                    StoreError::NotFound(format!("team {}", workflow.team_id))
                }
                None => err.into(),
            })?;
        insert_version(&mut tx, first_version).await?;
        for (key, value) in &self.secrets.seal_settings(&workflow.id, settings) {
            upsert_setting(&mut tx, &workflow.id, key, value).await?;
        }
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn workflow_by_id(&self, id: &str) -> Result<Option<WorkflowRecord>> {
        sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| workflow_from_row(row, &self.secrets))
        .transpose()
    }

    async fn workflow_by_name(&self, team_id: &str, name: &str) -> Result<Option<WorkflowRecord>> {
        sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE team_id = ? AND name = ?"
        ))
        .bind(team_id)
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(|row| workflow_from_row(row, &self.secrets))
        .transpose()
    }

    async fn list_workflows(&self, team_id: &str) -> Result<Vec<WorkflowRecord>> {
        sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE team_id = ? ORDER BY name"
        ))
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| workflow_from_row(row, &self.secrets))
        .collect()
    }

    async fn update_workflow_audited(
        &self,
        workflow: &WorkflowRecord,
        audit: &[AuditEntry],
    ) -> Result<()> {
        let update = format!(
            "UPDATE workflows SET ({MUTABLE_WORKFLOW_COLUMNS}) = ({MUTABLE_WORKFLOW_PLACEHOLDERS}) \
             WHERE id = ?"
        );
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let result = bind_mutable_columns(sqlx::query(&update), workflow, &self.secrets)?
            .bind(&workflow.id)
            .execute(&mut *tx)
            .await
            .map_err(|err| {
                if unique_violation(&err).is_some() {
                    StoreError::Conflict(format!(
                        "a workflow named {:?} already exists in this team",
                        workflow.name
                    ))
                } else {
                    err.into()
                }
            })?;
        if result.rows_affected() == 0 {
            return Err(StoreError::workflow_not_found(&workflow.id));
        }
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_version_audited(
        &self,
        version: &VersionRecord,
        updated_at: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        insert_version(&mut tx, version).await?;
        let result = sqlx::query("UPDATE workflows SET updated_at = ? WHERE id = ?")
            .bind(updated_at)
            .bind(&version.workflow_id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::workflow_not_found(&version.workflow_id));
        }
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn settle_version(&self, outcome: &VersionOutcome) -> Result<bool> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        let current: Option<String> = sqlx::query_scalar(
            "SELECT state FROM workflow_versions WHERE workflow_id = ? AND version = ?",
        )
        .bind(&outcome.workflow_id)
        .bind(i64::from(outcome.version))
        .fetch_optional(&mut *tx)
        .await?;
        let what = || {
            format!(
                "version {} of workflow {}",
                outcome.version, outcome.workflow_id
            )
        };
        match current.as_deref() {
            None => return Err(StoreError::NotFound(what())),
            Some("building") => {}
            Some(state) => {
                return Err(StoreError::Conflict(format!(
                    "{} is already {state}",
                    what()
                )))
            }
        }
        sqlx::query(
            "UPDATE workflow_versions SET state = ?, build_log = ?, error = ?, environment = ?, \
             settled_at = ? WHERE workflow_id = ? AND version = ?",
        )
        .bind(outcome.state.as_str())
        .bind(&outcome.build_log)
        .bind(&outcome.error)
        .bind(&outcome.environment)
        .bind(outcome.settled_at)
        .bind(&outcome.workflow_id)
        .bind(i64::from(outcome.version))
        .execute(&mut *tx)
        .await?;
        let activated = if outcome.state == VersionState::Ready {
            let result = sqlx::query(
                "UPDATE workflows SET version = ?, updated_at = ? WHERE id = ? AND version < ?",
            )
            .bind(i64::from(outcome.version))
            .bind(outcome.settled_at)
            .bind(&outcome.workflow_id)
            .bind(i64::from(outcome.version))
            .execute(&mut *tx)
            .await?;
            result.rows_affected() > 0
        } else {
            false
        };
        tx.commit().await?;
        Ok(activated)
    }

    async fn building_versions(&self) -> Result<Vec<VersionRecord>> {
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE state = 'building' \
             ORDER BY created_at, workflow_id, version"
        ))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn version(&self, workflow_id: &str, version: u32) -> Result<Option<VersionRecord>> {
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE workflow_id = ? AND version = ?"
        ))
        .bind(workflow_id)
        .bind(i64::from(version))
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(version_from_row)
        .transpose()
    }

    async fn list_versions(&self, workflow_id: &str) -> Result<Vec<VersionRecord>> {
        sqlx::query(&format!(
            "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE workflow_id = ? \
             ORDER BY version DESC"
        ))
        .bind(workflow_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(version_from_row)
        .collect()
    }

    async fn delete_workflow_audited(&self, id: &str, audit: Option<&AuditEntry>) -> Result<bool> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        // Versions, settings and executions go with it: ON DELETE CASCADE.
        let result = sqlx::query("DELETE FROM workflows WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        if result.rows_affected() == 0 {
            return Ok(false);
        }
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(true)
    }

    // --- settings ---

    async fn settings(&self, workflow_id: &str) -> Result<Settings> {
        // In the order the keys were first stored, like a Python dict (with serde_json's
        // `preserve_order`; sorted otherwise).
        let rows = sqlx::query(
            "SELECT key, value FROM workflow_settings WHERE workflow_id = ? ORDER BY rowid",
        )
        .bind(workflow_id)
        .fetch_all(&self.pool)
        .await?;
        let mut settings = Settings::new();
        for row in &rows {
            let key: String = row.try_get("key")?;
            let value: String = row.try_get("value")?;
            let value = self.secrets.open_setting(workflow_id, &key, &value)?;
            settings.insert(key, value);
        }
        Ok(settings)
    }

    async fn replace_settings_audited(
        &self,
        workflow_id: &str,
        settings: &Settings,
        audit: &[AuditEntry],
    ) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        if !workflow_exists(&mut tx, workflow_id).await? {
            return Err(StoreError::workflow_not_found(workflow_id));
        }
        sqlx::query("DELETE FROM workflow_settings WHERE workflow_id = ?")
            .bind(workflow_id)
            .execute(&mut *tx)
            .await?;
        for (key, value) in &self.secrets.seal_settings(workflow_id, settings) {
            upsert_setting(&mut tx, workflow_id, key, value).await?;
        }
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- executions ---

    fn submit(&self, writes: Vec<StoreWrite>) -> CommitTicket {
        self.commits.submit(self.secrets.seal_writes(writes))
    }

    fn enqueue(&self, writes: Vec<StoreWrite>) {
        self.commits.enqueue(self.secrets.seal_writes(writes))
    }

    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>> {
        sqlx::query(&format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(execution_from_row)
        .transpose()
    }

    async fn stored_request(&self, execution_id: &str) -> Result<Option<RequestParts>> {
        let row =
            sqlx::query("SELECT workflow_id, payload FROM stored_requests WHERE execution_id = ?")
                .bind(execution_id)
                .fetch_optional(&self.pool)
                .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let workflow_id: String = row.try_get("workflow_id")?;
        let payload: Vec<u8> = row.try_get("payload")?;
        self.secrets
            .open_stored_request(&workflow_id, execution_id, payload)
            .map(Some)
    }

    async fn list_executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>> {
        let limit = match query.limit {
            0 => DEFAULT_LIST_LIMIT,
            limit => limit.min(MAX_LIST_LIMIT),
        };
        let mut sql = QueryBuilder::<Sqlite>::new(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE 1 = 1"
        ));
        if let Some(workflow_id) = &query.workflow_id {
            sql.push(" AND workflow_id = ")
                .push_bind(workflow_id.as_str());
        }
        if let Some(status) = query.status {
            sql.push(" AND status = ").push_bind(status.as_str());
        }
        if let Some(before_id) = &query.before_id {
            sql.push(" AND id < ").push_bind(before_id.as_str());
        }
        if let Some(since) = query.started_since {
            sql.push(" AND started_at >= ").push_bind(since);
        }
        if let Some(before) = query.started_before {
            sql.push(" AND started_at < ").push_bind(before);
        }
        let order = if query.oldest_first { "ASC" } else { "DESC" };
        sql.push(format!(" ORDER BY id {order} LIMIT "))
            .push_bind(i64::from(limit));
        sql.build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(execution_from_row)
            .collect()
    }

    async fn count_executions(
        &self,
        workflow_id: &str,
        since: i64,
    ) -> Result<Vec<(ExecutionStatus, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM executions \
             WHERE workflow_id = ? AND started_at >= ? GROUP BY status",
        )
        .bind(workflow_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        let mut counts = Vec::with_capacity(rows.len());
        for (status, count) in rows {
            let status: ExecutionStatus = status
                .parse()
                .map_err(|err| StoreError::Corrupt(format!("executions.status: {err}")))?;
            counts.push((status, u64::try_from(count).unwrap_or(0)));
        }
        counts.sort_by_key(|(status, _)| ExecutionStatus::ALL.iter().position(|s| s == status));
        Ok(counts)
    }

    async fn due_workflows(&self, now: i64, limit: u32) -> Result<Vec<WorkflowRecord>> {
        sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows \
             WHERE next_fire_at IS NOT NULL AND next_fire_at <= ? AND enabled = 1 \
             ORDER BY next_fire_at LIMIT ?"
        ))
        .bind(now)
        .bind(i64::from(limit.max(1)))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| workflow_from_row(row, &self.secrets))
        .collect()
    }

    async fn earliest_fire_at(&self) -> Result<Option<i64>> {
        let row: Option<(i64,)> = sqlx::query_as(
            "SELECT next_fire_at FROM workflows WHERE next_fire_at IS NOT NULL \
             ORDER BY next_fire_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(at,)| at))
    }

    async fn claim_run(&self, claim: &RunClaim) -> Result<ClaimOutcome> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let outcome = claim_in(&mut tx, &self.node_id, claim).await?;
        if outcome != ClaimOutcome::AlreadyClaimed {
            tx.commit().await?;
        } // else dropped: rolled back, nothing written
        Ok(outcome)
    }

    async fn claim_runs(&self, claims: &[RunClaim]) -> Result<Vec<ClaimOutcome>> {
        match claims {
            [] => return Ok(Vec::new()),
            // One claim needs no savepoint.
            [claim] => return Ok(vec![self.claim_run(claim).await?]),
            _ => {}
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let mut outcomes = Vec::with_capacity(claims.len());
        for claim in claims {
            outcomes.push(claim_in_savepoint(&mut tx, &self.node_id, claim).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn is_shared(&self) -> bool {
        false
    }

    async fn register_node(&self, node: &NodeRecord) -> Result<()> {
        if node.id != *self.node_id {
            return Err(StoreError::not_this_node(&node.id, &self.node_id));
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        nodes::register_alone(&mut tx, node).await?;
        tx.commit().await?;
        Ok(())
    }

    // --- audit log ---

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut tx = self.pool.begin_with(BEGIN_WRITE).await?;
        audit::insert_entries(&mut tx, [entry]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut conn = self.pool.acquire().await?;
        audit::select(&mut conn, query).await
    }

    async fn delete_audit_before(&self, before: i64) -> Result<u64> {
        let result = sqlx::query("DELETE FROM audit_log WHERE at < ?")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    // --- the queue of asynchronous calls ---

    async fn enqueue_async_call(
        &self,
        call: &AsyncCallRecord,
        bound: QueueBound,
    ) -> Result<Enqueued> {
        async_calls::enqueue(&self.writer, call, bound).await
    }

    async fn workflows_with_async_calls(&self, now: i64) -> Result<Vec<String>> {
        async_calls::workflows_with_calls(&self.pool, now).await
    }

    async fn claim_async_calls(
        &self,
        workflow_id: &str,
        limit: u32,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<AsyncCallRecord>> {
        async_calls::claim(
            &self.writer,
            workflow_id,
            limit,
            now,
            lease_until,
            self.node_id(),
        )
        .await
    }

    async fn finish_async_call(
        &self,
        id: &str,
        response: &StoredResponse,
        finished_at: i64,
    ) -> Result<()> {
        async_calls::finish(&self.writer, id, response, finished_at).await
    }

    async fn release_async_call(&self, id: &str) -> Result<()> {
        async_calls::release(&self.writer, id).await
    }

    async fn retry_async_call(&self, id: &str, next: &NextAttempt) -> Result<()> {
        async_calls::retry(&self.writer, id, next).await
    }

    async fn async_call_by_token(&self, token: &str) -> Result<Option<AsyncCallRecord>> {
        async_calls::by_token(&self.pool, token).await
    }

    async fn async_queue_depth(&self, workflow_id: Option<&str>) -> Result<u64> {
        async_calls::depth(&self.pool, workflow_id).await
    }

    // --- idempotency keys ---

    async fn claim_idempotency_key(
        &self,
        claim: &IdempotencyClaim,
    ) -> Result<IdempotencyClaimOutcome> {
        idempotency::claim(&self.writer, claim).await
    }

    async fn idempotency_key(
        &self,
        workflow_id: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>> {
        idempotency::read(&self.pool, workflow_id, key).await
    }

    async fn release_idempotency_key(
        &self,
        workflow_id: &str,
        key: &str,
        execution_id: &str,
    ) -> Result<bool> {
        idempotency::release(&self.writer, workflow_id, key, execution_id).await
    }

    async fn delete_expired_idempotency_keys(&self, now: i64) -> Result<u64> {
        idempotency::delete_expired(&self.writer, now).await
    }

    // --- failure alerts ---

    async fn claim_alert(
        &self,
        workflow_id: &str,
        now: i64,
        min_interval_ms: i64,
    ) -> Result<crate::AlertClaim> {
        alerts::claim(&self.writer, workflow_id, now, min_interval_ms).await
    }

    async fn record_alert_delivery(&self, delivery: &crate::AlertDelivery) -> Result<()> {
        alerts::record(&self.writer, delivery).await
    }

    async fn list_alert_deliveries(
        &self,
        workflow_id: &str,
        limit: u32,
    ) -> Result<Vec<crate::AlertDelivery>> {
        alerts::list(&self.pool, workflow_id, limit).await
    }

    async fn renew_node_lease(&self, lease_expires_at: i64) -> Result<bool> {
        nodes::renew(&self.writer, &self.node_id, lease_expires_at).await
    }

    async fn reap_expired_nodes(&self, now: i64) -> Result<Vec<ReapedNode>> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let reaped = nodes::reap_expired(&mut tx, now).await?;
        tx.commit().await?;
        Ok(reaped)
    }

    async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        nodes::list(&self.pool).await
    }

    async fn acquire_slot(
        &self,
        workflow_id: &str,
        limit: u32,
        holder: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        let taken =
            nodes::acquire_slot(&mut tx, &self.node_id, workflow_id, limit, holder, now).await?;
        tx.commit().await?;
        Ok(taken)
    }

    async fn release_slot(&self, workflow_id: &str, holder: &str) -> Result<()> {
        nodes::release_slot(&self.writer, workflow_id, holder).await
    }

    async fn workflow_retentions(&self) -> Result<Vec<WorkflowRetention>> {
        retention::workflow_retentions(&self.pool).await
    }

    async fn prune_executions(
        &self,
        workflow_id: &str,
        cut: &RetentionCut,
        limit: u32,
    ) -> Result<u64> {
        retention::prune_executions(&self.pool, &self.writer, workflow_id, cut, limit).await
    }
}
