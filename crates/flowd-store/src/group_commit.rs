//! SQLite's group commit: one thread owns a write connection and commits what executions queue
//! (their records and settings changes), many at a time, one transaction per batch, in the order
//! they were queued.
//!
//! The thread is there for the hot path: queueing is a channel send, the commit is plain SQLite
//! calls on prepared statements (no round trip per statement to an async driver's worker), and
//! the caller is woken once, when its batch is on disk. A dedicated OS thread, not a task: SQLite
//! blocks (page writes, checkpoints) and must not hold up the async runtime's workers.

use std::path::Path;
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

use flowd_core::settings::SettingsChange;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use crate::{ExecutionRecord, Result, StoreError, StoreWrite};

/// Most write requests committed in one transaction.
const MAX_BATCH: usize = 512;

/// Waits for the commit of writes queued with [`Store::submit`](crate::Store::submit).
#[must_use = "a ticket does nothing unless awaited; drop it to not wait"]
pub struct CommitTicket {
    committed: Option<oneshot::Receiver<Result<()>>>,
}

impl CommitTicket {
    /// Resolves once the writes are committed (all of them) or failed (none of them).
    pub async fn wait(self) -> Result<()> {
        match self.committed {
            Some(committed) => committed.await.map_err(|_| StoreError::Stopped)?,
            None => Err(StoreError::Stopped),
        }
    }
}

enum Message {
    Commit {
        writes: Vec<StoreWrite>,
        done: oneshot::Sender<Result<()>>,
    },
    /// Commit what came before, then end the thread.
    Stop(oneshot::Sender<()>),
}

/// The handle to the commit thread, shared by the clones of a store.
pub(crate) struct GroupCommit {
    queue: Mutex<Option<mpsc::Sender<Message>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    /// Opens a write connection to the database at `uri` (an SQLite URI filename) and starts the
    /// thread that commits through it.
    pub(crate) fn start(uri: &str, busy_timeout: Duration) -> Result<GroupCommit> {
        let connection = open(uri, busy_timeout)?;
        let (queue, receiver) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("flowd-commit".into())
            .spawn(move || run(connection, receiver))
            .map_err(|err| StoreError::Database(sqlx::Error::Io(err)))?;
        Ok(GroupCommit {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues `writes`; they commit after everything queued before them.
    pub(crate) fn submit(&self, writes: Vec<StoreWrite>) -> CommitTicket {
        let (done, committed) = oneshot::channel();
        let queued = lock(&self.queue)
            .as_ref()
            .is_some_and(|queue| queue.send(Message::Commit { writes, done }).is_ok());
        CommitTicket {
            committed: queued.then_some(committed),
        }
    }

    /// Commits what is queued and ends the thread; later submissions fail with `Stopped`.
    pub(crate) async fn stop(&self) {
        let Some(queue) = lock(&self.queue).take() else {
            return;
        };
        let (done, stopped) = oneshot::channel();
        if queue.send(Message::Stop(done)).is_ok() {
            let _ = stopped.await;
        }
        let thread = lock(&self.thread).take();
        if let Some(thread) = thread {
            // It has answered the stop: it is returning, and closes its connection.
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open(uri: &str, busy_timeout: Duration) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_URI
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let connection = Connection::open_with_flags(uri, flags)?;
    connection.busy_timeout(busy_timeout)?;
    connection.pragma_update(None, "synchronous", "NORMAL")?;
    connection.pragma_update(None, "foreign_keys", "ON")?;
    Ok(connection)
}

/// The thread: waits for a request, takes what else is queued (up to [`MAX_BATCH`]), commits it
/// as one transaction, answers; until a stop or every handle is gone.
fn run(mut connection: Connection, receiver: mpsc::Receiver<Message>) {
    let mut batch: Vec<(Vec<StoreWrite>, oneshot::Sender<Result<()>>)> = Vec::new();
    while let Ok(first) = receiver.recv() {
        let mut stop = None;
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Commit { writes, done } => batch.push((writes, done)),
                Message::Stop(done) => {
                    stop = Some(done);
                    break;
                }
            }
            if batch.len() < MAX_BATCH {
                next = receiver.try_recv().ok();
            }
        }
        commit_batch(&mut connection, &mut batch);
        if let Some(done) = stop {
            let _ = done.send(());
            return;
        }
    }
}

fn commit_batch(
    connection: &mut Connection,
    batch: &mut Vec<(Vec<StoreWrite>, oneshot::Sender<Result<()>>)>,
) {
    let all = batch.iter().flat_map(|(writes, _)| writes.iter());
    match commit_writes(connection, all) {
        Ok(()) => {
            for (_, done) in batch.drain(..) {
                let _ = done.send(Ok(()));
            }
        }
        Err(error) if batch.len() > 1 => {
            // One request spoiled the batch: commit each alone, so that only it fails.
            tracing::debug!(%error, "batch commit failed, committing one by one");
            for (writes, done) in batch.drain(..) {
                let result = commit_writes(connection, writes.iter());
                if let Err(error) = &result {
                    tracing::error!(%error, "a store write failed");
                }
                let _ = done.send(result);
            }
        }
        Err(error) => {
            tracing::error!(%error, "a store write failed");
            if let Some((_, done)) = batch.pop() {
                let _ = done.send(Err(error));
            }
        }
    }
}

/// Commits `writes` in one transaction, in order; the first failure rolls all of them back.
fn commit_writes<'a>(
    connection: &mut Connection,
    writes: impl Iterator<Item = &'a StoreWrite>,
) -> Result<()> {
    let transaction = connection.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for write in writes {
        match write {
            StoreWrite::PutExecution(execution) => put_execution(&transaction, execution)?,
            StoreWrite::ApplySettingsChange {
                workflow_id,
                change,
            } => apply_settings_change(&transaction, workflow_id, change)?,
        }
    }
    transaction.commit()?;
    Ok(())
}

/// The upsert of an execution record (a `running` row is replaced when the execution ends).
pub(crate) const PUT_EXECUTION: &str =
    "INSERT INTO executions (id, workflow_id, version, \"trigger\", status, started_at, \
         finished_at, duration_ms, response_status, warnings, error, logs, logs_truncated, \
         settings_changed, fire_at) \
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
     ON CONFLICT (id) DO UPDATE SET \
         workflow_id = excluded.workflow_id, \
         version = excluded.version, \
         \"trigger\" = excluded.\"trigger\", \
         status = excluded.status, \
         started_at = excluded.started_at, \
         finished_at = excluded.finished_at, \
         duration_ms = excluded.duration_ms, \
         response_status = excluded.response_status, \
         warnings = excluded.warnings, \
         error = excluded.error, \
         logs = excluded.logs, \
         logs_truncated = excluded.logs_truncated, \
         settings_changed = excluded.settings_changed, \
         fire_at = excluded.fire_at";

fn put_execution(connection: &Connection, execution: &ExecutionRecord) -> Result<()> {
    let columns = crate::sqlite::ExecutionColumns::of(execution)?;
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
        ])
        .map_err(|err| match constraint(&err) {
            Some(Constraint::Unique) => crate::sqlite::fire_time_taken(execution),
            Some(Constraint::ForeignKey) => crate::sqlite::execution_workflow_missing(execution),
            None => err.into(),
        })?;
    Ok(())
}

fn apply_settings_change(
    connection: &Connection,
    workflow_id: &str,
    change: &SettingsChange,
) -> Result<()> {
    // A change that only removes keys would not notice a missing workflow otherwise.
    let exists = connection
        .prepare_cached("SELECT 1 FROM workflows WHERE id = ?")?
        .exists([workflow_id])?;
    if !exists {
        return Err(crate::sqlite::workflow_not_found(workflow_id));
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

enum Constraint {
    Unique,
    ForeignKey,
}

fn constraint(err: &rusqlite::Error) -> Option<Constraint> {
    match err {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == ErrorCode::ConstraintViolation =>
        {
            match failure.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => Some(Constraint::Unique),
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Constraint::ForeignKey),
                _ => None,
            }
        }
        _ => None,
    }
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
