//! `flowd deploy FILE.py`: creates the workflow, or adds a new version to the one of that name.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use clap::Args;
use flowd_core::egress::EgressRule;
use flowd_core::requirements::Requirements;
use flowd_core::workflow::{Mode, Name, MAX_NAME_LEN};
use indicatif::ProgressBar;
use serde_json::{json, Map, Value};

use super::args::{json_arg, key_values, read_file, secret_settings, settings_file, ModeArg};
use super::format::{
    code_error, count, environment_short, requirements_key, requirements_of, requirements_short,
    schedule_text, text,
};
use crate::api::{self, Api, ApiError};
use crate::{signature, ui, Global};

pub const EXAMPLES: &str = "\
Examples:
  flowd deploy hello.py                  # a catch workflow: prints its hook URL
  flowd deploy sync.py --every 5m --settings sync.json --secret-file API_KEY=api_key.txt
  flowd deploy report.py --cron '0 8 * * 1-5' --tz Europe/Paris
  flowd deploy hello.py --name hello-staging --timeout 30 --memory 256
  flowd deploy payroll.py --egress-allow 10.20.0.5:5432   # within the server's --egress-workflow-allow
  flowd deploy payroll.py --alert-url https://hooks.slack.com/services/T/B/X --alert-min-interval-s 600 \\
      --on-failure page-on-call

  flowd deploy hello.py --requirements requirements.txt
  flowd deploy github.py --secret-file GITHUB_SECRET=secret.txt \\
      --verify '{\"scheme\": \"github\", \"secret\": \"GITHUB_SECRET\"}' --idempotency-header X-GitHub-Delivery

Deploying a file again under the same name adds a new version when its code or requirements
changed. The version goes live only once its requirements are installed and its module imported
in the sandbox; if either fails, the deploy exits 1 with the error and the build log's last lines,
and the previous version keeps serving (`flowd versions hello` lists every version).
To roll back, deploy the old file again:
  flowd show hello --code --version 1 > hello_v1.py && flowd deploy hello_v1.py --name hello";

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
    /// A secret setting (masked everywhere flowd shows it): its key and a file holding its value; repeatable.
    #[arg(long = "secret-file", value_name = "KEY=PATH")]
    pub secret_files: Vec<String>,
    /// Refused: use --secret-file (a value on the command line is readable by every process of
    /// the machine).
    #[arg(long = "secret", hide = true, value_name = "KEY=VALUE")]
    pub secrets_on_command_line: Vec<String>,
    /// An environment variable of the workflow's processes, set before its module runs;
    /// repeatable. Given on an update, these replace the workflow's variables.
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// A requirements.txt of packages the workflow needs (pip requirement lines; options such
    /// as -r or --index-url and local paths are refused). Without it, the requirements of the
    /// latest version are kept.
    #[arg(long, value_name = "FILE")]
    pub requirements: Option<PathBuf>,
    /// Time limit of one execution, in seconds [server default: 60].
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    /// Memory limit of one execution, in MiB [server default: 512].
    #[arg(long, value_name = "MB")]
    pub memory: Option<u32>,
    /// Catch: check the callers' signatures, as a JSON object or @file:
    /// `{"scheme": "github", "secret": "GITHUB_SECRET"}` (schemes github, stripe, slack,
    /// standard-webhooks, hmac; `secret` names the settings key holding the secret); `none` stops
    /// checking.
    #[arg(long, value_name = "JSON|@FILE|none")]
    pub verify: Option<String>,
    /// Catch: the header identifying a delivery, for its repeats to get the first response
    /// (`X-GitHub-Delivery`, `webhook-id`) [server default: Idempotency-Key]; `none` goes back to it.
    #[arg(long, value_name = "HEADER|none")]
    pub idempotency_header: Option<String>,
    /// A destination this workflow alone may connect to although the egress policy refuses it
    /// (a CIDR, an address, `address:port` or `host:port`), within the server's
    /// --egress-workflow-allow; repeatable. Given on an update, these replace the workflow's.
    #[arg(long = "egress-allow", value_name = "DESTINATION")]
    pub egress_allow: Vec<EgressRule>,
    /// On an update: remove the workflow's own egress exceptions.
    #[arg(long, conflicts_with = "egress_allow")]
    pub no_egress_allow: bool,
    /// Do not store this workflow's hook requests (no replay): for data that must not be kept.
    #[arg(long)]
    pub no_store_requests: bool,
    /// On an update: store this workflow's hook requests again (the default).
    #[arg(long, conflicts_with = "no_store_requests")]
    pub store_requests: bool,
    /// Keep this workflow's executions this many days [server default: --retention-days].
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Keep only this many of this workflow's newest executions [server default:
    /// --retention-per-workflow].
    #[arg(long, value_name = "N")]
    pub retention_max_executions: Option<u64>,
    /// POST a summary of each failed execution to this http(s) URL (a Slack, Mattermost or
    /// Teams incoming webhook shows its `text`) [server default: --alert-url]; `none` gives the
    /// workflow the server's default again.
    #[arg(long, value_name = "URL|none")]
    pub alert_url: Option<String>,
    /// The execution statuses that send an alert, comma-separated [default: error,timeout,killed].
    #[arg(long, value_name = "STATUSES", value_delimiter = ',')]
    pub alert_on: Vec<String>,
    /// At most one alert per this many seconds [default: 0, every one].
    #[arg(long, value_name = "SECONDS")]
    pub alert_min_interval_s: Option<u64>,
    /// A catch workflow of the same team run with each alert's summary as `_request`; `none`
    /// removes it.
    #[arg(long, value_name = "WORKFLOW|none")]
    pub on_failure: Option<String>,
    /// How hook calls are answered: `sync` (once the workflow has run) or `async` (at once with
    /// 202 and a status URL, the call queued) [server default: sync].
    #[arg(long, value_name = "MODE", value_parser = ["sync", "async"])]
    pub response: Option<String>,
    /// Attempts an asynchronous or scheduled execution gets in all, retries included (1–10).
    #[arg(long, value_name = "N")]
    pub retry_max_attempts: Option<u32>,
    /// Seconds before the first retry (at least 0.1); each further retry waits twice as long,
    /// give or take 20 % [default: 1].
    #[arg(long, value_name = "SECONDS")]
    pub retry_backoff_s: Option<f64>,
    /// The statuses retried, comma-separated [default: error,timeout,killed].
    #[arg(long, value_name = "STATUS,…", value_delimiter = ',', value_parser = ["error", "timeout", "killed"])]
    pub retry_on: Vec<String>,
    /// On an update: stop retrying.
    #[arg(long, conflicts_with_all = ["retry_max_attempts", "retry_backoff_s", "retry_on"])]
    pub no_retry: bool,
    /// Print the deployed workflow, with how the deploy went (`deployment`), as JSON.
    #[arg(long)]
    pub json: bool,
    /// Show the whole build log (installer output, import traceback), not only its last lines.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

/// The workflow's `retention` with what `--retention-days` and `--retention-max-executions`
/// set over its `current` one; `None` when neither is given.
fn retention(args: &DeployArgs, current: &Value) -> Option<Value> {
    if args.retention_days.is_none() && args.retention_max_executions.is_none() {
        return None;
    }
    let mut retention = current.as_object().cloned().unwrap_or_default();
    if let Some(days) = args.retention_days {
        retention.insert("days".into(), json!(days));
    }
    if let Some(max) = args.retention_max_executions {
        retention.insert("max_executions".into(), json!(max));
    }
    Some(Value::Object(retention))
}

/// The workflow's `alerts` with what `--alert-url`, `--alert-on` and `--alert-min-interval-s`
/// set over its `current` one (`null` for `--alert-url none`); `None` when none is given. The
/// server checks the values.
fn alerts(args: &DeployArgs, current: &Value) -> Result<Option<Value>> {
    if args.alert_url.as_deref() == Some("none") {
        return Ok(Some(Value::Null));
    }
    if args.alert_url.is_none() && args.alert_on.is_empty() && args.alert_min_interval_s.is_none() {
        return Ok(None);
    }
    let mut alerts = current.as_object().cloned().unwrap_or_default();
    if let Some(url) = &args.alert_url {
        alerts.insert("url".into(), json!(url));
    }
    if !alerts.contains_key("url") {
        return Err(anyhow!(
            "--alert-on and --alert-min-interval-s need --alert-url: the workflow has no alerts of its own"
        ));
    }
    if !args.alert_on.is_empty() {
        alerts.insert("on".into(), json!(args.alert_on));
    }
    if let Some(interval) = args.alert_min_interval_s {
        alerts.insert("min_interval_s".into(), json!(interval));
    }
    Ok(Some(Value::Object(alerts)))
}

/// `on_failure` as `--on-failure` asks for it (`null` for `none`).
fn on_failure(args: &DeployArgs) -> Option<Value> {
    args.on_failure.as_deref().map(|name| match name {
        "none" => Value::Null,
        name => json!(name),
    })
}

/// The workflow's `retry` with what the `--retry-*` flags change in `current`; `Null` for
/// `--no-retry`, `None` when no flag is given.
fn retry(args: &DeployArgs, current: &Value) -> Option<Value> {
    if args.no_retry {
        return Some(Value::Null);
    }
    if args.retry_max_attempts.is_none()
        && args.retry_backoff_s.is_none()
        && args.retry_on.is_empty()
    {
        return None;
    }
    let mut retry = current.as_object().cloned().unwrap_or_default();
    if let Some(attempts) = args.retry_max_attempts {
        retry.insert("max_attempts".into(), json!(attempts));
    }
    if let Some(backoff) = args.retry_backoff_s {
        retry.insert("backoff_s".into(), json!(backoff));
    }
    if !args.retry_on.is_empty() {
        retry.insert("on".into(), json!(args.retry_on));
    }
    Some(Value::Object(retry))
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
    let secrets = secret_settings(&args.secret_files, &args.secrets_on_command_line)?;
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
        Some(path) => Some(read_requirements(path)?),
        None => None,
    };
    let deliveries = delivery_fields(&args)?;
    if mode == Mode::Pull && !deliveries.is_empty() {
        return Err(anyhow!(
            "--verify and --idempotency-header are for catch workflows, and {} is a pull workflow (def workflow(settings))",
            args.file.display()
        ));
    }

    let api = Api::new(global)?;
    let existing = api.find_workflow(&name).await?;
    // An update merges the alert flags over the workflow's own alerts instead.
    let new_alerts = match existing {
        None => alerts(&args, &Value::Null)?,
        Some(_) => None,
    };
    if existing.is_none() && mode == Mode::Pull && schedule.is_none() {
        return Err(anyhow!(
            "{} is a pull workflow (def workflow(settings)): give it a schedule with --every 5m or --cron \"0 8 * * *\" [--tz Europe/Paris]",
            args.file.display()
        ));
    }
    let spinner = ui::spinner(format!("Deploying {name}: validating the code…"));
    let sent = match existing {
        None => {
            let mut body = json!({"name": name, "mode": mode.as_str(), "code": code});
            if !settings.is_empty() {
                body["settings"] = Value::Object(settings.clone());
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
            if let Some(retention) = retention(&args, &Value::Null) {
                body["retention"] = retention;
            }
            if let Some(alerts) = &new_alerts {
                body["alerts"] = alerts.clone();
            }
            if let Some(on_failure) = on_failure(&args) {
                body["on_failure"] = on_failure;
            }
            if let Some(response) = &args.response {
                body["response"] = json!(response);
            }
            if let Some(retry) = retry(&args, &Value::Null) {
                body["retry"] = retry;
            }
            if !env.is_empty() {
                body["env"] = Value::Object(env.clone());
            }
            if !args.egress_allow.is_empty() {
                body["egress_allow"] = json!(args.egress_allow);
            }
            if args.no_store_requests {
                body["store_requests"] = json!(false);
            }
            if let Some(requirements) = &requirements {
                body["requirements"] = json!(requirements.lines());
            }
            for (field, value) in &deliveries {
                body[*field] = value.clone();
            }
            let settings_sent = !settings.is_empty();
            api.post(NO_WAIT_CREATE, &body).await.map(|record| Sent {
                kind: Kind::Created,
                requirements: requirements.as_ref().map(|r| r.lines().len()).unwrap_or(0),
                record,
                settings_sent,
            })
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
                    requirements: requirements.as_ref(),
                    args: &args,
                },
            )
            .await
        }
    };
    let sent = match sent {
        Ok(sent) => sent,
        Err(error) => {
            spinner.finish_and_clear();
            return Err(explain(error, &args));
        }
    };
    let id = api::id(&sent.record)?;
    // Follow the new version's build until it settles (a server without deploy checks answers
    // no `deployment`: its version is active at once).
    let deployment = match sent.record["deployment"]["version"].as_u64() {
        Some(number) if !matches!(sent.kind, Kind::Unchanged { .. }) => {
            let settled = settle(&api, &id, &name, number, sent.requirements, &spinner).await;
            match settled {
                Ok(version) => Some(version),
                Err(error) => {
                    spinner.finish_and_clear();
                    return Err(error);
                }
            }
        }
        _ => None,
    };
    spinner.finish_and_clear();
    let record = if deployment.is_some() {
        api.get(&format!("/workflows/{id}")).await?
    } else {
        sent.record.clone()
    };
    let went_live = deployment
        .as_ref()
        .is_none_or(|d| d["state"] == "active" || d["state"] == "ready");
    // Settings are for the new code: set only once it serves.
    let mut settings_held_back = false;
    if !settings.is_empty() && !sent.settings_sent {
        if went_live {
            api.patch(
                &format!("/workflows/{id}/settings"),
                &json!({"settings": settings}),
            )
            .await?;
        } else {
            settings_held_back = true;
        }
    }
    report(
        &api,
        &Report {
            kind: &sent.kind,
            record,
            deployment: deployment.as_ref(),
            settings_held_back,
        },
        &args,
    )
}

/// `POST /workflows` answering once the new version is stored: its build is followed apart.
const NO_WAIT_CREATE: &str = "/workflows?wait=false";

/// How long a deploy waits for its version to settle: the server's own limit (20 min) and a
/// margin.
const SETTLE_LIMIT: Duration = Duration::from_secs(21 * 60);

/// What was sent, and what the server answered.
struct Sent {
    kind: Kind,
    record: Value,
    /// Requirements of the new version.
    requirements: usize,
    /// Whether the settings went with the request (a new workflow's initial settings).
    settings_sent: bool,
}

#[derive(Debug, PartialEq)]
enum Kind {
    Created,
    /// A new version; `previous` is the version that was active.
    Updated {
        previous: Option<u64>,
        code_changed: bool,
        requirements_changed: bool,
        /// An older version with the same code (and whether it also had these requirements).
        same_as: Option<(u64, bool)>,
        /// Whether the new version has requirements.
        with_requirements: bool,
    },
    /// Nothing new to build: `changed` lists what else was updated.
    Unchanged {
        changed: Vec<&'static str>,
        /// Whether the deploy brought requirements, which the active version has.
        with_requirements: bool,
    },
}

struct UpdateInput<'a> {
    mode: Mode,
    code: String,
    schedule: Option<Value>,
    secrets: &'a [(String, String)],
    env: Map<String, Value>,
    requirements: Option<&'a Requirements>,
    args: &'a DeployArgs,
}

async fn update(api: &Api, current: Value, input: UpdateInput<'_>) -> Result<Sent> {
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
    let versions = api.get(&format!("/workflows/{id}/versions")).await?;
    let versions = versions["versions"].as_array().cloned().unwrap_or_default();
    let latest = versions.first();
    let active = versions.iter().find(|v| v["active"] == json!(true));
    let code = input.code.as_str();
    // The new version's requirements: the file's, else the latest version's (the server carries
    // over what is not sent).
    let latest_requirements = latest.map(requirements_of).unwrap_or_default();
    let wanted_lines = match input.requirements {
        Some(requirements) => requirements.lines().to_vec(),
        None => latest_requirements.clone(),
    };
    let wanted_key = requirements_key(&wanted_lines);
    let has = |version: &Value| {
        version["code"].as_str() == Some(code)
            && requirements_key(&requirements_of(version)) == wanted_key
    };
    let new_version = !active.is_some_and(has);

    let mut patch = Map::new();
    let mut requirements_changed = false;
    let mut code_changed = false;
    if new_version {
        let active_code = active.and_then(|v| v["code"].as_str());
        let active_key = active.map(|v| requirements_key(&requirements_of(v)));
        // Compared with the version that was serving, if any.
        code_changed = active_code.is_some_and(|c| c != code);
        requirements_changed = active_key.is_some_and(|k| k != wanted_key);
        let code_differs = latest.and_then(|v| v["code"].as_str()) != Some(code);
        let requirements_differ = requirements_key(&latest_requirements) != wanted_key;
        if requirements_differ {
            patch.insert("requirements".into(), json!(wanted_lines));
        }
        // The code too when it differs from the latest version's, or to deploy again what the
        // latest version holds (it failed, say, on an index that was down).
        if code_differs || !requirements_differ {
            patch.insert("code".into(), json!(code));
        }
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
    if let Some(retention) = retention(input.args, &current["retention"]) {
        if retention != current["retention"] {
            patch.insert("retention".into(), retention);
        }
    }
    if let Some(alerts) = alerts(input.args, &current["alerts"])? {
        if alerts != current["alerts"] {
            patch.insert("alerts".into(), alerts);
        }
    }
    if let Some(on_failure) = on_failure(input.args) {
        if on_failure != current["on_failure"] {
            patch.insert("on_failure".into(), on_failure);
        }
    }
    if let Some(response) = &input.args.response {
        if current["response"] != json!(response) {
            patch.insert("response".into(), json!(response));
        }
    }
    if let Some(retry) = retry(input.args, &current["retry"]) {
        if retry != current["retry"] {
            patch.insert("retry".into(), retry);
        }
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
    for (field, value) in delivery_fields(input.args)? {
        if !same_delivery_field(field, &current[field], &value) {
            patch.insert(field.into(), value);
        }
    }
    let egress_allow = if input.args.no_egress_allow {
        Some(json!([]))
    } else {
        (!input.args.egress_allow.is_empty()).then(|| json!(input.args.egress_allow))
    };
    if let Some(egress_allow) = egress_allow.filter(|wanted| current["egress_allow"] != *wanted) {
        patch.insert("egress_allow".into(), egress_allow);
    }
    let store_requests = if input.args.no_store_requests {
        Some(false)
    } else {
        input.args.store_requests.then_some(true)
    };
    if let Some(wanted) = store_requests.filter(|wanted| current["store_requests"] != json!(wanted))
    {
        patch.insert("store_requests".into(), json!(wanted));
    }
    let mut changed: Vec<&'static str> = Vec::new();
    if patch.contains_key("schedule") {
        changed.push("schedule");
    }
    if patch.contains_key("env") {
        changed.push("env");
    }
    if patch.contains_key("egress_allow") {
        changed.push("egress_allow");
    }
    if patch.contains_key("timeout_s") || patch.contains_key("memory_mb") {
        changed.push("limits");
    }
    if patch.contains_key("verify") || patch.contains_key("idempotency_header") {
        changed.push("deliveries");
    }
    if patch.contains_key("retention") {
        changed.push("retention");
    }
    if patch.contains_key("alerts") || patch.contains_key("on_failure") {
        changed.push("alerts");
    }
    if patch.contains_key("response") {
        changed.push("response");
    }
    if patch.contains_key("retry") {
        changed.push("retry");
    }
    if patch.contains_key("store_requests") {
        changed.push("store_requests");
    }
    if input.args.settings.is_some() || !input.secrets.is_empty() {
        changed.push("settings");
    }
    let kind = if new_version {
        let same_as = versions
            .iter()
            .filter(|v| {
                code_changed
                    && Some(*v) != active
                    && v["state"] != "failed"
                    && v["code"].as_str() == Some(code)
            })
            .map(|v| (v["version"].as_u64().unwrap_or(0), has(v)))
            .max_by_key(|(number, same_requirements)| (*same_requirements, *number));
        Kind::Updated {
            previous: active.and_then(|v| v["version"].as_u64()),
            code_changed,
            requirements_changed,
            same_as,
            with_requirements: !wanted_lines.is_empty(),
        }
    } else {
        Kind::Unchanged {
            changed,
            with_requirements: !wanted_lines.is_empty(),
        }
    };
    let record = if patch.is_empty() {
        current
    } else {
        let path = if new_version {
            format!("/workflows/{id}?wait=false")
        } else {
            format!("/workflows/{id}")
        };
        api.patch(&path, &Value::Object(patch)).await?
    };
    Ok(Sent {
        kind,
        record,
        requirements: wanted_lines.len(),
        settings_sent: false,
    })
}

/// Waits until version `number` is built and its module imported (or either failed): answers
/// its record. The server answers a long poll once the version settles; each poll is cut after
/// a while (proxies close idle connections) and the next one follows.
async fn settle(
    api: &Api,
    id: &str,
    name: &str,
    number: u64,
    requirements: usize,
    spinner: &ProgressBar,
) -> Result<Value> {
    let doing = if requirements > 0 {
        format!(
            "Deploying {name} version {number}: building environment ({})…",
            count(requirements, "requirement")
        )
    } else {
        format!("Deploying {name} version {number}: importing the module…")
    };
    spinner.set_message(doing);
    let path = format!("/workflows/{id}/versions/{number}?wait=true");
    let started = Instant::now();
    let hint_after = Duration::from_secs(10);
    let mut hinted = false;
    let waiting = async {
        loop {
            let left = SETTLE_LIMIT.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(anyhow!(
                    "version {number} of {name} is still building after {} minutes; the previous version keeps serving meanwhile (`flowd versions {name}` shows how it ends)",
                    SETTLE_LIMIT.as_secs() / 60
                ));
            }
            // Polls end at the hint's time, then every 25 s (idle connections get cut).
            let poll = hint_after
                .saturating_sub(started.elapsed())
                .max(if hinted {
                    Duration::from_secs(25)
                } else {
                    Duration::ZERO
                })
                .max(Duration::from_secs(1));
            match api.get_within(&path, poll.min(left)).await? {
                Some(version) if version["state"] != "building" => return Ok(version),
                // The server stopped waiting before the build ended: ask again shortly.
                Some(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                None => {}
            }
            if !hinted && started.elapsed() >= hint_after {
                hinted = true;
                spinner.println(ui::dim(
                    "Ctrl-C stops waiting; the build goes on, and the previous version serves until it ends.",
                ));
            }
        }
    };
    tokio::select! {
        settled = waiting => settled,
        _ = tokio::signal::ctrl_c() => Err(anyhow!(
            "stopped waiting: version {number} of {name} goes on building on the server, and the previous version serves until it is ready (`flowd versions {name}` shows how it ends)"
        )),
    }
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
    if let Some(path) = &args.requirements {
        if api_error.message.contains("unknown field") && api_error.message.contains("requirements")
        {
            return anyhow!(
                "the server does not support --requirements (it is older than this flowd): {}",
                api_error.message
            );
        }
        if api_error.message.starts_with("requirements") {
            return anyhow!(
                "the server refused the requirements of {}: {}",
                path.display(),
                api_error.message
            );
        }
    }
    error
}

struct Report<'a> {
    kind: &'a Kind,
    /// The workflow as it is now.
    record: Value,
    /// The new version's record, once settled.
    deployment: Option<&'a Value>,
    settings_held_back: bool,
}

fn report(api: &Api, report: &Report<'_>, args: &DeployArgs) -> Result<()> {
    let record = &report.record;
    let name = record["name"].as_str().unwrap_or_default();
    let failed = report
        .deployment
        .filter(|d| d["state"] != "active" && d["state"] != "ready");
    if args.json {
        let mut record = record.clone();
        if let Some(deployment) = report.deployment {
            let mut deployment = deployment.clone();
            if let Some(fields) = deployment.as_object_mut() {
                fields.remove("code");
            }
            record["deployment"] = deployment;
        }
        ui::print_json(&record);
    } else {
        match failed {
            Some(deployment) => print_failure(name, record, deployment, report, args),
            None => print_success(api, name, record, report, args),
        }
    }
    match failed {
        Some(deployment) => Err(anyhow!(
            "the deploy of {name} failed: version {} {}; {}",
            text(&deployment["version"]),
            match deployment["error"].as_str() {
                Some(error) => format!("was not deployed ({error})"),
                None => format!("is {}", text(&deployment["state"])),
            },
            match record["version"].as_u64() {
                Some(active) => format!("version {active} keeps serving"),
                None => format!("{name} has no active version"),
            }
        )),
        None => Ok(()),
    }
}

fn print_success(api: &Api, name: &str, record: &Value, report: &Report<'_>, args: &DeployArgs) {
    let version = text(&record["version"]);
    let mode = record["mode"].as_str().unwrap_or_default();
    let runtime = record["runtime"].as_str().unwrap_or_default();
    match report.kind {
        Kind::Created => println!(
            "Created {}: version {version} is active ({mode}, {runtime}).",
            ui::bold(name)
        ),
        Kind::Updated {
            previous,
            code_changed,
            requirements_changed,
            same_as,
            with_requirements,
        } => {
            let mut notes = vec![match previous {
                Some(previous) => format!("was {previous}"),
                None => "no version was active".to_string(),
            }];
            match (same_as, code_changed, requirements_changed) {
                (Some((old, true)), _, _) if *with_requirements => {
                    notes.push(format!("same code and requirements as version {old}"))
                }
                (Some((old, true)), _, _) => notes.push(format!("same code as version {old}")),
                (Some((old, false)), _, true) => {
                    notes.push(format!("same code as version {old}, new requirements"))
                }
                (Some((old, false)), _, false) => notes.push(format!("same code as version {old}")),
                (None, false, true) => notes.push("new requirements, same code".into()),
                (None, true, true) => notes.push("new code and requirements".into()),
                _ => {}
            }
            println!(
                "Updated {}: version {version} is active ({}).",
                ui::bold(name),
                notes.join("; ")
            );
        }
        Kind::Unchanged {
            changed,
            with_requirements,
        } => {
            let what = if *with_requirements {
                "this code and these requirements"
            } else {
                "this code"
            };
            if changed.is_empty() {
                println!(
                    "{} is up to date: version {version} already has {what}.",
                    ui::bold(name)
                );
            } else {
                println!(
                    "Updated the {} of {} (the code and requirements are unchanged: version {version}).",
                    changed.join(", "),
                    ui::bold(name)
                );
            }
        }
    }
    if let Some(deployment) = report.deployment {
        let requirements = requirements_of(deployment);
        let log = deployment["build_log"].as_str().unwrap_or("");
        if !requirements.is_empty() {
            let how = if log.contains("is already built: reused") {
                ", already built: reused".to_string()
            } else {
                log.lines()
                    .rev()
                    .find_map(|line| line.split_once(" built in "))
                    .map(|(_, time)| format!(", built in {time}"))
                    .unwrap_or_default()
            };
            let which = match requirements.len() {
                1..=3 => requirements_short(&requirements, 80),
                n => format!("{n} ({})", requirements_short(&requirements, 50)),
            };
            println!(
                "Requirements installed: {which} (environment {}{how}).",
                environment_short(deployment),
            );
        } else if matches!(
            report.kind,
            Kind::Updated {
                requirements_changed: true,
                ..
            }
        ) {
            println!("Requirements: none (the base environment).");
        }
        if deployment["state"] == "ready" {
            ui::warn(&format!(
                "version {} built, but a newer version became active meanwhile: version {version} serves",
                text(&deployment["version"])
            ));
        }
        if args.verbose {
            print_build_log(name, deployment, None);
        }
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

/// Lines of the build log shown when a deploy fails (all of them with --verbose).
const LOG_TAIL: usize = 30;

fn print_failure(
    name: &str,
    record: &Value,
    deployment: &Value,
    report: &Report<'_>,
    args: &DeployArgs,
) {
    let number = text(&deployment["version"]);
    println!(
        "{} {}",
        ui::bold(&format!("Version {number} of {name} failed:")),
        deployment["error"]
            .as_str()
            .unwrap_or("(no error recorded)")
    );
    let requirements = requirements_of(deployment);
    if !requirements.is_empty() {
        println!("Requirements: {}", requirements_short(&requirements, 60));
    }
    print_build_log(name, deployment, (!args.verbose).then_some(LOG_TAIL));
    match record["version"].as_u64() {
        Some(active) => println!(
            "Version {active} is still active: {name} keeps serving it, nothing changed for its callers."
        ),
        None if record["hook_url"].is_string() => println!(
            "{name} has no active version: its hook answers 503 (no_active_version) until a deploy succeeds."
        ),
        None => println!(
            "{name} has no active version: it does not run until a deploy succeeds."
        ),
    }
    if report.settings_held_back {
        println!(
            "The settings of {} were not applied (they are for the new code): deploy again once it builds.",
            args.settings
                .as_ref()
                .map_or_else(|| "--secret-file".to_string(), |p| p.display().to_string())
        );
    }
}

/// The build log, or its last `tail` lines with where to read the rest.
fn print_build_log(name: &str, version: &Value, tail: Option<usize>) {
    let number = text(&version["version"]);
    let log = version["build_log"].as_str().unwrap_or("").trim_end();
    if log.is_empty() {
        println!("{} {}", ui::bold("Build log:"), ui::dim("(empty)"));
        return;
    }
    let lines: Vec<&str> = log.lines().collect();
    let skip = match tail {
        Some(tail) if lines.len() > tail => lines.len() - tail,
        _ => 0,
    };
    if skip > 0 {
        println!(
            "{} {}",
            ui::bold(&format!(
                "Build log (last {} of {} lines):",
                lines.len() - skip,
                lines.len()
            )),
            ui::dim(&format!(
                "all of it with --verbose, or `flowd versions {name} --log {number}`"
            ))
        );
    } else {
        println!("{}", ui::bold("Build log:"));
    }
    for line in &lines[skip..] {
        println!("  {line}");
    }
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

/// The `verify` and `idempotency_header` fields `--verify` and `--idempotency-header` ask for
/// (`none`: `null`, which removes them).
fn delivery_fields(args: &DeployArgs) -> Result<Vec<(&'static str, Value)>> {
    let mut fields = Vec::new();
    if let Some(verify) = &args.verify {
        let value = match verify.as_str() {
            "none" => Value::Null,
            text => json_arg(text, "--verify")?,
        };
        fields.push(("verify", value));
    }
    if let Some(header) = &args.idempotency_header {
        let value = match header.as_str() {
            "none" => Value::Null,
            name => json!(name),
        };
        fields.push(("idempotency_header", value));
    }
    Ok(fields)
}

/// Whether the workflow already has what a delivery field asks for (the server shows a header
/// name in lower case, and `verify` with its defaults written out).
fn same_delivery_field(field: &str, current: &Value, wanted: &Value) -> bool {
    match (field, current, wanted) {
        ("idempotency_header", Value::String(current), Value::String(wanted)) => {
            current.eq_ignore_ascii_case(wanted)
        }
        ("verify", Value::Object(current), Value::Object(wanted)) => wanted
            .iter()
            .all(|(key, value)| current.get(key) == Some(value)),
        _ => current == wanted,
    }
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

/// The requirements file, checked as the server checks it (so a refused line is named with
/// the file's own line number, before anything is sent).
fn read_requirements(path: &Path) -> Result<Requirements> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the requirements file {}", path.display()))?;
    Requirements::parse_text(&text).map_err(|error| requirements_error(path, &error.to_string()))
}

/// `requirements line 3: …` → `requirements.txt:3: …`.
fn requirements_error(path: &Path, message: &str) -> anyhow::Error {
    if let Some(rest) = message.strip_prefix("requirements line ") {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            let after = &rest[digits.len()..];
            let after = match after.strip_prefix(": ") {
                Some(after) => after.to_string(),
                None => format!("the line{after}"),
            };
            return anyhow!("{}:{digits}: {after}", path.display());
        }
    }
    anyhow!("{}: {message}", path.display())
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
