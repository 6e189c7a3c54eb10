//! The scheduler: fires pull workflows at the times their schedules give, exactly once per fire
//! time, never two runs of one workflow at once, at most one catch-up run after downtime.
//!
//! Each enabled pull workflow has a `next_fire_at` in the store. A tick asks the store for the
//! workflows due now (an index range scan, never a scan of every workflow) and claims each fire
//! time with [`Store::claim_run`](flowd_store::Store::claim_run), which in one transaction moves
//! `next_fire_at` on and records the run: `running` if no run of the workflow is going, `skipped`
//! otherwise. A fire time already claimed (by an earlier tick, or another node sharing the store)
//! is left alone, so nothing here relies on there being a single scheduler.
//!
//! The next fire time is computed from the claimed one for intervals (no drift when a run is
//! slow) and always lies after *now*: after downtime the one overdue fire time runs once, and the
//! schedule goes on from now.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use flowd_core::schedule::Schedule;
use flowd_core::workflow::Trigger;
use flowd_store::{ClaimOutcome, FireAdvance, RunClaim, WorkflowRecord};
use tokio::task::JoinHandle;

use crate::error::Result;
use crate::executor::{claimable_record, Report};
use crate::Engine;

/// Most workflows claimed in one tick; more due ones are taken by the next tick, at once.
const TICK_BATCH: u32 = 256;
/// The longest the loop sleeps without looking at the store.
const MAX_SLEEP: Duration = Duration::from_secs(60);

/// How long before its fire time a workflow's warm instance is started, so that the run does not
/// begin with the module's top level.
const PREWARM_AHEAD_MS: i64 = 2_000;

/// The warning of a tick skipped because the previous run was still going.
pub const OVERLAP_WARNING: &str = "not run: the previous run of this workflow was still going";

/// Where the scheduler reads the time: the system clock, or a test's.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        crate::clock::now_ms()
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

pub struct Scheduler {
    engine: Arc<Engine>,
    clock: Arc<dyn Clock>,
    /// Fire times whose workflow was already pre-warmed: (workflow id, fire time).
    prewarmed: std::sync::Mutex<std::collections::HashSet<(String, i64)>>,
}

impl Scheduler {
    pub fn new(engine: Arc<Engine>, clock: Arc<dyn Clock>) -> Scheduler {
        Scheduler {
            engine,
            clock,
            prewarmed: Default::default(),
        }
    }

    /// Claims every fire time due at `now` and starts those runs.
    pub async fn tick(&self, now: i64) -> Result<Tick> {
        let mut tick = Tick::default();
        let due = self.engine.store.due_workflows(now, TICK_BATCH).await?;
        for workflow in due {
            match self.fire(&workflow, now).await {
                Ok(Fired::Started(handle)) => tick.started.push(handle),
                Ok(Fired::Overlapped) => tick.overlapped += 1,
                Ok(Fired::AlreadyClaimed) => tick.already_claimed += 1,
                Err(error) => {
                    tick.failed += 1;
                    tracing::error!(workflow = %workflow.id, %error, "a scheduled run could not be started");
                }
            }
        }
        Ok(tick)
    }

    async fn fire(&self, workflow: &WorkflowRecord, now: i64) -> Result<Fired> {
        let Some(fire_at) = workflow.next_fire_at else {
            return Ok(Fired::AlreadyClaimed);
        };
        let next_fire_at = next_fire_time(workflow, fire_at, now);
        let hot = self
            .engine
            .cache
            .load_by_id(self.engine.store.as_ref(), &workflow.id)
            .await?;
        let record = claimable_record(&hot, Trigger::Pull, Some(fire_at));
        let claim = RunClaim {
            execution: record.clone(),
            advance: Some(FireAdvance {
                fire_at,
                next_fire_at,
            }),
            skip_warning: Some(OVERLAP_WARNING.to_string()),
        };
        let outcome = self.engine.store.claim_run(&claim).await?;
        Ok(match outcome {
            ClaimOutcome::Started => {
                let engine = self.engine.clone();
                Fired::Started(tokio::spawn(async move {
                    engine.run_claimed(hot, record).await
                }))
            }
            ClaimOutcome::Overlapped => Fired::Overlapped,
            ClaimOutcome::AlreadyClaimed => Fired::AlreadyClaimed,
        })
    }

    /// Starts, in the background, the warm instances of the workflows due within
    /// [`PREWARM_AHEAD_MS`] of `now` that were not started for that fire time yet.
    pub async fn prewarm(&self, now: i64) {
        let soon = match self
            .engine
            .store
            .due_workflows(now + PREWARM_AHEAD_MS, TICK_BATCH)
            .await
        {
            Ok(soon) => soon,
            Err(error) => {
                tracing::debug!(%error, "no pre-warming this time");
                return;
            }
        };
        for workflow in soon {
            let Some(fire_at) = workflow.next_fire_at.filter(|at| *at > now) else {
                continue;
            };
            let first_time = {
                let mut prewarmed = match self.prewarmed.lock() {
                    Ok(prewarmed) => prewarmed,
                    Err(poisoned) => poisoned.into_inner(),
                };
                prewarmed.retain(|(_, at)| *at > now - PREWARM_AHEAD_MS);
                prewarmed.insert((workflow.id.clone(), fire_at))
            };
            if !first_time {
                continue;
            }
            let engine = self.engine.clone();
            tokio::spawn(async move {
                if let Ok(hot) = engine
                    .cache
                    .load_by_id(engine.store.as_ref(), &workflow.id)
                    .await
                {
                    engine.prewarm(&hot).await;
                }
            });
        }
    }

    fn is_prewarmed(&self, workflow_id: &str, fire_at: i64) -> bool {
        self.prewarmed
            .lock()
            .is_ok_and(|prewarmed| prewarmed.contains(&(workflow_id.to_string(), fire_at)))
    }

    /// Ticks whenever something is due, sleeping until the earliest fire time in between (or
    /// until shortly before it, to pre-warm), until `shutdown` completes. A change of schedule
    /// wakes it early.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let now = self.clock.now_ms();
            let full_batch = match self.tick(now).await {
                Ok(tick) => {
                    tick.started.len() + tick.overlapped + tick.already_claimed + tick.failed
                        >= TICK_BATCH as usize
                }
                Err(error) => {
                    tracing::error!(%error, "scheduler tick failed");
                    false
                }
            };
            if full_batch {
                continue; // more are due right now
            }
            self.prewarm(now).await;
            // The earliest fire time: wake up for it, or shortly before it to pre-warm.
            let wait = match self.engine.store.due_workflows(i64::MAX, 1).await {
                Ok(mut first) => match first.pop().and_then(|w| Some((w.id, w.next_fire_at?))) {
                    Some((id, at)) => {
                        let ticked_at = now;
                        let now = self.clock.now_ms();
                        if at <= ticked_at {
                            // Due, yet the tick just now could not take it: do not spin.
                            Duration::from_secs(1)
                        } else {
                            let wake = if self.is_prewarmed(&id, at) {
                                at
                            } else {
                                at - PREWARM_AHEAD_MS
                            };
                            Duration::from_millis((wake.max(now) - now) as u64)
                        }
                    }
                    None => MAX_SLEEP,
                },
                Err(error) => {
                    tracing::error!(%error, "scheduler cannot read the next fire time");
                    Duration::from_secs(1)
                }
            }
            .min(MAX_SLEEP);
            let changed = self.engine.schedule_changed.notified();
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(wait) => {}
                _ = changed => {}
            }
        }
    }
}

enum Fired {
    Started(JoinHandle<Report>),
    Overlapped,
    AlreadyClaimed,
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
