//! `flowd versions NAME`: a workflow's versions, how the deploy of each went, and their build
//! logs; and the helpers `deploy` and `show` use to describe a version.

use anyhow::{anyhow, Result};
use clap::Args;
use comfy_table::Cell;
use flowd_core::requirements::Requirements;
use serde_json::Value;

use super::workflows::text;
use crate::api::{self, Api, ApiError};
use crate::{ui, Global};

pub const EXAMPLES: &str = "\
Examples:
  flowd versions hello                   # every version: state, requirements, environment, error
  flowd versions hello --log 3           # version 3's build log: installer output, traceback
  flowd versions hello --json | jq '.versions[] | {version, state, error}'

A version is `building` until its requirements are installed and its module imported in the
sandbox; then `active` (it serves), or `failed` (the previous version keeps serving), or `ready`
(it built, but a newer version is active).";

#[derive(Args, Debug)]
pub struct VersionsArgs {
    /// The workflow's name.
    pub name: String,
    /// Print this version's full build log (installer output, import traceback) instead.
    #[arg(long, value_name = "N")]
    pub log: Option<u64>,
    /// Print the versions (with --log, that version) as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn versions(global: &Global, args: VersionsArgs) -> Result<()> {
    let api = Api::new(global)?;
    let workflow = api.workflow(&args.name).await?;
    let id = api::id(&workflow)?;
    if let Some(number) = args.log {
        let record = version(&api, &id, &args.name, number).await?;
        if args.json {
            ui::print_json(&record);
        } else {
            print_log(&args.name, &record);
        }
        return Ok(());
    }
    let answer = api.get(&format!("/workflows/{id}/versions")).await?;
    if args.json {
        ui::print_json(&answer);
        return Ok(());
    }
    let versions = answer["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        println!("{} has no version.", args.name);
        return Ok(());
    }
    let mut table = ui::table(&[
        "version",
        "state",
        "requirements",
        "environment",
        "created",
        "error",
    ]);
    for version in &versions {
        table.add_row(vec![
            Cell::new(text(&version["version"])),
            ui::status_cell(version["state"].as_str().unwrap_or("-")),
            Cell::new(requirements_short(&requirements_of(version), 40)),
            Cell::new(environment_short(version)),
            Cell::new(ui::time(version["created_at"].as_str().unwrap_or(""))),
            Cell::new(
                version["error"]
                    .as_str()
                    .map_or_else(|| "-".to_string(), |e| ui::truncate(e, 80)),
            ),
        ]);
    }
    ui::print_table(&table);
    if let Some(failed) = versions.iter().find(|v| v["state"] == "failed") {
        println!(
            "{}",
            ui::dim(&format!(
                "`flowd versions {} --log {}` shows a version's build log.",
                args.name,
                text(&failed["version"])
            ))
        );
    }
    Ok(())
}

/// One version's record (`GET …/versions/{n}`), its absence named.
pub async fn version(api: &Api, id: &str, name: &str, number: u64) -> Result<Value> {
    api.get(&format!("/workflows/{id}/versions/{number}"))
        .await
        .map_err(|error| match error.downcast_ref::<ApiError>() {
            Some(api_error) if api_error.status == 404 => {
                anyhow!("{name} has no version {number} (`flowd versions {name}` lists them)")
            }
            _ => error,
        })
}

fn print_log(name: &str, record: &Value) {
    let number = text(&record["version"]);
    let state = record["state"].as_str().unwrap_or("-");
    let settled = match record["settled_at"].as_str() {
        Some(at) => format!(", settled {}", ui::time(at)),
        None => String::new(),
    };
    println!(
        "{} {}{settled}",
        ui::bold(&format!("Version {number} of {name}:")),
        ui::status(state)
    );
    if let Some(error) = record["error"].as_str() {
        println!("{} {error}", ui::bold("Error:"));
    }
    let requirements = requirements_of(record);
    if !requirements.is_empty() {
        println!(
            "{} {} (environment {})",
            ui::bold("Requirements:"),
            requirements.join(", "),
            environment_short(record)
        );
    }
    let log = record["build_log"].as_str().unwrap_or("");
    if log.trim().is_empty() {
        let why = if state == "building" {
            "(none yet: the version is being built)"
        } else {
            "(empty)"
        };
        println!("{} {}", ui::bold("Build log:"), ui::dim(why));
    } else {
        println!("{}", ui::bold("Build log:"));
        print!("{log}");
        if !log.ends_with('\n') {
            println!();
        }
    }
}

/// A version's requirement lines.
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

/// `1 requirement`, `3 requirements`.
pub fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
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
}
