//! The pull scenario: many schedules on one node, a few dozen runs per second in two measurement
//! windows, and how late each run starts.
//!
//! - Cold window: interval schedules fire at `anchor + k × interval` with the anchor at creation,
//!   so `firing` workflows are created with intervals chosen to land their first fire time on an
//!   even grid across the window. Each is a different workflow, so each run starts a new warm
//!   instance — what 10,000 schedules do with 64 warm instances kept.
//! - Warm window: `hot` workflows with `{"every": "1s"}`, created paused and enabled after the
//!   cold window; once each has run once, their instances stay warm.
//! - The rest get `{"every": "10m"}` and only weigh on the scheduler (their first fire time comes
//!   ten minutes after creation, after this flowd is stopped).
//!
//! Lateness is measured twice: fire_at → started_at of the execution record (when the scheduler
//! claimed the run), and fire_at → the moment `workflow()` started (the workflow appends
//! `time.time()` to its settings).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde_json::{json, Value};

use crate::baselines::PULL;
use crate::flowd::{Api, Flowd};
use crate::procfs;
use crate::report::{PullReport, Quantiles};
use crate::Budget;

/// Concurrent creation requests.
const CREATE_CONCURRENCY: usize = 8;
/// The idle measurement ends this long before the cold window opens: before the scheduler's
/// pre-warming of the window's first runs (2 s ahead of each fire time) begins.
const IDLE_ENDS_BEFORE_WINDOW_MS: i64 = 2_500;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Runs `op(i)` for every `i` in `0..count`, `CREATE_CONCURRENCY` at a time; answers the
/// results in order.
async fn concurrently<T, F, Fut>(count: usize, op: F) -> anyhow::Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<T>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let op = Arc::new(op);
    let mut tasks = Vec::new();
    for _ in 0..CREATE_CONCURRENCY {
        let next = next.clone();
        let op = op.clone();
        tasks.push(tokio::spawn(async move {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<_, anyhow::Error>(done);
                }
                done.push((i, op(i).await?));
            }
        }));
    }
    let mut results: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for task in tasks {
        for (i, result) in task.await?? {
            results[i] = Some(result);
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// Creates every spec `make(i)` for `i` in `0..count`, `CREATE_CONCURRENCY` at a time; answers
/// the ids in order.
async fn create_many(
    api: &Api,
    count: usize,
    make: Arc<dyn Fn(usize) -> Value + Send + Sync>,
) -> anyhow::Result<Vec<String>> {
    let api = api.clone();
    concurrently(count, move |i| {
        let api = api.clone();
        let spec = make(i);
        async move { Ok(api.create_ok(&spec).await?.id) }
    })
    .await
}

/// Pauses the workflows `ids`, `CREATE_CONCURRENCY` at a time.
async fn pause_all(api: &Api, ids: &[String]) -> anyhow::Result<()> {
    let api = api.clone();
    let ids: Arc<Vec<String>> = Arc::new(ids.to_vec());
    concurrently(ids.len(), move |i| {
        let api = api.clone();
        let ids = ids.clone();
        async move { api.patch(&ids[i], &json!({"enabled": false})).await }
    })
    .await?;
    Ok(())
}

fn millis(text: &Value) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.as_str()?)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// Lateness of the runs of `ids` whose fire time is in `[from, to)`.
#[derive(Default)]
struct Lateness {
    claim: Vec<f64>,
    function: Vec<f64>,
    ran: usize,
    skipped: usize,
    missing: usize,
}

async fn lateness(api: &Api, ids: &[String], from: i64, to: i64) -> anyhow::Result<Lateness> {
    let mut out = Lateness::default();
    for id in ids {
        let executions = api.executions(id).await?;
        // (fire_at, started_at) of the runs that ran, oldest first.
        let mut runs: Vec<(i64, i64)> = Vec::new();
        let mut any = false;
        for execution in &executions {
            let (Some(fire), Some(start)) = (
                millis(&execution["fire_at"]),
                millis(&execution["started_at"]),
            ) else {
                continue;
            };
            if execution["status"].as_str() == Some("skipped") {
                if (from..to).contains(&fire) {
                    out.skipped += 1;
                }
                continue;
            }
            runs.push((fire, start));
            if (from..to).contains(&fire) {
                any = true;
                out.ran += 1;
                out.claim.push((start - fire) as f64);
            }
        }
        if !any {
            out.missing += 1;
            continue;
        }
        runs.sort_unstable();
        // Runs of one workflow never overlap: the n-th start belongs to the n-th run.
        let starts: Vec<f64> = api.settings(id).await?["starts"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default();
        let offset = runs.len().saturating_sub(starts.len());
        let skip = starts.len().saturating_sub(runs.len());
        for ((fire, _), started) in runs.iter().skip(offset).zip(starts.iter().skip(skip)) {
            if (from..to).contains(fire) {
                out.function.push(started * 1000.0 - *fire as f64);
            }
        }
    }
    Ok(out)
}

pub async fn run(
    binary: &Path,
    dir: &Path,
    runtime_dir: &Path,
    budget: &Budget,
) -> anyhow::Result<PullReport> {
    let flowd = Flowd::start(binary, dir, runtime_dir, &[]).await?;
    let pid = flowd.pid();
    let firing = budget.pull_firing.min(budget.pull_schedules);
    let hot = budget.pull_hot.min(budget.pull_schedules - firing);
    let mut report = PullReport {
        schedules: budget.pull_schedules,
        firing,
        hot,
        window_s: budget.pull_window.as_secs_f64(),
        hot_window_s: budget.pull_hot_window.as_secs_f64(),
        ..PullReport::default()
    };
    let background = report.schedules - firing - hot;
    crate::progress!(
        "pull: creating {} schedules ({firing} firing once in the cold window, {hot} every second in the warm one) …",
        report.schedules
    );

    let started = Instant::now();
    create_many(
        &flowd.api,
        background,
        Arc::new(|i| {
            json!({"name": format!("pull-{i}"), "mode": "pull", "code": PULL, "schedule": {"every": "10m"}})
        }),
    )
    .await
    .context("create the background schedules")?;
    let hot_ids = create_many(
        &flowd.api,
        hot,
        Arc::new(|i| {
            json!({"name": format!("hot-{i}"), "mode": "pull", "code": PULL, "schedule": {"every": "1s"}, "enabled": false})
        }),
    )
    .await
    .context("create the warm schedules")?;
    let per_second = (background + hot) as f64 / started.elapsed().as_secs_f64().max(1e-3);

    // The cold window opens once the firing ones are created and flowd was watched idle.
    let firing_create = Duration::from_secs_f64(firing as f64 / per_second.max(1.0) * 1.5 + 1.0);
    let window_ms = budget.pull_window.as_millis() as i64;
    // Every interval is longer than the window, so that each fires once in it; flowd is watched
    // idle until the window opens.
    let lead = (firing_create + budget.pull_idle).max(firing_create + budget.pull_window);
    let window_start = now_ms() + lead.as_millis() as i64 + 500;
    let slots = firing.max(1) as i64;
    let clamped = Arc::new(AtomicUsize::new(0));
    let clamped_in = clamped.clone();
    let firing_ids = create_many(
        &flowd.api,
        firing,
        Arc::new(move |j| {
            let fire_at = window_start + j as i64 * window_ms / slots;
            let mut interval = fire_at - now_ms();
            if interval < 1000 {
                clamped_in.fetch_add(1, Ordering::Relaxed);
                interval = 1000;
            }
            json!({"name": format!("fire-{j}"), "mode": "pull", "code": PULL, "schedule": {"every": format!("{interval}ms")}})
        }),
    )
    .await
    .context("create the firing schedules")?;
    report.create_s = started.elapsed().as_secs_f64();
    if clamped.load(Ordering::Relaxed) > 0 {
        report.notes.push(format!(
            "{} firing schedules were created too late for their slot and fired 1 s after creation",
            clamped.load(Ordering::Relaxed)
        ));
    }

    // Idle: every schedule loaded, nothing due before the window — and nothing pre-warmed for it
    // yet: flowd starts the instances of the window's first runs 2 s (its pre-warm lead) ahead.
    let until_window =
        Duration::from_millis((window_start - now_ms() - IDLE_ENDS_BEFORE_WINDOW_MS).max(0) as u64);
    if until_window >= Duration::from_millis(500) {
        report.idle_window_s = until_window.as_secs_f64();
        report.idle_cpu = procfs::cpu_share(pid, until_window).await;
    } else {
        report
            .notes
            .push("creation ran into the window: no idle CPU measured".into());
    }
    report.rss_kb = procfs::rss_kb(pid);
    tokio::time::sleep(Duration::from_millis(
        (window_start - now_ms()).max(0) as u64
    ))
    .await;
    crate::progress!("pull: cold window ({} s) …", budget.pull_window.as_secs());
    report.busy_cpu = procfs::cpu_share(pid, budget.pull_window).await;
    // Let the last runs finish; then pause the window's workflows: each was to fire once, and
    // their next fire times (one interval on) would otherwise land in the warm window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    pause_all(&flowd.api, &firing_ids)
        .await
        .context("pause the firing schedules")?;

    // The warm window: enable the hot ones, let each run once (cold), then measure.
    let mut hot_window = (0, 0);
    if hot > 0 {
        // Enabled one after another across a second, so that their fire times are spread.
        let step = Duration::from_secs(1) / hot as u32;
        for id in &hot_ids {
            let next = Instant::now() + step;
            flowd.api.patch(id, &json!({"enabled": true})).await?;
            tokio::time::sleep_until(next.into()).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        crate::progress!(
            "pull: warm window ({} s) …",
            budget.pull_hot_window.as_secs()
        );
        let from = now_ms();
        tokio::time::sleep(budget.pull_hot_window).await;
        hot_window = (from, now_ms());
        for id in &hot_ids {
            flowd.api.patch(id, &json!({"enabled": false})).await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    let cold = lateness(
        &flowd.api,
        &firing_ids,
        window_start,
        window_start + window_ms,
    )
    .await?;
    report.ran = cold.ran;
    report.skipped = cold.skipped;
    report.missing = cold.missing;
    report.claim = Quantiles::of(cold.claim);
    report.function = Quantiles::of(cold.function);
    if hot > 0 {
        let warm = lateness(&flowd.api, &hot_ids, hot_window.0, hot_window.1).await?;
        report.hot_ran = warm.ran;
        report.hot_skipped = warm.skipped;
        report.hot_claim = Quantiles::of(warm.claim);
        report.hot_function = Quantiles::of(warm.function);
    }
    flowd.stop();
    Ok(report)
}
