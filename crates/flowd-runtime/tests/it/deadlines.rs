//! Every wait has a deadline: Python processes killed (SIGKILL from the test) or stopped at start
//! and under load — the base process, a warm instance, an execution fork, a reuse instance — end
//! the calls they held within their timeout and the margin, and the next call works.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flowd_core::PyValue;
use flowd_runtime::{BaseState, Outcome, Runtime, CALL_MARGIN};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{body_of, eventually, has_ended, job, reuse_job, runtime, runtime_configured};

/// Slack on top of a deadline for a loaded 2-core machine: a bound, not a timing measurement.
const SLACK: Duration = Duration::from_secs(5);

fn signal(pid: u32, signal: Signal) {
    kill(Pid::from_raw(pid as i32), signal).expect("the process is signalled");
}

/// The pid of the runtime's own base process, as the runtime reports it.
fn base_pid(runtime: &Runtime) -> u32 {
    runtime.base_processes()[0]
        .pid
        .expect("the base process is up")
}

/// Waits for the runtime's own base process to be up again, other than `old`, and answers its pid.
async fn base_up_again(runtime: &Runtime, old: u32) -> u32 {
    eventually(
        Duration::from_secs(30),
        "the base process is up again",
        || async {
            let status = runtime.base_processes().remove(0);
            (status.state == BaseState::Up)
                .then_some(status.pid)
                .flatten()
                .filter(|pid| *pid != old)
        },
    )
    .await
}

/// Answers its instance's pid (the parent of the fork it runs in).
const INSTANCE_PID: &str = "import os, time\ndef workflow(_request, settings):\n    time.sleep(_request.get('sleep', 0))\n    return {'status_code': 200, 'body': str(os.getppid())}\n";

/// Writes its pid to `running.pid` in its private temp dir, then sleeps a minute.
const SLEEPS_AFTER_SAYING_ITS_PID: &str = "import os, time\ndef workflow(_request, settings):\n    with open('running.pid.tmp', 'w') as f:\n        f.write(str(os.getpid()))\n    os.rename('running.pid.tmp', 'running.pid')\n    time.sleep(60)\n";

/// The pid a running execution wrote under the sandbox's temp dirs (`tmp`).
fn running_pid(tmp: &Path) -> Option<u32> {
    let dirs = std::fs::read_dir(tmp.join("sandbox")).ok()?;
    dirs.flatten()
        .map(|dir| dir.path().join("running.pid"))
        .find_map(|file: PathBuf| std::fs::read_to_string(file).ok()?.trim().parse().ok())
}

/// Writes a module the base process can preload into the runtime environment's site-packages.
fn install_preload_module(runtime: &Runtime, name: &str, source: &str) {
    let lib = runtime.environment().dir.join("lib");
    let site = std::fs::read_dir(&lib)
        .expect("the environment's lib dir")
        .flatten()
        .map(|entry| entry.path().join("site-packages"))
        .find(|path| path.is_dir())
        .expect("site-packages");
    let staging = site.join(format!(".{name}-{}.tmp", std::process::id()));
    std::fs::write(&staging, source).expect("module written");
    std::fs::rename(&staging, site.join(format!("{name}.py"))).expect("module in place");
}

async fn start_failure_with_preload(module: &str, source: &str) -> (String, Duration) {
    let h = runtime().await;
    install_preload_module(&h.runtime, module, source);
    let started = Instant::now();
    let result = runtime_start_with_preload(module).await;
    let error = match result {
        Ok(_) => panic!("a runtime whose base process dies at start started"),
        Err(error) => error.to_string(),
    };
    (error, started.elapsed())
}

async fn runtime_start_with_preload(module: &str) -> Result<Runtime, flowd_runtime::RuntimeError> {
    let tmp = tempfile::tempdir().expect("tmp");
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let config = flowd_runtime::RuntimeConfig {
        runtime_dir: std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}")),
        tmp_dir: tmp.path().join("sandbox"),
        python: None,
        sandbox_user: None,
        preload: vec![module.to_string()],
        limits: Default::default(),
        max_warm_instances: 4,
        warm_memory_mb: 4096,
        build: flowd_runtime::BuildConfig::default(),
        reuse_pool_size: 2,
        sandbox: Default::default(),
        egress: Default::default(),
    };
    Runtime::start(config, &|_| {}).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_process_killed_while_starting_fails_the_start_naming_the_signal_after_its_tries() {
    let (error, took) = start_failure_with_preload(
        "flowd_test_sigkill_at_start",
        "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
    )
    .await;
    assert!(
        error.contains("base process") && error.contains("3 tries"),
        "{error}"
    );
    assert!(error.contains("killed by SIGKILL"), "{error}");
    assert!(took < Duration::from_secs(60), "the start took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_process_exiting_while_starting_fails_the_start_with_its_exit_code() {
    let (error, _) =
        start_failure_with_preload("flowd_test_exit_at_start", "import os\nos._exit(3)\n").await;
    assert!(error.contains("exited with code 3"), "{error}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_base_process_killed_at_run_time_is_restarted_and_reported() {
    let h = runtime().await;
    let old = base_pid(&h.runtime);
    signal(old, Signal::SIGKILL);
    base_up_again(&h.runtime, old).await;
    let status = h.runtime.base_processes().remove(0);
    assert!(status.restarts >= 1, "{status:?}");
    assert!(
        status
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("SIGKILL")),
        "{status:?}"
    );
    body_of(
        h.runtime
            .execute(&job("after-base-death", INSTANCE_PID))
            .await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_starting_instances_while_the_base_process_is_killed_end_within_their_deadline() {
    let h = Arc::new(runtime().await);
    let old = base_pid(&h.runtime);
    let timeout = Duration::from_secs(5);
    let calls: Vec<_> = (0..6)
        .map(|n| {
            let h = h.clone();
            let mut job = job(&format!("cold-{n}"), INSTANCE_PID);
            job.timeout = timeout;
            tokio::spawn(async move {
                let started = Instant::now();
                let outcome = h.runtime.execute(&job).await.outcome;
                (outcome, started.elapsed())
            })
        })
        .collect();
    signal(old, Signal::SIGKILL);
    for call in calls {
        let (outcome, took) = call.await.expect("the call task");
        assert!(
            took < timeout + CALL_MARGIN + SLACK,
            "a call took {took:?}: {outcome:?}"
        );
    }
    base_up_again(&h.runtime, old).await;
    body_of(h.runtime.execute(&job("cold-after", INSTANCE_PID)).await);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_base_process_holds_no_call_past_its_deadline_and_is_replaced() {
    let h = runtime().await;
    let old = base_pid(&h.runtime);
    signal(old, Signal::SIGSTOP);
    let mut stuck = job("needs-the-base", INSTANCE_PID);
    stuck.timeout = Duration::from_secs(2);
    let started = Instant::now();
    let outcome = h.runtime.execute(&stuck).await.outcome;
    let took = started.elapsed();
    assert!(
        took < stuck.timeout + CALL_MARGIN + SLACK,
        "took {took:?}: {outcome:?}"
    );
    assert!(!matches!(outcome, Outcome::Returned { .. }), "{outcome:?}");
    // The next call finds the stopped process out of step and starts another.
    body_of(
        h.runtime
            .execute(&job("needs-the-base", INSTANCE_PID))
            .await,
    );
    assert_ne!(base_pid(&h.runtime), old);
    assert!(
        has_ended(&old.to_string()),
        "the stopped base process was killed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_warm_instance_killed_under_load_ends_no_call_late_and_is_replaced() {
    let h = Arc::new(runtime().await);
    let instance: u32 = body_of(h.runtime.execute(&job("loaded", INSTANCE_PID)).await)
        .parse()
        .expect("a pid");
    let timeout = Duration::from_secs(5);
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let h = h.clone();
            let mut job = job("loaded", INSTANCE_PID);
            job.timeout = timeout;
            job.request = Some(PyValue::Dict(vec![(
                PyValue::Str("sleep".into()),
                PyValue::Float(0.3),
            )]));
            tokio::spawn(async move {
                let started = Instant::now();
                let outcome = h.runtime.execute(&job).await.outcome;
                (outcome, started.elapsed())
            })
        })
        .collect();
    signal(instance, Signal::SIGKILL);
    for call in calls {
        let (outcome, took) = call.await.expect("the call task");
        assert!(
            took < timeout + CALL_MARGIN + SLACK,
            "a call took {took:?}: {outcome:?}"
        );
    }
    let replaced: u32 = body_of(h.runtime.execute(&job("loaded", INSTANCE_PID)).await)
        .parse()
        .expect("a pid");
    assert_ne!(replaced, instance);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_fork_killed_mid_call_is_reported_killed_and_the_next_call_works() {
    let h = Arc::new(runtime().await);
    let call = {
        let h = h.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let execution = h
                .runtime
                .execute(&job("fork-killed", SLEEPS_AFTER_SAYING_ITS_PID))
                .await;
            (execution, started.elapsed())
        })
    };
    let fork = eventually(
        Duration::from_secs(30),
        "the execution says its pid",
        || async { running_pid(h._tmp.path()) },
    )
    .await;
    signal(fork, Signal::SIGKILL);
    let (execution, took) = call.await.expect("the call task");
    match &execution.outcome {
        Outcome::Killed(error) => assert!(error.message.contains("SIGKILL"), "{error:?}"),
        other => panic!("{other:?}"),
    }
    assert!(took < Duration::from_secs(10) + SLACK, "took {took:?}");
    body_of(
        h.runtime
            .execute(&job("fork-killed-next", INSTANCE_PID))
            .await,
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reuse_instance_killed_mid_call_is_reported_killed_and_replaced() {
    let h = Arc::new(runtime().await);
    let call = {
        let h = h.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let execution = h
                .runtime
                .execute(&reuse_job("reuse-killed", SLEEPS_AFTER_SAYING_ITS_PID))
                .await;
            (execution, started.elapsed())
        })
    };
    let instance = eventually(
        Duration::from_secs(30),
        "the execution says its pid",
        || async { running_pid(h._tmp.path()) },
    )
    .await;
    signal(instance, Signal::SIGKILL);
    let (execution, took) = call.await.expect("the call task");
    assert!(
        matches!(execution.outcome, Outcome::Killed(_)),
        "{:?}",
        execution.outcome
    );
    assert!(took < Duration::from_secs(10) + SLACK, "took {took:?}");
    let code = "import os\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': str(os.getpid())}\n";
    let next: u32 = body_of(h.runtime.execute(&reuse_job("reuse-killed", code)).await)
        .parse()
        .expect("a pid");
    assert_ne!(next, instance);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_whose_execution_fork_is_stopped_ends_at_its_deadline() {
    let h = Arc::new(runtime().await);
    let mut stopped = job("fork-stopped", SLEEPS_AFTER_SAYING_ITS_PID);
    stopped.timeout = Duration::from_secs(2);
    let call = {
        let h = h.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let outcome = h.runtime.execute(&stopped).await.outcome;
            (outcome, started.elapsed())
        })
    };
    let fork = eventually(
        Duration::from_secs(30),
        "the execution says its pid",
        || async { running_pid(h._tmp.path()) },
    )
    .await;
    signal(fork, Signal::SIGSTOP);
    let (outcome, took) = call.await.expect("the call task");
    assert_eq!(outcome, Outcome::Timeout);
    assert!(
        took < Duration::from_secs(2) + CALL_MARGIN + SLACK,
        "took {took:?}"
    );
    eventually(
        Duration::from_secs(10),
        "the stopped fork was killed",
        || async { has_ended(&fork.to_string()).then_some(()) },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exit_in_the_module_top_level_is_an_init_failure_of_the_instance() {
    let h = runtime_configured(|_| {}).await;
    let execution = h
        .runtime
        .execute(&job(
            "exits-at-import",
            "import os\nos._exit(3)\ndef workflow(_request, settings):\n    pass\n",
        ))
        .await;
    match execution.outcome {
        Outcome::InitFailed(error) => {
            assert_eq!(error.kind, "InitExited");
            assert!(!error.message.contains("base process"), "{error:?}");
        }
        other => panic!("{other:?}"),
    }
    // The base process was not the one that failed: it goes on serving.
    assert_eq!(h.runtime.base_processes()[0].state, BaseState::Up);
    assert_eq!(h.runtime.base_processes()[0].restarts, 0);
}
