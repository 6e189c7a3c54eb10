//! Back-pressure: executions run in parallel up to a limit; beyond it a short, bounded queue
//! waits for a bounded time; beyond that the caller is told to come back (`503`), so that the
//! server never grows without bound nor hangs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A limit on concurrent work with a bounded waiting line in front of it.
pub struct Gate {
    slots: Arc<Semaphore>,
    capacity: usize,
    waiting: AtomicUsize,
    queue_depth: usize,
    queue_timeout: Duration,
}

impl Gate {
    pub fn new(capacity: usize, queue_depth: usize, queue_timeout: Duration) -> Gate {
        let capacity = capacity.max(1);
        Gate {
            slots: Arc::new(Semaphore::new(capacity)),
            capacity,
            waiting: AtomicUsize::new(0),
            queue_depth,
            queue_timeout,
        }
    }

    /// A slot, now or after a bounded wait; `None` when the line is full or the wait too long.
    pub async fn enter(&self) -> Option<OwnedSemaphorePermit> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(permit);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue_depth {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let acquired =
            tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(permit)) => Some(permit),
            _ => None,
        }
    }

    /// How many slots are taken now.
    pub fn in_use(&self) -> usize {
        self.capacity - self.slots.available_permits()
    }
}
