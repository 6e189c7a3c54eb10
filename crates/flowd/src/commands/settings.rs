//! `flowd settings NAME`, `flowd settings set NAME KEY VALUE`, `flowd settings unset NAME KEY`.

use std::io::Read;

use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use comfy_table::Cell;
use serde_json::{json, Value};

use super::args::parse_json;
use crate::api::{self, Api};
use crate::{secret_input, ui, Global};

pub const EXAMPLES: &str = "\
Examples:
  flowd settings hello                             # list (secrets masked)
  flowd settings set hello GREETING Bonjour
  flowd settings set hello PAGE_SIZE 50 --json-value
  flowd settings set hello API_KEY - --secret < api_key.txt      # a secret's value from stdin
  printf %s \"$TOKEN\" | flowd settings set hello TOKEN - --secret
  flowd settings unset hello GREETING";

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct SettingsArgs {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// The workflow's name: lists its settings.
    #[arg(required = true)]
    pub name: Option<String>,
    /// Print {"settings": ..., "secrets": [...]} as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum Action {
    /// List a workflow's settings (secrets masked).
    #[command(after_help = "Example:\n  flowd settings list hello --json")]
    List {
        /// The workflow's name.
        name: String,
        /// Print {"settings": ..., "secrets": [...]} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set one setting; the next executions see it.
    #[command(
        after_help = "Examples:\n  flowd settings set hello GREETING Bonjour\n  flowd settings set hello LIMITS '{\"page\": 50}' --json-value\n  flowd settings set hello API_KEY - --secret < key.txt"
    )]
    Set {
        /// The workflow's name.
        name: String,
        /// The setting's key.
        key: String,
        /// The value: a string (use --json-value for a number, a list, an object…); `-` reads
        /// it from stdin, which a secret's value must be.
        value: String,
        /// Mark the key secret: masked in every answer, page and log. Its value is read from
        /// stdin (VALUE `-`), never taken from the command line.
        #[arg(long)]
        secret: bool,
        /// Parse VALUE as JSON instead of taking it as a string.
        #[arg(long)]
        json_value: bool,
    },
    /// Remove one setting.
    #[command(after_help = "Example:\n  flowd settings unset hello GREETING")]
    Unset {
        /// The workflow's name.
        name: String,
        /// The setting's key.
        key: String,
    },
}

pub async fn settings(global: &Global, args: SettingsArgs) -> Result<()> {
    match args.action {
        None => list(global, args.name.as_deref().unwrap_or_default(), args.json).await,
        Some(Action::List { name, json }) => list(global, &name, json).await,
        Some(Action::Set {
            name,
            key,
            value,
            secret,
            json_value,
        }) => set(global, &name, &key, &value, secret, json_value).await,
        Some(Action::Unset { name, key }) => unset(global, &name, &key).await,
    }
}

async fn list(global: &Global, name: &str, as_json: bool) -> Result<()> {
    let api = Api::new(global)?;
    let workflow = api.workflow(name).await?;
    let answer = api
        .get(&format!("/workflows/{}/settings", api::id(&workflow)?))
        .await?;
    if as_json {
        ui::print_json(&answer);
        return Ok(());
    }
    let secrets = secret_keys(&answer);
    let settings = answer["settings"].as_object().cloned().unwrap_or_default();
    if settings.is_empty() {
        println!("{name} has no settings: `flowd settings set {name} KEY VALUE` adds one.");
        return Ok(());
    }
    let mut table = ui::table(&["key", "value", "secret"]);
    for (key, value) in &settings {
        let secret = secrets.contains(key);
        let shown = match value {
            Value::String(text) if secret => text.clone(),
            other => ui::truncate(&other.to_string(), 80),
        };
        table.add_row(vec![
            Cell::new(key),
            Cell::new(shown),
            Cell::new(if secret { "yes" } else { "" }),
        ]);
    }
    ui::print_table(&table);
    Ok(())
}

fn secret_keys(value: &Value) -> Vec<String> {
    value["secrets"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

async fn set(
    global: &Global,
    name: &str,
    key: &str,
    value: &str,
    secret: bool,
    json_value: bool,
) -> Result<()> {
    if key.is_empty() {
        return Err(anyhow!("the key cannot be empty"));
    }
    if secret && value != "-" {
        return Err(secret_input::refused_on_command_line(
            "a secret's VALUE",
            "`-` and give the value on stdin",
        ));
    }
    let value = if value == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| anyhow!("cannot read the value from stdin: {e}"))?;
        text.strip_suffix('\n')
            .map(|t| t.strip_suffix('\r').unwrap_or(t))
            .unwrap_or(&text)
            .to_string()
    } else {
        value.to_string()
    };
    let value = if json_value {
        parse_json(&value, "VALUE")?
    } else {
        Value::String(value)
    };
    if value.is_null() {
        return Err(anyhow!(
            "null cannot be stored: `flowd settings unset {name} {key}` removes the key"
        ));
    }
    let api = Api::new(global)?;
    let workflow = api.workflow(name).await?;
    let id = api::id(&workflow)?;
    let mut secrets = secret_keys(&workflow);
    // Marked secret before the value is stored, so that it is never shown unmasked.
    if secret && !secrets.iter().any(|k| k == key) {
        secrets.push(key.to_string());
        api.patch(&format!("/workflows/{id}"), &json!({"secrets": secrets}))
            .await?;
    }
    let mut patch = serde_json::Map::new();
    patch.insert(key.to_string(), value.clone());
    api.patch(
        &format!("/workflows/{id}/settings"),
        &json!({"settings": patch}),
    )
    .await?;
    if secrets.iter().any(|k| k == key) {
        println!("Set {key} on {name} (secret: shown masked).");
    } else {
        println!(
            "Set {key} = {} on {name}.",
            ui::truncate(&value.to_string(), 80)
        );
    }
    Ok(())
}

async fn unset(global: &Global, name: &str, key: &str) -> Result<()> {
    let api = Api::new(global)?;
    let workflow = api.workflow(name).await?;
    let id = api::id(&workflow)?;
    let current = api.get(&format!("/workflows/{id}/settings")).await?;
    if current["settings"].get(key).is_none() {
        return Err(anyhow!("{name} has no setting {key:?}"));
    }
    let mut patch = serde_json::Map::new();
    patch.insert(key.to_string(), Value::Null);
    api.patch(
        &format!("/workflows/{id}/settings"),
        &json!({"settings": patch}),
    )
    .await?;
    println!("Removed {key} from {name}.");
    Ok(())
}
