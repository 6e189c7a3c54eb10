//! Failure alerts: a workflow's (or the server's) `alerts` policy — where to POST, for which
//! execution statuses, how often at most — and the summary an alert carries, with the one-line
//! `text` chat incoming webhooks (Slack, Mattermost, Teams) show as is.

use serde::{Deserialize, Serialize};

use crate::workflow::ExecutionStatus;

/// At most this many characters of an execution's error message go into an alert.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 500;

/// The statuses alerted on when a policy's `on` is left out (and the server's `--alert-on`
/// default).
pub const DEFAULT_ALERT_ON: &[ExecutionStatus] = &[
    ExecutionStatus::Error,
    ExecutionStatus::Timeout,
    ExecutionStatus::Killed,
];

/// Where and when alerts about a workflow's executions are sent, as its `alerts` field holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertPolicy {
    /// The URL the summary is POSTed to (`http` or `https`).
    pub url: String,
    /// The execution statuses that send an alert.
    #[serde(default = "default_on")]
    pub on: Vec<ExecutionStatus>,
    /// At most one alert per this many seconds per workflow (0: every one).
    #[serde(default)]
    pub min_interval_s: u64,
}

fn default_on() -> Vec<ExecutionStatus> {
    DEFAULT_ALERT_ON.to_vec()
}

/// Why an `alerts` policy was refused; the message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAlertPolicy {
    #[error("alerts.url must be an http:// or https:// URL with a host, not {0:?}")]
    Url(String),
    #[error("alerts.on must name at least one execution status")]
    NoStatus,
    #[error("alerts.on: {0:?} is not a status an execution ends in")]
    NotAnEnd(ExecutionStatus),
}

impl AlertPolicy {
    /// Refuses a URL that is not http(s) with a host, and an `on` that is empty or names
    /// `running` (no execution ends in it).
    pub fn check(&self) -> Result<(), InvalidAlertPolicy> {
        check_alert_url(&self.url)?;
        if self.on.is_empty() {
            return Err(InvalidAlertPolicy::NoStatus);
        }
        if let Some(running) = self.on.iter().find(|s| **s == ExecutionStatus::Running) {
            return Err(InvalidAlertPolicy::NotAnEnd(*running));
        }
        Ok(())
    }

    /// Whether an execution ending in `status` sends an alert.
    pub fn alerts_on(&self, status: ExecutionStatus) -> bool {
        self.on.contains(&status)
    }
}

/// Accepts `http://host…` and `https://host…` only.
pub fn check_alert_url(url: &str) -> Result<(), InvalidAlertPolicy> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host_present = rest
        .and_then(|rest| rest.split(['/', '?', '#']).next())
        .map(|authority| authority.rsplit('@').next().unwrap_or_default())
        .is_some_and(|host| !host.is_empty() && !host.starts_with(':'));
    if host_present && !url.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        Err(InvalidAlertPolicy::Url(url.to_string()))
    }
}

/// What an alert says about the execution that caused it. Serialised, it is the JSON body
/// POSTed to the policy's URL (and the `_request` of an `on_failure` handler).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertSummary {
    /// One line for people: workflow, status, error type, link.
    pub text: String,
    pub workflow_id: String,
    pub workflow_name: String,
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub trigger: String,
    pub error_type: Option<String>,
    /// Secret-masked as recorded, cut at [`MAX_ERROR_MESSAGE_CHARS`].
    pub error_message: Option<String>,
    /// RFC 3339, UTC.
    pub started_at: String,
    pub link: String,
    /// Alerts of this workflow not sent since the previous one (its `min_interval_s`).
    pub suppressed: u64,
}

/// The facts of an ended execution an alert is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndedExecution {
    pub workflow_id: String,
    pub workflow_name: String,
    pub execution_id: String,
    pub status: ExecutionStatus,
    pub trigger: String,
    pub error_type: Option<String>,
    pub error_message: Option<String>,
    pub started_at: i64,
}

impl AlertSummary {
    /// The summary of `ended`, linking to it under `public_url` (the server's base URL).
    pub fn of(ended: &EndedExecution, public_url: &str, suppressed: u64) -> AlertSummary {
        let link = execution_link(public_url, &ended.execution_id);
        let mut text = format!(
            "flowd: workflow {} ended {}",
            ended.workflow_name, ended.status
        );
        if let Some(kind) = &ended.error_type {
            text.push_str(&format!(" ({kind})"));
        }
        text.push_str(&format!(" — {link}"));
        if suppressed > 0 {
            text.push_str(&format!(" (+{suppressed} suppressed)"));
        }
        AlertSummary {
            text: one_line(&text),
            workflow_id: ended.workflow_id.clone(),
            workflow_name: ended.workflow_name.clone(),
            execution_id: ended.execution_id.clone(),
            status: ended.status,
            trigger: ended.trigger.clone(),
            error_type: ended.error_type.clone(),
            error_message: ended.error_message.as_deref().map(capped),
            started_at: rfc3339(ended.started_at),
            link,
            suppressed,
        }
    }
}

/// The console's page of an execution.
pub fn execution_link(public_url: &str, execution_id: &str) -> String {
    format!(
        "{}/executions/{execution_id}",
        public_url.trim_end_matches('/')
    )
}

/// An epoch-millisecond time as the API writes times (`2026-11-30T10:00:00.123Z`).
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn capped(message: &str) -> String {
    if message.chars().count() <= MAX_ERROR_MESSAGE_CHARS {
        return message.to_string();
    }
    let mut cut: String = message.chars().take(MAX_ERROR_MESSAGE_CHARS).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(url: &str, on: Vec<ExecutionStatus>) -> AlertPolicy {
        AlertPolicy {
            url: url.into(),
            on,
            min_interval_s: 0,
        }
    }

    fn ended() -> EndedExecution {
        EndedExecution {
            workflow_id: "w1".into(),
            workflow_name: "sync-greenhouse".into(),
            execution_id: "e1".into(),
            status: ExecutionStatus::Error,
            trigger: "catch".into(),
            error_type: Some("KeyError".into()),
            error_message: Some("'id'\nmissing".into()),
            started_at: 1,
        }
    }

    #[test]
    fn policies_with_http_or_https_urls_are_accepted() {
        for url in [
            "http://127.0.0.1:9/x",
            "https://hooks.slack.com/services/T/B/X",
        ] {
            assert_eq!(policy(url, vec![ExecutionStatus::Error]).check(), Ok(()));
        }
    }

    #[test]
    fn urls_of_other_schemes_or_without_a_host_are_refused() {
        for url in [
            "ftp://x/y",
            "file:///etc/passwd",
            "http://",
            "https:///x",
            "x",
            "http://a b",
        ] {
            assert!(
                matches!(
                    policy(url, vec![ExecutionStatus::Error]).check(),
                    Err(InvalidAlertPolicy::Url(_))
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn an_empty_on_is_refused() {
        assert_eq!(
            policy("http://h", vec![]).check(),
            Err(InvalidAlertPolicy::NoStatus)
        );
    }

    #[test]
    fn running_is_not_a_status_to_alert_on() {
        assert!(policy("http://h", vec![ExecutionStatus::Running])
            .check()
            .unwrap_err()
            .to_string()
            .contains("alerts.on"));
    }

    #[test]
    fn on_defaults_to_error_timeout_and_killed() {
        let parsed: AlertPolicy = serde_json::from_str(r#"{"url": "http://h"}"#).unwrap();
        assert_eq!(parsed.on, DEFAULT_ALERT_ON);
        assert_eq!(parsed.min_interval_s, 0);
    }

    #[test]
    fn the_text_names_workflow_status_error_type_and_link_on_one_line() {
        let summary = AlertSummary::of(&ended(), "http://flowd.example:8080/", 0);
        assert_eq!(
            summary.text,
            "flowd: workflow sync-greenhouse ended error (KeyError) — http://flowd.example:8080/executions/e1"
        );
        assert_eq!(summary.link, "http://flowd.example:8080/executions/e1");
        assert_eq!(summary.started_at, "1970-01-01T00:00:00.001Z");
    }

    #[test]
    fn the_text_says_how_many_alerts_were_suppressed() {
        let summary = AlertSummary::of(&ended(), "http://h", 3);
        assert!(
            summary.text.ends_with("(+3 suppressed)"),
            "{}",
            summary.text
        );
        assert_eq!(summary.suppressed, 3);
    }

    #[test]
    fn long_error_messages_are_capped() {
        let mut long = ended();
        long.error_message = Some("x".repeat(MAX_ERROR_MESSAGE_CHARS * 2));
        let summary = AlertSummary::of(&long, "http://h", 0);
        let message = summary.error_message.unwrap();
        assert_eq!(message.chars().count(), MAX_ERROR_MESSAGE_CHARS + 1);
    }
}
