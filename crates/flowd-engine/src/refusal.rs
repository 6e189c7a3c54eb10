//! Why a call is not acknowledged: its execution was not run, or ran but could not be saved. The
//! engine records the refusal (when it can) and hands it to its caller, which tells the client
//! when to come back (the server: `503` with `Retry-After`).

use std::time::Duration;

/// How long a refused client is told to wait before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A call not acknowledged: refused before running, or run but not saved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The workflow is paused (hook calls only: a paused pull workflow does not fire).
    #[error("the workflow is paused")]
    Paused,
    /// The slots and the queue in front of them were full.
    #[error("{0}")]
    Saturated(Saturation),
    /// The workflow's first version is being built, or failed to deploy; says which.
    #[error("{0}")]
    NoActiveVersion(String),
    /// The execution ran, but the store could not commit its record and settings change: nothing
    /// of it counts (the settings are as they were), and the same call may succeed later. Says
    /// why.
    #[error("the execution ran but could not be saved, so it did not count: {0}")]
    NotSaved(String),
    /// The workflow's settings could not be read from the store to start the run (a store other
    /// nodes share, where each run reads them at its start). Says why.
    #[error("the workflow's settings could not be read: {0}")]
    SettingsUnreadable(String),
}

/// Whose slots were full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Saturation {
    /// The workflow's `max_concurrency`.
    #[error("the workflow's max_concurrency slots and queue were full")]
    Workflow,
    /// The server's `max_concurrent_executions`.
    #[error("the server's execution slots and queue were full")]
    Server,
}

impl Refusal {
    /// The stable code clients match on.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Paused => "workflow_paused",
            Refusal::Saturated(_) => "saturated",
            Refusal::NoActiveVersion(_) => "no_active_version",
            Refusal::NotSaved(_) => "store_unavailable",
            Refusal::SettingsUnreadable(_) => "store_unavailable",
        }
    }

    /// The word a hook's answer gives as its `status` (`success`, `error`… for executions that
    /// ran).
    pub fn status_word(&self) -> &'static str {
        match self {
            Refusal::Paused => "paused",
            Refusal::Saturated(_) => "saturated",
            Refusal::NoActiveVersion(_) => "unavailable",
            Refusal::NotSaved(_) => "not_saved",
            Refusal::SettingsUnreadable(_) => "unavailable",
        }
    }

    /// When the client may try again.
    pub fn retry_after(&self) -> Duration {
        RETRY_AFTER
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_has_its_code_status_word_and_message() {
        let cases = [
            (
                Refusal::Paused,
                "workflow_paused",
                "paused",
                "the workflow is paused",
            ),
            (
                Refusal::Saturated(Saturation::Workflow),
                "saturated",
                "saturated",
                "the workflow's max_concurrency slots and queue were full",
            ),
            (
                Refusal::NoActiveVersion("its first version is being built".into()),
                "no_active_version",
                "unavailable",
                "its first version is being built",
            ),
            (
                Refusal::NotSaved("database or disk is full".into()),
                "store_unavailable",
                "not_saved",
                "the execution ran but could not be saved, so it did not count: \
                 database or disk is full",
            ),
            (
                Refusal::SettingsUnreadable("pool timed out".into()),
                "store_unavailable",
                "unavailable",
                "the workflow's settings could not be read: pool timed out",
            ),
        ];
        for (refusal, code, word, message) in cases {
            assert_eq!(refusal.code(), code);
            assert_eq!(refusal.status_word(), word);
            assert_eq!(refusal.to_string(), message);
        }
    }
}
