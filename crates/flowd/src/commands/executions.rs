//! `flowd logs NAME [--follow]` and `flowd execution ID`.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Result;
use clap::Args;
use comfy_table::Cell;
use serde_json::Value;

use super::format::{print_execution, text};
use crate::api::{self, Api, ApiError};
use crate::{ui, Global};

const STATUSES: [&str; 7] = [
    "running",
    "success",
    "error",
    "timeout",
    "killed",
    "skipped",
    "interrupted",
];

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// The workflow's name.
    pub name: String,
    /// Keep watching: print new executions as they happen (Ctrl-C stops).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only executions with this status.
    #[arg(long, value_parser = STATUSES)]
    pub status: Option<String>,
    /// How many of the latest executions to show.
    #[arg(long, short = 'n', default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub limit: u32,
    /// Print JSON: an array (newest first), or one object per line with --follow.
    #[arg(long)]
    pub json: bool,
    /// With --follow: seconds between two looks at the server.
    #[arg(long, default_value_t = 1.0, value_name = "SECONDS", hide = true)]
    pub interval: f64,
}

#[derive(Args, Debug)]
pub struct ExecutionArgs {
    /// The execution's id (from `flowd logs`, `flowd invoke` or the X-Execution-Id header).
    pub id: String,
    /// Print the execution record as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn logs(global: &Global, args: LogsArgs) -> Result<()> {
    let api = Api::new(global)?;
    let workflow = api.workflow(&args.name).await?;
    let path = executions_path(&api::id(&workflow)?, args.status.as_deref(), args.limit);
    if !args.follow {
        let answer = api.get(&path).await?;
        let executions = answer["executions"].as_array().cloned().unwrap_or_default();
        if args.json {
            ui::print_json(&Value::Array(executions));
            return Ok(());
        }
        if executions.is_empty() {
            println!("No executions of {} yet.", args.name);
            return Ok(());
        }
        let mut table = ui::table(&COLUMNS.map(|(name, _)| name));
        for execution in executions.iter().rev() {
            table.add_row(
                row(execution)
                    .into_iter()
                    .enumerate()
                    .map(|(i, text)| {
                        if i == STATUS_COLUMN {
                            ui::status_cell(&text)
                        } else {
                            Cell::new(text)
                        }
                    })
                    .collect::<Vec<_>>(),
            );
        }
        ui::print_table(&table);
        return Ok(());
    }
    follow(&api, &args, &workflow).await
}

/// Column names and widths of the streamed listing.
const COLUMNS: [(&str, usize); 8] = [
    ("execution", 36),
    ("started", 19),
    ("trigger", 7),
    ("status", 11),
    ("duration", 9),
    ("http", 4),
    ("v", 3),
    ("note", 0),
];
const STATUS_COLUMN: usize = 3;

fn row(execution: &Value) -> Vec<String> {
    vec![
        text(&execution["id"]),
        ui::time(execution["started_at"].as_str().unwrap_or("")),
        text(&execution["trigger"]),
        text(&execution["status"]),
        execution["duration_ms"]
            .as_u64()
            .map(ui::duration_ms)
            .unwrap_or_else(|| "-".into()),
        text(&execution["response_status"]),
        text(&execution["version"]),
        note(execution),
    ]
}

/// The error, or else the first warning, in a few words.
fn note(execution: &Value) -> String {
    let error = &execution["error"];
    if error.is_object() {
        let kind = error["type"].as_str().unwrap_or("error");
        let message = error["message"].as_str().unwrap_or("");
        return ui::truncate(&format!("{kind}: {message}"), 70);
    }
    match execution["warnings"].as_array().and_then(|w| w.first()) {
        Some(warning) => ui::truncate(&text(warning), 70),
        None => String::new(),
    }
}

fn stream_line(cells: &[String], color: bool) -> String {
    let mut line = String::new();
    for (i, ((_, width), cell)) in COLUMNS.iter().zip(cells).enumerate() {
        let padded = format!("{cell:<width$}");
        if i == STATUS_COLUMN && color {
            line.push_str(&padded.replace(cell.as_str(), &ui::status(cell)));
        } else {
            line.push_str(&padded);
        }
        line.push_str("  ");
    }
    line.trim_end().to_string()
}

fn executions_path(id: &str, status: Option<&str>, limit: u32) -> String {
    let mut path = format!("/workflows/{id}/executions?limit={limit}");
    if let Some(status) = status {
        path.push_str(&format!("&status={status}"));
    }
    path
}

async fn follow(api: &Api, args: &LogsArgs, workflow: &Value) -> Result<()> {
    let id = api::id(workflow)?;
    // Look at more than is shown, so that a burst between two looks is not missed.
    let path = executions_path(&id, args.status.as_deref(), 100.max(args.limit));
    let interval = Duration::from_secs_f64(args.interval.clamp(0.1, 60.0));
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut first = true;
    let mut lost_contact = false;
    let color = ui::color_stdout();
    if !args.json {
        let header: Vec<String> = COLUMNS.iter().map(|(n, _)| n.to_uppercase()).collect();
        println!("{}", stream_line(&header, false));
    }
    let watch = async {
        loop {
            match api.get(&path).await {
                Ok(answer) => {
                    if lost_contact {
                        ui::warn("in contact with the server again");
                        lost_contact = false;
                    }
                    let executions = answer["executions"].as_array().cloned().unwrap_or_default();
                    let mut now_seen = HashMap::new();
                    // Oldest first; the first look shows only the latest `--limit`.
                    let skip = if first {
                        executions.len().saturating_sub(args.limit as usize)
                    } else {
                        0
                    };
                    for (i, execution) in executions.iter().rev().enumerate() {
                        let id = text(&execution["id"]);
                        let status = text(&execution["status"]);
                        let changed = seen.get(&id) != Some(&status);
                        now_seen.insert(id, status);
                        // Shown when new or changed, and on the first look only the latest --limit.
                        let shown = changed && (!first || i >= skip);
                        if shown {
                            if args.json {
                                println!("{}", serde_json::to_string(execution)?);
                            } else {
                                println!("{}", stream_line(&row(execution), color));
                            }
                        }
                    }
                    seen = now_seen;
                    first = false;
                }
                Err(error) => {
                    if error
                        .downcast_ref::<ApiError>()
                        .is_some_and(|e| e.status == 404 || e.status == 401)
                    {
                        return Err(error);
                    }
                    if !lost_contact {
                        ui::warn(&format!("{error:#}; still trying (Ctrl-C stops)"));
                        lost_contact = true;
                    }
                }
            }
            tokio::time::sleep(interval).await;
        }
    };
    // Ctrl-C stops cleanly, whether it comes during a look at the server or between two.
    tokio::select! {
        result = watch => result,
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

pub async fn execution(global: &Global, args: ExecutionArgs) -> Result<()> {
    let api = Api::new(global)?;
    let record = api
        .get(&format!("/executions/{}", api::segment(&args.id)))
        .await?;
    if args.json {
        ui::print_json(&record);
        return Ok(());
    }
    let name = match record["workflow_id"].as_str() {
        Some(id) => api
            .get(&format!("/workflows/{}", api::segment(id)))
            .await
            .ok()
            .and_then(|w| w["name"].as_str().map(str::to_string)),
        None => None,
    };
    print_execution(&record, name.as_deref());
    Ok(())
}
