//! `flowd versions NAME`: a workflow's versions, how the deploy of each went, and their build
//! logs; and the helpers `deploy` and `show` use to describe a version.

use anyhow::{anyhow, Result};
use clap::Args;
use comfy_table::Cell;
use serde_json::Value;

use super::format::{environment_short, requirements_of, requirements_short, text};
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
