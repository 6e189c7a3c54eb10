//! The attack suite: untrusted workflow code cannot harm the server, other workflows, or the
//! host. Each test runs an attack through a hook URL and checks that it is contained **and** that
//! another workflow's hook kept answering while it ran.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::*;

mod between_workflows;
mod e2e_egress;
mod seccomp;

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

/// What an attack produced: the hook's status and body, and its execution record.
struct Outcome {
    status: u16,
    body: String,
    record: Value,
}

/// Runs `code` (a catch workflow's function body) as an attack with `request`, while a bystander
/// workflow is called again and again; every bystander call must answer `200` within 5 s.
async fn attack(app: &TestApp, name: &str, body: &str, extra: Value, request: Value) -> Outcome {
    let mut definition = json!({"name": name, "mode": "catch", "code": catch_code(body)});
    if let (Some(definition), Some(extra)) = (definition.as_object_mut(), extra.as_object()) {
        definition.extend(extra.clone());
    }
    let workflow = app.create_workflow(definition).await;
    let bystander = match app.get_json("/workflows").await["workflows"]
        .as_array()
        .and_then(|all| all.iter().find(|w| w["name"] == "bystander").cloned())
    {
        Some(existing) => existing,
        None => {
            app.create_catch(
                "bystander",
                &catch_code("return {'status_code': 200, 'body': 'alive'}"),
            )
            .await
        }
    };
    let client = app.client.clone();
    let url = app.url(hook_path(&workflow));
    let call = tokio::spawn(async move { client.post(url).json(&request).send().await });
    let mut bystander_calls = 0;
    while !call.is_finished() || bystander_calls == 0 {
        let started = Instant::now();
        let response = tokio::time::timeout(
            Duration::from_secs(5),
            app.call_hook_json(&bystander, &json!({})),
        )
        .await
        .expect("the bystander answers within 5 s during the attack");
        assert_eq!(response.status(), 200, "bystander during {name}");
        assert_eq!(response.text().await.unwrap(), "alive");
        assert!(started.elapsed() < Duration::from_secs(5));
        bystander_calls += 1;
        // Paces the bystander's calls while the attack runs (orders nothing).
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let response = call
        .await
        .expect("join")
        .expect("the attack call is answered");
    let status = response.status().as_u16();
    let id = execution_id(&response);
    let body = response.text().await.unwrap_or_default();
    let record = app.execution(&id).await;
    Outcome {
        status,
        body,
        record,
    }
}

async fn attack_simple(app: &TestApp, name: &str, body: &str) -> Outcome {
    attack(app, name, body, json!({}), json!({})).await
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_cpu_loop_times_out() {
    let app = spawn_app().await;
    let outcome = attack(
        &app,
        "spin",
        "while True:\n    pass",
        json!({"timeout_s": 2}),
        json!({}),
    )
    .await;
    assert_eq!(outcome.status, 504);
    assert_eq!(outcome.record["status"], "timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn sleeping_forever_times_out() {
    let app = spawn_app().await;
    let outcome = attack(
        &app,
        "sleeper",
        "import time\ntime.sleep(10**6)",
        json!({"timeout_s": 2}),
        json!({}),
    )
    .await;
    assert_eq!(outcome.status, 504);
    assert!(
        outcome.body.contains("\"status\":\"timeout\""),
        "{}",
        outcome.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allocating_4_gib_is_killed_for_memory() {
    let app = spawn_app().await;
    let outcome = attack_simple(&app, "hog", "x = bytearray(4 * 1024 ** 3)\nreturn None").await;
    assert_eq!(outcome.status, 500);
    assert_eq!(outcome.record["status"], "killed");
    assert!(
        outcome.body.contains("\"status\":\"killed\""),
        "{}",
        outcome.body
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_is_contained() {
    if !running_as_root() {
        eprintln!("skipped: the pids cgroup needs root");
        return;
    }
    let app = spawn_app().await;
    let layers = app.get_json("/system").await["isolation"]["layers"].clone();
    let pids = layers
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "pids_cgroup")
        .unwrap()
        .clone();
    assert_eq!(pids["active"], true, "{pids}");
    let body =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass";
    let outcome = attack(&app, "bomb", body, json!({"timeout_s": 3}), json!({})).await;
    assert_eq!(outcome.status, 504);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_process_does_not_outlive_the_call() {
    let app = spawn_app().await;
    let body = "import subprocess\np = subprocess.Popen(['sleep', '300'])\nreturn {'status_code': 200, 'body': str(p.pid)}";
    let outcome = attack_simple(&app, "orphan", body).await;
    assert_eq!(outcome.status, 200);
    let pid: u32 = outcome.body.parse().unwrap();
    let what = format!("process {pid} is gone once its execution has ended");
    eventually(Duration::from_secs(5), &what, || async {
        let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "));
        (!alive).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_thread_still_running_after_return_is_stopped() {
    let app = spawn_app().await;
    let body = "import threading, time, os\nmarker = os.path.join(os.getcwd(), 'thread-was-here')\ndef later():\n    time.sleep(1)\n    open(marker, 'w').write('x')\nthreading.Thread(target=later).start()\nreturn {'status_code': 200, 'body': marker}";
    let outcome = attack_simple(&app, "thread", body).await;
    assert_eq!(outcome.status, 200);
    // An interval in which nothing may happen: the thread would write its marker 1 s after the
    // call; half a second more shows it did not.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert!(
        !std::path::Path::new(&outcome.body).exists(),
        "the thread kept running"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn killing_the_warm_instance_is_survived_and_it_is_replaced() {
    let app = spawn_app().await;
    let body = "import os, signal\nif _request.get('kill'):\n    os.kill(os.getppid(), signal.SIGKILL)\nreturn {'status_code': 200, 'body': 'ok'}";
    attack(&app, "parricide", body, json!({}), json!({"kill": true})).await;
    let workflow = app.get_json("/workflows").await["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "parricide")
        .cloned()
        .unwrap();
    let response = app.call_hook_json(&workflow, &json!({})).await;
    assert_eq!(
        response.status(),
        200,
        "the next call runs on a new warm instance"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_process_cannot_be_signalled() {
    let app = spawn_app().await;
    let body = "import os\ntry:\n    os.kill(_request['pid'], 9)\n    return {'status_code': 200, 'body': 'killed'}\nexcept PermissionError:\n    return {'status_code': 200, 'body': 'denied'}";
    let outcome = attack(
        &app,
        "regicide",
        body,
        json!({}),
        json!({"pid": std::process::id()}),
    )
    .await;
    if running_as_root() {
        assert_eq!(outcome.body, "denied");
    }
}

/// Runs `probe` (Python that sets `result`) and answers what it found.
async fn probe(app: &TestApp, name: &str, probe: &str, request: Value) -> String {
    let body =
        format!("result = None\n{probe}\nreturn {{'status_code': 200, 'body': str(result)}}");
    let outcome = attack(app, name, &body, json!({}), request).await;
    assert_eq!(outcome.status, 200, "{}", outcome.record);
    outcome.body
}

fn try_read(path_expr: &str) -> String {
    format!("try:\n    open({path_expr}, 'rb').read(16)\n    result = 'read'\nexcept (PermissionError, OSError) as e:\n    result = 'denied'")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_and_the_admin_key_file_cannot_be_read() {
    if !running_as_root() {
        return;
    }
    let app = spawn_app().await;
    let data_dir = app.data_dir.path().join("data");
    let key_file = data_dir.join("admin-api-key");
    std::fs::write(&key_file, "secret-key").unwrap();
    let db = data_dir.join("flowd.db");
    for (name, path) in [("db", db), ("key", key_file)] {
        let found = probe(
            &app,
            &format!("read-{name}"),
            &try_read("_request['path']"),
            json!({"path": path}),
        )
        .await;
        assert_eq!(found, "denied", "{name}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_workflows_files_cannot_be_read() {
    let app = spawn_app().await;
    let writer = "import os\npath = os.path.join(os.getcwd(), 'private.txt')\nopen(path, 'w').write('mine')\nreturn {'status_code': 200, 'body': path}";
    let outcome = attack_simple(&app, "owner", writer).await;
    let found = probe(
        &app,
        "thief",
        &try_read("_request['path']"),
        json!({"path": outcome.body}),
    )
    .await;
    assert_eq!(found, "denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn writing_outside_the_private_temporary_directory_is_denied() {
    let app = spawn_app().await;
    let code = "result = []\nfor path in ['/tmp/flowd-escape', '/var/tmp/flowd-escape', '/etc/flowd-escape']:\n    try:\n        open(path, 'w').write('x')\n        result.append('wrote ' + path)\n    except OSError:\n        result.append('denied')\nresult = ' '.join(result)";
    let found = probe(&app, "scribbler", code, json!({})).await;
    assert_eq!(found, "denied denied denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_server_environment_cannot_be_read_from_proc() {
    let app = spawn_app().await;
    let code = try_read("'/proc/%d/environ' % _request['pid']");
    let found = probe(&app, "environ", &code, json!({"pid": std::process::id()})).await;
    assert_eq!(found, "denied");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_process_environment_is_scrubbed() {
    let app = spawn_app().await;
    let found = probe(&app, "env", "import os\nresult = sorted(k for k in os.environ if k.startswith('FLOWD') or 'KEY' in k or 'SECRET' in k)", json!({})).await;
    assert_eq!(found, "[]");
}

#[tokio::test(flavor = "multi_thread")]
async fn ptrace_and_unshare_are_refused() {
    let app = spawn_app().await;
    let code = "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nresults = []\nfor call in (lambda: libc.ptrace(0, 0, 0, 0), lambda: libc.unshare(0x10000000)):\n    ctypes.set_errno(0)\n    rc = call()\n    results.append('%d/%d' % (rc, ctypes.get_errno()))\nresult = ' '.join(results)";
    let found = probe(&app, "tracer", code, json!({})).await;
    assert_eq!(found, "-1/1 -1/1", "both fail with EPERM");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_output_is_capped() {
    let app = spawn_app().await;
    let outcome = attack_simple(&app, "flood", "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1_000_000)\nreturn {'status_code': 200, 'body': 'done'}").await;
    assert_eq!(outcome.status, 200);
    assert_eq!(outcome.record["logs_truncated"], true);
    assert!(outcome.record["logs"].as_str().unwrap().len() <= 1 << 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn os_exit_is_reported_as_killed() {
    let app = spawn_app().await;
    let outcome = attack_simple(&app, "exiter", "import os\nos._exit(3)").await;
    assert_eq!(outcome.status, 500);
    assert_eq!(outcome.record["status"], "killed");
    assert!(outcome.record["error"]["message"]
        .as_str()
        .unwrap()
        .contains("code 3"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segfault_is_reported_as_killed() {
    let app = spawn_app().await;
    let outcome = attack_simple(&app, "segv", "import ctypes\nctypes.string_at(0)").await;
    assert_eq!(outcome.status, 500);
    assert_eq!(outcome.record["status"], "killed");
    assert!(outcome.record["error"]["message"]
        .as_str()
        .unwrap()
        .contains("SIGSEGV"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_200_mb_body_is_not_sent() {
    let app = spawn_app().await;
    let outcome = attack(
        &app,
        "huge",
        "return {'status_code': 200, 'body': 'x' * 200_000_000}",
        json!({"memory_mb": 1024}),
        json!({}),
    )
    .await;
    assert_eq!(outcome.status, 200);
    assert!(
        outcome.body.contains("\"status\":\"success\""),
        "the default response"
    );
    let warnings = outcome.record["warnings"].to_string();
    assert!(warnings.contains("limit"), "{warnings}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_printed_secret_is_masked() {
    let app = spawn_app().await;
    let outcome = attack(
        &app,
        "leaky",
        "print('the key is', settings['API_KEY'])\nreturn None",
        json!({"settings": {"API_KEY": "sk-live-0123456789"}, "secrets": ["API_KEY"]}),
        json!({}),
    )
    .await;
    let logs = outcome.record["logs"].as_str().unwrap();
    assert_eq!(logs, "the key is ****\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn outbound_http_to_a_loopback_server_works_when_the_server_allows_it() {
    let app = spawn_app_with(|config| {
        // A uid of its own: another server's egress table refuses loopback to its sandbox uid.
        config.sandbox_user = Some(e2e_egress::fresh_sandbox_user());
        config.egress.allow = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 1024];
            let _ = socket.read(&mut buffer).await;
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nConnection: close\r\n\r\npong")
                .await;
        }
    });
    let found = probe(
        &app,
        "caller",
        "import requests\nresult = requests.get('http://127.0.0.1:%d/' % _request['port'], timeout=5).text",
        json!({"port": port}),
    )
    .await;
    assert_eq!(found, "pong");
}
