//! A caller that hangs up changes nothing but who reads the answer: its execution runs to its end
//! under its time limit and `max_concurrency`, is recorded with its settings change, and its record
//! says that the caller left.

use std::time::Duration;

use flowd_engine::CALLER_LEFT_WARNING;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

use crate::support::*;

/// How long a caller waits after sending its request before it closes its socket.
const PATIENCE: Duration = Duration::from_millis(250);

/// Sends a hook call with an empty JSON body over a new connection and closes the connection
/// [`PATIENCE`] later, without reading the answer.
async fn call_and_hang_up(app: &TestApp, workflow: &Value) {
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let request = format!(
        "POST {} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: 2\r\n\r\n{{}}",
        hook_path(workflow)
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("send the request");
    tokio::time::sleep(PATIENCE).await;
    drop(stream);
}

/// The workflow's executions once there are `count` and none is `running` any more.
async fn finished_executions(app: &TestApp, workflow: &Value, count: usize) -> Vec<Value> {
    let what = format!("{count} executions recorded, none running");
    eventually(Duration::from_secs(60), &what, || async {
        let executions = app.executions(workflow).await;
        let done = executions.len() == count && executions.iter().all(|e| e["status"] != "running");
        done.then_some(executions)
    })
    .await
}

fn epoch_ms(execution: &Value, field: &str) -> i64 {
    let text = execution[field].as_str().expect(field);
    chrono::DateTime::parse_from_rfc3339(text)
        .expect("an RFC 3339 time")
        .timestamp_millis()
}

/// The most executions that ran at the same moment, from their start and end times.
fn most_at_once(executions: &[Value]) -> usize {
    let mut events: Vec<(i64, i32)> = Vec::new();
    for execution in executions {
        // An end at the very millisecond another starts is not an overlap: ends sort first.
        events.push((epoch_ms(execution, "started_at"), 1));
        events.push((epoch_ms(execution, "finished_at"), -1));
    }
    events.sort();
    let mut running = 0;
    let mut most = 0;
    for (_, step) in events {
        running += step;
        most = most.max(running);
    }
    usize::try_from(most).unwrap_or(0)
}

fn warned_of_the_caller_leaving(execution: &Value) -> bool {
    execution["warnings"]
        .as_array()
        .is_some_and(|warnings| warnings.iter().any(|w| w == CALLER_LEFT_WARNING))
}

#[tokio::test(flavor = "multi_thread")]
async fn callers_that_hang_up_leave_their_executions_under_their_time_limit_and_max_concurrency() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "slow",
            "mode": "catch",
            "code": catch_code("import time\ntime.sleep(3)\nreturn None"),
            "timeout_s": 1,
            "max_concurrency": 2,
        }))
        .await;

    let callers = 8;
    futures::future::join_all((0..callers).map(|_| call_and_hang_up(&app, &workflow))).await;
    let executions = finished_executions(&app, &workflow, callers).await;

    for execution in &executions {
        assert_eq!(execution["status"], "timeout", "{execution}");
        assert!(warned_of_the_caller_leaving(execution), "{execution}");
    }
    let most = most_at_once(&executions);
    assert!(
        most <= 2,
        "{most} executions ran at once under max_concurrency 2"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_changes_of_callers_that_hung_up_are_saved() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "counter",
            "mode": "catch",
            "code": catch_code(
                "import time\ntime.sleep(1)\nsettings['count'] = settings.get('count', 0) + 1",
            ),
            "max_concurrency": 1,
        }))
        .await;

    let callers = 4;
    futures::future::join_all((0..callers).map(|_| call_and_hang_up(&app, &workflow))).await;
    let executions = finished_executions(&app, &workflow, callers).await;

    for execution in &executions {
        assert_eq!(execution["status"], "success", "{execution}");
        assert!(warned_of_the_caller_leaving(execution), "{execution}");
    }
    assert_eq!(app.settings(&workflow).await, json!({"count": callers}));
    app.stop().await;
}
