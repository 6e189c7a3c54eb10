//! Conformance: due workflows, the earliest fire time, and claiming runs exactly once.

use flowd_core::workflow::{ExecutionStatus, Mode, Trigger};
use flowd_store::{ClaimOutcome, ExecutionRecord, FireAdvance, RunClaim, Store, WorkflowRecord};

use crate::common::*;

const FIRE: i64 = 1_800_000_000_000;

async fn pull_workflow(
    store: &dyn Store,
    team_id: &str,
    name: &str,
    next_fire_at: Option<i64>,
) -> WorkflowRecord {
    let mut workflow = given_workflow(store, team_id, name).await;
    workflow.mode = Mode::Pull;
    workflow.next_fire_at = next_fire_at;
    store.update_workflow(&workflow).await.unwrap();
    workflow
}

fn tick(workflow: &WorkflowRecord, fire_at: i64, next: i64) -> RunClaim {
    RunClaim {
        execution: ExecutionRecord {
            trigger: Trigger::Pull,
            fire_at: Some(fire_at),
            ..running(&workflow.id, new_id())
        },
        advance: Some(FireAdvance {
            fire_at,
            next_fire_at: Some(next),
        }),
        skip_warning: Some("not run: the previous run was still going".into()),
    }
}

pub async fn due_workflows_are_those_at_or_before_now_earliest_first(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let late = pull_workflow(store, &team.id, "late", Some(FIRE - 10)).await;
    let now = pull_workflow(store, &team.id, "now", Some(FIRE)).await;
    pull_workflow(store, &team.id, "future", Some(FIRE + 1)).await;
    pull_workflow(store, &team.id, "unscheduled", None).await;
    let due: Vec<String> = store
        .due_workflows(FIRE, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|w| w.id)
        .collect();
    assert_eq!(due, vec![late.id, now.id]);
}

pub async fn due_workflows_leave_out_disabled_ones_and_respect_the_limit(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let mut paused = pull_workflow(store, &team.id, "paused", Some(FIRE - 5)).await;
    paused.enabled = false;
    store.update_workflow(&paused).await.unwrap();
    for i in 0..3 {
        pull_workflow(store, &team.id, &format!("w{i}"), Some(FIRE - i)).await;
    }
    let due = store.due_workflows(FIRE, 2).await.unwrap();
    assert_eq!(due.len(), 2);
    assert!(due.iter().all(|w| w.enabled));
}

pub async fn earliest_fire_at_is_the_smallest_next_fire_at(store: &dyn Store) {
    let team = given_team(store, "t").await;
    assert_eq!(store.earliest_fire_at().await.unwrap(), None);
    pull_workflow(store, &team.id, "b", Some(FIRE + 5)).await;
    pull_workflow(store, &team.id, "a", Some(FIRE + 2)).await;
    pull_workflow(store, &team.id, "c", None).await;
    assert_eq!(store.earliest_fire_at().await.unwrap(), Some(FIRE + 2));
}

pub async fn claiming_a_due_fire_time_starts_the_run_and_advances_the_schedule(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let workflow = pull_workflow(store, &team.id, "w", Some(FIRE)).await;
    let claim = tick(&workflow, FIRE, FIRE + 60_000);
    assert_eq!(
        store.claim_run(&claim).await.unwrap(),
        ClaimOutcome::Started
    );
    let stored = store.execution(&claim.execution.id).await.unwrap().unwrap();
    assert_eq!(stored.status, ExecutionStatus::Running);
    assert_eq!(stored.fire_at, Some(FIRE));
    let workflow = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(workflow.next_fire_at, Some(FIRE + 60_000));
}

pub async fn a_fire_time_is_claimed_exactly_once(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let workflow = pull_workflow(store, &team.id, "w", Some(FIRE)).await;
    let first = tick(&workflow, FIRE, FIRE + 60_000);
    let second = tick(&workflow, FIRE, FIRE + 60_000);
    assert_eq!(
        store.claim_run(&first).await.unwrap(),
        ClaimOutcome::Started
    );
    assert_eq!(
        store.claim_run(&second).await.unwrap(),
        ClaimOutcome::AlreadyClaimed
    );
    assert_eq!(store.execution(&second.execution.id).await.unwrap(), None);
}

pub async fn concurrent_claims_of_one_fire_time_start_one_run(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let workflow = pull_workflow(store, &team.id, "w", Some(FIRE)).await;
    let claims: Vec<RunClaim> = (0..6)
        .map(|_| tick(&workflow, FIRE, FIRE + 1_000))
        .collect();
    let outcomes =
        futures::future::join_all(claims.iter().map(|claim| store.claim_run(claim))).await;
    let started = outcomes
        .into_iter()
        .filter(|outcome| matches!(outcome, Ok(ClaimOutcome::Started)))
        .count();
    assert_eq!(started, 1);
}

pub async fn a_tick_while_a_run_is_going_is_recorded_as_skipped_and_consumed(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let workflow = pull_workflow(store, &team.id, "w", Some(FIRE)).await;
    assert_eq!(
        store
            .claim_run(&tick(&workflow, FIRE, FIRE + 1_000))
            .await
            .unwrap(),
        ClaimOutcome::Started
    );
    let overlapping = tick(&workflow, FIRE + 1_000, FIRE + 2_000);
    assert_eq!(
        store.claim_run(&overlapping).await.unwrap(),
        ClaimOutcome::Overlapped
    );
    let skipped = store
        .execution(&overlapping.execution.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped.status, ExecutionStatus::Skipped);
    assert!(skipped.warnings.iter().any(|w| w.contains("still going")));
    let workflow = store.workflow_by_id(&workflow.id).await.unwrap().unwrap();
    assert_eq!(workflow.next_fire_at, Some(FIRE + 2_000));
}

pub async fn a_manual_claim_while_a_run_is_going_records_nothing(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let workflow = pull_workflow(store, &team.id, "w", Some(FIRE)).await;
    assert_eq!(
        store
            .claim_run(&tick(&workflow, FIRE, FIRE + 1_000))
            .await
            .unwrap(),
        ClaimOutcome::Started
    );
    let manual = RunClaim {
        execution: ExecutionRecord {
            trigger: Trigger::Manual,
            ..running(&workflow.id, new_id())
        },
        advance: None,
        skip_warning: None,
    };
    assert_eq!(
        store.claim_run(&manual).await.unwrap(),
        ClaimOutcome::Overlapped
    );
    assert_eq!(store.execution(&manual.execution.id).await.unwrap(), None);
}

pub async fn a_finished_run_no_longer_blocks_the_next_claim(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let workflow = pull_workflow(store, &team.id, "w", Some(FIRE)).await;
    let first = tick(&workflow, FIRE, FIRE + 1_000);
    store.claim_run(&first).await.unwrap();
    let finished = ExecutionRecord {
        status: ExecutionStatus::Success,
        finished_at: Some(FIRE + 10),
        ..first.execution.clone()
    };
    store
        .commit(&[flowd_store::StoreWrite::PutExecution(finished)])
        .await
        .unwrap();
    assert_eq!(
        store
            .claim_run(&tick(&workflow, FIRE + 1_000, FIRE + 2_000))
            .await
            .unwrap(),
        ClaimOutcome::Started
    );
}

/// A finished run of `workflow` that already holds `fire_at` (UNIQUE(workflow_id, fire_at)).
async fn recorded_run_at(store: &dyn Store, workflow: &WorkflowRecord, fire_at: i64) {
    let finished = ExecutionRecord {
        status: ExecutionStatus::Success,
        finished_at: Some(fire_at + 10),
        ..tick(workflow, fire_at, fire_at + 1_000).execution
    };
    store
        .commit(&[flowd_store::StoreWrite::PutExecution(finished)])
        .await
        .unwrap();
}

pub async fn an_empty_batch_of_claims_claims_nothing(store: &dyn Store) {
    assert_eq!(store.claim_runs(&[]).await.unwrap(), vec![]);
}

pub async fn claiming_a_batch_starts_each_run_and_advances_each_schedule(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let a = pull_workflow(store, &team.id, "a", Some(FIRE)).await;
    let b = pull_workflow(store, &team.id, "b", Some(FIRE)).await;
    let claims = [tick(&a, FIRE, FIRE + 1_000), tick(&b, FIRE, FIRE + 2_000)];
    assert_eq!(
        store.claim_runs(&claims).await.unwrap(),
        vec![ClaimOutcome::Started, ClaimOutcome::Started]
    );
    for (claim, next) in claims.iter().zip([FIRE + 1_000, FIRE + 2_000]) {
        let stored = store.execution(&claim.execution.id).await.unwrap().unwrap();
        assert_eq!(stored.status, ExecutionStatus::Running);
        let workflow = store
            .workflow_by_id(&claim.execution.workflow_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(workflow.next_fire_at, Some(next));
    }
}

pub async fn a_batch_answers_each_claim_as_claim_run_would_have(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let fresh = pull_workflow(store, &team.id, "fresh", Some(FIRE)).await;
    let stale = pull_workflow(store, &team.id, "stale", Some(FIRE + 5)).await;
    let busy = pull_workflow(store, &team.id, "busy", Some(FIRE)).await;
    store
        .claim_run(&tick(&busy, FIRE, FIRE + 1_000))
        .await
        .unwrap();
    let claims = [
        tick(&fresh, FIRE, FIRE + 1_000),
        tick(&stale, FIRE, FIRE + 1_000),
        tick(&busy, FIRE + 1_000, FIRE + 2_000),
    ];
    assert_eq!(
        store.claim_runs(&claims).await.unwrap(),
        vec![
            ClaimOutcome::Started,
            ClaimOutcome::AlreadyClaimed,
            ClaimOutcome::Overlapped
        ]
    );
    assert_eq!(
        store.execution(&claims[1].execution.id).await.unwrap(),
        None
    );
    let skipped = store
        .execution(&claims[2].execution.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(skipped.status, ExecutionStatus::Skipped);
    let stale = store.workflow_by_id(&stale.id).await.unwrap().unwrap();
    assert_eq!(stale.next_fire_at, Some(FIRE + 5), "left alone");
}

pub async fn a_batch_claim_of_a_fire_time_already_recorded_undoes_only_that_claim(
    store: &dyn Store,
) {
    let team = given_team(store, "t").await;
    let recorded = pull_workflow(store, &team.id, "recorded", Some(FIRE)).await;
    let other = pull_workflow(store, &team.id, "other", Some(FIRE)).await;
    recorded_run_at(store, &recorded, FIRE).await;
    let claims = [
        tick(&recorded, FIRE, FIRE + 1_000),
        tick(&other, FIRE, FIRE + 1_000),
    ];
    assert_eq!(
        store.claim_runs(&claims).await.unwrap(),
        vec![ClaimOutcome::AlreadyClaimed, ClaimOutcome::Started]
    );
    assert_eq!(
        store.execution(&claims[0].execution.id).await.unwrap(),
        None
    );
    let recorded = store.workflow_by_id(&recorded.id).await.unwrap().unwrap();
    assert_eq!(
        recorded.next_fire_at,
        Some(FIRE),
        "its schedule did not move"
    );
    let other = store.workflow_by_id(&other.id).await.unwrap().unwrap();
    assert_eq!(other.next_fire_at, Some(FIRE + 1_000));
}

pub async fn claims_of_one_workflow_in_a_batch_see_the_ones_before_them(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let workflow = pull_workflow(store, &team.id, "w", Some(FIRE)).await;
    let claims = [
        tick(&workflow, FIRE, FIRE + 1_000),
        tick(&workflow, FIRE + 1_000, FIRE + 2_000),
    ];
    assert_eq!(
        store.claim_runs(&claims).await.unwrap(),
        vec![ClaimOutcome::Started, ClaimOutcome::Overlapped]
    );
}

pub async fn concurrent_batches_of_the_same_fire_times_start_each_run_once(store: &dyn Store) {
    let team = given_team(store, "t").await;
    let a = pull_workflow(store, &team.id, "a", Some(FIRE)).await;
    let b = pull_workflow(store, &team.id, "b", Some(FIRE)).await;
    let batches: Vec<[RunClaim; 2]> = (0..4)
        .map(|_| [tick(&a, FIRE, FIRE + 1_000), tick(&b, FIRE, FIRE + 1_000)])
        .collect();
    let outcomes =
        futures::future::join_all(batches.iter().map(|batch| store.claim_runs(batch))).await;
    let started = outcomes
        .into_iter()
        .flat_map(|outcome| outcome.unwrap())
        .filter(|outcome| *outcome == ClaimOutcome::Started)
        .count();
    assert_eq!(started, 2);
}
