//! The `flowd` binary: parses the command line and hands over to the library crates.

mod serve;

use clap::{Parser, Subcommand};

/// flowd: a self-hosted, serverless runtime for HR data workflows.
#[derive(Parser)]
#[command(name = "flowd", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server: hook URLs, the REST API, the Python runtime.
    ///
    /// Example: flowd serve --listen 0.0.0.0:8080 --data-dir /var/lib/flowd
    Serve(serve::ServeArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
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
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve::run(args).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("flowd: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
