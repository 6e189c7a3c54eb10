//! A throwaway PostgreSQL server for the store scenario, the way `flowd-test-postgres` starts
//! one for the tests (Debian's binaries, `initdb` into the run's scratch dir, a Unix socket in
//! that dir only, as the `postgres` user when the bench runs as root), but with the server's
//! durability settings left at their defaults (`fsync`, `synchronous_commit` on): the figures are
//! a production server's, not a test's. Stopped (fast shutdown) when dropped.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::flowd::Guarded;

/// How long `initdb` and the server's start may take.
const START_TIMEOUT: Duration = Duration::from_secs(60);

pub struct Postgres {
    server: Guarded,
    bin: PathBuf,
    /// Holds the data directory and the socket.
    dir: PathBuf,
    owner: Option<(u32, u32)>,
}

impl Postgres {
    /// `initdb` in `dir/data`, then the server, listening on a socket in `dir` only.
    pub fn start(dir: &Path) -> anyhow::Result<Postgres> {
        let bin = bin_dir().context(
            "no PostgreSQL server binaries (initdb) under /usr/lib/postgresql/*/bin: \
             apt-get install postgresql",
        )?;
        std::fs::create_dir_all(dir)?;
        let owner = server_owner()?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir, Some(uid), Some(gid))
                .with_context(|| format!("give {} to the postgres user", dir.display()))?;
        }
        let data = dir.join("data");
        let initdb = as_owner(Command::new(bin.join("initdb")), owner)
            .arg("--pgdata")
            .arg(&data)
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8"])
            .args(["--locale=C.UTF-8"])
            .output()
            .context("run initdb")?;
        if !initdb.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&initdb.stderr));
        }
        let log = std::fs::File::create(dir.join("server.log"))?;
        let mut command = as_owner(Command::new(bin.join("postgres")), owner);
        command
            .arg("-D")
            .arg(&data)
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=", "-c", "max_connections=100"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let server = Guarded::spawn("postgres", &mut command)?;
        let postgres = Postgres {
            server,
            bin,
            dir: dir.to_path_buf(),
            owner,
        };
        postgres.wait_until_ready(&data)?;
        Ok(postgres)
    }

    fn wait_until_ready(&self, data: &Path) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
            if pid_file.lines().any(|line| line.trim() == "ready") {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "PostgreSQL did not start within {START_TIMEOUT:?}: {}",
                    std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates the database `name` (with `synchronous_commit` off if `asynchronous_commit`)
    /// and answers its URL.
    pub fn create_database(&self, name: &str, asynchronous_commit: bool) -> anyhow::Result<String> {
        let output = as_owner(Command::new(self.bin.join("createdb")), self.owner)
            .arg("--host")
            .arg(&self.dir)
            .args(["--username=postgres", name])
            .output()
            .context("run createdb")?;
        if !output.status.success() {
            bail!(
                "createdb {name} failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        if asynchronous_commit {
            let output = as_owner(Command::new(self.bin.join("psql")), self.owner)
                .arg("--host")
                .arg(&self.dir)
                .args(["--username=postgres", "--dbname", name, "--command"])
                .arg(format!(
                    "ALTER DATABASE {name} SET synchronous_commit = off"
                ))
                .output()
                .context("run psql")?;
            if !output.status.success() {
                bail!(
                    "turning synchronous_commit off failed: {}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
        Ok(format!(
            "postgres://postgres@localhost/{name}?host={}",
            self.dir.display()
        ))
    }

    /// The server's version and the settings that weigh on a commit, for the report.
    pub fn describe(&self) -> String {
        let version = Command::new(self.bin.join("postgres"))
            .arg("--version")
            .output()
            .ok()
            .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string())
            .unwrap_or_else(|| "PostgreSQL".into());
        format!(
            "{version} on a Unix socket, initdb defaults (fsync and synchronous_commit on, \
             shared_buffers 128 MB)"
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT: fast shutdown (SIGTERM would wait for clients to leave).
        // SAFETY: signalling our own child by its pid.
        unsafe {
            libc::kill(self.server.pid() as i32, libc::SIGINT);
        }
        self.server.stop(Duration::from_secs(10));
    }
}

/// The `bin` dir of the newest PostgreSQL in Debian's layout.
fn bin_dir() -> Option<PathBuf> {
    std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version)
        .map(|(_, bin)| bin)
}

/// The `postgres` user's uid and gid when the bench runs as root (PostgreSQL refuses root).
fn server_owner() -> anyhow::Result<Option<(u32, u32)>> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: a NUL-terminated name; the entry is read before any other call could reuse it.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    if entry.is_null() {
        bail!("the bench runs as root and there is no postgres user to run PostgreSQL as");
    }
    // SAFETY: checked non-null above.
    let (uid, gid) = unsafe { ((*entry).pw_uid, (*entry).pw_gid) };
    Ok(Some((uid, gid)))
}

fn as_owner(mut command: Command, owner: Option<(u32, u32)>) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}
