//! The bench harness still runs: flowd's scenarios and the HTTP ceiling with a handful of
//! requests each (no baselines, so no PyPI). No timing is asserted.

use flowd_bench::report::Outcome;
use flowd_bench::{Mode, Options};

/// flowd's Python environment, shared with the other crates' tests (built once, reachable by
/// the sandbox user).
fn shared_runtime_dir() -> std::path::PathBuf {
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_run_measures_flowd_and_the_ceiling() {
    let scratch = tempfile::Builder::new()
        .prefix("flowd-bench-smoke-")
        .tempdir_in(std::env::temp_dir())
        .expect("scratch dir");
    let mut options = Options::new(Mode::Smoke);
    options.scratch = scratch.path().to_path_buf();
    options.runtime_dir = Some(shared_runtime_dir());
    let report = flowd_bench::run(&options).await.expect("the smoke run");
    let text = report.render();
    println!("{text}");

    for key in [
        "ceiling",
        "flowd-fork",
        "flowd-upload",
        "flowd-hrflow",
        "flowd-hrflow-cold",
    ] {
        let row = report.row(key).unwrap_or_else(|| panic!("no {key} row"));
        let c1 = row
            .c1()
            .unwrap_or_else(|| panic!("{key}: nothing measured: {:?}", row.outcome));
        assert!(c1.ok > 0 && c1.failed == 0, "{key}: {c1:?}");
        if key != "flowd-hrflow-cold" {
            let c16 = row
                .c16()
                .unwrap_or_else(|| panic!("{key}: no c=16 figures"));
            assert!(c16.ok > 0 && c16.failed == 0, "{key}: {c16:?}");
        }
    }
    // `reuse` is measured where the server offers it, reported unavailable where it answers 422.
    let reuse = report.row("flowd-reuse").expect("a reuse row");
    assert!(
        matches!(
            reuse.outcome,
            Outcome::Measured { .. } | Outcome::NotAvailable(_)
        ),
        "{:?}",
        reuse.outcome
    );
    for key in ["gunicorn", "uvicorn", "spawn", "floor"] {
        assert!(matches!(
            report.row(key).map(|r| &r.outcome),
            Some(Outcome::Skipped(_))
        ));
    }

    let memory = &report.memory;
    assert!(memory.idle_rss_kb.is_some_and(|kb| kb > 0));
    assert!(memory.base.is_some(), "the zygote's memory");
    assert!(!memory.instances.is_empty(), "warm instances' memory");
    assert!(
        !memory.forks.is_empty(),
        "forks in flight: {:?}",
        memory.notes
    );
    assert_eq!(memory.rounds_rss_kb.len(), 3);

    let pull = report.pull.as_ref().expect("the pull scenario ran");
    assert_eq!(pull.missing, 0, "every firing schedule ran: {pull:?}");
    assert!(pull.claim.is_some() && pull.function.is_some(), "{pull:?}");
    assert!(pull.idle_cpu.is_some(), "{pull:?}");

    let store = report.store.as_ref().expect("the store scenario ran");
    assert!(store.notes.is_empty(), "{:?}", store.notes);
    for key in [
        "sqlite-fork",
        "postgres-fork",
        "postgres-async-fork",
        "postgres2-fork",
    ] {
        let row = store.row(key).unwrap_or_else(|| panic!("no {key} row"));
        for point in [row.c1(), row.c16()] {
            let point = point.unwrap_or_else(|| panic!("{key}: {:?}", row.outcome));
            assert!(point.ok > 0 && point.failed == 0, "{key}: {point:?}");
        }
    }
    assert_eq!(store.nodes.len(), 5, "one line per node: {:?}", store.nodes);
    assert!(text.contains("| PostgreSQL, 1 node: reuse req/s at c=16 ≥ 0.7× SQLite's |"));

    assert!(
        report.notes.iter().all(|n| !n.contains("failed")),
        "{:?}",
        report.notes
    );
    assert!(text.contains("| flowd catch, trivial, isolation fork |"));
}
