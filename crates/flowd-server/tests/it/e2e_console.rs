//! The web console end to end, in headless Chromium driven by Playwright (`web/e2e/`), against
//! a real flowd started here. Needs Debian's `chromium` and `npm --prefix web ci` (`.ci/run`
//! installs both); skipped with the other end-to-end tests by `cargo test -- --skip e2e`.
//! `FLOWD_SCREENSHOTS=1` also writes the screenshots of docs/screenshots/.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What is missing to run the browser test, as one line saying how to install it.
fn missing_prerequisite() -> Option<String> {
    let chromium = std::env::var("FLOWD_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&chromium).exists() {
        return Some(format!(
            "{chromium} is missing: install it with `apt-get install -y chromium` (or run .ci/run)"
        ));
    }
    let node = std::process::Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if !node.is_ok_and(|status| status.success()) {
        return Some(
            "node is missing: install Node.js 18 or later (`apt-get install -y nodejs npm`)".into(),
        );
    }
    if !repo_root()
        .join("web/node_modules/playwright-core/package.json")
        .exists()
    {
        return Some(
            "web/node_modules is missing: install it with `npm --prefix web ci` (or run .ci/run)"
                .into(),
        );
    }
    None
}

#[tokio::test(flavor = "multi_thread")]
async fn e2e_console_in_headless_chromium() {
    if let Some(missing) = missing_prerequisite() {
        panic!("the console's browser test cannot run: {missing}");
    }
    let app = spawn_app().await;
    let script = repo_root().join("web/e2e/console.test.mjs");
    let run = tokio::process::Command::new("node")
        .arg(&script)
        .arg(&app.address)
        .arg(ADMIN_KEY)
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser test finishes within 5 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the console's browser test failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    println!("{stdout}");
    app.stop().await;
}
