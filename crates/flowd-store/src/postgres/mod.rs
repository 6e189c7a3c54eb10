//! The PostgreSQL backend: a database on a server that several flowd nodes can share.
//!
//! - `schema`: the migrations (`migrations/postgres`) and the refusal of a newer schema;
//! - `rows`: the columns read and how rows become records;
//! - `writes`: the executions' writes, applied by the schema's `flowd_apply_writes` function;
//! - `audit`: the audit log's rows;
//! - `batch_commit`: the queue and task that commit those writes many executions at a time;
//! - `listener`: the changes other nodes commit, heard with `LISTEN` and handed to the feeds;
//! - `nodes`: the nodes' leases, the reaping of dead ones and the concurrency slots;
//! - `errors`: constraint violations as the store's errors.
//!
//! Transactions run at PostgreSQL's default isolation (read committed); where one reads before
//! it writes, it locks the row it depends on (`FOR UPDATE`, `FOR NO KEY UPDATE`, `FOR KEY
//! SHARE`), so that the outcome is the same as SQLite's single writer, whichever node writes.

mod alerts;
mod async_calls;
mod audit;
mod batch_commit;
pub(crate) mod errors;
mod idempotency;
pub(crate) mod listener;
mod nodes;
mod retention;
mod rows;
pub(crate) mod schema;
mod secret_key;
mod writes;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use flowd_core::access::Role;
use flowd_core::retention::RetentionCut;
use flowd_core::settings::Settings;
use flowd_core::workflow::{ExecutionStatus, VersionState};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder, Row};

use self::batch_commit::BatchCommit;
use self::errors::unique_violation;
use self::listener::ChangeListener;
use self::rows::{
    api_key_from_row, execution_from_row, team_from_row, version_from_row, workflow_from_row,
    API_KEY_COLUMNS, EXECUTION_COLUMNS, TEAM_COLUMNS, VERSION_COLUMNS, WORKFLOW_COLUMNS,
};
use crate::changes::{ChangeFeed, ChangePublisher};
use crate::json_column::{optional_to_json, to_json};
use crate::secrets::{SecretKey, Secrets};
use crate::sqlx_error::is_foreign_key_violation;
use crate::{
    ApiKeyRecord, AuditEntry, AuditQuery, ClaimOutcome, CommitTicket, ExecutionQuery,
    ExecutionRecord, NodeRecord, ReapedNode, Result, RunClaim, Store, StoreError, StoreWrite,
    TeamRecord, VersionOutcome, VersionRecord, WorkflowRecord, WorkflowRetention,
};
use crate::{AsyncCallRecord, Enqueued, NextAttempt, QueueBound, StoredResponse};

/// Connections of the pool: the API's reads and writes, the scheduler's claims and the batched
/// commit share them.
const POOL_SIZE: u32 = 8;
/// How long a call waits for a connection of the pool before failing.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// `list_executions` returns at most this many rows…
const MAX_LIST_LIMIT: u32 = 1000;
/// …and this many when the query asks for 0.
const DEFAULT_LIST_LIMIT: u32 = 50;

/// The PostgreSQL implementation of [`Store`].
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    commits: Arc<BatchCommit>,
    /// How environment variables and settings values are sealed (see [`crate::secrets`]).
    secrets: Secrets,
    changes: ChangePublisher,
    listener: Arc<ChangeListener>,
    /// See [`Store::node_id`]: every connection of the pool sets `flowd.node_id` to it, which
    /// the executions' `node_id` column takes as its default.
    node_id: Arc<str>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or
    /// `?host=/socket/dir`) and brings its schema up to date. `SchemaTooNew` when a newer flowd
    /// migrated it.
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        PostgresStore::connect_keyed(url, None).await
    }

    /// [`PostgresStore::connect`], with secret values sealed under `secret_key` (a store from
    /// before the key has its clear values sealed now). `WrongSecretKey` when the store's values
    /// are sealed under another key, `SecretKeyMissing` when they are sealed and no key is given.
    pub async fn connect_keyed(url: &str, secret_key: Option<&SecretKey>) -> Result<PostgresStore> {
        let node_id = uuid::Uuid::now_v7().to_string();
        let options = PgConnectOptions::from_str(url)?
            .application_name("flowd")
            .options([("flowd.node_id", node_id.as_str())]);
        let pool = PgPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await?;
        schema::migrate(&pool).await?;
        let secrets = secret_key.map_or_else(Secrets::clear, Secrets::sealed);
        secret_key::settle(&pool, &secrets).await?;
        let changes = ChangePublisher::new();
        let listener = Arc::new(ChangeListener::start(url, changes.clone()).await?);
        let commits = Arc::new(BatchCommit::start(pool.clone()));
        Ok(PostgresStore {
            pool,
            commits,
            secrets,
            changes,
            listener,
            node_id: node_id.into(),
        })
    }

    /// Reseals every secret value under `new_key`, in one transaction, then closes the store:
    /// a store opened with another key must not write any more. Nothing else may be writing
    /// to the database meanwhile (every server on it stopped): what it sealed under the old key
    /// would no longer open.
    pub async fn rotate_secret_key(self, new_key: &SecretKey) -> Result<()> {
        let rotated =
            secret_key::rotate(&self.pool, &self.secrets, &Secrets::sealed(new_key)).await;
        self.close().await;
        rotated
    }

    /// Commits what is queued, then closes the connections; the store is unusable afterwards.
    pub async fn close(&self) {
        self.listener.stop();
        self.commits.stop().await;
        self.pool.close().await;
    }
}

async fn insert_version(conn: &mut PgConnection, version: &VersionRecord) -> Result<()> {
    sqlx::query(
        "INSERT INTO workflow_versions (workflow_id, version, code, requirements, state, \
         build_log, error, environment, created_at, settled_at) \
         VALUES ($1, $2, $3, $4::JSON, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&version.workflow_id)
    .bind(i64::from(version.version))
    .bind(&version.code)
    .bind(to_json(&version.requirements, "the requirements")?)
    .bind(version.state.as_str())
    .bind(version.build_log.as_bytes())
    .bind(version.error.as_deref().map(str::as_bytes))
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

/// Inserts `settings` as the workflow's keys, in their order (the workflow has none of them).
async fn insert_settings(
    conn: &mut PgConnection,
    workflow_id: &str,
    settings: &Settings,
) -> Result<()> {
    if settings.is_empty() {
        return Ok(());
    }
    let keys: Vec<&str> = settings.keys().map(String::as_str).collect();
    let values: Vec<String> = settings.values().map(|value| value.to_string()).collect();
    sqlx::query(
        "INSERT INTO workflow_settings (workflow_id, key, value) \
         SELECT $1, key, value::JSON \
         FROM UNNEST($2::TEXT[], $3::TEXT[]) WITH ORDINALITY AS settings (key, value, n) \
         ORDER BY n",
    )
    .bind(workflow_id)
    .bind(keys)
    .bind(values)
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
/// the active `version`, which only `settle_version` moves), and their placeholders from `$1`,
/// in the order [`bind_mutable_columns`] binds them.
const MUTABLE_WORKFLOW_COLUMNS: &str = "name, mode, runtime, enabled, hook_token, secret_keys, \
     schedule, next_fire_at, timeout_s, memory_mb, max_concurrency, isolation, updated_at, env, \
     verify, idempotency_header, egress_allow, retention, \
     alerts, on_failure, response, retry, store_requests";
const MUTABLE_WORKFLOW_PLACEHOLDERS: &str =
    "$1, $2, $3, $4, $5, $6::JSON, $7, $8, $9, $10, $11, $12, $13, $14::JSON, $15, $16, \
     $17::JSON, $18::JSON, \
     $19::JSON, $20, $21, $22::JSON, $23";

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

/// Binds [`MUTABLE_WORKFLOW_COLUMNS`], in order: one list for the insert and the update.
fn bind_mutable_columns<'q>(
    query: PgQuery<'q>,
    workflow: &'q WorkflowRecord,
    secrets: &Secrets,
) -> Result<PgQuery<'q>> {
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
/// a write behind, or the transaction failed: the caller rolls back.
async fn claim_in(conn: &mut PgConnection, claim: &RunClaim) -> Result<ClaimOutcome> {
    let workflow_id = &claim.execution.workflow_id;
    match claim.advance {
        Some(advance) => {
            // The compare-and-set of the fire time. SKIP LOCKED: a fire time that another
            // scheduler (another node) is claiming right now is left to it, rather than waited
            // for and found claimed. NO KEY UPDATE does not conflict with the executions'
            // foreign-key checks, so commits going on do not make a claim skip.
            let moved = sqlx::query(
                "UPDATE workflows SET next_fire_at = $1 WHERE id = \
                 (SELECT id FROM workflows WHERE id = $2 AND next_fire_at = $3 \
                  FOR NO KEY UPDATE SKIP LOCKED)",
            )
            .bind(advance.next_fire_at)
            .bind(workflow_id)
            .bind(advance.fire_at)
            .execute(&mut *conn)
            .await?;
            if moved.rows_affected() == 0 {
                return Ok(ClaimOutcome::AlreadyClaimed);
            }
        }
        None => {
            // Claims of one workflow take turns on its row, so that two cannot both find no run
            // going and both start one.
            sqlx::query("SELECT 1 FROM workflows WHERE id = $1 FOR NO KEY UPDATE")
                .bind(workflow_id)
                .execute(&mut *conn)
                .await?;
        }
    }
    let running: Option<i32> = sqlx::query_scalar(
        "SELECT 1 FROM executions WHERE workflow_id = $1 AND status = 'running' LIMIT 1",
    )
    .bind(workflow_id)
    .fetch_optional(&mut *conn)
    .await?;
    let (outcome, record) = claimed_record(claim, running.is_some());
    if let Some(record) = record {
        match writes::put_execution(conn, &record).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => return Ok(ClaimOutcome::AlreadyClaimed),
            Err(error) => return Err(error),
        }
    }
    Ok(outcome)
}

/// One claim of [`Store::claim_runs`] in a savepoint of the batch's transaction: a claim found
/// already made leaves nothing behind, and the others are kept.
async fn claim_in_savepoint(conn: &mut PgConnection, claim: &RunClaim) -> Result<ClaimOutcome> {
    let mut savepoint = sqlx::Connection::begin(&mut *conn).await?;
    let outcome = claim_in(&mut savepoint, claim).await?;
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

#[async_trait]
impl Store for PostgresStore {
    // --- teams and API keys ---

    async fn create_team_audited(
        &self,
        team: &TeamRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO teams (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&team.id)
            .bind(&team.name)
            .bind(team.created_at)
            .execute(&mut *tx)
            .await
            .map_err(|err| match unique_violation(&err) {
                Some("teams_name_key") => {
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
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query("UPDATE teams SET name = $1 WHERE id = $2")
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
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: a workflow being created in the team (its foreign key takes KEY SHARE)
        // waits, then finds the team gone; one created before is counted below.
        let found: Option<i32> = sqlx::query_scalar("SELECT 1 FROM teams WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!("team {id}")));
        }
        let workflows: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM workflows WHERE team_id = $1")
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
        if workflows > 0 {
            return Err(StoreError::team_has_workflows(id, workflows));
        }
        // Its keys go with it: ON DELETE CASCADE.
        sqlx::query("DELETE FROM teams WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        audit::insert_entries(&mut tx, [audit]).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn team_by_name(&self, name: &str) -> Result<Option<TeamRecord>> {
        sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE name = $1"))
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(team_from_row)
            .transpose()
    }

    async fn team_by_id(&self, id: &str) -> Result<Option<TeamRecord>> {
        sqlx::query(&format!("SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1"))
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
        let bytes: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
            .fetch_one(&self.pool)
            .await?;
        u64::try_from(bytes)
            .map_err(|_| StoreError::Corrupt(format!("negative database size {bytes}")))
    }

    async fn count_admin_keys(&self, team_id: &str) -> Result<u64> {
        let count: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE team_id = $1 AND is_admin")
                .bind(team_id)
                .fetch_one(&self.pool)
                .await?;
        u64::try_from(count)
            .map_err(|_| StoreError::Corrupt(format!("negative admin key count {count}")))
    }

    async fn create_api_key_audited(
        &self,
        key: &ApiKeyRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO api_keys ({API_KEY_COLUMNS}, is_admin) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
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
            Some("api_keys_key_hash_key") => {
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
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = $1"
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
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE $1::TEXT IS NULL OR team_id = $1 \
             ORDER BY created_at, id"
        ))
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(api_key_from_row)
        .collect()
    }

    async fn revoke_api_key(&self, id: &str, audit: &AuditEntry) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query("DELETE FROM api_keys WHERE id = $1")
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
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        sqlx::query(&format!(
            "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(api_key_from_row)
        .transpose()
    }

    // --- workflows ---

    async fn create_workflow_audited(
        &self,
        workflow: &WorkflowRecord,
        first_version: &VersionRecord,
        settings: &Settings,
        audit: Option<&AuditEntry>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let insert = format!(
            "INSERT INTO workflows ({MUTABLE_WORKFLOW_COLUMNS}, id, team_id, created_at, version) \
             VALUES ({MUTABLE_WORKFLOW_PLACEHOLDERS}, $24, $25, $26, $27)"
        );
        bind_mutable_columns(sqlx::query(&insert), workflow, &self.secrets)?
            .bind(&workflow.id)
            .bind(&workflow.team_id)
            .bind(workflow.created_at)
            .bind(i64::from(workflow.version.unwrap_or(0)))
            .execute(&mut *tx)
            .await
            .map_err(|err| match unique_violation(&err) {
                Some("workflows_team_id_name_key") => StoreError::Conflict(format!(
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
        let settings = self.secrets.seal_settings(&workflow.id, settings);
        insert_settings(&mut tx, &workflow.id, &settings).await?;
        audit::insert_entries(&mut tx, audit).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn workflow_by_id(&self, id: &str) -> Result<Option<WorkflowRecord>> {
        sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE id = $1"
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
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE team_id = $1 AND name = $2"
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
            "SELECT {WORKFLOW_COLUMNS} FROM workflows WHERE team_id = $1 ORDER BY name"
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
             WHERE id = $24"
        );
        let mut tx = self.pool.begin().await?;
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
        let mut tx = self.pool.begin().await?;
        insert_version(&mut tx, version).await?;
        let result = sqlx::query("UPDATE workflows SET updated_at = $1 WHERE id = $2")
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
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: of two settles of one version, the second waits and finds it settled.
        let current: Option<String> = sqlx::query_scalar(
            "SELECT state FROM workflow_versions WHERE workflow_id = $1 AND version = $2 \
             FOR UPDATE",
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
            "UPDATE workflow_versions SET state = $1, build_log = $2, error = $3, \
             environment = $4, settled_at = $5 WHERE workflow_id = $6 AND version = $7",
        )
        .bind(outcome.state.as_str())
        .bind(outcome.build_log.as_bytes())
        .bind(outcome.error.as_deref().map(str::as_bytes))
        .bind(&outcome.environment)
        .bind(outcome.settled_at)
        .bind(&outcome.workflow_id)
        .bind(i64::from(outcome.version))
        .execute(&mut *tx)
        .await?;
        let activated = if outcome.state == VersionState::Ready {
            let result = sqlx::query(
                "UPDATE workflows SET version = $1, updated_at = $2 WHERE id = $3 AND version < $1",
            )
            .bind(i64::from(outcome.version))
            .bind(outcome.settled_at)
            .bind(&outcome.workflow_id)
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
            "SELECT {VERSION_COLUMNS} FROM workflow_versions \
             WHERE workflow_id = $1 AND version = $2"
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
            "SELECT {VERSION_COLUMNS} FROM workflow_versions WHERE workflow_id = $1 \
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
        let mut tx = self.pool.begin().await?;
        // Versions, settings and executions go with it: ON DELETE CASCADE.
        let result = sqlx::query("DELETE FROM workflows WHERE id = $1")
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
        let rows = sqlx::query(
            "SELECT key, value::TEXT AS value FROM workflow_settings WHERE workflow_id = $1 \
             ORDER BY position",
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
        let mut tx = self.pool.begin().await?;
        // FOR UPDATE: replacements of one workflow's settings take turns.
        let found: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM workflows WHERE id = $1 FOR UPDATE")
                .bind(workflow_id)
                .fetch_optional(&mut *tx)
                .await?;
        if found.is_none() {
            return Err(StoreError::workflow_not_found(workflow_id));
        }
        sqlx::query("DELETE FROM workflow_settings WHERE workflow_id = $1")
            .bind(workflow_id)
            .execute(&mut *tx)
            .await?;
        let settings = self.secrets.seal_settings(workflow_id, settings);
        insert_settings(&mut tx, workflow_id, &settings).await?;
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
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(execution_from_row)
        .transpose()
    }

    async fn stored_request(&self, execution_id: &str) -> Result<Option<crate::RequestParts>> {
        let row =
            sqlx::query("SELECT workflow_id, payload FROM stored_requests WHERE execution_id = $1")
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
        let mut sql = QueryBuilder::<Postgres>::new(format!(
            "SELECT {EXECUTION_COLUMNS} FROM executions WHERE TRUE"
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
             WHERE workflow_id = $1 AND started_at >= $2 GROUP BY status",
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

    // --- schedules ---

    async fn due_workflows(&self, now: i64, limit: u32) -> Result<Vec<WorkflowRecord>> {
        sqlx::query(&format!(
            "SELECT {WORKFLOW_COLUMNS} FROM workflows \
             WHERE next_fire_at IS NOT NULL AND next_fire_at <= $1 AND enabled \
             ORDER BY next_fire_at LIMIT $2"
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
        Ok(sqlx::query_scalar(
            "SELECT next_fire_at FROM workflows WHERE next_fire_at IS NOT NULL \
             ORDER BY next_fire_at LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn claim_run(&self, claim: &RunClaim) -> Result<ClaimOutcome> {
        let mut tx = self.pool.begin().await?;
        let outcome = claim_in(&mut tx, claim).await?;
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
        let mut tx = self.pool.begin().await?;
        let mut outcomes = Vec::with_capacity(claims.len());
        for claim in claims {
            outcomes.push(claim_in_savepoint(&mut tx, claim).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    // --- audit log ---

    async fn append_audit(&self, entry: &AuditEntry) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        audit::insert_entries(&mut conn, [entry]).await
    }

    async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut conn = self.pool.acquire().await?;
        audit::select(&mut conn, query).await
    }

    async fn delete_audit_before(&self, before: i64) -> Result<u64> {
        let result = sqlx::query("DELETE FROM audit_log WHERE at < $1")
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
        async_calls::enqueue(&self.pool, call, bound).await
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
            &self.pool,
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
        async_calls::finish(&self.pool, id, response, finished_at).await
    }

    async fn release_async_call(&self, id: &str) -> Result<()> {
        async_calls::release(&self.pool, id).await
    }

    async fn retry_async_call(&self, id: &str, next: &NextAttempt) -> Result<()> {
        async_calls::retry(&self.pool, id, next).await
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
        claim: &crate::IdempotencyClaim,
    ) -> Result<crate::IdempotencyClaimOutcome> {
        idempotency::claim(&self.pool, claim).await
    }

    async fn idempotency_key(
        &self,
        workflow_id: &str,
        key: &str,
    ) -> Result<Option<crate::IdempotencyRecord>> {
        idempotency::read(&self.pool, workflow_id, key).await
    }

    async fn release_idempotency_key(
        &self,
        workflow_id: &str,
        key: &str,
        execution_id: &str,
    ) -> Result<bool> {
        idempotency::release(&self.pool, workflow_id, key, execution_id).await
    }

    async fn delete_expired_idempotency_keys(&self, now: i64) -> Result<u64> {
        idempotency::delete_expired(&self.pool, now).await
    }

    // --- failure alerts ---

    async fn claim_alert(
        &self,
        workflow_id: &str,
        now: i64,
        min_interval_ms: i64,
    ) -> Result<crate::AlertClaim> {
        alerts::claim(&self.pool, workflow_id, now, min_interval_ms).await
    }

    async fn record_alert_delivery(&self, delivery: &crate::AlertDelivery) -> Result<()> {
        alerts::record(&self.pool, delivery).await
    }

    async fn list_alert_deliveries(
        &self,
        workflow_id: &str,
        limit: u32,
    ) -> Result<Vec<crate::AlertDelivery>> {
        alerts::list(&self.pool, workflow_id, limit).await
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
        retention::prune_executions(&self.pool, workflow_id, cut, limit).await
    }

    fn node_id(&self) -> &str {
        &self.node_id
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn register_node(&self, node: &NodeRecord) -> Result<()> {
        if node.id != *self.node_id {
            return Err(StoreError::not_this_node(&node.id, &self.node_id));
        }
        nodes::register(&self.pool, node).await
    }

    async fn renew_node_lease(&self, lease_expires_at: i64) -> Result<bool> {
        nodes::renew(&self.pool, &self.node_id, lease_expires_at).await
    }

    async fn reap_expired_nodes(&self, now: i64) -> Result<Vec<ReapedNode>> {
        nodes::reap_expired(&self.pool, now).await
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
        nodes::acquire_slot(&self.pool, &self.node_id, workflow_id, limit, holder, now).await
    }

    async fn release_slot(&self, workflow_id: &str, holder: &str) -> Result<()> {
        nodes::release_slot(&self.pool, workflow_id, holder).await
    }

    // --- changes other nodes make ---

    fn changes(&self) -> ChangeFeed {
        self.changes.feed()
    }
}
