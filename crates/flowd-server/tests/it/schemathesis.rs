//! openapi.json checked against the server's behaviour by schemathesis, for a bounded time: a real
//! server on 127.0.0.1 with an API key, a few generated cases per operation, no `5xx`, statuses and
//! response bodies as the description says, and requests the description forbids refused.
//!
//! schemathesis is installed once from PyPI, with Debian's `/usr/bin/python3`, into a virtual
//! environment under the target dir (`schemathesis-venv`, kept for the next runs).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::support::*;

const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// The most the run itself may take (installing the first time comes on top, about a minute).
const RUN_TIME_LIMIT: Duration = Duration::from_secs(100);

/// The target dir: this test binary is `<target>/<profile>/deps/it-…`.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.ancestors()
        .nth(3)
        .expect("the test binary is under <target>/<profile>/deps")
        .to_path_buf()
}

/// The schemathesis command of the virtual environment, made first if it is not ready. A lock
/// file keeps concurrent test runs from building it twice.
fn schemathesis_command(target: &Path) -> PathBuf {
    let venv = target.join("schemathesis-venv");
    let ready = venv.join(".ready");
    let lock = std::fs::File::create(target.join("schemathesis-venv.lock")).expect("lock file");
    lock.lock().expect("lock");
    if !ready.exists() {
        if venv.exists() {
            std::fs::remove_dir_all(&venv).expect("remove a half-made venv");
        }
        run_to_success(
            std::process::Command::new("/usr/bin/python3")
                .args(["-m", "venv"])
                .arg(&venv),
            "python3 -m venv",
        );
        run_to_success(
            std::process::Command::new(venv.join("bin/pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                SCHEMATHESIS,
            ]),
            "pip install schemathesis",
        );
        std::fs::write(&ready, SCHEMATHESIS).expect("ready marker");
    }
    venv.join("bin/schemathesis")
}

fn run_to_success(command: &mut std::process::Command, what: &str) {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_json_agrees_with_the_server_under_schemathesis() {
    let target = target_dir();
    let schemathesis = tokio::task::spawn_blocking(move || schemathesis_command(&target))
        .await
        .expect("installing schemathesis");
    let app = spawn_app().await;
    let spec = app.get_json("/openapi.json").await;
    let spec_file = app.data_dir.path().join("openapi.json");
    std::fs::write(&spec_file, spec.to_string()).expect("spec file");

    let run = tokio::process::Command::new(&schemathesis)
        .arg("run")
        .arg(&spec_file)
        .args(["--url", &app.address])
        .args(["--header", &format!("Authorization: Bearer {ADMIN_KEY}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,response_schema_conformance,negative_data_rejection",
        ])
        .args(["--phases", "examples,coverage,fuzzing,stateful"])
        .args(["--max-examples", "5", "--workers", "1", "--seed", "14"])
        .args(["--request-timeout", "30", "--generation-database", "none"])
        .arg("--no-color")
        .current_dir(app.data_dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(RUN_TIME_LIMIT, run)
        .await
        .expect("schemathesis ends within its time limit")
        .expect("schemathesis runs");
    assert!(
        output.status.success(),
        "schemathesis found disagreements ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    app.stop().await;
}
