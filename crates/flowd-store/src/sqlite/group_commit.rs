//! SQLite's group commit: the executions' records and settings changes, committed many at a time,
//! one transaction per batch, in the order they were queued, through a write connection of their
//! own.
//!
//! Two ways through it, and the order of commits is the order of calls either way:
//! - **Inline**, when nothing is queued, nothing is being committed and nothing had to be queued
//!   for [`INLINE_AFTER_QUIET`] (calls that do not overlap): the caller runs
//!   the transaction itself, right away — no thread hand-off, which on these machines costs more
//!   than the insert. If another connection holds SQLite's write lock, it does not wait (busy
//!   timeout 0): its writes are queued instead.
//! - **Queued**, otherwise: a thread of its own takes everything queued (up to [`MAX_BATCH`]
//!   requests) and commits it as one transaction; if that fails, each request alone, so that only
//!   the bad one fails. A dedicated OS thread, not a task: SQLite blocks (page writes, lock waits)
//!   and must not hold up the async runtime's workers.
//!
//! The connection never checkpoints as part of a commit (`wal_autocheckpoint` off): after
//! [`CHECKPOINT_EVERY`] requests (when idle; at the latest after four times that), the thread
//! checkpoints the WAL through a second connection — most pages while commits go on, the last few
//! with commits held for a moment, so that the checkpoint completes and the WAL starts over.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use flowd_core::settings::SettingsChange;
use rusqlite::{params, Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use super::audit::INSERT_AUDIT;
use super::columns::{to_json, ExecutionColumns, PUT_EXECUTION, PUT_STORED_REQUEST};
use super::errors::{constraint, from_rusqlite, is_busy, Constraint};
use super::idempotency::COMPLETE_IDEMPOTENCY_KEY;
use crate::commit::{CommitCompleter, CommitTicket};
use crate::error::{Result, StoreError};
use crate::metrics;
use crate::model::{AuditEntry, ExecutionRecord};
use crate::store::StoreWrite;
use crate::{StoredRequest, StoredResponse};

/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 512;
/// This backend in the metrics' `backend` label.
const BACKEND: &str = "sqlite";
/// Writes are committed inline only when none had to be queued for this long: while calls
/// overlap, they go to the thread, whose batches take many in one transaction and do not block
/// the async runtime's workers.
const INLINE_AFTER_QUIET: Duration = Duration::from_millis(2);
/// Commits between two checkpoints of the WAL, when the thread is idle.
const CHECKPOINT_EVERY: u64 = 256;
/// Bytes the WAL file is truncated to when it restarts.
const WAL_SIZE_LIMIT: i64 = 64 << 20;

/// Where writes join the queue.
#[derive(PartialEq)]
enum Place {
    /// Behind everything queued, answered with their outcome.
    Last,
    /// Behind everything queued, outcome only logged.
    LastUnanswered,
    /// Before everything queued: writes that were already due when those were queued.
    First,
}

struct Request {
    writes: Vec<StoreWrite>,
    done: Option<CommitCompleter>,
}

/// Why a transaction of the group commit failed: SQLite's error (kept as it is, to tell a busy
/// database from the rest), or a rule of the store a write broke.
#[derive(Debug)]
enum WriteError {
    Sqlite(rusqlite::Error),
    Refused(StoreError),
}

impl From<rusqlite::Error> for WriteError {
    fn from(error: rusqlite::Error) -> WriteError {
        WriteError::Sqlite(error)
    }
}

impl From<StoreError> for WriteError {
    fn from(error: StoreError) -> WriteError {
        WriteError::Refused(error)
    }
}

impl From<WriteError> for StoreError {
    fn from(error: WriteError) -> StoreError {
        match error {
            WriteError::Sqlite(error) => from_rusqlite(error),
            WriteError::Refused(error) => error,
        }
    }
}

type WriteResult = std::result::Result<(), WriteError>;

/// What the callers and the thread share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when there is something for the thread to do.
    work: Condvar,
    /// Used by whoever set `State::committing`; `None` once the group commit is stopped (the
    /// connection closed then, not when the last handle is dropped: a stopped store leaves no
    /// connection open behind it, so the WAL is gone when `close` returns).
    connection: Mutex<Option<Connection>>,
    /// The node the executions are written for (their `node_id`).
    node_id: Arc<str>,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Request>,
    /// A transaction is going (inline or on the thread).
    committing: bool,
    /// Commit what is queued, answer, and end.
    stop: Option<oneshot::Sender<()>>,
    /// No more writes are taken.
    closed: bool,
    commits_since_checkpoint: u64,
    /// When writes were last queued: under concurrent load, batches beat inline commits.
    last_queued: Option<Instant>,
}

/// The handle to the group commit, shared by the clones of a store. Dropping the last one ends
/// the thread once the queue is committed.
pub(crate) struct GroupCommit {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    /// Opens two connections to the database at `uri` (an SQLite URI filename), one to commit and
    /// one to checkpoint, and starts the thread; executions are written as `node_id`'s.
    pub(crate) fn start(
        uri: &str,
        busy_timeout: Duration,
        node_id: Arc<str>,
    ) -> Result<GroupCommit> {
        let connections = || -> rusqlite::Result<(Connection, Connection)> {
            let connection = open(uri, busy_timeout)?;
            connection.pragma_update(None, "wal_autocheckpoint", 0)?;
            // Once checkpointed and restarted, the WAL file is cut back to this size.
            connection.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
            Ok((connection, open(uri, busy_timeout)?))
        };
        let (connection, checkpointer) = connections().map_err(from_rusqlite)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            connection: Mutex::new(Some(connection)),
            node_id,
        });
        let thread = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("flowd-commit".into())
                .spawn(move || run(&shared, &checkpointer, busy_timeout))
                .map_err(|err| StoreError::Unavailable(Box::new(err)))?
        };
        Ok(GroupCommit {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Commits `writes` after everything queued before them: inline when nothing is queued or
    /// being committed and calls do not overlap, else through the thread.
    pub(crate) fn submit(&self, writes: Vec<StoreWrite>) -> CommitTicket {
        let mut state = lock(&self.shared.state);
        if state.closed {
            return CommitTicket::done(Err(StoreError::Stopped));
        }
        let concurrent = state
            .last_queued
            .is_some_and(|at| at.elapsed() < INLINE_AFTER_QUIET);
        if !state.queue.is_empty() || state.committing || concurrent {
            return self.queue(state, writes, Place::Last);
        }
        state.committing = true;
        drop(state);
        let started = Instant::now();
        let inline = match lock(&self.shared.connection).as_mut() {
            Some(connection) => commit_inline(connection, &self.shared.node_id, &writes),
            None => Some(Err(StoreError::Stopped)),
        };
        if inline.is_some() {
            metrics::committed(BACKEND, 1, started.elapsed());
        }
        let mut state = lock(&self.shared.state);
        state.committing = false;
        match inline {
            Some(result) => {
                state.commits_since_checkpoint += 1;
                let checkpoint_due = state.commits_since_checkpoint >= CHECKPOINT_EVERY;
                if !state.queue.is_empty() || state.stop.is_some() || checkpoint_due {
                    self.shared.work.notify_one();
                }
                CommitTicket::done(result)
            }
            // Another connection is writing: first in line for the thread (whatever was queued
            // meanwhile came after these writes).
            None => self.queue(state, writes, Place::First),
        }
    }

    /// Queues `writes` for the thread without committing them here: for callers that must not
    /// wait on the disk at all.
    pub(crate) fn enqueue(&self, writes: Vec<StoreWrite>) {
        let state = lock(&self.shared.state);
        if state.closed {
            tracing::error!("a store write was dropped: the store is closed");
            return;
        }
        drop(self.queue(state, writes, Place::LastUnanswered));
    }

    fn queue(
        &self,
        mut state: MutexGuard<'_, State>,
        writes: Vec<StoreWrite>,
        place: Place,
    ) -> CommitTicket {
        let (done, committed) = CommitTicket::pending();
        let request = Request {
            writes,
            done: (place != Place::LastUnanswered).then_some(done),
        };
        if place == Place::First {
            state.queue.push_front(request);
        } else {
            state.last_queued = Some(Instant::now());
            state.queue.push_back(request);
        }
        self.shared.work.notify_one();
        committed
    }

    /// Commits what is queued and ends the thread; later writes fail with `Stopped`.
    pub(crate) async fn stop(&self) {
        let (done, stopped) = oneshot::channel();
        {
            let mut state = lock(&self.shared.state);
            if state.closed {
                return;
            }
            state.closed = true;
            state.stop = Some(done);
            self.shared.work.notify_one();
        }
        let _ = stopped.await;
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            // It has answered the stop: it is returning, and closes its connections.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        // Closed now, as the last of the store's connections to the file: SQLite checkpoints the
        // WAL into the database and deletes it.
        drop(lock(&self.shared.connection).take());
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        let mut state = lock(&self.shared.state);
        state.closed = true;
        self.shared.work.notify_one();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open(uri: &str, busy_timeout: Duration) -> rusqlite::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(uri, flags)?;
    connection.busy_timeout(busy_timeout)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(connection)
}

/// The inline attempt: `None` when another connection holds the write lock (nothing written).
fn commit_inline(
    connection: &mut Connection,
    node_id: &str,
    writes: &[StoreWrite],
) -> Option<Result<()>> {
    if connection.busy_timeout(Duration::ZERO).is_err() {
        return None;
    }
    // The thread sets its busy timeout back before each batch: it does wait for locks.
    match commit_writes(connection, node_id, writes.iter()) {
        Err(WriteError::Sqlite(error)) if is_busy(&error) => None,
        result => Some(result.map_err(StoreError::from)),
    }
}

/// What the thread does next.
enum Task {
    Commit(Vec<Request>),
    Checkpoint,
    Exit,
}

/// The thread: commits what is queued, a batch at a time, checkpoints when due, until stopped
/// or abandoned with nothing left to commit.
fn run(shared: &Shared, checkpointer: &Connection, busy_timeout: Duration) {
    let _ending = Ending(shared);
    loop {
        match next_task(shared) {
            Task::Commit(batch) => {
                let writes = batch.len() as u64;
                match lock(&shared.connection).as_mut() {
                    Some(connection) => {
                        let _ = connection.busy_timeout(busy_timeout);
                        commit_batch(connection, &shared.node_id, batch);
                    }
                    None => batch
                        .into_iter()
                        .filter_map(|request| request.done)
                        .for_each(|done| done.complete(Err(StoreError::Stopped))),
                }
                let mut state = lock(&shared.state);
                state.committing = false;
                state.commits_since_checkpoint += writes;
            }
            Task::Checkpoint => checkpoint_fully(shared, checkpointer),
            Task::Exit => return,
        }
    }
}

/// However the thread ends (a panic included), nothing waits for it afterwards: the store is
/// closed and what is still queued is answered `Stopped`.
struct Ending<'a>(&'a Shared);

impl Drop for Ending<'_> {
    fn drop(&mut self) {
        let mut state = lock(&self.0.state);
        state.closed = true;
        state.committing = false;
        for request in state.queue.drain(..) {
            if let Some(done) = request.done {
                done.complete(Err(StoreError::Stopped));
            }
        }
        if let Some(stop) = state.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn next_task(shared: &Shared) -> Task {
    let mut state = lock(&shared.state);
    loop {
        let due = state.commits_since_checkpoint;
        // Due: when idle, or at the latest at four times the interval (under steady load).
        if due >= CHECKPOINT_EVERY && (state.queue.is_empty() || due >= 4 * CHECKPOINT_EVERY) {
            state.commits_since_checkpoint = 0;
            return Task::Checkpoint;
        }
        if !state.committing {
            if !state.queue.is_empty() {
                let take = state.queue.len().min(MAX_BATCH);
                state.committing = true;
                return Task::Commit(state.queue.drain(..take).collect());
            }
            if state.closed {
                if let Some(stop) = state.stop.take() {
                    let _ = stop.send(());
                }
                return Task::Exit;
            }
        }
        state = shared
            .work
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner());
    }
}

/// Checkpoints the WAL completely, so that the next commit starts it over from its beginning
/// (a WAL checkpointed only while commits go on never catches up, and grows without end): the
/// bulk of the pages while commits go on, then the few committed meanwhile with commits held.
fn checkpoint_fully(shared: &Shared, checkpointer: &Connection) {
    checkpoint(checkpointer);
    {
        let mut state = lock(&shared.state);
        while state.committing {
            // An inline commit (they do not signal the thread when they end): a short wait.
            state = shared
                .work
                .wait_timeout(state, Duration::from_millis(1))
                .map(|(state, _)| state)
                .unwrap_or_else(|poisoned| poisoned.into_inner().0);
        }
        state.committing = true;
    }
    checkpoint(checkpointer);
    lock(&shared.state).committing = false;
}

/// Copies the WAL's pages into the database file without blocking writers (`PASSIVE`).
fn checkpoint(connection: &Connection) {
    let result = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    if let Err(error) = result {
        tracing::debug!(%error, "WAL checkpoint failed; the next one will retry");
    }
}

fn commit_batch(connection: &mut Connection, node_id: &str, mut batch: Vec<Request>) {
    let all = batch.iter().flat_map(|request| request.writes.iter());
    let started = Instant::now();
    match commit_writes(connection, node_id, all) {
        Ok(()) => {
            metrics::committed(BACKEND, batch.len(), started.elapsed());
            for request in batch {
                if let Some(done) = request.done {
                    done.complete(Ok(()));
                }
            }
        }
        Err(error) if batch.len() > 1 => {
            // One request spoiled the batch: commit each alone, so that only it fails.
            let error = StoreError::from(error);
            tracing::debug!(%error, "batch commit failed, committing one by one");
            for request in batch {
                let result = commit_writes(connection, node_id, request.writes.iter())
                    .map_err(StoreError::from);
                if let Err(error) = &result {
                    tracing::error!(%error, "a store write failed");
                }
                if let Some(done) = request.done {
                    done.complete(result);
                }
            }
        }
        Err(error) => {
            let error = StoreError::from(error);
            tracing::error!(%error, "a store write failed");
            if let Some(done) = batch.pop().and_then(|request| request.done) {
                done.complete(Err(error));
            }
        }
    }
}

/// Commits `writes` in one transaction, in order; the first failure rolls all of them back.
fn commit_writes<'a>(
    connection: &mut Connection,
    node_id: &str,
    writes: impl Iterator<Item = &'a StoreWrite>,
) -> WriteResult {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for write in writes {
        match write {
            StoreWrite::PutExecution(execution) => put_execution(&transaction, node_id, execution)?,
            StoreWrite::ApplySettingsChange {
                workflow_id,
                change,
            } => apply_settings_change(&transaction, workflow_id, change)?,
            StoreWrite::CompleteIdempotencyKey {
                workflow_id,
                key,
                execution_id,
                response,
            } => complete_idempotency_key(&transaction, workflow_id, key, execution_id, response)?,
            StoreWrite::AppendAudit(entry) => append_audit(&transaction, entry)?,
            StoreWrite::PutStoredRequest(request) => put_stored_request(&transaction, request)?,
        }
    }
    transaction.commit()?;
    Ok(())
}

fn append_audit(connection: &Connection, entry: &AuditEntry) -> WriteResult {
    let mut statement = connection.prepare_cached(INSERT_AUDIT)?;
    statement.execute(params![
        entry.id,
        entry.at,
        entry.actor_id,
        entry.actor_name,
        entry.action.as_str(),
        entry.team_id,
        entry.team_name,
        entry.workflow_id,
        entry.workflow_name,
        entry.summary,
    ])?;
    Ok(())
}

fn put_execution(
    connection: &Connection,
    node_id: &str,
    execution: &ExecutionRecord,
) -> WriteResult {
    let columns = ExecutionColumns::of(execution)?;
    let mut statement = connection.prepare_cached(PUT_EXECUTION)?;
    statement
        .execute(params![
            execution.id,
            execution.workflow_id,
            i64::from(execution.version),
            execution.trigger.as_str(),
            execution.status.as_str(),
            execution.started_at,
            execution.finished_at,
            execution.duration_ms,
            execution.response_status.map(i64::from),
            columns.warnings,
            columns.error,
            execution.logs,
            execution.logs_truncated,
            columns.settings_changed,
            execution.fire_at,
            node_id,
            i64::from(execution.attempt),
            execution.retry_of,
            execution.replay_of,
            execution.request_not_stored,
        ])
        .map_err(|err| match constraint(&err) {
            Some(Constraint::Unique) => WriteError::Refused(StoreError::fire_time_taken(execution)),
            Some(Constraint::ForeignKey) => {
                WriteError::Refused(StoreError::execution_workflow_missing(execution))
            }
            None => WriteError::Sqlite(err),
        })?;
    Ok(())
}

fn put_stored_request(connection: &Connection, request: &StoredRequest) -> WriteResult {
    connection
        .prepare_cached(PUT_STORED_REQUEST)?
        .execute(params![
            request.execution_id,
            request.workflow_id,
            request.stored_at,
            i64::try_from(request.size).unwrap_or(i64::MAX),
            request.payload,
        ])?;
    Ok(())
}

fn apply_settings_change(
    connection: &Connection,
    workflow_id: &str,
    change: &SettingsChange,
) -> WriteResult {
    // A change that only removes keys would not notice a missing workflow otherwise.
    let exists = connection
        .prepare_cached("SELECT 1 FROM workflows WHERE id = ?")?
        .exists([workflow_id])?;
    if !exists {
        return Err(StoreError::workflow_not_found(workflow_id).into());
    }
    let mut upsert = connection.prepare_cached(
        "INSERT INTO workflow_settings (workflow_id, key, value) VALUES (?, ?, ?) \
         ON CONFLICT (workflow_id, key) DO UPDATE SET value = excluded.value",
    )?;
    for (key, value) in change.upserts() {
        upsert.execute(params![workflow_id, key, value.to_string()])?;
    }
    let mut delete = connection
        .prepare_cached("DELETE FROM workflow_settings WHERE workflow_id = ? AND key = ?")?;
    for key in &change.removed {
        delete.execute(params![workflow_id, key])?;
    }
    Ok(())
}

/// Stores the response of the execution holding an idempotency key (nothing if it holds it no
/// longer).
fn complete_idempotency_key(
    connection: &Connection,
    workflow_id: &str,
    key: &str,
    execution_id: &str,
    response: &StoredResponse,
) -> WriteResult {
    let headers = to_json(&response.headers, "the stored response's headers")?;
    connection
        .prepare_cached(COMPLETE_IDEMPOTENCY_KEY)?
        .execute(params![
            i64::from(response.status),
            headers,
            response.body,
            workflow_id,
            key,
            execution_id
        ])?;
    Ok(())
}

/// The SQLite URI of a database file, for [`GroupCommit::start`].
pub(crate) fn file_uri(path: &Path) -> String {
    let mut uri = String::from("file:");
    for byte in path.as_os_str().as_encoded_bytes() {
        match byte {
            b'?' | b'#' | b'%' | 0x80.. => uri.push_str(&format!("%{byte:02X}")),
            _ => uri.push(char::from(*byte)),
        }
    }
    uri
}
