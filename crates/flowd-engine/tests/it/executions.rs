//! Reading executions back.

use std::time::Duration;

use flowd_core::workflow::{ExecutionStatus, Trigger};
use flowd_core::PyValue;
use serde_json::json;
use sqlx::{Connection, SqliteConnection};

use crate::support::engine;

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_call_is_readable_by_its_id_as_soon_as_it_is_answered() {
    let h = engine().await;
    h.create(json!({
        "name": "paused",
        "mode": "catch",
        "enabled": false,
        "code": "def workflow(_request, settings):\n    return None\n",
    }))
    .await;
    // Another connection holds SQLite's write lock: the refusal's record cannot be committed
    // before the answer (it is only queued, as under overload).
    let path = h.dir.path().join("flowd.db");
    let mut holder = SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let hot = h
        .engine
        .hook_target("default", "paused")
        .await
        .unwrap()
        .unwrap();
    let report = h
        .engine
        .execute(hot, Trigger::Catch, Some(PyValue::Dict(Vec::new())))
        .await;
    assert_eq!(report.record.status, ExecutionStatus::Skipped);

    let engine = h.engine.clone();
    let principal = h.principal.clone();
    let id = report.record.id.clone();
    let mut read = tokio::spawn(async move { engine.execution(&principal, &id).await });
    // An interval in which nothing may happen: the read waits for the queued record rather than
    // answering (or failing) without it while the lock is held.
    let early = tokio::time::timeout(Duration::from_millis(300), &mut read).await;
    assert!(
        early.is_err(),
        "the read answered while its record could not be committed"
    );
    sqlx::query("COMMIT").execute(&mut holder).await.unwrap();

    let (record, _) = read.await.unwrap().expect("found by its id");
    assert_eq!(record.id, report.record.id);
    assert_eq!(record.status, ExecutionStatus::Skipped);
}
