//! PostgreSQL's errors as the store's: constraint violations become `Conflict` and `NotFound`
//! with messages naming what was in the way.

use sqlx::error::ErrorKind;

use crate::error::Condition;

/// What a PostgreSQL error code (SQLSTATE) means for the caller: the connection lost, the server
/// out of resources or shutting down, a lock or serialization conflict, a statement cancelled
/// (a timeout) are a condition of the store that may pass; damaged data is corrupt.
pub(crate) fn condition_of_sqlstate(code: &str) -> Condition {
    match code {
        "40001" | "40P01" | "55P03" | "57014" => Condition::Unavailable,
        "XX001" | "XX002" => Condition::Corrupt,
        _ if code.starts_with("08") || code.starts_with("53") || code.starts_with("57P") => {
            Condition::Unavailable
        }
        _ => Condition::Failed,
    }
}

/// The constraint a uniqueness violation broke (`teams_name_key`, …), or `None` if `err` is not
/// one.
pub(super) fn unique_violation(err: &sqlx::Error) -> Option<&str> {
    match err {
        sqlx::Error::Database(db) if db.kind() == ErrorKind::UniqueViolation => {
            Some(db.constraint().unwrap_or_default())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_that_may_pass_are_unavailable() {
        // connection failure, too many connections, disk full, admin shutdown, cannot connect
        // now, serialization failure, deadlock, lock not available, statement timeout
        for code in [
            "08006", "53300", "53100", "57P01", "57P03", "40001", "40P01", "55P03", "57014",
        ] {
            assert_eq!(
                condition_of_sqlstate(code),
                Condition::Unavailable,
                "{code}"
            );
        }
    }

    #[test]
    fn damaged_data_is_corrupt_and_the_rest_a_failure() {
        assert_eq!(condition_of_sqlstate("XX001"), Condition::Corrupt);
        // syntax error, undefined column, unique violation
        for code in ["42601", "42703", "23505"] {
            assert_eq!(condition_of_sqlstate(code), Condition::Failed, "{code}");
        }
    }
}
