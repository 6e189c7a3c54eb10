//! The audit log's retention: the sweep deletes the entries older than `audit_retention_days`.

use flowd_core::access::AuditAction;
use flowd_engine::clock::now_ms;
use flowd_engine::EngineConfig;
use flowd_store::{AuditEntry, AuditQuery};

use crate::support::open_engine_with;

const DAY_MS: i64 = 24 * 3600 * 1000;

fn entry(at: i64) -> AuditEntry {
    AuditEntry {
        id: uuid::Uuid::now_v7().to_string(),
        at,
        actor_id: "key".into(),
        actor_name: "ci".into(),
        action: AuditAction::TeamCreated,
        team_id: None,
        team_name: None,
        workflow_id: None,
        workflow_name: None,
        summary: "a team".into(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_deletes_only_entries_past_the_retention() {
    let dir = tempfile::tempdir().expect("tmp");
    let engine = open_engine_with(
        dir.path(),
        EngineConfig {
            audit_retention_days: 30,
            ..EngineConfig::default()
        },
    )
    .await;
    let now = now_ms();
    let kept = entry(now - 29 * DAY_MS);
    for old in [
        entry(now - 31 * DAY_MS),
        entry(now - 400 * DAY_MS),
        kept.clone(),
    ] {
        engine.store().append_audit(&old).await.unwrap();
    }
    assert_eq!(engine.sweep_audit_log().await.unwrap(), 2);
    let left = engine
        .store()
        .audit_entries(&AuditQuery::default())
        .await
        .unwrap();
    assert_eq!(left, vec![kept]);
}
