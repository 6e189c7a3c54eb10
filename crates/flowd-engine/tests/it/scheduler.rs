//! Pull mode: the scheduler driven with an injected clock (`tick(now)`), against real Python.

use std::sync::Arc;
use std::time::Duration;

use flowd_core::workflow::{ExecutionStatus, Trigger};
use flowd_engine::scheduler::{Scheduler, SystemClock};
use flowd_engine::{EngineError, WorkflowPatch};
use flowd_store::{ExecutionQuery, ExecutionRecord};
use serde_json::json;

use crate::support::*;

const MINUTE: i64 = 60_000;

fn scheduler(h: &Harness) -> Scheduler {
    Scheduler::new(h.engine.clone(), Arc::new(SystemClock))
}

async fn executions(h: &Harness, workflow_id: &str) -> Vec<ExecutionRecord> {
    h.engine
        .store()
        .list_executions(&ExecutionQuery {
            workflow_id: Some(workflow_id.to_string()),
            ..Default::default()
        })
        .await
        .expect("list")
}

fn counter_code() -> String {
    "def workflow(settings):\n    settings['runs'] = settings.get('runs', 0) + 1\n".to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interval_schedule_first_fires_one_interval_after_it_is_set() {
    let h = engine().await;
    let before = flowd_engine::clock::now_ms();
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "5m"}}))
        .await;
    let next = workflow.next_fire_at.expect("scheduled");
    assert!(next >= before + 5 * MINUTE && next <= flowd_engine::clock::now_ms() + 5 * MINUTE);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_due_tick_runs_the_workflow_and_persists_its_settings() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1m"}}))
        .await;
    let scheduler = scheduler(&h);
    let mut fire = workflow.next_fire_at.unwrap();
    for _ in 0..2 {
        let tick = scheduler.tick(fire).await.unwrap();
        assert_eq!(tick.started.len(), 1);
        for run in tick.started {
            let report = run.await.unwrap();
            assert_eq!(report.record.status, ExecutionStatus::Success);
            assert_eq!(report.record.trigger, Trigger::Pull);
            assert_eq!(report.record.fire_at, Some(fire));
        }
        fire += MINUTE;
    }
    let settings = h.engine.store().settings(&workflow.id).await.unwrap();
    assert_eq!(settings["runs"], json!(2));
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_runs_before_the_fire_time() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1m"}}))
        .await;
    let tick = scheduler(&h)
        .tick(workflow.next_fire_at.unwrap() - 1)
        .await
        .unwrap();
    assert!(tick.started.is_empty());
    assert!(executions(&h, &workflow.id).await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fire_time_runs_once_even_when_ticked_twice() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1m"}}))
        .await;
    let scheduler = scheduler(&h);
    let fire = workflow.next_fire_at.unwrap();
    let first = scheduler.tick(fire).await.unwrap();
    let second = scheduler.tick(fire).await.unwrap();
    assert_eq!(first.started.len() + second.started.len(), 1);
    for run in first.started.into_iter().chain(second.started) {
        run.await.unwrap();
    }
    assert_eq!(executions(&h, &workflow.id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tick_while_the_previous_run_is_going_is_recorded_as_skipped() {
    let h = engine().await;
    let code = "import time\ndef workflow(settings):\n    time.sleep(1.5)\n";
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": code, "schedule": {"every": "1s"}}))
        .await;
    let scheduler = scheduler(&h);
    let fire = workflow.next_fire_at.unwrap();
    let first = scheduler.tick(fire).await.unwrap();
    assert_eq!(first.started.len(), 1);
    let second = scheduler.tick(fire + 1_000).await.unwrap();
    assert_eq!((second.started.len(), second.overlapped), (0, 1));
    for run in first.started {
        assert_eq!(run.await.unwrap().record.status, ExecutionStatus::Success);
    }
    let records = executions(&h, &workflow.id).await;
    let skipped: Vec<_> = records
        .iter()
        .filter(|e| e.status == ExecutionStatus::Skipped)
        .collect();
    assert_eq!(skipped.len(), 1);
    assert_eq!(skipped[0].fire_at, Some(fire + 1_000));
    assert!(
        skipped[0].warnings[0].contains("still going"),
        "{:?}",
        skipped[0].warnings
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn after_downtime_one_catch_up_run_happens_then_the_schedule_goes_on_from_now() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1m"}}))
        .await;
    let fire = workflow.next_fire_at.unwrap();
    let now = fire + 10 * MINUTE + 30_000; // ten fire times missed
    let scheduler = scheduler(&h);
    let tick = scheduler.tick(now).await.unwrap();
    assert_eq!(tick.started.len(), 1);
    for run in tick.started {
        run.await.unwrap();
    }
    let next = h.reload(&workflow).await.next_fire_at.unwrap();
    assert_eq!(
        next,
        fire + 11 * MINUTE,
        "the next fire time is the first after now, on the grid"
    );
    assert!(scheduler.tick(now).await.unwrap().started.is_empty());
    assert_eq!(executions(&h, &workflow.id).await.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn pausing_stops_ticks_and_resuming_schedules_from_now() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1m"}}))
        .await;
    let fire = workflow.next_fire_at.unwrap();
    let pause = WorkflowPatch {
        enabled: Some(false),
        ..Default::default()
    };
    let paused = h
        .engine
        .update_workflow(
            &h.principal,
            &workflow.id,
            pause,
            flowd_engine::DEFAULT_DEPLOY_WAIT,
        )
        .await
        .unwrap()
        .0;
    assert_eq!(paused.next_fire_at, None);
    assert!(scheduler(&h)
        .tick(fire + 5 * MINUTE)
        .await
        .unwrap()
        .started
        .is_empty());
    let before = flowd_engine::clock::now_ms();
    let resume = WorkflowPatch {
        enabled: Some(true),
        ..Default::default()
    };
    let resumed = h
        .engine
        .update_workflow(
            &h.principal,
            &workflow.id,
            resume,
            flowd_engine::DEFAULT_DEPLOY_WAIT,
        )
        .await
        .unwrap()
        .0;
    let next = resumed.next_fire_at.unwrap();
    assert!(next >= before + MINUTE, "resumed schedules start from now");
}

#[tokio::test(flavor = "multi_thread")]
async fn changing_the_schedule_recomputes_the_next_fire_time() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1h"}}))
        .await;
    let before = flowd_engine::clock::now_ms();
    let patch: WorkflowPatch = serde_json::from_value(
        json!({"schedule": {"cron": "*/5 * * * *", "timezone": "Europe/Paris"}}),
    )
    .unwrap();
    let updated = h
        .engine
        .update_workflow(
            &h.principal,
            &workflow.id,
            patch,
            flowd_engine::DEFAULT_DEPLOY_WAIT,
        )
        .await
        .unwrap()
        .0;
    let next = updated.next_fire_at.unwrap();
    assert!(next > before && next <= before + 5 * MINUTE);
    assert_eq!(
        next % (5 * MINUTE),
        0,
        "a */5 cron fires on a multiple of 5 minutes"
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(updated.schedule.as_deref().unwrap()).unwrap(),
        json!({"cron": "*/5 * * * *", "timezone": "Europe/Paris"})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn deleting_a_workflow_stops_its_schedule() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1m"}}))
        .await;
    h.engine
        .delete_workflow(&h.principal, &workflow.id)
        .await
        .unwrap();
    assert!(scheduler(&h)
        .tick(workflow.next_fire_at.unwrap())
        .await
        .unwrap()
        .started
        .is_empty());
    assert_eq!(h.engine.store().earliest_fire_at().await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn run_now_starts_a_manual_run_and_refuses_while_one_is_going() {
    let h = engine().await;
    let code =
        "import time\ndef workflow(settings):\n    time.sleep(1)\n    settings['manual'] = True\n";
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": code, "schedule": {"every": "1h"}}))
        .await;
    let engine = h.engine.clone();
    let principal = h.principal.clone();
    let id = workflow.id.clone();
    let first = tokio::spawn(async move { engine.run_now(&principal, &id, None).await });
    eventually(
        Duration::from_secs(10),
        "the first run is going",
        || async { (h.engine.executions_in_flight() == 1).then_some(()) },
    )
    .await;
    let second = h.engine.run_now(&h.principal, &workflow.id, None).await;
    assert!(
        matches!(second, Err(EngineError::Busy(_))),
        "{:?}",
        second.map(|r| r.0.record)
    );
    let (report, _) = first.await.unwrap().unwrap();
    assert_eq!(report.record.trigger, Trigger::Manual);
    assert_eq!(report.record.status, ExecutionStatus::Success);
    assert_eq!(
        h.engine.store().settings(&workflow.id).await.unwrap()["manual"],
        json!(true)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_the_persisted_next_fire_time() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1m"}}))
        .await;
    let next = workflow.next_fire_at.unwrap();
    let restarted = open_engine(h.dir.path()).await;
    let stored = restarted
        .store()
        .workflow_by_id(&workflow.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.next_fire_at, Some(next));
    let tick = Scheduler::new(restarted.clone(), Arc::new(SystemClock))
        .tick(next)
        .await
        .unwrap();
    assert_eq!(tick.started.len(), 1);
    for run in tick.started {
        assert_eq!(run.await.unwrap().record.status, ExecutionStatus::Success);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_raising_pull_run_persists_nothing() {
    let h = engine().await;
    let code =
        "def workflow(settings):\n    settings['touched'] = True\n    raise RuntimeError('boom')\n";
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": code, "schedule": {"every": "1m"}, "settings": {"kept": 1}}))
        .await;
    let tick = scheduler(&h)
        .tick(workflow.next_fire_at.unwrap())
        .await
        .unwrap();
    for run in tick.started {
        let report = run.await.unwrap();
        assert_eq!(report.record.status, ExecutionStatus::Error);
        assert_eq!(report.record.error.unwrap().kind, "RuntimeError");
    }
    let settings = h.engine.store().settings(&workflow.id).await.unwrap();
    assert_eq!(serde_json::Value::Object(settings), json!({"kept": 1}));
}

#[tokio::test(flavor = "multi_thread")]
async fn pull_workflows_need_a_valid_schedule_and_catch_workflows_none() {
    let h = engine().await;
    let cases = [
        json!({"name": "a", "mode": "pull", "code": counter_code()}),
        json!({"name": "b", "mode": "pull", "code": counter_code(), "schedule": {"every": "500ms"}}),
        json!({"name": "c", "mode": "pull", "code": counter_code(), "schedule": {"cron": "61 * * * *"}}),
        json!({"name": "d", "mode": "pull", "code": counter_code(), "schedule": {"cron": "* * * * *", "timezone": "Mars/Base"}}),
        json!({"name": "e", "mode": "catch", "code": "def workflow(_request, settings):\n    pass\n", "schedule": {"every": "1m"}}),
    ];
    for case in cases {
        let new = serde_json::from_value(case.clone()).unwrap();
        let result = h
            .engine
            .create_workflow(&h.principal, new, flowd_engine::DEFAULT_DEPLOY_WAIT)
            .await;
        assert!(
            matches!(result, Err(EngineError::Invalid(ref m)) if m.starts_with("schedule")),
            "{case}: {:?}",
            result.err()
        );
    }
}

/// One real-time smoke test: the loop itself fires a 1 s schedule.
#[tokio::test(flavor = "multi_thread")]
async fn e2e_the_scheduler_loop_fires_a_one_second_schedule_on_time() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1s"}}))
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let loop_task = tokio::spawn(scheduler(&h).run(async move {
        let _ = stopped.await;
    }));
    eventually(Duration::from_secs(10), "the loop fired twice", || async {
        (executions(&h, &workflow.id).await.len() >= 2).then_some(())
    })
    .await;
    let _ = stop.send(());
    loop_task.await.unwrap();
    assert!(h.engine.wait_idle(Duration::from_secs(5)).await);
    h.engine.flush().await;
    let runs = executions(&h, &workflow.id).await;
    assert!((2..=3).contains(&runs.len()), "{} runs", runs.len());
    for run in &runs {
        let lateness = run.started_at - run.fire_at.unwrap();
        assert!(
            (0..500).contains(&lateness),
            "started {lateness} ms after its fire time"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_due_soon_is_prewarmed_once() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "pull", "code": counter_code(), "schedule": {"every": "1h"}}))
        .await;
    let scheduler = scheduler(&h);
    let fire = workflow.next_fire_at.unwrap();
    // The deploy started the version's instance (its import check): start from none.
    h.engine.runtime().forget_all();
    assert_eq!(h.engine.runtime().warm_instances(), 0);
    scheduler.prewarm(fire - 10_000).await;
    // An interval in which nothing may happen: an instance is started in the background, so
    // its absence is only seen by giving it the time to appear.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        h.engine.runtime().warm_instances(),
        0,
        "not yet: the fire time is 10 s away"
    );
    scheduler.prewarm(fire - 1_000).await;
    eventually(
        Duration::from_secs(5),
        "the instance is started ahead of the fire time",
        || async { (h.engine.runtime().warm_instances() == 1).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn one_tick_claims_and_starts_every_workflow_due() {
    let h = engine().await;
    let mut workflows = Vec::new();
    for name in ["a", "b", "c"] {
        workflows.push(
            h.create(json!({"name": name, "mode": "pull", "code": counter_code(), "schedule": {"every": "1h"}}))
                .await,
        );
    }
    let last_due = workflows
        .iter()
        .filter_map(|w| w.next_fire_at)
        .max()
        .unwrap();
    let tick = scheduler(&h).tick(last_due).await.unwrap();
    assert_eq!(tick.started.len(), 3);
    for run in tick.started {
        assert_eq!(run.await.unwrap().record.status, ExecutionStatus::Success);
    }
    for workflow in &workflows {
        let runs = executions(&h, &workflow.id).await;
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].fire_at, workflow.next_fire_at);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_scheduled_run_is_retried_as_its_next_attempt_by_the_dispatcher() {
    let h = engine().await;
    let code = "def workflow(settings, context):\n    \
                if context.attempt < 2:\n        \
                raise ValueError('the first attempt fails')\n    \
                settings['attempt'] = context.attempt\n";
    let workflow = h
        .create(json!({
            "name": "w", "mode": "pull", "code": code, "schedule": {"every": "1m"},
            "retry": {"max_attempts": 3, "backoff_s": 0.1},
        }))
        .await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let dispatcher = tokio::spawn(h.engine.clone().dispatch_async_calls(async move {
        let _ = stopped.await;
    }));

    let tick = scheduler(&h)
        .tick(workflow.next_fire_at.unwrap())
        .await
        .unwrap();
    let mut first = None;
    for run in tick.started {
        first = Some(run.await.unwrap().record);
    }
    let first = first.expect("the scheduled run");
    assert_eq!((first.status, first.attempt), (ExecutionStatus::Error, 1));
    let retry = eventually(Duration::from_secs(30), "the retry has run", || async {
        executions(&h, &workflow.id)
            .await
            .into_iter()
            .find(|execution| {
                execution.attempt == 2 && execution.status != ExecutionStatus::Running
            })
    })
    .await;

    assert_eq!(retry.status, ExecutionStatus::Success);
    assert_eq!(retry.trigger, Trigger::Pull);
    assert_eq!(retry.retry_of.as_deref(), Some(first.id.as_str()));
    let settings = h.engine.store().settings(&workflow.id).await.unwrap();
    assert_eq!(settings["attempt"], json!(2));
    assert_eq!(executions(&h, &workflow.id).await.len(), 2);
    let _ = stop.send(());
    dispatcher.await.unwrap();
}
