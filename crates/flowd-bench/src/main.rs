//! `cargo run --release -p flowd-bench -- [--quick] [--only pull]`: see BENCHMARKS.md.

use std::path::PathBuf;

use clap::Parser;
use flowd_bench::{load, Mode, Options, Scenario};

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
    /// Run only this scenario, with the mode's budget (`pull`: the 10,000 schedules of a full
    /// run in about two minutes; `store`: SQLite vs PostgreSQL, one node vs two).
    #[arg(long, value_enum, value_name = "SCENARIO")]
    only: Option<OnlyScenario>,
    /// Also write the report to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Instead of the suite, drive this URL (http://127.0.0.1:PORT/PATH) with POSTs of `--json`
    /// and print the latency quantiles: the load generator alone, for profiling.
    #[arg(long, value_name = "URL")]
    drive: Option<String>,
    /// With `--drive`: the JSON body.
    #[arg(long, default_value = "{}")]
    json: String,
    /// With `--drive`: concurrent connections.
    #[arg(short = 'c', long, default_value_t = 1)]
    concurrency: usize,
    /// With `--drive`: requests in all.
    #[arg(short = 'n', long, default_value_t = 1000)]
    requests: u64,
    /// With `--drive`: time cap in seconds.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
}

/// The scenarios `--only` accepts.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum OnlyScenario {
    Pull,
    Store,
}

impl From<OnlyScenario> for Scenario {
    fn from(only: OnlyScenario) -> Scenario {
        match only {
            OnlyScenario::Pull => Scenario::Pull,
            OnlyScenario::Store => Scenario::Store,
        }
    }
}

fn drive(args: &Args, url: &str) -> anyhow::Result<()> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("--drive takes an http:// URL"))?;
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let addr: std::net::SocketAddr = authority.parse()?;
    let path = if path.is_empty() { "/" } else { path };
    let target = load::Target::post(addr, path, "application/json", args.json.clone());
    let spec = load::Load {
        concurrency: args.concurrency,
        requests: args.requests,
        time: std::time::Duration::from_secs(args.seconds),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let measured = runtime.block_on(load::run(&target, spec));
    let q = |q: f64| {
        measured
            .quantile(q)
            .map_or("n/a".into(), flowd_bench::report::fmt_duration)
    };
    println!(
        "{} ok, {} non-2xx, {} errors in {:.2} s: {:.0} req/s; p50 {}, p90 {}, p99 {}, max {}{}",
        measured.ok,
        measured.non_2xx,
        measured.errors,
        measured.elapsed.as_secs_f64(),
        measured.throughput(),
        q(0.5),
        q(0.9),
        q(0.99),
        q(1.0),
        measured
            .sample_failure
            .as_ref()
            .map_or(String::new(), |f| format!(" (first failure: {f})"))
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(url) = args.drive.clone() {
        return drive(&args, &url);
    }
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
    options.only = args.only.map(Scenario::from);
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
