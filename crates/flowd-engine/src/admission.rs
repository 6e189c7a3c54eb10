//! Back-pressure: executions run in parallel up to a limit; beyond it a short, bounded queue
//! waits for a bounded time; beyond that the caller is told to come back (`503`), so that the
//! server never grows without bound nor hangs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

/// A limit on concurrent work with a bounded waiting line in front of it.
pub struct Gate {
    slots: Arc<Semaphore>,
    /// How many slots are taken, watched by [`Gate::until_idle`].
    taken: Arc<watch::Sender<usize>>,
    waiting: AtomicUsize,
    queue_depth: usize,
    queue_timeout: Duration,
}

impl Gate {
    pub fn new(capacity: usize, queue_depth: usize, queue_timeout: Duration) -> Gate {
        Gate {
            slots: Arc::new(Semaphore::new(capacity.max(1))),
            taken: Arc::new(watch::Sender::new(0)),
            waiting: AtomicUsize::new(0),
            queue_depth,
            queue_timeout,
        }
    }

    /// A slot, now or after a bounded wait; `None` when the line is full or the wait too long.
    pub async fn enter(&self) -> Option<Slot> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Some(self.take(permit));
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.queue_depth {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let acquired =
            tokio::time::timeout(self.queue_timeout, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(permit)) => Some(self.take(permit)),
            _ => None,
        }
    }

    fn take(&self, permit: OwnedSemaphorePermit) -> Slot {
        self.taken.send_modify(|taken| *taken += 1);
        Slot {
            permit: Some(permit),
            taken: self.taken.clone(),
        }
    }

    /// How many slots are taken now.
    pub fn in_use(&self) -> usize {
        *self.taken.borrow()
    }

    /// How many calls wait in the line now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Returns once no slot is taken.
    pub async fn until_idle(&self) {
        let mut taken = self.taken.subscribe();
        // The sender lives as long as `self`, so the wait ends only when the count is zero.
        let _ = taken.wait_for(|taken| *taken == 0).await;
    }
}

/// A taken slot of a [`Gate`], given back when dropped.
pub struct Slot {
    /// Always `Some` until dropped: the permit goes back before the count goes down, so a
    /// slot counted as free can be taken.
    permit: Option<OwnedSemaphorePermit>,
    taken: Arc<watch::Sender<usize>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        drop(self.permit.take());
        self.taken.send_modify(|taken| *taken -= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(capacity: usize) -> Gate {
        Gate::new(capacity, 0, Duration::from_secs(1))
    }

    #[tokio::test]
    async fn slots_taken_are_counted_until_dropped() {
        let gate = gate(2);
        let first = gate.enter().await;
        let second = gate.enter().await;
        assert_eq!(gate.in_use(), 2);
        drop(first);
        assert_eq!(gate.in_use(), 1);
        drop(second);
        assert_eq!(gate.in_use(), 0);
    }

    #[tokio::test]
    async fn a_full_gate_without_a_queue_refuses_at_once() {
        let gate = gate(1);
        let _taken = gate.enter().await;
        let refused = gate.enter().await;
        assert!(refused.is_none());
    }

    #[tokio::test]
    async fn until_idle_returns_at_once_when_no_slot_is_taken() {
        let waited = tokio::time::timeout(Duration::from_secs(5), gate(1).until_idle()).await;
        assert!(waited.is_ok(), "until_idle waited on an idle gate");
    }

    #[tokio::test]
    async fn until_idle_waits_for_the_last_slot_to_be_given_back() {
        let gate = Arc::new(gate(2));
        let first = gate.enter().await;
        let second = gate.enter().await;
        let idle = tokio::spawn({
            let gate = gate.clone();
            async move { gate.until_idle().await }
        });
        drop(first);
        tokio::task::yield_now().await;
        assert!(!idle.is_finished(), "idle while a slot is still taken");
        drop(second);
        let waited = tokio::time::timeout(Duration::from_secs(5), idle).await;
        assert!(
            matches!(waited, Ok(Ok(()))),
            "not idle once every slot was given back"
        );
    }
}
