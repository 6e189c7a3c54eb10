//! Workflows and executions: names, modes, triggers, statuses and limits.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Longest workflow or team name accepted.
pub const MAX_NAME_LEN: usize = 64;

/// A workflow (or team) name: 1–64 characters among `A-Z a-z 0-9 _ . -`, starting with a letter or
/// digit. Names appear in hook URLs, so they are restricted to what needs no escaping.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Name(String);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("invalid name {name:?}: {reason}")]
pub struct InvalidName {
    pub name: String,
    pub reason: &'static str,
}

impl Name {
    pub fn parse(name: &str) -> Result<Name, InvalidName> {
        let fail = |reason| {
            Err(InvalidName {
                name: name.to_string(),
                reason,
            })
        };
        if name.is_empty() {
            return fail("a name cannot be empty");
        }
        if name.chars().count() > MAX_NAME_LEN {
            return fail("a name has at most 64 characters");
        }
        if !name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        {
            return fail("a name starts with a letter or a digit");
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        {
            return fail("a name may only hold letters, digits, '_', '.' and '-'");
        }
        Ok(Name(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} {:?}: expected one of {}",
                        stringify!($name).to_lowercase(),
                        s,
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// How a workflow is triggered: by its hook URL, or on a schedule.
    Mode { Catch => "catch", Pull => "pull" }
);

string_enum!(
    /// How executions of one code version share processes (CONTRACT.md §1).
    Isolation { Fork => "fork", Reuse => "reuse" }
);

string_enum!(
    /// How a hook call is answered: once the workflow has run (`sync`), or at once with `202`
    /// and a status URL, the call queued in the store (`async`).
    ResponseMode { Sync => "sync", Async => "async" }
);

string_enum!(
    /// What started an execution (`alert`: an `on_failure` handler run by a failure alert;
    /// `replay`: a stored request run again).
    Trigger {
        Catch => "catch",
        Pull => "pull",
        Manual => "manual",
        Alert => "alert",
        Replay => "replay",
    }
);

string_enum!(
    /// Where an execution is in its life (CONTRACT.md §5).
    ExecutionStatus {
        Running => "running",
        Success => "success",
        Error => "error",
        Timeout => "timeout",
        Killed => "killed",
        Skipped => "skipped",
        Interrupted => "interrupted",
    }
);

string_enum!(
    /// Where a deployed version is: its environment being built and its module imported in the
    /// sandbox, ready to serve, or refused (the build log says why). The workflow's active version
    /// is one of its `ready` versions.
    VersionState { Building => "building", Ready => "ready", Failed => "failed" }
);

impl Mode {
    /// How many positional parameters the `workflow` function takes in this mode.
    pub fn workflow_arity(self) -> usize {
        match self {
            Mode::Catch => 2,
            Mode::Pull => 1,
        }
    }

    /// The signature users must write, for error messages.
    pub fn workflow_signature(self) -> &'static str {
        match self {
            Mode::Catch => "def workflow(_request, settings)",
            Mode::Pull => "def workflow(settings)",
        }
    }
}

/// Per-workflow limits and their bounds.
pub mod limits {
    pub const DEFAULT_TIMEOUT_S: u32 = 60;
    pub const DEFAULT_MEMORY_MB: u32 = 512;
    pub const MIN_MEMORY_MB: u32 = 32;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_accept_slugs() {
        for ok in ["a", "sync-greenhouse", "Team_1.prod", "9lives"] {
            assert!(Name::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn names_refuse_what_a_url_would_need_to_escape() {
        for bad in ["", "-x", ".hidden", "a b", "a/b", "é", &"x".repeat(65)] {
            assert!(Name::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn enums_round_trip_through_text() {
        for status in ExecutionStatus::ALL {
            assert_eq!(status.as_str().parse::<ExecutionStatus>(), Ok(*status));
        }
        assert!("sometimes".parse::<Mode>().is_err());
    }
}
