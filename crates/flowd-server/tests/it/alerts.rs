//! Failure alerts, black-box: a local receiver (an HTTP server on 127.0.0.1 in the test) gets
//! the summary flowd POSTs when an execution ends in one of its policy's statuses, at most one
//! per interval per workflow, retried when it fails; the deliveries are listed; an `on_failure`
//! handler runs with the summary; broken settings are refused `422`.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::*;
use crate::support::*;

const PUBLIC_URL: &str = "https://flowd.example.com";

/// The HTTP server alerts are sent to: records each body with when it came, and answers with
/// the statuses it was given, in order (then 200, once released when it holds its answers).
struct AlertReceiver {
    url: String,
    inbox: Arc<Inbox>,
}

#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<(Instant, Value)>>,
    answers: Mutex<VecDeque<u16>>,
    /// Past the scripted answers, a request waits for a permit (`None`: answers at once).
    held: Option<tokio::sync::Semaphore>,
}

impl AlertReceiver {
    async fn start() -> AlertReceiver {
        AlertReceiver::answering(&[]).await
    }

    async fn answering(answers: &[u16]) -> AlertReceiver {
        AlertReceiver::serving(Inbox {
            answers: Mutex::new(answers.iter().copied().collect()),
            ..Inbox::default()
        })
        .await
    }

    /// Answers with `answers`, then holds each further request until [`AlertReceiver::release`].
    async fn answering_then_holding(answers: &[u16]) -> AlertReceiver {
        AlertReceiver::serving(Inbox {
            answers: Mutex::new(answers.iter().copied().collect()),
            held: Some(tokio::sync::Semaphore::new(0)),
            ..Inbox::default()
        })
        .await
    }

    fn release(&self) {
        if let Some(held) = &self.inbox.held {
            held.add_permits(tokio::sync::Semaphore::MAX_PERMITS / 2);
        }
    }

    async fn serving(inbox: Inbox) -> AlertReceiver {
        let inbox = Arc::new(inbox);
        let router = Router::new()
            .route("/alerts", post(receive))
            .with_state(inbox.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/alerts", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        AlertReceiver { url, inbox }
    }

    fn received(&self) -> Vec<Value> {
        let received = self.inbox.received.lock().unwrap();
        received.iter().map(|(_, body)| body.clone()).collect()
    }

    /// Waits until `count` POSTs came; answers them with when each came.
    async fn wait_for(&self, count: usize) -> Vec<(Instant, Value)> {
        let what = format!("{count} alert POSTs received");
        eventually(Duration::from_secs(20), &what, || async {
            let received = self.inbox.received.lock().unwrap();
            (received.len() >= count).then(|| received.clone())
        })
        .await
    }
}

async fn receive(State(inbox): State<Arc<Inbox>>, Json(body): Json<Value>) -> StatusCode {
    inbox.received.lock().unwrap().push((Instant::now(), body));
    let scripted = inbox.answers.lock().unwrap().pop_front();
    if let (None, Some(held)) = (scripted, &inbox.held) {
        let _ = held.acquire().await;
    }
    StatusCode::from_u16(scripted.unwrap_or(200)).unwrap()
}

/// flowd with links under [`PUBLIC_URL`] and retries 50 ms apart.
async fn spawn_alerting_app(default_url: Option<&str>) -> TestApp {
    let default_url = default_url.map(str::to_string);
    spawn_app_with(move |config| {
        config.engine.alerts.public_url = PUBLIC_URL.to_string();
        config.engine.alerts.retry.base = Duration::from_millis(50);
        config.engine.alerts.default_policy =
            default_url.map(|url| flowd_core::alerts::AlertPolicy {
                url,
                on: flowd_core::alerts::DEFAULT_ALERT_ON.to_vec(),
                min_interval_s: 0,
            });
    })
    .await
}

fn failing_code() -> String {
    catch_code("raise KeyError('employee_id')")
}

/// Calls the hook of `workflow` and answers the id of the execution it started.
async fn run_once(app: &TestApp, workflow: &Value) -> String {
    let response = app.call_hook_json(workflow, &json!({})).await;
    execution_id(&response)
}

async fn deliveries(app: &TestApp, workflow: &Value) -> Vec<Value> {
    let id = workflow["id"].as_str().unwrap();
    app.get_json(&format!("/workflows/{id}/alerts")).await["deliveries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_execution_posts_its_summary_with_a_one_line_text() {
    let app = spawn_alerting_app(None).await;
    let receiver = AlertReceiver::start().await;
    let workflow = app
        .create_workflow(json!({
            "name": "alerts-payroll-sync", "mode": "catch", "code": failing_code(),
            "alerts": {"url": receiver.url, "on": ["error"], "min_interval_s": 0},
        }))
        .await;

    let execution = run_once(&app, &workflow).await;

    let (_, alert) = receiver.wait_for(1).await.remove(0);
    let link = format!("{PUBLIC_URL}/executions/{execution}");
    assert_eq!(
        alert["text"],
        format!("flowd: workflow alerts-payroll-sync ended error (KeyError) — {link}")
    );
    assert_eq!(alert["workflow_id"], workflow["id"]);
    assert_eq!(alert["workflow_name"], "alerts-payroll-sync");
    assert_eq!(alert["execution_id"], execution.as_str());
    assert_eq!(alert["status"], "error");
    assert_eq!(alert["trigger"], "catch");
    assert_eq!(alert["error_type"], "KeyError");
    assert!(alert["error_message"]
        .as_str()
        .is_some_and(|message| message.contains("employee_id")));
    assert_eq!(alert["link"], link);
    assert_eq!(alert["suppressed"], 0);
    let recorded = app.execution(&execution).await;
    assert_eq!(alert["started_at"], recorded["started_at"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflows_alerts_are_shown_and_can_be_removed() {
    let app = spawn_alerting_app(None).await;
    let alerts = json!({"url": "https://chat.example/hooks/x", "on": ["timeout", "killed"], "min_interval_s": 60});
    let workflow = app
        .create_workflow(json!({
            "name": "alerts-shown", "mode": "catch", "code": catch_code("return None"),
            "alerts": alerts,
        }))
        .await;
    assert_eq!(workflow["alerts"], alerts);
    assert_eq!(workflow["on_failure"], Value::Null);

    let patched = app.patch_workflow(&workflow, json!({"alerts": null})).await;

    assert_eq!(patched["alerts"], Value::Null);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_inside_the_interval_send_one_alert_and_the_next_says_how_many_were_suppressed() {
    let app = spawn_alerting_app(None).await;
    let receiver = AlertReceiver::start().await;
    let interval = Duration::from_secs(2);
    let workflow = app
        .create_workflow(json!({
            "name": "alerts-rate-limited", "mode": "catch", "code": failing_code(),
            "alerts": {"url": receiver.url, "on": ["error"], "min_interval_s": interval.as_secs()},
        }))
        .await;

    run_once(&app, &workflow).await;
    let (first_at, _) = receiver.wait_for(1).await.remove(0);
    run_once(&app, &workflow).await;
    // The first alert was claimed before it arrived: past this, its interval is over.
    tokio::time::sleep_until((first_at + interval).into()).await;
    let third = run_once(&app, &workflow).await;

    let alerts = receiver.wait_for(2).await;
    assert_eq!(alerts[0].1["suppressed"], 0);
    assert_eq!(alerts[1].1["suppressed"], 1);
    assert_eq!(alerts[1].1["execution_id"], third.as_str());
    assert!(alerts[1].1["text"]
        .as_str()
        .is_some_and(|text| text.ends_with("(+1 suppressed)")));
    assert_eq!(receiver.received().len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_fails_then_succeeds_gets_the_alert_again_and_each_attempt_is_recorded() {
    let app = spawn_alerting_app(None).await;
    let receiver = AlertReceiver::answering_then_holding(&[503]).await;
    let workflow = app
        .create_workflow(json!({
            "name": "alerts-retried", "mode": "catch", "code": failing_code(),
            "alerts": {"url": receiver.url},
        }))
        .await;

    let execution = run_once(&app, &workflow).await;

    // The second attempt is held at the receiver: the first is recorded by then.
    let posts = receiver.wait_for(2).await;
    assert_eq!(posts[0].1, posts[1].1, "the same summary is sent again");
    let first = deliveries(&app, &workflow).await;
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0]["execution_id"], execution.as_str());
    assert_eq!(first[0]["status_code"], 503);
    assert_eq!(first[0]["error"], "the receiver answered 503");
    assert_eq!(first[0]["attempts"], 1);
    receiver.release();
    let recorded = eventually(
        Duration::from_secs(10),
        "the second attempt is recorded",
        || async {
            deliveries(&app, &workflow)
                .await
                .pop()
                .filter(|delivery| delivery["attempts"] == 2)
        },
    )
    .await;
    assert_eq!(recorded["id"], first[0]["id"]);
    assert_eq!(recorded["status_code"], 200);
    assert_eq!(recorded["error"], Value::Null);
    assert_eq!(recorded["suppressed"], 0);
    assert!(recorded["at"].is_string());
    assert_eq!(deliveries(&app, &workflow).await.len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_receiver_that_never_succeeds_is_given_up_on_after_the_last_attempt() {
    let app = spawn_alerting_app(None).await;
    let receiver = AlertReceiver::answering(&[500, 500, 500, 500]).await;
    let workflow = app
        .create_workflow(json!({
            "name": "alerts-given-up", "mode": "catch", "code": failing_code(),
            "alerts": {"url": receiver.url},
        }))
        .await;

    run_once(&app, &workflow).await;

    let recorded = eventually(
        Duration::from_secs(10),
        "the last attempt is recorded",
        || async {
            deliveries(&app, &workflow)
                .await
                .pop()
                .filter(|delivery| delivery["attempts"] == 4)
        },
    )
    .await;
    assert_eq!(recorded["status_code"], 500);
    assert_eq!(recorded["attempts"], 4);
    assert_eq!(recorded["error"], "the receiver answered 500");
    assert_eq!(receiver.received().len(), 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_ending_in_a_status_not_in_on_sends_no_alert() {
    let app = spawn_alerting_app(None).await;
    let receiver = AlertReceiver::start().await;
    let quiet = app
        .create_workflow(json!({
            "name": "alerts-quiet", "mode": "catch", "code": failing_code(),
            "alerts": {"url": receiver.url, "on": ["timeout"]},
        }))
        .await;
    let marker = app
        .create_workflow(json!({
            "name": "alerts-marker", "mode": "catch", "code": failing_code(),
            "alerts": {"url": receiver.url, "on": ["error"]},
        }))
        .await;

    run_once(&app, &quiet).await;
    // Alerts are delivered in the order their executions ended: once the marker's is in, an
    // alert of the first execution would have been sent before it.
    run_once(&app, &marker).await;

    receiver.wait_for(1).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["workflow_name"], "alerts-marker");
    assert!(deliveries(&app, &quiet).await.is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_default_applies_to_workflows_without_their_own() {
    let receiver = AlertReceiver::start().await;
    let app = spawn_alerting_app(Some(&receiver.url)).await;
    let workflow = app
        .create_workflow(
            json!({"name": "alerts-by-default", "mode": "catch", "code": failing_code()}),
        )
        .await;
    assert_eq!(workflow["alerts"], Value::Null);

    let execution = run_once(&app, &workflow).await;

    let (_, alert) = receiver.wait_for(1).await.remove(0);
    assert_eq!(alert["execution_id"], execution.as_str());
    assert_eq!(alert["workflow_name"], "alerts-by-default");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_on_failure_handler_runs_with_the_summary_as_its_request() {
    let app = spawn_alerting_app(None).await;
    let handler = app
        .create_catch(
            "alerts-handler",
            &catch_code("settings['alert'] = _request\nreturn None"),
        )
        .await;
    let workflow = app
        .create_workflow(json!({
            "name": "alerts-handled", "mode": "catch", "code": failing_code(),
            "on_failure": "alerts-handler",
        }))
        .await;
    assert_eq!(workflow["on_failure"], "alerts-handler");

    let execution = run_once(&app, &workflow).await;

    let alert = eventually(Duration::from_secs(20), "the handler ran", || async {
        let settings = app.settings(&handler).await;
        (!settings["alert"].is_null()).then(|| settings["alert"].clone())
    })
    .await;
    assert_eq!(alert["execution_id"], execution.as_str());
    assert_eq!(alert["workflow_name"], "alerts-handled");
    assert_eq!(alert["status"], "error");
    assert_eq!(alert["error_type"], "KeyError");
    let runs = app.executions(&handler).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["trigger"], "alert");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn broken_alert_settings_are_refused_naming_the_field_and_the_server_stays_up() {
    let app = spawn_alerting_app(None).await;
    let create = |name: &str, extra: Value| {
        let mut body = json!({"name": name, "mode": "catch", "code": catch_code("return None")});
        for (key, value) in extra.as_object().unwrap() {
            body[key] = value.clone();
        }
        body
    };
    for (extra, field) in [
        (
            json!({"alerts": {"url": "ftp://chat.example/x"}}),
            "alerts.url",
        ),
        (json!({"alerts": {"url": "not a url"}}), "alerts.url"),
        (
            json!({"alerts": {"url": "http://h", "on": []}}),
            "alerts.on",
        ),
        (
            json!({"alerts": {"url": "http://h", "on": ["bogus"]}}),
            "alerts.on",
        ),
        (
            json!({"alerts": {"url": "http://h", "on": ["running"]}}),
            "alerts.on",
        ),
        (
            json!({"alerts": {"url": "http://h", "min_interval_s": -1}}),
            "alerts.min_interval_s",
        ),
        (json!({"alerts": {"on": ["error"]}}), "url"),
        (json!({"on_failure": "no-such-workflow"}), "on_failure"),
    ] {
        let answer = call(
            &app,
            Method::POST,
            "/workflows",
            Some(&create("alerts-broken", extra.clone())),
        )
        .await;
        answer.assert_error(422, "invalid_request");
        let message = answer.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{field} in {message} ({extra})");
    }
    let workflow = app
        .create_catch("alerts-valid", &catch_code("return None"))
        .await;
    let id = workflow["id"].as_str().unwrap();
    let own = call(
        &app,
        Method::PATCH,
        &format!("/workflows/{id}"),
        Some(&json!({"on_failure": "alerts-valid"})),
    )
    .await;
    own.assert_error(422, "invalid_request");
    let pull = app
        .create_workflow(
            json!({"name": "alerts-pull", "mode": "pull", "code": pull_code("return None"), "schedule": {"every": "1h"}, "enabled": false}),
        )
        .await;
    assert_eq!(pull["mode"], "pull");
    let not_catch = call(
        &app,
        Method::PATCH,
        &format!("/workflows/{id}"),
        Some(&json!({"on_failure": "alerts-pull"})),
    )
    .await;
    not_catch.assert_error(422, "invalid_request");
    assert_eq!(
        app.get_json(&format!("/workflows/{id}")).await["on_failure"],
        Value::Null
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn alerts_sent_are_counted_in_metrics() {
    let app = spawn_alerting_app(None).await;
    let receiver = AlertReceiver::start().await;
    let workflow = app
        .create_workflow(json!({
            "name": "alerts-counted", "mode": "catch", "code": failing_code(),
            "alerts": {"url": receiver.url},
        }))
        .await;

    run_once(&app, &workflow).await;
    receiver.wait_for(1).await;

    let line = eventually(Duration::from_secs(10), "the alert is counted", || async {
        let text = app
            .client
            .get(app.url("/metrics"))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|line| {
                line.starts_with("flowd_alerts_sent_total")
                    && line.contains("workflow=\"alerts-counted\"")
            })
            .map(str::to_string)
    })
    .await;
    assert!(line.ends_with(" 1"), "{line}");
    app.stop().await;
}
