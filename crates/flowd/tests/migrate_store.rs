//! `flowd migrate-store`: the command line around `flowd_store::migrate` (whose copy is tested
//! record by record in flowd-store): what it takes, what it prints, how it refuses.

use assert_cmd::Command;
use flowd_store::{SqliteStore, Store, TeamRecord};
use predicates::prelude::*;

fn migrate_store() -> Command {
    let mut command = Command::cargo_bin("flowd").expect("the flowd binary");
    command
        .arg("migrate-store")
        .env_remove("FLOWD_DATABASE_URL");
    command
}

/// A stopped node's store with one team, in `dir`.
async fn stopped_store(dir: &tempfile::TempDir) -> std::path::PathBuf {
    let path = dir.path().join("flowd.db");
    let store = SqliteStore::open(&path).await.expect("the store");
    store
        .create_team(&TeamRecord {
            id: "0192f4a1-7c3e-7d2a-9b1e-2f6a8c0d4e5f".to_string(),
            name: "acme".to_string(),
            created_at: 1_750_000_000_000,
        })
        .await
        .expect("a team");
    store.close().await;
    path
}

#[tokio::test]
async fn copies_a_store_into_the_database_of_flowd_database_url_and_prints_the_counts() {
    let dir = tempfile::tempdir().unwrap();
    let source = stopped_store(&dir).await;
    let database = flowd_test_postgres::fresh_database().await;

    migrate_store()
        .arg("--from")
        .arg(format!("sqlite:{}", source.display()))
        .env("FLOWD_DATABASE_URL", database.url())
        .assert()
        .success()
        .stdout(predicate::str::is_match(r"(?m)^teams\s+1$").unwrap())
        .stdout(predicate::str::is_match(r"(?m)^executions\s+0$").unwrap());
}

#[test]
fn a_source_that_is_not_sqlite_is_refused() {
    migrate_store()
        .args([
            "--from",
            "postgres://db/flowd",
            "--to",
            "postgres://db/other",
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--from postgres://db/flowd is not a SQLite store",
        ));
}

#[test]
fn a_target_that_is_not_postgres_is_refused() {
    migrate_store()
        .args(["--from", "sqlite:/tmp/a.db", "--to", "sqlite:/tmp/b.db"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "--to sqlite:/tmp/b.db is not a PostgreSQL database",
        ));
}

#[test]
fn a_url_of_no_known_kind_is_refused() {
    migrate_store()
        .args(["--from", "mysql://db/flowd", "--to", "postgres://db/flowd"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "expected sqlite:PATH, postgres://",
        ));
}

#[test]
fn a_missing_store_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("flowd.db");
    migrate_store()
        .arg("--from")
        .arg(format!("sqlite:{}", missing.display()))
        .args(["--to", "postgres://flowd@127.0.0.1:1/flowd"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(format!(
            "there is no store at {}",
            missing.display()
        )));
}

#[tokio::test]
async fn an_unreachable_target_is_named_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let source = stopped_store(&dir).await;
    migrate_store()
        .arg("--from")
        .arg(format!("sqlite:{}", source.display()))
        .env(
            "FLOWD_DATABASE_URL",
            "postgres://flowd:s3cret@127.0.0.1:1/flowd",
        )
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "cannot connect to the target database postgres://flowd:***@127.0.0.1:1/flowd",
        ))
        .stderr(predicate::str::contains("s3cret").not());
}
