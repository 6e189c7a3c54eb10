//! `flowd ls`, `show`, `rm`, `pause`, `resume`, `trigger`.

use anyhow::{anyhow, Result};
use clap::Args;
use comfy_table::Cell;
use serde_json::{json, Value};

use super::args::json_object_arg;
use super::format::{
    ensure_success, environment_short, print_execution, requirements_of, requirements_short,
    retention_text, schedule_text, text,
};
use crate::api::{self, Api};
use crate::{ui, Global};

#[derive(Args, Debug)]
pub struct LsArgs {
    /// Print the workflows as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    /// The workflow's name.
    pub name: String,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The workflow's name.
    pub name: String,
    /// Print the code of the active version (or of --version) instead, as it was deployed.
    #[arg(long)]
    pub code: bool,
    /// With --code: this version's code.
    #[arg(long, value_name = "N", requires = "code")]
    pub version: Option<u64>,
    /// Print the workflow and its versions (with their code) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// The workflow's name.
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct TriggerArgs {
    /// The workflow's name.
    pub name: String,
    /// For a catch workflow: the `_request` dict, as JSON or @file [default: {}].
    #[arg(long, value_name = "JSON|@FILE")]
    pub request: Option<String>,
    /// Print the execution record as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn ls(global: &Global, args: LsArgs) -> Result<()> {
    let api = Api::new(global)?;
    let workflows = api.workflows().await?;
    if args.json {
        ui::print_json(&Value::Array(workflows));
        return Ok(());
    }
    if workflows.is_empty() {
        println!("No workflows yet: `flowd deploy FILE.py` deploys one.");
        return Ok(());
    }
    let mut table = ui::table(&["name", "mode", "version", "state", "runs on", "updated"]);
    for workflow in &workflows {
        table.add_row(vec![
            Cell::new(text(&workflow["name"])),
            Cell::new(text(&workflow["mode"])),
            Cell::new(match &workflow["version"] {
                Value::Null => "none".to_string(),
                version => text(version),
            }),
            ui::status_cell(state(workflow)),
            Cell::new(runs_on(workflow)),
            Cell::new(ui::time(workflow["updated_at"].as_str().unwrap_or(""))),
        ]);
    }
    ui::print_table(&table);
    Ok(())
}

fn state(workflow: &Value) -> &'static str {
    if workflow["enabled"] == json!(false) {
        "paused"
    } else {
        "enabled"
    }
}

/// What makes it run: the hook, or the schedule and the next run.
fn runs_on(workflow: &Value) -> String {
    if workflow["hook_url"].is_string() {
        return "hook".into();
    }
    match schedule_text(&workflow["schedule"]) {
        Some(text) => match workflow["next_run_at"].as_str() {
            Some(next) => format!("{text}, next {}", ui::time(next)),
            None => text,
        },
        None => "trigger only".into(),
    }
}

pub async fn show(global: &Global, args: ShowArgs) -> Result<()> {
    let api = Api::new(global)?;
    let workflow = api.workflow(&args.name).await?;
    let id = api::id(&workflow)?;
    let versions = api.get(&format!("/workflows/{id}/versions")).await?;
    let versions = versions["versions"].as_array().cloned().unwrap_or_default();
    if args.code {
        let wanted = match args.version.or_else(|| workflow["version"].as_u64()) {
            Some(wanted) => wanted,
            None => {
                return Err(anyhow!(
                    "{} has no active version: pass --version N (`flowd versions {}` lists them)",
                    args.name,
                    args.name
                ))
            }
        };
        let version = versions
            .iter()
            .find(|v| v["version"].as_u64() == Some(wanted))
            .ok_or_else(|| anyhow!("{} has no version {wanted}", args.name))?;
        print!("{}", version["code"].as_str().unwrap_or(""));
        return Ok(());
    }
    if args.json {
        ui::print_json(&json!({"workflow": workflow, "versions": versions}));
        return Ok(());
    }
    let name = text(&workflow["name"]);
    println!("{}", ui::bold(&name));
    let field = |label: &str, value: String| println!("  {:<15}{value}", format!("{label}:"));
    field("id", text(&workflow["id"]));
    field(
        "mode",
        format!(
            "{} ({})",
            text(&workflow["mode"]),
            text(&workflow["runtime"])
        ),
    );
    field("state", ui::status(state(&workflow)));
    let active = versions.iter().find(|v| v["active"] == json!(true));
    match active {
        Some(version) => {
            field(
                "version",
                format!("{} ({})", text(&version["version"]), ui::status("active")),
            );
            let requirements = requirements_of(version);
            if !requirements.is_empty() {
                field(
                    "requirements",
                    format!(
                        "{} (environment {})",
                        requirements_short(&requirements, 60),
                        environment_short(version)
                    ),
                );
            }
        }
        None => field(
            "version",
            format!("none: {}", no_active_version(&name, &workflow, &versions)),
        ),
    }
    // A newer version that is not serving (yet): say so.
    if let Some(latest) = versions
        .first()
        .filter(|v| active.is_some_and(|a| a["version"].as_u64() < v["version"].as_u64()))
    {
        let number = text(&latest["version"]);
        match latest["state"].as_str() {
            Some("building") => field("latest", format!("version {number} is being built")),
            Some("failed") => field(
                "latest",
                format!(
                    "version {number} {}: {} (`flowd versions {name} --log {number}`)",
                    ui::status("failed"),
                    latest["error"].as_str().unwrap_or("see its build log")
                ),
            ),
            _ => {}
        }
    }
    match workflow["hook_url"].as_str() {
        Some(path) => field("hook URL", api.url(path)),
        None => {
            field(
                "schedule",
                schedule_text(&workflow["schedule"]).unwrap_or_else(|| "none".into()),
            );
            if let Some(next) = workflow["next_run_at"].as_str() {
                field("next run", ui::time(next));
            }
        }
    }
    field(
        "limits",
        format!(
            "{} s, {} MiB{}",
            text(&workflow["timeout_s"]),
            text(&workflow["memory_mb"]),
            match workflow["max_concurrency"].as_u64() {
                Some(max) => format!(", {max} at a time"),
                None => String::new(),
            }
        ),
    );
    field("retention", retention_text(&workflow["retention"]));
    let secrets: Vec<String> = workflow["secrets"]
        .as_array()
        .map(|list| list.iter().map(text).collect())
        .unwrap_or_default();
    if !secrets.is_empty() {
        field("secrets", secrets.join(", "));
    }
    let egress_allow: Vec<String> = workflow["egress_allow"]
        .as_array()
        .map(|list| list.iter().map(text).collect())
        .unwrap_or_default();
    if !egress_allow.is_empty() {
        field("egress allow", egress_allow.join(", "));
    }
    field(
        "created",
        ui::time(workflow["created_at"].as_str().unwrap_or("")),
    );
    field(
        "updated",
        ui::time(workflow["updated_at"].as_str().unwrap_or("")),
    );
    println!();
    let mut table = ui::table(&["version", "state", "deployed", "lines", "requirements"]);
    for version in &versions {
        table.add_row(vec![
            Cell::new(text(&version["version"])),
            ui::status_cell(version["state"].as_str().unwrap_or("-")),
            Cell::new(ui::time(version["created_at"].as_str().unwrap_or(""))),
            Cell::new(version["code"].as_str().map_or(0, |c| c.lines().count())),
            Cell::new(requirements_short(&requirements_of(version), 40)),
        ]);
    }
    ui::print_table(&table);
    Ok(())
}

/// Why a workflow has no active version, from its newest version.
fn no_active_version(name: &str, workflow: &Value, versions: &[Value]) -> String {
    let Some(latest) = versions.first() else {
        return "the workflow has no version".into();
    };
    let number = text(&latest["version"]);
    let consequence = if workflow["hook_url"].is_string() {
        "its hook answers 503 until a deploy succeeds"
    } else {
        "it does not run until a deploy succeeds"
    };
    match latest["state"].as_str() {
        Some("building") => format!("version {number} is being built; {consequence}"),
        _ => format!(
            "version {number} {}: {}; {consequence} (`flowd versions {name} --log {number}`)",
            ui::status("failed"),
            latest["error"].as_str().unwrap_or("see its build log")
        ),
    }
}

pub async fn rm(global: &Global, args: RmArgs) -> Result<()> {
    let api = Api::new(global)?;
    let workflow = api.workflow(&args.name).await?;
    if !args.yes {
        let question = format!(
            "Delete {} with its versions, settings and executions?",
            args.name
        );
        if !ui::confirm(&question)? {
            return Err(anyhow!(
                "{} was not deleted (pass --yes to delete without being asked)",
                args.name
            ));
        }
    }
    api.delete(&format!("/workflows/{}", api::id(&workflow)?))
        .await?;
    println!("Deleted {}.", args.name);
    Ok(())
}

pub async fn set_enabled(global: &Global, args: NameArgs, enabled: bool) -> Result<()> {
    let api = Api::new(global)?;
    let workflow = api.workflow(&args.name).await?;
    api.patch(
        &format!("/workflows/{}", api::id(&workflow)?),
        &json!({"enabled": enabled}),
    )
    .await?;
    if enabled {
        println!("Resumed {}.", args.name);
    } else {
        println!(
            "Paused {}: its hook answers 503 and its schedule is stopped until `flowd resume {}`.",
            args.name, args.name
        );
    }
    Ok(())
}

pub async fn trigger(global: &Global, args: TriggerArgs) -> Result<()> {
    let request = match &args.request {
        Some(text) => Some(json_object_arg(text, "--request")?),
        None => None,
    };
    let api = Api::new(global)?;
    let workflow = api.workflow(&args.name).await?;
    let body = match request {
        Some(request) if workflow["mode"] == json!("pull") => {
            let _ = request;
            return Err(anyhow!(
                "{} is a pull workflow: it takes no --request",
                args.name
            ));
        }
        Some(request) => json!({"request": request}),
        None => json!({}),
    };
    let spinner = ui::spinner(format!("Running {} on the server…", args.name));
    let record = api
        .post(&format!("/workflows/{}/runs", api::id(&workflow)?), &body)
        .await;
    spinner.finish_and_clear();
    let record = record?;
    if args.json {
        ui::print_json(&record);
    } else {
        print_execution(&record, Some(&args.name));
    }
    ensure_success(&record)
}
