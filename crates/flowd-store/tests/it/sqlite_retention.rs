//! Retention on the SQLite backend: the space of the executions deleted is reused, so a store
//! kept to a bounded history stops growing. A small run is a regular test; the soak of the
//! figure in the README (200,000 executions of 1 KiB of output kept to 10,000) is ignored by
//! default: `cargo test -p flowd-store --release --test it -- --ignored --nocapture soak`.

use std::path::Path;
use std::time::{Duration, Instant};

use flowd_core::retention::RetentionCut;
use flowd_core::workflow::ExecutionStatus;
use flowd_store::{ExecutionRecord, SqliteStore, Store, StoreWrite};
use sqlx::{Connection, SqliteConnection};
use tempfile::TempDir;

use crate::common::*;

/// Bytes of output each execution keeps.
const OUTPUT_BYTES: usize = 1024;
/// What the retention task deletes with one statement (flowd-engine's
/// `RetentionConfig::default().batch`).
const BATCH: u32 = 100;

/// The size of the database file and of its WAL.
fn file_sizes(path: &Path) -> (u64, u64) {
    let size = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    (size(path), size(&path.with_extension("db-wal")))
}

/// What a run of [`commit_and_prune`] measured.
struct Run {
    /// After each prune: executions committed so far, database file and WAL sizes.
    sizes: Vec<(u64, u64, u64)>,
    /// How long each delete statement took.
    deletes: Vec<Duration>,
}

/// Commits `count` executions with 1 KiB of output each, one call each (as hook calls do), and
/// every `every` commits deletes what falls beyond the `keep` newest, a batch at a time, as the
/// retention task does.
async fn commit_and_prune(
    store: &SqliteStore,
    path: &Path,
    workflow_id: &str,
    count: u64,
    keep: u64,
    every: u64,
) -> Run {
    let cut = RetentionCut {
        started_before: None,
        keep_newest: Some(keep),
    };
    let output = "x".repeat(OUTPUT_BYTES);
    let mut run = Run {
        sizes: Vec::new(),
        deletes: Vec::new(),
    };
    for done in 1..=count {
        let record = ExecutionRecord {
            status: ExecutionStatus::Success,
            fire_at: None,
            logs: output.clone(),
            ..execution(workflow_id, new_id())
        };
        store
            .commit(&[StoreWrite::PutExecution(record)])
            .await
            .unwrap();
        if done % every == 0 {
            loop {
                let started = Instant::now();
                let deleted = store
                    .prune_executions(workflow_id, &cut, BATCH)
                    .await
                    .unwrap();
                run.deletes.push(started.elapsed());
                if deleted < u64::from(BATCH) {
                    break;
                }
            }
            let (database, wal) = file_sizes(path);
            run.sizes.push((done, database, wal));
        }
    }
    run
}

async fn count_executions(store: &dyn Store, workflow_id: &str) -> usize {
    let query = flowd_store::ExecutionQuery {
        workflow_id: Some(workflow_id.to_string()),
        limit: 1000,
        ..Default::default()
    };
    store.list_executions(&query).await.unwrap().len()
}

#[tokio::test]
async fn a_store_kept_to_a_bounded_history_stops_growing() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;

    let count = 2_000;
    commit_and_prune(&store, &path, &workflow.id, count, 100, 100).await;

    assert_eq!(count_executions(&store, &workflow.id).await, 100);
    store.close().await; // checkpoints the WAL into the file
    let (database, _) = file_sizes(&path);
    // The same store without executions: the schema's tables and indexes, a page each at least.
    let empty_dir = TempDir::new().unwrap();
    let empty_path = empty_dir.path().join("flowd.db");
    let empty = SqliteStore::open(&empty_path).await.unwrap();
    given_team_with_workflow(&empty).await;
    empty.close().await;
    let mut raw = SqliteConnection::connect(&format!("sqlite:{}", empty_path.display()))
        .await
        .unwrap();
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    let page_size: i64 = sqlx::query_scalar("PRAGMA page_size")
        .fetch_one(&mut raw)
        .await
        .unwrap();
    raw.close().await.unwrap();
    let schema = u64::try_from(pages * page_size).unwrap();
    // Every execution kept would take over 2 MB; a hundred of them, with the pages freed by
    // the deleted ones reused, a few hundred KB beyond the empty store.
    let all_kept = count * OUTPUT_BYTES as u64;
    assert!(
        database.saturating_sub(schema) < all_kept / 4,
        "the database file holds {database} bytes, {schema} of them without executions"
    );
}

#[tokio::test]
#[ignore = "a soak of some minutes: run by hand for the figure in the README"]
async fn soak_200k_executions_kept_to_10k() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let (_, workflow) = given_team_with_workflow(&store).await;

    let run = commit_and_prune(&store, &path, &workflow.id, 200_000, 10_000, 1_000).await;

    println!("executions committed, database bytes, WAL bytes");
    for (done, database, wal) in run.sizes.iter().filter(|(done, ..)| done % 10_000 == 0) {
        println!("{done}, {database}, {wal}");
    }
    let mut deletes = run.deletes.clone();
    deletes.sort();
    println!(
        "delete statements of up to {BATCH} rows: {} in all, p50 {:?}, p99 {:?}, max {:?}",
        deletes.len(),
        deletes[deletes.len() / 2],
        deletes[deletes.len() * 99 / 100],
        deletes[deletes.len() - 1]
    );
    // The database file: the WAL's size is the high-water mark of what was written between two
    // checkpoints, set by the commits' pace, not by what the store holds.
    let size_at = |executions: u64| {
        run.sizes
            .iter()
            .find(|(done, ..)| *done == executions)
            .map(|(_, database, _)| *database)
            .unwrap()
    };
    let settled = size_at(50_000);
    let end = size_at(200_000);
    assert!(
        end <= settled + settled / 10,
        "grew from {settled} bytes at 50,000 executions to {end} at 200,000"
    );
}
