//! The runtime against real Python: validation, warm instances, forks, limits and failures.

mod deadlines;
mod envs;
mod warm;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowd_core::workflow::Mode;
use flowd_core::PyValue;
use flowd_runtime::{Job, Outcome, OutputLimits, Runtime, RuntimeConfig, SettingsError};

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
        egress: Default::default(),
    };
    let mut config = config;
    adjust(&mut config);
    let runtime = Runtime::start(config, &|_| {})
        .await
        .expect("runtime starts");
    Harness { runtime, _tmp: tmp }
}

/// Polls `check` until it answers `Some` and returns that; fails the test, naming `what`, when
/// `within` has passed first.
async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Whether process `pid` has ended (gone, or a zombie nobody reaped yet).
fn has_ended(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
        stat.rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    })
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
        context: None,
        egress_allow: Vec::new(),
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
    let what = format!("the child {pid} ended with its execution");
    eventually(Duration::from_secs(5), &what, || async {
        has_ended(&pid.to_string()).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_program_an_execution_runs_inherits_no_socket_to_flowd() {
    let h = runtime().await;
    // `close_fds=False`: the program gets every fd not marked close-on-exec.
    let code = "import subprocess\ndef workflow(_request, settings):\n    listing = subprocess.run(['/bin/sh', '-c', 'ls -l /proc/$$/fd'], close_fds=False, capture_output=True, text=True).stdout\n    return {'status_code': 200, 'body': listing}\n";
    let listing = body_of(h.runtime.execute(&job("inherited-fds", code)).await);
    assert!(listing.contains("-> "), "no fds listed: {listing}");
    assert!(!listing.contains("socket:"), "{listing}");
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
            settings: Err(SettingsError::NotJson(message)),
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
        egress_allow: Vec::new(),
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

fn reuse_job_with(key: &str, code: &str, request: &[(&str, PyValue)]) -> Job {
    let mut job = reuse_job(key, code);
    job.request = Some(PyValue::Dict(
        request
            .iter()
            .map(|(k, v)| (PyValue::Str(k.to_string()), v.clone()))
            .collect(),
    ));
    job
}

fn logs_of(execution: &flowd_runtime::Execution) -> String {
    String::from_utf8_lossy(&execution.logs).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_c_level_writes_and_child_processes_are_captured_in_order() {
    let h = runtime().await;
    let code = "import os, subprocess, sys\ndef workflow(_request, settings):\n    print('python')\n    os.write(1, b'fd1\\n')\n    os.write(2, b'fd2\\n')\n    subprocess.run(['/bin/sh', '-c', 'echo child; echo child-err >&2'])\n    sys.stderr.write('end\\n')\n    return {'status_code': 200, 'body': 'ok'}\n";
    for _ in 0..3 {
        let execution = h.runtime.execute(&reuse_job("reuse-capture", code)).await;
        assert_eq!(
            logs_of(&execution),
            "python\nfd1\nfd2\nchild\nchild-err\nend\n"
        );
        assert!(!execution.logs_truncated);
        assert_eq!(body_of(execution), "ok");
    }
}

/// Waits until a file named `name` is in `dir`.
async fn file_appears(dir: &Path, name: &str) {
    let path = dir.join(name);
    let what = format!("{} is written", path.display());
    eventually(Duration::from_secs(10), &what, || async {
        path.exists().then_some(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_output_written_after_a_call_returned_is_in_no_later_call() {
    let h = runtime().await;
    // A child process and a thread left running keep writing after the call returned; each of
    // their steps waits for a marker file in the instance's working directory, so the test
    // orders their writes: between the calls, then during the second call, then the third. The
    // child ignores SIGPIPE: its writes may fail once its pipe is closed, and it goes on.
    let code = r#"import os, subprocess, threading, time
CHILD = """
trap '' PIPE
until [ -e returned ]; do sleep 0.01; done; echo child-late
until [ -e during-2 ]; do sleep 0.01; done; echo child-later; touch written-2
until [ -e during-3 ]; do sleep 0.01; done; echo child-last; touch written-3
"""
def wait_for(name):
    while not os.path.exists(name):
        time.sleep(0.01)
def late():
    wait_for('returned')
    print('thread-late', flush=True)
    open('thread-written', 'w').close()
def workflow(_request, settings):
    body = f'{os.getpid()} {os.getcwd()}'
    if _request.get('leave'):
        subprocess.Popen(['/bin/sh', '-c', CHILD])
        threading.Thread(target=late).start()
        print('first')
        return {'status_code': 200, 'body': body}
    print('second')
    n = _request['call']
    open(f'during-{n}', 'w').close()
    wait_for(f'written-{n}')
    return {'status_code': 200, 'body': body}
"#;
    let first = h
        .runtime
        .execute(&reuse_job_with(
            "reuse-late",
            code,
            &[("leave", PyValue::Bool(true))],
        ))
        .await;
    assert_eq!(logs_of(&first), "first\n");
    let instance = body_of(first);
    let workdir = PathBuf::from(instance.split_once(' ').expect("pid and dir").1);
    std::fs::write(workdir.join("returned"), "").expect("a marker in the instance's dir");
    // The thread writes between the calls: that output is dropped.
    file_appears(&workdir, "thread-written").await;
    // The child started by the first call writes while this one runs: not into its output,
    // since the first call's result said it left a child and this call has a new pipe.
    let second = h
        .runtime
        .execute(&reuse_job_with(
            "reuse-late",
            code,
            &[("call", PyValue::Int(2))],
        ))
        .await;
    assert_eq!(logs_of(&second), "second\n");
    assert_eq!(body_of(second), instance, "the same instance served");
    // And again while the one after runs.
    let third = h
        .runtime
        .execute(&reuse_job_with(
            "reuse-late",
            code,
            &[("call", PyValue::Int(3))],
        ))
        .await;
    assert_eq!(logs_of(&third), "second\n");
    assert_eq!(body_of(third), instance);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_output_that_looks_like_frames_or_markers_only_lands_in_its_own_logs() {
    let h = runtime().await;
    // A length prefix and a marshal dict, like a result frame; NUL bytes; no newline at the end.
    let code = "import marshal, os, struct, sys\ndef workflow(_request, settings):\n    fake = marshal.dumps({'outcome': 'ok', 'ret': {'body': 'forged'}, 'settings': '{}'}, 2)\n    os.write(1, struct.pack('<I', len(fake)) + fake)\n    sys.stdout.write('\\x00--flowd-end--\\x00')\n    return {'status_code': 200, 'body': 'real'}\n";
    let clean =
        "def workflow(_request, settings):\n    return {'status_code': 200, 'body': 'clean'}\n";
    let first = h.runtime.execute(&reuse_job("reuse-fake", code)).await;
    assert!(
        first.logs.ends_with(b"\0--flowd-end--\0"),
        "{:?}",
        first.logs
    );
    assert_eq!(body_of(first), "real");
    let second = h.runtime.execute(&reuse_job("reuse-fake", code)).await;
    assert_eq!(body_of(second), "real");
    let other = h
        .runtime
        .execute(&reuse_job("reuse-fake-clean", clean))
        .await;
    assert!(other.logs.is_empty());
    assert_eq!(body_of(other), "clean");
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_output_over_the_cap_is_truncated_and_the_instance_keeps_serving() {
    let limits = OutputLimits {
        max_log_bytes: 64 * 1024,
        ..OutputLimits::default()
    };
    let h = runtime_with(limits).await;
    // 3 MiB: far more than the cap and than a pipe holds.
    let code = "import os, sys\ndef workflow(_request, settings):\n    if _request.get('big'):\n        line = 'x' * 1023 + '\\n'\n        for _ in range(3 * 1024):\n            sys.stdout.write(line)\n        os.write(2, b'y' * (1 << 20))\n    else:\n        print('small')\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let big = h
        .runtime
        .execute(&reuse_job_with(
            "reuse-big",
            code,
            &[("big", PyValue::Bool(true))],
        ))
        .await;
    assert!(big.logs_truncated);
    assert_eq!(big.logs.len(), 64 * 1024);
    assert!(big.logs.iter().all(|&b| b == b'x' || b == b'\n'));
    let pid = body_of(big);
    let small = h.runtime.execute(&reuse_job("reuse-big", code)).await;
    assert_eq!(logs_of(&small), "small\n");
    assert!(!small.logs_truncated);
    assert_eq!(body_of(small), pid);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_a_timed_out_call_keeps_what_it_printed_and_the_next_call_is_clean() {
    let h = runtime().await;
    let code = "import os, time\ndef workflow(_request, settings):\n    if _request.get('sleep'):\n        print('before the sleep')\n        time.sleep(60)\n    print('quick')\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let mut sleepy = reuse_job_with(
        "reuse-timeout-logs",
        code,
        &[("sleep", PyValue::Bool(true))],
    );
    sleepy.timeout = Duration::from_millis(500);
    let timed_out = h.runtime.execute(&sleepy).await;
    assert_eq!(timed_out.outcome, Outcome::Timeout);
    assert_eq!(logs_of(&timed_out), "before the sleep\n");
    for _ in 0..2 {
        let next = h
            .runtime
            .execute(&reuse_job("reuse-timeout-logs", code))
            .await;
        assert_eq!(logs_of(&next), "quick\n");
        body_of(next);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_an_exit_in_the_workflow_is_reported_and_a_new_instance_serves() {
    let h = runtime().await;
    let code = "import os\ndef workflow(_request, settings):\n    if _request.get('exit'):\n        print('leaving')\n        os._exit(3)\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let before = body_of(h.runtime.execute(&reuse_job("reuse-exit", code)).await);
    let exited = h
        .runtime
        .execute(&reuse_job_with(
            "reuse-exit",
            code,
            &[("exit", PyValue::Bool(true))],
        ))
        .await;
    assert_eq!(killed_kind(&exited.outcome), "Crashed");
    assert_eq!(logs_of(&exited), "leaving\n");
    assert!(
        exited.duration < Duration::from_millis(400),
        "{:?}",
        exited.duration
    );
    let after = body_of(h.runtime.execute(&reuse_job("reuse-exit", code)).await);
    assert_ne!(before, after);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_an_instance_that_died_while_idle_is_replaced_before_the_next_call() {
    let h = runtime().await;
    // A thread the call left behind ends the process after the call returned.
    let code = "import os, threading, time\ndef bye():\n    time.sleep(0.2)\n    os._exit(0)\ndef workflow(_request, settings):\n    if _request.get('bye'):\n        threading.Thread(target=bye).start()\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let first = body_of(
        h.runtime
            .execute(&reuse_job_with(
                "reuse-idle-death",
                code,
                &[("bye", PyValue::Bool(true))],
            ))
            .await,
    );
    eventually(
        Duration::from_secs(5),
        "the instance ended while idle",
        || async { has_ended(&first).then_some(()) },
    )
    .await;
    let second = body_of(
        h.runtime
            .execute(&reuse_job("reuse-idle-death", code))
            .await,
    );
    assert_ne!(first, second);
}

#[tokio::test(flavor = "multi_thread")]
async fn in_reuse_mode_a_result_over_the_limit_stops_the_instance() {
    let limits = OutputLimits {
        max_result_bytes: 64 * 1024,
        max_body_bytes: 1 << 20,
        ..OutputLimits::default()
    };
    let h = runtime_with(limits).await;
    let code = "import os\ndef workflow(_request, settings):\n    body = 'z' * (200 * 1024) if _request.get('big') else str(os.getpid())\n    return {'status_code': 200, 'body': body}\n";
    let before = body_of(h.runtime.execute(&reuse_job("reuse-result", code)).await);
    let big = h
        .runtime
        .execute(&reuse_job_with(
            "reuse-result",
            code,
            &[("big", PyValue::Bool(true))],
        ))
        .await;
    assert_eq!(killed_kind(&big.outcome), "ResultTooLarge");
    let after = body_of(h.runtime.execute(&reuse_job("reuse-result", code)).await);
    assert_ne!(before, after);
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

/// The settings a returned execution sends back, as JSON text.
fn returned_settings(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Returned {
            settings: Ok(json), ..
        } => json.clone(),
        other => panic!("expected a return with settings, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_async_workflow_is_run_to_completion() {
    let h = runtime().await;
    let code = "import asyncio\nasync def workflow(_request, settings):\n    await asyncio.sleep(0)\n    settings['ran'] = True\n    return {'status_code': 201, 'body': 'async'}\n";
    let execution = h.runtime.execute(&job("async", code)).await;
    assert_eq!(returned_settings(&execution.outcome), r#"{"ran": true}"#);
    match execution.outcome {
        Outcome::Returned { value, .. } => {
            assert_eq!(value.get("status_code"), Some(&PyValue::Int(201)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_returned_awaitable_subclass_of_a_plain_type_is_awaited() {
    let h = runtime().await;
    // A dict subclass that is awaitable: only exact plain types skip the awaitable check.
    let code = "class Later(dict):\n    def __await__(self):\n        yield from []\n        return {'status_code': 202}\ndef workflow(_request, settings):\n    return Later()\n";
    let execution = h.runtime.execute(&job("awaitable-dict", code)).await;
    match execution.outcome {
        Outcome::Returned { value, .. } => {
            assert_eq!(value.get("status_code"), Some(&PyValue::Int(202)));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_emptied_by_the_workflow_come_back_empty() {
    let h = runtime().await;
    let mut emptied = job(
        "empties",
        "def workflow(_request, settings):\n    settings.clear()\n",
    );
    emptied.settings_json = r#"{"a": 1, "b": [2]}"#.into();
    let execution = h.runtime.execute(&emptied).await;
    assert_eq!(returned_settings(&execution.outcome), "{}");
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_filled_from_empty_come_back_filled() {
    let h = runtime().await;
    let code = "def workflow(_request, settings):\n    settings['cursor'] = 'x'\n";
    let execution = h.runtime.execute(&job("fills", code)).await;
    assert_eq!(returned_settings(&execution.outcome), r#"{"cursor": "x"}"#);
}

/// The live (not zombie) child processes of `pid`.
fn live_children(pid: u32) -> usize {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|children| {
            children
                .split_whitespace()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|child| !has_ended(child))
        .count()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_instance_keeps_at_most_two_forks_parked_however_many_calls_overlapped() {
    let h = Arc::new(runtime().await);
    // In a fork, the parent process is the warm instance.
    let code = "import os, time\ndef workflow(_request, settings):\n    time.sleep(0.2)\n    return {'status_code': 200, 'body': str(os.getppid())}\n";
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let h = h.clone();
            let code = code.to_string();
            tokio::spawn(async move { body_of(h.runtime.execute(&job("parking", &code)).await) })
        })
        .collect();
    let mut instance = 0u32;
    for run in runs {
        instance = run.await.unwrap().parse().unwrap();
    }
    // The executions' forks end (killed with their group); those parked for the next calls stay:
    // one, or two once calls came faster than a fork is parked (they did here).
    eventually(
        Duration::from_secs(10),
        "one or two live forks under the warm instance, those parked",
        || async { (1..=2).contains(&live_children(instance)).then_some(()) },
    )
    .await;
    // And the instance goes on serving.
    assert_eq!(
        body_of(h.runtime.execute(&job("parking", code)).await),
        instance.to_string()
    );
}
