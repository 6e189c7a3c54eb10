//! PostgreSQL's batched commit of the executions' writes: callers queue their writes; one task
//! takes everything queued (up to [`MAX_BATCH`] requests) and applies it in one statement, one
//! round trip and one transaction, while the next batch gathers behind it. If a batch fails,
//! each of its requests is committed alone, in order, so that only the bad one fails. One task
//! commits one batch at a time, so the order of commits is the order of calls.
//!
//! Unlike SQLite's group commit there is no inline path: a commit waits for the server's answer
//! anyway, and a hand-off between tasks costs little next to that round trip.

use std::sync::Mutex;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::writes::{apply_all, apply_each};
use crate::metrics;
use crate::{CommitCompleter, CommitTicket, Result, StoreError, StoreWrite};

/// Most write requests committed in one statement.
const MAX_BATCH: usize = 256;

struct Request {
    writes: Vec<StoreWrite>,
    /// `None`: nobody waits (a failure is logged).
    done: Option<CommitCompleter>,
}

/// The queue and its task, shared by the clones of a store. Dropping it lets the task commit
/// what is queued and end.
pub(super) struct BatchCommit {
    /// `None` once stopped.
    queue: Mutex<Option<mpsc::UnboundedSender<Request>>>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl BatchCommit {
    /// Starts the task on the current tokio runtime.
    pub(super) fn start(pool: PgPool) -> BatchCommit {
        let (queue, requests) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(pool, requests));
        BatchCommit {
            queue: Mutex::new(Some(queue)),
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// Queues `writes` behind everything queued before; the ticket resolves with their commit.
    pub(super) fn submit(&self, writes: Vec<StoreWrite>) -> CommitTicket {
        let (done, ticket) = CommitTicket::pending();
        self.queue(Request {
            writes,
            done: Some(done),
        });
        ticket
    }

    /// Queues `writes` like [`BatchCommit::submit`], with nobody waiting for them.
    pub(super) fn enqueue(&self, writes: Vec<StoreWrite>) {
        self.queue(Request { writes, done: None });
    }

    fn queue(&self, request: Request) {
        let queue = self
            .queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let refused = match queue.as_ref() {
            Some(queue) => queue.send(request).err().map(|refused| refused.0),
            None => Some(request),
        };
        if let Some(request) = refused {
            answer(request, Err(StoreError::Stopped));
        }
    }

    /// Commits what is queued and ends the task; later writes fail with `Stopped`.
    pub(super) async fn stop(&self) {
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}

fn answer(request: Request, result: Result<()>) {
    match request.done {
        Some(done) => done.complete(result),
        None => {
            if let Err(error) = result {
                tracing::error!(%error, "a store write was lost");
            }
        }
    }
}

/// The task: a batch at a time, until every sender is gone and the queue is empty.
async fn run(pool: PgPool, mut requests: mpsc::UnboundedReceiver<Request>) {
    let mut kept = None;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while requests.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let batch = std::mem::take(&mut batch);
        let started = Instant::now();
        let result = commit_batch(&pool, &mut kept, &batch).await;
        if result.is_ok() {
            metrics::committed("postgres", batch.len(), started.elapsed());
        }
        settle_batch(&pool, batch, result).await;
    }
}

/// Applies every write of `batch` in one statement. The connection is kept between batches
/// (taking one from the pool and giving it back costs a round trip of its own) and given back
/// when a batch fails, in case it is the cause.
async fn commit_batch(
    pool: &PgPool,
    kept: &mut Option<PoolConnection<Postgres>>,
    batch: &[Request],
) -> Result<()> {
    let mut conn = match kept.take() {
        Some(conn) => conn,
        None => pool.acquire().await?,
    };
    let writes: Vec<&StoreWrite> = batch
        .iter()
        .flat_map(|request| request.writes.iter())
        .collect();
    apply_all(&mut conn, &writes).await?;
    *kept = Some(conn);
    Ok(())
}

/// Answers a batch that `result` says was committed, or commits its requests one by one.
async fn settle_batch(pool: &PgPool, batch: Vec<Request>, result: Result<()>) {
    match result {
        Ok(()) => {
            for request in batch {
                answer(request, Ok(()));
            }
        }
        Err(error) => {
            // One request may have spoiled the batch: each alone, so that only it fails (and
            // with an error naming its write).
            tracing::debug!(%error, requests = batch.len(), "batch commit failed, committing one by one");
            for request in batch {
                let result = commit_alone(pool, &request.writes).await;
                if let (Err(error), Some(_)) = (&result, &request.done) {
                    tracing::error!(%error, "a store write failed");
                }
                answer(request, result);
            }
        }
    }
}

/// One request's writes in a transaction of their own.
async fn commit_alone(pool: &PgPool, writes: &[StoreWrite]) -> Result<()> {
    let mut tx = pool.begin().await?;
    apply_each(&mut tx, writes).await?;
    tx.commit().await?;
    Ok(())
}
