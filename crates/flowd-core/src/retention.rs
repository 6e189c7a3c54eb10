//! How long executions are kept: the server's defaults, a workflow's own `retention`, and the
//! cut they make at a given time.

use serde::{Deserialize, Serialize};

const MS_PER_DAY: i64 = 24 * 60 * 60 * 1000;

/// A workflow's own retention, as sent in its `retention` field: each limit it leaves out is
/// the server's.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    /// Executions older than this many days are deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days: Option<u32>,
    /// Only this many of the newest executions are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_executions: Option<u64>,
}

/// Why a workflow's `retention` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRetention {
    #[error("retention.days must be at least 1 (leave it out for the server's default)")]
    ZeroDays,
    #[error("retention.max_executions must be at least 1 (leave it out for the server's default)")]
    ZeroExecutions,
}

impl Retention {
    /// Refuses limits that would delete every execution.
    pub fn check(&self) -> Result<(), InvalidRetention> {
        if self.days == Some(0) {
            return Err(InvalidRetention::ZeroDays);
        }
        if self.max_executions == Some(0) {
            return Err(InvalidRetention::ZeroExecutions);
        }
        Ok(())
    }
}

/// The server's retention (`--retention-days`, `--retention-per-workflow`); 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionDefaults {
    pub days: u32,
    pub per_workflow: u64,
}

impl Default for RetentionDefaults {
    fn default() -> Self {
        RetentionDefaults {
            days: 30,
            per_workflow: 10_000,
        }
    }
}

/// What falls out of a workflow's retention at one moment: executions started before
/// `started_before`, and those beyond the `keep_newest` newest. `None`: no such limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionCut {
    pub started_before: Option<i64>,
    pub keep_newest: Option<u64>,
}

impl RetentionCut {
    /// The cut at `now` (epoch ms) of a workflow with `own` retention under `defaults`.
    pub fn at(now: i64, own: Option<&Retention>, defaults: RetentionDefaults) -> RetentionCut {
        let days = own.and_then(|own| own.days).unwrap_or(defaults.days);
        let keep = own
            .and_then(|own| own.max_executions)
            .unwrap_or(defaults.per_workflow);
        RetentionCut {
            started_before: (days > 0).then(|| now.saturating_sub(i64::from(days) * MS_PER_DAY)),
            keep_newest: (keep > 0).then_some(keep),
        }
    }

    /// Whether this cut deletes nothing.
    pub fn keeps_everything(&self) -> bool {
        self.started_before.is_none() && self.keep_newest.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 100 * MS_PER_DAY;

    #[test]
    fn a_workflow_without_its_own_retention_gets_the_servers() {
        let cut = RetentionCut::at(NOW, None, RetentionDefaults::default());
        assert_eq!(cut.started_before, Some(70 * MS_PER_DAY));
        assert_eq!(cut.keep_newest, Some(10_000));
    }

    #[test]
    fn a_workflows_own_limits_replace_the_servers_one_by_one() {
        let own = Retention {
            days: Some(7),
            max_executions: None,
        };
        let cut = RetentionCut::at(NOW, Some(&own), RetentionDefaults::default());
        assert_eq!(cut.started_before, Some(93 * MS_PER_DAY));
        assert_eq!(cut.keep_newest, Some(10_000));
    }

    #[test]
    fn zero_server_limits_keep_everything() {
        let defaults = RetentionDefaults {
            days: 0,
            per_workflow: 0,
        };
        assert!(RetentionCut::at(NOW, None, defaults).keeps_everything());
    }

    #[test]
    fn zero_workflow_limits_are_refused() {
        let zero_days = Retention {
            days: Some(0),
            max_executions: None,
        };
        assert_eq!(zero_days.check(), Err(InvalidRetention::ZeroDays));
        let zero_kept = Retention {
            days: None,
            max_executions: Some(0),
        };
        assert_eq!(zero_kept.check(), Err(InvalidRetention::ZeroExecutions));
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<Retention>(r#"{"weeks": 2}"#).is_err());
    }
}
