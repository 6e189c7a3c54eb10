//! The `flowd` CLI, end to end: the real binary against a real server that each test starts
//! (`flowd serve` on a free port with a fresh data dir), with a private HOME so that profiles are
//! the test's own.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

const ADMIN_KEY: &str = "cli-test-admin-key-0123456789";

/// Python environments are shared by every test of the workspace (built once, under a lock), in a
/// directory the sandbox user can reach.
fn shared_runtime_dir() -> PathBuf {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    std::env::temp_dir().join(format!("flowd-test-runtimes-{uid}"))
}

fn flowd_path() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_flowd"))
}

/// A `flowd serve` subprocess, stopped when dropped.
struct Server {
    child: Child,
    url: String,
    dir: tempfile::TempDir,
}

/// How a test's server is given its admin key.
enum AdminKeyGiven {
    /// In `FLOWD_ADMIN_API_KEY`.
    Environment,
    /// In a file named by `--admin-api-key-file`.
    File,
}

impl Server {
    fn start() -> Server {
        Server::start_with(AdminKeyGiven::Environment)
    }

    fn start_with(admin_key: AdminKeyGiven) -> Server {
        let dir = tempfile::Builder::new()
            .prefix("flowd-cli-server-")
            .tempdir()
            .expect("temp dir");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.path().join("server.log")).expect("log file");
        let mut command = std::process::Command::new(flowd_path());
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env_remove("FLOWD_ADMIN_API_KEY");
        match admin_key {
            AdminKeyGiven::Environment => command.env("FLOWD_ADMIN_API_KEY", ADMIN_KEY),
            AdminKeyGiven::File => {
                let path = dir.path().join("admin.key");
                std::fs::write(&path, format!("{ADMIN_KEY}\n")).expect("the key file");
                command.arg("--admin-api-key-file").arg(path)
            }
        };
        let child = command
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--log", &log_filter(), "--shutdown-grace-s", "2"])
            .env("FLOWD_RUNTIME_DIR", shared_runtime_dir())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("flowd serve starts");
        let mut server = Server {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        server.wait_healthy();
        server
    }

    fn wait_healthy(&mut self) {
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("client");
        // The port opens at once; /readyz answers 200 once the server is started. The first start
        // of all may build the shared Python environment.
        let readyz = format!("{}/readyz", self.url);
        let healthy = poll_until(Duration::from_secs(600), || {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("flowd serve exited ({status}):\n{}", self.log());
            }
            let response = client.get(&readyz).send().ok()?;
            response.status().is_success().then_some(())
        });
        if healthy.is_none() {
            panic!("flowd serve did not become healthy:\n{}", self.log());
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // SIGTERM first: the server stops its Python processes on a graceful shutdown.
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let exited = poll_until(Duration::from_secs(5), || {
            self.child.try_wait().ok().flatten().map(|_| ())
        });
        if exited.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::env::var_os("TEST_LOG").is_some() {
            eprintln!("--- the log of flowd serve ---\n{}", self.log());
        }
    }
}

/// `flowd serve`'s log filter: `warn`, or what `TEST_LOG` asks for (`1` for `info`, or a filter
/// such as `flowd_engine=debug`); the log is then shown when the test's server stops (for a
/// failing test, or for all with `--nocapture`).
fn log_filter() -> String {
    match std::env::var("TEST_LOG") {
        Ok(filter) if filter == "1" => "info".into(),
        Ok(filter) => filter,
        Err(_) => "warn".into(),
    }
}

/// Polls `check` until it answers `Some` and returns that, or `None` once `within` has passed.
fn poll_until<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `check` until it answers `Some` and returns that; fails the test, naming `what`, when
/// `within` has passed first.
fn eventually<T>(within: Duration, what: &str, check: impl FnMut() -> Option<T>) -> T {
    poll_until(within, check).unwrap_or_else(|| panic!("not within {within:?}: {what}"))
}

/// A user of the CLI: a private HOME (config and cache dirs) and a work dir with their files.
struct User {
    home: tempfile::TempDir,
    server: Option<Server>,
}

impl User {
    /// A user with a server, given by FLOWD_SERVER and FLOWD_API_KEY.
    fn with_server() -> User {
        User {
            home: home(),
            server: Some(Server::start()),
        }
    }

    /// A user with a server given its admin key by `--admin-api-key-file`.
    fn with_server_given_a_key_file() -> User {
        User {
            home: home(),
            server: Some(Server::start_with(AdminKeyGiven::File)),
        }
    }

    /// A user without a server (`flowd run`, bad inputs).
    fn alone() -> User {
        User {
            home: home(),
            server: None,
        }
    }

    fn url(&self) -> &str {
        &self.server.as_ref().expect("a server").url
    }

    fn work(&self) -> PathBuf {
        self.home.path().join("work")
    }

    fn config_dir(&self) -> PathBuf {
        self.home.path().join(".config")
    }

    /// `flowd ARGS` as this user, without a server or key in the environment.
    fn bare(&self) -> Command {
        let mut command = Command::new(flowd_path());
        command
            .current_dir(self.work())
            .env("HOME", self.home.path())
            .env("XDG_CONFIG_HOME", self.config_dir())
            .env("XDG_CACHE_HOME", self.home.path().join(".cache"))
            .env("FLOWD_RUNTIME_DIR", shared_runtime_dir())
            .env("NO_COLOR", "1")
            .env_remove("FLOWD_SERVER")
            .env_remove("FLOWD_API_KEY")
            .timeout(Duration::from_secs(120));
        command
    }

    /// `flowd ARGS` against the test's server.
    fn flowd(&self) -> Command {
        let mut command = self.bare();
        if let Some(server) = &self.server {
            command
                .env("FLOWD_SERVER", &server.url)
                .env("FLOWD_API_KEY", ADMIN_KEY);
        }
        command
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let path = self.work().join(name);
        std::fs::write(&path, content).expect("write a file");
        path
    }

    /// Runs `flowd ARGS`, expects success, and answers stdout.
    fn ok(&self, args: &[&str]) -> String {
        let output = self.flowd().args(args).output().expect("flowd runs");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "flowd {args:?} failed ({}):\nstdout: {stdout}\nstderr: {stderr}",
            output.status
        );
        stdout
    }

    /// Runs `flowd ARGS`, expects a failure with one error line, and answers that line.
    fn fails(&self, args: &[&str]) -> String {
        let output = self.flowd().args(args).output().expect("flowd runs");
        assert!(
            !output.status.success(),
            "flowd {args:?} should have failed:\nstdout: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let last = stderr.lines().last().unwrap_or("").to_string();
        assert!(last.starts_with("flowd: "), "the error line: {stderr:?}");
        last
    }

    /// `flowd ARGS --json`, parsed.
    fn json(&self, args: &[&str]) -> Value {
        let mut args = args.to_vec();
        args.push("--json");
        serde_json::from_str(&self.ok(&args)).expect("--json prints JSON")
    }
}

fn home() -> tempfile::TempDir {
    let home = tempfile::Builder::new()
        .prefix("flowd-cli-home-")
        .tempdir()
        .expect("temp dir");
    std::fs::create_dir_all(home.path().join("work")).expect("work dir");
    home
}

const HELLO_V1: &str = r#"import json

def workflow(_request, settings):
    name = _request.get("name", "world")
    print("hello", name, "with token", settings.get("TOKEN"))
    settings["count"] = settings.get("count", 0) + 1
    greeting = settings.get("GREETING", "Hello")
    return {
        "status_code": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps({"message": greeting + " " + name, "version": 1, "count": settings["count"]}),
    }
"#;

const HELLO_V2: &str = r#"import json

def workflow(_request, settings):
    return {"status_code": 201, "body": json.dumps({"version": 2})}
"#;

const ECHO: &str = r#"import json

def workflow(_request, settings):
    cv = _request.get("cv")
    return {
        "status_code": 200,
        "body": json.dumps({
            "source": _request.get("source"),
            "tags": _request.get("tag"),
            "content_type": _request.get("Content-Type", "").split(";")[0],
            "signature": _request.get("X-Signature"),
            "file": None if cv is None else [cv["filename"], cv["content_type"], cv["content"].decode()],
        }),
    }
"#;

const SYNC: &str = r#"def workflow(settings):
    print("syncing from", settings.get("cursor", 0))
    settings["cursor"] = settings.get("cursor", 0) + 10
    settings.pop("obsolete", None)
"#;

const SYNTAX_ERROR: &str = "def workflow(_request, settings):\n    return {\"a\": }\n";

const RAISES: &str = r#"def workflow(_request, settings):
    print("calling the ATS with", settings["API_KEY"])
    settings["attempts"] = 1
    raise ValueError("the ATS refused " + settings["API_KEY"])
"#;

fn mode_of(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("exists")
        .permissions()
        .mode()
        & 0o777
}

/// Every process's command line and environment that a workflow of the server can read in
/// `/proc`.
const READ_EVERY_PROCESS: &str = "\
import os

def workflow(_request, settings):
    lines = []
    for pid in os.listdir('/proc'):
        for name in ('cmdline', 'environ'):
            try:
                with open('/proc/%s/%s' % (pid, name), 'rb') as f:
                    lines.append(f.read().replace(b'\\0', b' ').decode('utf-8', 'replace'))
            except OSError:
                pass
    return {'status_code': 200, 'body': '\\n'.join(lines)}
";

/// What a workflow deployed by `user` reads of every process.
fn what_a_workflow_reads_of_every_process(user: &User) -> String {
    user.write("peek.py", READ_EVERY_PROCESS);
    user.ok(&["deploy", "peek.py"]);
    let output = user
        .flowd()
        .args(["invoke", "peek"])
        .output()
        .expect("flowd runs");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn a_workflow_reading_every_command_line_finds_no_admin_key() {
    let user = User::with_server_given_a_key_file();
    let seen = what_a_workflow_reads_of_every_process(&user);
    assert!(
        seen.contains("--admin-api-key-file"),
        "the workflow sees flowd's command line: {seen}"
    );
    assert!(!seen.contains(ADMIN_KEY), "the key leaked: {seen}");
}

/// flowd runs as root in the tests, so user code runs as another uid, which cannot read
/// `/proc/<flowd>/environ` (owner-only).
#[test]
fn a_workflow_reading_every_environment_finds_no_admin_key() {
    let user = User::with_server();
    let seen = what_a_workflow_reads_of_every_process(&user);
    assert!(
        seen.contains("serve --listen"),
        "the workflow sees flowd's command line: {seen}"
    );
    assert!(!seen.contains(ADMIN_KEY), "the key leaked: {seen}");
}

#[test]
fn secrets_given_on_the_command_line_are_refused_with_the_option_to_use_instead() {
    let user = User::alone();
    user.write("hello.py", HELLO_V1);
    let cases: [(&[&str], &str); 5] = [
        (
            &["serve", "--admin-api-key", ADMIN_KEY],
            "--admin-api-key-file PATH",
        ),
        (&["ls", "--api-key", ADMIN_KEY], "--api-key-file PATH"),
        (
            &["deploy", "hello.py", "--secret", "TOKEN=tok-1234"],
            "--secret-file KEY=PATH",
        ),
        (
            &["run", "hello.py", "--secret", "TOKEN=tok-1234"],
            "--secret-file KEY=PATH",
        ),
        (
            &["settings", "set", "hello", "TOKEN", "tok-1234", "--secret"],
            "give the value on stdin",
        ),
    ];
    for (args, instead) in cases {
        let line = user.fails(args);
        assert!(line.contains("not accepted"), "{args:?}: {line}");
        assert!(line.contains(instead), "{args:?}: {line}");
    }
}

#[test]
fn login_writes_a_private_profile_that_later_commands_use() {
    let user = User::with_server();
    let profile = user.config_dir().join("flowd").join("profile.json");

    // A wrong key is refused, and nothing is saved.
    let line = {
        let output = user
            .bare()
            .env("FLOWD_API_KEY", "wrong-key")
            .args(["login", "--server", user.url()])
            .output()
            .expect("runs");
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(line.contains("refused the API key"), "{line}");
    assert_eq!(line.trim().lines().count(), 1, "{line}");
    assert!(!profile.exists());

    let url = user.url().to_string();
    user.write("admin.key", &format!("{ADMIN_KEY}\n"));
    user.bare()
        .args(["login", "--server", &url, "--api-key-file", "admin.key"])
        .assert()
        .success()
        .stdout(predicate::str::contains(format!("Logged in to {url}")));
    assert_eq!(mode_of(&profile), 0o600);
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    assert_eq!(saved["server"], url.as_str());
    assert_eq!(saved["api_key"], ADMIN_KEY);

    // No flags or environment: the profile is used.
    user.bare()
        .args(["ls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No workflows yet"));
    // The environment overrides it.
    let line = {
        let output = user
            .bare()
            .env("FLOWD_API_KEY", "another-wrong-key")
            .arg("ls")
            .output()
            .unwrap();
        assert!(!output.status.success());
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    assert!(
        line.starts_with("flowd: the server refused the API key"),
        "{line}"
    );

    user.bare().arg("logout").assert().success();
    assert!(!profile.exists());
    let output = user.bare().arg("ls").output().unwrap();
    assert!(!output.status.success());
    let line = String::from_utf8_lossy(&output.stderr);
    assert!(
        line.starts_with("flowd: no server given") && line.contains("flowd login"),
        "{line}"
    );
}

#[test]
fn deploy_invoke_logs_settings_update_rollback_rm() {
    let user = User::with_server();
    user.write("hello.py", HELLO_V1);
    user.write("hello.settings.json", r#"{"GREETING": "Hi", "limit": 10}"#);
    user.write("token.txt", "tok-3c1d9a\n");

    // Deploy: the mode is guessed, the name comes from the file.
    let out = user.ok(&[
        "deploy",
        "hello.py",
        "--settings",
        "hello.settings.json",
        "--secret-file",
        "TOKEN=token.txt",
        "--timeout",
        "30",
    ]);
    assert!(
        out.contains("Created hello: version 1 is active (catch, python"),
        "{out}"
    );
    let hook_prefix = format!("Hook URL: {}/teams/default/hello/python", user.url());
    assert!(out.contains(&hook_prefix), "{out}");

    // Invoke with JSON: the body on stdout, the status and the execution id on stderr.
    user.flowd()
        .args(["invoke", "hello", "--json", r#"{"name": "Ada"}"#])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""message": "Hi Ada""#))
        .stderr(predicate::str::contains("200 OK").and(predicate::str::contains("execution ")));
    // A form, and the headers with -i.
    let out = user.ok(&["invoke", "hello", "--form", "name=Bob", "-i"]);
    assert!(out.starts_with("HTTP 200 OK"), "{out}");
    assert!(out.contains("x-execution-id: "), "{out}");
    assert!(out.contains(r#""message": "Hi Bob""#), "{out}");

    // Logs: both executions, with the masked output in the full record.
    let executions = user.json(&["logs", "hello"]);
    let executions = executions.as_array().expect("an array");
    assert_eq!(executions.len(), 2);
    assert!(executions.iter().all(|e| e["status"] == "success"));
    let table = user.ok(&["logs", "hello"]);
    assert_eq!(
        table.lines().filter(|l| l.contains("success")).count(),
        2,
        "{table}"
    );
    let newest = executions[0]["id"].as_str().unwrap();
    let out = user.ok(&["execution", newest]);
    assert!(out.contains("of hello, version 1"), "{out}");
    assert!(out.contains("success"), "{out}");
    assert!(out.contains("hello Bob with token ****"), "{out}");
    assert!(out.contains("changed count"), "{out}");
    assert!(!out.contains("tok-3c1d9a"), "the secret leaked: {out}");

    // Settings: listed with the secret masked; set, set secret, unset.
    let out = user.ok(&["settings", "hello"]);
    assert!(out.contains("TOKEN") && out.contains("****"), "{out}");
    assert!(!out.contains("tok-3c1d9a"), "the secret leaked: {out}");
    let settings = user.json(&["settings", "hello"]);
    assert_eq!(settings["settings"]["count"], 2);
    assert_eq!(settings["settings"]["TOKEN"], "****");
    user.ok(&["settings", "set", "hello", "GREETING", "Bonjour"]);
    user.ok(&["settings", "set", "hello", "limit", "25", "--json-value"]);
    user.flowd()
        .args(["settings", "set", "hello", "API_SECRET", "-", "--secret"])
        .write_stdin("s3cr3t-value\n")
        .assert()
        .success();
    let settings = user.json(&["settings", "hello"]);
    assert_eq!(settings["settings"]["GREETING"], "Bonjour");
    assert_eq!(settings["settings"]["limit"], 25);
    assert_eq!(settings["settings"]["API_SECRET"], "****");
    user.flowd()
        .args(["invoke", "hello", "--json", r#"{"name": "Ada"}"#])
        .assert()
        .success()
        .stdout(predicate::str::contains("Bonjour Ada"));
    user.ok(&["settings", "unset", "hello", "GREETING"]);
    let settings = user.json(&["settings", "list", "hello"]);
    assert!(settings["settings"].get("GREETING").is_none(), "{settings}");
    let line = user.fails(&["settings", "unset", "hello", "GREETING"]);
    assert!(line.contains("no setting \"GREETING\""), "{line}");

    // Update: a new version, which the hook runs at once.
    user.write("hello.py", HELLO_V2);
    let out = user.ok(&["deploy", "hello.py"]);
    assert!(
        out.contains("Updated hello: version 2 is active (was 1)"),
        "{out}"
    );
    user.flowd()
        .args(["invoke", "hello"])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#"{"version": 2}"#))
        .stderr(predicate::str::contains("201 Created"));
    let out = user.ok(&["deploy", "hello.py"]);
    assert!(out.contains("up to date: version 2"), "{out}");
    let out = user.ok(&[
        "deploy",
        "hello.py",
        "--settings",
        "hello.settings.json",
        "--timeout",
        "20",
    ]);
    assert!(
        out.contains("Updated the limits, settings of hello (the code and requirements are unchanged: version 2)"),
        "{out}"
    );
    let settings = user.json(&["settings", "hello"]);
    assert_eq!(
        settings["settings"]["GREETING"], "Hi",
        "merged back: {settings}"
    );
    assert_eq!(settings["settings"]["count"], 3, "kept: {settings}");
    let out = user.ok(&["show", "hello"]);
    assert!(out.contains("hook URL:"), "{out}");
    assert!(out.contains("20 s, 512 MiB"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("2 ") && l.contains("active")),
        "{out}"
    );
    assert!(out.lines().any(|l| l.starts_with("1 ")), "{out}");

    // Roll back by redeploying the old file (here, saved from the server itself).
    let old = user.ok(&["show", "hello", "--code", "--version", "1"]);
    assert_eq!(old, HELLO_V1);
    user.write("hello.py", &old);
    let out = user.ok(&["deploy", "hello.py"]);
    assert!(
        out.contains("Updated hello: version 3 is active (was 2; same code as version 1)"),
        "{out}"
    );
    user.flowd()
        .args(["invoke", "hello", "--json", r#"{"name": "Ada"}"#])
        .assert()
        .success()
        .stdout(predicate::str::contains(r#""version": 1"#));
    let shown = user.json(&["show", "hello"]);
    assert_eq!(shown["workflow"]["version"], 3);
    assert_eq!(shown["versions"].as_array().unwrap().len(), 3);

    // rm asks first; without a terminal to answer, it refuses.
    let line = user.fails(&["rm", "hello"]);
    assert!(line.contains("--yes"), "{line}");
    user.ok(&["rm", "hello", "--yes"]);
    let out = user.ok(&["ls"]);
    assert!(out.contains("No workflows yet"), "{out}");
    let line = user.fails(&["invoke", "hello"]);
    assert!(line.contains("no workflow named \"hello\""), "{line}");
}

#[test]
fn invoke_sends_forms_files_and_headers_like_a_third_party() {
    let user = User::with_server();
    user.write("echo.py", ECHO);
    user.write("resume.txt", "Ada Lovelace, analyst");
    user.write("event.json", r#"{"source": "json-file"}"#);
    user.ok(&["deploy", "echo.py", "--name", "echo"]);

    let body: Value = serde_json::from_str(&user.ok(&[
        "invoke",
        "echo",
        "--file",
        "cv=@resume.txt",
        "--form",
        "source=careers",
        "-H",
        "X-Signature: sha256=abc",
    ]))
    .unwrap();
    assert_eq!(body["content_type"], "multipart/form-data");
    assert_eq!(body["source"], "careers");
    assert_eq!(body["signature"], "sha256=abc");
    assert_eq!(
        body["file"],
        serde_json::json!(["resume.txt", "text/plain", "Ada Lovelace, analyst"])
    );

    let body: Value =
        serde_json::from_str(&user.ok(&["invoke", "echo", "--form", "tag=a", "--form", "tag=b"]))
            .unwrap();
    assert_eq!(body["content_type"], "application/x-www-form-urlencoded");
    assert_eq!(body["tags"], serde_json::json!(["a", "b"]));

    let body: Value =
        serde_json::from_str(&user.ok(&["invoke", "echo", "--json-file", "event.json"])).unwrap();
    assert_eq!(body["content_type"], "application/json");
    assert_eq!(body["source"], "json-file");

    let answer: Value =
        serde_json::from_str(&user.ok(&["invoke", "echo", "--output-json"])).unwrap();
    assert_eq!(answer["status"], 200);
    assert!(answer["execution_id"].is_string(), "{answer}");
}

#[test]
fn pause_resume_trigger_and_pull_schedules() {
    let user = User::with_server();
    user.write("hello.py", HELLO_V1);
    user.write("sync.py", SYNC);
    user.ok(&["deploy", "hello.py"]);

    user.ok(&["pause", "hello"]);
    let ls = user.json(&["ls"]);
    assert_eq!(ls[0]["enabled"], false);
    assert!(user.ok(&["ls"]).contains("paused"));
    let line = user.fails(&["invoke", "hello"]);
    assert!(line.contains("503 Service Unavailable"), "{line}");
    user.ok(&["resume", "hello"]);
    user.ok(&["invoke", "hello"]);

    // A catch workflow run by hand, with a `_request`.
    let out = user.ok(&["trigger", "hello", "--request", r#"{"name": "Manual"}"#]);
    assert!(out.contains("trigger:   manual"), "{out}");
    assert!(out.contains("hello Manual"), "{out}");

    // A pull workflow needs a schedule; its mode is guessed; run by hand, its settings persist.
    let line = user.fails(&["deploy", "sync.py"]);
    assert!(line.contains("--every"), "{line}");
    let out = user.ok(&["deploy", "sync.py", "--every", "2h"]);
    assert!(
        out.contains("Created sync: version 1 is active (pull, python"),
        "{out}"
    );
    assert!(out.contains("Schedule: every 2h"), "{out}");
    assert!(out.contains("Next run:"), "{out}");
    let out = user.ok(&["trigger", "sync"]);
    assert!(out.contains("status:    success"), "{out}");
    assert!(out.contains("added cursor"), "{out}");
    let record: Value = user.json(&["trigger", "sync"]);
    assert_eq!(record["status"], "success");
    assert_eq!(user.json(&["settings", "sync"])["settings"]["cursor"], 20);
    let line = user.fails(&["trigger", "sync", "--request", "{}"]);
    assert!(line.contains("pull workflow"), "{line}");
    let line = user.fails(&["invoke", "sync"]);
    assert!(line.contains("no hook URL"), "{line}");

    // A schedule is sent as given; what the server answers is shown.
    let out = user.ok(&[
        "deploy",
        "sync.py",
        "--name",
        "sync-hourly",
        "--every",
        "1h",
    ]);
    assert!(out.contains("Schedule: every 1h"), "{out}");
    let shown = user.json(&["show", "sync-hourly"]);
    assert_eq!(shown["workflow"]["schedule"]["every"], "1h");
    let out = user.ok(&[
        "deploy",
        "sync.py",
        "--name",
        "sync-cron",
        "--cron",
        "0 8 * * 1-5",
        "--tz",
        "Europe/Paris",
    ]);
    assert!(
        out.contains("Schedule: cron 0 8 * * 1-5 (Europe/Paris)"),
        "{out}"
    );
    let line = user.fails(&["deploy", "hello.py", "--every", "5m"]);
    assert!(line.contains("catch workflow"), "{line}");

    // Logs filter by status and limit.
    let errors = user.json(&["logs", "sync", "--status", "error"]);
    assert_eq!(errors.as_array().unwrap().len(), 0);
    let latest = user.json(&["logs", "sync", "--limit", "1"]);
    assert_eq!(latest.as_array().unwrap().len(), 1);
}

#[test]
fn deploy_refuses_bad_code_and_reports_the_server_errors() {
    let user = User::with_server();
    user.write("broken.py", SYNTAX_ERROR);
    let line = user.fails(&["deploy", "broken.py", "--mode", "catch"]);
    assert!(line.starts_with("flowd: broken.py:2:"), "{line}");
    assert!(line.contains("SyntaxError"), "{line}");
    assert!(user.ok(&["ls"]).contains("No workflows yet"));

    // The mode is guessed from the signature; a signature that fits neither needs --mode.
    user.write("three.py", "def workflow(a, b, c):\n    pass\n");
    let line = user.fails(&["deploy", "three.py"]);
    assert!(line.contains("--mode"), "{line}");
    let line = user.fails(&["deploy", "three.py", "--mode", "pull", "--every", "1h"]);
    assert!(line.starts_with("flowd: three.py:1:1: "), "{line}");

    // A mode change is refused before anything is sent.
    user.write("hello.py", HELLO_V1);
    user.ok(&["deploy", "hello.py"]);
    user.write("hello.py", SYNC);
    let line = user.fails(&["deploy", "hello.py"]);
    assert!(line.contains("mode cannot change"), "{line}");

    // Limits the server refuses are reported as it words them.
    let line = user.fails(&[
        "deploy", "hello.py", "--name", "big", "--memory", "1", "--every", "1h",
    ]);
    assert!(line.contains("memory_mb"), "{line}");
}

#[test]
fn deploy_egress_allow_is_parsed_like_the_servers_and_refused_beyond_its_ceiling() {
    let user = User::with_server();
    user.write("hello.py", HELLO_V1);

    // Parsed before anything is sent, by the same code as the server's.
    let refused = user
        .flowd()
        .args(["deploy", "hello.py", "--egress-allow", "10.0.0.1/8"])
        .output()
        .expect("flowd runs");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("bits are set beyond the prefix"),
        "{stderr}"
    );
    // The server started without --egress-workflow-allow lets a workflow open nothing.
    let line = user.fails(&["deploy", "hello.py", "--egress-allow", "10.0.0.0/8"]);
    assert!(line.contains("egress_allow"), "{line}");
    assert!(line.contains("--egress-workflow-allow is empty"), "{line}");
    assert!(user.ok(&["ls"]).contains("No workflows yet"));
}

#[test]
fn logs_follow_streams_new_executions_until_ctrl_c() {
    let user = User::with_server();
    user.write("hello.py", HELLO_V1);
    user.ok(&["deploy", "hello.py"]);
    user.ok(&["invoke", "hello", "--json", r#"{"name": "before"}"#]);

    let mut follow = std::process::Command::new(flowd_path())
        .args(["logs", "hello", "--follow", "--interval", "0.2"])
        .current_dir(user.work())
        .env("HOME", user.home.path())
        .env("XDG_CONFIG_HOME", user.config_dir())
        .env("FLOWD_SERVER", user.url())
        .env("FLOWD_API_KEY", ADMIN_KEY)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("flowd logs --follow starts");
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(20))
            .expect("a line from --follow")
    };
    assert!(next_line().starts_with("EXECUTION"));
    let first = next_line();
    assert!(first.contains("success"), "{first}");

    for _ in 0..2 {
        user.ok(&["invoke", "hello"]);
    }
    let streamed: Vec<String> = (0..2).map(|_| next_line()).collect();
    assert!(
        streamed
            .iter()
            .all(|l| l.contains("catch") && l.contains("success")),
        "{streamed:?}"
    );
    assert_ne!(streamed[0], streamed[1]);

    std::process::Command::new("kill")
        .args(["-INT", &follow.id().to_string()])
        .status()
        .expect("kill runs");
    let status = eventually(Duration::from_secs(10), "--follow stops on Ctrl-C", || {
        follow.try_wait().unwrap()
    });
    assert!(status.success(), "Ctrl-C is a clean stop: {status}");
}

#[test]
fn run_a_catch_file_locally_as_the_server_would() {
    let user = User::alone();
    user.write("hello.py", HELLO_V1);
    user.write(
        "request.json",
        r#"{"name": "Ada", "Content-Type": "application/json"}"#,
    );
    user.write("token.txt", "tok-77aa11\n");
    let out = user.ok(&[
        "run",
        "hello.py",
        "--request",
        "@request.json",
        "--settings",
        r#"{"count": 41, "GREETING": "Hey"}"#,
        "--secret-file",
        "TOKEN=token.txt",
    ]);
    assert!(out.contains("Status: success"), "{out}");
    assert!(out.contains("Response: 200 OK"), "{out}");
    assert!(out.contains("Content-Type: application/json"), "{out}");
    assert!(out.contains("X-Execution-Id: "), "{out}");
    assert!(
        out.contains(r#"{"message": "Hey Ada", "version": 1, "count": 42}"#),
        "{out}"
    );
    assert!(out.contains("hello Ada with token ****"), "{out}");
    assert!(!out.contains("tok-77aa11"), "the secret leaked: {out}");
    assert!(out.contains("Settings: the server would persist:"), "{out}");
    assert!(out.contains("~ count = 42"), "{out}");

    // The default response, when the return value is not a response.
    user.write(
        "none.py",
        "def workflow(_request, settings):\n    return None\n",
    );
    let outcome = user.json(&["run", "none.py"]);
    assert_eq!(outcome["status"], "success");
    assert_eq!(outcome["response"]["status"], 200);
    let body: Value = serde_json::from_str(outcome["response"]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["status"], "success");
    assert_eq!(body["execution_id"], outcome["execution_id"]);
    assert_eq!(outcome["settings"]["would_persist"], false);
    assert_eq!(
        outcome["settings"]["why_not"],
        "unchanged: nothing would be persisted"
    );
}

#[test]
fn run_gives_a_workflow_declaring_context_the_raw_body() {
    let user = User::alone();
    user.write(
        "signed.py",
        "def workflow(_request, settings, context):\n    return {'status_code': 200, 'body': '%s %s %s %d' % (context.trigger, context.method, context.raw_body.decode(), context.attempt)}\n",
    );
    user.write("event.json", "{\"id\":  7}");
    let outcome = user.json(&["run", "signed.py", "--raw-body", "@event.json"]);
    assert_eq!(outcome["status"], "success", "{outcome}");
    assert_eq!(outcome["response"]["body"], "manual POST {\"id\":  7} 1");
}

#[test]
fn run_a_pull_file_locally() {
    let user = User::alone();
    user.write("sync.py", SYNC);
    let out = user.ok(&[
        "run",
        "sync.py",
        "--settings",
        r#"{"cursor": 5, "obsolete": true}"#,
    ]);
    assert!(out.contains("Status: success"), "{out}");
    assert!(out.contains("pull mode"), "{out}");
    assert!(!out.contains("Response:"), "{out}");
    assert!(out.contains("syncing from 5"), "{out}");
    assert!(out.contains("~ cursor = 15"), "{out}");
    assert!(out.contains("- obsolete"), "{out}");
    let line = user.fails(&["run", "sync.py", "--request", "{}"]);
    assert!(line.contains("takes no --request"), "{line}");
}

#[test]
fn run_reports_a_syntax_error_as_file_line_column() {
    let user = User::alone();
    user.write("broken.py", SYNTAX_ERROR);
    let output = user.flowd().args(["run", "broken.py"]).output().unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    // The last line (a first run may print the building of the Python environment before it).
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stderr.trim().lines().last().unwrap_or("");
    assert!(line.starts_with("flowd: broken.py:2:"), "{stderr}");
    assert!(line.contains("SyntaxError"), "{stderr}");
}

#[test]
fn run_shows_the_500_of_a_workflow_that_raises() {
    let user = User::alone();
    user.write("raises.py", RAISES);
    user.write("key.txt", "key-5f5f5f\n");
    let output = user
        .flowd()
        .args(["run", "raises.py", "--secret-file", "API_KEY=key.txt"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let out = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(out.contains("Status: error"), "{out}");
    assert!(out.contains("Response: 500 Internal Server Error"), "{out}");
    assert!(out.contains(r#""error":"ValueError""#), "{out}");
    assert!(out.contains("calling the ATS with ****"), "{out}");
    assert!(out.contains("Traceback (most recent call last)"), "{out}");
    assert!(
        out.contains("Error: ValueError: the ATS refused ****"),
        "{out}"
    );
    assert!(
        out.contains("nothing would be persisted: the execution ended with status error"),
        "{out}"
    );
    assert!(!out.contains("key-5f5f5f") && !stderr.contains("key-5f5f5f"));
    assert_eq!(
        stderr.trim().lines().last(),
        Some("flowd: raises.py ended with status error: ValueError")
    );
}

#[test]
fn bad_inputs_give_one_clear_line() {
    let user = User::alone();
    user.write("key.txt", "a-key-for-no-server\n");
    // A server that is not there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let line = user.fails(&[
        "ls",
        "--server",
        &format!("http://127.0.0.1:{port}"),
        "--api-key-file",
        "key.txt",
    ]);
    assert!(
        line.contains("cannot reach the flowd server at http://127.0.0.1:"),
        "{line}"
    );
    // No server configured at all.
    let line = user.fails(&["logs", "hello"]);
    assert!(line.contains("no server given"), "{line}");
    // Bad JSON is caught before anything is sent.
    let line = user.fails(&["invoke", "hello", "--json", "{bad"]);
    assert!(line.contains("--json is not valid JSON"), "{line}");
    let line = user.fails(&["run", "missing.py"]);
    assert!(line.contains("cannot read missing.py"), "{line}");
    user.write("hello.py", HELLO_V1);
    let line = user.fails(&["run", "hello.py", "--request", "[1, 2]"]);
    assert!(line.contains("must be a JSON object"), "{line}");
    let line = user.fails(&["deploy", "hello.py", "--secret-file", "NOVALUE"]);
    assert!(line.contains("is not KEY=PATH"), "{line}");
    // A requirements file is read and checked before anything is sent (no server here).
    let line = user.fails(&["deploy", "hello.py", "--requirements", "missing.txt"]);
    assert!(
        line.contains("cannot read the requirements file missing.txt"),
        "{line}"
    );
    user.write("evil.txt", "# ok so far\nrequests\n-r /etc/passwd\n");
    let line = user.fails(&["deploy", "hello.py", "--requirements", "evil.txt"]);
    assert!(
        line.starts_with("flowd: evil.txt:3: `-r /etc/passwd` is a pip option"),
        "{line}"
    );
    user.write("path.txt", "../my-package\n");
    let line = user.fails(&["deploy", "hello.py", "--requirements", "path.txt"]);
    assert!(
        line.starts_with("flowd: path.txt:1: `../my-package` is a local path"),
        "{line}"
    );
}

#[test]
fn unknown_workflows_are_named() {
    let user = User::with_server();
    for args in [
        &["show", "nope"][..],
        &["invoke", "nope"],
        &["logs", "nope"],
        &["settings", "nope"],
        &["trigger", "nope"],
        &["rm", "nope", "--yes"],
    ] {
        let line = user.fails(args);
        assert!(
            line.contains("no workflow named \"nope\""),
            "{args:?}: {line}"
        );
    }
    let line = user.fails(&["execution", "0192f4a1-7c3e-7d2a-9b1e-2f6a8c0d4e5f"]);
    assert!(line.contains("not found"), "{line}");
}

#[test]
fn every_command_has_help_with_an_example() {
    let user = User::alone();
    for command in [
        "serve",
        "login",
        "logout",
        "deploy",
        "ls",
        "show",
        "rm",
        "pause",
        "resume",
        "trigger",
        "invoke",
        "logs",
        "execution",
        "replay",
        "settings",
        "run",
        "versions",
        "keys",
        "teams",
        "audit",
    ] {
        user.flowd()
            .args([command, "--help"])
            .assert()
            .success()
            .stdout(predicate::str::contains("Example"));
    }
    user.flowd()
        .args(["settings", "set", "--help"])
        .assert()
        .success()
        .stdout(predicate::str::contains("--secret"));
}

#[test]
fn deploy_sets_environment_variables_that_reach_the_module() {
    let user = User::with_server();
    user.write(
        "envy.py",
        "import os\nSTORE = os.environ.get('HRFLOW_CONNECTORS_STORE')\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': str(STORE)}\n",
    );
    user.ok(&[
        "deploy",
        "envy.py",
        "--env",
        "HRFLOW_CONNECTORS_STORE=local",
    ]);
    assert_eq!(user.ok(&["invoke", "envy"]).trim(), "local");
    let out = user.ok(&["deploy", "envy.py", "--env", "HRFLOW_CONNECTORS_STORE=s3"]);
    assert!(out.contains("env"), "{out}");
    assert_eq!(user.ok(&["invoke", "envy"]).trim(), "s3");
    let line = user.fails(&["deploy", "envy.py", "--env", "1BAD=x"]);
    assert!(line.contains("env"), "{line}");
}

const FAILS_ON_ASK: &str = "def workflow(_request, settings):\n    if _request.get('fail'):\n        raise ValueError('asked to fail')\n    return {'status_code': 200, 'body': 'ran ' + str(_request.get('n'))}\n";

#[test]
fn replay_runs_one_execution_or_a_workflows_failed_ones_again() {
    let user = User::with_server();
    user.write("flaky.py", FAILS_ON_ASK);
    user.write("ok.json", r#"{"n": 1}"#);
    user.write("fail.json", r#"{"n": 2, "fail": true}"#);
    user.ok(&["deploy", "flaky.py"]);
    user.ok(&["invoke", "flaky", "--json-file", "ok.json"]);
    // The workflow raises: invoke reports the 500.
    let _ = user
        .flowd()
        .args(["invoke", "flaky", "--json-file", "fail.json"])
        .output();
    let executions = user.json(&["logs", "flaky"]);
    let ids: Vec<&str> = executions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{executions}");

    let ok_id = ids
        .iter()
        .zip(executions.as_array().unwrap())
        .find(|(_, e)| e["status"] == "success")
        .map(|(id, _)| id.to_string())
        .unwrap();
    let replayed = user.json(&["replay", &ok_id]);
    assert_eq!(replayed["trigger"], "replay");
    assert_eq!(replayed["replay_of"], ok_id.as_str());
    assert_eq!(replayed["status"], "success");

    let job = user.json(&["replay", "--workflow", "flaky", "--status", "failed"]);
    assert_eq!(job["matched"], 1, "{job}");
    assert_eq!(job["replayed"], 1, "{job}");
    assert_eq!(job["state"], "finished");

    user.ok(&["deploy", "flaky.py", "--no-store-requests"]);
    assert_eq!(
        user.json(&["show", "flaky"])["workflow"]["store_requests"],
        serde_json::json!(false)
    );
    user.ok(&["invoke", "flaky", "--json-file", "ok.json"]);
    let newest = user.json(&["logs", "flaky", "-n", "1"]);
    let newest = newest[0]["id"].as_str().unwrap().to_string();
    let line = user.fails(&["replay", &newest]);
    assert!(line.contains("store_requests: false"), "{line}");
}

#[test]
fn deploy_sets_the_workflows_retention_and_show_prints_it() {
    let user = User::with_server();
    user.write(
        "kept.py",
        "def workflow(_request, settings):\n    return None\n",
    );
    user.ok(&[
        "deploy",
        "kept.py",
        "--retention-days",
        "7",
        "--retention-max-executions",
        "50",
    ]);
    assert_eq!(
        user.json(&["show", "kept"])["workflow"]["retention"],
        serde_json::json!({"days": 7, "max_executions": 50})
    );

    // An update changes the limit given and keeps the other.
    let out = user.ok(&["deploy", "kept.py", "--retention-days", "3"]);
    assert!(out.contains("retention"), "{out}");
    let out = user.ok(&["show", "kept"]);
    assert!(out.contains("3 days, at most 50 executions"), "{out}");
}

#[test]
fn deploy_sets_the_workflows_alerts_and_error_handler_and_show_prints_them() {
    let user = User::with_server();
    user.write(
        "handler.py",
        "def workflow(_request, settings):\n    return None\n",
    );
    user.write(
        "watched.py",
        "def workflow(_request, settings):\n    return None\n",
    );
    user.ok(&["deploy", "handler.py"]);
    user.ok(&[
        "deploy",
        "watched.py",
        "--alert-url",
        "https://chat.example/hooks/x",
        "--alert-on",
        "error,timeout",
        "--on-failure",
        "handler",
    ]);
    let workflow = user.json(&["show", "watched"])["workflow"].clone();
    assert_eq!(
        workflow["alerts"],
        serde_json::json!({"url": "https://chat.example/hooks/x", "on": ["error", "timeout"], "min_interval_s": 0})
    );
    assert_eq!(workflow["on_failure"], "handler");

    // An update changes what is given and keeps the rest.
    let out = user.ok(&["deploy", "watched.py", "--alert-min-interval-s", "600"]);
    assert!(out.contains("alerts"), "{out}");
    let out = user.ok(&["show", "watched"]);
    assert!(
        out.contains("error, timeout to https://chat.example/hooks/x, at most one per 600 s"),
        "{out}"
    );
    assert!(out.contains("handler"), "{out}");

    let line = user.fails(&[
        "deploy",
        "watched.py",
        "--alert-url",
        "ftp://chat.example/x",
    ]);
    assert!(line.contains("alerts.url"), "{line}");
    user.ok(&[
        "deploy",
        "watched.py",
        "--alert-url",
        "none",
        "--on-failure",
        "none",
    ]);
    let workflow = user.json(&["show", "watched"])["workflow"].clone();
    assert_eq!(workflow["alerts"], serde_json::Value::Null);
    assert_eq!(workflow["on_failure"], serde_json::Value::Null);
}

#[test]
fn deploy_sets_the_workflows_retry_policy_and_no_retry_removes_it() {
    let user = User::with_server();
    user.write(
        "flaky.py",
        "def workflow(_request, settings):\n    return None\n",
    );
    user.ok(&[
        "deploy",
        "flaky.py",
        "--retry-max-attempts",
        "3",
        "--retry-backoff-s",
        "0.5",
        "--retry-on",
        "error,timeout",
    ]);
    assert_eq!(
        user.json(&["show", "flaky"])["workflow"]["retry"],
        serde_json::json!({"max_attempts": 3, "backoff_s": 0.5, "on": ["error", "timeout"]})
    );

    // An update changes what it gives and keeps the rest.
    let out = user.ok(&["deploy", "flaky.py", "--retry-max-attempts", "5"]);
    assert!(out.contains("retry"), "{out}");
    assert_eq!(
        user.json(&["show", "flaky"])["workflow"]["retry"],
        serde_json::json!({"max_attempts": 5, "backoff_s": 0.5, "on": ["error", "timeout"]})
    );
    user.ok(&["deploy", "flaky.py", "--no-retry"]);
    assert_eq!(
        user.json(&["show", "flaky"])["workflow"]["retry"],
        serde_json::Value::Null
    );
}

const DATEUTIL: &str = r#"import json
import dateutil

def workflow(_request, settings):
    return {"status_code": 200, "body": json.dumps({"dateutil": dateutil.__version__})}
"#;

/// A name no package index has.
fn no_such_package() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("flowd-no-such-package-{}-{nanos}", std::process::id())
}

/// Runs `flowd ARGS`, expects a failure; answers (stdout, the last line of stderr).
fn deploy_fails(user: &User, args: &[&str]) -> (String, String) {
    let output = user.flowd().args(args).output().expect("flowd runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    let last = stderr.lines().last().unwrap_or("").to_string();
    assert!(last.starts_with("flowd: "), "the error line: {stderr:?}");
    (stdout, last)
}

#[test]
fn deploy_with_requirements_and_a_failed_build_that_leaves_the_previous_version_serving() {
    let user = User::with_server();
    user.write("dt.py", DATEUTIL);
    user.write("requirements.txt", "python-dateutil==2.8.2  # dates\n");

    let out = user.ok(&["deploy", "dt.py", "--requirements", "requirements.txt"]);
    assert!(
        out.contains("Created dt: version 1 is active (catch, python"),
        "{out}"
    );
    assert!(
        out.contains("Requirements installed: python-dateutil==2.8.2 (environment python"),
        "{out}"
    );
    let body: Value = serde_json::from_str(&user.ok(&["invoke", "dt"])).unwrap();
    assert_eq!(body["dateutil"], "2.8.2");

    // The same code and requirements (spelt otherwise): nothing is sent.
    user.write("requirements.txt", "# pinned\nPython_Dateutil == 2.8.2\n");
    let out = user.ok(&["deploy", "dt.py", "--requirements", "requirements.txt"]);
    assert!(
        out.contains("dt is up to date: version 1 already has this code and these requirements"),
        "{out}"
    );

    // A package that does not exist: the build fails, the deploy says so, version 1 serves on.
    let missing = no_such_package();
    user.write(
        "requirements.txt",
        &format!("python-dateutil==2.8.2\n{missing}\n"),
    );
    let (out, line) = deploy_fails(
        &user,
        &["deploy", "dt.py", "--requirements", "requirements.txt"],
    );
    assert!(out.contains("Version 2 of dt failed: "), "{out}");
    assert!(out.contains(&missing), "the error names the package: {out}");
    assert!(out.contains("Build log"), "{out}");
    assert!(
        out.contains("Version 1 is still active: dt keeps serving it"),
        "{out}"
    );
    assert!(
        line.starts_with("flowd: the deploy of dt failed: version 2 was not deployed (")
            && line.contains(&missing)
            && line.ends_with("version 1 keeps serving"),
        "{line}"
    );
    let body: Value = serde_json::from_str(&user.ok(&["invoke", "dt"])).unwrap();
    assert_eq!(body["dateutil"], "2.8.2", "version 1 still answers");

    // The versions, their states, and the failed one's build log.
    let versions = user.json(&["versions", "dt"]);
    let states: Vec<(u64, &str)> = versions["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["version"].as_u64().unwrap(), v["state"].as_str().unwrap()))
        .collect();
    assert_eq!(states, vec![(2, "failed"), (1, "active")]);
    let table = user.ok(&["versions", "dt"]);
    assert!(table.starts_with("VERSION"), "{table}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("2 ") && l.contains("failed") && l.contains("+1 more")),
        "{table}"
    );
    assert!(
        table.lines().any(|l| l.starts_with("1 ")
            && l.contains("active")
            && l.contains("python-dateutil==2.8.2")
            && l.contains("python3")),
        "{table}"
    );
    let log = user.ok(&["versions", "dt", "--log", "2"]);
    assert!(log.contains("Version 2 of dt: failed"), "{log}");
    assert!(log.contains(&missing), "{log}");
    let line = user.fails(&["versions", "dt", "--log", "7"]);
    assert!(line.contains("dt has no version 7"), "{line}");
    let shown = user.ok(&["show", "dt"]);
    assert!(shown.contains("version:       1 (active)"), "{shown}");
    assert!(
        shown.contains("requirements:  python-dateutil==2.8.2 (environment python"),
        "{shown}"
    );
    assert!(
        shown.contains("latest:        version 2 failed: "),
        "{shown}"
    );

    // --json carries the deployment, and the exit code still says it failed.
    let output = user
        .flowd()
        .args([
            "deploy",
            "dt.py",
            "--requirements",
            "requirements.txt",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let record: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(record["version"], 1);
    assert_eq!(record["deployment"]["version"], 3);
    assert_eq!(record["deployment"]["state"], "failed");
    assert_eq!(record["deployment"]["active"], false);
}

#[test]
fn a_first_deploy_that_fails_leaves_no_active_version_until_one_succeeds() {
    let user = User::with_server();
    user.write(
        "imports.py",
        "import no_such_module_here\n\ndef workflow(_request, settings):\n    return {'status_code': 200, 'body': 'ok'}\n",
    );
    let (out, line) = deploy_fails(&user, &["deploy", "imports.py"]);
    assert!(
        out.contains(
            "Version 1 of imports failed: importing the module failed: ModuleNotFoundError"
        ),
        "{out}"
    );
    assert!(
        out.contains("No module named 'no_such_module_here'"),
        "{out}"
    );
    assert!(
        out.contains("imports has no active version: its hook answers 503"),
        "{out}"
    );
    assert!(line.ends_with("imports has no active version"), "{line}");
    let shown = user.ok(&["show", "imports"]);
    assert!(
        shown.contains("version:       none: version 1 failed: "),
        "{shown}"
    );
    assert!(user.ok(&["ls"]).contains("none"));
    let line = user.fails(&["invoke", "imports"]);
    assert!(line.contains("503"), "{line}");

    user.write(
        "imports.py",
        "def workflow(_request, settings):\n    return {'status_code': 200, 'body': 'fixed'}\n",
    );
    let out = user.ok(&["deploy", "imports.py"]);
    assert!(
        out.contains("Updated imports: version 2 is active (no version was active)"),
        "{out}"
    );
    assert_eq!(user.ok(&["invoke", "imports"]).trim(), "fixed");
    let versions = user.json(&["versions", "imports"]);
    assert_eq!(versions["versions"][0]["state"], "active");
    assert_eq!(versions["versions"][1]["state"], "failed");
}

#[test]
fn teams_keys_and_the_audit_log_from_the_command_line() {
    let user = User::with_server();
    user.ok(&["teams", "create", "payroll"]);
    let teams = user.json(&["teams", "ls"]);
    let names: Vec<&str> = teams
        .as_array()
        .expect("teams")
        .iter()
        .filter_map(|team| team["name"].as_str())
        .collect();
    assert_eq!(names, ["default", "payroll"]);

    // The key alone on stdout, to be stored by redirection.
    let key = user.ok(&[
        "keys", "create", "ci", "--role", "viewer", "--team", "payroll",
    ]);
    let key = key.trim();
    assert!(key.starts_with("flowd_"), "{key}");
    let keys = user.json(&["keys", "ls"]);
    let ci = keys
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["name"] == "ci")
        .expect("ci is listed")
        .clone();
    assert_eq!(ci["role"], "viewer");
    assert_eq!(ci["team"], "payroll");
    assert!(
        !user.ok(&["keys", "ls"]).contains(key),
        "the key is never listed"
    );

    // The viewer reads, and is refused a change in the server's words.
    let as_viewer = |args: &[&str]| {
        user.flowd()
            .env("FLOWD_API_KEY", key)
            .args(args)
            .output()
            .expect("flowd runs")
    };
    assert!(as_viewer(&["ls"]).status.success());
    let refused = as_viewer(&["teams", "create", "mine"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("admin role"));

    user.ok(&["keys", "revoke", ci["id"].as_str().expect("id"), "--yes"]);
    let after = as_viewer(&["ls"]);
    assert!(!after.status.success(), "a revoked key is refused");

    user.ok(&["teams", "rename", "payroll", "payroll-eu"]);
    user.ok(&["teams", "rm", "payroll-eu", "--yes"]);
    let entries = user.json(&["audit"]);
    let actions: Vec<&str> = entries
        .as_array()
        .expect("entries")
        .iter()
        .rev()
        .filter_map(|entry| entry["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        [
            "team.created",
            "key.created",
            "key.revoked",
            "team.renamed",
            "team.deleted"
        ]
    );
    assert!(user
        .ok(&["audit", "--actor", "admin"])
        .contains("team.renamed"));
}

#[test]
fn an_admin_names_a_workflow_that_several_teams_have_as_team_slash_name() {
    let user = User::with_server();
    user.ok(&["teams", "create", "payroll"]);
    let client = reqwest::blocking::Client::new();
    for team in ["default", "payroll"] {
        let response = client
            .post(format!("{}/api/v1/workflows", user.url()))
            .bearer_auth(ADMIN_KEY)
            .json(&serde_json::json!({
                "name": "sync", "mode": "catch", "team": team,
                "code": "def workflow(_request, settings):\n    return None\n",
            }))
            .send()
            .expect("create");
        assert_eq!(
            response.status(),
            201,
            "{}",
            response.text().unwrap_or_default()
        );
    }
    let error = user.fails(&["show", "sync"]);
    assert!(error.contains("TEAM/sync"), "{error}");
    let shown = user.json(&["show", "payroll/sync"]);
    assert_eq!(shown["workflow"]["team"], "payroll", "{shown}");
}
