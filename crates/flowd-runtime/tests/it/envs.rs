//! Environments for requirement sets, built for real from PyPI.
//!
//! The base environment, the uv cache and the successful environments live in the runtime dir the
//! other tests share (fast reruns); a test that needs a fresh state (a concurrent first build,
//! a timeout, the pip fallback) gets its own runtime dir and cache. Nothing depends on an earlier
//! run: a set built before is reused, which every assertion here allows unless it is the point.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use flowd_core::requirements::Requirements;
use flowd_runtime::envs::{BuildConfig, BuildFailure, BuiltEnv, EnvBuilder, InstallerChoice};
use flowd_runtime::provision::{self, Environment};

fn shared_runtime_dir() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}"))
}

async fn base() -> Environment {
    let interpreter = provision::find_interpreter(None, false)
        .await
        .expect("interpreter");
    provision::provision(&interpreter, &shared_runtime_dir(), &|_| {})
        .await
        .expect("base environment")
}

async fn builder_in(runtime_dir: &Path, config: BuildConfig) -> EnvBuilder {
    EnvBuilder::new(&base().await, runtime_dir, config).await
}

async fn shared_builder() -> EnvBuilder {
    builder_in(&shared_runtime_dir(), BuildConfig::default()).await
}

/// A fresh runtime dir (its own envs and cache), with the installer the shared builder resolved
/// (so uv is not installed again).
async fn fresh_builder(config: BuildConfig) -> (EnvBuilder, tempfile::TempDir) {
    let shared = shared_builder().await;
    let tmp = tempfile::Builder::new()
        .prefix("flowd-envs-test-")
        .tempdir_in(std::env::temp_dir())
        .expect("tmp");
    let installer = match config.installer {
        InstallerChoice::Auto => {
            uv_path(&shared).map_or(InstallerChoice::Auto, InstallerChoice::Uv)
        }
        other => other,
    };
    let builder = builder_in(
        tmp.path(),
        BuildConfig {
            installer,
            ..config
        },
    )
    .await;
    (builder, tmp)
}

/// Where the shared builder's uv is (on PATH or installed in the shared runtime dir).
fn uv_path(shared: &EnvBuilder) -> Option<PathBuf> {
    if !shared.installer().starts_with("uv") {
        return None;
    }
    let installed = shared_runtime_dir().join("tools/uv/bin/uv");
    if installed.exists() {
        return Some(installed);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("uv"))
            .find(|p| p.is_file())
    })
}

fn reqs(text: &str) -> Requirements {
    Requirements::parse_text(text).expect("valid requirements")
}

/// Runs the environment's python: `dateutil.__version__`, after importing `requests` too.
fn dateutil_version(env: &BuiltEnv) -> String {
    let output = std::process::Command::new(&env.python)
        .args([
            "-I",
            "-c",
            "import dateutil, requests; print(dateutil.__version__)",
        ])
        .output()
        .expect("python runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pinned_package_imports_its_version_and_the_base_packages_still_import() {
    let builder = shared_builder().await;
    let env = builder
        .build(&reqs("python-dateutil==2.8.2\n"))
        .await
        .expect("builds");
    assert_eq!(dateutil_version(&env), "2.8.2");
    assert!(env.dir.join(".flowd-ready").exists());
    assert!(env.id.starts_with("python3."), "{}", env.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_sets_pinning_different_versions_coexist() {
    let builder = shared_builder().await;
    let old = builder
        .build(&reqs("python-dateutil==2.8.2"))
        .await
        .expect("builds");
    let new = builder
        .build(&reqs("python-dateutil==2.9.0.post0"))
        .await
        .expect("builds");
    assert_ne!(old.dir, new.dir);
    assert_eq!(dateutil_version(&old), "2.8.2");
    assert_eq!(dateutil_version(&new), "2.9.0.post0");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_set_in_another_order_and_spelling_is_the_same_env_and_is_reused() {
    let builder = shared_builder().await;
    let first = reqs("python-dateutil==2.8.2\nsix>=1.16\n");
    let second = reqs("Six >= 1.16   # comment\nPython_DateUtil==2.8.2\n");
    assert_eq!(builder.env_id(&first), builder.env_id(&second));
    builder.build(&first).await.expect("builds");
    assert!(builder.existing(&second).is_some());
    let again = builder.build(&second).await.expect("reused");
    assert!(again.reused);
    assert!(again.log.is_empty());
    assert!(
        again.duration < Duration::from_millis(500),
        "{:?}",
        again.duration
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_concurrent_builds_of_a_new_set_build_it_once() {
    let (one, tmp) = fresh_builder(BuildConfig::default()).await;
    let two = builder_in(
        tmp.path(),
        BuildConfig {
            installer: InstallerChoice::Uv(
                uv_path(&shared_builder().await).unwrap_or_else(|| "uv".into()),
            ),
            ..BuildConfig::default()
        },
    )
    .await;
    let set = reqs("six==1.17.0\n");
    let (a, b) = tokio::join!(one.build(&set), two.build(&set));
    let (a, b) = (a.expect("builds"), b.expect("builds"));
    assert_eq!(a.dir, b.dir);
    assert_eq!(
        [a.reused, b.reused].iter().filter(|r| !**r).count(),
        1,
        "exactly one built it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_nonexistent_package_is_unknown_and_named() {
    let builder = shared_builder().await;
    let set = reqs("flowd-no-such-package-x\n");
    let error = builder.build(&set).await.expect_err("fails");
    assert_eq!(error.kind, BuildFailure::UnknownPackage, "{error:?}");
    assert!(
        error.summary.contains("\"flowd-no-such-package-x\""),
        "{}",
        error.summary
    );
    assert!(!error.log.is_empty());
    assert!(builder.existing(&set).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_version_that_does_not_exist_is_no_matching_version() {
    let builder = shared_builder().await;
    let error = builder
        .build(&reqs("six==99.0\n"))
        .await
        .expect_err("fails");
    assert_eq!(error.kind, BuildFailure::NoMatchingVersion, "{error:?}");
    assert!(error.summary.contains("six==99.0"), "{}", error.summary);
}

#[tokio::test(flavor = "multi_thread")]
async fn conflicting_pins_are_a_conflict() {
    let builder = shared_builder().await;
    let set = reqs("python-dateutil==2.8.2\npython-dateutil==2.9.0.post0\n");
    let error = builder.build(&set).await.expect_err("fails");
    assert_eq!(error.kind, BuildFailure::Conflict, "{error:?}");
    assert!(
        error.summary.contains("python-dateutil==2.8.2"),
        "{}",
        error.summary
    );
    assert!(builder.existing(&set).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_package_whose_build_fails_is_build_failed() {
    let builder = shared_builder().await;
    let set = reqs("sklearn\n");
    let error = builder.build(&set).await.expect_err("fails");
    assert_eq!(error.kind, BuildFailure::BuildFailed, "{error:?}");
    assert!(error.summary.contains("sklearn"), "{}", error.summary);
    assert!(error.log.contains("scikit-learn"), "{}", error.log);
    let dir = shared_runtime_dir().join("envs").join(builder.env_id(&set));
    assert!(!dir.exists());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_index_is_reported_within_seconds() {
    let base = base().await;
    let builder = EnvBuilder::new(
        &base,
        &shared_runtime_dir(),
        BuildConfig {
            index_url: Some("http://127.0.0.1:9/simple".into()),
            ..BuildConfig::default()
        },
    )
    .await;
    let started = Instant::now();
    let error = builder
        .build(&reqs("flowd-unreachable-index-probe\n"))
        .await
        .expect_err("fails");
    assert_eq!(error.kind, BuildFailure::IndexUnreachable, "{error:?}");
    assert!(
        error.summary.contains("http://127.0.0.1:9/simple"),
        "{}",
        error.summary
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_build_past_its_time_limit_times_out_and_leaves_nothing_behind() {
    let (builder, tmp) = fresh_builder(BuildConfig {
        time_limit: Duration::from_secs(1),
        ..BuildConfig::default()
    })
    .await;
    let set = reqs("pandas\n");
    let started = Instant::now();
    let error = builder.build(&set).await.expect_err("times out");
    assert_eq!(error.kind, BuildFailure::TimedOut, "{error:?}");
    assert_eq!(error.summary, "the build took longer than the 1 s limit");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let left: Vec<String> = std::fs::read_dir(tmp.path().join("envs"))
        .expect("envs dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| !name.ends_with(".lock"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pip_fallback_builds_a_set() {
    let (builder, _tmp) = fresh_builder(BuildConfig {
        installer: InstallerChoice::Pip,
        ..BuildConfig::default()
    })
    .await;
    assert_eq!(builder.installer(), "pip");
    let env = builder
        .build(&reqs("python-dateutil==2.8.2\n"))
        .await
        .expect("builds");
    assert!(!env.reused);
    assert!(env.log.contains("Successfully installed"), "{}", env.log);
    assert_eq!(dateutil_version(&env), "2.8.2");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_pip_fallback_classifies_an_unknown_package() {
    let (builder, _tmp) = fresh_builder(BuildConfig {
        installer: InstallerChoice::Pip,
        ..BuildConfig::default()
    })
    .await;
    let error = builder
        .build(&reqs("flowd-no-such-package-x\n"))
        .await
        .expect_err("fails");
    assert_eq!(error.kind, BuildFailure::UnknownPackage, "{error:?}");
}
