//! The web console: its files served at `/`, `web/dist` up to date with `web/`, and the API
//! routes it uses (executions across workflows, statistics, schedules and their previews).

use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::support::*;

async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    send(app, Method::GET, path, None).await
}

async fn send(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.api(method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

fn statuses(executions: &Value) -> Vec<String> {
    executions["executions"]
        .as_array()
        .expect("executions")
        .iter()
        .map(|e| e["status"].as_str().unwrap().to_string())
        .collect()
}

// --- the console's files ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn the_console_is_served_at_the_root_and_for_its_own_routes() {
    let app = spawn_app().await;
    for path in [
        "/",
        "/workflows",
        "/workflows/0190-abc/executions",
        "/sign-in",
    ] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert_eq!(
            headers["content-type"], "text/html; charset=utf-8",
            "{path}"
        );
        assert_eq!(headers["cache-control"], "no-cache");
        assert!(headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'"));
        let body = response.text().await.unwrap();
        assert!(body.contains("<div id=\"app\">"), "{path}: {body}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn head_of_the_console_has_the_headers_and_no_body() {
    let app = spawn_app().await;
    let response = app.client.head(app.url("/workflows")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    assert!(response.bytes().await.unwrap().is_empty());
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn hashed_assets_are_served_with_their_type_and_cached_for_good() {
    let app = spawn_app().await;
    let index = app
        .client
        .get(app.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let mut seen = Vec::new();
    for (attribute, kind) in [("src=\"", "text/javascript"), ("href=\"", "text/css")] {
        let path = index
            .split(attribute)
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .find(|p| p.starts_with("/assets/"))
            .unwrap_or_else(|| panic!("no {kind} asset in {index}"));
        let response = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with(kind));
        assert_eq!(
            response.headers()["cache-control"],
            "public, max-age=31536000, immutable"
        );
        let etag = response.headers()["etag"].clone();
        assert!(!response.bytes().await.unwrap().is_empty());
        let again = app
            .client
            .get(app.url(path))
            .header("If-None-Match", etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path} revalidated");
        let gzipped = app
            .client
            .get(app.url(path))
            .header("Accept-Encoding", "br, gzip;q=0.8")
            .send()
            .await
            .unwrap();
        assert_eq!(gzipped.headers()["content-encoding"], "gzip", "{path}");
        assert_eq!(gzipped.headers()["vary"], "accept-encoding");
        assert!(gzipped.bytes().await.unwrap().starts_with(&[0x1f, 0x8b]));
        seen.push(path.to_string());
    }
    assert_eq!(seen.len(), 2);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_assets_api_paths_and_other_methods_are_json_404s() {
    let app = spawn_app().await;
    for (method, path) in [
        (Method::GET, "/assets/app-OLD.js"),
        (Method::GET, "/api/v1/nothing-here"),
        (Method::GET, "/api"),
        (Method::GET, "/teams/default"),
        (Method::POST, "/"),
        (Method::DELETE, "/workflows"),
    ] {
        let response = app
            .client
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 404, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "not_found", "{method} {path}");
    }
    app.stop().await;
}

/// `web/dist` is committed so that building flowd needs no JavaScript tool: it must be the
/// build of the sources beside it. `web/build.mjs` records the hash of those sources.
#[test]
fn web_dist_is_built_from_the_current_sources() {
    let web = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let mut files: Vec<String> = vec![
        "index.html".into(),
        "build.mjs".into(),
        "package-lock.json".into(),
    ];
    fn walk(dir: &std::path::Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read web/src") {
            let entry = entry.unwrap();
            let name = format!("{prefix}/{}", entry.file_name().to_string_lossy());
            if entry.file_type().unwrap().is_dir() {
                walk(&entry.path(), &name, out);
            } else {
                out.push(name);
            }
        }
    }
    walk(&web.join("src"), "src", &mut files);
    files.sort();
    let mut hash = Sha256::new();
    for file in &files {
        let bytes = std::fs::read(web.join(file)).unwrap_or_else(|e| panic!("web/{file}: {e}"));
        hash.update(file.as_bytes());
        hash.update([0]);
        hash.update(bytes.len().to_string().as_bytes());
        hash.update([0]);
        hash.update(&bytes);
    }
    let expected: String = hash.finalize().iter().map(|b| format!("{b:02x}")).collect();
    let embedded = flowd_server::web::source_hash();
    let on_disk = std::fs::read_to_string(web.join("dist/source-hash.txt")).ok();
    assert_eq!(
        on_disk.as_deref().map(str::trim),
        Some(expected.as_str()),
        "web/dist is not the build of web/src: run `npm --prefix web ci && npm --prefix web run build` and commit web/dist"
    );
    assert_eq!(
        embedded.as_deref(),
        Some(expected.as_str()),
        "the binary embeds an older web/dist: rebuild flowd"
    );
}

// --- executions across workflows ----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn executions_of_every_workflow_newest_first_with_their_workflow() {
    let app = spawn_app().await;
    let ok = app
        .create_catch("ok", &catch_code("print('fine')\nreturn None"))
        .await;
    let bad = app
        .create_catch("bad", &catch_code("raise ValueError('no')"))
        .await;
    let mut ids = Vec::new();
    for workflow in [&ok, &bad, &ok] {
        let response = app.call_hook_json(workflow, &json!({})).await;
        ids.push(execution_id(&response));
    }
    app.state.engine.flush().await;
    ids.reverse();

    let (status, all) = get(&app, "/executions").await;
    assert_eq!(status, 200, "{all}");
    let listed: Vec<&str> = all["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ids);
    assert_eq!(statuses(&all), ["success", "error", "success"]);
    let first = &all["executions"][0];
    assert_eq!(first["workflow_id"], ok["id"]);
    assert_eq!(first["workflow_name"], "ok");
    assert_eq!(first["workflow_mode"], "catch");
    assert_eq!(first["trigger"], "catch");
    assert!(
        first.get("logs").is_none(),
        "a listing leaves out the output"
    );

    let (_, errors) = get(&app, "/executions?status=error").await;
    assert_eq!(statuses(&errors), ["error"]);
    assert_eq!(errors["executions"][0]["workflow_name"], "bad");

    let (_, page) = get(&app, "/executions?limit=2").await;
    assert_eq!(page["executions"].as_array().unwrap().len(), 2);
    let (_, rest) = get(&app, &format!("/executions?limit=2&before={}", ids[1])).await;
    assert_eq!(rest["executions"][0]["id"], ids[2].as_str());
    assert_eq!(rest["executions"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_of_another_team_are_not_listed() {
    use flowd_store::{ExecutionRecord, StoreWrite, TeamRecord, VersionRecord, WorkflowRecord};
    let app = spawn_app().await;
    let mine = app.create_catch("mine", &catch_code("return None")).await;
    app.call_hook_json(&mine, &json!({})).await;
    // Another team, with a workflow and executions newer than ours, straight in the store.
    let store = app.state.engine.store().clone();
    let team = TeamRecord {
        id: uuid_v7(),
        name: "other".into(),
        created_at: 0,
    };
    store.create_team(&team).await.unwrap();
    let mut theirs = app
        .state
        .engine
        .store()
        .workflow_by_id(mine["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    theirs = WorkflowRecord {
        id: uuid_v7(),
        team_id: team.id.clone(),
        hook_token: "t".into(),
        ..theirs
    };
    let version = VersionRecord {
        workflow_id: theirs.id.clone(),
        version: 1,
        code: "def workflow(_request, settings):\n    return None\n".into(),
        requirements: Vec::new(),
        state: flowd_core::workflow::VersionState::Ready,
        build_log: String::new(),
        error: None,
        environment: None,
        created_at: 0,
        settled_at: Some(0),
    };
    store
        .create_workflow(&theirs, &version, &Default::default())
        .await
        .unwrap();
    app.state.engine.flush().await;
    let (_, mine_listed) = get(&app, "/executions").await;
    let template: ExecutionRecord = store
        .execution(mine_listed["executions"][0]["id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    let writes: Vec<StoreWrite> = (0..3)
        .map(|_| {
            StoreWrite::PutExecution(ExecutionRecord {
                id: uuid_v7(),
                workflow_id: theirs.id.clone(),
                ..template.clone()
            })
        })
        .collect();
    store.commit(&writes).await.unwrap();

    // A key of our team (an admin key sees every team): pages of one still find ours behind
    // theirs.
    let (status, created) = send(
        &app,
        Method::POST,
        "/api-keys",
        Some(json!({"name": "ours", "role": "viewer"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let ours = created["key"].as_str().unwrap();
    let listed_with = |path: &'static str| {
        let request = app
            .client
            .get(app.url(&format!("/api/v1{path}")))
            .bearer_auth(ours);
        async move {
            let response = request.send().await.expect("request");
            response.json::<Value>().await.expect("json")
        }
    };
    let listed = listed_with("/executions?limit=1").await;
    let executions = listed["executions"].as_array().unwrap();
    assert_eq!(executions.len(), 1);
    assert_eq!(executions[0]["workflow_id"], mine["id"]);
    let listed = listed_with("/executions").await;
    assert_eq!(listed["executions"].as_array().unwrap().len(), 1);
    app.stop().await;
}

fn uuid_v7() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn executions_listing_refuses_bad_parameters_and_needs_a_key() {
    let app = spawn_app().await;
    for query in ["limit=0", "limit=1001", "limit=many", "status=fine"] {
        let (status, body) = get(&app, &format!("/executions?{query}")).await;
        assert_eq!(status, 422, "{query}: {body}");
        assert_eq!(body["error"]["code"], "invalid_request");
    }
    let response = app
        .client
        .get(app.url("/api/v1/executions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let (status, body) = get(&app, "/executions").await;
    assert_eq!((status, body), (200, json!({"executions": []})));
    app.stop().await;
}

// --- statistics ---------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn stats_give_the_last_execution_and_the_error_rate_over_24_hours() {
    let app = spawn_app().await;
    let workflow = app
        .create_catch(
            "flaky",
            &catch_code("if _request.get('fail'):\n    raise KeyError('x')\nreturn None"),
        )
        .await;
    let quiet = app.create_catch("quiet", &catch_code("return None")).await;
    for fail in [false, true, false, false] {
        app.call_hook_json(&workflow, &json!({ "fail": fail }))
            .await;
    }
    app.state.engine.flush().await;
    let id = workflow["id"].as_str().unwrap();

    let (status, stats) = get(&app, &format!("/workflows/{id}/stats")).await;
    assert_eq!(status, 200, "{stats}");
    assert_eq!(stats["workflow_id"], id);
    assert_eq!(stats["last_execution"]["status"], "success");
    let day = &stats["last_24h"];
    assert_eq!(day["total"], 4);
    assert_eq!(day["finished"], 4);
    assert_eq!(day["failed"], 1);
    assert_eq!(day["error_rate"], 0.25);
    assert_eq!(day["by_status"], json!({"success": 3, "error": 1}));

    let (_, all) = get(&app, "/workflow-stats").await;
    let all = all["stats"].as_array().unwrap();
    assert_eq!(all.len(), 2);
    let quiet_stats = all
        .iter()
        .find(|s| s["workflow_id"] == quiet["id"])
        .unwrap();
    assert_eq!(quiet_stats["last_execution"], Value::Null);
    assert_eq!(quiet_stats["last_24h"]["total"], 0);
    assert_eq!(quiet_stats["last_24h"]["error_rate"], Value::Null);

    let (status, body) = get(&app, "/workflows/nope/stats").await;
    assert_eq!(status, 404, "{body}");
    app.stop().await;
}

// --- schedules ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn schedule_preview_gives_the_next_five_fire_times() {
    let app = spawn_app().await;
    let (status, preview) = send(
        &app,
        Method::POST,
        "/schedules/preview",
        Some(json!({"schedule": {"cron": "30  9 * * 1-5", "timezone": "Europe/Paris"}})),
    )
    .await;
    assert_eq!(status, 200, "{preview}");
    assert_eq!(
        preview["schedule"],
        json!({"cron": "30 9 * * 1-5", "timezone": "Europe/Paris"})
    );
    let next: Vec<chrono::DateTime<chrono::Utc>> = preview["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(next.len(), 5);
    assert!(next.windows(2).all(|w| w[0] < w[1]));
    assert!(next[0] > chrono::Utc::now());
    for time in &next {
        // 09:30 in Paris is 07:30 or 08:30 UTC, on a weekday.
        assert_eq!(chrono::Timelike::minute(time), 30, "{time}");
        assert!(matches!(chrono::Timelike::hour(time), 7 | 8), "{time}");
    }

    let (_, every) = send(
        &app,
        Method::POST,
        "/schedules/preview",
        Some(json!({"schedule": {"every": "90m"}, "count": 3})),
    )
    .await;
    assert_eq!(every["schedule"], json!({"every": "1h30m"}));
    let times: Vec<chrono::DateTime<chrono::Utc>> = every["next"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    assert_eq!((times[1] - times[0]).num_minutes(), 90);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn schedule_preview_refuses_what_does_not_parse() {
    let app = spawn_app().await;
    for (body, needle) in [
        (json!({"schedule": {"cron": "61 * * * *"}}), "cron"),
        (
            json!({"schedule": {"cron": "* * * * *", "timezone": "Mars/Olympus"}}),
            "time zone",
        ),
        (json!({"schedule": {"every": "0s"}}), "0s"),
        (json!({"schedule": "daily"}), "schedule"),
        (
            json!({"schedule": {"every": "1m"}, "count": 0}),
            "count must be",
        ),
        (json!({"cron": "* * * * *"}), "schedule"),
    ] {
        let (status, answer) =
            send(&app, Method::POST, "/schedules/preview", Some(body.clone())).await;
        assert_eq!(status, 422, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], "invalid_request", "{body}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{body}: {message}");
    }
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pull_workflow_s_schedule_shows_its_next_fire_times_and_none_when_paused() {
    let app = spawn_app().await;
    let workflow = app
        .create_workflow(json!({
            "name": "nightly",
            "mode": "pull",
            "code": pull_code("return None"),
            "schedule": {"cron": "0 3 * * *", "timezone": "UTC"},
        }))
        .await;
    let id = workflow["id"].as_str().unwrap();
    let (status, schedule) = get(&app, &format!("/workflows/{id}/schedule")).await;
    assert_eq!(status, 200, "{schedule}");
    assert_eq!(
        schedule["schedule"],
        json!({"cron": "0 3 * * *", "timezone": "UTC"})
    );
    assert_eq!(schedule["enabled"], true);
    let next = schedule["next"].as_array().unwrap();
    assert_eq!(next.len(), 5);
    assert_eq!(next[0], workflow["next_run_at"]);
    for time in next {
        assert!(time.as_str().unwrap().ends_with("T03:00:00.000Z"), "{time}");
    }

    let (status, _) = send(
        &app,
        Method::PATCH,
        &format!("/workflows/{id}"),
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, paused) = get(&app, &format!("/workflows/{id}/schedule")).await;
    assert_eq!(paused["enabled"], false);
    assert_eq!(paused["next"], json!([]));

    let catch = app.create_catch("hooked", &catch_code("return None")).await;
    let (status, answer) = get(
        &app,
        &format!("/workflows/{}/schedule", catch["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 422, "{answer}");
    app.stop().await;
}
