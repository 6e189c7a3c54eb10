//! The scheduler: fires pull workflows at the times their schedules give, exactly once per fire
//! time, never two runs of one workflow at once, at most one catch-up run after downtime.
//!
//! Each enabled pull workflow has a `next_fire_at` in the store. A tick asks the store for the
//! workflows due now (an index range scan, never a scan of every workflow) and claims all their
//! fire times in one transaction with [`Store::claim_runs`](flowd_store::Store::claim_runs),
//! which for each moves `next_fire_at` on and records the run: `running` if no run of the
//! workflow is going, `skipped` otherwise. A fire time already claimed (by an earlier tick, or
//! another node sharing the store) is left alone, so nothing here relies on there being a single
//! scheduler. The runs claimed start as soon as that transaction commits.
//!
//! The next fire time is computed from the claimed one for intervals (no drift when a run is
//! slow) and always lies after *now*: after downtime the one overdue fire time runs once, and the
//! schedule goes on from now.
//!
//! Each workflow's warm instance is started [`PREWARM_AHEAD_MS`] before its fire time and
//! reserved for that run, so that the run neither begins with the module's top level nor finds
//! its instance evicted by the runs in between. The fire times coming up are read from the store
//! a step ahead of need (once per [`PREWARM_STEP_MS`] under load, not on every wake-up), and each
//! instance is started by the loop, after its tick, when its moment has come.

use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use flowd_core::schedule::Schedule;
use flowd_core::workflow::Trigger;
use flowd_store::{ClaimOutcome, FireAdvance, RunClaim, WorkflowRecord};
use tokio::task::JoinHandle;

use crate::clock::now_ms;
use crate::error::Result;
use crate::executor::{claimable_record, Report};
use crate::hot::HotWorkflow;
use crate::metrics;
use crate::Engine;

/// Most workflows claimed in one tick; more due ones are taken by the next tick, at once.
const TICK_BATCH: u32 = 256;
/// The longest the loop sleeps without looking at the store.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How long before its fire time a workflow's warm instance is started, so that the run does not
/// begin with the module's top level.
const PREWARM_AHEAD_MS: i64 = 2_000;
/// How much further than [`PREWARM_AHEAD_MS`] one read of the coming fire times looks: the store
/// is asked again only once the time has moved on by about this much.
const PREWARM_STEP_MS: i64 = 1_000;
/// How long after its fire time a pre-warmed instance stays reserved for a run that starts late.
const RESERVED_GRACE: Duration = Duration::from_secs(5);

/// The warning of a tick skipped because the previous run was still going.
pub const OVERLAP_WARNING: &str = "not run: the previous run of this workflow was still going";

/// Where the scheduler reads the time: the system clock, or a test's.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Now, in microseconds since the Unix epoch: what a sleep until a fire time is measured
    /// from, so that it does not add the part of a millisecond already gone.
    fn now_us(&self) -> i64 {
        self.now_ms().saturating_mul(1_000)
    }
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::clock::now_ms()
    }

    fn now_us(&self) -> i64 {
        chrono::Utc::now().timestamp_micros()
    }
}

/// What one tick did.
#[derive(Default)]
pub struct Tick {
    /// Runs started, to await in tests.
    pub started: Vec<JoinHandle<Report>>,
    /// Fire times skipped because a run was going (recorded as `skipped`).
    pub overlapped: usize,
    /// Fire times someone else had claimed first.
    pub already_claimed: usize,
    /// Due workflows that could not be started (logged).
    pub failed: usize,
}

impl Tick {
    /// Every due workflow this tick looked at.
    fn handled(&self) -> usize {
        self.started.len() + self.overlapped + self.already_claimed + self.failed
    }
}

/// What the pre-warming has seen of the coming fire times.
#[derive(Default)]
struct Prewarming {
    /// Fire times whose workflow was already pre-warmed: (workflow id, fire time).
    done: std::collections::HashSet<(String, i64)>,
    /// Fire times up to this one were read from the store (`None`: read again from now).
    horizon: Option<i64>,
    /// Fire times read whose instance is not started yet: (fire time, workflow id), earliest
    /// first.
    waiting: std::collections::BTreeSet<(i64, String)>,
}

pub struct Scheduler {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    prewarming: Mutex<Prewarming>,
}

/// A due workflow's run, ready to be claimed.
struct PendingRun {
    hot: Arc<HotWorkflow>,
    claim: RunClaim,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>, clock: Arc<dyn Clock>) -> Scheduler {
        Scheduler {
            engine,
            clock,
            prewarming: Default::default(),
        }
    }

    /// Claims every fire time due at `now`, in one store transaction, and starts those runs.
    pub async fn tick(&self, now: i64) -> Result<Tick> {
        let mut tick = Tick::default();
        let due = self.engine.store.due_workflows(now, TICK_BATCH).await?;
        let mut pending = Vec::with_capacity(due.len());
        for workflow in &due {
            match self.pending_run(workflow, now).await {
                Ok(Some(run)) => pending.push(run),
                Ok(None) => tick.already_claimed += 1,
                Err(error) => {
                    tick.failed += 1;
                    tracing::error!(workflow = %workflow.id, %error, "a scheduled run could not be started");
                }
            }
        }
        if pending.is_empty() {
            return Ok(tick);
        }
        let claims: Vec<RunClaim> = pending.iter().map(|run| run.claim.clone()).collect();
        let outcomes = self.engine.store.claim_runs(&claims).await?;
        for (run, outcome) in pending.into_iter().zip(outcomes) {
            match outcome {
                ClaimOutcome::Started => tick.started.push(self.start(run)),
                ClaimOutcome::Overlapped => tick.overlapped += 1,
                ClaimOutcome::AlreadyClaimed => tick.already_claimed += 1,
            }
        }
        Ok(tick)
    }

    /// The claim of a due workflow's fire time (`None` when it has none any more).
    async fn pending_run(&self, workflow: &WorkflowRecord, now: i64) -> Result<Option<PendingRun>> {
        let Some(fire_at) = workflow.next_fire_at else {
            return Ok(None);
        };
        let next_fire_at = next_fire_time(workflow, fire_at, now);
        let hot = self
            .engine
            .cache
            .load_by_id(self.engine.store.as_ref(), &workflow.id)
            .await?;
        let claim = RunClaim {
            execution: claimable_record(&hot, Trigger::Pull, Some(fire_at)),
            advance: Some(FireAdvance {
                fire_at,
                next_fire_at,
            }),
            skip_warning: Some(OVERLAP_WARNING.to_string()),
        };
        Ok(Some(PendingRun { hot, claim }))
    }

    fn start(&self, run: PendingRun) -> JoinHandle<Report> {
        if let Some(fire_at) = run.claim.execution.fire_at {
            metrics::scheduled_run_started(&run.hot, fire_at, now_ms());
        }
        let engine = self.engine.clone();
        tokio::spawn(async move {
            let report = engine
                .run_claimed(run.hot.clone(), run.claim.execution)
                .await;
            engine
                .queue_retry_of_scheduled_run(&run.hot, &report.record)
                .await;
            report
        })
    }

    /// Pre-warms the workflows due within [`PREWARM_AHEAD_MS`] of `now` that were not pre-warmed
    /// for that fire time yet: their warm instances are started in the background, each reserved
    /// for its run. The coming fire times are read from the store only when the time has moved
    /// past what an earlier call read; those read early wait for their moment.
    pub async fn prewarm(&self, now: i64) {
        let read_already = self
            .horizon()
            .is_some_and(|horizon| now + PREWARM_AHEAD_MS < horizon);
        if !read_already {
            self.read_coming_fire_times(now).await;
        }
        self.start_waiting(now);
    }

    /// Reads the fire times up to a step past the pre-warm window into the waiting list.
    async fn read_coming_fire_times(&self, now: i64) {
        let until = now + PREWARM_AHEAD_MS + PREWARM_STEP_MS;
        let soon = match self.engine.store.due_workflows(until, TICK_BATCH).await {
            Ok(soon) => soon,
            Err(error) => {
                tracing::debug!(%error, "no pre-warming this time");
                return;
            }
        };
        let read_all = soon.len() < TICK_BATCH as usize;
        let last_read = soon.last().and_then(|w| w.next_fire_at);
        for workflow in soon {
            if let Some(fire_at) = workflow.next_fire_at.filter(|at| *at > now) {
                if self.first_prewarm_of(&workflow.id, fire_at, now) {
                    self.lock_prewarming()
                        .waiting
                        .insert((fire_at, workflow.id));
                }
            }
        }
        // A full batch was cut at its last fire time: read on from there next time.
        let horizon = if read_all { Some(until) } else { last_read };
        self.lock_prewarming().horizon = horizon.map(|at| at.max(now));
    }

    /// Starts the instances whose pre-warm time has come (in the loop, after its tick: never
    /// competing with a claim).
    fn start_waiting(&self, now: i64) {
        let due: Vec<(i64, String)> = {
            let mut prewarming = self.lock_prewarming();
            let later = prewarming
                .waiting
                .split_off(&(now + PREWARM_AHEAD_MS + 1, String::new()));
            std::mem::replace(&mut prewarming.waiting, later)
                .into_iter()
                .collect()
        };
        for (fire_at, workflow_id) in due {
            self.prewarm_for(workflow_id, fire_at);
        }
    }

    /// When the next instance read but not started yet is to be started.
    fn next_prewarm_at(&self) -> Option<i64> {
        let prewarming = self.lock_prewarming();
        let (fire_at, _) = prewarming.waiting.first()?;
        Some(fire_at - PREWARM_AHEAD_MS)
    }

    /// Records that `workflow_id` is pre-warmed for `fire_at`; false if it already was.
    fn first_prewarm_of(&self, workflow_id: &str, fire_at: i64, now: i64) -> bool {
        let mut prewarming = self.lock_prewarming();
        prewarming
            .done
            .retain(|(_, at)| *at > now - PREWARM_AHEAD_MS);
        prewarming.done.insert((workflow_id.to_string(), fire_at))
    }

    /// Starts the warm instance of `workflow_id` in the background, held for its run at
    /// `fire_at` (at most [`RESERVED_GRACE`] past it).
    fn prewarm_for(&self, workflow_id: String, fire_at: i64) {
        let engine = self.engine.clone();
        let clock = self.clock.clone();
        tokio::spawn(async move {
            let Ok(hot) = engine
                .cache
                .load_by_id(engine.store.as_ref(), &workflow_id)
                .await
            else {
                return;
            };
            let reservation = flowd_runtime::Reservation {
                run_in: Duration::from_millis((fire_at - clock.now_ms()).max(0) as u64),
                grace: RESERVED_GRACE,
            };
            engine.prewarm(&hot, reservation).await;
        });
    }

    fn horizon(&self) -> Option<i64> {
        self.lock_prewarming().horizon
    }

    /// A schedule changed: the coming fire times are read again on the next pre-warm.
    fn forget_horizon(&self) {
        let mut prewarming = self.lock_prewarming();
        prewarming.horizon = None;
        prewarming.waiting.clear(); // read again, with the fire times as they are now
        prewarming.done.clear();
    }

    fn lock_prewarming(&self) -> MutexGuard<'_, Prewarming> {
        match self.prewarming.lock() {
            Ok(prewarming) => prewarming,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Ticks whenever something is due, sleeping until the earliest fire time in between (or
    /// until shortly before one, to pre-warm), until `shutdown` completes. A change of schedule
    /// wakes it early.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = self.clock.now_ms();
            let full_batch = match self.tick(now).await {
                Ok(tick) => tick.handled() >= TICK_BATCH as usize,
                Err(error) => {
                    tracing::error!(%error, "scheduler tick failed");
                    false
                }
            };
            if full_batch {
                continue; // more are due right now
            }
            self.prewarm(now).await;
            let wait = self.wait_after_tick(now).await;
            let changed = self.engine.schedule_changed.notified();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                _ = changed => self.forget_horizon(),
            }
        }
    }

    /// How long to sleep after the tick at `ticked_at`: until the earliest fire time, or until
    /// the next one must be pre-warmed, measured from the clock as it is now.
    async fn wait_after_tick(&self, ticked_at: i64) -> Duration {
        let earliest = match self.engine.store.earliest_fire_at().await {
            Ok(earliest) => earliest,
            Err(error) => {
                tracing::error!(%error, "scheduler cannot read the next fire time");
                return Duration::from_secs(1);
            }
        };
        let wake = wake_at(earliest, self.horizon());
        let Some(wake) = min_some(wake, self.next_prewarm_at()) else {
            return MAX_SLEEP;
        };
        if earliest.is_some_and(|at| at <= ticked_at) {
            // Due, yet the tick just now could not take it: do not spin.
            return Duration::from_secs(1);
        }
        let wait_us = wake.saturating_mul(1_000) - self.clock.now_us();
        Duration::from_micros(wait_us.max(0) as u64).min(MAX_SLEEP)
    }
}

/// When the loop must wake next (epoch ms), given the earliest fire time and how far the
/// pre-warming has read: at the fire time, or [`PREWARM_AHEAD_MS`] before a fire time not read
/// yet (the earliest one, if it lies beyond the horizon; an unknown one past the horizon, if not).
fn wake_at(earliest: Option<i64>, horizon: Option<i64>) -> Option<i64> {
    let earliest = earliest?;
    match horizon {
        Some(horizon) if earliest <= horizon => Some(earliest.min(horizon - PREWARM_AHEAD_MS)),
        _ => Some(earliest - PREWARM_AHEAD_MS),
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The fire time after `fire_at` for `workflow`, strictly after `now`: overdue fire times in
/// between are not replayed. `None` for a schedule that cannot be read (logged) or never fires
/// again.
fn next_fire_time(workflow: &WorkflowRecord, fire_at: i64, now: i64) -> Option<i64> {
    let schedule = workflow
        .schedule
        .as_deref()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(text).ok())
        .and_then(|value| Schedule::parse(&value).ok());
    match schedule {
        Some(schedule) => schedule.next_after(now.max(fire_at), fire_at),
        None => {
            tracing::error!(workflow = %workflow.id, "unreadable schedule: the workflow is no longer scheduled");
            None
        }
    }
}
