//! Slower end-to-end cases (skip them with `cargo test -- --skip e2e`).

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread")]
async fn graceful_shutdown_finishes_executions_in_flight() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "slow",
            &catch_code("import time\ntime.sleep(1.5)\nsettings['done'] = True\nreturn {'status_code': 200, 'body': 'finished'}"),
        )
        .await;
    let client = app.client.clone();
    let url = app.url(hook_path(&workflow));
    let call = tokio::spawn(async move { client.post(url).json(&json!({})).send().await });
    app.wait_in_flight(1).await;
    let state = app.state.clone();
    app.stop().await;
    let response = call
        .await
        .expect("join")
        .expect("the call in flight is answered");
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "finished");
    let settings = state
        .engine
        .store()
        .settings(workflow["id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(
        settings.get("done"),
        Some(&json!(true)),
        "the settings change was committed before exit"
    );
}
