//! `flowd replay ID [--version N]` and `flowd replay --workflow NAME --status S [--since T]
//! [--until T] [--limit N]`: run stored requests again.

use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Args;
use serde_json::{json, Value};

use super::format::{ensure_success, print_execution, text};
use crate::api::{self, Api};
use crate::{ui, Global};

pub const EXAMPLES: &str = "Examples:
  flowd replay 0192f4a1-7c3e-7d2a-9b1e-2f6a8c0d4e5f
  flowd replay 0192f4a1-7c3e-7d2a-9b1e-2f6a8c0d4e5f --version 3
  flowd replay --workflow payroll --status failed --since 2026-12-01T00:00:00Z --limit 50";

/// How often a bulk replay's progress is read.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// The execution whose stored request runs again.
    #[arg(required_unless_present = "workflow", conflicts_with = "workflow")]
    pub execution: Option<String>,
    /// Replay this workflow's executions (by name or id) instead of one.
    #[arg(long, value_name = "NAME|ID")]
    pub workflow: Option<String>,
    /// With --workflow: only executions with this status (`failed`: error, timeout and killed);
    /// repeatable.
    #[arg(long, requires = "workflow", value_parser = ["failed", "success", "error", "timeout", "killed", "skipped", "interrupted"])]
    pub status: Vec<String>,
    /// With --workflow: only executions started at or after this RFC 3339 time.
    #[arg(long, requires = "workflow", value_name = "TIME")]
    pub since: Option<String>,
    /// With --workflow: only executions started before this RFC 3339 time.
    #[arg(long, requires = "workflow", value_name = "TIME")]
    pub until: Option<String>,
    /// With --workflow: at most this many, oldest first [server default: 100].
    #[arg(long, requires = "workflow", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: Option<u32>,
    /// Run this version instead of the active one.
    #[arg(long, value_name = "N")]
    pub version: Option<u32>,
    /// Print the new execution (or the bulk replay's progress) as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn replay(global: &Global, args: ReplayArgs) -> Result<()> {
    let api = Api::new(global)?;
    match (&args.execution, &args.workflow) {
        (Some(execution), _) => replay_one(&api, execution, &args).await,
        (None, Some(workflow)) => replay_many(&api, workflow, &args).await,
        (None, None) => Err(anyhow!("name an execution, or a workflow with --workflow")),
    }
}

async fn replay_one(api: &Api, execution: &str, args: &ReplayArgs) -> Result<()> {
    let body = match args.version {
        Some(version) => json!({"version": version}),
        None => json!({}),
    };
    let spinner = ui::spinner(format!("Replaying {execution} on the server…"));
    let record = api
        .post(
            &format!("/executions/{}/replay", api::segment(execution)),
            &body,
        )
        .await;
    spinner.finish_and_clear();
    let record = record?;
    if args.json {
        ui::print_json(&record);
    } else {
        print_execution(&record, None);
        println!("  replay of {execution}");
    }
    ensure_success(&record)
}

async fn replay_many(api: &Api, workflow: &str, args: &ReplayArgs) -> Result<()> {
    let id = match api.find_workflow(workflow).await? {
        Some(found) => api::id(&found)?,
        None => api::segment(workflow),
    };
    let mut statuses: Vec<&str> = Vec::new();
    for status in &args.status {
        match status.as_str() {
            "failed" => statuses.extend(["error", "timeout", "killed"]),
            other => statuses.push(other),
        }
    }
    let mut body = json!({"status": statuses});
    for (field, value) in [("since", &args.since), ("until", &args.until)] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    if let Some(limit) = args.limit {
        body["limit"] = json!(limit);
    }
    if let Some(version) = args.version {
        body["version"] = json!(version);
    }
    let job = api.post(&format!("/workflows/{id}/replay"), &body).await?;
    let path = format!("/replays/{}", api::id(&job)?);
    let spinner = ui::spinner(format!(
        "Replaying {} executions of {workflow}…",
        text(&job["matched"])
    ));
    let job = loop {
        let job = api.get(&path).await?;
        if job["state"] == json!("finished") {
            break job;
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    };
    spinner.finish_and_clear();
    if args.json {
        ui::print_json(&job);
    } else {
        print_job(&job);
    }
    let failed = job["failed"].as_array().map_or(0, Vec::len);
    if failed > 0 {
        return Err(anyhow!("{failed} executions could not be replayed"));
    }
    Ok(())
}

fn print_job(job: &Value) {
    println!(
        "{}",
        ui::bold(&format!(
            "Replayed {} of {} executions",
            text(&job["replayed"]),
            text(&job["matched"])
        ))
    );
    for id in job["executions"].as_array().into_iter().flatten() {
        println!("  {}", text(id));
    }
    for failure in job["failed"].as_array().into_iter().flatten() {
        println!(
            "  {} not replayed: {}",
            text(&failure["execution_id"]),
            text(&failure["error"])
        );
    }
}
