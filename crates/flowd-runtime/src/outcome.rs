//! How an execution ended, as the runtime reports it: the [`Outcome`], the [`ErrorInfo`] of a
//! failure, and the [`Execution`] record with the captured output.

use std::time::Duration;

use flowd_core::PyValue;

use crate::protocol::{MessageExt, ProtocolError};
use crate::SettingsError;

/// An exception or a failure, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorInfo {
    /// The exception's type (`KeyError`, `requests.exceptions.HTTPError`) or flowd's reason.
    pub kind: String,
    pub message: String,
    pub traceback: Option<String>,
}

impl ErrorInfo {
    pub fn new(kind: &str, message: String) -> ErrorInfo {
        ErrorInfo {
            kind: kind.to_string(),
            message,
            traceback: None,
        }
    }

    /// The error the runner described in a message (`type`, `message`, `traceback`).
    pub(crate) fn from_message(value: Option<&PyValue>) -> ErrorInfo {
        let Some(value) = value else {
            return ErrorInfo::new("UnknownError", "no error details".into());
        };
        ErrorInfo {
            kind: value
                .str_field("type")
                .unwrap_or("UnknownError")
                .to_string(),
            message: value.str_field("message").unwrap_or("").to_string(),
            traceback: value.str_field("traceback").map(str::to_string),
        }
    }
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `workflow()` returned.
    Returned {
        /// The return value, reduced by the runner (see `flowd_core::response::map_return`).
        value: PyValue,
        /// Set when the runner could not pass the return value on (too large, unreadable).
        warning: Option<String>,
        /// The settings after the run as a JSON object, or why they cannot be persisted.
        settings: Result<String, SettingsError>,
    },
    /// `workflow()` raised.
    Raised(ErrorInfo),
    /// The module's top level failed: the code cannot run at all.
    InitFailed(ErrorInfo),
    /// The time limit was reached; the execution was killed.
    Timeout,
    /// Killed for memory or another limit, or it died (signal, `os._exit`).
    Killed(ErrorInfo),
    /// flowd could not run it (the runtime is unavailable).
    Failed(ErrorInfo),
}

impl Outcome {
    /// Its name in the log: `returned`, `raised`, `init_failed`, `timeout`, `killed`, `failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Returned { .. } => "returned",
            Outcome::Raised(_) => "raised",
            Outcome::InitFailed(_) => "init_failed",
            Outcome::Timeout => "timeout",
            Outcome::Killed(_) => "killed",
            Outcome::Failed(_) => "failed",
        }
    }

    /// How the runner said an execution ended, from its result frame.
    pub(crate) fn from_result(result: &PyValue) -> Outcome {
        match result.str_field("outcome") {
            Some("ok") => Outcome::Returned {
                value: result.field("ret").cloned().unwrap_or(PyValue::None),
                warning: result.str_field("ret_warning").map(str::to_string),
                settings: match (
                    result.str_field("settings"),
                    result.str_field("settings_error"),
                ) {
                    (_, Some(error)) => Err(SettingsError::NotJson(error.to_string())),
                    (Some(json), None) => Ok(json.to_string()),
                    (None, None) => Err(SettingsError::Missing),
                },
            },
            Some("error") => Outcome::Raised(ErrorInfo::from_message(result.field("error"))),
            Some("killed") => Outcome::Killed(ErrorInfo::from_message(result.field("error"))),
            _ => Outcome::Killed(ErrorInfo::new(
                "ProtocolError",
                "the execution process sent an invalid result".into(),
            )),
        }
    }

    /// How an execution ended whose result could not be read: too large, or not a result at
    /// all. `None` when the process ended before answering (its socket closed or failed): the
    /// caller knows best what ended it.
    pub(crate) fn from_unreadable_result(error: ProtocolError) -> Option<Outcome> {
        match error {
            ProtocolError::TooLarge { size, limit } => Some(Outcome::Killed(ErrorInfo::new(
                "ResultTooLarge",
                format!("the execution's result ({size} bytes) is over the {limit}-byte limit"),
            ))),
            ProtocolError::Closed | ProtocolError::Io(_) => None,
            error => Some(Outcome::Killed(ErrorInfo::new(
                "ProtocolError",
                format!("the execution process sent an invalid result: {error}"),
            ))),
        }
    }
}

/// The record of one execution, as the runtime saw it.
#[derive(Debug, Clone)]
pub struct Execution {
    pub outcome: Outcome,
    /// Captured stdout and stderr, capped.
    pub logs: Vec<u8>,
    pub logs_truncated: bool,
    pub duration: Duration,
}
