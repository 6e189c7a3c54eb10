//! The engine's side of the group commit: executions queue their records and settings changes
//! with the store ([`Store::submit`]), which commits the writes of many executions together, one
//! transaction per batch, in the order they were queued.

use std::sync::Arc;

use flowd_store::{Store, StoreError, StoreWrite};

/// A handle to queue writes. Cloning is cheap.
#[derive(Clone)]
pub struct Writer {
    store: Arc<dyn Store>,
}

impl Writer {
    pub fn new(store: Arc<dyn Store>) -> Writer {
        Writer { store }
    }

    /// Queues writes without waiting for them, nor for the disk (a failure is logged by the
    /// store).
    pub fn enqueue(&self, writes: Vec<StoreWrite>) {
        self.store.enqueue(writes);
    }

    /// Queues writes now (so that they commit in the order queued) and returns a ticket to wait
    /// for their commit (all or nothing).
    pub fn submit(&self, writes: Vec<StoreWrite>) -> CommitTicket {
        CommitTicket(self.store.submit(writes))
    }

    /// Queues writes and waits until they are committed.
    pub async fn commit(&self, writes: Vec<StoreWrite>) -> Result<(), StoreError> {
        self.submit(writes).wait().await
    }
}

/// Waits for the commit of writes submitted with [`Writer::submit`].
pub struct CommitTicket(flowd_store::CommitTicket);

impl CommitTicket {
    /// Resolves once the writes are committed (all of them) or failed (none of them).
    pub async fn wait(self) -> Result<(), StoreError> {
        self.0.wait().await
    }
}
