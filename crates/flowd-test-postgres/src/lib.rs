//! A real PostgreSQL server for flowd's tests, and a fresh database on it per test:
//! `let database = flowd_test_postgres::fresh_database().await;` then `database.url()`.
//!
//! With `FLOWD_TEST_DATABASE_URL` set (`postgres://user:password@host/db`, a user allowed to
//! create databases), the tests use that server (the databases `flowd_test_<pid>_<n>` of a run's
//! last tests are left there). Otherwise the first test that needs one starts
//! a throwaway cluster for the whole test binary: `initdb` from Debian's `postgresql` package
//! (`/usr/lib/postgresql/<version>/bin`, the newest) into a directory under the temp dir, run as
//! the `postgres` user when the tests run as root, listening on a Unix socket in that directory
//! only, with fsync off. The server gets SIGINT when the test binary ends, however it ends
//! (parent-death signal), and the next run removes the directories of runs whose process is gone
//! (stopping their server if one is left).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use sqlx::{Connection, Executor, PgConnection};

/// Names the directories of the throwaway clusters: `<temp dir>/<prefix><pid of the test binary>`.
const DIR_PREFIX: &str = "flowd-test-pg-";
/// How long the cluster may take to start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A server the tests can create databases on.
struct Server {
    /// A URL of the server; its database is replaced by each test's.
    url: String,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();

/// Databases of tests that have ended, dropped before the next one is created (each is a copy of
/// the template: several MiB).
static ENDED: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// A fresh, empty database for one test; dropped once the test has ended (by the next test of
/// the binary that asks for one: the store's connections must be gone first).
pub struct TestDatabase {
    url: String,
    name: String,
}

impl TestDatabase {
    /// Its URL, for `PostgresStore::connect` or `flowd serve --database`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        ENDED
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(std::mem::take(&mut self.name));
    }
}

/// Creates a database for one test on the test server, starting that server first if this is
/// the binary's first. Panics, saying why, where no server can be had.
pub async fn fresh_database() -> TestDatabase {
    let server = match SERVER.get_or_init(start) {
        Ok(server) => server,
        Err(why) => panic!("{why}"),
    };
    static DATABASES: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "flowd_test_{}_{}",
        std::process::id(),
        DATABASES.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = PgConnection::connect(&server.url)
        .await
        .unwrap_or_else(|err| panic!("cannot connect to the test server: {err}"));
    let ended = std::mem::take(&mut *ENDED.lock().unwrap_or_else(|p| p.into_inner()));
    for old in ended {
        let _ = admin
            .execute(format!("DROP DATABASE IF EXISTS {old} WITH (FORCE)").as_str())
            .await;
    }
    admin
        .execute(format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap_or_else(|err| panic!("cannot create the test database {name}: {err}"));
    let _ = admin.close().await;
    TestDatabase {
        url: with_database(&server.url, &name),
        name,
    }
}

/// `url` naming the database `name` instead of its own.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, format!("?{query}")),
        None => (rest, String::new()),
    };
    let authority = before_query.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}

fn start() -> Result<Server, String> {
    if let Ok(url) = std::env::var("FLOWD_TEST_DATABASE_URL") {
        if !url.is_empty() {
            return Ok(Server { url });
        }
    }
    let bin = postgres_bin_dir().ok_or_else(|| {
        "PostgreSQL tests need a server: set FLOWD_TEST_DATABASE_URL, or install Debian's \
         postgresql package (no initdb under /usr/lib/postgresql/*/bin)"
            .to_string()
    })?;
    remove_stale_clusters();
    let dir = std::env::temp_dir().join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|err| format!("cannot create {dir:?}: {err}"))?;
    let owner = server_owner()?;
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
            .map_err(|err| format!("cannot give {dir:?} to the postgres user: {err}"))?;
    }
    let data = dir.join("data");
    let initdb = run_as(Command::new(bin.join("initdb")), owner)
        .arg("--pgdata")
        .arg(&data)
        .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
        .args(["--locale=C.UTF-8", "--no-sync"])
        .output()
        .map_err(|err| format!("cannot run initdb: {err}"))?;
    if !initdb.status.success() {
        return Err(format!(
            "initdb failed: {}",
            String::from_utf8_lossy(&initdb.stderr)
        ));
    }
    let log = std::fs::File::create(dir.join("server.log"))
        .map_err(|err| format!("cannot create the server's log: {err}"))?;
    let mut postgres = run_as(Command::new(bin.join("postgres")), owner);
    postgres
        .arg("-D")
        .arg(&data)
        .arg("-k")
        .arg(&dir)
        .args(["-c", "listen_addresses=", "-c", "fsync=off"])
        .args(["-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .args(["-c", "max_connections=300"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    // SIGINT (fast shutdown) when the thread that started it ends: a thread that lives as long as
    // the server, so until the test binary exits.
    unsafe {
        postgres.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGINT)
                .map_err(std::io::Error::from)
        });
    }
    let (started, outcome) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("postgres".into())
        .spawn(move || match postgres.spawn() {
            Ok(mut child) => {
                let _ = started.send(Ok(()));
                let _ = child.wait();
            }
            Err(err) => {
                let _ = started.send(Err(format!("cannot start postgres: {err}")));
            }
        })
        .map_err(|err| format!("cannot start a thread: {err}"))?;
    outcome
        .recv()
        .map_err(|_| "the thread starting postgres ended".to_string())??;
    wait_until_ready(&dir, &data)?;
    Ok(Server {
        url: format!(
            "postgres://postgres@localhost/postgres?host={}",
            dir.display()
        ),
    })
}

/// The `bin` dir of the newest PostgreSQL in Debian's layout, else the one of `initdb` on PATH.
fn postgres_bin_dir() -> Option<PathBuf> {
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin);
    newest.or_else(|| {
        std::env::var_os("PATH")
            .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").exists()))
    })
}

/// The uid and gid the server runs as: the `postgres` user's when the tests run as root
/// (PostgreSQL refuses to run as root), `None` (the tests' own) otherwise.
fn server_owner() -> Result<Option<(u32, u32)>, String> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    let user = nix::unistd::User::from_name("postgres")
        .map_err(|err| format!("cannot look up the postgres user: {err}"))?
        .ok_or("the tests run as root and there is no postgres user to run the server as")?;
    Ok(Some((user.uid.as_raw(), user.gid.as_raw())))
}

fn run_as(mut command: Command, owner: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

/// Waits for `postmaster.pid` to say "ready" (its status line), or fails with the server's log.
fn wait_until_ready(dir: &Path, data: &Path) -> Result<(), String> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
        if pid_file.lines().any(|line| line.trim() == "ready") {
            return Ok(());
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
            return Err(format!(
                "the test PostgreSQL server did not start within {START_TIMEOUT:?}: {log}"
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the clusters of test runs whose process is gone, stopping a server still running.
fn remove_stale_clusters() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|name| name.strip_prefix(DIR_PREFIX))
            .and_then(|pid| pid.parse::<i32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let pid_file = entry.path().join("data").join("postmaster.pid");
        let server = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
            // Not a process that took its pid since.
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim() == "postgres")
            });
        if let Some(server) = server {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(server),
                nix::sys::signal::Signal::SIGQUIT,
            );
        }
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

#[cfg(test)]
#[test]
fn with_database_replaces_only_the_database() {
    assert_eq!(
        with_database("postgres://u:p@h:5432/db?sslmode=disable", "t1"),
        "postgres://u:p@h:5432/t1?sslmode=disable"
    );
    assert_eq!(with_database("postgres://h", "t1"), "postgres://h/t1");
    assert_eq!(
        with_database("postgres://postgres@localhost/postgres?host=/tmp/x", "t2"),
        "postgres://postgres@localhost/t2?host=/tmp/x"
    );
}
