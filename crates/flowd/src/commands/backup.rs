//! `flowd backup` and `flowd restore`: a consistent copy of a data dir's store, taken while its
//! server serves, and laid back into a new data dir.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use clap::Args;
use flowd_server::{DatabaseUrl, DatabaseUrlError};

/// The store's file in a data dir, as `flowd serve` names it.
const DATABASE_FILE: &str = "flowd.db";
/// The secret key's file in a data dir, as `flowd serve` names it.
const SECRET_KEY_FILE: &str = "secret-key";

pub const BACKUP_EXAMPLES: &str = "\
Examples:
  flowd backup --data-dir /var/lib/flowd --to /backups/flowd-$(date +%F).db

The server may go on serving: the copy holds every execution committed before it started.
It does not hold the secret key (DATA_DIR/secret-key, or FLOWD_SECRET_KEY): keep that apart.
A PostgreSQL store is backed up with pg_dump.";

pub const RESTORE_EXAMPLES: &str = "\
Examples:
  flowd restore --from /backups/flowd-2026-01-31.db --data-dir /var/lib/flowd-restored
  cp /safe/place/secret-key /var/lib/flowd-restored/secret-key
  flowd serve --data-dir /var/lib/flowd-restored";

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The data dir of the server whose store is backed up.
    #[arg(long, env = "FLOWD_DATA_DIR", default_value = "./flowd-data")]
    pub data_dir: PathBuf,
    /// The store, as `flowd serve --database` takes it [default: sqlite:<data-dir>/flowd.db].
    #[arg(long, env = "FLOWD_DATABASE_URL", hide_env_values = true, value_parser = parse_database)]
    pub database: Option<DatabaseUrl>,
    /// The backup file to write; it must not exist.
    #[arg(long, value_name = "FILE")]
    pub to: PathBuf,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// A file written by `flowd backup`.
    #[arg(long, value_name = "FILE")]
    pub from: PathBuf,
    /// The data dir to restore into: a new or empty directory.
    #[arg(long, env = "FLOWD_DATA_DIR")]
    pub data_dir: PathBuf,
}

fn parse_database(text: &str) -> Result<DatabaseUrl, String> {
    text.parse()
        .map_err(|err: DatabaseUrlError| err.to_string())
}

pub async fn backup(args: BackupArgs) -> Result<()> {
    let database = match args.database {
        Some(DatabaseUrl::Postgres(_)) => {
            return Err(anyhow!(
                "this store is a PostgreSQL database: back it up with PostgreSQL's own tools, \
                 e.g. pg_dump --format=custom --file flowd.dump \"$FLOWD_DATABASE_URL\" \
                 (and pg_restore to restore it)"
            ))
        }
        Some(DatabaseUrl::Sqlite(path)) => path,
        None => args.data_dir.join(DATABASE_FILE),
    };
    flowd_store::backup_database(&database, &args.to).await?;
    let size = std::fs::metadata(&args.to).map(|m| m.len()).unwrap_or(0);
    println!(
        "Backed up {} into {} ({size} bytes).\nKeep the secret key ({}) apart from it: \
         the backup's secrets cannot be read without it.",
        database.display(),
        args.to.display(),
        args.data_dir.join(SECRET_KEY_FILE).display()
    );
    Ok(())
}

pub async fn restore(args: RestoreArgs) -> Result<()> {
    refuse_a_non_empty_dir(&args.data_dir)?;
    flowd_store::check_backup(&args.from).await?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    // As `flowd serve` makes it: traversable, not listable.
    std::fs::set_permissions(&args.data_dir, std::fs::Permissions::from_mode(0o711))
        .with_context(|| format!("cannot set the mode of {}", args.data_dir.display()))?;
    let database = args.data_dir.join(DATABASE_FILE);
    copy_privately(&args.from, &database)?;
    println!(
        "Restored {} into {}.\nBefore `flowd serve --data-dir {}`, put the secret key of the \
         server it was taken from in {} (or give it with FLOWD_SECRET_KEY or \
         --secret-key-file).",
        args.from.display(),
        args.data_dir.display(),
        args.data_dir.display(),
        args.data_dir.join(SECRET_KEY_FILE).display()
    );
    Ok(())
}

/// A data dir is restored into only when it is new or empty: a restore never mixes with (or
/// overwrites) a store.
fn refuse_a_non_empty_dir(dir: &Path) -> Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => match entries.next() {
            None => Ok(()),
            Some(_) => Err(anyhow!(
                "{} is not empty: restore into a new data dir",
                dir.display()
            )),
        },
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", dir.display())),
    }
}

/// Copies `from` into the new file `to`, readable by its owner only, durably.
fn copy_privately(from: &Path, to: &Path) -> Result<()> {
    let mut source =
        std::fs::File::open(from).with_context(|| format!("cannot open {}", from.display()))?;
    let mut target = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)
        .with_context(|| format!("cannot create {}", to.display()))?;
    std::io::copy(&mut source, &mut target)
        .and_then(|_| target.flush())
        .and_then(|()| target.sync_all())
        .with_context(|| format!("cannot write {}", to.display()))?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("cannot sync {}", dir.display()))?;
    }
    Ok(())
}
