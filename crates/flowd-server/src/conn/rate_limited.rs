//! At most one log line per period for a condition that may repeat thousands of times a second.

use std::time::Duration;

use tokio::time::Instant;

pub struct RateLimited {
    every: Duration,
    last: Option<Instant>,
}

impl RateLimited {
    pub fn new(every: Duration) -> RateLimited {
        RateLimited { every, last: None }
    }

    /// Whether to log now: the first time, and then once per period.
    pub fn allow(&mut self) -> bool {
        let now = Instant::now();
        if self.last.is_some_and(|last| now < last + self.every) {
            return false;
        }
        self.last = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn first_occurrence_is_logged_and_repeats_within_the_period_are_not() {
        let mut limited = RateLimited::new(Duration::from_secs(10));
        assert!(limited.allow());
        assert!(!limited.allow());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(limited.allow());
    }
}
