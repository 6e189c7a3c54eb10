//! What a run measured, and its rendering as one Markdown report (the table BENCHMARKS.md quotes).

use std::fmt::Write as _;
use std::time::Duration;

use crate::load::Measured;
use crate::procfs::Memory;

/// One load level's figures.
#[derive(Clone, Debug)]
pub struct Point {
    pub p50: Duration,
    pub p99: Duration,
    pub rps: f64,
    pub ok: u64,
    /// Non-2xx answers and errors.
    pub failed: u64,
    pub sample_failure: Option<String>,
}

impl Point {
    pub fn from_measured(m: &Measured) -> Option<Point> {
        Some(Point {
            p50: m.quantile(0.5)?,
            p99: m.quantile(0.99)?,
            rps: m.throughput(),
            ok: m.ok,
            failed: m.non_2xx + m.errors,
            sample_failure: m.sample_failure.clone(),
        })
    }

    /// From single samples (ns).
    pub fn from_samples(samples_ns: &[u64], rps: f64) -> Option<Point> {
        let mut histogram = crate::load::new_histogram();
        for &sample in samples_ns {
            let _ = histogram.record(sample.clamp(1_000, 600_000_000_000));
        }
        (!histogram.is_empty()).then(|| Point {
            p50: Duration::from_nanos(histogram.value_at_quantile(0.5)),
            p99: Duration::from_nanos(histogram.value_at_quantile(0.99)),
            rps,
            ok: histogram.len(),
            failed: 0,
            sample_failure: None,
        })
    }
}

#[derive(Clone, Debug)]
pub enum Outcome {
    Measured {
        c1: Option<Point>,
        c16: Option<Point>,
    },
    /// The server refused the scenario (e.g. `isolation: "reuse"` answered 422).
    NotAvailable(String),
    /// Not run in this mode.
    Skipped(String),
    Failed(String),
}

/// A row of the main table.
#[derive(Clone, Debug)]
pub struct Row {
    /// Stable key the ratios refer to.
    pub key: &'static str,
    pub name: String,
    pub outcome: Outcome,
    pub note: String,
}

impl Row {
    pub fn c1(&self) -> Option<&Point> {
        match &self.outcome {
            Outcome::Measured { c1, .. } => c1.as_ref(),
            _ => None,
        }
    }

    pub fn c16(&self) -> Option<&Point> {
        match &self.outcome {
            Outcome::Measured { c16, .. } => c16.as_ref(),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct Quantiles {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub count: usize,
}

impl Quantiles {
    pub fn of(mut values_ms: Vec<f64>) -> Option<Quantiles> {
        if values_ms.is_empty() {
            return None;
        }
        values_ms.sort_by(f64::total_cmp);
        let at = |q: f64| {
            let index = ((values_ms.len() as f64 - 1.0) * q).round() as usize;
            values_ms[index.min(values_ms.len() - 1)]
        };
        Some(Quantiles {
            p50_ms: at(0.5),
            p99_ms: at(0.99),
            max_ms: values_ms[values_ms.len() - 1],
            count: values_ms.len(),
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct PullReport {
    pub schedules: usize,
    pub firing: usize,
    pub window_s: f64,
    /// Workflows firing every second in the warm window.
    pub hot: usize,
    pub hot_window_s: f64,
    pub hot_ran: usize,
    pub hot_skipped: usize,
    pub hot_claim: Option<Quantiles>,
    pub hot_function: Option<Quantiles>,
    pub create_s: f64,
    /// Executions recorded for the firing workflows in the window.
    pub ran: usize,
    pub skipped: usize,
    /// Firing workflows with no execution at all after the window.
    pub missing: usize,
    /// fire_at → started_at of the execution record.
    pub claim: Option<Quantiles>,
    /// fire_at → the time `workflow()` started (written by the workflow into its settings).
    pub function: Option<Quantiles>,
    /// flowd's CPU share while idle with every schedule loaded.
    pub idle_cpu: Option<f64>,
    pub idle_window_s: f64,
    /// flowd's CPU share during the firing window.
    pub busy_cpu: Option<f64>,
    pub rss_kb: Option<u64>,
    pub notes: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct MemoryReport {
    /// flowd's RSS after start and workflow creation, before any call.
    pub idle_rss_kb: Option<u64>,
    /// flowd's CPU share while idle (catch server).
    pub idle_cpu: Option<f64>,
    /// Peak RSS sampled during the c=16 trivial load.
    pub load_peak_rss_kb: Option<u64>,
    /// flowd's peak RSS over every catch scenario (`VmHWM`), 1 MiB uploads at c=16 included.
    pub catch_hwm_kb: Option<u64>,
    pub base: Option<Memory>,
    /// Warm instances by workflow.
    pub instances: Vec<(String, Memory)>,
    /// Execution forks in flight (trivial workflow held open).
    pub forks: Vec<Memory>,
    /// flowd's RSS after each of three consecutive c=16 rounds.
    pub rounds_rss_kb: Vec<u64>,
    pub notes: Vec<String>,
}

/// The store scenario: the same workflows on SQLite, PostgreSQL, and two PostgreSQL nodes.
#[derive(Clone, Debug, Default)]
pub struct StoreReport {
    /// The PostgreSQL server and its settings.
    pub postgres: String,
    pub rows: Vec<Row>,
    pub nodes: Vec<NodeMemory>,
    pub notes: Vec<String>,
}

impl StoreReport {
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }
}

/// One flowd node's memory after its scenarios.
#[derive(Clone, Debug)]
pub struct NodeMemory {
    pub node: String,
    pub rss_kb: Option<u64>,
    /// VmHWM.
    pub peak_kb: Option<u64>,
}

#[derive(Clone, Debug, Default)]
pub struct Report {
    pub mode: String,
    pub machine: String,
    pub load_before: String,
    pub load_after: String,
    pub started: String,
    pub duration: Duration,
    pub flowd: String,
    pub python: String,
    pub baseline_versions: String,
    pub budget: String,
    pub rows: Vec<Row>,
    pub memory: MemoryReport,
    pub pull: Option<PullReport>,
    pub store: Option<StoreReport>,
    pub floor_rss_kb: Option<u64>,
    pub notes: Vec<String>,
}

pub fn fmt_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0} µs")
    } else if us < 10_000_000.0 {
        format!("{:.2} ms", us / 1000.0)
    } else {
        format!("{:.1} s", us / 1e6)
    }
}

fn fmt_ms(ms: f64) -> String {
    fmt_duration(Duration::from_secs_f64(ms.max(0.0) / 1000.0))
}

fn fmt_mb(kb: u64) -> String {
    format!("{:.1} MB", kb as f64 / 1024.0)
}

fn fmt_rps(rps: f64) -> String {
    if rps >= 100.0 {
        format!("{rps:.0}")
    } else {
        format!("{rps:.1}")
    }
}

fn fmt_cpu(share: Option<f64>) -> String {
    share.map_or("n/a".into(), |s| format!("{:.2} % of a core", s * 100.0))
}

impl Report {
    pub fn row(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# flowd-bench ({} run)\n", self.mode);
        let _ = writeln!(out, "- machine: {}", self.machine);
        let _ = writeln!(
            out,
            "- load average: {} before, {} after (1, 5, 15 min)",
            self.load_before, self.load_after
        );
        let _ = writeln!(
            out,
            "- started {}, took {:.0} s; budget per scenario: {}",
            self.started,
            self.duration.as_secs_f64(),
            self.budget
        );
        let _ = writeln!(out, "- flowd: {}", self.flowd);
        let _ = writeln!(out, "- Python: {}", self.python);
        if !self.baseline_versions.is_empty() {
            let _ = writeln!(out, "- baselines: {}", self.baseline_versions);
        }
        out.push('\n');
        self.render_main(&mut out);
        self.render_ratios(&mut out);
        if let Some(pull) = &self.pull {
            render_pull(&mut out, pull);
        }
        if let Some(store) = &self.store {
            render_store(&mut out, store);
        }
        self.render_memory(&mut out);
        self.render_targets(&mut out);
        if !self.notes.is_empty() {
            let _ = writeln!(out, "\n## Notes\n");
            for note in &self.notes {
                let _ = writeln!(out, "- {note}");
            }
        }
        out
    }

    fn render_main(&self, out: &mut String) {
        let _ = writeln!(out, "## Latency and throughput\n");
        let _ = writeln!(out, "{ROW_HEADER}");
        for row in &self.rows {
            render_row(out, row);
        }
        out.push('\n');
    }

    fn render_ratios(&self, out: &mut String) {
        let _ = writeln!(out, "## Ratios\n");
        let _ = writeln!(
            out,
            "| ratio | req/s at c=16 | p50 at c=1 |\n|---|---:|---:|"
        );
        let mut any = false;
        for (flowd_key, flowd_name) in
            [("flowd-fork", "flowd fork"), ("flowd-reuse", "flowd reuse")]
        {
            let Some(flowd) = self.row(flowd_key) else {
                continue;
            };
            if let (Some(floor), true) = (self.row("floor"), flowd_key == "flowd-fork") {
                let throughput = match (flowd.c16(), floor.c16()) {
                    (Some(f), Some(b)) if b.rps > 0.0 => format!("{:.0} %", f.rps / b.rps * 100.0),
                    _ => "n/a".into(),
                };
                let overhead = match (flowd.c1(), floor.c1()) {
                    (Some(f), Some(b)) => format!(
                        "+{} over the floor",
                        fmt_ms((f.p50.as_secs_f64() - b.p50.as_secs_f64()) * 1000.0)
                    ),
                    _ => "n/a".into(),
                };
                any = true;
                let _ = writeln!(
                    out,
                    "| {flowd_name} / fork floor | {throughput} | {overhead} |"
                );
            }
            for (key, name) in [
                ("gunicorn", "gunicorn+Flask"),
                ("uvicorn", "uvicorn+Starlette"),
                ("spawn", "spawn per call"),
            ] {
                let Some(base) = self.row(key) else {
                    continue;
                };
                let throughput = match (flowd.c16(), base.c16()) {
                    (Some(f), Some(b)) if b.rps > 0.0 => format!("{:.2}×", f.rps / b.rps),
                    _ => "n/a".into(),
                };
                let latency = match (flowd.c1(), base.c1()) {
                    (Some(f), Some(b)) if !b.p50.is_zero() => {
                        format!("{:.2}×", f.p50.as_secs_f64() / b.p50.as_secs_f64())
                    }
                    _ => "n/a".into(),
                };
                any = true;
                let _ = writeln!(out, "| {flowd_name} / {name} | {throughput} | {latency} |");
            }
        }
        if !any {
            let _ = writeln!(out, "| (no baseline measured) | | |");
        }
        let _ = writeln!(
            out,
            "\nA throughput ratio above 1× means flowd serves more; a latency ratio below 1× means flowd answers faster.\n"
        );
    }

    fn render_memory(&self, out: &mut String) {
        let m = &self.memory;
        let _ = writeln!(out, "## Memory\n");
        let _ = writeln!(out, "| what | figure |\n|---|---|");
        let rss = |kb: Option<u64>| kb.map_or("n/a".into(), fmt_mb);
        let _ = writeln!(out, "| flowd RSS idle | {} |", rss(m.idle_rss_kb));
        let _ = writeln!(out, "| flowd CPU idle | {} |", fmt_cpu(m.idle_cpu));
        let _ = writeln!(
            out,
            "| flowd RSS under the c=16 load (peak sampled every 50 ms) | {} |",
            rss(m.load_peak_rss_kb)
        );
        let _ = writeln!(
            out,
            "| flowd peak RSS over every catch scenario (VmHWM; 1 MiB uploads at c=16 included) | {} |",
            rss(m.catch_hwm_kb)
        );
        if let Some(base) = &m.base {
            let _ = writeln!(
                out,
                "| Python base process (zygote) | RSS {}, PSS {}, private {} |",
                fmt_mb(base.rss_kb),
                fmt_mb(base.pss_kb),
                fmt_mb(base.private_kb)
            );
        }
        for (name, instance) in &m.instances {
            let _ = writeln!(
                out,
                "| warm instance, {name} | RSS {}, PSS {}, private {} |",
                fmt_mb(instance.rss_kb),
                fmt_mb(instance.pss_kb),
                fmt_mb(instance.private_kb)
            );
        }
        if let Some(floor) = self.floor_rss_kb {
            let _ = writeln!(
                out,
                "| fork floor's process (for comparison) | RSS {} |",
                fmt_mb(floor)
            );
        }
        if !m.forks.is_empty() {
            let mut private: Vec<u64> = m.forks.iter().map(|f| f.private_kb).collect();
            private.sort_unstable();
            let median = private[private.len() / 2];
            let max = private[private.len() - 1];
            let mut rss: Vec<u64> = m.forks.iter().map(|f| f.rss_kb).collect();
            rss.sort_unstable();
            let _ = writeln!(
                out,
                "| execution fork in flight, trivial workflow ({} forks) | private {} median, {} max (RSS {}) |",
                private.len(),
                fmt_mb(median),
                fmt_mb(max),
                fmt_mb(rss[rss.len() / 2])
            );
        }
        if !m.rounds_rss_kb.is_empty() {
            let list: Vec<String> = m.rounds_rss_kb.iter().map(|&kb| fmt_mb(kb)).collect();
            let _ = writeln!(
                out,
                "| flowd RSS after each of {} consecutive c=16 rounds | {} (spread {}) |",
                m.rounds_rss_kb.len(),
                list.join(", "),
                spread(&m.rounds_rss_kb).map_or("n/a".into(), |s| format!("{:.1} %", s * 100.0))
            );
        }
        for note in &m.notes {
            let _ = writeln!(out, "| note | {note} |");
        }
        out.push('\n');
    }

    fn render_targets(&self, out: &mut String) {
        let _ = writeln!(out, "## Issue 7's targets\n");
        let _ = writeln!(out, "| target | measured | met |\n|---|---|---|");
        let mut line = |target: &str, measured: String, met: Option<bool>| {
            let verdict = match met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "n/a",
            };
            let _ = writeln!(out, "| {target} | {measured} | {verdict} |");
        };
        let fork = self.row("flowd-fork");
        let floor = self.row("floor");
        match (fork.and_then(Row::c16), floor.and_then(Row::c16)) {
            (Some(f), Some(b)) if b.rps > 0.0 => {
                let share = f.rps / b.rps;
                line(
                    "fork: throughput ≥ 80 % of the fork floor",
                    format!(
                        "{:.0} % ({} / {} per s)",
                        share * 100.0,
                        fmt_rps(f.rps),
                        fmt_rps(b.rps)
                    ),
                    Some(share >= 0.8),
                )
            }
            _ => line(
                "fork: throughput ≥ 80 % of the fork floor",
                "n/a".into(),
                None,
            ),
        }
        match (fork.and_then(Row::c1), floor.and_then(Row::c1)) {
            (Some(f), Some(b)) => {
                let over = (f.p50.as_secs_f64() - b.p50.as_secs_f64()) * 1000.0;
                line(
                    "fork: p50 overhead above the floor ≤ 0.5 ms",
                    format!(
                        "{} ({} − {})",
                        fmt_ms(over),
                        fmt_duration(f.p50),
                        fmt_duration(b.p50)
                    ),
                    Some(over <= 0.5),
                )
            }
            _ => line(
                "fork: p50 overhead above the floor ≤ 0.5 ms",
                "n/a".into(),
                None,
            ),
        }
        let reuse = self.row("flowd-reuse");
        match (
            reuse.and_then(Row::c16),
            self.row("gunicorn").and_then(Row::c16),
        ) {
            (Some(r), Some(g)) if g.rps > 0.0 => line(
                "reuse: ≥ 2× gunicorn+Flask req/s at c=16",
                format!("{:.2}×", r.rps / g.rps),
                Some(r.rps >= 2.0 * g.rps),
            ),
            _ => line(
                "reuse: ≥ 2× gunicorn+Flask req/s at c=16",
                "reuse not available or baseline not run".into(),
                None,
            ),
        }
        match (
            reuse.and_then(Row::c1),
            self.row("uvicorn").and_then(Row::c1),
        ) {
            (Some(r), Some(u)) => line(
                "reuse: p50 at c=1 no worse than uvicorn+Starlette",
                format!("{} vs {}", fmt_duration(r.p50), fmt_duration(u.p50)),
                Some(r.p50 <= u.p50),
            ),
            _ => line(
                "reuse: p50 at c=1 no worse than uvicorn+Starlette",
                "reuse not available or baseline not run".into(),
                None,
            ),
        }
        if let Some(pull) = &self.pull {
            let p99 = |q: &Option<Quantiles>| q.as_ref().map_or("n/a".into(), |q| fmt_ms(q.p99_ms));
            let met = |q: &Option<Quantiles>| q.as_ref().map(|q| q.p99_ms <= 10.0);
            line(
                &format!("pull: lateness p99 ≤ 10 ms with {} schedules, fire → workflow() start, cold (a different workflow per run, its instance started for it)", pull.schedules),
                format!("{} ({} to the record's started_at)", p99(&pull.function), p99(&pull.claim)),
                met(&pull.function),
            );
            if pull.hot > 0 {
                line(
                    "pull: the same, warm instances",
                    format!(
                        "{} ({} to the record's started_at)",
                        p99(&pull.hot_function),
                        p99(&pull.hot_claim)
                    ),
                    met(&pull.hot_function),
                );
            }
            line(
                "pull: idle scheduler CPU ≈ 0",
                fmt_cpu(pull.idle_cpu),
                pull.idle_cpu.map(|c| c <= 0.01),
            );
        }
        let m = &self.memory;
        line(
            "flowd ≤ 50 MB RSS idle",
            m.idle_rss_kb.map_or("n/a".into(), fmt_mb),
            m.idle_rss_kb.map(|kb| kb <= 50 * 1024),
        );
        line(
            "flowd ≤ 150 MB RSS under the c=16 load (trivial workflow)",
            m.load_peak_rss_kb.map_or("n/a".into(), fmt_mb),
            m.load_peak_rss_kb.map(|kb| kb <= 150 * 1024),
        );
        line(
            "the same, peak over every c=16 load (1 MiB uploads included)",
            m.catch_hwm_kb.map_or("n/a".into(), fmt_mb),
            m.catch_hwm_kb.map(|kb| kb <= 150 * 1024),
        );
        let fork_max = m.forks.iter().map(|f| f.private_kb).max();
        line(
            "in-flight fork ≤ 3 MB private (trivial workflow)",
            fork_max.map_or("n/a".into(), |kb| format!("{} max", fmt_mb(kb))),
            fork_max.map(|kb| kb <= 3 * 1024),
        );
        let rounds = spread(&m.rounds_rss_kb);
        line(
            "memory flat (± 10 %) across three c=16 rounds",
            rounds.map_or("n/a".into(), |s| format!("spread {:.1} %", s * 100.0)),
            rounds.map(|s| s <= 0.10),
        );
        out.push('\n');
    }
}

/// `| scenario | p50 c=1 | p99 c=1 | req/s c=16 | p50 c=16 | p99 c=16 | failed | note |`
const ROW_HEADER: &str =
    "| scenario | p50 c=1 | p99 c=1 | req/s c=16 | p50 c=16 | p99 c=16 | failed | note |\n|---|---:|---:|---:|---:|---:|---:|---|";

/// One row of a latency and throughput table (see [`ROW_HEADER`]).
fn render_row(out: &mut String, row: &Row) {
    match &row.outcome {
        Outcome::Measured { c1, c16 } => {
            let (a, b): (String, String) = c1.as_ref().map_or(("—".into(), "—".into()), |p| {
                (fmt_duration(p.p50), fmt_duration(p.p99))
            });
            let (c, d, e) = c16
                .as_ref()
                .map_or(("—".into(), "—".into(), "—".into()), |p| {
                    if p.ok == 0 {
                        (fmt_rps(p.rps), "—".into(), "—".into())
                    } else {
                        (fmt_rps(p.rps), fmt_duration(p.p50), fmt_duration(p.p99))
                    }
                });
            let failed: u64 = c1.iter().chain(c16.iter()).map(|p| p.failed).sum();
            let mut note = row.note.clone();
            if let Some(sample) = c1
                .iter()
                .chain(c16.iter())
                .find_map(|p| p.sample_failure.clone())
            {
                if failed > 0 {
                    note = format!("{note} (first failure: {sample})");
                }
            }
            let _ = writeln!(
                out,
                "| {} | {a} | {b} | {c} | {d} | {e} | {failed} | {note} |",
                row.name
            );
        }
        Outcome::NotAvailable(why) => {
            let _ = writeln!(out, "| {} | not available | | | | | | {why} |", row.name);
        }
        Outcome::Skipped(why) => {
            let _ = writeln!(out, "| {} | skipped | | | | | | {why} |", row.name);
        }
        Outcome::Failed(why) => {
            let _ = writeln!(
                out,
                "| {} | FAILED | | | | | | {} |",
                row.name,
                why.replace('\n', " ").replace('|', "/")
            );
        }
    }
}

fn render_pull(out: &mut String, pull: &PullReport) {
    let _ = writeln!(out, "## Pull: {} schedules on one node\n", pull.schedules);
    let q = |q: &Option<Quantiles>| {
        q.as_ref().map_or("n/a".into(), |q| {
            format!(
                "p50 {}, p99 {}, max {} (n={})",
                fmt_ms(q.p50_ms),
                fmt_ms(q.p99_ms),
                fmt_ms(q.max_ms),
                q.count
            )
        })
    };
    let _ = writeln!(out, "| what | figure |\n|---|---|");
    let _ = writeln!(
        out,
        "| schedules created through the API | {} in {:.1} s ({:.0}/s) |",
        pull.schedules,
        pull.create_s,
        pull.schedules as f64 / pull.create_s.max(1e-9)
    );
    let _ = writeln!(
        out,
        "| flowd CPU idle with every schedule loaded ({:.0} s) | {} |",
        pull.idle_window_s,
        fmt_cpu(pull.idle_cpu)
    );
    let _ = writeln!(
        out,
        "| flowd RSS with every schedule loaded | {} |",
        pull.rss_kb.map_or("n/a".into(), fmt_mb)
    );
    let _ = writeln!(
        out,
        "| cold window: {} workflows firing once each over {:.0} s ({:.0} per s) | {} ran, {} skipped, {} never ran; flowd CPU {} |",
        pull.firing,
        pull.window_s,
        pull.firing as f64 / pull.window_s.max(1e-9),
        pull.ran,
        pull.skipped,
        pull.missing,
        fmt_cpu(pull.busy_cpu)
    );
    let _ = writeln!(
        out,
        "| cold: fire_at → started_at (record, ms resolution) | {} |",
        q(&pull.claim)
    );
    let _ = writeln!(
        out,
        "| cold: fire_at → workflow() start (a different workflow per run: its instance started by the scheduler 2 s ahead) | {} |",
        q(&pull.function)
    );
    if pull.hot > 0 {
        let _ = writeln!(
            out,
            "| warm window: {} workflows every 1 s for {:.0} s | {} ran, {} skipped |",
            pull.hot, pull.hot_window_s, pull.hot_ran, pull.hot_skipped
        );
        let _ = writeln!(
            out,
            "| warm: fire_at → started_at (record, ms resolution) | {} |",
            q(&pull.hot_claim)
        );
        let _ = writeln!(
            out,
            "| warm: fire_at → workflow() start (instance already warm) | {} |",
            q(&pull.hot_function)
        );
    }
    for note in &pull.notes {
        let _ = writeln!(out, "| note | {note} |");
    }
    out.push('\n');
}

/// (max − min) / min.
pub fn spread(values: &[u64]) -> Option<f64> {
    let min = *values.iter().min()?;
    let max = *values.iter().max()?;
    (min > 0 && values.len() > 1).then(|| (max - min) as f64 / min as f64)
}

/// The store scenario's table, its nodes' memory, and issue 16's targets.
fn render_store(out: &mut String, store: &StoreReport) {
    let _ = writeln!(out, "## Store: SQLite vs PostgreSQL, 1 node vs 2\n");
    let _ = writeln!(out, "PostgreSQL: {}.\n", store.postgres);
    let _ = writeln!(out, "{ROW_HEADER}");
    for row in &store.rows {
        render_row(out, row);
    }
    out.push('\n');
    let _ = writeln!(
        out,
        "| node | RSS after its scenarios | peak RSS (VmHWM) |\n|---|---:|---:|"
    );
    let rss = |kb: Option<u64>| kb.map_or("n/a".into(), fmt_mb);
    for node in &store.nodes {
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            node.node,
            rss(node.rss_kb),
            rss(node.peak_kb)
        );
    }
    out.push('\n');
    let _ = writeln!(out, "| issue 16's target | measured | met |\n|---|---|---|");
    let verdict = |met: Option<bool>| match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    };
    let c16 = |key: &str| store.row(key).and_then(Row::c16);
    for (key, setup) in [
        ("postgres", "PostgreSQL, 1 node"),
        (
            "postgres-async",
            "PostgreSQL, 1 node, synchronous_commit off",
        ),
    ] {
        render_store_targets(out, store, key, setup);
    }
    let measured_points: Vec<&Point> = store
        .rows
        .iter()
        .flat_map(|row| row.c1().into_iter().chain(row.c16()))
        .collect();
    let failed: u64 = measured_points.iter().map(|p| p.failed).sum();
    let all_measured = store
        .rows
        .iter()
        .all(|row| matches!(row.outcome, Outcome::Measured { .. }));
    let _ = writeln!(
        out,
        "| no errors | {failed} failed of {} |{} |",
        measured_points.iter().map(|p| p.ok + p.failed).sum::<u64>(),
        if all_measured && !store.rows.is_empty() {
            format!(" {}", verdict(Some(failed == 0)))
        } else {
            " **no** (a row was not measured)".into()
        }
    );
    for isolation in ["reuse", "fork"] {
        if let (Some(two), Some(one)) = (
            c16(&format!("postgres2-{isolation}")),
            c16(&format!("postgres-{isolation}")),
        ) {
            if one.rps > 0.0 {
                let _ = writeln!(
                    out,
                    "| (for reference) 2 nodes vs 1 on PostgreSQL, {isolation} req/s at c=16 | {:.2}× ({} / {} per s) | — |",
                    two.rps / one.rps,
                    fmt_rps(two.rps),
                    fmt_rps(one.rps)
                );
            }
        }
    }
    for note in &store.notes {
        let _ = writeln!(out, "\n- {note}");
    }
    out.push('\n');
}

/// Issue 16's latency and throughput targets for one PostgreSQL setup (`key`: its rows' prefix).
fn render_store_targets(out: &mut String, store: &StoreReport, key: &str, setup: &str) {
    let verdict = |met: Option<bool>| match met {
        Some(true) => "yes",
        Some(false) => "**no**",
        None => "n/a",
    };
    let c16 = |key: &str| store.row(key).and_then(Row::c16);
    let c1 = |key: &str| store.row(key).and_then(Row::c1);
    let (measured, met) = match (c16(&format!("{key}-reuse")), c16("sqlite-reuse")) {
        (Some(pg), Some(lite)) if lite.rps > 0.0 => {
            let share = pg.rps / lite.rps;
            (
                format!(
                    "{:.2}× ({} / {} per s)",
                    share,
                    fmt_rps(pg.rps),
                    fmt_rps(lite.rps)
                ),
                Some(share >= 0.7),
            )
        }
        _ => ("n/a".into(), None),
    };
    let _ = writeln!(
        out,
        "| {setup}: reuse req/s at c=16 ≥ 0.7× SQLite's | {measured} | {} |",
        verdict(met)
    );
    for isolation in ["reuse", "fork"] {
        let (measured, met) = match (
            c1(&format!("{key}-{isolation}")),
            c1(&format!("sqlite-{isolation}")),
        ) {
            (Some(pg), Some(lite)) => {
                let over = (pg.p50.as_secs_f64() - lite.p50.as_secs_f64()) * 1000.0;
                (
                    format!(
                        "{}{} ({} − {})",
                        if over < 0.0 { "−" } else { "+" },
                        fmt_ms(over.abs()),
                        fmt_duration(pg.p50),
                        fmt_duration(lite.p50)
                    ),
                    Some(over <= 0.3),
                )
            }
            _ => ("n/a".into(), None),
        };
        let _ = writeln!(
            out,
            "| {setup}: {isolation} p50 at c=1 ≤ SQLite's + 0.3 ms | {measured} | {} |",
            verdict(met)
        );
    }
}
