//! `flowd keys create|ls|revoke`: API keys (an admin key's commands).

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use comfy_table::Cell;
use serde_json::{json, Value};

use super::format::text;
use crate::api::{segment, Api};
use crate::{ui, Global};

pub const EXAMPLES: &str = "Examples:\n  flowd keys create ci-deploy --role developer --team payroll\n  flowd keys create dashboards --role viewer --expires-at 2027-06-30T00:00:00Z\n  flowd keys ls\n  flowd keys revoke 0192f4a1-7c3e-7d2a-9b1e-2f6a8c0d4e5f --yes";

#[derive(Args, Debug)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: KeysCommand,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create a key; it is printed once and never shown again.
    Create(CreateArgs),
    /// List the keys: name, prefix, role, team, created, expires, last used.
    #[command(visible_alias = "list")]
    Ls(ListArgs),
    /// Revoke a key: it is refused from the next request on.
    Revoke(RevokeArgs),
}

#[derive(Args, Debug)]
pub struct CreateArgs {
    /// A name for people ("ci-deploy", "grafana").
    pub name: String,
    /// admin (every team, keys, teams), developer (its team: deploy, settings, runs) or viewer
    /// (its team: read only).
    #[arg(long, value_parser = ["admin", "developer", "viewer"])]
    pub role: String,
    /// The key's team [default: default].
    #[arg(long)]
    pub team: Option<String>,
    /// When the key stops working, RFC 3339 (2027-06-30T00:00:00Z) [default: never].
    #[arg(long, value_name = "TIME")]
    pub expires_at: Option<String>,
    /// Print the key's record, the key included, as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Print the keys as a JSON array.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RevokeArgs {
    /// The key's id (see `flowd keys ls`).
    pub id: String,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub async fn keys(global: &Global, args: KeysArgs) -> Result<()> {
    let api = Api::new(global)?;
    match args.command {
        KeysCommand::Create(args) => create(&api, args).await,
        KeysCommand::Ls(args) => ls(&api, args).await,
        KeysCommand::Revoke(args) => revoke(&api, args).await,
    }
}

async fn create(api: &Api, args: CreateArgs) -> Result<()> {
    let body = json!({
        "name": args.name,
        "role": args.role,
        "team": args.team,
        "expires_at": args.expires_at,
    });
    let created = api.post("/api-keys", &body).await?;
    if args.json {
        ui::print_json(&created);
        return Ok(());
    }
    eprintln!(
        "Created the {} key {} of team {} (id {}). The key is shown this once:",
        text(&created["role"]),
        text(&created["name"]),
        text(&created["team"]),
        text(&created["id"]),
    );
    println!("{}", text(&created["key"]));
    Ok(())
}

async fn ls(api: &Api, args: ListArgs) -> Result<()> {
    let listing = api.get("/api-keys").await?;
    let keys = listing["api_keys"].as_array().cloned().unwrap_or_default();
    if args.json {
        ui::print_json(&Value::Array(keys));
        return Ok(());
    }
    let mut table = ui::table(&[
        "id",
        "name",
        "prefix",
        "role",
        "team",
        "created",
        "expires",
        "last used",
    ]);
    for key in &keys {
        let time = |field: &str| key[field].as_str().map_or("-".to_string(), ui::time);
        table.add_row(vec![
            Cell::new(text(&key["id"])),
            Cell::new(text(&key["name"])),
            Cell::new(format!("{}…", text(&key["prefix"]))),
            Cell::new(text(&key["role"])),
            Cell::new(text(&key["team"])),
            Cell::new(time("created_at")),
            Cell::new(time("expires_at")),
            Cell::new(time("last_used_at")),
        ]);
    }
    ui::print_table(&table);
    Ok(())
}

async fn revoke(api: &Api, args: RevokeArgs) -> Result<()> {
    if !args.yes && !ui::confirm(&format!("Revoke the API key {}?", args.id))? {
        return Err(anyhow!(
            "{} was not revoked (pass --yes to revoke without being asked)",
            args.id
        ));
    }
    api.delete(&format!("/api-keys/{}", segment(&args.id)))
        .await?;
    println!("Revoked {}.", args.id);
    Ok(())
}
