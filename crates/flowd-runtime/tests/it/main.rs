//! The runtime against real Python: validation, warm instances, forks, limits and failures.

mod envs;
mod warm;

use std::sync::Arc;
use std::time::Duration;

use flowd_core::workflow::Mode;
use flowd_core::PyValue;
use flowd_runtime::{Job, Outcome, OutputLimits, Runtime, RuntimeConfig};

struct Harness {
    runtime: Runtime,
    _tmp: tempfile::TempDir,
}

async fn runtime() -> Harness {
    runtime_with(OutputLimits::default()).await
}

async fn runtime_with(limits: OutputLimits) -> Harness {
    runtime_configured(|config| config.limits = limits).await
}

/// A runtime whose configuration `adjust` changed.
async fn runtime_configured(adjust: impl FnOnce(&mut RuntimeConfig)) -> Harness {
    let tmp = tempfile::Builder::new()
        .prefix("flowd-runtime-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("tmp");
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let config = RuntimeConfig {
        runtime_dir: std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}")),
        tmp_dir: tmp.path().join("sandbox"),
        python: None,
        sandbox_user: None,
        preload: vec![],
        limits: OutputLimits::default(),
        max_warm_instances: 4,
        warm_memory_mb: 4096,
        build: flowd_runtime::BuildConfig::default(),
        reuse_pool_size: 2,
        sandbox: Default::default(),
    };
    let mut config = config;
    adjust(&mut config);
    let runtime = Runtime::start(config, &|_| {})
        .await
        .expect("runtime starts");
    Harness { runtime, _tmp: tmp }
}

fn job(key: &str, code: &str) -> Job {
    Job {
        requirements: None,
        version_key: key.to_string(),
        code: Arc::from(code),
        mode: Mode::Catch,
        request: Some(PyValue::Dict(vec![])),
        settings_json: "{}".into(),
        timeout: Duration::from_secs(10),
        memory_mb: 256,
        env: vec![],
        isolation: flowd_core::workflow::Isolation::Fork,
    }
}

fn killed_kind(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Killed(error) => error.kind.clone(),
        other => panic!("expected killed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_reports_syntax_errors_with_line_and_column() {
    let h = runtime().await;
    let error = h
        .runtime
        .validate(
            "def workflow(_request, settings):\n    return (\n",
            Mode::Catch,
        )
        .await
        .unwrap()
        .unwrap_err();
    assert!(error.message.contains("SyntaxError"), "{error:?}");
    assert_eq!(error.line, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_refuses_a_workflow_with_the_wrong_parameter_count() {
    let h = runtime().await;
    let error = h
        .runtime
        .validate("def workflow(settings):\n    pass\n", Mode::Catch)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.message.contains("def workflow(_request, settings)"),
        "{error:?}"
    );
    assert!(h
        .runtime
        .validate("def workflow(settings):\n    pass\n", Mode::Pull)
        .await
        .unwrap()
        .is_ok());
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_refuses_code_without_a_workflow_function() {
    let h = runtime().await;
    let error = h
        .runtime
        .validate("x = 1\n", Mode::Pull)
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        error.message.contains("def workflow(settings)"),
        "{error:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn module_top_level_runs_once_per_instance_and_globals_do_not_leak_between_executions() {
    let h = runtime().await;
    let code = "import os\nINIT_PID = os.getpid()\nseen = []\ndef workflow(_request, settings):\n    seen.append(1)\n    return {'status_code': 200, 'body': '%d %d' % (INIT_PID, len(seen))}\n";
    let mut bodies = Vec::new();
    for _ in 0..3 {
        match h.runtime.execute(&job("globals", code)).await.outcome {
            Outcome::Returned { value, .. } => bodies.push(
                value
                    .get("body")
                    .and_then(PyValue::as_str)
                    .unwrap()
                    .to_string(),
            ),
            other => panic!("{other:?}"),
        }
    }
    assert!(bodies.iter().all(|b| b == &bodies[0]), "{bodies:?}");
    assert!(bodies[0].ends_with(" 1"), "{bodies:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_past_its_deadline_times_out_and_is_killed() {
    let h = runtime().await;
    let mut job = job(
        "sleepy",
        "import time\ndef workflow(_request, settings):\n    time.sleep(60)\n",
    );
    job.timeout = Duration::from_millis(500);
    let started = std::time::Instant::now();
    let execution = h.runtime.execute(&job).await;
    assert_eq!(execution.outcome, Outcome::Timeout);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test(flavor = "multi_thread")]
async fn os_exit_is_reported_with_its_exit_code() {
    let h = runtime().await;
    let execution = h
        .runtime
        .execute(&job(
            "exit3",
            "import os\ndef workflow(_request, settings):\n    os._exit(3)\n",
        ))
        .await;
    assert_eq!(killed_kind(&execution.outcome), "Exited");
    match execution.outcome {
        Outcome::Killed(error) => assert!(error.message.contains("code 3"), "{error:?}"),
        _ => unreachable!(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_segfault_is_reported_and_the_next_call_still_works() {
    let h = runtime().await;
    let code = "import ctypes\ndef workflow(_request, settings):\n    if _request.get('crash'):\n        ctypes.string_at(0)\n    return {'status_code': 200, 'body': 'ok'}\n";
    let mut crash = job("segv", code);
    crash.request = Some(PyValue::Dict(vec![(
        PyValue::Str("crash".into()),
        PyValue::Bool(true),
    )]));
    let execution = h.runtime.execute(&crash).await;
    match &execution.outcome {
        Outcome::Killed(error) => assert!(error.message.contains("SIGSEGV"), "{error:?}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        h.runtime.execute(&job("segv", code)).await.outcome,
        Outcome::Returned { .. }
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn allocating_past_the_memory_limit_kills_the_execution() {
    let h = runtime().await;
    let mut job = job("hungry", "def workflow(_request, settings):\n    x = bytearray(1024 * 1024 * 1024)\n    return None\n");
    job.memory_mb = 128;
    let execution = h.runtime.execute(&job).await;
    assert_eq!(killed_kind(&execution.outcome), "MemoryLimit");
}

#[tokio::test(flavor = "multi_thread")]
async fn output_beyond_the_cap_is_dropped_and_flagged() {
    let h = runtime_with(OutputLimits {
        max_log_bytes: 1000,
        ..OutputLimits::default()
    })
    .await;
    let execution = h
        .runtime
        .execute(&job("chatty", "import sys\ndef workflow(_request, settings):\n    for i in range(10000):\n        print('line', i)\n    sys.stderr.write('to stderr\\n')\n"))
        .await;
    assert!(
        matches!(execution.outcome, Outcome::Returned { .. }),
        "{:?}",
        execution.outcome
    );
    assert_eq!(execution.logs.len(), 1000);
    assert!(execution.logs_truncated);
    assert!(execution.logs.starts_with(b"line 0\n"));
}

#[tokio::test(flavor = "multi_thread")]
async fn stdout_and_stderr_are_captured_in_order() {
    let h = runtime().await;
    let execution = h
        .runtime
        .execute(&job("both", "import sys\ndef workflow(_request, settings):\n    print('one')\n    sys.stderr.write('two\\n')\n    print('three')\n"))
        .await;
    assert_eq!(
        String::from_utf8_lossy(&execution.logs),
        "one\ntwo\nthree\n"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_child_process_left_behind_is_killed_with_the_execution() {
    let h = runtime().await;
    let code = "import subprocess\ndef workflow(_request, settings):\n    p = subprocess.Popen(['sleep', '300'])\n    return {'status_code': 200, 'body': str(p.pid)}\n";
    let pid: i32 = match h.runtime.execute(&job("orphan", code)).await.outcome {
        Outcome::Returned { value, .. } => value
            .get("body")
            .and_then(PyValue::as_str)
            .unwrap()
            .parse()
            .unwrap(),
        other => panic!("{other:?}"),
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| !stat.contains(") Z "))
        .unwrap_or(false);
    assert!(!alive, "the child {pid} outlived its execution");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_module_that_fails_to_import_reports_init_failure() {
    let h = runtime().await;
    let execution = h
        .runtime
        .execute(&job(
            "broken",
            "import does_not_exist_xyz\ndef workflow(_request, settings):\n    pass\n",
        ))
        .await;
    match execution.outcome {
        Outcome::InitFailed(error) => {
            assert_eq!(error.kind, "ModuleNotFoundError");
            assert!(error.traceback.unwrap_or_default().contains("workflow.py"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_settings_are_reported_with_the_key_and_type() {
    let h = runtime().await;
    let execution = h
        .runtime
        .execute(&job("dates", "import datetime\ndef workflow(_request, settings):\n    settings['when'] = datetime.datetime.now()\n"))
        .await;
    match execution.outcome {
        Outcome::Returned {
            settings: Err(message),
            ..
        } => {
            assert!(
                message.contains("'when'") && message.contains("datetime"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_executions_of_one_version_run_in_parallel() {
    let h = Arc::new(runtime().await);
    let code = "import time\ndef workflow(_request, settings):\n    time.sleep(0.5)\n";
    let started = std::time::Instant::now();
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let h = h.clone();
            let job = job("parallel", code);
            tokio::spawn(async move { h.runtime.execute(&job).await })
        })
        .collect();
    for run in runs {
        assert!(matches!(
            run.await.unwrap().outcome,
            Outcome::Returned { .. }
        ));
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

fn reuse_job(key: &str, code: &str) -> Job {
    Job {
        isolation: flowd_core::workflow::Isolation::Reuse,
        ..job(key, code)
    }
}

fn body_of(execution: flowd_runtime::Execution) -> String {
    match execution.outcome {
        Outcome::Returned { value, .. } => value
            .get("body")
            .and_then(PyValue::as_str)
            .unwrap()
            .to_string(),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_module_globals_persist_between_executions() {
    let h = runtime().await;
    let code = "calls = 0\ndef workflow(_request, settings):\n    global calls\n    calls += 1\n    print('call', calls)\n    return {'status_code': 200, 'body': str(calls)}\n";
    let first = h.runtime.execute(&reuse_job("reuse-globals", code)).await;
    assert_eq!(String::from_utf8_lossy(&first.logs), "call 1\n");
    assert_eq!(body_of(first), "1");
    let second = h.runtime.execute(&reuse_job("reuse-globals", code)).await;
    assert_eq!(
        String::from_utf8_lossy(&second.logs),
        "call 2\n",
        "each execution's output is its own"
    );
    assert_eq!(body_of(second), "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_each_execution_gets_its_own_settings_copy() {
    let h = runtime().await;
    let code = "def workflow(_request, settings):\n    settings['n'] = settings.get('n', 0) + 1\n    return {'status_code': 200, 'body': str(settings['n'])}\n";
    for _ in 0..2 {
        let mut job = reuse_job("reuse-settings", code);
        job.settings_json = "{\"n\": 5}".into();
        assert_eq!(body_of(h.runtime.execute(&job).await), "6");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_a_timeout_stops_the_instance_and_the_next_call_gets_a_new_one() {
    let h = runtime().await;
    let code = "import os, time\ndef workflow(_request, settings):\n    if _request.get('sleep'):\n        time.sleep(60)\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let before = body_of(h.runtime.execute(&reuse_job("reuse-timeout", code)).await);
    let mut sleepy = reuse_job("reuse-timeout", code);
    sleepy.request = Some(PyValue::Dict(vec![(
        PyValue::Str("sleep".into()),
        PyValue::Bool(true),
    )]));
    sleepy.timeout = Duration::from_millis(500);
    assert_eq!(h.runtime.execute(&sleepy).await.outcome, Outcome::Timeout);
    let after = body_of(h.runtime.execute(&reuse_job("reuse-timeout", code)).await);
    assert_ne!(before, after, "a new instance serves after the timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_concurrent_executions_run_in_several_instances() {
    let h = Arc::new(runtime().await);
    let code = "import os, time\ndef workflow(_request, settings):\n    time.sleep(0.5)\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let started = std::time::Instant::now();
    let runs: Vec<_> = (0..2)
        .map(|_| {
            let h = h.clone();
            tokio::spawn(async move { h.runtime.execute(&reuse_job("reuse-parallel", code)).await })
        })
        .collect();
    let mut pids = Vec::new();
    for run in runs {
        pids.push(body_of(run.await.unwrap()));
    }
    assert_ne!(pids[0], pids[1]);
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_an_exception_leaves_the_instance_serving() {
    let h = runtime().await;
    let code = "import os\ndef workflow(_request, settings):\n    if _request.get('fail'):\n        raise KeyError('x')\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let before = body_of(h.runtime.execute(&reuse_job("reuse-raise", code)).await);
    let mut failing = reuse_job("reuse-raise", code);
    failing.request = Some(PyValue::Dict(vec![(
        PyValue::Str("fail".into()),
        PyValue::Bool(true),
    )]));
    assert!(matches!(
        h.runtime.execute(&failing).await.outcome,
        Outcome::Raised(_)
    ));
    assert_eq!(
        body_of(h.runtime.execute(&reuse_job("reuse-raise", code)).await),
        before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_instances_of_different_versions_start_in_parallel() {
    let h = Arc::new(runtime().await);
    let started = std::time::Instant::now();
    let runs: Vec<_> = (0..3)
        .map(|n| {
            let h = h.clone();
            let code = format!("import time\ntime.sleep(1)\nVERSION = {n}\ndef workflow(_request, settings):\n    return None\n");
            tokio::spawn(async move { h.runtime.execute(&job(&format!("slow-init-{n}"), &code)).await })
        })
        .collect();
    for run in runs {
        assert!(matches!(
            run.await.unwrap().outcome,
            Outcome::Returned { .. }
        ));
    }
    assert!(
        started.elapsed() < Duration::from_millis(2_500),
        "three 1 s module top levels took {:?}: instance start-ups are serialised",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_interpreter_is_a_clear_error_naming_it() {
    let error = flowd_runtime::provision::find_interpreter(
        Some(std::path::Path::new("/nonexistent/python3")),
        false,
    )
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("/nonexistent/python3") && message.contains("FLOWD_PYTHON"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_interpreter_without_venv_support_is_refused_with_the_reason() {
    // `/bin/sh` runs, but is no Python: the probe fails and says what the interpreter lacks.
    let error =
        flowd_runtime::provision::find_interpreter(Some(std::path::Path::new("/bin/sh")), false)
            .await
            .unwrap_err();
    assert!(error.to_string().contains("/bin/sh"), "{error}");
}
