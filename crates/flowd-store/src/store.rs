//! The [`Store`] trait every backend implements, and the requests it takes and answers.

use async_trait::async_trait;
use flowd_core::settings::{Settings, SettingsChange};

use crate::async_call::{AsyncCallRecord, Enqueued, NextAttempt, QueueBound};
use crate::changes::ChangeFeed;
use crate::commit::CommitTicket;
use crate::error::Result;
use crate::model::{
    ApiKeyRecord, AuditEntry, AuditQuery, ExecutionRecord, TeamRecord, VersionOutcome,
    VersionRecord, WorkflowRecord,
};
use crate::node::{NodeRecord, ReapedNode};
use crate::StoredResponse;

/// One write of a batch committed by [`Store::commit`]: the engine groups the writes of many
/// executions into one transaction (group commit).
#[derive(Debug, Clone)]
// Most writes of a batch are executions: boxing them would only add an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum StoreWrite {
    /// Inserts the execution, or replaces the row with the same id (a `running` row being
    /// finished).
    PutExecution(ExecutionRecord),
    /// Applies a settings change key by key to the workflow's stored settings: upserts for
    /// added/changed keys, deletes for removed ones. Keys not in the change are left as they are.
    ApplySettingsChange {
        workflow_id: String,
        change: SettingsChange,
    },
    /// Stores the response of the execution that claimed an idempotency key, for the repeats of
    /// its call; nothing when the key is no longer that execution's (expired and taken again).
    CompleteIdempotencyKey {
        workflow_id: String,
        key: String,
        execution_id: String,
        response: crate::StoredResponse,
    },
    /// Appends an entry to the audit log (the settings change it records goes in the same
    /// transaction).
    AppendAudit(AuditEntry),
    /// Stores the request of an execution put earlier in the same batch (or before), for replay;
    /// deleted with its execution.
    PutStoredRequest(crate::StoredRequest),
}

/// Filter and paging for execution listings. Results are newest first.
#[derive(Debug, Clone, Default)]
pub struct ExecutionQuery {
    /// Only this workflow's executions (all workflows of the store when `None`).
    pub workflow_id: Option<String>,
    pub status: Option<flowd_core::workflow::ExecutionStatus>,
    /// Only executions whose id is smaller (older) than this one: the next page.
    pub before_id: Option<String>,
    /// At most this many (the backend caps it at 1000; 0 means 50).
    pub limit: u32,
    /// Only executions started at or after this time (epoch ms).
    pub started_since: Option<i64>,
    /// Only executions started before this time (epoch ms).
    pub started_before: Option<i64>,
    /// Oldest first instead of newest first (with `before_id`: still the ones older than it).
    pub oldest_first: bool,
}

/// A fire time being claimed: it must still be the workflow's `next_fire_at`, which moves on to
/// `next_fire_at`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FireAdvance {
    pub fire_at: i64,
    pub next_fire_at: Option<i64>,
}

/// A run of a workflow whose runs must not overlap (pull mode), claimed with [`Store::claim_run`]
/// (or, with others, [`Store::claim_runs`]).
#[derive(Debug, Clone)]
pub struct RunClaim {
    /// The execution to record, with status `running`.
    pub execution: ExecutionRecord,
    /// For a scheduled tick: the fire time claimed and the next one.
    pub advance: Option<FireAdvance>,
    /// When another run of the workflow is going: record the execution as `skipped` with this
    /// warning, or (`None`) record nothing.
    pub skip_warning: Option<String>,
}

/// A workflow's own retention of its executions, as [`Store::workflow_retentions`] lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowRetention {
    pub workflow_id: String,
    /// `None`: the server's.
    pub retention: Option<flowd_core::retention::Retention>,
}

/// What [`Store::claim_run`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimOutcome {
    /// The execution is recorded as `running`: start it.
    Started,
    /// Another run is going: the execution was recorded as `skipped` (if asked) and the fire
    /// time, if any, consumed.
    Overlapped,
    /// The fire time was already claimed (by another tick or node): nothing was written.
    AlreadyClaimed,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- teams and API keys ---
    /// `Conflict` when the name is taken.
    async fn create_team(&self, team: &TeamRecord) -> Result<()> {
        self.create_team_audited(team, None).await
    }
    /// [`Store::create_team`], with the audit entry recording it in the same transaction.
    async fn create_team_audited(
        &self,
        team: &TeamRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<()>;
    /// All teams, by name.
    async fn list_teams(&self) -> Result<Vec<TeamRecord>>;
    /// Renames a team, recording `audit` in the same transaction. `NotFound` if it does not
    /// exist, `Conflict` if the name is taken.
    async fn rename_team(&self, id: &str, name: &str, audit: &AuditEntry) -> Result<()>;
    /// Deletes a team and its keys, recording `audit` in the same transaction. `NotFound` if it
    /// does not exist, `Conflict` (nothing deleted) while it has workflows.
    async fn delete_team(&self, id: &str, audit: &AuditEntry) -> Result<()>;
    async fn team_by_name(&self, name: &str) -> Result<Option<TeamRecord>>;
    async fn team_by_id(&self, id: &str) -> Result<Option<TeamRecord>>;
    async fn count_teams(&self) -> Result<u64>;
    /// The space the database takes, in bytes (what `/metrics` shows as the database's size):
    /// SQLite's pages (the file, without its WAL), PostgreSQL's `pg_database_size`.
    async fn database_size(&self) -> Result<u64>;
    /// `Conflict` when a key with the same hash exists, `NotFound` when the team does not.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()> {
        self.create_api_key_audited(key, None).await
    }
    /// [`Store::create_api_key`], with the audit entry recording it in the same transaction.
    async fn create_api_key_audited(
        &self,
        key: &ApiKeyRecord,
        audit: Option<&AuditEntry>,
    ) -> Result<()>;
    /// The key whose SHA-256 hex digest is `key_hash`.
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>>;
    async fn api_key_by_id(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// The keys of a team (of every team when `None`), oldest first.
    async fn list_api_keys(&self, team_id: Option<&str>) -> Result<Vec<ApiKeyRecord>>;
    /// Deletes a key (it authenticates no more), recording `audit` in the same transaction.
    /// `false` if it did not exist.
    async fn revoke_api_key(&self, id: &str, audit: &AuditEntry) -> Result<bool>;
    /// Records that the key was used at `at`.
    async fn touch_api_key(&self, id: &str, at: i64) -> Result<()>;
    /// How many admin keys the team has (the first start's bootstrap repairs a team with none).
    async fn count_admin_keys(&self, team_id: &str) -> Result<u64>;

    // --- workflows ---
    /// Stores a new workflow with its first version and its initial settings, in one
    /// transaction. `Conflict` when the name is taken in the team, `NotFound` when the team
    /// does not exist. `first_version.workflow_id` is `workflow.id`.
    async fn create_workflow(
        &self,
        workflow: &WorkflowRecord,
        first_version: &VersionRecord,
        settings: &Settings,
    ) -> Result<()> {
        self.create_workflow_audited(workflow, first_version, settings, None)
            .await
    }
    /// [`Store::create_workflow`], with the audit entry recording it in the same transaction.
    async fn create_workflow_audited(
        &self,
        workflow: &WorkflowRecord,
        first_version: &VersionRecord,
        settings: &Settings,
        audit: Option<&AuditEntry>,
    ) -> Result<()>;
    async fn workflow_by_id(&self, id: &str) -> Result<Option<WorkflowRecord>>;
    async fn workflow_by_name(&self, team_id: &str, name: &str) -> Result<Option<WorkflowRecord>>;
    /// All workflows of a team, by name.
    async fn list_workflows(&self, team_id: &str) -> Result<Vec<WorkflowRecord>>;
    /// Replaces the workflow row (every column but `id`, `team_id`, `created_at` and the active
    /// `version`, which only [`Store::settle_version`] moves).
    /// `NotFound` if it does not exist, `Conflict` if the new name is taken.
    async fn update_workflow(&self, workflow: &WorkflowRecord) -> Result<()> {
        self.update_workflow_audited(workflow, &[]).await
    }
    /// [`Store::update_workflow`], with the audit entries recording it in the same transaction.
    async fn update_workflow_audited(
        &self,
        workflow: &WorkflowRecord,
        audit: &[AuditEntry],
    ) -> Result<()>;
    /// Stores a new version (usually `building`) and sets the workflow's `updated_at`, in one
    /// transaction; the active version stays as it is. `Conflict` if that version number exists,
    /// `NotFound` if the workflow does not.
    async fn add_version(&self, version: &VersionRecord, updated_at: i64) -> Result<()> {
        self.add_version_audited(version, updated_at, None).await
    }
    /// [`Store::add_version`], with the audit entry recording it in the same transaction.
    async fn add_version_audited(
        &self,
        version: &VersionRecord,
        updated_at: i64,
        audit: Option<&AuditEntry>,
    ) -> Result<()>;
    /// Records how a `building` version ended and, when it is `Ready` and newer than the
    /// workflow's active version (or the workflow has none), makes it the active one — in one
    /// transaction. Answers whether it became active. `NotFound` when the version does not exist
    /// (its workflow was deleted meanwhile), `Conflict` when it is not `building` any more.
    async fn settle_version(&self, outcome: &VersionOutcome) -> Result<bool>;
    /// Versions still `building` (of every workflow), oldest first: builds to resume after a
    /// restart.
    async fn building_versions(&self) -> Result<Vec<VersionRecord>>;
    async fn version(&self, workflow_id: &str, version: u32) -> Result<Option<VersionRecord>>;
    /// All versions of a workflow, newest first.
    async fn list_versions(&self, workflow_id: &str) -> Result<Vec<VersionRecord>>;
    /// Deletes the workflow with its versions, settings and executions. `false` if it did not exist.
    async fn delete_workflow(&self, id: &str) -> Result<bool> {
        self.delete_workflow_audited(id, None).await
    }
    /// [`Store::delete_workflow`], with the audit entry recording it in the same transaction
    /// (nothing is recorded when the workflow did not exist).
    async fn delete_workflow_audited(&self, id: &str, audit: Option<&AuditEntry>) -> Result<bool>;

    // --- settings ---
    /// The workflow's settings (empty for an unknown workflow).
    async fn settings(&self, workflow_id: &str) -> Result<Settings>;
    /// Replaces all settings of the workflow. `NotFound` if it does not exist.
    async fn replace_settings(&self, workflow_id: &str, settings: &Settings) -> Result<()> {
        self.replace_settings_audited(workflow_id, settings, &[])
            .await
    }
    /// [`Store::replace_settings`], with the audit entries recording it in the same transaction.
    async fn replace_settings_audited(
        &self,
        workflow_id: &str,
        settings: &Settings,
        audit: &[AuditEntry],
    ) -> Result<()>;

    // --- executions ---
    /// Queues `writes` to be committed together, in one transaction, after everything queued
    /// before them (the group commit: the writes of many calls may share a transaction, but a
    /// failing call fails alone). If one of them fails, none is kept: a write naming a workflow
    /// that does not exist fails with `NotFound`, an execution claiming a fire time already
    /// claimed with `Conflict`; the message names the workflow (and the execution). Queueing is
    /// immediate (the order of calls is the order of commits); the ticket waits for the commit.
    /// A backend may commit before returning when it is idle (SQLite does: no hand-off at low
    /// load), so the caller should not hold anything others wait for long.
    fn submit(&self, writes: Vec<StoreWrite>) -> CommitTicket;
    /// Queues `writes` like [`Store::submit`], but never commits them before returning and
    /// reports no outcome (a failure is logged): for writes nobody waits for, made where waiting
    /// on the disk is not acceptable (refusals under overload).
    fn enqueue(&self, writes: Vec<StoreWrite>);
    /// [`Store::submit`] and wait for the commit.
    async fn commit(&self, writes: &[StoreWrite]) -> Result<()> {
        self.submit(writes.to_vec()).wait().await
    }
    async fn execution(&self, id: &str) -> Result<Option<ExecutionRecord>>;
    /// The request stored with the execution `execution_id` (opened), if there is one.
    async fn stored_request(&self, execution_id: &str) -> Result<Option<crate::RequestParts>>;
    async fn list_executions(&self, query: &ExecutionQuery) -> Result<Vec<ExecutionRecord>>;
    /// How many executions of the workflow started at or after `since` (epoch ms), by status,
    /// in the order of [`ExecutionStatus::ALL`](flowd_core::workflow::ExecutionStatus::ALL);
    /// statuses without any are left out. For the console's statistics (error rate over a day).
    async fn count_executions(
        &self,
        workflow_id: &str,
        since: i64,
    ) -> Result<Vec<(flowd_core::workflow::ExecutionStatus, u64)>>;
    // --- schedules ---
    /// Workflows whose `next_fire_at` is at or before `now`, earliest first, at most `limit`.
    /// Only enabled pull workflows have a `next_fire_at` (the engine keeps it `None` otherwise).
    async fn due_workflows(&self, now: i64, limit: u32) -> Result<Vec<WorkflowRecord>>;
    /// The earliest `next_fire_at` of all workflows.
    async fn earliest_fire_at(&self) -> Result<Option<i64>>;
    /// Claims a run atomically, in one transaction: with `advance`, the workflow's `next_fire_at`
    /// must still be `advance.fire_at` (else `AlreadyClaimed`, nothing written) and is set to
    /// `advance.next_fire_at`; then, if an execution of the workflow is `running`, the execution
    /// is recorded as `skipped` (if `skip_warning` is set) and the answer is `Overlapped`;
    /// otherwise it is recorded as `running` and the answer is `Started`. A fire time already
    /// recorded for the workflow (`UNIQUE(workflow_id, fire_at)`) is `AlreadyClaimed` too.
    async fn claim_run(&self, claim: &RunClaim) -> Result<ClaimOutcome>;
    /// Claims several runs in one transaction: the outcome of each, in order, is what
    /// [`Store::claim_run`] would have answered for it called after the ones before it (a claim
    /// found already made writes nothing and does not undo the others). On an error nothing of
    /// the batch is kept. The scheduler claims every workflow due at one tick this way.
    async fn claim_runs(&self, claims: &[RunClaim]) -> Result<Vec<ClaimOutcome>>;

    // --- the queue of asynchronous calls ---
    /// Commits `call` (state `Queued`) unless the queue already holds `bound.total` calls not
    /// done, or `bound.per_workflow` of its workflow's: then writes nothing and answers `Full`.
    async fn enqueue_async_call(
        &self,
        call: &AsyncCallRecord,
        bound: QueueBound,
    ) -> Result<Enqueued>;
    /// The ids of the workflows that have calls to claim at `now` (queued, or claimed with a
    /// lease that ended).
    async fn workflows_with_async_calls(&self, now: i64) -> Result<Vec<String>>;
    /// Claims up to `limit` of `workflow_id`'s claimable calls, oldest first, for this store's
    /// node ([`Store::node_id`]) until `lease_until`; a call another node is claiming at that
    /// moment is left to it. A dead node's claims go back to the queue when it is reaped
    /// ([`Store::reap_expired_nodes`]).
    async fn claim_async_calls(
        &self,
        workflow_id: &str,
        limit: u32,
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<AsyncCallRecord>>;
    /// Records what a claimed call answered; its request is dropped.
    async fn finish_async_call(
        &self,
        id: &str,
        response: &StoredResponse,
        finished_at: i64,
    ) -> Result<()>;
    /// Puts a claimed call back in the queue (its node could not run it).
    async fn release_async_call(&self, id: &str) -> Result<()>;
    /// Puts a claimed call back in the queue as its `next` attempt, not claimed before
    /// `next.not_before` (its workflow retries the status its attempt ended in).
    async fn retry_async_call(&self, id: &str, next: &NextAttempt) -> Result<()>;
    async fn async_call_by_token(&self, token: &str) -> Result<Option<AsyncCallRecord>>;
    /// Calls not done yet, of one workflow or of all.
    async fn async_queue_depth(&self, workflow_id: Option<&str>) -> Result<u64>;

    // --- nodes: leases, dead nodes, concurrency slots ---
    /// The node this store writes for: a new id each time a store is opened (each flowd process
    /// is a node). The executions it writes are that node's: when the node dies, its `running`
    /// ones become `interrupted`.
    fn node_id(&self) -> &str;
    /// Whether several nodes can use this store's database at once (PostgreSQL). A store that is
    /// not shared (SQLite: one process per file) is the only node there is, so what lives in one
    /// process's memory (the `max_concurrency` gates, the settings kept ahead of the store) is the
    /// whole truth. On a shared one, settings are read at each run's start and changes to them
    /// merged key by key in the store, and cached records follow [`Store::changes`].
    fn is_shared(&self) -> bool;
    /// Records this store's node (`node.id` must be [`Store::node_id`], else `Conflict`), or
    /// renews its record. On a store that is not shared, every other node is dead from then on
    /// (its lease ends): the next [`Store::reap_expired_nodes`] reaps it.
    async fn register_node(&self, node: &NodeRecord) -> Result<()>;
    /// Moves this store's node's lease expiry to `lease_expires_at`; `false` when the node is not
    /// registered (any more: it was found dead and reaped, so what it held was released).
    async fn renew_node_lease(&self, lease_expires_at: i64) -> Result<bool>;
    /// Reaps every node whose lease expired before `now`, each in one transaction with exactly
    /// one caller doing it whoever else tries at once: its `running` executions become
    /// `interrupted` (finished at `now`, the duration from their start to `now`), its
    /// concurrency slots are freed, the asynchronous calls it claimed are queued again and its
    /// record deleted. Executions left `running` and calls left claimed by no registered node
    /// are released too (`node_id: None`). Answers what was reaped.
    async fn reap_expired_nodes(&self, now: i64) -> Result<Vec<ReapedNode>>;
    /// The registered nodes, by id.
    async fn nodes(&self) -> Result<Vec<NodeRecord>>;
    /// Takes one of the `limit` concurrency slots of the workflow for `holder` (an execution id),
    /// held under this store's node's lease: `false` when all of them are taken. `NotFound` when
    /// the workflow or this store's node is not registered (any more).
    async fn acquire_slot(
        &self,
        workflow_id: &str,
        limit: u32,
        holder: &str,
        now: i64,
    ) -> Result<bool>;
    /// Frees the slot of the workflow that `holder` took (nothing when it holds none).
    async fn release_slot(&self, workflow_id: &str, holder: &str) -> Result<()>;

    // --- changes other nodes make ---
    /// The changes to workflows committed from now on, by any node this one included, each
    /// published in the transaction that made it. A store that is not shared publishes nothing
    /// (the feed ends at once): its one node knows what it changed.
    fn changes(&self) -> ChangeFeed {
        ChangeFeed::none()
    }

    // --- audit log ---
    /// Appends an entry in a transaction of its own (changes record theirs with the change).
    async fn append_audit(&self, entry: &AuditEntry) -> Result<()>;
    /// Entries matching `query`, newest first.
    async fn audit_entries(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>>;
    /// Deletes the entries older than `before` (epoch ms), answering how many: the retention.
    async fn delete_audit_before(&self, before: i64) -> Result<u64>;

    // --- idempotency keys of hook calls ---
    /// Claims `claim.key` for `claim.execution_id`, in one statement: when nobody holds it, or
    /// its holder expired (`expires_at` at or before `claimed_at`), or its holder has no
    /// response and was claimed before `stale_before`, the key becomes the claim's (`Claimed`);
    /// otherwise its holder is answered (`Held`). `NotFound` when the workflow does not exist.
    async fn claim_idempotency_key(
        &self,
        claim: &crate::IdempotencyClaim,
    ) -> Result<crate::IdempotencyClaimOutcome>;
    /// The key as stored, expired or not.
    async fn idempotency_key(
        &self,
        workflow_id: &str,
        key: &str,
    ) -> Result<Option<crate::IdempotencyRecord>>;
    /// Gives a key back when the execution that claimed it ran nothing worth repeating (it was
    /// refused, or its record could not be committed): deletes it if `execution_id` still holds
    /// it without a response. Answers whether it did.
    async fn release_idempotency_key(
        &self,
        workflow_id: &str,
        key: &str,
        execution_id: &str,
    ) -> Result<bool>;
    /// Deletes the keys expired at `now` (`expires_at <= now`), answering how many.
    async fn delete_expired_idempotency_keys(&self, now: i64) -> Result<u64>;
    // --- retention ---
    /// Every workflow of the store (all teams) with its own retention, if it has one.
    async fn workflow_retentions(&self) -> Result<Vec<WorkflowRetention>>;
    /// Deletes at most `limit` of the workflow's executions that fall out of `cut` (started
    /// before `cut.started_before`, or older than its `cut.keep_newest` newest, newest by id),
    /// oldest first, never a `running` one, in one short transaction; answers how many it
    /// deleted (fewer than `limit`: nothing more to delete for now).
    async fn prune_executions(
        &self,
        workflow_id: &str,
        cut: &flowd_core::retention::RetentionCut,
        limit: u32,
    ) -> Result<u64>;

    // --- failure alerts ---
    /// Decides, atomically across every node of the store, whether an alert of `workflow_id` at
    /// `now` is sent: yes when none was sent in the `min_interval_ms` before `now` (the count of
    /// those suppressed since the last one sent is answered and reset), else it is counted as
    /// suppressed. `NotFound` when the workflow does not exist.
    async fn claim_alert(
        &self,
        workflow_id: &str,
        now: i64,
        min_interval_ms: i64,
    ) -> Result<crate::AlertClaim>;
    /// Records a delivery of an alert after an attempt: a delivery recorded again under its id
    /// is updated (its latest attempt). `NotFound` when the workflow does not exist.
    async fn record_alert_delivery(&self, delivery: &crate::AlertDelivery) -> Result<()>;
    /// The workflow's most recent deliveries, newest first, at most `limit` (capped at 1000).
    async fn list_alert_deliveries(
        &self,
        workflow_id: &str,
        limit: u32,
    ) -> Result<Vec<crate::AlertDelivery>>;
}
