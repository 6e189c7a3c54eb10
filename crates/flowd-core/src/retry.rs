//! A workflow's `retry` policy: how many attempts an asynchronous or scheduled execution gets,
//! after which statuses, and how long each retry waits (exponential backoff with jitter).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::workflow::ExecutionStatus;

/// The most attempts a policy may allow, the first included.
pub const MAX_ATTEMPTS: u32 = 10;
/// The shortest first backoff, in seconds.
pub const MIN_BACKOFF_S: f64 = 0.1;
/// The longest first backoff, in seconds (a day).
pub const MAX_BACKOFF_S: f64 = 86_400.0;
/// How far the jitter moves a backoff, either way: ±20 %.
const JITTER: f64 = 0.2;
/// The statuses a retry may follow.
pub const RETRYABLE: [ExecutionStatus; 3] = [
    ExecutionStatus::Error,
    ExecutionStatus::Timeout,
    ExecutionStatus::Killed,
];

/// A workflow's `retry` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 retries nothing).
    pub max_attempts: u32,
    /// The wait before the first retry, in seconds; each further retry waits twice as long.
    #[serde(default = "default_backoff_s")]
    pub backoff_s: f64,
    /// The statuses of an attempt that call for the next one.
    #[serde(default = "default_on")]
    pub on: Vec<ExecutionStatus>,
}

fn default_backoff_s() -> f64 {
    1.0
}

fn default_on() -> Vec<ExecutionStatus> {
    RETRYABLE.to_vec()
}

/// Why a workflow's `retry` was refused; each message names the field.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidRetry {
    #[error("retry.max_attempts must be between 1 and {MAX_ATTEMPTS}, not {0}")]
    MaxAttempts(u32),
    #[error(
        "retry.backoff_s must be between {MIN_BACKOFF_S} and {MAX_BACKOFF_S} seconds, not {0}"
    )]
    Backoff(f64),
    #[error("retry.on must name at least one of error, timeout, killed")]
    NoStatus,
    #[error("retry.on: {0} is not retried (only error, timeout and killed are)")]
    NotRetryable(ExecutionStatus),
}

impl RetryPolicy {
    /// Refuses a policy outside the bounds above.
    pub fn check(&self) -> Result<(), InvalidRetry> {
        if !(1..=MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(InvalidRetry::MaxAttempts(self.max_attempts));
        }
        if !(MIN_BACKOFF_S..=MAX_BACKOFF_S).contains(&self.backoff_s) {
            return Err(InvalidRetry::Backoff(self.backoff_s));
        }
        if self.on.is_empty() {
            return Err(InvalidRetry::NoStatus);
        }
        if let Some(status) = self.on.iter().find(|s| !RETRYABLE.contains(s)) {
            return Err(InvalidRetry::NotRetryable(*status));
        }
        Ok(())
    }

    /// How long to wait before the attempt after `attempt` (1-based), when an attempt that ended
    /// `status` calls for another: `None` when it does not (a status not in `on`, or no attempt
    /// left). `jitter` is a number in `[0, 1)`, drawn by the caller: the wait is
    /// `backoff_s * 2^(attempt-1)`, moved by up to ±20 %.
    pub fn next_delay(
        &self,
        attempt: u32,
        status: ExecutionStatus,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts || !self.on.contains(&status) {
            return None;
        }
        let exponent = attempt.saturating_sub(1).min(30) as i32;
        let base = self.backoff_s * 2f64.powi(exponent);
        let factor = 1.0 + JITTER * (2.0 * jitter.clamp(0.0, 1.0) - 1.0);
        Some(Duration::from_secs_f64(base * factor))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32, backoff_s: f64, on: &[ExecutionStatus]) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            backoff_s,
            on: on.to_vec(),
        }
    }

    #[test]
    fn a_policy_left_at_its_defaults_retries_every_retryable_status_after_a_second() {
        let parsed: RetryPolicy = serde_json::from_str(r#"{"max_attempts": 3}"#).unwrap();
        assert_eq!(parsed, policy(3, 1.0, &RETRYABLE));
    }

    #[test]
    fn max_attempts_outside_one_to_ten_is_refused() {
        for attempts in [0, 11] {
            assert_eq!(
                policy(attempts, 1.0, &RETRYABLE).check(),
                Err(InvalidRetry::MaxAttempts(attempts))
            );
        }
        assert_eq!(policy(10, 1.0, &RETRYABLE).check(), Ok(()));
    }

    #[test]
    fn a_backoff_below_a_tenth_of_a_second_is_refused() {
        assert_eq!(
            policy(3, 0.05, &RETRYABLE).check(),
            Err(InvalidRetry::Backoff(0.05))
        );
        assert_eq!(policy(3, 0.1, &RETRYABLE).check(), Ok(()));
    }

    #[test]
    fn an_empty_or_unretryable_on_is_refused() {
        assert_eq!(policy(3, 1.0, &[]).check(), Err(InvalidRetry::NoStatus));
        assert_eq!(
            policy(3, 1.0, &[ExecutionStatus::Success]).check(),
            Err(InvalidRetry::NotRetryable(ExecutionStatus::Success))
        );
    }

    #[test]
    fn each_retry_waits_twice_as_long_as_the_one_before() {
        let retry = policy(5, 0.5, &RETRYABLE);
        let middle = 0.5;
        let waits: Vec<Duration> = (1..=4)
            .filter_map(|attempt| retry.next_delay(attempt, ExecutionStatus::Error, middle))
            .collect();
        assert_eq!(
            waits,
            [0.5, 1.0, 2.0, 4.0].map(Duration::from_secs_f64).to_vec()
        );
    }

    #[test]
    fn the_jitter_moves_a_wait_by_at_most_a_fifth() {
        let retry = policy(3, 10.0, &RETRYABLE);
        let wait = |jitter| retry.next_delay(1, ExecutionStatus::Error, jitter).unwrap();
        assert_eq!(wait(0.0), Duration::from_secs(8));
        assert_eq!(wait(1.0), Duration::from_secs(12));
    }

    #[test]
    fn no_retry_after_the_last_attempt_or_for_a_status_not_in_on() {
        let retry = policy(2, 1.0, &[ExecutionStatus::Timeout]);
        assert!(retry.next_delay(1, ExecutionStatus::Timeout, 0.5).is_some());
        assert_eq!(retry.next_delay(2, ExecutionStatus::Timeout, 0.5), None);
        assert_eq!(retry.next_delay(1, ExecutionStatus::Error, 0.5), None);
        assert_eq!(retry.next_delay(1, ExecutionStatus::Success, 0.5), None);
    }
}
