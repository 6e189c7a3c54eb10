//! Parsing what the command line gives: files, JSON arguments, `KEY=VALUE` pairs, secret
//! settings read from `KEY=PATH` files, the mode.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use clap::ValueEnum;
use flowd_core::workflow::Mode;
use serde_json::Value;

use crate::secret_input;

/// Reads a file given on the command line, naming it in the error.
pub fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Parses JSON given on the command line (`what` names the flag in errors).
pub fn parse_json(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|error| anyhow!("{what} is not valid JSON: {error}"))
}

/// A JSON argument given inline or as `@file`.
pub fn json_arg(text: &str, what: &str) -> Result<Value> {
    match text.strip_prefix('@') {
        Some(path) => {
            let content = read_file(Path::new(path))?;
            parse_json(&content, &format!("{what} (file {path})"))
        }
        None => parse_json(text, what),
    }
}

/// A JSON object argument (`--request`, `--settings`).
pub fn json_object_arg(text: &str, what: &str) -> Result<serde_json::Map<String, Value>> {
    match json_arg(text, what)? {
        Value::Object(map) => Ok(map),
        other => Err(anyhow!(
            "{what} must be a JSON object ({{\"key\": value, ...}}), not {}",
            json_kind(&other)
        )),
    }
}

/// A settings file: a JSON object.
pub fn settings_file(path: &Path) -> Result<serde_json::Map<String, Value>> {
    let content = read_file(path)?;
    match parse_json(&content, &format!("the settings file {}", path.display()))? {
        Value::Object(map) => Ok(map),
        other => Err(anyhow!(
            "the settings file {} must hold a JSON object, not {}",
            path.display(),
            json_kind(&other)
        )),
    }
}

/// `KEY=VALUE` pairs (`--secret`), in order.
pub fn key_values(pairs: &[String], flag: &str) -> Result<Vec<(String, String)>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                Ok((key.trim().to_string(), value.to_string()))
            }
            _ => Err(anyhow!("{flag} {pair:?} is not KEY=VALUE")),
        })
        .collect()
}

/// The secret settings of `--secret-file KEY=PATH` pairs: each key with the content of its file.
/// Pairs given to the refused `--secret KEY=VALUE` are an error pointing to `--secret-file`.
pub fn secret_settings(
    from_files: &[String],
    on_command_line: &[String],
) -> Result<Vec<(String, String)>> {
    if !on_command_line.is_empty() {
        return Err(secret_input::refused_on_command_line(
            "--secret KEY=VALUE",
            "--secret-file KEY=PATH (a file holding the value)",
        ));
    }
    from_files
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((key, path)) if !key.trim().is_empty() && !path.is_empty() => Ok((
                key.trim().to_string(),
                secret_input::read_secret_file(Path::new(path))?,
            )),
            _ => Err(anyhow!("--secret-file {pair:?} is not KEY=PATH")),
        })
        .collect()
}

pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A workflow's mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// `def workflow(_request, settings)`: runs when its hook URL is called.
    Catch,
    /// `def workflow(settings)`: runs on a schedule.
    Pull,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Catch => Mode::Catch,
            ModeArg::Pull => Mode::Pull,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        let pairs = key_values(&["TOKEN=a=b".into(), "X=".into()], "--secret").unwrap();
        assert_eq!(
            pairs,
            vec![("TOKEN".into(), "a=b".into()), ("X".into(), "".into())]
        );
        assert!(key_values(&["novalue".into()], "--secret").is_err());
        assert!(key_values(&["=v".into()], "--secret").is_err());
    }

    #[test]
    fn json_objects_only() {
        assert!(json_object_arg("{\"a\": 1}", "--request").is_ok());
        let error = json_object_arg("[1]", "--request").unwrap_err().to_string();
        assert!(error.contains("not an array"), "{error}");
        let error = json_object_arg("{nope", "--request")
            .unwrap_err()
            .to_string();
        assert!(error.contains("--request is not valid JSON"), "{error}");
    }
}
