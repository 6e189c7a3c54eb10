//! Deploys across restarts and races: builds left going are resumed; an older version settling
//! late never replaces a newer active one.

use std::time::Duration;

use flowd_core::workflow::VersionState;
use flowd_engine::WorkflowPatch;
use flowd_store::VersionRecord;
use serde_json::json;

use crate::support::{engine, open_engine};

fn returning(text: &str) -> String {
    format!(
        "def workflow(_request, settings):\n    return {{'status_code': 200, 'body': {text:?}}}\n"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_left_going_by_a_stopped_process_is_resumed_at_start() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "catch", "code": returning("v1")}))
        .await;
    // What a process that stopped in the middle of a deploy leaves: a version still building.
    h.engine
        .store()
        .add_version(
            &VersionRecord {
                workflow_id: workflow.id.clone(),
                version: 2,
                code: returning("v2"),
                requirements: Vec::new(),
                state: VersionState::Building,
                build_log: String::new(),
                error: None,
                environment: None,
                created_at: 0,
                settled_at: None,
            },
            0,
        )
        .await
        .unwrap();

    let restarted = open_engine(h.dir.path()).await;
    let principal = restarted
        .authenticate("engine-test-admin-key")
        .await
        .unwrap()
        .unwrap();
    let deployment = restarted
        .deployment(&principal, &workflow.id, 2, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(deployment.state, VersionState::Ready, "{deployment:?}");
    assert!(deployment.active);
    let (report, _) = restarted
        .run_now(&principal, &workflow.id, None)
        .await
        .unwrap();
    assert_eq!(report.reply.unwrap().body, b"v2");
}

#[tokio::test(flavor = "multi_thread")]
async fn deploys_in_quick_succession_end_with_the_newest_active() {
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "catch", "code": returning("v1")}))
        .await;
    let mut waits = Vec::new();
    for n in 2..=4 {
        let patch = WorkflowPatch {
            code: Some(returning(&format!("v{n}"))),
            ..Default::default()
        };
        let engine = h.engine.clone();
        let principal = h.principal.clone();
        let id = workflow.id.clone();
        waits.push(tokio::spawn(async move {
            engine
                .update_workflow(&principal, &id, patch, Duration::from_secs(60))
                .await
                .unwrap()
        }));
    }
    for wait in waits {
        wait.await.unwrap();
    }
    // Each change got its own version number, and the newest is the one serving.
    let record = h.reload(&workflow).await;
    assert_eq!(record.version, Some(4));
    let versions = h.engine.versions(&h.principal, &workflow.id).await.unwrap();
    assert_eq!(versions.len(), 4);
    let newest = versions[0].code.clone();
    let (report, _) = h
        .engine
        .run_now(&h.principal, &workflow.id, None)
        .await
        .unwrap();
    assert!(newest.contains(std::str::from_utf8(&report.reply.unwrap().body).unwrap()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_workflow_without_an_active_version_records_its_ticks_as_skipped() {
    let h = engine().await;
    let new: flowd_engine::NewWorkflow = serde_json::from_value(json!({
        "name": "p", "mode": "pull", "schedule": {"every": "1h"},
        "code": "import no_such_module_q\ndef workflow(settings):\n    pass\n",
    }))
    .unwrap();
    let (workflow, deployment) = h
        .engine
        .create_workflow(&h.principal, new, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(deployment.state, VersionState::Failed);
    assert_eq!(workflow.version, None);
    let fire = workflow.next_fire_at.unwrap();
    let scheduler = flowd_engine::scheduler::Scheduler::new(
        h.engine.clone(),
        std::sync::Arc::new(flowd_engine::scheduler::SystemClock),
    );
    let tick = scheduler.tick(fire).await.unwrap();
    for run in tick.started {
        run.await.unwrap();
    }
    h.engine.flush().await;
    let runs = h
        .engine
        .executions(&h.principal, &workflow.id, None, 10, None)
        .await
        .unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].status,
        flowd_core::workflow::ExecutionStatus::Skipped
    );
    assert!(
        runs[0].warnings[0].contains("no active version"),
        "{:?}",
        runs[0].warnings
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_whose_runtime_is_gone_fails_its_runs_naming_it() {
    // A server restarted without the interpreter a workflow was created with.
    let h = engine().await;
    let workflow = h
        .create(json!({"name": "w", "mode": "catch", "code": returning("v1")}))
        .await;
    let mut moved = h.reload(&workflow).await;
    moved.runtime = "python3.99".to_string();
    h.engine.store().update_workflow(&moved).await.unwrap();
    let restarted = open_engine(h.dir.path()).await;
    let principal = restarted
        .authenticate("engine-test-admin-key")
        .await
        .unwrap()
        .unwrap();
    let (report, _) = restarted
        .run_now(&principal, &workflow.id, None)
        .await
        .unwrap();
    assert_eq!(report.reply.unwrap().status, 500);
    let error = report.record.error.expect("an error is recorded");
    assert_eq!(error.kind, "RuntimeUnavailable");
    assert!(error.message.contains("python3.99"), "{}", error.message);
}
