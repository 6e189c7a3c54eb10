//! `executor::conclude`, the contract applied to what the runtime reports: one row per case, with
//! the status, the reply, the warnings and error recorded, and the settings change persisted.

use std::time::Duration;

use flowd_core::settings::{Settings, SettingsChange};
use flowd_core::workflow::{ExecutionStatus, Mode};
use flowd_core::PyValue;
use flowd_engine::executor::{conclude, Context};
use flowd_runtime::{ErrorInfo, Execution, Outcome, SettingsError};
use serde_json::{json, Value};

const EXECUTION_ID: &str = "0190-test-execution";
const TIMEOUT_S: u32 = 30;
const SECRET: &str = "s3cr3t-value";

/// The settings every row's execution started from; `token` is a secret key.
fn snapshot() -> Settings {
    settings(json!({"kept": 1, "token": SECRET}))
}

fn settings(value: Value) -> Settings {
    match value {
        Value::Object(map) => map,
        other => panic!("settings are an object, not {other}"),
    }
}

/// What the runner reports for a `workflow()` that returned `value` and left its settings as
/// `after` (a JSON text, or why it cannot be persisted).
fn returned(value: PyValue, after: Result<&str, &str>) -> Outcome {
    Outcome::Returned {
        value,
        warning: None,
        settings: after
            .map(str::to_string)
            .map_err(|why| SettingsError::NotJson(why.to_string())),
    }
}

/// The settings text of an execution that changed nothing.
const UNCHANGED: &str = r#"{"kept": 1, "token": "s3cr3t-value"}"#;

fn dict(items: &[(&str, PyValue)]) -> PyValue {
    PyValue::Dict(
        items
            .iter()
            .map(|(key, value)| (PyValue::Str((*key).into()), value.clone()))
            .collect(),
    )
}

fn text(value: &str) -> PyValue {
    PyValue::Str(value.into())
}

fn error(kind: &str, message: &str) -> ErrorInfo {
    ErrorInfo {
        kind: kind.into(),
        message: message.into(),
        traceback: Some(format!("Traceback: {message}")),
    }
}

/// The JSON reply flowd writes itself, for an execution that ended as `status`.
fn flowd_body(status: &str, error: Option<&str>) -> Value {
    let mut body = json!({"status": status, "execution_id": EXECUTION_ID});
    if let Some(error) = error {
        body["error"] = json!(error);
    }
    body
}

enum Body {
    /// A reply flowd writes (`Content-Type: application/json`).
    Flowd(Value),
    /// The body a workflow returned, as it gave it.
    Custom(&'static str),
}

struct Row {
    case: &'static str,
    mode: Mode,
    outcome: Outcome,
    status: ExecutionStatus,
    reply_status: u16,
    body: Body,
    /// A text the one warning contains; none expected when `None`.
    warning: Option<&'static str>,
    /// The recorded error's type and a text its message contains.
    error: Option<(&'static str, &'static str)>,
    /// The settings change to persist, as JSON.
    persist: Option<Value>,
}

fn rows() -> Vec<Row> {
    use ExecutionStatus::*;
    use Mode::*;
    let success = || Body::Flowd(flowd_body("success", None));
    vec![
        Row {
            case: "catch returning None gets the default reply",
            mode: Catch,
            outcome: returned(PyValue::None, Ok(UNCHANGED)),
            status: Success,
            reply_status: 200,
            body: success(),
            warning: None,
            error: None,
            persist: None,
        },
        Row {
            case: "catch returning a response dict gets that response",
            mode: Catch,
            outcome: returned(
                dict(&[
                    ("status_code", PyValue::Int(201)),
                    ("body", text("made")),
                    ("headers", dict(&[("X-Made", text("yes"))])),
                ]),
                Ok(UNCHANGED),
            ),
            status: Success,
            reply_status: 201,
            body: Body::Custom("made"),
            warning: None,
            error: None,
            persist: None,
        },
        Row {
            case: "catch returning a value that is not a dict gets the default reply and a warning",
            mode: Catch,
            outcome: returned(PyValue::Int(5), Ok(UNCHANGED)),
            status: Success,
            reply_status: 200,
            body: success(),
            warning: Some("not a dict"),
            error: None,
            persist: None,
        },
        Row {
            case: "catch returning a dict without status_code gets the default reply and a warning",
            mode: Catch,
            outcome: returned(dict(&[("body", text("x"))]), Ok(UNCHANGED)),
            status: Success,
            reply_status: 200,
            body: success(),
            warning: Some("status_code"),
            error: None,
            persist: None,
        },
        Row {
            case:
                "catch returning a status_code outside 200-599 gets the default reply and a warning",
            mode: Catch,
            outcome: returned(
                dict(&[("status_code", PyValue::Int(700)), ("body", text("x"))]),
                Ok(UNCHANGED),
            ),
            status: Success,
            reply_status: 200,
            body: success(),
            warning: Some("outside 200-599"),
            error: None,
            persist: None,
        },
        Row {
            case: "a return value the runner could not pass on is a warning, not a reply",
            mode: Catch,
            outcome: Outcome::Returned {
                value: PyValue::None,
                warning: Some("the return value is larger than 10 MiB".into()),
                settings: Ok(UNCHANGED.into()),
            },
            status: Success,
            reply_status: 200,
            body: success(),
            warning: Some("larger than 10 MiB"),
            error: None,
            persist: None,
        },
        Row {
            case: "pull ignores its return value",
            mode: Pull,
            outcome: returned(PyValue::Int(5), Ok(UNCHANGED)),
            status: Success,
            reply_status: 200,
            body: success(),
            warning: None,
            error: None,
            persist: None,
        },
        Row {
            case: "added and changed keys are persisted",
            mode: Catch,
            outcome: returned(
                PyValue::None,
                Ok(r#"{"kept": 2, "token": "s3cr3t-value", "new": true}"#),
            ),
            status: Success,
            reply_status: 200,
            body: success(),
            warning: None,
            error: None,
            persist: Some(json!({"added": {"new": true}, "changed": {"kept": 2}, "removed": []})),
        },
        Row {
            case: "a deleted key is persisted as removed",
            mode: Pull,
            outcome: returned(PyValue::None, Ok(r#"{"token": "s3cr3t-value"}"#)),
            status: Success,
            reply_status: 200,
            body: success(),
            warning: None,
            error: None,
            persist: Some(json!({"added": {}, "changed": {}, "removed": ["kept"]})),
        },
        Row {
            case: "settings the runner could not serialize fail the execution and persist nothing",
            mode: Catch,
            outcome: returned(
                PyValue::None,
                Err("settings['when'] is not JSON-serializable"),
            ),
            status: Error,
            reply_status: 200,
            body: success(),
            warning: None,
            error: Some(("InvalidSettings", "nothing of this execution's settings")),
            persist: None,
        },
        Row {
            case: "settings that are no longer a dict fail the execution and persist nothing",
            mode: Pull,
            outcome: returned(PyValue::None, Ok("[1, 2]")),
            status: Error,
            reply_status: 200,
            body: success(),
            warning: None,
            error: Some(("InvalidSettings", "no longer a dict")),
            persist: None,
        },
        Row {
            case: "settings that are not JSON fail the execution and persist nothing",
            mode: Pull,
            outcome: returned(PyValue::None, Ok("{not json")),
            status: Error,
            reply_status: 200,
            body: success(),
            warning: None,
            error: Some(("InvalidSettings", "could not be read back")),
            persist: None,
        },
        Row {
            case: "an exception in workflow() is a 500 naming only its type, its message masked",
            mode: Catch,
            outcome: Outcome::Raised(error("KeyError", "no key s3cr3t-value")),
            status: Error,
            reply_status: 500,
            body: Body::Flowd(flowd_body("error", Some("KeyError"))),
            warning: None,
            error: Some(("KeyError", "no key ****")),
            persist: None,
        },
        Row {
            case: "a module whose top level fails is an error",
            mode: Catch,
            outcome: Outcome::InitFailed(error("ImportError", "no module named nope")),
            status: Error,
            reply_status: 500,
            body: Body::Flowd(flowd_body("error", Some("ImportError"))),
            warning: None,
            error: Some(("ImportError", "no module named nope")),
            persist: None,
        },
        Row {
            case: "a runtime that could not run the execution is an error",
            mode: Pull,
            outcome: Outcome::Failed(error("RuntimeUnavailable", "the runtime is gone")),
            status: Error,
            reply_status: 500,
            body: Body::Flowd(flowd_body("error", Some("RuntimeUnavailable"))),
            warning: None,
            error: Some(("RuntimeUnavailable", "the runtime is gone")),
            persist: None,
        },
        Row {
            case: "a timeout is a 504 naming the time limit",
            mode: Catch,
            outcome: Outcome::Timeout,
            status: Timeout,
            reply_status: 504,
            body: Body::Flowd(flowd_body("timeout", Some("Timeout"))),
            warning: None,
            error: Some(("Timeout", "within its 30 s time limit")),
            persist: None,
        },
        Row {
            case: "a killed execution is a 500 naming why",
            mode: Catch,
            outcome: Outcome::Killed(error("MemoryLimit", "used more than 128 MB")),
            status: Killed,
            reply_status: 500,
            body: Body::Flowd(flowd_body("killed", Some("MemoryLimit"))),
            warning: None,
            error: Some(("MemoryLimit", "more than 128 MB")),
            persist: None,
        },
    ]
}

fn context<'a>(mode: Mode, snapshot: &'a Settings, secrets: &'a [String]) -> Context<'a> {
    Context {
        execution_id: EXECUTION_ID,
        mode,
        timeout_s: TIMEOUT_S,
        snapshot,
        secrets,
    }
}

fn execution(outcome: Outcome, logs: &str, logs_truncated: bool) -> Execution {
    Execution {
        outcome,
        logs: logs.as_bytes().to_vec(),
        logs_truncated,
        duration: Duration::from_millis(5),
    }
}

#[test]
fn conclude_applies_the_contract_to_each_outcome() {
    let snapshot = snapshot();
    let secrets = vec![SECRET.to_string()];
    for row in rows() {
        let case = row.case;
        let concluded = conclude(
            execution(row.outcome, "", false),
            &context(row.mode, &snapshot, &secrets),
        );
        assert_eq!(concluded.status, row.status, "{case}: status");
        assert_eq!(concluded.reply.status, row.reply_status, "{case}: reply");
        let expected_response_status = (row.mode == Mode::Catch).then_some(row.reply_status);
        assert_eq!(
            concluded.response_status, expected_response_status,
            "{case}: the recorded response status"
        );
        match row.body {
            Body::Flowd(expected) => {
                let body: Value = serde_json::from_slice(&concluded.reply.body)
                    .unwrap_or_else(|e| panic!("{case}: flowd's reply is JSON: {e}"));
                assert_eq!(body, expected, "{case}: body");
                assert!(
                    concluded
                        .reply
                        .headers
                        .contains(&("Content-Type".into(), "application/json".into())),
                    "{case}: {:?}",
                    concluded.reply.headers
                );
            }
            Body::Custom(expected) => {
                assert_eq!(concluded.reply.body, expected.as_bytes(), "{case}: body");
            }
        }
        match row.warning {
            Some(expected) => {
                assert_eq!(
                    concluded.warnings.len(),
                    1,
                    "{case}: {:?}",
                    concluded.warnings
                );
                assert!(
                    concluded.warnings[0].contains(expected),
                    "{case}: {:?}",
                    concluded.warnings
                );
            }
            None => assert!(
                concluded.warnings.is_empty(),
                "{case}: {:?}",
                concluded.warnings
            ),
        }
        match (row.error, &concluded.error) {
            (Some((kind, message)), Some(recorded)) => {
                assert_eq!(recorded.kind, kind, "{case}: error type");
                assert!(
                    recorded.message.contains(message),
                    "{case}: {}",
                    recorded.message
                );
                assert!(
                    !recorded.message.contains(SECRET)
                        && !recorded.traceback.as_deref().unwrap_or("").contains(SECRET),
                    "{case}: a secret in the recorded error: {recorded:?}"
                );
            }
            (None, None) => {}
            (expected, recorded) => {
                panic!("{case}: error {recorded:?}, expected {expected:?}")
            }
        }
        let persist = concluded
            .persist
            .as_ref()
            .map(|change| serde_json::to_value(change).expect("a change is JSON"));
        assert_eq!(persist, row.persist, "{case}: settings persisted");
        if concluded.status != ExecutionStatus::Success {
            assert_eq!(
                concluded.settings_changed, None,
                "{case}: a failed execution changes no settings"
            );
        }
    }
}

#[test]
fn an_execution_that_returned_reports_its_settings_change_even_when_empty() {
    let snapshot = snapshot();
    let concluded = conclude(
        execution(returned(PyValue::None, Ok(UNCHANGED)), "", false),
        &context(Mode::Pull, &snapshot, &[]),
    );
    assert_eq!(concluded.settings_changed, Some(SettingsChange::default()));
    assert_eq!(concluded.persist, None, "an empty change is not persisted");
}

#[test]
fn output_is_kept_with_its_secrets_masked_and_its_truncation_noted() {
    let snapshot = snapshot();
    let secrets = vec![SECRET.to_string()];
    for (outcome, truncated) in [
        (returned(PyValue::None, Ok(UNCHANGED)), true),
        (Outcome::Raised(error("ValueError", "bad")), false),
        (Outcome::Timeout, true),
    ] {
        let concluded = conclude(
            execution(outcome, "token is s3cr3t-value\n", truncated),
            &context(Mode::Catch, &snapshot, &secrets),
        );
        assert_eq!(concluded.logs, "token is ****\n");
        assert_eq!(concluded.logs_truncated, truncated);
    }
}
