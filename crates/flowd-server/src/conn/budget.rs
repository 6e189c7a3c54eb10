//! The bound on request body bytes held in memory at once (`--max-inflight-body-mb`): a hook
//! call reserves its body's size before reading it, and gives it back when its execution is over.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Body bytes the server may hold at once, shared by every call.
#[derive(Debug, Clone)]
pub struct BodyBudget {
    /// One permit per KiB, so that any budget fits a semaphore's count.
    kib: Arc<Semaphore>,
    total_kib: usize,
    /// How long a call waits for room before it is refused.
    wait: Duration,
}

/// Room for one body's bytes, given back when dropped.
#[derive(Debug)]
pub struct BodyReservation {
    _permit: OwnedSemaphorePermit,
}

/// The budget had no room within the wait.
#[derive(Debug, thiserror::Error)]
#[error("{requested} bytes of request bodies are already in flight; the server holds at most {total} at once")]
pub struct BudgetExhausted {
    pub requested: usize,
    pub total: usize,
}

impl BodyBudget {
    pub fn new(total_bytes: usize, wait: Duration) -> BodyBudget {
        let total_kib = total_bytes.div_ceil(1024).clamp(1, Semaphore::MAX_PERMITS);
        BodyBudget {
            kib: Arc::new(Semaphore::new(total_kib)),
            total_kib,
            wait,
        }
    }

    /// Reserves `bytes` (at most the whole budget), waiting up to the budget's wait for room.
    pub async fn reserve(&self, bytes: usize) -> Result<BodyReservation, BudgetExhausted> {
        let kib = bytes.div_ceil(1024).min(self.total_kib);
        let exhausted = || BudgetExhausted {
            requested: bytes,
            total: self.total_kib * 1024,
        };
        let kib = u32::try_from(kib).map_err(|_| exhausted())?;
        match tokio::time::timeout(self.wait, self.kib.clone().acquire_many_owned(kib)).await {
            Ok(Ok(permit)) => Ok(BodyReservation { _permit: permit }),
            // The semaphore is never closed; a timeout is the only refusal.
            Ok(Err(_)) | Err(_) => Err(exhausted()),
        }
    }

    /// Bytes reserved right now (rounded up to KiB).
    pub fn in_flight_bytes(&self) -> usize {
        (self.total_kib - self.kib.available_permits()) * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WAIT: Duration = Duration::from_millis(100);

    #[tokio::test]
    async fn reservation_within_the_budget_is_granted_at_once() {
        let budget = BodyBudget::new(10 << 10, WAIT);
        let _held = budget.reserve(4 << 10).await.expect("room");
        assert_eq!(budget.in_flight_bytes(), 4 << 10);
    }

    #[tokio::test]
    async fn reservation_beyond_what_is_left_is_refused_after_the_wait() {
        let budget = BodyBudget::new(10 << 10, WAIT);
        let _held = budget.reserve(8 << 10).await.expect("room");
        let refused = budget.reserve(4 << 10).await.expect_err("no room");
        assert_eq!(refused.total, 10 << 10);
    }

    #[tokio::test]
    async fn reservation_waits_for_room_given_back_within_the_wait() {
        let budget = BodyBudget::new(10 << 10, Duration::from_secs(5));
        let held = budget.reserve(8 << 10).await.expect("room");
        let mut waiting = Box::pin(budget.reserve(4 << 10));
        assert!(futures::poll!(&mut waiting).is_pending(), "no room yet");
        drop(held);
        assert!(waiting.await.is_ok());
    }

    #[tokio::test]
    async fn body_larger_than_the_budget_takes_the_whole_budget() {
        let budget = BodyBudget::new(10 << 10, WAIT);
        let _held = budget.reserve(50 << 10).await.expect("the whole budget");
        assert_eq!(budget.in_flight_bytes(), 10 << 10);
    }
}
