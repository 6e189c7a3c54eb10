//! flowd's benchmark suite: starts flowd (the `flowd serve` binary) and the baselines it is
//! compared with, drives each with the same bounded load on 127.0.0.1, and reports one table.
//! See BENCHMARKS.md at the repository root for the command, what each row stands for, and the
//! latest figures.

/// A progress line on stderr, prefixed with the seconds since the suite started.
#[macro_export]
macro_rules! progress {
    ($($arg:tt)*) => {
        eprintln!("[{:6.1} s] {}", $crate::elapsed().as_secs_f64(), format!($($arg)*))
    };
}

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Time since the suite (or the first progress line) started.
pub fn elapsed() -> Duration {
    STARTED.get_or_init(Instant::now).elapsed()
}

pub mod baselines;
pub mod flowd;
pub mod load;
pub mod machine;
pub mod postgres;
pub mod procfs;
mod pull;
pub mod report;
mod store;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use serde_json::json;

use crate::baselines::{FloorSpec, HOLD, HRFLOW, TRIVIAL, UPLOAD};
use crate::flowd::{catch_spec, Created, Flowd};
use crate::load::{Load, Target};
use crate::report::{MemoryReport, Outcome, Point, Report, Row};

/// A scenario that can be run alone (`--only`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// Many schedules on one node and how late their runs start.
    Pull,
    /// SQLite vs PostgreSQL, one node vs two (issue 16).
    Store,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Pull => "pull",
            Scenario::Store => "store",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// The whole suite (a few minutes).
    Full,
    /// Every scenario with a small budget (about a minute).
    Quick,
    /// A handful of requests, flowd and the HTTP ceiling only, no PyPI: what `cargo test` runs.
    Smoke,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
        }
    }
}

/// How much of everything a mode does.
#[derive(Clone, Debug)]
pub struct Budget {
    /// Calls at c=1 before measuring (a scenario's first call starts its warm instance).
    pub warmup: u64,
    pub c1: Load,
    pub c16: Load,
    /// Fresh workflows whose first call is timed (cold start of a warm instance).
    pub cold_samples: usize,
    /// The fork floor: forks per loop, and its time cap.
    pub floor_count: u64,
    pub floor_seconds: f64,
    pub pull_schedules: usize,
    pub pull_firing: usize,
    pub pull_window: Duration,
    /// Workflows firing every second in the warm window, and its length.
    pub pull_hot: usize,
    pub pull_hot_window: Duration,
    pub pull_idle: Duration,
    /// How long flowd is watched idle (CPU).
    pub idle: Duration,
    /// Executions held open to read their memory.
    pub fork_holders: usize,
    pub hold_seconds: f64,
    /// gunicorn, uvicorn, spawn per call, fork floor (need PyPI the first time).
    pub baselines: bool,
}

impl Budget {
    pub fn for_mode(mode: Mode) -> Budget {
        let c1 = |requests, secs| Load {
            concurrency: 1,
            requests,
            time: Duration::from_secs(secs),
        };
        let c16 = |requests, secs| Load {
            concurrency: 16,
            requests,
            time: Duration::from_secs(secs),
        };
        match mode {
            Mode::Full => Budget {
                warmup: 200,
                c1: c1(5_000, 8),
                c16: c16(100_000, 8),
                cold_samples: 3,
                floor_count: 5_000,
                floor_seconds: 8.0,
                pull_schedules: 10_000,
                pull_firing: 600,
                pull_window: Duration::from_secs(20),
                pull_hot: 32,
                pull_hot_window: Duration::from_secs(10),
                pull_idle: Duration::from_secs(5),
                idle: Duration::from_secs(3),
                fork_holders: 8,
                hold_seconds: 2.0,
                baselines: true,
            },
            Mode::Quick => Budget {
                warmup: 10,
                c1: c1(300, 1),
                c16: c16(10_000, 1),
                cold_samples: 1,
                floor_count: 300,
                floor_seconds: 1.0,
                pull_schedules: 500,
                pull_firing: 60,
                pull_window: Duration::from_secs(3),
                pull_hot: 8,
                pull_hot_window: Duration::from_secs(2),
                pull_idle: Duration::from_secs(1),
                idle: Duration::from_millis(500),
                fork_holders: 4,
                hold_seconds: 1.0,
                baselines: true,
            },
            Mode::Smoke => Budget {
                warmup: 2,
                c1: c1(5, 5),
                c16: c16(32, 5),
                cold_samples: 1,
                floor_count: 10,
                floor_seconds: 1.0,
                pull_schedules: 12,
                pull_firing: 4,
                pull_window: Duration::from_secs(2),
                pull_hot: 2,
                pull_hot_window: Duration::from_secs(2),
                pull_idle: Duration::from_millis(500),
                idle: Duration::from_millis(300),
                fork_holders: 2,
                hold_seconds: 1.0,
                baselines: false,
            },
        }
    }

    fn describe(&self) -> String {
        format!(
            "warm-up {} calls; c=1: {} calls or {} s; c=16: {} calls or {} s",
            self.warmup,
            self.c1.requests,
            self.c1.time.as_secs(),
            self.c16.requests,
            self.c16.time.as_secs()
        )
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub mode: Mode,
    /// The flowd binary; by default built with cargo from this workspace.
    pub flowd: Option<PathBuf>,
    /// Scratch root: per-run dirs, the baselines' virtualenv; must be reachable by the sandbox
    /// user (uid 65534) since flowd's Python environment lives under it by default.
    pub scratch: PathBuf,
    /// Where flowd builds its Python environment (default `<scratch>/runtimes`).
    pub runtime_dir: Option<PathBuf>,
    /// Keep the run's scratch dir (logs, databases).
    pub keep: bool,
    /// Run only this scenario (with the mode's budget); every scenario when `None`.
    pub only: Option<Scenario>,
}

impl Options {
    pub fn new(mode: Mode) -> Options {
        Options {
            mode,
            flowd: None,
            scratch: default_scratch(),
            runtime_dir: None,
            keep: false,
            only: None,
        }
    }
}

/// `/var/tmp/flowd-bench-<uid>`.
pub fn default_scratch() -> PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    PathBuf::from(format!("/var/tmp/flowd-bench-{uid}"))
}

/// Row order of the table.
const ORDER: [&str; 11] = [
    "ceiling",
    "flowd-fork",
    "flowd-reuse",
    "flowd-upload",
    "flowd-hrflow",
    "flowd-hrflow-cold",
    "gunicorn",
    "uvicorn",
    "spawn",
    "spawn-hrflow",
    "floor",
];

/// Runs the suite and answers its report.
pub async fn run(options: &Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let _ = STARTED.set(started);
    let budget = Budget::for_mode(options.mode);
    let mut report = Report {
        mode: options.mode.name().into(),
        machine: machine::describe(),
        load_before: machine::load_average(),
        started: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        budget: budget.describe(),
        ..Report::default()
    };
    crate::progress!("flowd-bench {} run on {}", report.mode, report.machine);
    crate::progress!("load average: {}", report.load_before);

    create_reachable_dir(&options.scratch)?;
    let run_dir = options.scratch.join(format!("run-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&run_dir);
    create_reachable_dir(&run_dir)?;
    let runtime_dir = options
        .runtime_dir
        .clone()
        .unwrap_or_else(|| options.scratch.join("runtimes"));
    create_reachable_dir(&runtime_dir)?;

    let binary = flowd::binary(options.flowd.as_deref())?;
    report.flowd = format!("{} (flowd serve, default options)", binary.display());

    if let Some(only) = options.only {
        report.notes.push(format!(
            "only the {} scenario was run (--only)",
            only.name()
        ));
    } else {
        request_response_phases(
            &binary,
            &run_dir,
            &runtime_dir,
            &options.scratch,
            &budget,
            &mut report,
        )
        .await;
    }

    let runs = |scenario: Scenario| options.only.is_none_or(|only| only == scenario);
    if runs(Scenario::Store) {
        crate::progress!("store: SQLite vs PostgreSQL, 1 node vs 2 …");
        match store::run(&binary, &run_dir.join("store"), &runtime_dir, &budget).await {
            Ok(store) => report.store = Some(store),
            Err(error) => report
                .notes
                .push(format!("the store scenario failed: {error:#}")),
        }
    }
    if runs(Scenario::Pull) {
        crate::progress!("pull …");
        match pull::run(&binary, &run_dir.join("flowd-pull"), &runtime_dir, &budget).await {
            Ok(pull) => report.pull = Some(pull),
            Err(error) => report
                .notes
                .push(format!("the pull scenario failed: {error:#}")),
        }
    }

    report.rows.sort_by_key(|row| {
        ORDER
            .iter()
            .position(|k| *k == row.key)
            .unwrap_or(ORDER.len())
    });
    report.load_after = machine::load_average();
    report.duration = started.elapsed();
    if options.keep {
        report
            .notes
            .push(format!("scratch kept in {}", run_dir.display()));
    } else {
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    Ok(report)
}

/// The ceiling, flowd's catch scenarios and (in a full run) the baselines: every row of the
/// latency and throughput table.
async fn request_response_phases(
    binary: &Path,
    run_dir: &Path,
    runtime_dir: &Path,
    scratch: &Path,
    budget: &Budget,
    report: &mut Report,
) {
    crate::progress!("ceiling: axum answering a fixed 200 …");
    report.rows.push(ceiling_row(budget).await);

    let catch = catch_phase(
        binary,
        &run_dir.join("flowd-catch"),
        runtime_dir,
        budget,
        report,
    )
    .await;
    let floor_spec = match catch {
        Ok(spec) => Some(spec),
        Err(error) => {
            report
                .notes
                .push(format!("the flowd catch scenarios failed: {error:#}"));
            None
        }
    };

    if budget.baselines {
        baselines_phase(scratch, run_dir, floor_spec.as_ref(), budget, report).await;
    } else {
        for (key, name) in [
            ("gunicorn", "gunicorn+Flask, 2 sync workers"),
            ("uvicorn", "uvicorn+Starlette, 2 workers"),
            ("spawn", "spawn per call (python -c)"),
            ("floor", "fork floor (Python microbenchmark)"),
        ] {
            report.rows.push(Row {
                key,
                name: name.into(),
                outcome: Outcome::Skipped(format!("not in a {} run", report.mode)),
                note: String::new(),
            });
        }
    }
}

/// A directory every user can traverse (flowd's sandbox user must reach the runtime under it).
fn create_reachable_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755))?;
    Ok(())
}

/// Warm-up, then c=1, then c=16.
async fn measure(target: &Target, budget: &Budget) -> (load::Measured, load::Measured) {
    let _ = load::run(
        target,
        Load {
            concurrency: 1,
            requests: budget.warmup,
            time: Duration::from_secs(60),
        },
    )
    .await;
    let c1 = load::run(target, budget.c1).await;
    let c16 = load::run(target, budget.c16).await;
    (c1, c16)
}

pub(crate) fn measured_row(
    key: &'static str,
    name: &str,
    note: String,
    c1: &load::Measured,
    c16: &load::Measured,
) -> Row {
    let (p1, p16) = (Point::from_measured(c1), Point::from_measured(c16));
    let outcome = if p1.is_none() && p16.is_none() {
        Outcome::Failed(
            c1.sample_failure
                .clone()
                .or_else(|| c16.sample_failure.clone())
                .unwrap_or_else(|| "no answer".into()),
        )
    } else {
        Outcome::Measured { c1: p1, c16: p16 }
    };
    Row {
        key,
        name: name.into(),
        outcome,
        note,
    }
}

fn failed_row(key: &'static str, name: &str, error: &anyhow::Error) -> Row {
    Row {
        key,
        name: name.into(),
        outcome: Outcome::Failed(format!("{error:#}")),
        note: String::new(),
    }
}

async fn ceiling_row(budget: &Budget) -> Row {
    let name = "HTTP ceiling: axum, fixed 200";
    match baselines::ceiling() {
        Ok(server) => {
            let target = Target::post(server.addr, "/hook", "application/json", "{}");
            let (c1, c16) = measure(&target, budget).await;
            measured_row(
                "ceiling",
                name,
                "in the bench process, own runtime".into(),
                &c1,
                &c16,
            )
        }
        Err(error) => failed_row("ceiling", name, &error),
    }
}

fn multipart_body(size: usize) -> (String, Bytes) {
    let boundary = "flowd-bench-boundary-5c1d2e";
    let mut body = Vec::with_capacity(size + 512);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nbench\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cv.pdf\"\r\n\
             Content-Type: application/pdf\r\n\r\n"
        )
        .as_bytes(),
    );
    // Bytes that never spell the boundary.
    let mut state: u32 = 0x2545_f491;
    for _ in 0..size {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        body.push(b'a' + (state % 26) as u8);
    }
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/form-data; boundary={boundary}"),
        Bytes::from(body),
    )
}

/// The warm instance a first call started: the one instance pid not in `before`.
fn new_instance(flowd: &Flowd, before: &HashSet<u32>) -> Option<u32> {
    flowd
        .python_tree()
        .instances
        .into_iter()
        .find(|pid| !before.contains(pid))
}

fn instance_set(flowd: &Flowd) -> HashSet<u32> {
    flowd.python_tree().instances.into_iter().collect()
}

/// A first call that has to start the workflow's warm instance, timed; answers its latency and
/// the instance it started. A deploy already started one (its import check): a new environment
/// variable makes the version's next call start another, as after an eviction.
async fn cold_call(flowd: &Flowd, created: &Created) -> anyhow::Result<(Duration, Option<u32>)> {
    static COLD: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COLD.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    flowd
        .api
        .patch(
            &created.id,
            &json!({"env": {"FLOWD_BENCH_COLD": n.to_string()}}),
        )
        .await?;
    let before = instance_set(flowd);
    let (status, latency) =
        load::single(&flowd.hook_json(created, &json!({"name": "bench"}))).await?;
    if !(200..300).contains(&status) {
        anyhow::bail!("the first call answered {status}");
    }
    Ok((latency, new_instance(flowd, &before)))
}

/// flowd's catch scenarios, memory and the leak check. Answers what the fork floor needs to
/// build a process like flowd's warm instance.
async fn catch_phase(
    binary: &Path,
    dir: &Path,
    runtime_dir: &Path,
    budget: &Budget,
    report: &mut Report,
) -> anyhow::Result<FloorSpec> {
    crate::progress!("flowd: starting {} …", binary.display());
    let flowd = Flowd::start(binary, dir, runtime_dir, &[]).await?;
    let pid = flowd.pid();
    let (python, environment) = flowd.api.runtime().await?;
    report.python = format!("{python}, environment {}", environment.display());

    let trivial = flowd
        .api
        .create_ok(&catch_spec("trivial", TRIVIAL, None))
        .await?;
    let reuse = flowd
        .api
        .create(&catch_spec("trivial-reuse", TRIVIAL, Some("reuse")))
        .await?;
    let upload = flowd
        .api
        .create_ok(&catch_spec("upload", UPLOAD, None))
        .await?;
    let hrflow = flowd
        .api
        .create_ok(&catch_spec("hrflow", HRFLOW, None))
        .await?;
    let mut colds = Vec::new();
    for i in 0..budget.cold_samples.saturating_sub(1) {
        colds.push(
            flowd
                .api
                .create_ok(&catch_spec(&format!("hrflow-cold-{i}"), HRFLOW, None))
                .await?,
        );
    }
    let hold = flowd.api.create_ok(&catch_spec("hold", HOLD, None)).await?;

    // Idle: started, workflows created, nothing called yet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut memory = MemoryReport {
        idle_rss_kb: procfs::rss_kb(pid),
        idle_cpu: procfs::cpu_share(pid, budget.idle).await,
        ..MemoryReport::default()
    };

    let tree = flowd.python_tree();
    let zygote = tree
        .zygote
        .context("flowd's Python base process not found")?;
    let floor_spec = floor_spec_of(zygote, &environment)?;

    // Trivial workflow, fork.
    crate::progress!("flowd: trivial workflow, fork …");
    let (cold, trivial_instance) = cold_call(&flowd, &trivial).await?;
    let target = flowd.hook_json(&trivial, &json!({"name": "bench"}));
    let (stop_sampler, sampler_stopped) = tokio::sync::watch::channel(false);
    let _ = load::run(
        &target,
        Load {
            concurrency: 1,
            requests: budget.warmup,
            time: Duration::from_secs(60),
        },
    )
    .await;
    let c1 = load::run(&target, budget.c1).await;
    let sampler = tokio::spawn(procfs::sample_peak_rss(
        pid,
        Duration::from_millis(50),
        sampler_stopped,
    ));
    let c16 = load::run(&target, budget.c16).await;
    let _ = stop_sampler.send(true);
    memory.load_peak_rss_kb = sampler.await.ok().filter(|&kb| kb > 0);
    report.rows.push(measured_row(
        "flowd-fork",
        "flowd catch, trivial, isolation fork",
        format!("first call (instance start) {}", report::fmt_duration(cold)),
        &c1,
        &c16,
    ));

    // Trivial workflow, reuse.
    let reuse_name = "flowd catch, trivial, isolation reuse";
    match reuse {
        Ok(created) => {
            crate::progress!("flowd: trivial workflow, reuse …");
            let target = flowd.hook_json(&created, &json!({"name": "bench"}));
            let (c1, c16) = measure(&target, budget).await;
            report.rows.push(measured_row(
                "flowd-reuse",
                reuse_name,
                String::new(),
                &c1,
                &c16,
            ));
        }
        Err((status, body)) => {
            let message = body["error"]["message"].as_str().unwrap_or("").to_string();
            report.rows.push(Row {
                key: "flowd-reuse",
                name: reuse_name.into(),
                outcome: if status == 422 {
                    Outcome::NotAvailable(format!("the server answered 422: {message}"))
                } else {
                    Outcome::Failed(format!("creating it answered {status}: {body}"))
                },
                note: String::new(),
            });
        }
    }

    // 1 MB multipart upload.
    crate::progress!("flowd: 1 MB multipart …");
    let (content_type, body) = multipart_body(1 << 20);
    let target = Target::post(flowd.addr, &upload.hook_path, &content_type, body);
    let (c1, c16) = measure(&target, budget).await;
    report.rows.push(measured_row(
        "flowd-upload",
        "flowd catch, 1 MiB multipart file, fork",
        "the workflow returns the file's length".into(),
        &c1,
        &c16,
    ));

    // hrflow imported: cold first calls, then warm calls.
    crate::progress!("flowd: workflow importing hrflow …");
    let mut cold_ns = Vec::new();
    let mut hrflow_instance = None;
    for created in std::iter::once(&hrflow).chain(colds.iter()) {
        match cold_call(&flowd, created).await {
            Ok((latency, instance)) => {
                cold_ns.push(latency.as_nanos() as u64);
                hrflow_instance = hrflow_instance.or(instance);
            }
            Err(error) => report
                .notes
                .push(format!("a cold hrflow call failed: {error:#}")),
        }
    }
    report.rows.push(Row {
        key: "flowd-hrflow-cold",
        name: "flowd catch, importing hrflow: cold first call".into(),
        outcome: Outcome::Measured {
            c1: Point::from_samples(&cold_ns, 0.0),
            c16: None,
        },
        note: format!(
            "first call of {} new workflow(s): warm instance forked, sandboxed, module run; p99 column = max",
            cold_ns.len()
        ),
    });
    let target = flowd.hook_json(&hrflow, &json!({"name": "bench"}));
    let (c1, c16) = measure(&target, budget).await;
    report.rows.push(measured_row(
        "flowd-hrflow",
        "flowd catch, importing hrflow: warm calls",
        String::new(),
        &c1,
        &c16,
    ));

    // Memory of the Python processes.
    memory.base = procfs::memory(zygote);
    if let Some(memory_of) = trivial_instance.and_then(procfs::memory) {
        memory
            .instances
            .push(("trivial workflow".into(), memory_of));
    }
    if let Some(memory_of) = hrflow_instance.and_then(procfs::memory) {
        memory
            .instances
            .push(("workflow importing hrflow".into(), memory_of));
    }
    crate::progress!("flowd: memory of forks in flight …");
    match fork_memory(&flowd, &hold, budget).await {
        Ok(forks) => memory.forks = forks,
        Err(error) => memory
            .notes
            .push(format!("forks in flight not measured: {error:#}")),
    }

    // Leak check: three more rounds of the c=16 load on the trivial workflow.
    crate::progress!("flowd: three c=16 rounds (leak check) …");
    let target = flowd.hook_json(&trivial, &json!({"name": "bench"}));
    for _ in 0..3 {
        let _ = load::run(&target, budget.c16).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        if let Some(rss) = procfs::rss_kb(pid) {
            memory.rounds_rss_kb.push(rss);
        }
    }
    memory.catch_hwm_kb = procfs::peak_rss_kb(pid);
    report.memory = memory;
    flowd.stop();
    Ok(floor_spec)
}

/// Builds the fork floor's recipe from the zygote's command line:
/// `python flowd_runner_….py zygote {"preload": [...]}`.
fn floor_spec_of(zygote: u32, environment: &Path) -> anyhow::Result<FloorSpec> {
    let args = procfs::cmdline(zygote).context("the zygote's command line")?;
    let runner = args
        .iter()
        .find(|a| a.contains("flowd_runner"))
        .context("no runner in the zygote's command line")?;
    let preload = args
        .iter()
        .rev()
        .find_map(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .and_then(|config| {
            config["preload"].as_array().map(|list| {
                list.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_else(|| vec!["requests".to_string()]);
    Ok(FloorSpec {
        python: environment.join("bin/python"),
        runner: PathBuf::from(runner),
        preload,
    })
}

/// Holds `fork_holders` executions of the trivial workflow open and reads their memory.
async fn fork_memory(
    flowd: &Flowd,
    hold: &Created,
    budget: &Budget,
) -> anyhow::Result<Vec<procfs::Memory>> {
    let (_, instance) = cold_call(flowd, hold).await?;
    let instance = instance.context("the hold workflow's warm instance not found")?;
    let target = flowd.hook_json(hold, &json!({"name": "bench", "hold": budget.hold_seconds}));
    let mut calls = Vec::new();
    for _ in 0..budget.fork_holders {
        let target = target.clone();
        calls.push(tokio::spawn(async move { load::single(&target).await }));
    }
    tokio::time::sleep(Duration::from_secs_f64(budget.hold_seconds / 2.0)).await;
    let forks: Vec<procfs::Memory> = procfs::children(instance)
        .into_iter()
        .filter_map(procfs::memory)
        .collect();
    for call in calls {
        let _ = call.await;
    }
    if forks.is_empty() {
        anyhow::bail!("no execution fork was found in flight");
    }
    Ok(forks)
}

async fn baselines_phase(
    scratch: &Path,
    run_dir: &Path,
    floor: Option<&FloorSpec>,
    budget: &Budget,
    report: &mut Report,
) {
    let apps = run_dir.join("apps");
    let venv = match tokio::task::block_in_place(|| baselines::ensure_venv(&scratch.join("venv"))) {
        Ok(python) => {
            report.baseline_versions = baselines::installed_versions(&python);
            Some(python)
        }
        Err(error) => {
            report.notes.push(format!(
                "the baselines' virtualenv could not be built: {error:#}"
            ));
            None
        }
    };
    let workers = 2;
    /// The hand-rolled servers: the same function called in-process.
    enum HandRolled {
        Gunicorn,
        Uvicorn,
    }
    for (server, key, name, note) in [
        (
            HandRolled::Gunicorn,
            "gunicorn",
            "gunicorn+Flask, 2 sync workers, in-process",
            "no keep-alive (sync workers close)",
        ),
        (
            HandRolled::Uvicorn,
            "uvicorn",
            "uvicorn+Starlette, 2 workers, in-process",
            "uvloop + httptools",
        ),
    ] {
        let Some(python) = &venv else {
            report.rows.push(Row {
                key,
                name: name.into(),
                outcome: Outcome::Failed("no virtualenv".into()),
                note: String::new(),
            });
            continue;
        };
        crate::progress!("baseline: {name} …");
        let started = match server {
            HandRolled::Gunicorn => baselines::gunicorn(python, &apps, workers).await,
            HandRolled::Uvicorn => baselines::uvicorn(python, &apps, workers).await,
        };
        match started {
            Ok(server) => {
                let target = baseline_hook(server.addr);
                let (c1, c16) = measure(&target, budget).await;
                report
                    .rows
                    .push(measured_row(key, name, note.into(), &c1, &c16));
                drop(server);
            }
            Err(error) => report.rows.push(failed_row(key, name, &error)),
        }
    }

    let Some(floor) = floor else {
        report.notes.push(
            "spawn per call and the fork floor need flowd's Python environment: not run".into(),
        );
        return;
    };
    for (key, name, code, note) in [
        (
            "spawn",
            "spawn per call: python -c, trivial",
            TRIVIAL,
            "fresh interpreter from flowd's venv per request",
        ),
        (
            "spawn-hrflow",
            "spawn per call: python -c, importing hrflow",
            HRFLOW,
            "",
        ),
    ] {
        crate::progress!("baseline: {name} …");
        match baselines::spawn_per_call(&floor.python, code) {
            Ok(server) => {
                let target = baseline_hook(server.addr);
                let small = Budget {
                    warmup: budget.warmup.min(5),
                    ..budget.clone()
                };
                let (c1, c16) = measure(&target, &small).await;
                report
                    .rows
                    .push(measured_row(key, name, note.into(), &c1, &c16));
            }
            Err(error) => report.rows.push(failed_row(key, name, &error)),
        }
    }

    let name = "fork floor: fork+exit+waitpid, same-size process";
    crate::progress!("baseline: {name} …");
    let floor_dir = run_dir.join("floor");
    let _ = std::fs::create_dir_all(&floor_dir);
    let procs = machine::cpus();
    let result = tokio::task::block_in_place(|| {
        baselines::fork_floor(
            floor,
            TRIVIAL,
            budget.floor_count,
            budget.floor_seconds,
            procs,
            &floor_dir,
        )
    });
    match result {
        Ok(measured) => {
            report.floor_rss_kb = Some(measured.rss_kb);
            report.rows.push(Row {
                key: "floor",
                name: name.into(),
                outcome: Outcome::Measured {
                    c1: Point::from_samples(&measured.serial_ns, 0.0),
                    // Throughput only: the latency columns stay empty.
                    c16: Some(Point {
                        p50: Duration::ZERO,
                        p99: Duration::ZERO,
                        rps: measured.parallel_per_second,
                        ok: 0,
                        failed: 0,
                        sample_failure: None,
                    }),
                },
                note: format!(
                    "c=1: one loop; req/s column: forks/s with {} loops at once (one per core); process RSS {:.1} MB; latency columns at c=16 not measured",
                    measured.procs,
                    measured.rss_kb as f64 / 1024.0
                ),
            });
        }
        Err(error) => report.rows.push(failed_row("floor", name, &error)),
    }
}

/// The request every baseline server is driven with: a POST of the same JSON body to `/hook`.
fn baseline_hook(addr: std::net::SocketAddr) -> Target {
    Target::post(
        addr,
        "/hook",
        "application/json",
        json!({"name": "bench"}).to_string(),
    )
}
