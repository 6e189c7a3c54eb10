//! SQLite's errors as the store's: its result codes sorted by what they mean for a caller, the
//! constraint violations that are a request's fault, and the messages naming what was missing or
//! taken.

use rusqlite::ffi;
use sqlx::error::ErrorKind;

use crate::error::{Condition, StoreError};

/// What an SQLite result code (primary or extended) means for the caller: the database busy or
/// locked past the busy timeout, out of disk or memory, unreadable or unwritable files are a
/// condition of the store; a damaged database file is corrupt data.
pub(crate) fn condition_of_code(code: i32) -> Condition {
    match code & 0xff {
        ffi::SQLITE_BUSY
        | ffi::SQLITE_LOCKED
        | ffi::SQLITE_NOMEM
        | ffi::SQLITE_READONLY
        | ffi::SQLITE_IOERR
        | ffi::SQLITE_FULL
        | ffi::SQLITE_CANTOPEN
        | ffi::SQLITE_PROTOCOL => Condition::Unavailable,
        ffi::SQLITE_CORRUPT | ffi::SQLITE_NOTADB => Condition::Corrupt,
        _ => Condition::Failed,
    }
}

/// An error of the group commit's connection.
pub(super) fn from_rusqlite(error: rusqlite::Error) -> StoreError {
    let condition = match &error {
        rusqlite::Error::SqliteFailure(failure, _) => condition_of_code(failure.extended_code),
        _ => Condition::Failed,
    };
    StoreError::from_backend(condition, Box::new(error))
}

/// Whether the group commit's connection found the database locked by another one.
pub(super) fn is_busy(error: &rusqlite::Error) -> bool {
    matches!(
        error,
        rusqlite::Error::SqliteFailure(failure, _)
            if matches!(failure.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// What a uniqueness violation says about itself (SQLite: "UNIQUE constraint failed:
/// workflows.team_id, workflows.name"), or `None` if `err` is not one.
pub(super) fn unique_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => Some(db.message()),
        _ => None,
    }
}

/// The constraint a statement of the group commit broke, if that is why it failed.
pub(super) enum Constraint {
    Unique,
    ForeignKey,
}

pub(super) fn constraint(err: &rusqlite::Error) -> Option<Constraint> {
    match err {
        rusqlite::Error::SqliteFailure(failure, _)
            if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            match failure.extended_code {
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    Some(Constraint::Unique)
                }
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => Some(Constraint::ForeignKey),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_unavailable() {
        assert_eq!(condition_of_code(ffi::SQLITE_FULL), Condition::Unavailable);
    }

    #[test]
    fn an_extended_io_error_is_unavailable() {
        assert_eq!(
            condition_of_code(ffi::SQLITE_IOERR_WRITE),
            Condition::Unavailable
        );
    }

    #[test]
    fn a_database_busy_past_its_timeout_is_unavailable() {
        assert_eq!(condition_of_code(ffi::SQLITE_BUSY), Condition::Unavailable);
    }

    #[test]
    fn a_damaged_file_is_corrupt() {
        assert_eq!(condition_of_code(ffi::SQLITE_CORRUPT), Condition::Corrupt);
        assert_eq!(condition_of_code(ffi::SQLITE_NOTADB), Condition::Corrupt);
    }

    #[test]
    fn a_broken_constraint_is_a_failure_of_the_statement() {
        assert_eq!(
            condition_of_code(ffi::SQLITE_CONSTRAINT_CHECK),
            Condition::Failed
        );
    }
}
