//! `flowd run FILE.py`: one execution, locally, with no server — through the same Python runtime,
//! sandbox and contract mapping (`flowd_engine::executor::conclude`) as the server's executions.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _, Result};
use clap::Args;
use flowd_core::settings::{self, SettingsChange};
use flowd_core::workflow::{ExecutionStatus, Mode, Trigger};
use flowd_core::PyValue;
use flowd_engine::executor::{conclude, Conclusion, Context};
use flowd_runtime::{Job, JobContext, OutputLimits, Runtime, RuntimeConfig};
use serde_json::{json, Map, Value};

use super::args::{json_object_arg, read_file, secret_settings, ModeArg};
use super::format::code_error;
use crate::{signature, ui};

pub const EXAMPLES: &str = "\
Examples:
  flowd run hello.py                                    # catch: _request is {}
  flowd run hello.py --request '{\"name\": \"Ada\", \"Content-Type\": \"application/json\"}'
  flowd run hello.py --request @event.json --settings @settings.json
  flowd run sync.py --settings '{\"cursor\": 0}' --secret-file API_KEY=api_key.txt
  flowd run sync.py --json | jq .settings
  flowd run hook.py --request @event.json --raw-body @event.json   # context.raw_body

--request is the `_request` dict itself (headers and body fields merged, as a hook call would
build it). Prints the HTTP response a caller would get (catch), the captured output and the
settings change set: what the server would persist, or why it would persist nothing. Exits
non-zero unless the execution succeeded. Nothing is stored anywhere.

The Python environment is built on first use in FLOWD_RUNTIME_DIR [default: ~/.cache/flowd/runtimes,
or /var/tmp/flowd-runtimes when run as root, since user code then runs as uid 65534].";

#[derive(Args, Debug)]
pub struct RunArgs {
    /// The workflow's Python file.
    pub file: PathBuf,
    /// Catch: the `_request` dict, as JSON or @file [default: {}].
    #[arg(long, value_name = "JSON|@FILE")]
    pub request: Option<String>,
    /// Catch: the body as received, for a workflow declaring `context` (`context.raw_body`),
    /// as text or @file, byte for byte [default: empty].
    #[arg(long, value_name = "TEXT|@FILE")]
    pub raw_body: Option<String>,
    /// The settings the execution starts from, as JSON or @file [default: {}].
    #[arg(long, value_name = "JSON|@FILE")]
    pub settings: Option<String>,
    /// A secret setting (masked in what is shown): its key and a file holding its value; repeatable.
    #[arg(long = "secret-file", value_name = "KEY=PATH")]
    pub secret_files: Vec<String>,
    /// Refused: use --secret-file (a value on the command line is readable by every process of
    /// the machine).
    #[arg(long = "secret", hide = true, value_name = "KEY=VALUE")]
    pub secrets_on_command_line: Vec<String>,
    /// catch or pull [default: guessed from the `workflow` signature].
    #[arg(long, value_enum)]
    pub mode: Option<ModeArg>,
    /// Time limit, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    pub timeout: u32,
    /// Memory limit, in MiB.
    #[arg(long, value_name = "MB", default_value_t = 512)]
    pub memory: u32,
    /// Where the Python environment is built and kept.
    #[arg(long, env = "FLOWD_RUNTIME_DIR", value_name = "DIR")]
    pub runtime_dir: Option<PathBuf>,
    /// The Python interpreter [default: the first usable python3].
    #[arg(long, env = "FLOWD_PYTHON", value_name = "PATH")]
    pub python: Option<PathBuf>,
    /// Print the outcome as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: RunArgs) -> Result<()> {
    let code = read_file(&args.file)?;
    let mode: Mode = match args.mode {
        Some(mode) => mode.into(),
        None => signature::guess_mode(&code).ok_or_else(|| {
            anyhow!(
                "cannot tell the mode of {} from its `def workflow(` line: pass --mode catch (def workflow(_request, settings)) or --mode pull (def workflow(settings))",
                args.file.display()
            )
        })?,
    };
    let request = match (&args.request, mode) {
        (Some(_), Mode::Pull) => {
            return Err(anyhow!(
                "{} is a pull workflow (def workflow(settings)): it takes no --request",
                args.file.display()
            ))
        }
        (Some(text), Mode::Catch) => Some(PyValue::from_json(&Value::Object(json_object_arg(
            text,
            "--request",
        )?))),
        (None, Mode::Catch) => Some(PyValue::Dict(Vec::new())),
        (None, Mode::Pull) => None,
    };
    let mut snapshot = match &args.settings {
        Some(text) => json_object_arg(text, "--settings")?,
        None => Map::new(),
    };
    let secret_pairs = secret_settings(&args.secret_files, &args.secrets_on_command_line)?;
    let secret_keys: Vec<String> = secret_pairs.iter().map(|(k, _)| k.clone()).collect();
    for (key, value) in secret_pairs {
        snapshot.insert(key, Value::String(value));
    }
    let secret_texts = settings::secret_texts(&snapshot, &secret_keys);

    let tmp = tempfile::Builder::new()
        .prefix("flowd-run-")
        .tempdir()
        .context("cannot create a temporary directory")?;
    // The sandbox user (when run as root) must be able to reach its own directory inside.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711))
        .context("cannot prepare the temporary directory")?;
    let config = RuntimeConfig {
        runtime_dir: args.runtime_dir.clone().unwrap_or_else(default_runtime_dir),
        tmp_dir: tmp.path().join("sandbox"),
        python: args.python.clone(),
        sandbox_user: None,
        preload: vec!["requests".into()],
        limits: OutputLimits::default(),
        max_warm_instances: 1,
        warm_memory_mb: 4096,
        build: flowd_runtime::BuildConfig::default(),
        reuse_pool_size: 1,
        sandbox: Default::default(),
        egress: Default::default(),
    };

    let spinner = ui::spinner("Starting the Python runtime…");
    let progress = {
        let spinner = spinner.clone();
        move |line: &str| {
            if spinner.is_hidden() {
                eprintln!("{line}");
            } else {
                spinner.set_message(line.to_string());
            }
        }
    };
    let runtime = Runtime::start(config, &progress).await;
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(error) => {
            spinner.finish_and_clear();
            return Err(anyhow!("cannot start the Python runtime: {error}"));
        }
    };
    spinner.set_message(format!("Checking {}…", args.file.display()));
    let valid = runtime.validate(&code, mode).await;
    let valid = match valid {
        Ok(valid) => valid,
        Err(error) => {
            spinner.finish_and_clear();
            return Err(anyhow!("the Python runtime failed: {error}"));
        }
    };
    if let Err(error) = valid {
        spinner.finish_and_clear();
        return Err(code_error(
            &args.file,
            error.line.into(),
            error.column.into(),
            &error.message,
        ));
    }
    spinner.set_message(format!("Running {}…", args.file.display()));
    let execution_id = uuid::Uuid::now_v7().to_string();
    let job = Job {
        requirements: None,
        version_key: format!("local-{execution_id}"),
        code: Arc::from(code.as_str()),
        mode,
        request,
        settings_json: Value::Object(snapshot.clone()).to_string(),
        timeout: Duration::from_secs(u64::from(args.timeout.max(1))),
        memory_mb: args.memory,
        env: Vec::new(),
        isolation: flowd_core::workflow::Isolation::Fork,
        context: Some(local_context(&args, mode, &execution_id)?),
        egress_allow: Vec::new(),
    };
    let execution = runtime.execute(&job).await;
    spinner.finish_and_clear();
    drop(runtime);
    drop(tmp);
    let duration = execution.duration;
    let conclusion = conclude(
        execution,
        &Context {
            execution_id: &execution_id,
            mode,
            timeout_s: args.timeout.max(1),
            snapshot: &snapshot,
            secrets: &secret_texts,
        },
    );
    let change = conclusion
        .settings_changed
        .as_ref()
        .map(|change| change.masked(&secret_keys));
    if args.json {
        ui::print_json(&outcome_json(
            &conclusion,
            mode,
            &execution_id,
            duration,
            change.as_ref(),
        ));
    } else {
        print_outcome(&conclusion, mode, &execution_id, duration, change.as_ref());
    }
    if conclusion.status != ExecutionStatus::Success {
        let reason = match &conclusion.error {
            Some(error) => format!(": {}", error.kind),
            None => String::new(),
        };
        return Err(anyhow!(
            "{} ended with status {}{reason}",
            args.file.display(),
            conclusion.status
        ));
    }
    Ok(())
}

/// Where `flowd run` keeps Python environments by default.
fn default_runtime_dir() -> PathBuf {
    let runs_as_root = flowd_runtime::sandbox::choose_user(None).is_some();
    if runs_as_root {
        // User code runs as uid 65534, which must reach the environment: not under /root.
        let var_tmp = Path::new("/var/tmp");
        let base = if var_tmp.is_dir() {
            var_tmp.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        return base.join("flowd-runtimes");
    }
    dirs::cache_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("flowd")
        .join("runtimes")
}

/// The response headers as the server sends them: the reply's, and `X-Execution-Id`.
/// What a workflow's `context` parameter shows of a local run: a manual run of version 0 named
/// after its file, with `--raw-body` as the body a hook call would have received.
fn local_context(args: &RunArgs, mode: Mode, execution_id: &str) -> Result<JobContext> {
    let raw_body = match (&args.raw_body, mode) {
        (Some(_), Mode::Pull) => {
            return Err(anyhow!(
                "{} is a pull workflow (def workflow(settings)): it takes no --raw-body",
                args.file.display()
            ))
        }
        (Some(text), Mode::Catch) => match text.strip_prefix('@') {
            Some(path) => std::fs::read(path).with_context(|| format!("cannot read {path}"))?,
            None => text.clone().into_bytes(),
        },
        (None, _) => Vec::new(),
    };
    let started_at = chrono::Utc::now().timestamp_millis();
    Ok(JobContext {
        raw_body: raw_body.into(),
        method: (mode == Mode::Catch).then(|| "POST".to_string()),
        query_string: (mode == Mode::Catch).then(String::new),
        execution_id: execution_id.to_string(),
        workflow: args
            .file
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_default(),
        version: 0,
        trigger: Trigger::Manual,
        attempt: 1,
        fire_time_ms: None,
        deadline_ms: started_at + i64::from(args.timeout.max(1)) * 1000,
    })
}

fn response_headers(conclusion: &Conclusion, execution_id: &str) -> Vec<(String, String)> {
    let mut headers = conclusion.reply.headers.clone();
    headers.push(("X-Execution-Id".into(), execution_id.to_string()));
    headers
}

fn reason(status: u16) -> &'static str {
    reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

/// Why nothing would be persisted; `None` when the server would persist the change.
fn nothing_persisted(conclusion: &Conclusion, change: Option<&SettingsChange>) -> Option<String> {
    if conclusion.persist.is_some() {
        return None;
    }
    Some(match (conclusion.status, change) {
        (ExecutionStatus::Success, _) => "unchanged: nothing would be persisted".into(),
        (_, _) => match &conclusion.error {
            Some(error) if error.kind == "InvalidSettings" => {
                format!("nothing would be persisted: {}", error.message)
            }
            Some(error) => format!(
                "nothing would be persisted: the execution ended with status {} ({})",
                conclusion.status, error.kind
            ),
            None => format!(
                "nothing would be persisted: the execution ended with status {}",
                conclusion.status
            ),
        },
    })
}

fn print_outcome(
    conclusion: &Conclusion,
    mode: Mode,
    execution_id: &str,
    duration: Duration,
    change: Option<&SettingsChange>,
) {
    println!(
        "{} {} ({}, {} mode, local execution {execution_id})",
        ui::bold("Status:"),
        ui::status(conclusion.status.as_str()),
        ui::duration_ms(duration.as_millis() as u64),
        mode
    );
    if mode == Mode::Catch {
        let status = conclusion.reply.status;
        println!(
            "{} {}",
            ui::bold("Response:"),
            ui::http_status(
                status,
                &format!("{status} {}", reason(status)),
                ui::color_stdout()
            )
        );
        for (name, value) in response_headers(conclusion, execution_id) {
            println!("  {name}: {value}");
        }
        let body = String::from_utf8_lossy(&conclusion.reply.body);
        if !body.is_empty() {
            println!();
            for line in body.lines() {
                println!("  {line}");
            }
        }
    }
    if conclusion.logs.is_empty() {
        println!("{} {}", ui::bold("Output:"), ui::dim("(none)"));
    } else {
        println!("{}", ui::bold("Output:"));
        for line in conclusion.logs.trim_end_matches('\n').lines() {
            println!("  {line}");
        }
        if conclusion.logs_truncated {
            println!("  {}", ui::dim("(truncated: the output cap was reached)"));
        }
    }
    match nothing_persisted(conclusion, change) {
        Some(why) => println!("{} {why}", ui::bold("Settings:")),
        None => println!("{} the server would persist:", ui::bold("Settings:")),
    }
    if let Some(change) = change.filter(|c| !c.is_empty() && conclusion.persist.is_some()) {
        for (key, value) in &change.added {
            println!("  + {key} = {}", ui::truncate(&value.to_string(), 100));
        }
        for (key, value) in &change.changed {
            println!("  ~ {key} = {}", ui::truncate(&value.to_string(), 100));
        }
        for key in &change.removed {
            println!("  - {key}");
        }
    }
    if !conclusion.warnings.is_empty() {
        println!("{}", ui::bold("Warnings:"));
        for warning in &conclusion.warnings {
            println!("  - {warning}");
        }
    }
    if let Some(error) = &conclusion.error {
        println!("{} {}: {}", ui::bold("Error:"), error.kind, error.message);
        if let Some(traceback) = &error.traceback {
            for line in traceback.trim_end().lines() {
                println!("  {line}");
            }
        }
    }
}

fn outcome_json(
    conclusion: &Conclusion,
    mode: Mode,
    execution_id: &str,
    duration: Duration,
    change: Option<&SettingsChange>,
) -> Value {
    let response = (mode == Mode::Catch).then(|| {
        let headers: Vec<Value> = response_headers(conclusion, execution_id)
            .into_iter()
            .map(|(name, value)| json!([name, value]))
            .collect();
        json!({
            "status": conclusion.reply.status,
            "headers": headers,
            "body": String::from_utf8_lossy(&conclusion.reply.body),
        })
    });
    json!({
        "execution_id": execution_id,
        "mode": mode,
        "status": conclusion.status,
        "duration_ms": duration.as_millis() as u64,
        "response": response,
        "output": conclusion.logs,
        "output_truncated": conclusion.logs_truncated,
        "warnings": conclusion.warnings,
        "error": conclusion.error.as_ref().map(|e| json!({"type": e.kind, "message": e.message, "traceback": e.traceback})),
        "settings": {
            "would_persist": conclusion.persist.is_some(),
            "change": change,
            "why_not": nothing_persisted(conclusion, change),
        },
    })
}
