//! sqlx's errors as the store's, for the backends sqlx drives: sqlx's own kinds tell a
//! connection or pool that is gone; a database's error is sorted by that database's codes.

use sqlx::error::DatabaseError;
use sqlx::migrate::MigrateError;

use crate::error::{Condition, StoreError};

/// Whether `err` is a foreign-key violation (a row it names does not exist), in any database
/// sqlx drives.
pub(crate) fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> StoreError {
        let condition = condition(&error);
        StoreError::from_backend(condition, Box::new(error))
    }
}

impl From<MigrateError> for StoreError {
    fn from(error: MigrateError) -> StoreError {
        match error {
            MigrateError::Execute(error) => StoreError::from(error),
            other => StoreError::Migration(Box::new(other)),
        }
    }
}

fn condition(error: &sqlx::Error) -> Condition {
    match error {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Condition::Unavailable,
        sqlx::Error::Database(database) => {
            if let Some(sqlite) = database.try_downcast_ref::<sqlx::sqlite::SqliteError>() {
                sqlite
                    .code()
                    .and_then(|code| code.parse().ok())
                    .map_or(Condition::Failed, crate::sqlite::errors::condition_of_code)
            } else if let Some(postgres) =
                database.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            {
                crate::postgres::errors::condition_of_sqlstate(postgres.code())
            } else {
                Condition::Failed
            }
        }
        _ => Condition::Failed,
    }
}
