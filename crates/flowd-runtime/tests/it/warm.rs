//! Warm instances: kept in an LRU bounded by a memory budget, started again on their next use;
//! one pre-warmed for a coming run is reserved for it; a requirement set gets its own base
//! process, whose imports come from its own environment.

use std::sync::Arc;
use std::time::Duration;

use flowd_core::requirements::Requirements;
use flowd_runtime::Reservation;

use crate::{body_of, job, runtime_configured};

/// Holds about `mb` MiB of its own (written, so really resident), and answers its process id.
fn holding(mb: u32) -> String {
    format!(
        "import os\nBLOB = b'x' * ({mb} << 20)\ndef workflow(_request, settings):\n    return {{'status_code': 200, 'body': str(os.getpid())}}\n"
    )
}

/// Answers the `STARTED_BY` environment variable its instance was started with (read by the
/// module's top level): which start made the instance an execution runs in.
fn started_by(key: &str, who: &str) -> flowd_runtime::Job {
    let code = "import os\nSTARTED_BY = os.environ.get('STARTED_BY', '')\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': STARTED_BY}\n";
    flowd_runtime::Job {
        env: vec![("STARTED_BY".to_string(), who.to_string())],
        ..job(key, code)
    }
}

const AN_HOUR: Duration = Duration::from_secs(3600);

/// Runs one execution of each of the versions `keys` (each holding 1 MiB): newer uses, which
/// push older instances out of the LRU.
async fn run_other_versions(h: &crate::Harness, keys: &[&str]) {
    for key in keys {
        body_of(h.runtime.execute(&job(key, &holding(1))).await);
    }
}

/// A reservation for a run expected `run_in` from now, held `grace` past it.
fn reservation(run_in: Duration, grace: Duration) -> Reservation {
    Reservation { run_in, grace }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_instance_prewarmed_for_a_coming_run_outlives_more_newer_executions_than_instances_are_kept(
) {
    let h = runtime_configured(|config| config.max_warm_instances = 2).await;
    h.runtime
        .prewarm(
            &started_by("scheduled", "prewarm"),
            reservation(Duration::ZERO, AN_HOUR),
        )
        .await;
    run_other_versions(&h, &["a", "b", "c"]).await;
    assert_eq!(h.runtime.warm_instances(), 2);
    assert_eq!(
        body_of(h.runtime.execute(&started_by("scheduled", "run")).await),
        "prewarm",
        "the run found the instance pre-warmed for it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn when_only_held_instances_are_left_the_one_whose_run_comes_last_is_stopped() {
    let h = runtime_configured(|config| config.max_warm_instances = 2).await;
    let soon = reservation(Duration::from_secs(1), AN_HOUR);
    let later = reservation(Duration::from_secs(600), AN_HOUR);
    h.runtime
        .prewarm(&started_by("fires-soon", "prewarm"), soon)
        .await;
    h.runtime
        .prewarm(&started_by("fires-later", "prewarm"), later)
        .await;
    h.runtime
        .prewarm(&started_by("fires-next", "prewarm"), soon)
        .await;
    assert_eq!(h.runtime.warm_instances(), 2);
    assert_eq!(
        body_of(h.runtime.execute(&started_by("fires-soon", "run")).await),
        "prewarm",
        "the instance held for the earliest run was kept"
    );
    assert_eq!(
        body_of(h.runtime.execute(&started_by("fires-next", "run")).await),
        "prewarm",
        "the instance just pre-warmed was kept"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_reservation_does_not_protect_a_prewarmed_instance() {
    let h = runtime_configured(|config| config.max_warm_instances = 2).await;
    h.runtime
        .prewarm(
            &started_by("scheduled", "prewarm"),
            reservation(Duration::ZERO, Duration::ZERO),
        )
        .await;
    run_other_versions(&h, &["a", "b"]).await;
    assert_eq!(
        body_of(h.runtime.execute(&started_by("scheduled", "run")).await),
        "run",
        "the least recently used instance was stopped and started again for the run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_run_a_prewarmed_instance_was_reserved_for_ends_its_reservation() {
    let h = runtime_configured(|config| config.max_warm_instances = 2).await;
    let scheduled = started_by("scheduled", "prewarm");
    h.runtime
        .prewarm(&scheduled, reservation(Duration::ZERO, AN_HOUR))
        .await;
    assert_eq!(body_of(h.runtime.execute(&scheduled).await), "prewarm");
    run_other_versions(&h, &["a", "b"]).await;
    assert_eq!(
        body_of(h.runtime.execute(&started_by("scheduled", "again")).await),
        "again",
        "no longer reserved, it was stopped as the least recently used"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn prewarming_a_version_already_warm_keeps_its_instance_and_reserves_it() {
    let h = runtime_configured(|config| config.max_warm_instances = 2).await;
    assert_eq!(
        body_of(
            h.runtime
                .execute(&started_by("scheduled", "first run"))
                .await
        ),
        "first run"
    );
    h.runtime
        .prewarm(
            &started_by("scheduled", "prewarm"),
            reservation(Duration::ZERO, AN_HOUR),
        )
        .await;
    run_other_versions(&h, &["a", "b", "c"]).await;
    assert_eq!(
        body_of(h.runtime.execute(&started_by("scheduled", "run")).await),
        "first run"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_run_before_the_one_an_instance_is_reserved_for_keeps_the_reservation() {
    let h = runtime_configured(|config| config.max_warm_instances = 2).await;
    let scheduled = started_by("scheduled", "prewarm");
    h.runtime
        .prewarm(&scheduled, reservation(AN_HOUR, AN_HOUR))
        .await;
    // An earlier run (a schedule firing more often than the pre-warm lead) uses the instance.
    assert_eq!(body_of(h.runtime.execute(&scheduled).await), "prewarm");
    run_other_versions(&h, &["a", "b", "c"]).await;
    assert_eq!(
        body_of(h.runtime.execute(&started_by("scheduled", "run")).await),
        "prewarm",
        "still reserved for the run an hour away"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_beyond_the_memory_budget_are_stopped_least_recently_used_first() {
    let h = runtime_configured(|config| {
        config.warm_memory_mb = 50;
        config.max_warm_instances = 16;
    })
    .await;
    let a = job("a", &holding(30));
    let b = job("b", &holding(30));
    body_of(h.runtime.execute(&a).await);
    assert_eq!(h.runtime.warm_instances(), 1);
    body_of(h.runtime.execute(&b).await);
    assert_eq!(
        h.runtime.warm_instances(),
        1,
        "two 30 MiB instances do not fit in 50 MiB: the older one was stopped"
    );
    assert!(h.runtime.warm_memory_kb() <= 50 * 1024 + 8 * 1024);
}

#[tokio::test(flavor = "multi_thread")]
async fn instances_within_the_memory_budget_are_kept() {
    let h = runtime_configured(|config| {
        config.warm_memory_mb = 512;
        config.max_warm_instances = 16;
    })
    .await;
    for key in ["a", "b", "c"] {
        body_of(h.runtime.execute(&job(key, &holding(10))).await);
    }
    assert_eq!(h.runtime.warm_instances(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_evicted_version_is_warmed_again_on_its_next_call() {
    let h = runtime_configured(|config| config.warm_memory_mb = 50).await;
    // In reuse mode the answer is the instance's own pid: a new pid is a new instance.
    let a = crate::reuse_job("a", &holding(30));
    let first = body_of(h.runtime.execute(&a).await);
    assert_eq!(body_of(h.runtime.execute(&a).await), first, "still warm");
    body_of(
        h.runtime
            .execute(&crate::reuse_job("b", &holding(30)))
            .await,
    );
    let again = body_of(h.runtime.execute(&a).await);
    assert_ne!(again, first, "started again after its eviction");
    assert_eq!(
        body_of(h.runtime.execute(&a).await),
        again,
        "and warm again"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_version_is_not_shadowed_by_a_module_the_base_process_preloads() {
    let h = runtime_configured(|config| config.preload = vec!["requests".to_string()]).await;
    let code = "import requests\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': requests.__version__}\n";
    let base = body_of(h.runtime.execute(&job("base", code)).await);
    let pinned = Requirements::parse_lines(&["requests==2.31.0".to_string()]).unwrap();
    assert_ne!(base, "2.31.0", "the base environment has a newer requests");
    let built = h.runtime.build_environment(&pinned).await.expect("built");
    let with_pin = flowd_runtime::Job {
        requirements: Some(Arc::new(pinned)),
        ..job("pinned", code)
    };
    assert_eq!(body_of(h.runtime.execute(&with_pin).await), "2.31.0");
    assert!(built.id.starts_with("python3"));
    // Both keep answering with their own version.
    assert_eq!(body_of(h.runtime.execute(&job("base", code)).await), base);
    assert_eq!(body_of(h.runtime.execute(&with_pin).await), "2.31.0");
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_up_reports_a_failing_import_and_keeps_nothing_warm() {
    let h = runtime_configured(|_| {}).await;
    let failing = job(
        "broken",
        "import no_such_module_x\ndef workflow(_request, settings):\n    return None\n",
    );
    match h.runtime.warm_up(&failing).await {
        Err(flowd_runtime::WarmUpFailure::Init(failure)) => {
            assert_eq!(failure.error.kind, "ModuleNotFoundError");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.runtime.warm_instances(), 0);
    h.runtime
        .warm_up(&job("fine", &holding(1)))
        .await
        .expect("a clean import warms up");
    assert_eq!(h.runtime.warm_instances(), 1);
}
