//! `flowd serve --database`: which databases it takes, and a database it refuses to run on.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flowd_store::PostgresStore;
use sqlx::{Connection, PgConnection};

/// `flowd serve --database DATABASE`, expected to exit by itself within a minute: its stderr.
fn flowd_serve_fails(database: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_flowd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--log", "warn"])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--database", database])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowd runs");
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("flowd's status").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("flowd serve --database {database} is still running after a minute");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("flowd's output");
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_database_url_of_another_kind_is_refused() {
    let stderr = flowd_serve_fails("mysql://db/flowd");
    assert!(stderr.contains("sqlite:PATH"), "{stderr}");
}

#[tokio::test]
async fn a_postgres_database_migrated_by_a_newer_flowd_is_refused_naming_both_versions() {
    let database = flowd_test_postgres::fresh_database().await;
    PostgresStore::connect(database.url())
        .await
        .unwrap()
        .close()
        .await;
    let mut raw = PgConnection::connect(database.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (9999, 'from a newer flowd', TRUE, '\\x00', 0)",
    )
    .execute(&mut raw)
    .await
    .unwrap();

    let stderr = flowd_serve_fails(database.url());
    // This flowd's version is that of its newest migration, whichever that is.
    let binary = stderr
        .split_once("version 9999, newer than this flowd's (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(version, _)| version.parse::<i64>().ok());
    assert!(binary.is_some_and(|v| (1..9999).contains(&v)), "{stderr}");
}
