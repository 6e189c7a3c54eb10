//! Group commit: writes from many executions are committed together, one transaction per batch,
//! in the order they were queued.

use std::sync::Arc;

use flowd_store::{Store, StoreWrite};
use tokio::sync::{mpsc, oneshot};

/// Most writes requests committed in one transaction.
const MAX_BATCH: usize = 512;

struct WriteRequest {
    writes: Vec<StoreWrite>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// A handle to the writer task. Cloning is cheap.
#[derive(Clone)]
pub struct Writer {
    queue: mpsc::UnboundedSender<WriteRequest>,
}

impl Writer {
    /// Starts the writer task; it ends when every handle is dropped, after committing what is
    /// queued.
    pub fn start(store: Arc<dyn Store>) -> (Writer, tokio::task::JoinHandle<()>) {
        let (queue, receiver) = mpsc::unbounded_channel();
        let task = tokio::spawn(run(store, receiver));
        (Writer { queue }, task)
    }

    /// Queues writes without waiting for them.
    pub fn enqueue(&self, writes: Vec<StoreWrite>) {
        let _ = self.queue.send(WriteRequest { writes, done: None });
    }

    /// Queues writes now (so that they commit in the order queued) and returns a ticket to wait
    /// for their commit (all or nothing).
    pub fn submit(&self, writes: Vec<StoreWrite>) -> CommitTicket {
        let (done, committed) = oneshot::channel();
        let sent = self.queue.send(WriteRequest {
            writes,
            done: Some(done),
        });
        CommitTicket {
            committed: sent.ok().map(|_| committed),
        }
    }

    /// Queues writes and waits until they are committed.
    pub async fn commit(&self, writes: Vec<StoreWrite>) -> Result<(), String> {
        self.submit(writes).wait().await
    }
}

/// Waits for the commit of writes submitted with [`Writer::submit`].
pub struct CommitTicket {
    committed: Option<oneshot::Receiver<Result<(), String>>>,
}

impl CommitTicket {
    pub async fn wait(self) -> Result<(), String> {
        let stopped = || "the store writer has stopped".to_string();
        match self.committed {
            Some(committed) => committed.await.map_err(|_| stopped())?,
            None => Err(stopped()),
        }
    }
}

async fn run(store: Arc<dyn Store>, mut receiver: mpsc::UnboundedReceiver<WriteRequest>) {
    let mut batch = Vec::new();
    while let Some(first) = receiver.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match receiver.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let writes: Vec<StoreWrite> = batch
            .iter()
            .flat_map(|r| r.writes.iter().cloned())
            .collect();
        match store.commit(&writes).await {
            Ok(()) => {
                for request in batch.drain(..) {
                    if let Some(done) = request.done {
                        let _ = done.send(Ok(()));
                    }
                }
            }
            Err(error) if batch.len() > 1 => {
                // One request spoiled the batch: commit each alone, so only it fails.
                tracing::debug!(%error, "batch commit failed, committing one by one");
                for request in batch.drain(..) {
                    let result = store
                        .commit(&request.writes)
                        .await
                        .map_err(|e| e.to_string());
                    if let Err(error) = &result {
                        tracing::error!(%error, "a store write failed");
                    }
                    if let Some(done) = request.done {
                        let _ = done.send(result);
                    }
                }
            }
            Err(error) => {
                tracing::error!(%error, "a store write failed");
                for request in batch.drain(..) {
                    if let Some(done) = request.done {
                        let _ = done.send(Err(error.to_string()));
                    }
                }
            }
        }
    }
}
