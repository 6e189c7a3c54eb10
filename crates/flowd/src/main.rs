//! The `flowd` binary: parses the command line and hands over to the library crates.
//!
//! `serve` runs the server; `run` executes a workflow locally through the same runtime and
//! contract mapping as the server; `migrate-store` copies a stopped node's SQLite store into
//! PostgreSQL; every other command is a client of the REST API.

mod api;
mod commands;
mod logging;
mod memory;
mod profile;
mod secret_input;
mod secret_key;
mod serve;
mod signature;
mod ui;

use clap::{Args, Parser, Subcommand};

use commands::{
    audit, backup, deploy, executions, invoke, keys, login, migrate_store, replay, rotate_key, run,
    settings, teams, versions, workflows,
};

/// flowd: a self-hosted, serverless runtime for HR data workflows.
#[derive(Parser)]
#[command(
    name = "flowd",
    version,
    about,
    after_help = "Start here:\n  flowd login --server http://localhost:8080 --api-key-file flowd-data/admin-api-key\n  flowd run hello.py --request '{\"name\": \"Ada\"}'\n  flowd deploy hello.py\n  flowd invoke hello --json '{\"name\": \"Ada\"}'\n  flowd logs hello --follow"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

/// Where the server is and how to authenticate: overrides the profile that `flowd login` saved.
#[derive(Args, Debug, Clone, Default)]
pub struct Global {
    /// The flowd server's URL [default: the one saved by `flowd login`].
    #[arg(long, env = "FLOWD_SERVER", global = true, value_name = "URL")]
    pub server: Option<String>,
    /// A file holding the API key [default: $FLOWD_API_KEY, else the key saved by `flowd login`].
    #[arg(long, env = "FLOWD_API_KEY_FILE", global = true, value_name = "PATH")]
    pub api_key_file: Option<std::path::PathBuf>,
    /// Refused: use --api-key-file or FLOWD_API_KEY (a key on the command line is readable by
    /// every process of the machine).
    #[arg(long = "api-key", global = true, hide = true, value_name = "KEY")]
    pub api_key_on_command_line: Option<String>,
}

impl Global {
    /// The API key given to this command: the content of `--api-key-file`, else `FLOWD_API_KEY`.
    pub fn given_api_key(&self) -> anyhow::Result<Option<String>> {
        self.refuse_a_key_on_the_command_line()?;
        match &self.api_key_file {
            Some(path) => secret_input::read_secret_file(path).map(Some),
            None => Ok(secret_input::from_env("FLOWD_API_KEY")),
        }
    }

    fn refuse_a_key_on_the_command_line(&self) -> anyhow::Result<()> {
        match self.api_key_on_command_line {
            Some(_) => Err(secret_input::refused_on_command_line(
                "--api-key",
                "--api-key-file PATH or the environment variable FLOWD_API_KEY",
            )),
            None => Ok(()),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: hook URLs, the REST API, the Python runtime.
    #[command(
        after_help = "Example:\n  flowd serve --listen 0.0.0.0:8080 --data-dir /var/lib/flowd"
    )]
    Serve(Box<serve::ServeArgs>),
    /// Save the server URL and API key in your profile (checked against the server first).
    #[command(
        after_help = "Example:\n  flowd login --server http://localhost:8080 --api-key-file flowd-data/admin-api-key"
    )]
    Login(login::LoginArgs),
    /// Forget the saved profile.
    #[command(after_help = "Example:\n  flowd logout")]
    Logout,
    /// Deploy a workflow file: create it, or add a new version to the workflow of that name.
    #[command(after_help = deploy::EXAMPLES)]
    Deploy(Box<deploy::DeployArgs>),
    /// List the workflows.
    #[command(
        visible_alias = "list",
        after_help = "Examples:\n  flowd ls\n  flowd ls --json | jq '.[].name'"
    )]
    Ls(workflows::LsArgs),
    /// Show a workflow: its active version (or why it has none), hook URL or schedule, limits, and its versions.
    #[command(
        after_help = "Examples:\n  flowd show hello\n  flowd show hello --code --version 1 > hello_v1.py"
    )]
    Show(workflows::ShowArgs),
    /// List a workflow's versions: state (active, failed, …), requirements, environment, error.
    #[command(after_help = versions::EXAMPLES)]
    Versions(versions::VersionsArgs),
    /// Delete a workflow, its versions, settings and executions.
    #[command(after_help = "Example:\n  flowd rm hello --yes")]
    Rm(workflows::RmArgs),
    /// Pause a workflow: its hook answers 503 and its schedule stops.
    #[command(after_help = "Example:\n  flowd pause hello")]
    Pause(workflows::NameArgs),
    /// Resume a paused workflow.
    #[command(after_help = "Example:\n  flowd resume hello")]
    Resume(workflows::NameArgs),
    /// Run a workflow now, on the server (a "manual" execution), and show how it ended.
    #[command(
        after_help = "Examples:\n  flowd trigger nightly-sync\n  flowd trigger hello --request '{\"name\": \"Ada\"}'"
    )]
    Trigger(workflows::TriggerArgs),
    /// Call a catch workflow's hook URL as a third-party service would.
    #[command(after_help = invoke::EXAMPLES)]
    Invoke(invoke::InvokeArgs),
    /// List a workflow's executions, newest last; --follow streams new ones.
    #[command(
        after_help = "Examples:\n  flowd logs hello\n  flowd logs hello --status error --limit 5\n  flowd logs hello --follow"
    )]
    Logs(executions::LogsArgs),
    /// Show one execution in full: status, error and traceback, output, settings changed.
    #[command(after_help = "Example:\n  flowd execution 0192f4a1-7c3e-7d2a-9b1e-2f6a8c0d4e5f")]
    Execution(executions::ExecutionArgs),
    /// Run stored requests again: one execution's, or a workflow's by status and time range.
    #[command(after_help = replay::EXAMPLES)]
    Replay(replay::ReplayArgs),
    /// List, set or unset a workflow's settings (secrets are shown masked).
    #[command(after_help = settings::EXAMPLES)]
    Settings(settings::SettingsArgs),
    /// Run a workflow file once, locally, exactly as the server would (no server needed).
    #[command(after_help = run::EXAMPLES)]
    Run(run::RunArgs),
    /// Create, list and revoke API keys (admin keys).
    #[command(after_help = keys::EXAMPLES)]
    Keys(keys::KeysArgs),
    /// Create, list, rename and delete teams (admin keys).
    #[command(after_help = teams::EXAMPLES)]
    Teams(teams::TeamsArgs),
    /// Show the audit log: who changed what, when.
    #[command(after_help = audit::EXAMPLES)]
    Audit(audit::AuditArgs),
    /// Copy a single node's SQLite store into an empty PostgreSQL database (stop the server first).
    #[command(name = "migrate-store", after_help = migrate_store::EXAMPLES)]
    MigrateStore(migrate_store::MigrateStoreArgs),
    /// Write a consistent copy of a data dir's store into a file, while its server serves.
    #[command(after_help = backup::BACKUP_EXAMPLES)]
    Backup(backup::BackupArgs),
    /// Lay a backup into a new data dir.
    #[command(after_help = backup::RESTORE_EXAMPLES)]
    Restore(backup::RestoreArgs),
    /// Re-encrypt every secret value of a (stopped) server's store under a new secret key.
    #[command(after_help = rotate_key::EXAMPLES)]
    RotateSecretKey(rotate_key::RotateArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve(_) | Command::Run(_)) {
        // A client command whose output is piped into `head` stops quietly when the pipe closes,
        // like any Unix tool (Rust ignores SIGPIPE and would panic in println! instead).
        // SAFETY: setting a signal's disposition to the default; no handler runs Rust code.
        let _ = unsafe {
            nix::sys::signal::signal(
                nix::sys::signal::Signal::SIGPIPE,
                nix::sys::signal::SigHandler::SigDfl,
            )
        };
    }
    if matches!(cli.command, Command::Serve(_)) {
        memory::configure_allocator();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("flowd: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let global = cli.global;
    let result = runtime.block_on(async move {
        global.refuse_a_key_on_the_command_line()?;
        match cli.command {
            Command::Serve(args) => serve::run(*args).await,
            Command::Login(args) => login::login(&global, args).await,
            Command::Logout => login::logout(),
            Command::Deploy(args) => deploy::deploy(&global, *args).await,
            Command::Ls(args) => workflows::ls(&global, args).await,
            Command::Show(args) => workflows::show(&global, args).await,
            Command::Versions(args) => versions::versions(&global, args).await,
            Command::Rm(args) => workflows::rm(&global, args).await,
            Command::Pause(args) => workflows::set_enabled(&global, args, false).await,
            Command::Resume(args) => workflows::set_enabled(&global, args, true).await,
            Command::Trigger(args) => workflows::trigger(&global, args).await,
            Command::Invoke(args) => invoke::invoke(&global, args).await,
            Command::Logs(args) => executions::logs(&global, args).await,
            Command::Execution(args) => executions::execution(&global, args).await,
            Command::Replay(args) => replay::replay(&global, args).await,
            Command::Settings(args) => settings::settings(&global, args).await,
            Command::Run(args) => run::run(args).await,
            Command::Keys(args) => keys::keys(&global, args).await,
            Command::Teams(args) => teams::teams(&global, args).await,
            Command::Audit(args) => audit::audit(&global, args).await,
            Command::MigrateStore(args) => migrate_store::migrate_store(args).await,
            Command::Backup(args) => backup::backup(args).await,
            Command::Restore(args) => backup::restore(args).await,
            Command::RotateSecretKey(args) => rotate_key::rotate(args).await,
        }
    });
    // Do not wait for tasks left behind (a blocked stdin reader, a spinner).
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            ui::error_line(&error);
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_has_an_example() {
        let cli = Cli::command();
        for command in cli.get_subcommands() {
            let help = command
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(
                help.contains("flowd "),
                "`flowd {}` has no example",
                command.get_name()
            );
        }
    }
}
