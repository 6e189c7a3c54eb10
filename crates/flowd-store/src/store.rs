//! The [`Store`] trait every backend implements, and the requests it takes and answers.

use async_trait::async_trait;
use flowd_core::settings::{Settings, SettingsChange};

use crate::async_call::{AsyncCallRecord, Enqueued, QueueBound, StoredResponse};
use crate::commit::CommitTicket;
use crate::error::Result;
use crate::model::{
    ApiKeyRecord, ExecutionRecord, TeamRecord, VersionOutcome, VersionRecord, WorkflowRecord,
};

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
    async fn create_team(&self, team: &TeamRecord) -> Result<()>;
    async fn team_by_name(&self, name: &str) -> Result<Option<TeamRecord>>;
    async fn team_by_id(&self, id: &str) -> Result<Option<TeamRecord>>;
    async fn count_teams(&self) -> Result<u64>;
    /// `Conflict` when a key with the same hash exists, `NotFound` when the team does not.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<()>;
    /// The key whose SHA-256 hex digest is `key_hash`.
    async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>>;
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
    ) -> Result<()>;
    async fn workflow_by_id(&self, id: &str) -> Result<Option<WorkflowRecord>>;
    async fn workflow_by_name(&self, team_id: &str, name: &str) -> Result<Option<WorkflowRecord>>;
    /// All workflows of a team, by name.
    async fn list_workflows(&self, team_id: &str) -> Result<Vec<WorkflowRecord>>;
    /// Replaces the workflow row (every column but `id`, `team_id`, `created_at` and the active
    /// `version`, which only [`Store::settle_version`] moves).
    /// `NotFound` if it does not exist, `Conflict` if the new name is taken.
    async fn update_workflow(&self, workflow: &WorkflowRecord) -> Result<()>;
    /// Stores a new version (usually `building`) and sets the workflow's `updated_at`, in one
    /// transaction; the active version stays as it is. `Conflict` if that version number exists,
    /// `NotFound` if the workflow does not.
    async fn add_version(&self, version: &VersionRecord, updated_at: i64) -> Result<()>;
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
    async fn delete_workflow(&self, id: &str) -> Result<bool>;

    // --- settings ---
    /// The workflow's settings (empty for an unknown workflow).
    async fn settings(&self, workflow_id: &str) -> Result<Settings>;
    /// Replaces all settings of the workflow. `NotFound` if it does not exist.
    async fn replace_settings(&self, workflow_id: &str, settings: &Settings) -> Result<()>;

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

    /// Marks every execution still `running` as `interrupted` (finished at `now`, its duration
    /// running from its start to `now`), returning how many: called at start, after a crash or a
    /// hard stop.
    async fn interrupt_running_executions(&self, now: i64) -> Result<u64>;

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
    /// Claims up to `limit` of `workflow_id`'s claimable calls, oldest first, leased until
    /// `lease_until`; a call another node is claiming at that moment is left to it.
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
    /// Puts every claimed call back in the queue: at start, for the calls the previous process
    /// took and did not finish.
    async fn release_claimed_async_calls(&self) -> Result<u64>;
    async fn async_call_by_token(&self, token: &str) -> Result<Option<AsyncCallRecord>>;
    /// Calls not done yet, of one workflow or of all.
    async fn async_queue_depth(&self, workflow_id: Option<&str>) -> Result<u64>;
}
