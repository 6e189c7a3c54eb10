//! `flowd teams ls|create|rename|rm` (an admin key's commands).

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use comfy_table::Cell;
use serde_json::{json, Value};

use super::format::text;
use crate::api::{segment, Api};
use crate::{ui, Global};

pub const EXAMPLES: &str = "Examples:\n  flowd teams create payroll\n  flowd teams ls\n  flowd teams rename payroll payroll-eu\n  flowd teams rm payroll-eu --yes";

#[derive(Args, Debug)]
pub struct TeamsArgs {
    #[command(subcommand)]
    pub command: TeamsCommand,
}

#[derive(Subcommand, Debug)]
pub enum TeamsCommand {
    /// List the teams.
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Create a team.
    Create(NameArgs),
    /// Rename a team (its hook URLs change with it).
    Rename(RenameArgs),
    /// Delete a team and its keys (refused while it has workflows).
    Rm(RmArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print the teams as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct NameArgs {
    /// The team's name.
    pub name: String,
}

#[derive(Args, Debug)]
pub struct RenameArgs {
    /// The team's name.
    pub name: String,
    /// Its new name.
    pub new_name: String,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// The team's name.
    pub name: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub async fn teams(global: &Global, args: TeamsArgs) -> Result<()> {
    let api = Api::new(global)?;
    match args.command {
        TeamsCommand::Ls(args) => ls(&api, args).await,
        TeamsCommand::Create(args) => {
            let team = api.post("/teams", &json!({ "name": args.name })).await?;
            println!("Created team {}.", text(&team["name"]));
            Ok(())
        }
        TeamsCommand::Rename(args) => {
            let path = format!("/teams/{}", segment(&args.name));
            let team = api.patch(&path, &json!({ "name": args.new_name })).await?;
            println!("Renamed team {} to {}.", args.name, text(&team["name"]));
            Ok(())
        }
        TeamsCommand::Rm(args) => rm(&api, args).await,
    }
}

async fn ls(api: &Api, args: ListArgs) -> Result<()> {
    let listing = api.get("/teams").await?;
    let teams = listing["teams"].as_array().cloned().unwrap_or_default();
    if args.json {
        ui::print_json(&Value::Array(teams));
        return Ok(());
    }
    let mut table = ui::table(&["name", "id", "created"]);
    for team in &teams {
        table.add_row(vec![
            Cell::new(text(&team["name"])),
            Cell::new(text(&team["id"])),
            Cell::new(ui::time(team["created_at"].as_str().unwrap_or(""))),
        ]);
    }
    ui::print_table(&table);
    Ok(())
}

async fn rm(api: &Api, args: RmArgs) -> Result<()> {
    if !args.yes && !ui::confirm(&format!("Delete team {} and its keys?", args.name))? {
        return Err(anyhow!(
            "{} was not deleted (pass --yes to delete without being asked)",
            args.name
        ));
    }
    api.delete(&format!("/teams/{}", segment(&args.name)))
        .await?;
    println!("Deleted team {}.", args.name);
    Ok(())
}
