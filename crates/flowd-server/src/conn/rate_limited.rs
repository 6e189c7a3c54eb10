//! At most one log line per period for a condition that may repeat thousands of times a second.

use std::time::Duration;

use std::time::Instant;

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
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> bool {
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

    #[test]
    fn first_occurrence_is_logged_and_repeats_within_the_period_are_not() {
        let mut limited = RateLimited::new(Duration::from_secs(10));
        let start = Instant::now();
        assert!(limited.allow_at(start));
        assert!(!limited.allow_at(start + Duration::from_secs(9)));
        assert!(limited.allow_at(start + Duration::from_secs(10)));
    }
}
