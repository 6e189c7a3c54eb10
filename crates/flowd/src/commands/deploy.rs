//! `flowd deploy FILE.py`: creates the workflow, or adds a new version to the one of that name.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};
use clap::{Args, ValueEnum};
use flowd_core::workflow::{Mode, Name, MAX_NAME_LEN};
use serde_json::{json, Map, Value};

use super::{code_error, key_values, read_file, settings_file};
use crate::api::{self, Api, ApiError};
use crate::{signature, ui, Global};

pub const EXAMPLES: &str = "\
Examples:
  flowd deploy hello.py                  # a catch workflow: prints its hook URL
  flowd deploy sync.py --every 5m --settings sync.json --secret API_KEY=sk-123
  flowd deploy report.py --cron '0 8 * * 1-5' --tz Europe/Paris
  flowd deploy hello.py --name hello-staging --timeout 30 --memory 256

Deploying a file again under the same name adds a new version (the code is validated first;
nothing changes if it is refused). To roll back, deploy the old file again:
  flowd show hello --code --version 1 > hello_v1.py && flowd deploy hello_v1.py --name hello";

/// A workflow's mode on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// `def workflow(_request, settings)`: runs when its hook URL is called.
    Catch,
    /// `def workflow(settings)`: runs on a schedule.
    Pull,
}

impl From<ModeArg> for Mode {
    fn from(mode: ModeArg) -> Mode {
        match mode {
            ModeArg::Catch => Mode::Catch,
            ModeArg::Pull => Mode::Pull,
        }
    }
}

#[derive(Args, Debug)]
pub struct DeployArgs {
    /// The workflow's Python file; it defines `workflow`.
    pub file: PathBuf,
    /// The workflow's name [default: the file name without `.py`].
    #[arg(long)]
    pub name: Option<String>,
    /// catch or pull [default: guessed from the `workflow` signature].
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Pull: run at this interval (`30s`, `5m`, `1h`).
    #[arg(long, value_name = "INTERVAL", conflicts_with = "cron")]
    pub every: Option<String>,
    /// Pull: run on this 5-field cron expression (`'0 8 * * 1-5'`).
    #[arg(long, value_name = "EXPR")]
    pub cron: Option<String>,
    /// The IANA time zone of --cron [default: UTC].
    #[arg(long, value_name = "ZONE", requires = "cron")]
    pub tz: Option<String>,
    /// A JSON object of settings: the initial settings of a new workflow; for an existing one,
    /// its keys are set (others are kept; a null value removes the key).
    #[arg(long, value_name = "FILE.json")]
    pub settings: Option<PathBuf>,
    /// A secret setting (masked everywhere flowd shows it); repeatable.
    #[arg(long = "secret", value_name = "KEY=VALUE")]
    pub secrets: Vec<String>,
    /// An environment variable of the workflow's processes, set before its module runs;
    /// repeatable. Given on an update, these replace the workflow's variables.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// A requirements.txt of packages the workflow needs.
    #[arg(long, value_name = "FILE")]
    pub requirements: Option<PathBuf>,
    /// Time limit of one execution, in seconds [server default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    /// Memory limit of one execution, in MiB [server default: 512].
    #[arg(long, value_name = "MB")]
    pub memory: Option<u32>,
    /// Print the deployed workflow as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn deploy(global: &Global, args: DeployArgs) -> Result<()> {
    let code = read_file(&args.file)?;
    let name = match &args.name {
        Some(name) => Name::parse(name)?.as_str().to_string(),
        None => name_from_file(&args.file)?,
    };
    let mode = resolve_mode(&args, &code)?;
    let schedule = schedule(&args);
    if mode == Mode::Catch && schedule.is_some() {
        return Err(anyhow!(
            "--every and --cron are for pull workflows, and {} is a catch workflow (def workflow(_request, settings))",
            args.file.display()
        ));
    }
    let secrets = key_values(&args.secrets, "--secret")?;
    let env: Map<String, Value> = key_values(&args.env, "--env")?
        .into_iter()
        .map(|(name, value)| (name, Value::String(value)))
        .collect();
    let mut settings = match &args.settings {
        Some(path) => settings_file(path)?,
        None => Map::new(),
    };
    for (key, value) in &secrets {
        settings.insert(key.clone(), Value::String(value.clone()));
    }
    let requirements = match &args.requirements {
        Some(path) => Some(requirements(path)?),
        None => None,
    };

    let api = Api::new(global)?;
    let existing = api.find_workflow(&name).await?;
    let spinner = ui::spinner(match &requirements {
        Some(_) => {
            format!("Deploying {name}: validating the code and installing its requirements…")
        }
        None => format!("Deploying {name}: validating the code…"),
    });
    if existing.is_none() && mode == Mode::Pull && schedule.is_none() {
        spinner.finish_and_clear();
        return Err(anyhow!(
            "{} is a pull workflow (def workflow(settings)): give it a schedule with --every 5m or --cron \"0 8 * * *\" [--tz Europe/Paris]",
            args.file.display()
        ));
    }
    let outcome = match existing {
        None => {
            let mut body = json!({"name": name, "mode": mode.as_str(), "code": code});
            if !settings.is_empty() {
                body["settings"] = Value::Object(settings);
            }
            if !secrets.is_empty() {
                body["secrets"] = json!(secrets.iter().map(|(k, _)| k).collect::<Vec<_>>());
            }
            if let Some(schedule) = &schedule {
                body["schedule"] = schedule.clone();
            }
            if let Some(timeout) = args.timeout {
                body["timeout_s"] = json!(timeout);
            }
            if let Some(memory) = args.memory {
                body["memory_mb"] = json!(memory);
            }
            if !env.is_empty() {
                body["env"] = Value::Object(env.clone());
            }
            if let Some(requirements) = &requirements {
                body["requirements"] = json!(requirements);
            }
            api.post("/workflows", &body).await.map(Deployed::Created)
        }
        Some(current) => {
            update(
                &api,
                current,
                UpdateInput {
                    mode,
                    code,
                    schedule,
                    secrets: &secrets,
                    env,
                    settings,
                    requirements,
                    args: &args,
                },
            )
            .await
        }
    };
    spinner.finish_and_clear();
    let outcome = outcome.map_err(|error| explain(error, &args))?;
    report(&api, &outcome, &args);
    Ok(())
}

enum Deployed {
    Created(Value),
    Updated {
        record: Value,
        previous: u64,
        /// An older version with the same code (a rollback).
        same_as: Option<u64>,
    },
    /// The code is the active version's; `changed` lists what else was updated.
    Unchanged {
        record: Value,
        changed: Vec<&'static str>,
    },
}

struct UpdateInput<'a> {
    mode: Mode,
    code: String,
    schedule: Option<Value>,
    secrets: &'a [(String, String)],
    env: Map<String, Value>,
    settings: Map<String, Value>,
    requirements: Option<Vec<String>>,
    args: &'a DeployArgs,
}

async fn update(api: &Api, current: Value, input: UpdateInput<'_>) -> Result<Deployed> {
    let name = current["name"].as_str().unwrap_or_default().to_string();
    let current_mode = current["mode"].as_str().unwrap_or_default();
    if current_mode != input.mode.as_str() {
        return Err(anyhow!(
            "{name} is a {current_mode} workflow and {} is {} code: a workflow's mode cannot change (deploy under another --name, or `flowd rm {name}` first)",
            input.args.file.display(),
            input.mode
        ));
    }
    let id = api::id(&current)?;
    let previous = current["version"].as_u64().unwrap_or(0);
    let versions = api.get(&format!("/workflows/{id}/versions")).await?;
    let versions = versions["versions"].as_array().cloned().unwrap_or_default();
    let active_code = versions
        .iter()
        .find(|v| v["active"] == json!(true))
        .and_then(|v| v["code"].as_str())
        .map(str::to_string);
    let same_as = versions
        .iter()
        .find(|v| v["code"].as_str() == Some(input.code.as_str()))
        .and_then(|v| v["version"].as_u64());

    let mut patch = Map::new();
    if active_code.as_deref() != Some(input.code.as_str()) {
        patch.insert("code".into(), json!(input.code));
    }
    if let Some(schedule) = input.schedule {
        patch.insert("schedule".into(), schedule);
    }
    if let Some(timeout) = input.args.timeout {
        patch.insert("timeout_s".into(), json!(timeout));
    }
    if let Some(memory) = input.args.memory {
        patch.insert("memory_mb".into(), json!(memory));
    }
    if !input.secrets.is_empty() {
        let mut keys: Vec<String> = current["secrets"]
            .as_array()
            .map(|list| {
                list.iter()
                    .filter_map(|k| k.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        for (key, _) in input.secrets {
            if !keys.contains(key) {
                keys.push(key.clone());
            }
        }
        patch.insert("secrets".into(), json!(keys));
    }
    if !input.env.is_empty() && current["env"] != Value::Object(input.env.clone()) {
        patch.insert("env".into(), Value::Object(input.env));
    }
    if let Some(requirements) = input.requirements {
        patch.insert("requirements".into(), json!(requirements));
    }
    let code_changed = patch.contains_key("code");
    let mut changed: Vec<&'static str> = Vec::new();
    if patch.contains_key("schedule") {
        changed.push("schedule");
    }
    if patch.contains_key("env") {
        changed.push("env");
    }
    if patch.contains_key("timeout_s") || patch.contains_key("memory_mb") {
        changed.push("limits");
    }
    if patch.contains_key("requirements") {
        changed.push("requirements");
    }
    if !input.settings.is_empty() {
        changed.push("settings");
    }
    let mut record = current;
    if !patch.is_empty() {
        record = api
            .patch(&format!("/workflows/{id}"), &Value::Object(patch))
            .await?;
    }
    if !input.settings.is_empty() {
        api.patch(
            &format!("/workflows/{id}/settings"),
            &json!({"settings": input.settings}),
        )
        .await?;
    }
    Ok(if code_changed {
        Deployed::Updated {
            record,
            previous,
            same_as,
        }
    } else {
        Deployed::Unchanged { record, changed }
    })
}

/// Turns the server's refusals into lines that name what to fix.
fn explain(error: anyhow::Error, args: &DeployArgs) -> anyhow::Error {
    let Some(api_error) = error.downcast_ref::<ApiError>() else {
        return error;
    };
    if api_error.code == "invalid_code" {
        return code_error(
            &args.file,
            api_error.line.unwrap_or(1),
            api_error.column.unwrap_or(1),
            &api_error.message,
        );
    }
    if args.requirements.is_some() && api_error.message.contains("requirements") {
        return anyhow!(
            "the server refused --requirements (it may not support dependencies yet): {}",
            api_error.message
        );
    }
    error
}

fn report(api: &Api, outcome: &Deployed, args: &DeployArgs) {
    let record = match outcome {
        Deployed::Created(record)
        | Deployed::Updated { record, .. }
        | Deployed::Unchanged { record, .. } => record,
    };
    if args.json {
        ui::print_json(record);
        return;
    }
    let name = record["name"].as_str().unwrap_or_default();
    let version = record["version"].as_u64().unwrap_or(0);
    let mode = record["mode"].as_str().unwrap_or_default();
    let runtime = record["runtime"].as_str().unwrap_or_default();
    match outcome {
        Deployed::Created(_) => println!(
            "Created {}: version {version} ({mode}, {runtime}).",
            ui::bold(name)
        ),
        Deployed::Updated {
            previous, same_as, ..
        } => println!(
            "Updated {}: version {version} (was {previous}{}).",
            ui::bold(name),
            match same_as {
                Some(old) => format!("; same code as version {old}"),
                None => String::new(),
            }
        ),
        Deployed::Unchanged { changed, .. } if changed.is_empty() => println!(
            "{} is up to date: version {version} already has this code.",
            ui::bold(name)
        ),
        Deployed::Unchanged { changed, .. } => println!(
            "Updated the {} of {} (the code is unchanged: version {version}).",
            changed.join(", "),
            ui::bold(name)
        ),
    }
    if record["enabled"] == json!(false) {
        ui::warn(&format!(
            "{name} is paused: `flowd resume {name}` to enable it"
        ));
    }
    match record["hook_url"].as_str() {
        Some(path) => {
            println!("Hook URL: {}", api.url(path));
            println!(
                "{}",
                ui::dim(&format!("Try it:   flowd invoke {name} --json '{{}}'"))
            );
        }
        None => {
            match schedule_text(&record["schedule"]) {
                Some(text) => println!("Schedule: {text}"),
                None => println!("Schedule: none (runs only with `flowd trigger {name}`)"),
            }
            if let Some(next) = record["next_run_at"].as_str() {
                println!("Next run: {}", ui::time(next));
            }
        }
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

fn schedule(args: &DeployArgs) -> Option<Value> {
    if let Some(every) = &args.every {
        return Some(json!({"every": every}));
    }
    let cron = args.cron.as_ref()?;
    let mut schedule = json!({"cron": cron});
    if let Some(zone) = &args.tz {
        schedule["timezone"] = json!(zone);
    }
    Some(schedule)
}

fn resolve_mode(args: &DeployArgs, code: &str) -> Result<Mode> {
    if let Some(mode) = args.mode {
        return Ok(mode.into());
    }
    if let Some(mode) = signature::guess_mode(code) {
        return Ok(mode);
    }
    if args.every.is_some() || args.cron.is_some() {
        return Ok(Mode::Pull);
    }
    Err(anyhow!(
        "cannot tell the mode of {} from its `def workflow(` line: pass --mode catch (def workflow(_request, settings)) or --mode pull (def workflow(settings))",
        args.file.display()
    ))
}

/// `hello_world.py` → `hello_world`; characters a name cannot hold become `-`.
pub fn name_from_file(path: &Path) -> Result<String> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let cleaned: String = stem
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let cleaned = cleaned
        .trim_start_matches(|c: char| !c.is_ascii_alphanumeric())
        .chars()
        .take(MAX_NAME_LEN)
        .collect::<String>();
    Name::parse(&cleaned)
        .map(|name| name.as_str().to_string())
        .map_err(|_| {
            anyhow!(
                "cannot make a workflow name from the file name {}: pass --name NAME",
                path.display()
            )
        })
}

/// The packages of a requirements file: its non-empty, non-comment lines.
fn requirements(path: &Path) -> Result<Vec<String>> {
    Ok(read_file(path)?
        .lines()
        .map(|line| line.split(" #").next().unwrap_or("").trim())
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_file_names() {
        assert_eq!(
            name_from_file(Path::new("dir/hello_world.py")).unwrap(),
            "hello_world"
        );
        assert_eq!(
            name_from_file(Path::new("my sync (v2).py")).unwrap(),
            "my-sync--v2-"
        );
        assert_eq!(name_from_file(Path::new("_private.py")).unwrap(), "private");
        assert!(name_from_file(Path::new("___.py")).is_err());
    }

    #[test]
    fn schedules_read_well() {
        assert_eq!(
            schedule_text(&json!({"every": "5m"})).as_deref(),
            Some("every 5m")
        );
        assert_eq!(
            schedule_text(&json!({"cron": "0 8 * * *", "timezone": "Europe/Paris"})).as_deref(),
            Some("cron 0 8 * * * (Europe/Paris)")
        );
        assert_eq!(schedule_text(&Value::Null), None);
    }
}
