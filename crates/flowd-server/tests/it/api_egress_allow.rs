//! A workflow's own egress exceptions (`egress_allow`) through the API: shown on every workflow,
//! and bad entries refused `422` naming what is wrong. What they open is tested end to end in the
//! egress attack suite (`attacks::e2e_egress`).

use reqwest::Method;
use serde_json::{json, Value};

use crate::api_support::*;
use crate::support::*;

async fn create_with(app: &TestApp, egress_allow: Value) -> Answer {
    let body = json!({
        "name": "egress",
        "mode": "catch",
        "code": catch_code("return None"),
        "egress_allow": egress_allow,
    });
    call(app, Method::POST, "/workflows", Some(&body)).await
}

#[track_caller]
fn assert_refused_naming(answer: &Answer, words: &[&str]) {
    answer.assert_error(422, "invalid_request");
    let message = answer.body["error"]["message"].as_str().unwrap_or_default();
    for word in words {
        assert!(message.contains(word), "{word:?} in {message}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workflow_without_exceptions_shows_an_empty_egress_allow() {
    let app = spawn_app().await;

    let created = app.create_catch("plain", &catch_code("return None")).await;

    assert_eq!(created["egress_allow"], json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_that_is_no_network_or_host_port_is_422_naming_it() {
    let app = spawn_app().await;

    for (entry, reason) in [
        ("10.0.0/8", "is not a network"),
        ("10.0.0.1/8", "bits are set beyond the prefix"),
        ("10.0.0.0/33", "prefix length"),
        ("db.internal", "needs a port"),
        ("http://db.internal:80", "is not a network"),
    ] {
        let answer = create_with(&app, json!([entry])).await;
        assert_refused_naming(&answer, &["egress_allow", entry, reason]);
    }
    assert!(app.get_json("/workflows").await["workflows"]
        .as_array()
        .is_some_and(Vec::is_empty));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_entry_on_port_0_or_beyond_65535_is_422() {
    let app = spawn_app().await;

    for entry in ["10.1.2.3:0", "db.internal:0", "db.internal:65536"] {
        let answer = create_with(&app, json!([entry])).await;
        assert_refused_naming(&answer, &[entry, "port must be 1 to 65535"]);
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_entries_are_422_giving_the_maximum() {
    let app = spawn_app().await;
    let entries: Vec<String> = (0..10_000)
        .map(|n| format!("10.{}.{}.1", n / 256, n % 256))
        .collect();

    let answer = create_with(&app, json!(entries)).await;

    assert_refused_naming(&answer, &["at most 64 entries", "10000 given"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_egress_allow_that_is_not_a_list_of_strings_is_refused() {
    let app = spawn_app().await;

    for egress_allow in [
        json!("10.0.0.0/8"),
        json!([10]),
        json!({"10.0.0.0/8": true}),
    ] {
        let answer = create_with(&app, egress_allow.clone()).await;
        assert!(
            answer.status.is_client_error(),
            "{egress_allow}: {} {}",
            answer.status,
            answer.body
        );
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_server_without_a_ceiling_a_valid_entry_is_422_saying_none_may_be_opened() {
    let app = spawn_app().await;

    let answer = create_with(&app, json!(["10.200.0.2"])).await;

    assert_refused_naming(&answer, &["10.200.0.2", "--egress-workflow-allow is empty"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_refused_patch_leaves_the_workflow_as_it_was() {
    let app = spawn_app().await;
    let created = app.create_catch("kept", &catch_code("return None")).await;

    let answer = call(
        &app,
        Method::PATCH,
        &format!("/workflows/{}", id(&created)),
        Some(&json!({"egress_allow": ["10.0.0.1/8"], "timeout_s": 7})),
    )
    .await;

    assert_refused_naming(&answer, &["10.0.0.1/8"]);
    let stored = app.get_json(&format!("/workflows/{}", id(&created))).await;
    assert_eq!(stored["egress_allow"], json!([]));
    assert_eq!(stored["timeout_s"], created["timeout_s"]);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_empty_egress_allow_is_accepted_on_any_server() {
    let app = spawn_app().await;

    let answer = create_with(&app, json!([])).await;

    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["egress_allow"], json!([]));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_that_cannot_keep_an_exception_to_one_workflow_refuses_any_and_reports_why() {
    let app = spawn_app_with(|config| {
        config.egress = flowd_runtime::EgressConfig {
            enabled: false,
            workflow_allow: vec!["10.200.0.0/24".parse().unwrap()],
            ..flowd_runtime::EgressConfig::default()
        };
    })
    .await;

    let answer = create_with(&app, json!(["10.200.0.2"])).await;

    assert_refused_naming(
        &answer,
        &["cannot keep an egress exception to one workflow"],
    );
    let system = app.get_json("/system").await;
    let layer = system["isolation"]["layers"]
        .as_array()
        .and_then(|layers| {
            layers
                .iter()
                .find(|layer| layer["name"] == "egress_per_workflow")
                .cloned()
        })
        .expect("an egress_per_workflow layer");
    assert_eq!(layer["active"], false, "{layer}");
    app.stop().await;
}
