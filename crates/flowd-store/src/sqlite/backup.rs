//! Backups of an SQLite store: a consistent copy written while a server goes on committing to
//! it, and the check that a file is such a copy before it is restored.
//!
//! The copy is SQLite's `VACUUM INTO`, run in a read transaction on a connection of its own:
//! it sees the database as of the moment it starts (every commit acknowledged before then, none
//! after), and in WAL mode the server's commits go on meanwhile. The copy is compacted and has
//! no WAL, so it is one self-contained file.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection, SqliteConnection};

/// How long the copy waits for a lock another connection holds (a checkpoint ending).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a backup could not be written or a file is not one to restore.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("there is no database at {0}")]
    NoDatabase(PathBuf),
    #[error("{0} exists: a backup is written to a new file")]
    TargetExists(PathBuf),
    #[error("cannot create {path}: {source}")]
    CreateTarget {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a flowd database: {reason}")]
    NotAFlowdDatabase { path: PathBuf, reason: String },
    #[error("SQLite failed on {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: sqlx::Error,
    },
}

/// Writes a consistent copy of the SQLite database `database` into `to`, a new file (mode 0600,
/// as the database itself holds secrets).
pub async fn backup_database(database: &Path, to: &Path) -> Result<(), BackupError> {
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_path_buf()));
    }
    let sqlite = |source| BackupError::Sqlite {
        path: database.to_path_buf(),
        source,
    };
    let mut connection = SqliteConnectOptions::new()
        .filename(database)
        .busy_timeout(BUSY_TIMEOUT)
        .connect()
        .await
        .map_err(sqlite)?;
    check_is_flowd(&mut connection, database).await?;
    create_private_empty_file(to)?;
    let copied = sqlx::query("VACUUM INTO ?")
        .bind(to.to_string_lossy().into_owned())
        .execute(&mut connection)
        .await;
    if let Err(source) = copied {
        // Nothing half-written is left to be mistaken for a backup.
        let _ = std::fs::remove_file(to);
        return Err(sqlite(source));
    }
    connection.close().await.map_err(sqlite)?;
    Ok(())
}

/// Checks that `file` is a whole flowd database: SQLite's integrity check passes and it has
/// flowd's schema.
pub async fn check_backup(file: &Path) -> Result<(), BackupError> {
    if !file.is_file() {
        return Err(BackupError::NoDatabase(file.to_path_buf()));
    }
    let mut connection = SqliteConnectOptions::new()
        .filename(file)
        .read_only(true)
        .connect()
        .await
        .map_err(|source| BackupError::Sqlite {
            path: file.to_path_buf(),
            source,
        })?;
    let integrity: Result<String, sqlx::Error> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_one(&mut connection)
        .await;
    match integrity {
        Ok(answer) if answer == "ok" => {}
        Ok(answer) => {
            return Err(BackupError::NotAFlowdDatabase {
                path: file.to_path_buf(),
                reason: format!("SQLite's integrity check says {answer:?}"),
            })
        }
        Err(source) => {
            return Err(BackupError::NotAFlowdDatabase {
                path: file.to_path_buf(),
                reason: source.to_string(),
            })
        }
    }
    check_is_flowd(&mut connection, file).await
}

/// Whether the database has flowd's schema (its migrations table and its workflows).
async fn check_is_flowd(connection: &mut SqliteConnection, path: &Path) -> Result<(), BackupError> {
    let tables: Result<i64, sqlx::Error> = sqlx::query_scalar(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' \
         AND name IN ('_sqlx_migrations', 'workflows', 'executions')",
    )
    .fetch_one(&mut *connection)
    .await;
    match tables {
        Ok(3) => Ok(()),
        Ok(_) => Err(BackupError::NotAFlowdDatabase {
            path: path.to_path_buf(),
            reason: "it has no flowd tables".into(),
        }),
        Err(source) => Err(BackupError::NotAFlowdDatabase {
            path: path.to_path_buf(),
            reason: source.to_string(),
        }),
    }
}

fn create_private_empty_file(path: &Path) -> Result<(), BackupError> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::AlreadyExists => BackupError::TargetExists(path.to_path_buf()),
            _ => BackupError::CreateTarget {
                path: path.to_path_buf(),
                source,
            },
        })
}
