//! `cargo run --release -p flowd-bench -- [--quick]`: see BENCHMARKS.md.

use std::path::PathBuf;

use clap::Parser;
use flowd_bench::{Mode, Options};

/// flowd's benchmark suite: flowd side by side with gunicorn+Flask, uvicorn+Starlette, a fresh
/// interpreter per call, the fork floor and the HTTP ceiling, on 127.0.0.1. Prints one Markdown
/// report on stdout (progress on stderr).
#[derive(Parser, Debug)]
#[command(name = "flowd-bench")]
struct Args {
    /// About a minute: every scenario with a small budget.
    #[arg(long, conflicts_with = "smoke")]
    quick: bool,
    /// A handful of requests, flowd and the HTTP ceiling only (what `cargo test` runs).
    #[arg(long)]
    smoke: bool,
    /// The flowd binary to measure [default: built by cargo from this workspace].
    #[arg(long)]
    flowd: Option<PathBuf>,
    /// Scratch directory (must be traversable by uid 65534) [default: /var/tmp/flowd-bench-<uid>].
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Where flowd builds its Python environment [default: <scratch>/runtimes].
    #[arg(long)]
    runtime_dir: Option<PathBuf>,
    /// Keep the run's scratch directory (flowd's logs and databases).
    #[arg(long)]
    keep: bool,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mode = if args.smoke {
        Mode::Smoke
    } else if args.quick {
        Mode::Quick
    } else {
        Mode::Full
    };
    let mut options = Options::new(mode);
    options.flowd = args.flowd;
    if let Some(scratch) = args.scratch {
        options.scratch = scratch;
    }
    options.runtime_dir = args.runtime_dir;
    options.keep = args.keep;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = runtime.block_on(flowd_bench::run(&options))?;
    let text = report.render();
    print!("{text}");
    if let Some(path) = args.out {
        std::fs::write(&path, &text)?;
    }
    Ok(())
}
