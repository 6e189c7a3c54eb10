//! What can stop a copy, each saying what to do about it. Whatever stops it, the target is left
//! as it was: the copy is one transaction.

use std::path::PathBuf;

use crate::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("there is no store at {0}")]
    SourceMissing(PathBuf),
    #[error("{path} is not a flowd store ({reason})")]
    NotAStore { path: PathBuf, reason: String },
    #[error(
        "the store {path} has schema version {database}, newer than this flowd's ({binary}): \
         run the flowd that wrote it, or a newer one"
    )]
    SourceSchemaTooNew {
        path: PathBuf,
        database: i64,
        binary: i64,
    },
    #[error(
        "the store {path} has schema version {database}, older than this flowd's ({binary}): \
         start this flowd's `flowd serve` on it once to bring it up to date, stop it, and run \
         again"
    )]
    SourceSchemaTooOld {
        path: PathBuf,
        database: i64,
        binary: i64,
    },
    #[error("cannot read the store {path}")]
    Source {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "the store's table {0} is not among the tables this flowd copies \
         (flowd_store::migrate::TABLES)"
    )]
    UnlistedTable(String),
    #[error("{table}.{column} of the source has no column in the target database")]
    ColumnMissingInTarget { table: String, column: String },
    #[error(
        "{table}.{column} of the target database must be set, and the source has no such column"
    )]
    ColumnMissingInSource { table: String, column: String },
    #[error("{table}.{column} of the target database has the type {data_type}, which the copy does not carry")]
    UnsupportedType {
        table: String,
        column: String,
        data_type: String,
    },
    #[error(
        "{table}.{column} of the source's row {row} holds {found} where {expected} was expected"
    )]
    UnexpectedValue {
        table: String,
        column: String,
        row: u64,
        found: &'static str,
        expected: &'static str,
    },
    #[error("{0} is not a usable PostgreSQL URL")]
    TargetUrl(String, #[source] sqlx::Error),
    #[error("cannot connect to the target database {0}")]
    TargetUnreachable(String, #[source] StoreError),
    #[error("cannot bring the target database's schema up to date")]
    TargetSchema(#[source] StoreError),
    #[error(
        "the target database is not empty (its table {table} has {rows} rows): migrate-store \
         copies into an empty database only"
    )]
    TargetNotEmpty { table: String, rows: i64 },
    #[error("copying into the target database failed; nothing was kept")]
    Target(#[source] StoreError),
    #[error(
        "after the copy the target's table {table} has {in_target} rows and the source's \
         {in_source}: nothing was kept"
    )]
    CountMismatch {
        table: String,
        in_source: u64,
        in_target: u64,
    },
    #[error("the source's reader stopped unexpectedly")]
    ReaderLost,
}

impl From<sqlx::Error> for MigrateError {
    fn from(error: sqlx::Error) -> MigrateError {
        MigrateError::Target(error.into())
    }
}
