//! Formatting what the server answers for people: scalars, counts, schedules, requirement sets
//! and environments, executions, and the error lines of refused code.

use std::path::Path;

use anyhow::{anyhow, Result};
use flowd_core::requirements::Requirements;
use serde_json::Value;

use crate::ui;

/// A JSON scalar as plain text (`-` for null).
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `1 requirement`, `3 requirements`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `every 5m`, `cron 0 8 * * 1-5 (Europe/Paris)`.
pub fn schedule_text(schedule: &Value) -> Option<String> {
    if let Some(every) = schedule["every"].as_str() {
        return Some(format!("every {every}"));
    }
    let cron = schedule["cron"].as_str()?;
    Some(match schedule["timezone"].as_str() {
        Some(zone) => format!("cron {cron} ({zone})"),
        None => format!("cron {cron} (UTC)"),
    })
}

/// A version's requirement lines.
/// A workflow's `retention` for people: its own limits, or the server's.
pub fn retention_text(retention: &Value) -> String {
    let days = retention["days"]
        .as_u64()
        .map(|days| format!("{days} days"))
        .unwrap_or_else(|| "the server's days".into());
    let max = retention["max_executions"]
        .as_u64()
        .map(|max| format!("at most {max} executions"))
        .unwrap_or_else(|| "the server's count".into());
    if retention.is_null() {
        "the server's".into()
    } else {
        format!("{days}, {max}")
    }
}

pub fn requirements_of(version: &Value) -> Vec<String> {
    version["requirements"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .filter_map(|l| l.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// What identifies a requirement set whatever its order and spelling (the server's digest), or
/// the lines themselves if they do not parse.
pub fn requirements_key(lines: &[String]) -> String {
    match Requirements::parse_lines(lines) {
        Ok(requirements) => requirements.digest().to_string(),
        Err(_) => lines.join("\n"),
    }
}

/// `-`, `requests>=2, pyyaml`, or `pandas==2.2.0 +3 more` within about `max` characters.
pub fn requirements_short(lines: &[String], max: usize) -> String {
    if lines.is_empty() {
        return "-".into();
    }
    let mut shown: Vec<&str> = Vec::new();
    let mut width = 0;
    for line in lines {
        let more = if shown.is_empty() { 0 } else { 2 } + line.chars().count();
        if width + more > max {
            break;
        }
        width += more;
        shown.push(line);
    }
    match (shown.len(), lines.len()) {
        (0, n) => format!("{n} packages"),
        (s, n) if s == n => shown.join(", "),
        (s, n) => format!("{} +{} more", shown.join(", "), n - s),
    }
}

/// The version's environment (`python3.11-c98fb68f5145`, cut at 32 characters); `base` for a
/// version without requirements; `-` when none was built.
pub fn environment_short(version: &Value) -> String {
    match version["environment"].as_str() {
        Some(id) if id.chars().count() > 32 => ui::truncate(id, 32),
        Some(id) => id.to_string(),
        None if requirements_of(version).is_empty() && version["state"] != "failed" => {
            "base".into()
        }
        None => "-".into(),
    }
}

/// One execution in full, for people.
pub fn print_execution(record: &Value, workflow_name: Option<&str>) {
    let id = text(&record["id"]);
    let of = match workflow_name {
        Some(name) => format!(" of {name}, version {}", text(&record["version"])),
        None => format!(", version {}", text(&record["version"])),
    };
    println!("{}{}", ui::bold(&format!("Execution {id}")), of);
    let field = |label: &str, value: String| println!("  {:<11}{value}", format!("{label}:"));
    field("status", ui::status(&text(&record["status"])));
    field("trigger", text(&record["trigger"]));
    field(
        "started",
        ui::time(record["started_at"].as_str().unwrap_or("")),
    );
    if let Some(ms) = record["duration_ms"].as_u64() {
        field("duration", ui::duration_ms(ms));
    }
    if let Some(status) = record["response_status"].as_u64() {
        field("response", status.to_string());
    }
    field("settings", settings_changed(record));
    if let Some(warnings) = record["warnings"].as_array().filter(|w| !w.is_empty()) {
        println!("{}", ui::bold("Warnings:"));
        for warning in warnings {
            println!("  - {}", text(warning));
        }
    }
    let error = &record["error"];
    if error.is_object() {
        println!(
            "{} {}: {}",
            ui::bold("Error:"),
            error["type"].as_str().unwrap_or("error"),
            error["message"].as_str().unwrap_or("")
        );
        if let Some(traceback) = error["traceback"].as_str() {
            for line in traceback.trim_end().lines() {
                println!("  {line}");
            }
        }
    }
    if let Some(logs) = record["logs"].as_str() {
        if logs.is_empty() {
            println!("{} {}", ui::bold("Output:"), ui::dim("(none)"));
        } else {
            println!("{}", ui::bold("Output:"));
            for line in logs.trim_end_matches('\n').lines() {
                println!("  {line}");
            }
        }
    }
    if record["logs_truncated"] == Value::Bool(true) {
        println!(
            "  {}",
            ui::dim("(output truncated: the server's output cap was reached)")
        );
    }
}

/// `added a, b; changed c; removed d`, `unchanged`, or why nothing was saved.
fn settings_changed(record: &Value) -> String {
    let change = &record["settings_changed"];
    if !change.is_object() {
        return match record["status"].as_str() {
            Some("running") => "-".into(),
            Some("success") => "unchanged".into(),
            _ => "not saved (the execution did not succeed)".into(),
        };
    }
    let part = |key: &str| -> Option<String> {
        let keys: Vec<String> = change[key].as_array()?.iter().map(text).collect();
        (!keys.is_empty()).then(|| format!("{key} {}", keys.join(", ")))
    };
    let parts: Vec<String> = ["added", "changed", "removed"]
        .iter()
        .filter_map(|key| part(key))
        .collect();
    if parts.is_empty() {
        "unchanged".into()
    } else {
        parts.join("; ")
    }
}

/// An error line unless the execution succeeded.
pub fn ensure_success(record: &Value) -> Result<()> {
    let status = record["status"].as_str().unwrap_or("unknown");
    if status == "success" {
        return Ok(());
    }
    let id = text(&record["id"]);
    let error = &record["error"];
    let reason = if error.is_object() {
        format!(
            ": {}: {}",
            error["type"].as_str().unwrap_or("error"),
            ui::truncate(error["message"].as_str().unwrap_or(""), 200)
        )
    } else {
        match record["warnings"].as_array().and_then(|w| w.first()) {
            Some(warning) => format!(": {}", text(warning)),
            None => String::new(),
        }
    };
    Err(anyhow!("execution {id} ended with status {status}{reason}"))
}

/// The `FILE:LINE:COL: message` line for code the server or the runtime refused.
pub fn code_error(file: &Path, line: u64, column: u64, message: &str) -> anyhow::Error {
    anyhow!("{}:{line}:{column}: {message}", file.display())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn requirements_are_short() {
        let lines = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(requirements_short(&[], 40), "-");
        assert_eq!(
            requirements_short(&lines(&["requests>=2", "pyyaml"]), 40),
            "requests>=2, pyyaml"
        );
        assert_eq!(
            requirements_short(&lines(&["pandas==2.2.0", "numpy", "scipy", "requests"]), 24),
            "pandas==2.2.0, numpy +2 more"
        );
        assert_eq!(
            requirements_short(&lines(&["a-very-long-package-name==1.0", "b"]), 10),
            "2 packages"
        );
    }

    #[test]
    fn requirement_sets_compare_by_content() {
        let a = vec!["Requests >= 2".to_string(), "pyyaml".to_string()];
        let b = vec!["PyYAML".to_string(), "requests>=2".to_string()];
        assert_eq!(requirements_key(&a), requirements_key(&b));
        assert_ne!(requirements_key(&a), requirements_key(&[]));
    }

    #[test]
    fn environments_are_short() {
        let built = json!({"environment": "python3.11-c98fb68f5145", "requirements": ["x"]});
        assert_eq!(environment_short(&built), "python3.11-c98fb68f5145");
        assert_eq!(
            environment_short(&json!({"requirements": [], "state": "active"})),
            "base"
        );
        assert_eq!(
            environment_short(&json!({"requirements": ["x"], "state": "failed"})),
            "-"
        );
    }

    #[test]
    fn settings_changes_read_well() {
        let record = json!({"status": "success", "settings_changed": {"added": ["a", "b"], "changed": [], "removed": ["c"]}});
        assert_eq!(settings_changed(&record), "added a, b; removed c");
        let record = json!({"status": "error", "settings_changed": null});
        assert_eq!(
            settings_changed(&record),
            "not saved (the execution did not succeed)"
        );
    }

    #[test]
    fn failures_are_one_line() {
        let record = json!({"id": "x", "status": "error", "error": {"type": "KeyError", "message": "'a'\nmore"}});
        assert_eq!(
            ensure_success(&record).unwrap_err().to_string(),
            "execution x ended with status error: KeyError: 'a'…"
        );
        assert!(ensure_success(&json!({"status": "success"})).is_ok());
    }
}
