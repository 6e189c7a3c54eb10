//! `flowd audit`: the audit log, newest first.

use anyhow::Result;
use clap::Args;
use comfy_table::Cell;
use serde_json::Value;

use super::format::text;
use crate::api::{segment, Api};
use crate::{ui, Global};

pub const EXAMPLES: &str = "Examples:\n  flowd audit\n  flowd audit --workflow payroll-sync --since 2026-12-01T00:00:00Z\n  flowd audit --actor ci-deploy --json";

#[derive(Args, Debug)]
pub struct AuditArgs {
    /// Only this team's entries (admin keys; other keys see their team's only).
    #[arg(long)]
    pub team: Option<String>,
    /// Only entries about this workflow (name or id).
    #[arg(long)]
    pub workflow: Option<String>,
    /// Only entries of this API key (name or id).
    #[arg(long)]
    pub actor: Option<String>,
    /// Only entries at or after this time, RFC 3339.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// At most this many entries.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print the entries as a JSON array.
    #[arg(long)]
    pub json: bool,
}

pub async fn audit(global: &Global, args: AuditArgs) -> Result<()> {
    let api = Api::new(global)?;
    let mut query = vec![format!("limit={}", args.limit)];
    for (name, value) in [
        ("team", &args.team),
        ("workflow", &args.workflow),
        ("actor", &args.actor),
        ("since", &args.since),
    ] {
        if let Some(value) = value {
            query.push(format!("{name}={}", segment(value)));
        }
    }
    let listing = api.get(&format!("/audit?{}", query.join("&"))).await?;
    let entries = listing["entries"].as_array().cloned().unwrap_or_default();
    if args.json {
        ui::print_json(&Value::Array(entries));
        return Ok(());
    }
    if entries.is_empty() {
        println!("No audit entries match.");
        return Ok(());
    }
    let mut table = ui::table(&["at", "actor", "action", "team", "workflow", "summary"]);
    for entry in &entries {
        table.add_row(vec![
            Cell::new(ui::time(entry["at"].as_str().unwrap_or(""))),
            Cell::new(text(&entry["actor"]["name"])),
            Cell::new(text(&entry["action"])),
            Cell::new(text(&entry["team"])),
            Cell::new(text(&entry["workflow"])),
            Cell::new(text(&entry["summary"])),
        ]);
    }
    ui::print_table(&table);
    Ok(())
}
