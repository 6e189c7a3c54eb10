//! A store that cannot write: the API says so with its own code, and recovers with the store.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::api_support::{call, id};
use crate::support::*;

/// Holds SQLite's write lock on the app's database, as another process writing would, until
/// dropped: flowd's writes wait for it up to their busy timeout, then fail.
struct WriteLock(rusqlite::Connection);

impl WriteLock {
    fn take(app: &TestApp) -> WriteLock {
        let connection = rusqlite::Connection::open(app.data_dir.path().join("data/flowd.db"))
            .expect("open the database");
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");
        WriteLock(connection)
    }
}

impl Drop for WriteLock {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("ROLLBACK");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_saved_while_the_store_is_locked_are_answered_503_store_unavailable() {
    let app = spawn_app().await;
    let workflow = app.create_catch("locked", &catch_code("return None")).await;
    let path = format!("/workflows/{}/settings", id(&workflow));

    let lock = WriteLock::take(&app);
    let answer = call(&app, Method::PUT, &path, Some(&json!({"a": 1}))).await;

    assert_eq!(
        answer.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        answer.body
    );
    assert_eq!(answer.body["error"]["code"], "store_unavailable");
    assert_eq!(answer.headers["retry-after"], "1");
    drop(lock);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_are_saved_again_once_the_store_is_unlocked() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch("unlocked", &catch_code("return None"))
        .await;
    let path = format!("/workflows/{}/settings", id(&workflow));
    let lock = WriteLock::take(&app);
    let refused = call(&app, Method::PUT, &path, Some(&json!({"a": 1}))).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);

    drop(lock);
    let answer = call(&app, Method::PUT, &path, Some(&json!({"a": 2}))).await;

    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(app.settings(&workflow).await, json!({"a": 2}));
    app.stop().await;
}

/// A tmpfs of a few MiB mounted for one test (we run as root), unmounted when dropped: a disk
/// that fills up.
struct SmallDisk {
    dir: tempfile::TempDir,
}

/// Bytes left free on a [`SmallDisk`] once filled: room for a few commits, then none.
const LEFT_FREE: u64 = 48 << 10;

impl SmallDisk {
    /// `None` (with a line saying why) where mounting is impossible; a failure under `CI=true`.
    fn mount(size_mb: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().expect("a mount point");
        let mounted = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size_mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|status| status.success());
        if !mounted {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "a tmpfs could not be mounted (the test needs root)"
            );
            eprintln!("skipped: a tmpfs could not be mounted (the test needs root)");
            return None;
        }
        Some(SmallDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn filler(&self) -> std::path::PathBuf {
        self.path().join("filler")
    }

    /// Fills the disk, leaving [`LEFT_FREE`] bytes.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.filler()).expect("create the filler");
        let block = vec![0u8; 64 << 10];
        let mut written = 0u64;
        loop {
            match file.write(&block) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(error) if error.kind() == std::io::ErrorKind::StorageFull => break,
                Err(error) => panic!("filling the disk: {error}"),
            }
        }
        file.set_len(written.saturating_sub(LEFT_FREE))
            .expect("leave a little room");
    }

    /// Gives the space back.
    fn free(&self) {
        std::fs::remove_file(self.filler()).expect("remove the filler");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// How the store treated one hook call.
enum Answer {
    /// `200`: the execution with this id counted.
    Acknowledged(String),
    /// `503 store_unavailable` with `Retry-After`.
    NotSaved,
}

async fn call_hook(app: &TestApp, workflow: &serde_json::Value, body: serde_json::Value) -> Answer {
    let answer = app.call_hook_json(workflow, &body).await;
    let id = execution_id(&answer);
    match answer.status() {
        StatusCode::OK => Answer::Acknowledged(id),
        StatusCode::SERVICE_UNAVAILABLE => {
            let retry_after = answer.headers().get("retry-after").cloned();
            let body: serde_json::Value = answer.json().await.expect("json");
            assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
            assert_eq!(retry_after.as_ref().map(|v| v.as_bytes()), Some(&b"1"[..]));
            Answer::NotSaved
        }
        status => panic!("execution {id} answered {status}"),
    }
}

/// A counter workflow's hook, called (four at a time) on a disk that fills up, then is freed
/// again: every call
/// answered `200` is in the store (after a restart too) and counted, every other is `503
/// store_unavailable` with `Retry-After`, and calls succeed again once there is room, without a
/// restart.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_full_disk_every_acknowledged_call_is_stored_and_the_rest_are_503_store_unavailable() {
    let Some(disk) = SmallDisk::mount(16) else {
        return;
    };
    let data_dir = disk.path().join("data");
    let on_the_disk = |config: &mut flowd_server::Config| config.data_dir = data_dir.clone();
    let app = spawn_app_with(on_the_disk).await;
    let counter = "settings['count'] = settings.get('count', 0) + 1";
    // One at a time, so that the count is exact (concurrent executions merge at key level).
    let workflow = app
        .create_workflow(json!({
            "name": "counter",
            "mode": "catch",
            "code": catch_code(counter),
            "max_concurrency": 1,
        }))
        .await;
    let mut acknowledged = Vec::new();
    let mut not_saved = 0;

    disk.fill();
    // Four at a time: the calls queued behind one that is lost count only if they are saved.
    for _ in 0..15 {
        let calls = (0..4).map(|_| call_hook(&app, &workflow, json!({})));
        for answer in futures::future::join_all(calls).await {
            match answer {
                Answer::Acknowledged(id) => acknowledged.push(id),
                Answer::NotSaved => not_saved += 1,
            }
        }
    }
    assert!(not_saved > 0, "every call on a full disk was acknowledged");
    disk.free();
    for _ in 0..5 {
        match call_hook(&app, &workflow, json!({})).await {
            Answer::Acknowledged(id) => acknowledged.push(id),
            Answer::NotSaved => panic!("a call was not saved once there was room again"),
        }
    }
    let count = json!({"count": acknowledged.len()});
    assert_eq!(app.settings(&workflow).await, count, "before a restart");
    app.stop().await;

    let app = spawn_app_with(on_the_disk).await;
    for id in &acknowledged {
        let found = app
            .api(Method::GET, &format!("/executions/{id}"))
            .send()
            .await
            .expect("request");
        assert_eq!(
            found.status(),
            StatusCode::OK,
            "acknowledged execution {id}"
        );
    }
    assert_eq!(app.settings(&workflow).await, count, "after a restart");
    app.stop().await;
}

/// Concurrent executions of a workflow, each adding its own key, on a disk that fills up: the
/// settings in memory (read before a restart) and in the store (after) hold exactly the keys of
/// the calls answered `200`, however the lost changes and those made on top of them interleave.
#[tokio::test(flavor = "multi_thread")]
async fn on_a_full_disk_the_settings_hold_exactly_the_changes_of_acknowledged_calls() {
    let Some(disk) = SmallDisk::mount(16) else {
        return;
    };
    let data_dir = disk.path().join("data");
    let on_the_disk = |config: &mut flowd_server::Config| config.data_dir = data_dir.clone();
    let app = spawn_app_with(on_the_disk).await;
    let code = catch_code("settings[_request['key']] = True");
    let workflow = app.create_catch("keys", &code).await;
    let mut acknowledged = serde_json::Map::new();
    let mut not_saved = 0;

    disk.fill();
    for round in 0..8 {
        let keys: Vec<String> = (0..8).map(|i| format!("k{round}-{i}")).collect();
        let calls = keys
            .iter()
            .map(|key| call_hook(&app, &workflow, json!({ "key": key })));
        let answers = futures::future::join_all(calls).await;
        for (key, answer) in keys.into_iter().zip(answers) {
            match answer {
                Answer::Acknowledged(_) => {
                    acknowledged.insert(key, json!(true));
                }
                Answer::NotSaved => not_saved += 1,
            }
        }
    }
    assert!(not_saved > 0, "every call on a full disk was acknowledged");
    disk.free();
    let after = call_hook(&app, &workflow, json!({"key": "after"})).await;
    assert!(
        matches!(after, Answer::Acknowledged(_)),
        "once there is room"
    );
    acknowledged.insert("after".into(), json!(true));

    let keys = serde_json::Value::Object(acknowledged);
    assert_eq!(app.settings(&workflow).await, keys, "in memory");
    app.stop().await;
    let app = spawn_app_with(on_the_disk).await;
    assert_eq!(app.settings(&workflow).await, keys, "in the store");
    app.stop().await;
}
