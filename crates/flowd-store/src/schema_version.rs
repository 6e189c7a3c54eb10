//! A database migrated by a newer flowd is refused, whatever the backend: this binary does not
//! know what its schema became, and writing to it could lose what the newer one relies on.

use sqlx::migrate::Migrator;

use crate::{Result, StoreError};

/// `SchemaTooNew` when `applied` (the newest migration the database has, `None` if it was never
/// migrated) is newer than every migration of `migrator`.
pub(crate) fn refuse_newer(migrator: &Migrator, applied: Option<i64>) -> Result<()> {
    let binary = migrator
        .iter()
        .map(|migration| migration.version)
        .max()
        .unwrap_or(0);
    match applied {
        Some(database) if database > binary => Err(StoreError::SchemaTooNew { database, binary }),
        _ => Ok(()),
    }
}
