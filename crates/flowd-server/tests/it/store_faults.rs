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
